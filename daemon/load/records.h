/* records.h - splits the text of one object into JSON records, whole or as it
 * streams in.
 *
 * An object holds one or more JSON values, concatenated or separated by
 * newlines (song files: one object, no final newline; log files: NDJSON).
 * Each record comes with its 1-based line and byte offset so that a reject
 * can be reported like a row of STL_LOAD_ERRORS.  A record that is not valid
 * JSON is reported too, and splitting goes on at the next line that starts a
 * value.  No I/O.  Records are parsed with jv.h into the caller's jv_doc: a
 * record's value (and it->text) lives until the next call.
 *
 * Two ways to feed it, with exactly the same records, lines, offsets and
 * errors whatever the chunk sizes:
 *   - records_init(): the whole text, in a buffer the caller owns;
 *   - records_init_stream(): a window records owns.  The caller appends bytes
 *     with records_space()/records_commit() whenever records_next() returns
 *     -EAGAIN, and calls records_end() when the object is over.  The window
 *     keeps only the record being read (the partial tail), so it stays below
 *     max + the caller's chunk size.
 *
 * A record longer than `max` bytes (Redshift: "The maximum size of a JSON
 * object in Amazon Redshift is 4 MB, which applies before any shredding or
 * parsing", COPY from JSON) comes as a bad record with too_large set (1216,
 * "JSON record larger than ..."; the COPY emulator fails the COPY on it)
 * without being read further, and splitting goes on at the next line that
 * starts a value after its first max bytes. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jv.h"
#include "util.h"

#define RECORDS_MAX_DEFAULT ((size_t)4 << 20) /* 4 MiB */
#define RECORDS_RAW_KEEP 1100 /* bytes of a bad record's text kept for its reject */

struct records_item {
        const struct jv *value; /* NULL when the record is not valid JSON */
        uint64_t offset;  /* byte offset of the record's first byte in the object */
        size_t len;       /* length of its text */
        uint64_t line;    /* 1-based line of its first byte */
        const char *text; /* its first text_len bytes (all of it when value != NULL;
                             otherwise up to the end of the line where the error is,
                             at most RECORDS_RAW_KEEP: never the lines skipped after it) */
        size_t text_len;
        bool first; /* the object's first record (nothing but blanks before it) */
        /* when value is NULL: */
        int err_code;     /* 1216 invalid input line, 1220 invalid UTF-8 */
        bool too_large;   /* longer than max: Redshift fails the whole COPY */
        uint64_t err_line; /* line of the error */
        char err[160];
};

struct records {
        const char *buf;  /* the window: buf[0] is byte `base` of the object */
        size_t len;       /* bytes the parser may look at */
        size_t pos;       /* next byte to read */
        uint64_t line;    /* line of buf[pos] */
        uint64_t base;
        struct jv_doc *doc;
        size_t max;       /* largest record */
        bool eof;         /* nothing follows buf[len] */
        bool started;     /* byte order mark looked at */
        uint64_t items;   /* records returned so far */

        /* streaming */
        bool stream;
        struct buf win;   /* buf == win.data; win.len: bytes held (>= len) */
        int repl;         /* ACCEPTINVCHARS character, or -1 */
        size_t fixed;     /* bytes replaced so far (ACCEPTINVCHARS) */

        /* resynchronising after a bad record: the reject waits until its end
         * is known */
        bool skipping;
        bool skip_nl;     /* looking for a newline (else: blanks after one) */
        uint64_t skip_line_start;
        struct records_item pending;
        char raw[RECORDS_RAW_KEEP];
        size_t raw_len;
        bool raw_done; /* raw holds the record up to its error's line end */
};

/* The whole text at once (limit: RECORDS_MAX_DEFAULT; set r->max to change). */
void records_init(struct records *r, struct jv_doc *doc, const char *buf, size_t len);

/* Streaming; repl >= 0 applies ACCEPTINVCHARS with that character to the
 * bytes as they come (a UTF-8 sequence cut by a chunk boundary is judged
 * whole). */
void records_init_stream(struct records *r, struct jv_doc *doc, size_t max, int repl);
/* Room for at least want more bytes at the end of the window (it drops what
 * was consumed first); *room gets the space available.  NULL: out of memory. */
char *records_space(struct records *r, size_t want, size_t *room);
/* n bytes were written at records_space()'s pointer. */
void records_commit(struct records *r, size_t n);
/* The object ends here. */
void records_end(struct records *r);
/* Bytes the window holds (the unfinished record), to size the next read. */
size_t records_pending(const struct records *r);
void records_free(struct records *r);

/* Fills *it with the next record and returns 1, or returns 0 at the end,
 * -EAGAIN when streaming and more bytes are needed, or -ENOMEM. */
int records_next(struct records *r, struct records_item *it);

/* ACCEPTINVCHARS: replaces every byte of an invalid UTF-8 sequence with
 * repl, in place.  Returns the number of bytes replaced. */
size_t records_fix_utf8(char *buf, size_t len, char repl);
