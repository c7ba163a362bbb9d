/* records.h - splits the text of one object into JSON records.
 *
 * An object holds one or more JSON values, concatenated or separated by
 * newlines (song files: one object, no final newline; log files: NDJSON).
 * Each record comes with its 1-based line and byte offset so that a reject
 * can be reported like a row of STL_LOAD_ERRORS.  A record that is not valid
 * JSON is reported too, and splitting goes on at the next line that starts a
 * value.  Pure: works on a buffer the caller owns; no I/O.  Records are
 * parsed with jv.h into the caller's jv_doc: a record's value lives until
 * the next call. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "jv.h"

struct records {
        const char *buf;
        size_t len;
        size_t pos;    /* next byte to read */
        uint64_t line; /* line of buf[pos] */
        struct jv_doc *doc;
};

struct records_item {
        const struct jv *value; /* NULL when the record is not valid JSON */
        size_t offset;  /* byte offset of the record's first byte */
        size_t len;     /* length of its text */
        uint64_t line;  /* 1-based line of its first byte */
        /* when value is NULL: */
        int err_code;   /* 1216 invalid input line, 1220 invalid UTF-8 */
        uint64_t err_line; /* line of the error */
        char err[160];
};

void records_init(struct records *r, struct jv_doc *doc, const char *buf, size_t len);

/* Fills *it with the next record and returns 1, or returns 0 at the end,
 * or -ENOMEM. */
int records_next(struct records *r, struct records_item *it);

/* ACCEPTINVCHARS: replaces every byte of an invalid UTF-8 sequence with
 * repl, in place.  Returns the number of bytes replaced. */
size_t records_fix_utf8(char *buf, size_t len, char repl);
