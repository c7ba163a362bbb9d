/* etlplan.h - which source objects an etl run loads, and why.
 *
 * A full run loads every object under [s3] log_data and song_data; an
 * incremental one only those that no publish of the same warehouse took
 * (the journal's ledger, journal.h), unless a published object changed or
 * vanished, or the warehouse does not hold the publish the journal
 * remembers: then it rebuilds in full and says why.  The plan is written
 * into the warehouse (etld_run, etld_plan of sql/DIALECT/create_tables.sql)
 * before any COPY, so a load resumed after a crash reads exactly the same
 * objects, and the publish step records exactly those in the ledger.
 *
 * Each source is read through a manifest etld writes (one file per source,
 * in STATE_DIR/manifests/, or on Redshift an object under the project
 * bucket's etld/manifests/, which Redshift's COPY reads itself), which
 * copy.sql names as {s3.log_data} and {s3.song_data} with its MANIFEST
 * option.
 *
 * Blocking: runs on the thread pool, with the warehouse open there. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "warehouse/wh.h"

struct source_ctx;
struct confine;

/* The [s3] keys whose objects are planned, in copy.sql's order. */
#define ETLPLAN_SOURCES 2
extern const char *const etlplan_sources[ETLPLAN_SOURCES]; /* "log_data", "song_data" */

struct etl_plan {
        char mode[16];     /* "full" or "incremental" */
        char reason[640];  /* why, for the job's events */
        json_t *objects;   /* [{"source", "uri", "size", "tag"}] in key order per source */
        size_t count[ETLPLAN_SOURCES]; /* objects per source */
        char *manifest[ETLPLAN_SOURCES]; /* file:// URI of each source's manifest */
};

/* What the journal says about the warehouse (read on the loop thread). */
struct etlplan_ledger {
        json_t *objects;   /* journal_ledger_get(): {"uri": {"source", "size", "tag"}} */
        int64_t job;       /* the job that published last; 0: none */
};

/* The job's plan: the one the warehouse holds for it (a resumed load), or a
 * new one made from the listings and written into the warehouse.  w must
 * be outside a transaction.  A source with no object at all fails a full
 * plan, naming it.  roots (confine.h; NULL: any): the folders file://
 * sources may be listed in.  -errno with err set. */
int etlplan_get(struct wh *w, int64_t job, const struct cfg *c, const struct etlplan_ledger *l,
                const struct source_ctx *ctx, const struct confine *roots,
                struct etl_plan **ret, char *err, size_t errlen);

/* Writes one manifest per source with objects into dir (created if need
 * be), named after the job, and sets plan->manifest[] (also for a source
 * without objects, whose file is not written: its COPY is skipped). */
int etlplan_write_manifests(struct etl_plan *p, const char *dir, int64_t job, char *err,
                            size_t errlen);
/* A source's manifest as JSON text ({"entries": [{"url", "mandatory"}]}),
 * malloc'ed; NULL when out of memory. */
char *etlplan_manifest_json(const struct etl_plan *p, int src);
/* Removes the file:// ones (best effort). */
void etlplan_remove_manifests(struct etl_plan *p);

/* The source ("log_data", ...) whose manifest a COPY statement reads, by
 * its URI in the text; -1 when it names none. */
int etlplan_source_of(const struct etl_plan *p, const char *statement);

/* The plan a job recorded in the warehouse (for the publish step): its
 * mode and objects.  -ENOENT when there is none. */
int etlplan_read(struct wh *w, int64_t job, struct etl_plan **ret, char *err, size_t errlen);

struct etl_plan *etlplan_free(struct etl_plan *p);
