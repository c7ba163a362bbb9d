/* test_source.c - the COPY sources on the loop (daemon/load/source.h).
 *
 * file://: listing order and string-prefix matching, streamed reads in
 * SOURCE_FILE_CHUNK pieces with a consumer that pauses, objects under a chunk read
 * whole (one data() call, paused and cancelled alike; a listed size gone
 * stale; a file larger than fstat said), cancel mid-read, a missing
 * object (-ENOENT), the cap of small reads (-EFBIG), confinement (-EACCES).
 * s3://: the same calls against s3rver behind the test proxy, when
 * ETLD_TEST_S3_ENDPOINT names it (tests/integration/test_source_s3.py runs
 * this binary so, with AWS_* credentials and a fault that cuts one object
 * mid-body); without it those tests are skipped.
 *
 * Every test runs its own loop to the end and closes it: an outstanding
 * request or a handle left open fails uv_loop_close. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <uv.h>

#include "aws/creds.h"
#include "aws/http.h"
#include "aws/s3.h"
#include "confine.h"
#include "load/source.h"
#include "load/source_s3.h"
#include "testfs.h"

static char tmpdir[256];
static uv_loop_t loop;

/* The byte at offset i of a pattern object (no period that a lost or
 * repeated chunk could hide). */
static char pat(uint64_t i)
{
        return (char)('a' + (i * 7 + i / 251) % 26);
}

static void put_pattern(const char *rel, size_t n)
{
        char *d = malloc(n ? n : 1);
        assert_non_null(d);
        for (size_t i = 0; i < n; i++)
                d[i] = pat(i);
        testfs_put(tmpdir, rel, d, n);
        free(d);
}

static void put_text(const char *rel, const char *text)
{
        testfs_put(tmpdir, rel, text, strlen(text));
}

static int setup_tree(void **state)
{
        (void)state;
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_source.XXXXXX");
        if (!mkdtemp(tmpdir))
                return -1;
        put_text("log_data/2018/11/2018-11-02-events.json", "{}");
        put_text("log_data/2018/11/2018-11-01-events.json", "{}");
        put_text("log_data_old/x.json", "{}");
        put_text("log_json_path.json", "{\"jsonpaths\":[\"$.a\"]}");
        put_text("song_data/A/B/C/TRABC.json", "{}");
        put_text("logbook.txt", "x");
        put_text("logA", "upper case sorts before lower case");
        return uv_loop_init(&loop);
}

static int teardown_tree(void **state)
{
        (void)state;
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        int r = uv_loop_close(&loop); /* UV_EBUSY: something left open */
        if (r != 0)
                fprintf(stderr, "uv_loop_close: %s\n", uv_strerror(r));
        return system(cmd) == 0 && r == 0 ? 0 : -1;
}

static struct source_env file_env(void)
{
        return (struct source_env){.loop = &loop};
}

/* ---- listing ---- */

struct listed {
        bool called;
        int err;
        char msg[1024];
        struct source_object *objs;
        size_t n;
};

static void on_listed(void *ud, int err, const char *msg, struct source_object *objs, size_t n)
{
        struct listed *l = ud;
        assert_false(l->called);
        l->called = true;
        l->err = err;
        snprintf(l->msg, sizeof(l->msg), "%s", msg);
        l->objs = objs;
        l->n = n;
}

static void run(void)
{
        uv_run(&loop, UV_RUN_DEFAULT);
}

static struct listed list_uri(const char *uri, const struct source_env *env)
{
        struct source *s = NULL;
        char err[512] = "";
        if (source_open(uri, env, &s, err, sizeof(err)) < 0)
                fail_msg("source_open %s: %s", uri, err);
        struct listed l = {0};
        assert_int_equal(source_list(s, on_listed, &l), 0);
        assert_false(l.called); /* never from inside the call */
        run();
        assert_true(l.called);
        source_free(s);
        return l;
}

static struct listed list_rel(const char *rel)
{
        char uri[512];
        snprintf(uri, sizeof(uri), "file://%s/%s", tmpdir, rel);
        struct source_env env = file_env();
        struct listed l = list_uri(uri, &env);
        if (l.err < 0)
                fail_msg("source_list %s: %s", uri, l.msg);
        return l;
}

static void test_file_list_prefix_is_a_string(void **state)
{
        (void)state;
        struct listed l = list_rel("log_data");
        assert_int_equal(l.n, 3);
        assert_string_equal(l.objs[0].key, "log_data/2018/11/2018-11-01-events.json");
        assert_string_equal(l.objs[1].key, "log_data/2018/11/2018-11-02-events.json");
        assert_string_equal(l.objs[2].key, "log_data_old/x.json");
        char want[512];
        snprintf(want, sizeof(want), "file://%s/log_data/2018/11/2018-11-01-events.json", tmpdir);
        assert_string_equal(l.objs[0].uri, want);
        assert_int_equal(l.objs[0].size, 2);
        /* the tag is the mtime in ns */
        struct stat st;
        assert_int_equal(stat(want + strlen("file://"), &st), 0);
        char tag[64];
        snprintf(tag, sizeof(tag), "%lld%09ld", (long long)st.st_mtim.tv_sec,
                 (long)st.st_mtim.tv_nsec);
        assert_string_equal(l.objs[0].tag, tag);
        source_objects_free(l.objs, l.n);

        l = list_rel("log_data/");
        assert_int_equal(l.n, 2);
        source_objects_free(l.objs, l.n);

        /* byte order: "logA" < "log_..." < "logbook" */
        l = list_rel("log");
        assert_int_equal(l.n, 6);
        const char *keys[] = {"logA",
                              "log_data/2018/11/2018-11-01-events.json",
                              "log_data/2018/11/2018-11-02-events.json",
                              "log_data_old/x.json",
                              "log_json_path.json",
                              "logbook.txt"};
        for (size_t i = 0; i < 6; i++)
                assert_string_equal(l.objs[i].key, keys[i]);
        source_objects_free(l.objs, l.n);

        l = list_rel("log_data/2018/11/2018-11-02");
        assert_int_equal(l.n, 1);
        source_objects_free(l.objs, l.n);

        l = list_rel("nothing");
        assert_int_equal(l.n, 0);
        source_objects_free(l.objs, l.n);

        l = list_rel("");
        assert_int_equal(l.n, 7);
        source_objects_free(l.objs, l.n);

        /* a missing root is an empty bucket */
        l = list_rel("no/such/folder/x");
        assert_int_equal(l.n, 0);
        source_objects_free(l.objs, l.n);
}

static void test_open_errors(void **state)
{
        (void)state;
        char err[512] = "";
        struct source *s = NULL;
        struct source_env env = file_env();
        assert_int_equal(source_open("s3://bucket/log_data", &env, &s, err, sizeof(err)),
                         -EPROTONOSUPPORT);
        assert_non_null(strstr(err, "s3://bucket/log_data"));
        assert_int_equal(source_open("http://x/y", &env, &s, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "http://x/y"));
        assert_int_equal(source_open("file://host/y", &env, &s, err, sizeof(err)), -EINVAL);
        assert_null(s);
        source_free(NULL);
}

/* ---- streamed reads ---- */

struct consumer {
        struct source_read *rd;
        char *got;
        size_t len, cap;
        unsigned chunks, pauses;
        size_t max_chunk;
        bool pause_every_other; /* SOURCE_PAUSE on every other new chunk */
        bool resume_inside;     /* ... and resumes before returning */
        bool paused;            /* waiting for the resume timer */
        bool offered;           /* the pending chunk was refused once */
        size_t cancel_after;    /* source_read_cancel once this many bytes came (0: never) */
        bool cancel_inside;     /* ... from inside data() rather than from a timer */
        bool ended;
        int err;
        char msg[1024];
        uv_timer_t timer;
};

static void resume_cb(uv_timer_t *t)
{
        struct consumer *c = t->data;
        c->paused = false;
        if (c->cancel_after && c->len >= c->cancel_after) {
                source_read_cancel(c->rd);
                return;
        }
        source_read_resume(c->rd);
}

static int on_data(void *ud, const char *data, size_t len)
{
        struct consumer *c = ud;
        assert_false(c->ended);
        assert_false(c->paused); /* nothing comes while paused */
        assert_true(len > 0);
        if (c->pause_every_other && !c->offered && c->chunks % 2 == 0) {
                c->offered = true;
                c->pauses++;
                if (c->resume_inside) {
                        source_read_resume(c->rd); /* changed its mind at once */
                        return SOURCE_PAUSE;
                }
                c->paused = true;
                uv_timer_start(&c->timer, resume_cb, 1, 0);
                return SOURCE_PAUSE;
        }
        c->offered = false;
        c->chunks++;
        if (len > c->max_chunk)
                c->max_chunk = len;
        if (c->len + len > c->cap) {
                c->cap = (c->len + len) * 2;
                c->got = realloc(c->got, c->cap);
                assert_non_null(c->got);
        }
        memcpy(c->got + c->len, data, len);
        c->len += len;
        if (c->cancel_after && c->len >= c->cancel_after) {
                if (c->cancel_inside) {
                        source_read_cancel(c->rd);
                } else {
                        c->paused = true;
                        uv_timer_start(&c->timer, resume_cb, 1, 0);
                        return SOURCE_PAUSE;
                }
        }
        return 0;
}

static void on_end(void *ud, int err, const char *msg)
{
        struct consumer *c = ud;
        assert_false(c->ended);
        c->ended = true;
        c->err = err;
        snprintf(c->msg, sizeof(c->msg), "%s", msg);
        uv_close((uv_handle_t *)&c->timer, NULL);
}

static void consumer_init(struct consumer *c)
{
        memset(c, 0, sizeof(*c));
        assert_int_equal(uv_timer_init(&loop, &c->timer), 0);
        c->timer.data = c;
}

static struct source_read_cb consumer_cb(struct consumer *c)
{
        return (struct source_read_cb){.data = on_data, .end = on_end, .ud = c};
}

static void check_pattern(const struct consumer *c, size_t n)
{
        assert_int_equal(c->len, n);
        for (size_t i = 0; i < n; i++)
                if (c->got[i] != pat(i))
                        fail_msg("byte %zu is '%c', not '%c'", i, c->got[i], pat(i));
}

/* Reads the single object at uri with c; runs the loop to the end. */
static void read_uri(const char *uri, const struct source_env *env, struct consumer *c)
{
        char err[512] = "";
        struct source_read_cb cb = consumer_cb(c);
        if (source_read_uri(uri, 0, env, &cb, &c->rd, err, sizeof(err)) < 0)
                fail_msg("source_read_uri %s: %s", uri, err);
        assert_false(c->ended);
        run();
        assert_true(c->ended);
}

/* Reads the pattern object of n bytes at uri with a consumer that pauses on
 * every other chunk (and resumes from a timer, or from inside data() before
 * returning SOURCE_PAUSE); every byte must come once, in order.  The
 * pauses. */
static unsigned read_pausing(const char *uri, const struct source_env *env, size_t n,
                             bool resume_inside)
{
        struct consumer c;
        consumer_init(&c);
        c.pause_every_other = true;
        c.resume_inside = resume_inside;
        read_uri(uri, env, &c);
        if (c.err < 0)
                fail_msg("%s", c.msg);
        check_pattern(&c, n);
        free(c.got);
        return c.pauses;
}

/* Cancels a read of an object of n bytes (n > paused_at) twice: from a
 * timer while paused once paused_at bytes came, then from inside data()
 * after the first chunk.  Both end -ECANCELED with what came intact. */
static void check_read_cancels(const char *uri, const struct source_env *env, size_t paused_at,
                               size_t n)
{
        struct consumer c;
        consumer_init(&c);
        c.cancel_after = paused_at;
        read_uri(uri, env, &c);
        assert_int_equal(c.err, -ECANCELED);
        assert_true(c.len >= paused_at && c.len < n);
        check_pattern(&c, c.len);
        free(c.got);

        consumer_init(&c);
        c.cancel_after = 1;
        c.cancel_inside = true;
        read_uri(uri, env, &c);
        assert_int_equal(c.err, -ECANCELED);
        assert_int_equal(c.chunks, 1);
        free(c.got);
}

static void test_file_read_pause_resume(void **state)
{
        (void)state;
        const size_t n = 5 * SOURCE_FILE_CHUNK + 12345;
        put_pattern("big/obj.bin", n);
        char uri[512];
        snprintf(uri, sizeof(uri), "file://%s/big/obj.bin", tmpdir);

        struct consumer c;
        consumer_init(&c);
        struct source_env env = file_env();
        read_uri(uri, &env, &c);
        assert_int_equal(c.err, 0);
        check_pattern(&c, n);
        assert_int_equal(c.chunks, 6);
        assert_int_equal(c.max_chunk, SOURCE_FILE_CHUNK);
        free(c.got);

        /* a consumer that pauses on every other chunk gets every byte once */
        assert_int_equal(read_pausing(uri, &env, n, false), 3);
        /* also one that resumes from inside data(), before returning SOURCE_PAUSE */
        assert_int_equal(read_pausing(uri, &env, n, true), 3);

        /* through a listed object of a source */
        snprintf(uri, sizeof(uri), "file://%s/big/", tmpdir);
        struct listed l = list_uri(uri, &env);
        assert_int_equal(l.n, 1);
        struct source *s = NULL;
        char err[256];
        assert_int_equal(source_open(uri, &env, &s, err, sizeof(err)), 0);
        consumer_init(&c);
        c.pause_every_other = true;
        struct source_read_cb cb = consumer_cb(&c);
        assert_int_equal(source_read(s, &l.objs[0], &cb, &c.rd), 0);
        source_objects_free(l.objs, l.n); /* the reader has its copy */
        run();
        assert_int_equal(c.err, 0);
        check_pattern(&c, n);
        free(c.got);
        source_free(s);

        /* an empty object: no data, end 0 */
        put_pattern("empty.bin", 0);
        snprintf(uri, sizeof(uri), "file://%s/empty.bin", tmpdir);
        consumer_init(&c);
        read_uri(uri, &env, &c);
        assert_int_equal(c.err, 0);
        assert_int_equal(c.chunks, 0);
}

static void test_file_read_cancel(void **state)
{
        (void)state;
        const size_t n = 8 * SOURCE_FILE_CHUNK;
        put_pattern("big/obj.bin", n);
        char uri[512];
        snprintf(uri, sizeof(uri), "file://%s/big/obj.bin", tmpdir);
        struct source_env env = file_env();

        struct consumer c;
        check_read_cancels(uri, &env, 2 * SOURCE_FILE_CHUNK, n);

        /* right after starting, and the whole source: reads and listings */
        struct source *s = NULL;
        char err[256];
        snprintf(uri, sizeof(uri), "file://%s/big/", tmpdir);
        assert_int_equal(source_open(uri, &env, &s, err, sizeof(err)), 0);
        struct consumer c2;
        consumer_init(&c);
        consumer_init(&c2);
        struct source_object obj = {.key = "big/obj.bin", .uri = "file:///the/uri"};
        struct source_read_cb cb = consumer_cb(&c), cb2 = consumer_cb(&c2);
        assert_int_equal(source_read(s, &obj, &cb, &c.rd), 0);
        assert_int_equal(source_read(s, &obj, &cb2, &c2.rd), 0);
        struct listed l = {0};
        assert_int_equal(source_list(s, on_listed, &l), 0);
        source_cancel(s);
        assert_false(c.ended || c2.ended || l.called); /* later, not inside the call */
        run();
        assert_int_equal(c.err, -ECANCELED);
        assert_int_equal(c2.err, -ECANCELED);
        assert_non_null(strstr(c.msg, "file:///the/uri"));
        assert_true(l.called);
        assert_int_equal(l.err, -ECANCELED);
        assert_null(l.objs);
        free(c.got);
        free(c2.got);
        /* and later calls are refused */
        assert_int_equal(source_read(s, &obj, &cb, &c.rd), -ECANCELED);
        assert_int_equal(source_list(s, on_listed, &l), -ECANCELED);
        source_free(s);
}

/* An object under a chunk comes in one data() call; pausing, resuming and
 * cancelling work on it as on a chunk of a larger one. */
static void test_file_read_whole(void **state)
{
        (void)state;
        const size_t n = 1000;
        put_pattern("small/obj.json", n);
        char uri[512];
        snprintf(uri, sizeof(uri), "file://%s/small/obj.json", tmpdir);
        struct source_env env = file_env();

        struct consumer c;
        consumer_init(&c);
        read_uri(uri, &env, &c);
        assert_int_equal(c.err, 0);
        check_pattern(&c, n);
        assert_int_equal(c.chunks, 1);
        free(c.got);

        /* refused once, offered again after a resume from a timer, then from inside data() */
        assert_int_equal(read_pausing(uri, &env, n, false), 1);
        assert_int_equal(read_pausing(uri, &env, n, true), 1);

        /* cancelled while paused on the only chunk, and from inside data() */
        consumer_init(&c);
        c.cancel_after = n;
        read_uri(uri, &env, &c);
        assert_int_equal(c.err, -ECANCELED);
        assert_int_equal(c.chunks, 1);
        assert_non_null(strstr(c.msg, uri));
        free(c.got);
        consumer_init(&c);
        c.cancel_after = 1;
        c.cancel_inside = true;
        read_uri(uri, &env, &c);
        assert_int_equal(c.err, -ECANCELED);
        assert_int_equal(c.chunks, 1);
        free(c.got);

        /* cancelled before the open job ends: no data at all */
        consumer_init(&c);
        char err[256] = "";
        struct source_read_cb cb = consumer_cb(&c);
        assert_int_equal(source_read_uri(uri, 0, &env, &cb, &c.rd, err, sizeof(err)), 0);
        source_read_cancel(c.rd);
        assert_false(c.ended);
        run();
        assert_int_equal(c.err, -ECANCELED);
        assert_int_equal(c.chunks, 0);

        /* many reads of one source in turn (the chunk buffers are reused) */
        snprintf(uri, sizeof(uri), "file://%s/small/", tmpdir);
        struct source *s = NULL;
        assert_int_equal(source_open(uri, &env, &s, err, sizeof(err)), 0);
        struct source_object obj = {.key = "obj.json", .uri = "file:///the/uri"};
        for (int i = 0; i < 40; i++) {
                consumer_init(&c);
                c.pause_every_other = i % 2 == 1;
                cb = consumer_cb(&c);
                assert_int_equal(source_read(s, &obj, &cb, &c.rd), 0);
                run();
                assert_int_equal(c.err, 0);
                check_pattern(&c, n);
                free(c.got);
        }
        source_free(s);
}

/* The size in a listing is a hint: the object read is the file as it is
 * when opened, shrunk, grown within a chunk or grown past one. */
static void test_file_read_stale_size(void **state)
{
        (void)state;
        put_pattern("stale/obj.json", 1000);
        char uri[512];
        snprintf(uri, sizeof(uri), "file://%s/stale/", tmpdir);
        struct source_env env = file_env();
        struct listed l = list_uri(uri, &env);
        assert_int_equal(l.n, 1);
        assert_int_equal(l.objs[0].size, 1000);
        struct source *s = NULL;
        char err[256];
        assert_int_equal(source_open(uri, &env, &s, err, sizeof(err)), 0);
        const size_t chunk = SOURCE_FILE_CHUNK;
        const size_t sizes[] = {300, 0, chunk * 3 / 4, chunk - 1, chunk, 3 * chunk + 7};
        const unsigned chunks[] = {1, 0, 1, 1, 1, 4};
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                put_pattern("stale/obj.json", sizes[i]);
                struct consumer c;
                consumer_init(&c);
                struct source_read_cb cb = consumer_cb(&c);
                assert_int_equal(source_read(s, &l.objs[0], &cb, &c.rd), 0);
                run();
                if (c.err < 0)
                        fail_msg("%zu bytes: %s", sizes[i], c.msg);
                check_pattern(&c, sizes[i]);
                assert_int_equal(c.chunks, chunks[i]);
                free(c.got);
        }
        source_objects_free(l.objs, l.n);
        source_free(s);

        /* a file longer than fstat says (0 for /proc's): read to its end */
        FILE *fp = fopen("/proc/version", "r");
        assert_non_null(fp);
        char want[4096];
        size_t wn = fread(want, 1, sizeof(want), fp);
        fclose(fp);
        assert_true(wn > 1);
        for (int pausing = 0; pausing < 2; pausing++) {
                struct consumer c;
                consumer_init(&c);
                c.pause_every_other = pausing;
                read_uri("file:///proc/version", &env, &c);
                if (c.err < 0)
                        fail_msg("%s", c.msg);
                assert_int_equal(c.len, wn);
                assert_memory_equal(c.got, want, wn);
                free(c.got);
        }
}

static void test_file_read_missing(void **state)
{
        (void)state;
        char uri[512];
        snprintf(uri, sizeof(uri), "file://%s/missing.json", tmpdir);
        struct consumer c;
        consumer_init(&c);
        struct source_env env = file_env();
        read_uri(uri, &env, &c);
        assert_int_equal(c.err, -ENOENT);
        assert_non_null(strstr(c.msg, uri));
        assert_int_equal(c.chunks, 0);

        /* a folder is not an object */
        snprintf(uri, sizeof(uri), "file://%s/log_data", tmpdir);
        consumer_init(&c);
        read_uri(uri, &env, &c);
        assert_int_equal(c.err, -EISDIR);
        assert_non_null(strstr(c.msg, uri));
}

/* ---- small whole reads ---- */

struct small {
        bool called;
        int err;
        char msg[1024];
        struct buf b;
};

static void on_small(void *ud, int err, const char *msg, struct buf *data)
{
        struct small *sm = ud;
        assert_false(sm->called);
        sm->called = true;
        sm->err = err;
        snprintf(sm->msg, sizeof(sm->msg), "%s", msg);
        if (err == 0) {
                assert_non_null(data);
                sm->b = *data; /* taken over */
        } else {
                assert_null(data);
        }
}

static struct small read_small(const char *uri, const struct source_env *env, size_t max)
{
        struct small sm = {0};
        char err[512] = "";
        if (source_read_small(uri, env, max, on_small, &sm, err, sizeof(err)) < 0)
                fail_msg("source_read_small %s: %s", uri, err);
        run();
        assert_true(sm.called);
        return sm;
}

static void test_file_read_small(void **state)
{
        (void)state;
        char uri[512];
        const char *text = "{\"jsonpaths\":[\"$.a\"]}";
        snprintf(uri, sizeof(uri), "file://%s/log_json_path.json", tmpdir);
        struct source_env env = file_env();
        struct small sm = read_small(uri, &env, SOURCE_SMALL_MAX);
        assert_int_equal(sm.err, 0);
        assert_string_equal(sm.b.data, text);
        assert_int_equal(sm.b.len, strlen(text));
        buf_free(&sm.b);

        /* exactly the cap is fine, one byte more is not */
        sm = read_small(uri, &env, strlen(text));
        assert_int_equal(sm.err, 0);
        buf_free(&sm.b);
        sm = read_small(uri, &env, strlen(text) - 1);
        assert_int_equal(sm.err, -EFBIG);
        assert_non_null(strstr(sm.msg, "is larger than 20 bytes"));
        assert_non_null(strstr(sm.msg, uri));

        /* larger than one chunk: stops at the cap */
        put_pattern("big/obj.bin", 3 * 256 * 1024);
        snprintf(uri, sizeof(uri), "file://%s/big/obj.bin", tmpdir);
        sm = read_small(uri, &env, 300 * 1024);
        assert_int_equal(sm.err, -EFBIG);

        /* empty */
        put_pattern("empty.bin", 0);
        snprintf(uri, sizeof(uri), "file://%s/empty.bin", tmpdir);
        sm = read_small(uri, &env, 10);
        assert_int_equal(sm.err, 0);
        assert_int_equal(sm.b.len, 0);
        assert_string_equal(sm.b.data, "");
        buf_free(&sm.b);

        /* missing: -ENOENT (a manifest's `mandatory` relies on it) */
        snprintf(uri, sizeof(uri), "file://%s/missing.json", tmpdir);
        sm = read_small(uri, &env, 10);
        assert_int_equal(sm.err, -ENOENT);
        assert_non_null(strstr(sm.msg, uri));

        /* a bad URI: refused at once, no callback */
        char err[256] = "";
        assert_int_equal(source_read_small("ftp://x/y", &env, 10, on_small, &sm, err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "ftp://x/y"));
}

/* ---- confinement ---- */

static void test_file_confined(void **state)
{
        (void)state;
        char allowed[512], err[512] = "", uri[600];
        snprintf(allowed, sizeof(allowed), "%s/log_data", tmpdir);
        struct confine *roots = NULL;
        assert_int_equal(
            confine_new("daemon.data_roots", allowed, NULL, true, &roots, err, sizeof(err)), 0);
        struct source_env env = {.loop = &loop, .roots = roots};

        /* inside: listed and read */
        snprintf(uri, sizeof(uri), "file://%s/log_data/2018/", tmpdir);
        struct listed l = list_uri(uri, &env);
        assert_int_equal(l.err, 0);
        assert_int_equal(l.n, 2);
        source_objects_free(l.objs, l.n);
        snprintf(uri, sizeof(uri), "file://%s/log_data/2018/11/2018-11-01-events.json", tmpdir);
        struct small sm = read_small(uri, &env, 10);
        assert_int_equal(sm.err, 0);
        buf_free(&sm.b);

        /* outside: -EACCES naming the folder or the object */
        snprintf(uri, sizeof(uri), "file://%s/song_data/", tmpdir);
        l = list_uri(uri, &env);
        assert_int_equal(l.err, -EACCES);
        assert_non_null(strstr(l.msg, tmpdir));
        assert_null(l.objs);
        snprintf(uri, sizeof(uri), "file://%s/log_json_path.json", tmpdir);
        sm = read_small(uri, &env, 100);
        assert_int_equal(sm.err, -EACCES);
        assert_non_null(strstr(sm.msg, uri));

        /* a symlink inside that leads outside */
        char link[600], target[600];
        snprintf(link, sizeof(link), "%s/log_data/escape.json", tmpdir);
        snprintf(target, sizeof(target), "%s/log_json_path.json", tmpdir);
        assert_int_equal(symlink(target, link), 0);
        snprintf(uri, sizeof(uri), "file://%s/log_data/escape.json", tmpdir);
        struct consumer c;
        consumer_init(&c);
        read_uri(uri, &env, &c);
        assert_int_equal(c.err, -EACCES);
        assert_int_equal(c.chunks, 0);
        confine_free(roots);
}

/* ---- s3:// against s3rver (run by tests/integration/test_source_s3.py) ---- */

struct s3_fixture {
        struct http_mux *mux;
        struct s3_client *client;
        struct source_ctx *ctx;
        char bucket[64];
};

static struct s3_fixture S3;

static int setup_s3(void **state)
{
        (void)state;
        if (uv_loop_init(&loop) != 0)
                return -1;
        const char *ep = getenv("ETLD_TEST_S3_ENDPOINT");
        if (!ep)
                return 0;
        const char *b = getenv("ETLD_TEST_S3_BUCKET");
        snprintf(S3.bucket, sizeof(S3.bucket), "%s", b ? b : "source-test");
        struct sigv4_creds creds = {
            .access_key_id = getenv("AWS_ACCESS_KEY_ID"),
            .secret_access_key = getenv("AWS_SECRET_ACCESS_KEY"),
            .session_token = getenv("AWS_SESSION_TOKEN"),
        };
        if (!creds.access_key_id || !creds.secret_access_key) {
                fprintf(stderr, "test_source: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n");
                return -1;
        }
        if (http_mux_new(&loop, NULL, &S3.mux) < 0)
                return -1;
        struct s3_client_opts o = {.region = "us-east-1", .endpoint = ep, .path_style = true};
        o.retry.max_attempts = 5;
        o.retry.base_ms = 20;
        o.retry.cap_ms = 200;
        if (s3_client_new(S3.mux, &o, &creds, &S3.client) < 0)
                return -1;
        return source_s3_ctx_new(S3.client, &S3, &S3.ctx);
}

static int teardown_s3(void **state)
{
        (void)state;
        source_s3_ctx_free(S3.ctx);
        s3_client_free(S3.client);
        if (S3.mux)
                http_mux_close(S3.mux, NULL, NULL);
        run();
        int r = uv_loop_close(&loop);
        if (r != 0)
                fprintf(stderr, "uv_loop_close: %s\n", uv_strerror(r));
        return r == 0 ? 0 : -1;
}

static void need_s3(void)
{
        if (!S3.client)
                skip(); /* no ETLD_TEST_S3_ENDPOINT: run through test_source_s3.py */
}

struct op {
        unsigned outstanding, failed;
        char msg[1024];
};

static void op_done(struct s3_req *req, const struct s3_result *res, void *ud)
{
        (void)req;
        struct op *op = ud;
        op->outstanding--;
        if (res->err < 0 && !(res->err == -EEXIST)) {
                op->failed++;
                snprintf(op->msg, sizeof(op->msg), "%s", res->msg);
        }
}

/* Puts objects (body pattern of `size` bytes, or its own key when size is
 * 0) at `concurrency` at once. */
static void s3_put_many(const char *const *keys, size_t n, size_t size)
{
        char *body = malloc(size ? size : 1);
        assert_non_null(body);
        for (size_t i = 0; i < size; i++)
                body[i] = pat(i);
        struct op op = {0};
        struct s3_cb cb = {.done = op_done, .ud = &op};
        for (size_t i = 0; i < n; i++) {
                struct s3_put_opts po = {.data = size ? body : keys[i],
                                         .len = size ? size : strlen(keys[i])};
                assert_int_equal(s3_put_object(S3.client, S3.bucket, keys[i], &po, &cb, NULL), 0);
                op.outstanding++;
                while (op.outstanding >= 16)
                        uv_run(&loop, UV_RUN_ONCE);
        }
        while (op.outstanding)
                uv_run(&loop, UV_RUN_ONCE);
        free(body);
        if (op.failed)
                fail_msg("%u puts failed: %s", op.failed, op.msg);
}

static void s3_make_bucket(void)
{
        struct op op = {.outstanding = 1};
        struct s3_cb cb = {.done = op_done, .ud = &op};
        assert_int_equal(s3_create_bucket(S3.client, S3.bucket, NULL, &cb, NULL), 0);
        while (op.outstanding)
                uv_run(&loop, UV_RUN_ONCE);
        if (op.failed)
                fail_msg("CreateBucket %s: %s", S3.bucket, op.msg);
}

static struct source_env s3_env(void)
{
        return (struct source_env){.loop = &loop, .ctx = S3.ctx};
}

/* A bucket with one pattern object of n bytes at key; its URI in uri. */
static void s3_pattern_object(const char *key, size_t n, char *uri, size_t urilen)
{
        s3_make_bucket();
        s3_put_many(&key, 1, n);
        snprintf(uri, urilen, "s3://%s/%s", S3.bucket, key);
}

static void test_s3_list_pages(void **state)
{
        (void)state;
        need_s3();
        s3_make_bucket();
        /* 1100 keys: two ListObjectsV2 pages; put in an order unlike the
         * sorted one, plus keys that a folder-minded prefix would miss or
         * wrongly take */
        enum { N = 1100 };
        char **keys = calloc(N + 2, sizeof(*keys));
        assert_non_null(keys);
        for (size_t i = 0; i < N; i++)
                assert_true(asprintf(&keys[i], "many/%04zu.json", (i * 7919) % N) > 0);
        keys[N] = strdup("many_more/x.json");
        keys[N + 1] = strdup("man.json");
        s3_put_many((const char *const *)keys, N + 2, 0);

        char uri[128];
        snprintf(uri, sizeof(uri), "s3://%s/many", S3.bucket);
        struct source_env env = s3_env();
        struct listed l = list_uri(uri, &env);
        if (l.err < 0)
                fail_msg("%s", l.msg);
        assert_int_equal(l.n, N + 1);
        for (size_t i = 0; i < N; i++) {
                char want[64];
                snprintf(want, sizeof(want), "many/%04zu.json", i);
                assert_string_equal(l.objs[i].key, want);
                assert_int_equal(l.objs[i].size, strlen(want));
                assert_non_null(l.objs[i].tag);
                assert_true(l.objs[i].tag[0] == '"');
        }
        assert_string_equal(l.objs[N].key, "many_more/x.json");
        char want[128];
        snprintf(want, sizeof(want), "s3://%s/many_more/x.json", S3.bucket);
        assert_string_equal(l.objs[N].uri, want);
        source_objects_free(l.objs, l.n);
        for (size_t i = 0; i < N + 2; i++)
                free(keys[i]);
        free(keys);

        /* nothing under a prefix: an empty list */
        snprintf(uri, sizeof(uri), "s3://%s/nothing-here", S3.bucket);
        l = list_uri(uri, &env);
        assert_int_equal(l.err, 0);
        assert_int_equal(l.n, 0);
        source_objects_free(l.objs, l.n);

        /* a bucket that does not exist: an error naming the URI */
        snprintf(uri, sizeof(uri), "s3://no-such-bucket-here/x");
        l = list_uri(uri, &env);
        assert_true(l.err < 0);
        assert_non_null(strstr(l.msg, uri));
}

static void test_s3_read_pause_resume(void **state)
{
        (void)state;
        need_s3();
        const size_t n = 3 * 1024 * 1024 + 777;
        char uri[128];
        s3_pattern_object("obj/pattern.bin", n, uri, sizeof(uri));
        struct source_env env = s3_env();
        assert_true(read_pausing(uri, &env, n, false) > 1);

        /* small read, and a missing object: -ENOENT naming it */
        struct small sm = read_small(uri, &env, 1024);
        assert_int_equal(sm.err, -EFBIG);
        snprintf(uri, sizeof(uri), "s3://%s/obj/missing.json", S3.bucket);
        sm = read_small(uri, &env, 1024);
        assert_int_equal(sm.err, -ENOENT);
        assert_non_null(strstr(sm.msg, uri));
}

static void test_s3_read_cancel(void **state)
{
        (void)state;
        need_s3();
        const size_t n = 4 * 1024 * 1024;
        const char *key = "obj/cancel.bin";
        char uri[128];
        s3_pattern_object(key, n, uri, sizeof(uri));
        struct source_env env = s3_env();

        check_read_cancels(uri, &env, 64 * 1024, n);

        /* the whole job through the ctx's tag: reads end, later ones are refused */
        struct source *s = NULL;
        char err[256];
        assert_int_equal(source_open(uri, &env, &s, err, sizeof(err)), 0);
        struct consumer c2;
        consumer_init(&c2);
        struct source_read_cb cb2 = consumer_cb(&c2);
        struct source_object obj = {.key = (char *)key, .uri = uri};
        assert_int_equal(source_read(s, &obj, &cb2, &c2.rd), 0);
        uv_run(&loop, UV_RUN_NOWAIT);
        source_s3_ctx_cancel(S3.ctx);
        run();
        assert_int_equal(c2.err, -ECANCELED);
        assert_true(c2.len < n);
        free(c2.got);
        assert_int_equal(source_read(s, &obj, &cb2, &c2.rd), -ECANCELED);
        source_free(s);
        /* a cancelled context stays so: the next tests get a fresh one */
        source_s3_ctx_free(S3.ctx);
        assert_int_equal(source_s3_ctx_new(S3.client, &S3, &S3.ctx), 0);
}

/* test_source_s3.py cuts GET .../drop.bin twice mid-body: the S3 client
 * resumes with Range and If-Match, and the consumer sees each byte once. */
static void test_s3_dropped_transfer(void **state)
{
        (void)state;
        need_s3();
        if (!getenv("ETLD_TEST_S3_DROPS"))
                skip();
        const size_t n = 3 * 1024 * 1024;
        char uri[128];
        s3_pattern_object("drop.bin", n, uri, sizeof(uri));
        struct source_env env = s3_env();
        assert_true(read_pausing(uri, &env, n, false) > 1);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_tree, teardown_tree)
        const struct CMUnitTest file_tests[] = {
            T(test_file_list_prefix_is_a_string),
            T(test_open_errors),
            T(test_file_read_pause_resume),
            T(test_file_read_cancel),
            T(test_file_read_whole),
            T(test_file_read_stale_size),
            T(test_file_read_missing),
            T(test_file_read_small),
            T(test_file_confined),
        };
        const struct CMUnitTest s3_tests[] = {
            cmocka_unit_test(test_s3_list_pages),
            cmocka_unit_test(test_s3_read_pause_resume),
            cmocka_unit_test(test_s3_read_cancel),
            cmocka_unit_test(test_s3_dropped_transfer),
        };
        int r = cmocka_run_group_tests_name("file", file_tests, NULL, NULL);
        r += cmocka_run_group_tests_name("s3", s3_tests, setup_s3, teardown_s3);
        return r;
}
