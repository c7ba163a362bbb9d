/* parse.h - one object's bytes to rows, a piece at a time: the pure half of
 * the COPY emulator (load.c is the other, on the loop).
 *
 * parse_run() takes the bytes of one object as they were read, inflates them
 * (GZIP), splits them into records (records.h), evaluates the columns
 * ('auto', 'auto ignorecase' or JSONPaths) and converts every value
 * (convert.h), into chunks of ready rows and rejects.  It keeps what a
 * record cut by the end of the bytes needs (the partial record, the gzip
 * stream, the chunk being filled) in its parse_obj for the next call, so
 * the calls for one object run one after the other, each as one job on
 * libuv's thread pool; different objects run in parallel.  No I/O, no uv.h:
 * every call is plain computation on memory the caller hands over.
 *
 * Chunks hold at most PARSE_CHUNK_ROWS rows, PARSE_CHUNK_REJECTS rejects and
 * about PARSE_CHUNK_TEXT bytes of text, and come out the same whatever the
 * sizes of the pieces the bytes arrived in: which rows a chunk holds depends
 * only on the object. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convert.h"
#include "copy.h"
#include "jsonpaths.h"
#include "util.h"
#include "warehouse/wh.h"

#define PARSE_CHUNK_ROWS 512
#define PARSE_CHUNK_REJECTS 64
#define PARSE_CHUNK_TEXT ((size_t)1 << 20)
#define PARSE_RAW_LINE_MAX 1024
/* Bytes inflated or copied into the records window at a time. */
#define PARSE_READ_CHUNK ((size_t)64 << 10)

/* A column of the COPY's target, in the statement's order. */
struct parse_column {
        char *name;  /* as the warehouse spells it */
        char *match; /* lower-cased: what a JSON key must equal for 'auto' */
        size_t match_len;
        char *decl; /* declared type */
        struct convert_type type;
};

/* What every parse of one COPY reads; set up before the first parse_run,
 * read-only while any runs. */
struct parse_spec {
        const char *table;
        enum copy_format format;
        bool gzip;
        int acceptinvchars; /* the ACCEPTINVCHARS character, or -1 */
        size_t record_max;  /* the largest record (Redshift: 4 MB) */
        const struct parse_column *cols;
        size_t n_cols;
        const struct jsonpaths *paths; /* NULL: 'auto' */
        const struct convert_opts *opts;
        bool object_column; /* each row gets one more cell: the object's URI */
};

/* A rejected record; strings are offsets into its chunk's text. */
struct parse_reject {
        size_t before_row; /* rows of the chunk that come before it */
        uint64_t line;
        uint64_t position;
        int col; /* -1: the record as a whole */
        int code;
        bool not_json; /* the object does not start with a record: the COPY fails */
        size_t raw, raw_len, value, value_len, reason, reason_len;
};

/* Rows and rejects of one object, in its order.  cells holds rows * width
 * cells (width: n_cols, plus one for the object column); their text points
 * into text or at the object's URI. */
struct parse_chunk {
        struct parse_chunk *next; /* the consumer's queue */
        struct cell *cells;
        size_t rows, cap_rows, width;
        struct buf text;
        struct parse_reject *rejects;
        size_t n_rejects, cap_rejects;
        size_t bytes; /* memory it holds, for the caller's bounds */
        /* the consumer's, untouched here */
        size_t taken;       /* rows handed on */
        size_t next_reject; /* rejects reported */
        unsigned refs;
};

struct parse_obj;

enum parse_status {
        PARSE_MORE,  /* every byte given is used: call again with more, or at the end */
        PARSE_CHUNK, /* *chunk is full; call again (bytes may be left) */
        PARSE_END,   /* the object is over; *chunk is its last (NULL when empty) */
        PARSE_FAIL,  /* the COPY fails: msg says why, the chunk being filled is dropped */
};

/* uri (not copied) names the object in messages and in the object column;
 * spec must outlive the parse_obj.  NULL: out of memory. */
struct parse_obj *parse_obj_new(const struct parse_spec *spec, const char *uri);
/* Makes p ready for another object, keeping its buffers when they are of
 * ordinary size (a load reuses them: small objects cost no big allocation). */
void parse_obj_reset(struct parse_obj *p, const char *uri);
void parse_obj_free(struct parse_obj *p);

/* Parses in[*off..len) (the object's next bytes; *off advances over what
 * was used) until a chunk fills, the bytes run out or, when eof says no
 * more bytes follow these, the object ends.  Returns a parse_status; on
 * PARSE_FAIL *err is -EINVAL or -ENOMEM and msg names the object (and its
 * line).  Any thread; one call at a time per parse_obj. */
enum parse_status parse_run(struct parse_obj *p, const char *in, size_t len, size_t *off, bool eof,
                            struct parse_chunk **chunk, int *err, char *msg, size_t msglen);

/* The text of a reject's fields. */
static inline const char *parse_chunk_str(const struct parse_chunk *c, size_t off)
{
        return c->text.data ? c->text.data + off : "";
}
void parse_chunk_free(struct parse_chunk *c);
