/* copy.h - the parser of one Redshift COPY statement.
 *
 * copy_parse() turns the text of `COPY table [(col, ...)] FROM 'uri' options`
 * into a struct copy_stmt and nothing more: it reads no file and knows no
 * warehouse.  Keywords are case-insensitive; unquoted identifiers are folded
 * to lower case as Redshift does; `--` line comments, block comments and
 * any whitespace may appear between tokens.  Errors name the word at fault and
 * its 1-based byte position in the statement; the values of credentials
 * clauses (and string literals in general) are never copied into an error. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

enum copy_format {
        COPY_FORMAT_TEXT,            /* no FORMAT/JSON option: pipe-delimited text */
        COPY_FORMAT_JSON_AUTO,       /* JSON 'auto' */
        COPY_FORMAT_JSON_IGNORECASE, /* JSON 'auto ignorecase' */
        COPY_FORMAT_JSON_PATHS,      /* JSON 'jsonpaths-uri' */
};

enum copy_timeformat {
        COPY_TIME_DEFAULT, /* not given: 'YYYY-MM-DD HH:MI:SS' */
        COPY_TIME_AUTO,
        COPY_TIME_EPOCHSECS,
        COPY_TIME_EPOCHMILLISECS,
        COPY_TIME_STRING, /* a format string, in timeformat */
};

/* A switch option that may be ON/OFF/TRUE/FALSE or absent. */
enum copy_tristate { COPY_UNSET = -1, COPY_OFF = 0, COPY_ON = 1 };

struct copy_stmt {
        char *schema;     /* NULL when the table name has none */
        char *table;
        char **columns;   /* the column list; NULL/0 when absent */
        size_t n_columns;
        char *from;       /* the source URI */
        enum copy_format format;
        char *jsonpaths;  /* URI when format is COPY_FORMAT_JSON_PATHS */
        bool has_credentials; /* IAM_ROLE, CREDENTIALS or keys given (values dropped) */
        char *region;
        enum copy_timeformat timefmt;
        char *timeformat; /* the argument as written, NULL when absent */
        char *dateformat; /* NULL when absent */
        bool blanksasnull, emptyasnull, truncatecolumns, gzip, manifest, roundec;
        bool acceptinvchars;
        char acceptinvchars_char; /* '?' unless ACCEPTINVCHARS AS 'c' */
        long long maxerror;       /* 0 unless MAXERROR n; capped at 100000 */
        enum copy_tristate compupdate, statupdate;
};

/* Parses one statement.  On success *ret is a new statement (free with
 * copy_stmt_free).  -EINVAL with err set ("COPY: unexpected 'FOO' at position
 * 57") when the text is not a COPY we understand; -ENOMEM. */
int copy_parse(const char *sql, struct copy_stmt **ret, char *err, size_t errlen);
struct copy_stmt *copy_stmt_free(struct copy_stmt *s);
