/* jv.h - the COPY emulator's own JSON reader: one pass over the text, values
 * in an arena reused record after record, no malloc per value.
 *
 * It keeps what Redshift needs and a general-purpose library throws away:
 * the exact text of every number (a DECIMAL or a VARCHAR column gets the
 * digits as written, "1.10" stays "1.10") and the raw text of nested objects
 * and arrays.  Strings without escapes point into the source text (zero copy);
 * strings with escapes are decoded into the arena.  The grammar is RFC 8259's,
 * strictly: no NaN, no comments, no trailing commas, no control characters
 * in strings, valid UTF-8 only, no lone surrogates, no \u0000; duplicate keys
 * are kept (lookups return the last one, as jansson and Redshift do). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jv_type { JV_NULL, JV_FALSE, JV_TRUE, JV_NUMBER, JV_STRING, JV_OBJECT, JV_ARRAY };

struct jv_member;

struct jv {
        uint8_t type;     /* enum jv_type */
        bool integer;     /* JV_NUMBER: no fraction, no exponent */
        uint32_t n;       /* JV_OBJECT: members; JV_ARRAY: items */
        const char *s;    /* STRING: decoded text; NUMBER: its token; OBJECT/ARRAY: raw text */
        size_t len;
        union {
                struct jv_member *members; /* JV_OBJECT */
                struct jv *items;          /* JV_ARRAY */
        } u;
};

struct jv_member {
        const char *key;
        size_t klen;
        struct jv value;
};

/* The arena and scratch stack one parser thread reuses. */
struct jv_doc;

struct jv_doc *jv_doc_new(void);
struct jv_doc *jv_doc_free(struct jv_doc *d);

enum jv_error {
        JV_OK,
        JV_ERR_SYNTAX,    /* unexpected character */
        JV_ERR_TRUNCATED, /* the text ended inside the value */
        JV_ERR_UTF8,      /* invalid UTF-8 in a string */
        JV_ERR_DEPTH,     /* nested deeper than JV_MAX_DEPTH */
        JV_ERR_NOMEM,
};

#define JV_MAX_DEPTH 512

struct jv_result {
        enum jv_error error;
        size_t pos;       /* bytes consumed (OK) or offset of the error */
        char what[96];    /* what went wrong, for messages */
};

/* Parses one value starting at buf (leading whitespace allowed) and stops
 * right after it.  Invalidates every value the previous call on d returned.
 * Returns the value, or NULL with res->error set. */
const struct jv *jv_parse(struct jv_doc *d, const char *buf, size_t len, struct jv_result *res);

/* The member key names in obj (the last one when repeated), or NULL;
 * hint (may be NULL) remembers where it was found last time. */
const struct jv *jv_get(const struct jv *obj, const char *key, size_t klen, uint32_t *hint);
/* Likewise, comparing ASCII letters case-insensitively. */
const struct jv *jv_get_ignorecase(const struct jv *obj, const char *key, size_t klen);
const struct jv *jv_index(const struct jv *arr, size_t i);

/* Appends the compact text of v (no whitespace outside strings) to out, which
 * has room for v->len bytes (compact text is never longer than the raw text).
 * Returns the length written. */
size_t jv_compact(const struct jv *v, char *out);
