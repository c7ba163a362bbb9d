/* convert.h - one JSON value into one cell of a column of a declared type,
 * the way Redshift's COPY converts it, or a reject shaped like a row of
 * STL_LOAD_ERRORS (code and reason).
 *
 * Pure: no I/O, no allocation except growing the caller's scratch buffer.
 * Timestamps use our own UTC arithmetic (days from civil), never gmtime. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jv.h"
#include "util.h"
#include "warehouse/wh.h"

enum convert_kind {
        CONVERT_VARCHAR, /* VARCHAR(n), CHARACTER VARYING(n), TEXT, CHAR(n)... */
        CONVERT_SMALLINT,
        CONVERT_INTEGER,
        CONVERT_BIGINT,
        CONVERT_DECIMAL,
        CONVERT_REAL,
        CONVERT_DOUBLE,
        CONVERT_BOOLEAN,
        CONVERT_DATE,
        CONVERT_TIMESTAMP,
        CONVERT_TIMESTAMPTZ,
};

struct convert_type {
        enum convert_kind kind;
        size_t max_bytes;    /* VARCHAR: length limit in bytes */
        int precision, scale; /* DECIMAL */
        const char *name;    /* "Integer", "Varchar"... as Redshift names it in reasons */
};

enum convert_time {
        CONVERT_TIME_DEFAULT, /* 'YYYY-MM-DD HH:MI:SS[.ffffff]' */
        CONVERT_TIME_AUTO,    /* the default plus ISO 8601 'T' and a 'Z' */
        CONVERT_TIME_EPOCHSECS,
        CONVERT_TIME_EPOCHMILLISECS,
};

/* A compiled DATEFORMAT or TIMEFORMAT string ("DATEFORMAT and TIMEFORMAT
 * strings"). */
struct convert_timefmt;

struct convert_opts {
        bool blanksasnull, emptyasnull, truncatecolumns, roundec;
        enum convert_time timefmt;
        const struct convert_timefmt *timeformat; /* TIMEFORMAT 'string', or NULL */
        const struct convert_timefmt *dateformat; /* DATEFORMAT 'string', or NULL */
        bool dateauto;                            /* DATEFORMAT 'auto' */
};

/* Compiles a format string; -EINVAL with err naming the bad part. */
int convert_timefmt_compile(const char *fmt, struct convert_timefmt **ret, char *err,
                            size_t errlen);
void convert_timefmt_free(struct convert_timefmt *f);

/* A value that cannot be loaded. */
struct convert_reject {
        int code;          /* Redshift's err_code, e.g. 1207 */
        char reason[256];  /* Redshift-like err_reason */
        char value[256];   /* the field's text (truncated) */
};

/* Parses a declared type such as "VARCHAR(256)" or "double precision"
 * (case-insensitive).  -EINVAL when the type is not one COPY can load. */
int convert_parse_type(const char *decl, struct convert_type *ret);

/* Converts v (NULL = missing, loaded as NULL) for a column of type t.
 * Returns 0 with *out set, 1 when the value is rejected (*rej set), -ENOMEM.
 * out->text may point into v's text (valid while the record's text lives) or
 * into scratch (valid until scratch is next used). */
int convert_value(const struct convert_type *t, const struct convert_opts *o, const struct jv *v,
                  struct buf *scratch, struct cell *out, struct convert_reject *rej);

/* Writes 'YYYY-MM-DD HH:MI:SS[.fff]' for a UTC instant given as whole
 * seconds and a fraction in microseconds (0..999999), trailing zeros of the
 * fraction dropped.  Returns the length (< 40); buf has room for 40. */
size_t convert_format_timestamp(int64_t secs, uint32_t usec, char *buf);

/* Days since 1970-01-01 of a proleptic Gregorian date, and back. */
int64_t convert_days_from_civil(int64_t y, unsigned m, unsigned d);
void convert_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);
