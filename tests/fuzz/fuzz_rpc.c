/* fuzz_rpc.c - etld's socket end to end: the server's line framing
 * (daemon/server.c, common/proto.h), request parsing, the dispatch of every
 * method (daemon/rpc.c), the job engine (daemon/engine.c) and the journal,
 * as one client drives them through a real Unix socket.
 *
 * Input: one byte choosing how many bytes the client writes at a time (1 to
 * 4096, as in systemd's fuzz-varlink), then what the client sends.  Each
 * input gets a fresh daemon: a journal and a socket in a new folder under
 * /dev/shm (else /tmp), the engine with etld's real pipeline table, and the
 * real server on its own libuv loop.
 *
 * The steps are this file's stand-ins (steps do I/O with the settings a
 * client chose: local files, AWS, a warehouse; a fuzzer must not): each
 * ends on a timer of 0 to 3 ms with an output, an event and, for `load`, a
 * load error quoting the job's settings, or fails naming one, so that
 * status, errors and watch replies carry client-chosen text.
 *
 * Checked besides memory safety and leaks: every line etld sends is a
 * JSON-RPC 2.0 object (a reply with an id and exactly one of result and
 * error, the error with a code and a message, or an event notification);
 * every job a submit created answers `status` and is in `list`, asked on a
 * second connection at the end (no byte may hide a job); and after the
 * client leaves, the
 * engine stops and the server and engine close every handle they opened
 * (uv_loop_close succeeds).
 *
 * ETLD_FUZZ_LOG=1 shows etld's log and the final check's replies. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "cfg.h"
#include "engine.h"
#include "fuzz.h"
#include "journal.h"
#include "log.h"
#include "rpc.h"
#include "server.h"
#include "step.h"
#include "util.h"

/* ---- the stand-in steps ---- */

struct fake_step {
        uv_timer_t timer;
        struct step_run *r;
};

static void fake_closed(uv_handle_t *h)
{
        free(h->data);
}

static void fake_fire(uv_timer_t *t)
{
        struct fake_step *f = t->data;
        struct step_run *r = f->r;
        uv_close((uv_handle_t *)&f->timer, fake_closed); /* frees f */
        r->step_data = NULL;
        if (step_cancelled(r)) {
                step_done(r, -ECANCELED, false, "cancelled");
                return;
        }
        const char *song = cfg_get(r->cfg, "s3", "song_data");
        const char *logs = cfg_get(r->cfg, "s3", "log_data");
        json_object_set_new(r->outputs, r->ops->name, json_string(song ? song : ""));
        json_array_append_new(r->events, json_string(logs ? logs : ""));
        if (strcmp(r->ops->name, "load") == 0)
                r->load_errors =
                    json_pack("[{s:s, s:I, s:s, s:s, s:i, s:s, s:s, s:i, s:s}]", "filename",
                              song ? song : "", "line_number", (json_int_t)1, "colname", "artist",
                              "type", "varchar", "position", 0, "raw_line", logs ? logs : "",
                              "raw_field_value", cfg_get(r->cfg, "iam", "role_name"), "err_code",
                              1204, "err_reason", "stand-in");
        if (strcmp(r->ops->name, "check") == 0)
                r->checks =
                    json_pack("[{s:s, s:b, s:s}]", "name", "fake", "ok",
                              cfg_get_bool(r->cfg, "stage", "dry_run"), "detail", song ? song : "");
        const char *fail = cfg_get(r->cfg, "network", "vpc_id");
        if (fail && strcmp(fail, r->ops->name) == 0) {
                /* as real steps do, the message quotes a setting, whole */
                step_done(r, -EINVAL, false,
                          "stand-in failure (network.vpc_id names this step) reading %s", song);
                return;
        }
        step_done(r, 0, false, NULL);
}

static int fake_start(struct step_run *r)
{
        struct fake_step *f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->r = r;
        uv_timer_init(r->loop, &f->timer);
        f->timer.data = f;
        r->step_data = f;
        uv_timer_start(&f->timer, fake_fire,
                       (uint64_t)(cfg_get_int(r->cfg, "load", "batch_rows") % 4), 0);
        return 0;
}

static void fake_cancel(struct step_run *r)
{
        struct fake_step *f = r->step_data;
        if (f) /* step_done comes from the timer, promptly */
                uv_timer_start(&f->timer, fake_fire, 0, 0);
}

#define FAKE_STEP(var, name)                                                                       \
        const struct step_ops var = {name, "stand-in of the fuzz harness", fake_start, fake_cancel}

/* The steps pipelines/pipelines.h declares; pipelines.c holds the table. */
FAKE_STEP(step_create_tables, "create-tables");
FAKE_STEP(step_load, "load");
FAKE_STEP(step_transform, "transform");
FAKE_STEP(step_check, "check");
FAKE_STEP(step_publish, "publish");
FAKE_STEP(step_create_bucket, "create-bucket");
FAKE_STEP(step_stage_copy, "copy");
FAKE_STEP(step_prov_role, "iam-role");
FAKE_STEP(step_prov_sg, "security-group");
FAKE_STEP(step_prov_subnet, "subnet-group");
FAKE_STEP(step_prov_cluster, "cluster");
FAKE_STEP(step_prov_attach, "attach-role");
FAKE_STEP(step_td_cluster, "delete-cluster");
FAKE_STEP(step_td_subnet, "delete-subnet-group");
FAKE_STEP(step_td_sg, "delete-security-group");
FAKE_STEP(step_td_role, "delete-role");
FAKE_STEP(step_td_bucket, "delete-bucket");

/* provision.c's, which this harness does not link: the same rule. */
void provision_followup(const struct cfg *c, struct pipeline_followup *ret);
void provision_followup(const struct cfg *c, struct pipeline_followup *ret)
{
        int64_t ms = cfg_get_duration_ms(c, "provision", "ttl");
        if (!ms || cfg_get_bool(c, "provision", "plan"))
                return;
        ret->pipeline = "teardown";
        ret->delay_ms = ms;
        snprintf(ret->why, sizeof(ret->why), "provision.ttl = %.64s",
                 cfg_get(c, "provision", "ttl"));
}

/* ---- the client ---- */

#define JOBS_MAX 256

struct client {
        int fd;
        struct buf in; /* what etld sent, not yet checked */
        bool closed;   /* etld closed the connection */
        size_t lines;
        int64_t jobs[JOBS_MAX]; /* the jobs submits created */
        size_t njobs;
        size_t answered; /* replies to the final check's requests */
};

/* A submit's result: {"job", "existing", "state"}. */
static void note_job(struct client *c, json_t *result)
{
        json_t *job = json_object_get(result, "job");
        if (!json_is_integer(job) || !json_object_get(result, "existing") || c->njobs == JOBS_MAX)
                return;
        for (size_t i = 0; i < c->njobs; i++)
                if (c->jobs[i] == json_integer_value(job))
                        return;
        c->jobs[c->njobs++] = json_integer_value(job);
}

/* The final check's replies (ids "check-status-N", "check-list"). */
static void note_check(struct client *c, const char *id, json_t *result, json_t *error)
{
        if (getenv("ETLD_FUZZ_LOG")) {
                char *t = json_dumps(result ? result : error, JSON_COMPACT);
                fprintf(stderr, "fuzz_rpc: %s: %.300s\n", id, t ? t : "(null)");
                free(t);
        }
        FUZZ_CHECK(result, "%s: etld answers %s", id,
                   json_string_value(json_object_get(error, "message")));
        if (strcmp(id, "check-list") == 0) {
                json_t *jobs = json_object_get(result, "jobs");
                for (size_t i = 0; i < c->njobs; i++) {
                        bool listed = false;
                        size_t k;
                        json_t *v;
                        json_array_foreach(jobs, k, v)
                        {
                                if (json_integer_value(json_object_get(v, "id")) == c->jobs[i])
                                        listed = true;
                        }
                        FUZZ_CHECK(listed, "job %lld is missing from list", (long long)c->jobs[i]);
                }
        }
        c->answered++;
}

static void check_line(struct client *c, const char *line, size_t len)
{
        json_error_t jerr;
        json_t *msg = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
        FUZZ_CHECK(json_is_object(msg), "etld sent a line that is not a JSON object (%s): %.*s",
                   jerr.text, (int)(len > 300 ? 300 : len), line);
        FUZZ_CHECK(json_is_string(json_object_get(msg, "jsonrpc")) &&
                       strcmp(json_string_value(json_object_get(msg, "jsonrpc")), "2.0") == 0,
                   "a line without \"jsonrpc\": \"2.0\"");
        json_t *method = json_object_get(msg, "method");
        if (method) {
                FUZZ_CHECK(json_is_string(method) &&
                               strcmp(json_string_value(method), "event") == 0,
                           "etld sent a request");
                json_t *params = json_object_get(msg, "params");
                FUZZ_CHECK(json_is_integer(json_object_get(params, "job")) &&
                               json_is_string(json_object_get(params, "kind")),
                           "an event without job and kind: %.*s", (int)len, line);
        } else {
                json_t *result = json_object_get(msg, "result");
                json_t *error = json_object_get(msg, "error");
                FUZZ_CHECK(json_object_get(msg, "id") != NULL, "a reply without an id");
                FUZZ_CHECK((result != NULL) != (error != NULL),
                           "a reply needs exactly one of result and error: %.*s", (int)len, line);
                if (error)
                        FUZZ_CHECK(json_is_integer(json_object_get(error, "code")) &&
                                       json_is_string(json_object_get(error, "message")),
                                   "an error without code or message: %.*s", (int)len, line);
                const char *id = json_string_value(json_object_get(msg, "id"));
                if (id && strncmp(id, "check-", 6) == 0)
                        note_check(c, id, result, error);
                else
                        note_job(c, result);
        }
        json_decref(msg);
}

/* Reads what etld sent; returns the number of bytes read. */
static size_t drain(struct client *c)
{
        size_t total = 0;
        while (!c->closed) {
                char b[65536];
                ssize_t n = read(c->fd, b, sizeof(b));
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        break;
                if (n <= 0) {
                        c->closed = true;
                        break;
                }
                FUZZ_CHECK(buf_append(&c->in, b, (size_t)n) == 0, "out of memory");
                total += (size_t)n;
        }
        if (!c->in.data)
                return total;
        char *start = c->in.data, *end = c->in.data + c->in.len, *nl;
        while ((nl = memchr(start, '\n', (size_t)(end - start))) != NULL) {
                check_line(c, start, (size_t)(nl - start));
                c->lines++;
                start = nl + 1;
        }
        if (start != c->in.data) {
                memmove(c->in.data, start, (size_t)(end - start));
                c->in.len = (size_t)(end - start);
        }
        return total;
}

/* A non-blocking connection to etld's socket. */
static int client_connect(const char *path)
{
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        FUZZ_CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
                   "connect to %s: %s", path, strerror(errno));
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        return fd;
}

/* Every job a submit created answers status and is in list, asked on a
 * connection of its own after the fuzzed one is done. */
static void final_check(uv_loop_t *loop, const char *spath, const struct client *c)
{
        if (c->njobs == 0)
                return;
        struct client k = {.fd = client_connect(spath)};
        memcpy(k.jobs, c->jobs, c->njobs * sizeof(c->jobs[0]));
        k.njobs = c->njobs;
        struct buf out = {0};
        for (size_t i = 0; i < c->njobs; i++)
                buf_printf(&out,
                           "{\"jsonrpc\":\"2.0\",\"method\":\"status\",\"params\":{\"job\":%lld},"
                           "\"id\":\"check-status-%lld\"}\n",
                           (long long)c->jobs[i], (long long)c->jobs[i]);
        buf_printf(&out, "{\"jsonrpc\":\"2.0\",\"method\":\"list\",\"params\":{\"limit\":"
                         "100000},\"id\":\"check-list\"}\n");
        FUZZ_CHECK(out.data, "out of memory");
        size_t off = 0;
        uint64_t t0 = util_now_mono_ms();
        while (k.answered < c->njobs + 1 && !k.closed && util_now_mono_ms() - t0 < 5000) {
                if (off < out.len) {
                        ssize_t n = write(k.fd, out.data + off, out.len - off);
                        if (n > 0)
                                off += (size_t)n;
                }
                uv_run(loop, UV_RUN_NOWAIT);
                if (drain(&k) == 0) {
                        struct pollfd p = {.fd = k.fd, .events = POLLIN};
                        poll(&p, 1, 1);
                }
        }
        FUZZ_CHECK(k.answered == c->njobs + 1, "%zu of %zu checks answered", k.answered,
                   c->njobs + 1);
        close(k.fd);
        buf_free(&out);
        buf_free(&k.in);
}

/* ---- one daemon per input ---- */

static bool stopped;

static void on_stopped(void *userdata)
{
        stopped = true;
}

static void remove_tree(const char *dir)
{
        static const char *const leaves[] = {"journal.db",         "journal.db-wal",
                                             "journal.db-shm",     "journal.db-journal",
                                             "journal.db.created", "journal.db.lock",
                                             "s"};
        char path[256];
        for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, leaves[i]);
                unlink(path);
        }
        FUZZ_CHECK(rmdir(dir) == 0, "cannot remove %s: %s (a file the harness did not expect)", dir,
                   strerror(errno));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        signal(SIGPIPE, SIG_IGN);
        log_set_level(getenv("ETLD_FUZZ_LOG") ? LOG_DEBUG : LOG_ERR - 1);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        static const size_t chunks[] = {1, 2, 3, 7, 13, 64, 143, 512, 4096, 65536};
        size_t chunk = chunks[data[0] % (sizeof(chunks) / sizeof(chunks[0]))];
        data++;
        size--;

        struct stat st;
        char dir[64];
        snprintf(dir, sizeof(dir), "%s/etld-fuzz-rpc-XXXXXX",
                 stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp");
        FUZZ_CHECK(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
        char jpath[96], spath[96], err[512] = "";
        snprintf(jpath, sizeof(jpath), "%s/journal.db", dir);
        snprintf(spath, sizeof(spath), "%s/s", dir);

        uv_loop_t loop;
        FUZZ_CHECK(uv_loop_init(&loop) == 0, "uv_loop_init");
        struct journal *j = NULL;
        FUZZ_CHECK(journal_open(jpath, JOURNAL_OPEN_NEW, &j, err, sizeof(err)) == 0, "journal_open: %s", err);
        struct cfg *base = cfg_new();
        FUZZ_CHECK(base && cfg_set(base, "daemon.state_dir", dir, err, sizeof(err)) == 0, "cfg: %s",
                   err);
        struct engine *e = NULL;
        FUZZ_CHECK(engine_new(&loop, j, base, dir, NULL, &e) == 0, "engine_new");
        struct rpc_env env = {.engine = e, .journal = j, .started_mono_ms = util_now_mono_ms()};
        struct server *srv = NULL;
        FUZZ_CHECK(server_new(&loop, &env, &srv) == 0, "server_new");
        FUZZ_CHECK(server_listen_path(srv, spath, err, sizeof(err)) == 0, "listen: %s", err);
        FUZZ_CHECK(engine_recover(e) == 0, "engine_recover");

        struct client c = {.fd = client_connect(spath)};

        /* Send the input a chunk at a time, letting etld run in between. */
        for (size_t off = 0; off < size && !c.closed;) {
                size_t k = size - off < chunk ? size - off : chunk;
                ssize_t n = write(c.fd, data + off, k);
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                        break; /* etld hung up */
                if (n > 0)
                        off += (size_t)n;
                uv_run(&loop, UV_RUN_NOWAIT);
                drain(&c);
        }
        /* Until the jobs have ended and nothing more comes (the engine's own
         * timers do not keep the loop alive; a provision ttl's teardown waits
         * in the queue and is not waited for). */
        uint64_t t0 = util_now_mono_ms();
        for (int quiet = 0; quiet < 3 && !c.closed && util_now_mono_ms() - t0 < 5000;) {
                unsigned running, queued;
                engine_counts(e, &running, &queued);
                uv_run(&loop, running ? UV_RUN_ONCE : UV_RUN_NOWAIT);
                quiet = drain(&c) == 0 && running == 0 ? quiet + 1 : 0;
        }
        if (getenv("ETLD_FUZZ_LOG"))
                fprintf(stderr, "fuzz_rpc: %zu lines from etld\n", c.lines);
        final_check(&loop, spath, &c);
        /* The client leaves; etld stops as on SIGTERM (main.c's order). */
        close(c.fd);
        for (int i = 0; i < 4; i++)
                uv_run(&loop, UV_RUN_NOWAIT);
        stopped = false;
        server_stop_listening(srv);
        engine_stop(e, on_stopped, NULL);
        for (uint64_t t1 = util_now_mono_ms(); !stopped && util_now_mono_ms() - t1 < 5000;)
                uv_run(&loop, UV_RUN_ONCE);
        FUZZ_CHECK(stopped, "the engine did not stop within 5 s");
        server_free(srv);
        e = engine_free(e);
        uv_run(&loop, UV_RUN_DEFAULT);
        int rc = uv_loop_close(&loop);
        FUZZ_CHECK(rc == 0, "handles left open at exit: %s", uv_strerror(rc));
        j = journal_close(j);
        cfg_free(base);
        buf_free(&c.in);
        remove_tree(dir);
        return 0;
}
