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
 * On the loop thread: etlplan_get and etlplan_read are state machines that
 * queue their queries on the caller's warehouse connection (wh.h) and list
 * the sources with source_list (source.h), and call back once.  Writing and
 * removing the local manifest files is blocking file I/O, for a pool job. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "objlist.h"
#include "load/source.h"
#include "warehouse/wh.h"

/* The [s3] keys whose objects are planned, in copy.sql's order. */
#define ETLPLAN_SOURCES 2
extern const char *const etlplan_sources[ETLPLAN_SOURCES]; /* "log_data", "song_data" */

struct etl_plan {
        char mode[16];          /* "full" or "incremental" */
        char reason[640];       /* why, for the job's events */
        struct objlist objects; /* in key order per source, log_data first */
        size_t count[ETLPLAN_SOURCES];   /* objects per source */
        char *manifest[ETLPLAN_SOURCES]; /* file:// URI of each source's manifest */
};

/* What the journal says about the warehouse (read on the loop thread). */
struct etlplan_ledger {
        struct objlist objects; /* journal_ledger_get(): sorted by URI */
        int64_t job;            /* the job that published last; 0: none */
};

/* A planning in progress. */
struct etlplan_req;

/* Once, on the loop thread: err 0 and plan (the callee owns it:
 * etlplan_free), or err -errno, msg a sentence and plan NULL
 * (-ECANCELED after etlplan_cancel or a cancelled warehouse). */
typedef void (*etlplan_cb)(void *ud, int err, const char *msg, struct etl_plan *plan);

/* The job's plan: the one the warehouse holds for it (a resumed load), or a
 * new one made from the listings of the [s3] sources in c and written into
 * the warehouse in one transaction.  w must be outside a transaction; c, l
 * (NULL: no ledger) and env must outlive cb.  A source with no object at all
 * fails a full plan, naming it.  env->roots (confine.h; NULL: any): the
 * folders file:// sources may be listed in.  Returns 0 (*ret, may be NULL,
 * valid until cb), or -errno and calls nothing. */
int etlplan_get(struct wh *w, int64_t job, const struct cfg *c, const struct etlplan_ledger *l,
                const struct source_env *env, etlplan_cb cb, void *ud, struct etlplan_req **ret);

/* The plan a job recorded in the warehouse (for the publish step): its mode
 * and objects.  cb gets -ENOENT when there is none. */
int etlplan_read(struct wh *w, int64_t job, etlplan_cb cb, void *ud, struct etlplan_req **ret);

/* Ends the listings at once; cb comes with -ECANCELED (maybe later: after
 * the warehouse operation that is running, which the caller may cancel
 * with wh_cancel). */
void etlplan_cancel(struct etlplan_req *q);

/* Writes one manifest per source with objects into dir (created if need
 * be), named after the job, and sets plan->manifest[] (also for a source
 * without objects, whose file is not written: its COPY is skipped).
 * Blocking (a pool job). */
int etlplan_write_manifests(struct etl_plan *p, const char *dir, int64_t job, char *err,
                            size_t errlen);
/* A source's manifest as JSON text ({"entries": [{"url", "mandatory",
 * "meta": {"content_length"}}]}), malloc'ed; NULL when out of memory. */
char *etlplan_manifest_json(const struct etl_plan *p, int src);
/* Removes the file:// ones (best effort).  Blocking (a pool job). */
void etlplan_remove_manifests(struct etl_plan *p);

/* The source ("log_data", ...) whose manifest a COPY statement reads, by
 * its URI in the text; -1 when it names none. */
int etlplan_source_of(const struct etl_plan *p, const char *statement);

struct etl_plan *etlplan_free(struct etl_plan *p);
