/* test_load_flow.c - the COPY pipeline's flow control against a warehouse
 * that takes its time: this file is the warehouse (wh.h's bulk insert,
 * answered from a timer of the test's loop, or held back while paused),
 * so the test sees every batch the load hands over.  A paused warehouse
 * stops the reading at a bound set by configuration, whatever the data
 * size; a slow one gets every row in key order, in batches of exactly
 * batch_rows rows but the last. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testfs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "load/load.h"
#include "util.h"

/* ---- the warehouse ------------------------------------------------------- */

enum op_kind { OP_COLUMNS, OP_BEGIN, OP_ROWS, OP_END };

struct op {
        enum op_kind kind;
        wh_cb cb;
        void *ud;
};

#define MAX_OPS 16

static struct fake {
        uv_timer_t timer;
        struct op ops[MAX_OPS];
        size_t n_ops;
        bool paused;
        unsigned delay_ms;
        /* what came */
        int64_t next_id; /* rows must come with ids 0, 1, 2... */
        bool out_of_order;
        size_t batches, last_batch, odd_batches; /* batches not of batch_rows rows */
        size_t first_batch;                      /* its rows */
        size_t batch_rows;
        uint64_t rows;
        size_t max_queued_ops;
        bool uri_ok;        /* the object column holds the object's URI */
        int64_t per_object; /* rows per object: which object an id is in */
} wh_fake;

static uv_loop_t loop;

static void deliver(uv_timer_t *t);

static void schedule(void)
{
        if (!wh_fake.paused && wh_fake.n_ops)
                uv_timer_start(&wh_fake.timer, deliver, wh_fake.delay_ms, 0);
}

static void deliver(uv_timer_t *t)
{
        (void)t;
        if (wh_fake.paused || wh_fake.n_ops == 0)
                return;
        struct op op = wh_fake.ops[0];
        memmove(wh_fake.ops, wh_fake.ops + 1, --wh_fake.n_ops * sizeof(op));
        struct wh_result res = {.msg = ""};
        json_t *cols = NULL;
        if (op.kind == OP_COLUMNS) {
                cols = json_pack("[[ss][ss][ss]]", "id", "BIGINT", "name", "VARCHAR(256)", "src",
                                 "VARCHAR(512)");
                res.rows = cols;
        }
        if (op.kind == OP_END)
                res.count = wh_fake.rows;
        op.cb(NULL, &res, op.ud);
        json_decref(cols);
        schedule();
}

static int queue(enum op_kind kind, wh_cb cb, void *ud)
{
        assert_true(wh_fake.n_ops < MAX_OPS);
        wh_fake.ops[wh_fake.n_ops++] = (struct op){kind, cb, ud};
        if (wh_fake.n_ops > wh_fake.max_queued_ops)
                wh_fake.max_queued_ops = wh_fake.n_ops;
        schedule();
        return 0;
}

int wh_columns(struct wh *w, const char *table, wh_cb cb, void *ud)
{
        (void)w;
        assert_string_equal(table, "t");
        return queue(OP_COLUMNS, cb, ud);
}

int wh_copy_begin(struct wh *w, const char *table, const char *const *columns, size_t n, wh_cb cb,
                  void *ud)
{
        (void)w;
        assert_string_equal(table, "t");
        assert_int_equal(n, 3);
        assert_string_equal(columns[2], "src");
        return queue(OP_BEGIN, cb, ud);
}

int wh_copy_rows(struct wh *w, const struct wh_rows *rows, wh_cb cb, void *ud)
{
        (void)w;
        assert_int_equal(rows->n_cols, 3);
        /* a batch short of batch_rows is only allowed as the last one */
        if (wh_fake.last_batch && wh_fake.last_batch != wh_fake.batch_rows)
                wh_fake.odd_batches++;
        wh_fake.last_batch = rows->n_rows;
        if (wh_fake.batches == 0)
                wh_fake.first_batch = rows->n_rows;
        wh_fake.batches++;
        for (size_t r = 0; r < rows->n_rows; r++) {
                const struct cell *c = rows->cells + r * 3;
                if (c[0].kind != CELL_INT || c[0].i != wh_fake.next_id)
                        wh_fake.out_of_order = true;
                wh_fake.next_id++;
                char want[32];
                snprintf(want, sizeof(want), "/%05lld.json",
                         (long long)(c[0].i / wh_fake.per_object));
                if (c[2].kind != CELL_TEXT || c[2].len < strlen(want) ||
                    memcmp(c[2].text + c[2].len - strlen(want), want, strlen(want)) != 0)
                        wh_fake.uri_ok = false;
        }
        wh_fake.rows += rows->n_rows;
        return queue(OP_ROWS, cb, ud);
}

int wh_copy_end(struct wh *w, wh_cb cb, void *ud)
{
        (void)w;
        return queue(OP_END, cb, ud);
}

/* ---- the test's side ----------------------------------------------------- */

static char dir[] = "/tmp/test_load_flow.XXXXXX";
static struct load *running;
static bool finished;
static int result;
static char message[1024];
static struct load_stats last;

static void on_done(void *userdata, int r, const char *msg)
{
        (void)userdata;
        load_stats(running, &last);
        running = NULL;
        finished = true;
        result = r;
        util_setf(message, sizeof(message), "%s", msg);
}

/* objects of `rows` records each; ids 0, 1, 2... across them */
/* objects files of rows records each, with a name of pad bytes more. */
static uint64_t make_objects_pad(const char *sub, int objects, int rows, int pad)
{
        wh_fake.per_object = rows;
        uint64_t total = 0;
        for (int o = 0; o < objects; o++) {
                struct buf b = {0};
                for (int i = 0; i < rows; i++)
                        buf_printf(&b, "{\"id\": %d, \"name\": \"r%06d%0*d\", \"pad\": \"%s\"}\n",
                                   o * rows + i, i, pad, 0, "..................................");
                char rel[64];
                snprintf(rel, sizeof(rel), "%s/%05d.json", sub, o);
                testfs_put(dir, rel, b.data, b.len);
                total += b.len;
                buf_free(&b);
        }
        return total;
}

static uint64_t make_objects(const char *sub, int objects, int rows)
{
        return make_objects_pad(sub, objects, rows, 0);
}

static void start(const char *sub, unsigned concurrency, size_t batch_rows,
                  struct load_progress *pr, struct load_request *req, char *stmt, size_t len)
{
        snprintf(stmt, len, "COPY t FROM 'file://%s/%s/' JSON 'auto'", dir, sub);
        *req = (struct load_request){
            .statement = stmt,
            .wh = (struct wh *)&wh_fake, /* never looked into: this file is the warehouse */
            .loop = &loop,
            .progress = pr,
            .concurrency = concurrency,
            .batch_rows = batch_rows,
            .object_column = "src",
        };
        wh_fake.paused = false;
        wh_fake.next_id = 0;
        wh_fake.out_of_order = false;
        wh_fake.batches = wh_fake.last_batch = wh_fake.odd_batches = 0;
        wh_fake.rows = 0;
        wh_fake.max_queued_ops = 0;
        wh_fake.uri_ok = true;
        wh_fake.batch_rows = batch_rows ? batch_rows : 512;
        finished = false;
        assert_int_equal(load_start(req, on_done, &running), 0);
}

/* Runs the loop until nothing moves for a while: no job runs, and neither
 * the bytes read nor the rows waiting change. */
static void run_until_still(const struct load_progress *pr)
{
        uint64_t seen = UINT64_MAX;
        size_t seen_queued = SIZE_MAX;
        int still = 0;
        while (still < 20 && !finished) {
                struct load_stats st;
                load_stats(running, &st);
                uv_run(&loop, st.jobs ? UV_RUN_ONCE : UV_RUN_NOWAIT);
                if (finished)
                        break;
                load_stats(running, &st);
                uint64_t now = atomic_load(&pr->bytes);
                if (st.jobs == 0 && now == seen && st.bytes_queued == seen_queued) {
                        still++;
                        uv_sleep(2);
                } else {
                        still = 0;
                }
                seen = now;
                seen_queued = st.bytes_queued;
        }
}

/* A paused warehouse: reading stops at the bound (what waits per object
 * read, plus the converted rows' cap), far below the data's size; once the
 * warehouse takes rows again every row arrives, in order. */
static void test_paused_warehouse_bounds_memory(void **state)
{
        (void)state;
        const unsigned conc = 4;
        const int objects = 16, rows = 40000; /* 16 x ~2.9 MB */
        uint64_t total = make_objects("big", objects, rows);
        struct load_progress pr = {0};
        struct load_request req;
        char stmt[512];
        wh_fake.paused = false;
        start("big", conc, 1000, &pr, &req, stmt, sizeof(stmt));
        /* let the set-up through, then hold every batch */
        while (wh_fake.batches == 0 && !finished)
                uv_run(&loop, UV_RUN_ONCE);
        wh_fake.paused = true;
        run_until_still(&pr);
        assert_false(finished);
        struct load_stats st;
        load_stats(running, &st);
        uint64_t read = atomic_load(&pr.bytes);
        /* per object read: 128 KiB waiting plus one 64 KiB read, twice (the
         * job's piece and the next); converted rows: 4 MiB, plus the first
         * object's 512 KiB, two batches' 1 MiB each and a chunk per job */
        size_t buffered_max = conc * 2 * ((128u << 10) + (64u << 10));
        size_t queued_max = (4u << 20) + (512u << 10) + (2u << 20) + (1u << 20);
        if (st.peak_buffered > buffered_max || st.peak_queued > queued_max)
                fail_msg("peaks: %zu buffered (max %zu), %zu queued (max %zu)", st.peak_buffered,
                         buffered_max, st.peak_queued, queued_max);
        assert_true(st.peak_objects_reading <= conc);
        if (read > total / 2)
                fail_msg("read %llu of %llu bytes with the warehouse paused",
                         (unsigned long long)read, (unsigned long long)total);
        wh_fake.paused = false;
        schedule();
        while (!finished)
                uv_run(&loop, UV_RUN_ONCE);
        if (result != 0)
                fail_msg("load: %d %s", result, message);
        assert_int_equal(wh_fake.rows, (uint64_t)objects * rows);
        assert_int_equal(atomic_load(&pr.rows), (uint64_t)objects * rows);
        assert_int_equal(atomic_load(&pr.bytes), total);
        assert_false(wh_fake.out_of_order);
        assert_true(wh_fake.uri_ok);
        assert_int_equal(wh_fake.odd_batches, 0);
        assert_true(wh_fake.max_queued_ops <= 2); /* two batches in flight at most */
        assert_int_equal(last.bytes_buffered, 0);
        assert_int_equal(last.bytes_queued, 0);
}

/* A slow warehouse (each batch answered after 1 ms): rows in key order, in
 * batches of 512 (batch_rows 0), whatever the concurrency. */
static void test_slow_warehouse_key_order(void **state)
{
        (void)state;
        const int objects = 9, rows = 1500;
        make_objects("slow", objects, rows);
        unsigned concs[] = {1, 3, 16};
        for (size_t k = 0; k < 3; k++) {
                struct load_progress pr = {0};
                struct load_request req;
                char stmt[512];
                start("slow", concs[k], 0, &pr, &req, stmt, sizeof(stmt));
                wh_fake.delay_ms = 1;
                while (!finished)
                        uv_run(&loop, UV_RUN_ONCE);
                if (result != 0)
                        fail_msg("load: %d %s", result, message);
                assert_int_equal(wh_fake.rows, (uint64_t)objects * rows);
                assert_false(wh_fake.out_of_order);
                assert_true(wh_fake.uri_ok);
                assert_int_equal(wh_fake.odd_batches, 0);
                assert_int_equal(wh_fake.batches, (objects * rows + 511) / 512);
                assert_int_equal(atomic_load(&pr.objects), (uint64_t)objects);
                assert_true(last.peak_objects_reading <= concs[k]);
                wh_fake.delay_ms = 0;
        }
}

/* Many objects of one row each (a song file is one): each row comes in a
 * chunk of its own, which a batch refers to until the warehouse took it, so
 * a batch goes once its chunks hold 1 MiB, not only at batch_rows rows;
 * a chunk gives back the room it did not fill.  Before both, 5000 rows of
 * such objects held about 11 MB. */
static void test_small_objects_batch_by_bytes(void **state)
{
        (void)state;
        const int objects = 6000;
        make_objects_pad("small", objects, 1, 200);
        struct load_progress pr = {0};
        struct load_request req;
        char stmt[512];
        start("small", 64, 5000, &pr, &req, stmt, sizeof(stmt));
        while (!finished)
                uv_run(&loop, UV_RUN_ONCE);
        if (result != 0)
                fail_msg("load: %d %s", result, message);
        assert_int_equal(wh_fake.rows, (uint64_t)objects);
        assert_false(wh_fake.out_of_order);
        assert_true(wh_fake.uri_ok);
        if (wh_fake.first_batch >= 5000 || last.peak_queued > ((size_t)3 << 20))
                fail_msg("first batch %zu rows, peak %zu bytes of rows waiting",
                         wh_fake.first_batch, last.peak_queued);
}

/* Cancel while the warehouse holds a batch: done waits for it, then ends
 * the insert, and comes with -ECANCELED. */
static void test_cancel_while_warehouse_holds_rows(void **state)
{
        (void)state;
        make_objects("hold", 3, 3000);
        struct load_progress pr = {0};
        struct load_request req;
        char stmt[512];
        start("hold", 2, 100, &pr, &req, stmt, sizeof(stmt));
        while (wh_fake.batches == 0 && !finished)
                uv_run(&loop, UV_RUN_ONCE);
        wh_fake.paused = true;
        run_until_still(&pr);
        load_cancel(running);
        for (int i = 0; i < 50; i++)
                uv_run(&loop, UV_RUN_NOWAIT);
        assert_false(finished); /* the warehouse still holds rows */
        wh_fake.paused = false;
        schedule();
        while (!finished)
                uv_run(&loop, UV_RUN_ONCE);
        assert_int_equal(result, -ECANCELED);
        assert_non_null(strstr(message, "COPY t: cancelled"));
        assert_true(wh_fake.rows < 9000);
        assert_int_equal(wh_fake.n_ops, 0);
}

static int setup(void **state)
{
        (void)state;
        if (!mkdtemp(dir) || uv_loop_init(&loop) != 0)
                return -1;
        uv_timer_init(&loop, &wh_fake.timer);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        uv_close((uv_handle_t *)&wh_fake.timer, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&loop) != 0)
                return -1;
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_paused_warehouse_bounds_memory),
            cmocka_unit_test(test_slow_warehouse_key_order),
            cmocka_unit_test(test_small_objects_batch_by_bytes),
            cmocka_unit_test(test_cancel_while_warehouse_holds_rows),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
