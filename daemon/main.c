/* main.c - etld's process shell: arguments, configuration, the state
 * directory, signals, systemd readiness, and the loop.  Everything else
 * lives in its own module: journal (the memory), engine (the jobs), server
 * and rpc (the socket), the pipelines' steps.  One thread runs the one loop:
 * every connection (the socket's clients, HTTP, libpq) is I/O on it, and
 * libuv's thread pool only computes or runs short blocking calls that never
 * wait on the loop (the SQLite warehouse, reading credentials and files). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <uv.h>

#include "authz.h"
#include "aws/http.h"
#include "cfg.h"
#include "engine.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "rpc.h"
#include "server.h"
#include "util.h"

#define DEFAULT_CONFIG ETLD_SYSCONFDIR "/etld/etld.conf" /* meson.build: the build's sysconfdir */

struct daemon {
        uv_loop_t *loop;
        const char *config_path;
        bool config_explicit;
        char **overrides; /* --set, applied on top of the file, also on reload */
        size_t noverrides;
        struct cfg *cfg;
        char *state_dir;
        struct journal *journal;
        struct engine *engine;
        struct http_mux *http; /* AWS calls of the steps; closed after the engine */
        struct server *server;
        struct rpc_env env;
        uv_signal_t sigterm, sigint, sighup;
        uv_timer_t watchdog;
        bool watchdog_on;
        uv_timer_t retention; /* daemon.keep_jobs, daemon.keep_days */
        char *log_path;       /* detached: etld.log, reopened on SIGHUP */
        int ready_fd; /* pipe to the waiting parent when daemonized */
        bool new_journal; /* --new-journal */
};

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: etld [OPTIONS]\n"
                "Runs the Sparkify ETL as resumable jobs; etlctl talks to it.\n\n"
                "  -c, --config FILE      configuration file (default " DEFAULT_CONFIG
                ", if it exists)\n"
                "  -s, --socket PATH      Unix socket to listen on (overrides $ETLD_SOCKET and\n"
                "                         [daemon] socket)\n"
                "  -d, --state-dir DIR    journal and default warehouse (overrides [daemon] "
                "state_dir)\n"
                "  -S, --set SECTION.KEY=VALUE\n"
                "                         override a configuration key (repeatable)\n"
                "  -f, --foreground       stay in the foreground, log to stderr (for systemd)\n"
                "      --new-journal      start with an empty job list when the journal is\n"
                "                         missing or empty although the state directory had\n"
                "                         one (STATE_DIR/journal.db.created); refused otherwise\n"
                "  -h, --help             this text\n"
                "  -V, --version          print the version\n\n"
                "Without --foreground etld detaches once it is ready and logs to\n"
                "STATE_DIR/etld.log.  Signals: SIGTERM/SIGINT stop (running steps resume\n"
                "at the next start), SIGHUP re-reads the configuration and, when\n"
                "detached, reopens STATE_DIR/etld.log (for logrotate without\n"
                "copytruncate).\n");
}

/* Reads the configuration file and the --set overrides into a new cfg. */
static int load_config(struct daemon *d, struct cfg **ret, char *err, size_t errlen)
{
        struct cfg *c = cfg_new();
        if (!c)
                return -ENOMEM;
        int r = 0;
        if (d->config_explicit || access(d->config_path, F_OK) == 0)
                r = cfg_load_file(c, d->config_path, err, errlen);
        for (size_t i = 0; r == 0 && i < d->noverrides; i++) {
                char msg[512];
                r = cfg_set_assignment(c, d->overrides[i], msg, sizeof(msg));
                if (r < 0)
                        snprintf(err, errlen, "--set %s: %s", d->overrides[i], msg);
        }
        int level = log_level_from_name(cfg_get(c, "daemon", "log_level"));
        if (r == 0 && level < 0) {
                snprintf(err, errlen, "daemon.log_level: '%s' is not error, warning, info or debug",
                         cfg_get(c, "daemon", "log_level"));
                r = -EINVAL;
        }
        if (r < 0) {
                cfg_free(c);
                return r;
        }
        log_set_level(level);
        *ret = c;
        return 0;
}

static void status_changed(void *userdata)
{
        struct daemon *d = userdata;
        unsigned running, queued;
        engine_counts(d->engine, &running, &queued);
        char msg[128];
        snprintf(msg, sizeof(msg), "STATUS=%u job%s running, %u queued", running,
                 running == 1 ? "" : "s", queued);
        notify_send(msg);
        const char *mfile = cfg_get(d->cfg, "daemon", "metrics_file");
        if (mfile && *mfile) {
                struct buf b = { 0 };
                char err[512];
                if (metrics_text(d->journal, running, queued, &b) == 0 &&
                    metrics_write_file(mfile, b.data ? b.data : "", err, sizeof(err)) < 0)
                        log_warning("etld", "%s", err);
                buf_free(&b);
        }
}

static void close_cb(uv_handle_t *h)
{
}

static void stopped(void *userdata)
{
        struct daemon *d = userdata;
        server_free(d->server);
        d->server = NULL;
        d->engine = engine_free(d->engine);
        /* No step runs any more, so no transfer is ours: close the HTTP
         * engine (its handles close on this loop). */
        http_mux_close(d->http, NULL, NULL);
        d->http = NULL;
        uv_close((uv_handle_t *)&d->sigterm, close_cb);
        uv_close((uv_handle_t *)&d->sigint, close_cb);
        uv_close((uv_handle_t *)&d->sighup, close_cb);
        if (d->watchdog_on)
                uv_close((uv_handle_t *)&d->watchdog, close_cb);
        uv_close((uv_handle_t *)&d->retention, close_cb);
        log_info("etld", "stopped");
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
        struct daemon *d = h->data;
        if (d->env.stopping)
                return;
        log_info("etld", "%s: stopping; running steps will resume at the next start",
                 strsignal(signum));
        notify_send("STOPPING=1\nSTATUS=stopping");
        d->env.stopping = true;
        server_stop_listening(d->server);
        engine_stop(d->engine, stopped, d);
}

static void set_limits(struct daemon *d)
{
        server_set_limits(d->server, (unsigned)cfg_get_int(d->cfg, "daemon", "max_connections_per_uid"),
                          (uint64_t)cfg_get_duration_ms(d->cfg, "daemon", "idle_timeout"));
}

#define RETENTION_EVERY_MS (60 * 60 * 1000)

/* Retention, at start and every hour: finished jobs beyond daemon.keep_jobs
 * or older than daemon.keep_days go (journal_prune says which never do). */
static void on_retention(uv_timer_t *t)
{
        struct daemon *d = t->data;
        int keep_jobs = (int)cfg_get_int(d->cfg, "daemon", "keep_jobs");
        int keep_days = (int)cfg_get_int(d->cfg, "daemon", "keep_days");
        int n = journal_prune(d->journal, keep_jobs, keep_days, util_now_ms());
        if (n > 0)
                log_info("etld",
                         "retention: removed %d finished job%s from the journal "
                         "(daemon.keep_jobs = %d, daemon.keep_days = %d)",
                         n, n == 1 ? "" : "s", keep_jobs, keep_days);
        else if (n < 0)
                log_warning("etld", "retention: cannot prune the journal: %s", strerror(-n));
}

/* Detached: etld.log anew (logrotate moved the old one away). */
static void reopen_log(struct daemon *d)
{
        if (!d->log_path)
                return;
        int fd = open(d->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0) {
                log_error("etld", "cannot reopen %s: %s; logging on to the old file",
                          d->log_path, strerror(errno));
                return;
        }
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
        log_info("etld", "log reopened: %s", d->log_path);
}

static void on_hup(uv_signal_t *h, int signum)
{
        struct daemon *d = h->data;
        notify_send("RELOADING=1");
        reopen_log(d);
        struct cfg *c = NULL;
        char err[1024];
        struct authz *a = NULL;
        int r = load_config(d, &c, err, sizeof(err));
        if (r == 0)
                r = authz_new(c, d->state_dir, &a, err, sizeof(err));
        if (r < 0) {
                cfg_free(c);
                log_error("etld", "reload failed, keeping the running configuration: %s", err);
        } else {
                cfg_free(d->cfg);
                d->cfg = c;
                authz_free(d->env.authz);
                d->env.authz = a;
                set_limits(d);
                engine_set_config(d->engine, c);
                log_info("etld", "configuration reloaded from %s", d->config_path);
        }
        notify_send("READY=1");
}

static void on_watchdog(uv_timer_t *t)
{
        notify_send("WATCHDOG=1");
}

static int make_state_dir(const char *dir, char *err, size_t errlen)
{
        struct buf b = { 0 };
        buf_printf(&b, "%s", dir);
        if (!b.data)
                return -ENOMEM;
        for (char *p = b.data + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                mkdir(b.data, 0755);
                *p = '/';
        }
        buf_free(&b);
        if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
                snprintf(err, errlen, "cannot create state directory '%s': %s", dir,
                         strerror(errno));
                return -errno;
        }
        if (access(dir, W_OK) < 0) {
                snprintf(err, errlen, "state directory '%s' is not writable: %s", dir,
                         strerror(errno));
                return -errno;
        }
        return 0;
}

/* Detaches: the parent waits until the child is ready and exits with its
 * verdict, so `etld && etlctl ...` works in scripts. */
static int daemonize(struct daemon *d, const char *logpath)
{
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid > 0) {
                close(fds[1]);
                char ok = 0;
                ssize_t n = read(fds[0], &ok, 1);
                _exit(n == 1 && ok == 1 ? 0 : 1);
        }
        close(fds[0]);
        setsid();
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        int log = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        d->log_path = strdup(logpath);
        if (null >= 0)
                dup2(null, STDIN_FILENO);
        if (log >= 0) {
                dup2(log, STDOUT_FILENO);
                dup2(log, STDERR_FILENO);
        }
        d->ready_fd = fds[1];
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"socket", required_argument, NULL, 's'},
            {"state-dir", required_argument, NULL, 'd'},
            {"set", required_argument, NULL, 'S'},
            {"foreground", no_argument, NULL, 'f'},
            {"new-journal", no_argument, NULL, 'N'},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},
            {NULL, 0, NULL, 0},
        };
        struct daemon d = { .config_path = DEFAULT_CONFIG, .ready_fd = -1 };
        /* One malloc arena for every thread, not glibc's one per thread: the
         * pool's jobs allocate what the loop frees (a COPY's chunks of rows),
         * so per-thread arenas each grow to their own peak and keep it (at
         * 100x the sample data: 41 MiB of RSS against 29 with one arena,
         * bench/etl.py).  MALLOC_ARENA_MAX in the environment still wins. */
        if (!getenv("MALLOC_ARENA_MAX"))
                mallopt(M_ARENA_MAX, 1);
        /* tests stand in for journald with a socket of their own */
        log_set_journal_socket(getenv("ETLD_JOURNAL_SOCKET"));
        const char *socket_opt = NULL, *state_opt = NULL;
        bool foreground = false;
        int o;
        while ((o = getopt_long(argc, argv, "c:s:d:S:fhV", opts, NULL)) != -1) {
                switch (o) {
                case 'c':
                        d.config_path = optarg;
                        d.config_explicit = true;
                        break;
                case 's':
                        socket_opt = optarg;
                        break;
                case 'd':
                        state_opt = optarg;
                        break;
                case 'S': {
                        char **p = realloc(d.overrides, (d.noverrides + 1) * sizeof(char *));
                        if (!p)
                                return 1;
                        d.overrides = p;
                        d.overrides[d.noverrides++] = optarg;
                        break;
                }
                case 'f':
                        foreground = true;
                        break;
                case 'N':
                        d.new_journal = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'V':
                        printf("etld %s\n", ETLD_VERSION);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "etld: unexpected argument '%s'\n", argv[optind]);
                usage(stderr);
                return 2;
        }

        char err[1024] = "";
        if (load_config(&d, &d.cfg, err, sizeof(err)) < 0) {
                fprintf(stderr, "etld: %s\n", err);
                return 1;
        }
        const char *socket_path = socket_opt ? socket_opt : getenv("ETLD_SOCKET");
        if (!socket_path || !*socket_path)
                socket_path = cfg_get(d.cfg, "daemon", "socket");
        if (state_opt) {
                char msg[256];
                cfg_set(d.cfg, "daemon.state_dir", state_opt, msg, sizeof(msg));
        }
        d.state_dir = realpath(cfg_get(d.cfg, "daemon", "state_dir"), NULL);
        if (!d.state_dir) {
                if (make_state_dir(cfg_get(d.cfg, "daemon", "state_dir"), err, sizeof(err)) < 0) {
                        fprintf(stderr, "etld: %s\n", err);
                        return 1;
                }
                d.state_dir = realpath(cfg_get(d.cfg, "daemon", "state_dir"), NULL);
        }
        if (!d.state_dir || make_state_dir(d.state_dir, err, sizeof(err)) < 0) {
                fprintf(stderr, "etld: %s\n", err[0] ? err : "cannot resolve the state directory");
                return 1;
        }
        if (authz_new(d.cfg, d.state_dir, &d.env.authz, err, sizeof(err)) < 0) {
                fprintf(stderr, "etld: %s\n", err);
                return 1;
        }
        signal(SIGPIPE, SIG_IGN);
        srandom((unsigned)(getpid() ^ util_now_ms()));

        int listen_fd = notify_listen_fd();
        if (!foreground) {
                struct buf logpath = { 0 };
                buf_printf(&logpath, "%s/etld.log", d.state_dir);
                int r = daemonize(&d, logpath.data);
                buf_free(&logpath);
                if (r < 0) {
                        fprintf(stderr, "etld: cannot detach: %s\n", strerror(-r));
                        return 1;
                }
        }

        struct buf jpath = { 0 };
        buf_printf(&jpath, "%s/journal.db", d.state_dir);
        int r = journal_open(jpath.data, d.new_journal ? JOURNAL_OPEN_NEW : 0, &d.journal, err,
                             sizeof(err));
        buf_free(&jpath);
        if (r < 0) {
                log_error("etld", "%s", err);
                return 1;
        }
        d.loop = uv_default_loop();
        r = http_mux_new(d.loop, NULL, &d.http);
        if (r < 0) {
                log_error("etld", "cannot start the HTTP engine: %s", strerror(-r));
                return 1;
        }
        r = engine_new(d.loop, d.journal, d.cfg, d.state_dir, d.http, &d.engine);
        if (r < 0) {
                log_error("etld", "cannot start the job engine: %s", strerror(-r));
                return 1;
        }
        d.env.loop = d.loop;
        d.env.engine = d.engine;
        d.env.journal = d.journal;
        d.env.started_mono_ms = util_now_mono_ms();
        server_new(d.loop, &d.env, &d.server);
        set_limits(&d);
        if (listen_fd >= 0) {
                r = server_listen_fd(d.server, listen_fd, err, sizeof(err));
                if (r == 0)
                        log_info("etld", "socket passed from the service manager (fd %d); "
                                         "the configured socket path is not used",
                                 listen_fd);
        } else {
                r = server_listen_path(d.server, socket_path, err, sizeof(err));
        }
        if (r < 0) {
                log_error("etld", "%s", err);
                return 1;
        }
        engine_on_change(d.engine, status_changed, &d);
        r = engine_recover(d.engine);
        if (r < 0) {
                log_error("etld", "cannot resume the journal's jobs: %s", strerror(-r));
                return 1;
        }

        uv_signal_init(d.loop, &d.sigterm);
        uv_signal_init(d.loop, &d.sigint);
        uv_signal_init(d.loop, &d.sighup);
        d.sigterm.data = d.sigint.data = d.sighup.data = &d;
        uv_signal_start(&d.sigterm, on_stop_signal, SIGTERM);
        uv_signal_start(&d.sigint, on_stop_signal, SIGINT);
        uv_signal_start(&d.sighup, on_hup, SIGHUP);
        uv_timer_init(d.loop, &d.retention);
        d.retention.data = &d;
        uv_timer_start(&d.retention, on_retention, 0, RETENTION_EVERY_MS);
        uint64_t wd = notify_watchdog_usec();
        if (wd) {
                uv_timer_init(d.loop, &d.watchdog);
                d.watchdog.data = &d;
                uv_timer_start(&d.watchdog, on_watchdog, wd / 2000, wd / 2000);
                d.watchdog_on = true;
        }

        log_info("etld", "etld %s ready on %s, state in %s", ETLD_VERSION,
                 listen_fd >= 0 ? "the passed socket" : socket_path, d.state_dir);
        notify_send("READY=1");
        status_changed(&d);
        if (d.ready_fd >= 0) {
                char ok = 1;
                if (write(d.ready_fd, &ok, 1) != 1)
                        log_warning("etld", "the parent process is gone");
                close(d.ready_fd);
        }

        uv_run(d.loop, UV_RUN_DEFAULT);
        /* Let close callbacks of handles closed last run. */
        uv_run(d.loop, UV_RUN_NOWAIT);
        int rc = uv_loop_close(d.loop);
        if (rc != 0)
                log_debug("etld", "loop closed with handles open: %s", uv_strerror(rc));
        d.journal = journal_close(d.journal);
        cfg_free(d.cfg);
        authz_free(d.env.authz);
        free(d.state_dir);
        free(d.overrides);
        free(d.log_path);
        return 0;
}
