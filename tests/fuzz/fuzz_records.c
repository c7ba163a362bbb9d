/* fuzz_records.c - the record splitter (daemon/load/records.h) and the JSON
 * reader under it (daemon/load/jv.h).
 *
 * Input: one byte choosing the chunk size, one byte of options (bit 0:
 * ACCEPTINVCHARS '?'; bit 1: a small record limit, the next byte's value plus
 * one), then the object's text.  Checked besides memory safety:
 *   - records.h's promise: the text split whole and streamed in chunks gives
 *     the same records, lines, offsets, errors and texts;
 *   - a value's compact text (jv_compact) is no longer than its raw text,
 *     parses again, and compacts to itself;
 *   - every member of an object is found by jv_get (the last one of a
 *     repeated key) and by jv_get_ignorecase, and every item by jv_index. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "load/records.h"

struct rec {
        bool value;
        uint64_t offset, line, err_line;
        size_t len;
        int code;
        char err[160];
        char *text; /* the compact value, or the raw text kept for a reject */
        size_t text_len;
};

struct recs {
        struct rec *v;
        size_t n, cap;
};

static void check_value(struct jv_doc *scratch, const struct jv *v, int depth)
{
        if (v->type == JV_OBJECT) {
                for (uint32_t i = 0; i < v->n; i++) {
                        const struct jv_member *m = &v->u.members[i];
                        const struct jv *got = jv_get(v, m->key, m->klen, NULL);
                        FUZZ_CHECK(got, "member %u not found by jv_get", i);
                        /* the last member with this key */
                        uint32_t last = i;
                        for (uint32_t k = i + 1; k < v->n; k++)
                                if (v->u.members[k].klen == m->klen &&
                                    memcmp(v->u.members[k].key, m->key, m->klen) == 0)
                                        last = k;
                        FUZZ_CHECK(
                            got == &v->u.members[last].value,
                            "jv_get found member %ld instead of %u",
                            (long)((const struct jv_member *)((const char *)got -
                                                              offsetof(struct jv_member, value)) -
                                   v->u.members),
                            last);
                        FUZZ_CHECK(jv_get_ignorecase(v, m->key, m->klen),
                                   "member %u not found by jv_get_ignorecase", i);
                        if (depth < 8)
                                check_value(scratch, &m->value, depth + 1);
                }
        } else if (v->type == JV_ARRAY) {
                for (uint32_t i = 0; i < v->n; i++) {
                        FUZZ_CHECK(jv_index(v, i) == &v->u.items[i], "jv_index(%u)", i);
                        if (depth < 8)
                                check_value(scratch, &v->u.items[i], depth + 1);
                }
                FUZZ_CHECK(jv_index(v, v->n) == NULL, "jv_index past the end");
        }
}

/* The compact text of an object or array, checked to be a fixed point. */
static char *compact_checked(struct jv_doc *scratch, const struct jv *v, size_t *len)
{
        char *c = malloc(v->len + 1);
        FUZZ_CHECK(c, "out of memory");
        size_t n = jv_compact(v, c);
        FUZZ_CHECK(n <= v->len, "compact text %zu bytes, raw %zu", n, v->len);
        struct jv_result res;
        const struct jv *again = jv_parse(scratch, c, n, &res);
        FUZZ_CHECK(again, "the compact text does not parse: %s at %zu", res.what, res.pos);
        FUZZ_CHECK(res.pos == n, "the compact text parses to %zu of %zu bytes", res.pos, n);
        FUZZ_CHECK(again->type == v->type && again->n == v->n, "the compact text changed shape");
        char *c2 = malloc(n + 1);
        FUZZ_CHECK(c2, "out of memory");
        size_t n2 = jv_compact(again, c2);
        FUZZ_CHECK(n2 == n && memcmp(c, c2, n) == 0, "compacting twice changed the text");
        free(c2);
        *len = n;
        return c;
}

static void take(struct recs *out, struct jv_doc *scratch, const struct records_item *it)
{
        if (out->n == out->cap) {
                size_t cap = out->cap ? out->cap * 2 : 16;
                struct rec *v = realloc(out->v, cap * sizeof(*v));
                FUZZ_CHECK(v, "out of memory");
                out->v = v;
                out->cap = cap;
        }
        struct rec *o = &out->v[out->n++];
        memset(o, 0, sizeof(*o));
        o->value = it->value != NULL;
        o->offset = it->offset;
        o->line = it->line;
        o->err_line = it->err_line;
        o->len = it->len;
        o->code = it->err_code;
        memcpy(o->err, it->err, sizeof(o->err));
        o->err[sizeof(o->err) - 1] = '\0';
        if (it->value) {
                FUZZ_CHECK(it->text_len == it->len, "a value's text is %zu of %zu bytes",
                           it->text_len, it->len);
                check_value(scratch, it->value, 0);
                if (it->value->type == JV_OBJECT || it->value->type == JV_ARRAY) {
                        o->text = compact_checked(scratch, it->value, &o->text_len);
                        return;
                }
                o->text_len = it->text_len;
        } else {
                FUZZ_CHECK(it->err_code == 1216 || it->err_code == 1220, "reject code %d",
                           it->err_code);
                /* a bad record's raw text ends at the line where it went
                 * wrong: never more than the record, never over the cap */
                FUZZ_CHECK(it->text_len <= it->len && it->text_len <= RECORDS_RAW_KEEP,
                           "a reject keeps %zu bytes of a %zu-byte record", it->text_len,
                           it->len);
                o->text_len = it->text_len;
        }
        o->text = malloc(o->text_len + 1);
        FUZZ_CHECK(o->text, "out of memory");
        memcpy(o->text, it->text, o->text_len);
}

static void recs_free(struct recs *r)
{
        for (size_t i = 0; i < r->n; i++)
                free(r->v[i].text);
        free(r->v);
}

static void split_whole(const char *text, size_t len, size_t max, int repl, struct recs *out)
{
        char *copy = malloc(len + 1);
        FUZZ_CHECK(copy, "out of memory");
        memcpy(copy, text, len);
        if (repl >= 0)
                records_fix_utf8(copy, len, (char)repl);
        struct jv_doc *doc = jv_doc_new(), *scratch = jv_doc_new();
        FUZZ_CHECK(doc && scratch, "out of memory");
        struct records r;
        struct records_item it;
        records_init(&r, doc, copy, len);
        r.max = max;
        int rc;
        while ((rc = records_next(&r, &it)) == 1)
                take(out, scratch, &it);
        FUZZ_CHECK(rc == 0, "records_next returned %d on a whole text", rc);
        jv_doc_free(scratch);
        jv_doc_free(doc);
        free(copy);
}

static void split_stream(const char *text, size_t len, size_t chunk, size_t max, int repl,
                         struct recs *out)
{
        struct jv_doc *doc = jv_doc_new(), *scratch = jv_doc_new();
        FUZZ_CHECK(doc && scratch, "out of memory");
        struct records r;
        struct records_item it;
        records_init_stream(&r, doc, max, repl);
        size_t fed = 0;
        for (;;) {
                int rc = records_next(&r, &it);
                if (rc == 0)
                        break;
                if (rc == -EAGAIN) {
                        FUZZ_CHECK(!r.eof, "-EAGAIN after records_end");
                        size_t room;
                        char *dst = records_space(&r, chunk, &room);
                        FUZZ_CHECK(dst && room >= chunk, "records_space(%zu): %zu", chunk,
                                   dst ? room : 0);
                        size_t k = len - fed < chunk ? len - fed : chunk;
                        if (k == 0) {
                                records_end(&r);
                        } else {
                                memcpy(dst, text + fed, k);
                                fed += k;
                                records_commit(&r, k);
                        }
                        continue;
                }
                FUZZ_CHECK(rc == 1, "records_next returned %d", rc);
                take(out, scratch, &it);
        }
        FUZZ_CHECK(fed == len, "the splitter ended after %zu of %zu bytes", fed, len);
        records_free(&r);
        jv_doc_free(scratch);
        jv_doc_free(doc);
}

static void same(const struct recs *a, const struct recs *b, size_t chunk)
{
        FUZZ_CHECK(a->n == b->n, "chunk %zu: %zu records streamed, %zu whole", chunk, b->n, a->n);
        for (size_t i = 0; i < a->n; i++) {
                const struct rec *x = &a->v[i], *y = &b->v[i];
                FUZZ_CHECK(x->value == y->value && x->offset == y->offset && x->line == y->line &&
                               x->err_line == y->err_line && x->len == y->len &&
                               x->code == y->code && strcmp(x->err, y->err) == 0,
                           "chunk %zu, record %zu: whole {value %d off %llu len %zu line %llu/%llu "
                           "code %d '%s'}, streamed {value %d off %llu len %zu line %llu/%llu "
                           "code %d '%s'}",
                           chunk, i, x->value, (unsigned long long)x->offset, x->len,
                           (unsigned long long)x->line, (unsigned long long)x->err_line, x->code,
                           x->err, y->value, (unsigned long long)y->offset, y->len,
                           (unsigned long long)y->line, (unsigned long long)y->err_line, y->code,
                           y->err);
                FUZZ_CHECK(x->text_len == y->text_len && memcmp(x->text, y->text, x->text_len) == 0,
                           "chunk %zu, record %zu: different texts", chunk, i);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 3)
                return 0;
        static const size_t chunks[] = {1, 2, 3, 7, 16, 61, 64, 255, 4096, 65536};
        size_t chunk = chunks[data[0] % (sizeof(chunks) / sizeof(chunks[0]))];
        int repl = data[1] & 1 ? '?' : -1;
        size_t max = data[1] & 2 ? (size_t)data[2] + 1 : RECORDS_MAX_DEFAULT;
        const char *text = (const char *)data + 3;
        size_t len = size - 3;
        struct recs whole = {0}, streamed = {0};
        split_whole(text, len, max, repl, &whole);
        split_stream(text, len, chunk, max, repl, &streamed);
        same(&whole, &streamed, chunk);
        recs_free(&whole);
        recs_free(&streamed);
        return 0;
}
