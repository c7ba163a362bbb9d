/* watch.c - printing a job's event stream as it happens.  See watch.h.
 *
 * etld answers `watch` with the job's current state (and the step running
 * now, with its counters), then sends "event" notifications (kind step,
 * progress, log, end) until the job ends.  On a terminal one status line is
 * redrawn in place with \r, and lines that matter later (a step finished, a
 * log message) are printed above it; into a pipe or file every event is one
 * plain line stamped with its UTC time, easy to grep.  When the step says
 * how much there is (objects_total, bytes_total), the line shows a bar, the
 * share done, the rate since the step started and the time left:
 *
 *     job 7  load  [=====>    ] 42%  1,204/2,031 objects  18.2 MiB/s  ETA 0:41
 *
 * Ctrl-C stops watching, not the job: etlctl says so, and how to cancel. */
#include "watch.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "show.h"
#include "util.h"

struct watch {
        const struct cli *cli;
        long long job;
        bool tty;            /* stdout is a terminal: no timestamps */
        bool live;           /* keep a progress line redrawn at the bottom */
        bool drawn;          /* a progress line is on screen */
        char step[128];      /* current step, cleaned */
        char state[32];      /* its state, cleaned */
        char progress[256];  /* its counters, formatted */
        uint64_t step_start; /* monotonic ms when the step was seen running */
        double bytes_start, objects_start; /* the counters then */
};

/* Said on Ctrl-C; made before the handler is installed (a handler may only
 * write()). */
static char interrupt_note[256];

static void on_interrupt(int sig)
{
        ssize_t r = write(STDERR_FILENO, interrupt_note, strlen(interrupt_note));
        (void)r;
        signal(sig, SIG_DFL);
        raise(sig);
}

static double num(const json_t *p, const char *key)
{
        const json_t *v = json_object_get(p, key);
        return json_is_number(v) ? json_number_value(v) : -1;
}

/* 1204 -> "1,204" */
static void thousands(double v, char *out, size_t n)
{
        char digits[32];
        snprintf(digits, sizeof(digits), "%.0f", v < 0 ? 0 : v);
        size_t len = strlen(digits), o = 0;
        for (size_t i = 0; i < len && o + 2 < n; i++) {
                if (i && (len - i) % 3 == 0)
                        out[o++] = ',';
                out[o++] = digits[i];
        }
        out[o] = '\0';
}

/* The counters of a progress event, with the share done, rate and time
 * left when the step gave its totals; bar: draw [=====>    ]. */
static void format_progress(struct watch *w, const json_t *p, bool bar, char *out, size_t n)
{
        double objects = num(p, "objects"), bytes = num(p, "bytes");
        double otot = num(p, "objects_total"), btot = num(p, "bytes_total");
        if (otot <= 0 && btot <= 0) {
                show_progress(p, out, n);
                return;
        }
        double share = btot > 0 && bytes >= 0 ? bytes / btot : objects / otot;
        if (share > 1)
                share = 1;
        if (share < 0)
                share = 0;
        size_t len = 0;
        if (bar) {
                char b[13] = "[          ]";
                int fill = (int)(share * 10);
                for (int i = 0; i < fill; i++)
                        b[1 + i] = '=';
                if (fill < 10)
                        b[1 + fill] = '>';
                len += (size_t)snprintf(out + len, n - len, "%s ", b);
        }
        char done[32], total[32];
        thousands(objects, done, sizeof(done));
        thousands(otot, total, sizeof(total));
        len += (size_t)snprintf(out + len, n - len, "%.0f%%  %s/%s objects", share * 100, done,
                                total);
        double rows = num(p, "rows");
        if (rows > 0 && len < n) {
                thousands(rows, done, sizeof(done));
                len += (size_t)snprintf(out + len, n - len, "  %s rows", done);
        }
        double secs = w->step_start ? (double)(util_now_mono_ms() - w->step_start) / 1000 : 0;
        if (secs >= 1 && len < n) {
                double rate = bytes >= 0 ? (bytes - w->bytes_start) / secs : -1;
                double orate = (objects - w->objects_start) / secs;
                if (rate > 0) {
                        char r[32];
                        show_bytes(rate, r, sizeof(r));
                        len += (size_t)snprintf(out + len, n - len, "  %s/s", r);
                }
                double left = btot > 0 && rate > 0   ? (btot - bytes) / rate
                              : otot > 0 && orate > 0 ? (otot - objects) / orate
                                                      : -1;
                if (left >= 0 && len < n) {
                        long long t = (long long)(left + 0.5);
                        if (t >= 3600)
                                snprintf(out + len, n - len, "  ETA %lld:%02lld:%02lld", t / 3600,
                                         t / 60 % 60, t % 60);
                        else
                                snprintf(out + len, n - len, "  ETA %lld:%02lld", t / 60, t % 60);
                }
        }
}

/* A step seen running from now: the rate counts from its counters now. */
static void step_started(struct watch *w, const json_t *progress)
{
        w->step_start = util_now_mono_ms();
        w->bytes_start = num(progress, "bytes") > 0 ? num(progress, "bytes") : 0;
        w->objects_start = num(progress, "objects") > 0 ? num(progress, "objects") : 0;
}

static void clear_line(struct watch *w)
{
        if (w->live && w->drawn)
                fputs("\r\033[K", stdout);
        w->drawn = false;
}

static void redraw(struct watch *w)
{
        if (!w->live)
                return;
        char line[512];
        snprintf(line, sizeof(line), "job %lld  %s %s%s%s", w->job, w->step[0] ? w->step : "-",
                 w->state, w->progress[0] ? "  " : "", w->progress);
        int width = show_term_width(STDOUT_FILENO);
        char cut[600];
        show_clean(line, width > 1 ? (size_t)width - 1 : 0, cut, sizeof(cut));
        fputs("\r\033[K", stdout);
        fputs(cut, stdout);
        fflush(stdout);
        w->drawn = true;
}

/* A line that stays: above the progress line on a terminal, timestamped
 * otherwise. */
static void say(struct watch *w, const char *text)
{
        clear_line(w);
        if (!w->tty) {
                char when[40];
                util_iso_ms(util_now_ms(), when, sizeof(when));
                printf("%s ", when);
        }
        printf("%s\n", text);
        fflush(stdout);
        redraw(w);
}

static const char *param(const json_t *p, const char *key)
{
        return json_string_value(json_object_get(p, key));
}

static void on_step(struct watch *w, const json_t *p)
{
        char name[128], state[32], line[1024];
        show_clean(param(p, "step") ? param(p, "step") : "-", 60, name, sizeof(name));
        show_clean(param(p, "state") ? param(p, "state") : "?", 20, state, sizeof(state));
        bool same = strcmp(name, w->step) == 0;
        if (!same) {
                snprintf(w->step, sizeof(w->step), "%s", name);
                w->progress[0] = '\0';
        }
        snprintf(w->state, sizeof(w->state), "%s", state);
        if (strcmp(state, "running") == 0) {
                step_started(w, NULL);
                if (!w->live) {
                        snprintf(line, sizeof(line), "%s running", name);
                        say(w, line);
                } else
                        redraw(w);
                return;
        }
        char took[32] = "";
        if (same && w->step_start)
                show_duration((double)(util_now_mono_ms() - w->step_start) / 1000, took,
                              sizeof(took));
        char msg[512] = "";
        if (param(p, "message"))
                show_clean(param(p, "message"), 400, msg, sizeof(msg));
        snprintf(line, sizeof(line), "%s %s%s%s%s%s%s", name, state, took[0] ? " in " : "", took,
                 w->progress[0] ? " (" : "", w->progress, w->progress[0] ? ")" : "");
        if (msg[0]) {
                size_t len = strlen(line);
                snprintf(line + len, sizeof(line) - len, ": %s", msg);
        }
        if (w->live && strcmp(state, "pending") != 0) {
                /* The step is over: keep its line, start a fresh status line. */
                w->step[0] = w->state[0] = w->progress[0] = '\0';
                w->step_start = 0;
        }
        say(w, line);
}

static void on_progress(struct watch *w, const json_t *p)
{
        if (param(p, "step")) {
                char name[128];
                show_clean(param(p, "step"), 60, name, sizeof(name));
                if (strcmp(name, w->step) != 0) {
                        snprintf(w->step, sizeof(w->step), "%s", name);
                        snprintf(w->state, sizeof(w->state), "running");
                        step_started(w, json_object_get(p, "progress"));
                }
        }
        format_progress(w, json_object_get(p, "progress"), w->live, w->progress,
                        sizeof(w->progress));
        if (w->live) {
                redraw(w);
                return;
        }
        char line[512];
        snprintf(line, sizeof(line), "%s progress: %s", w->step[0] ? w->step : "-",
                 w->progress[0] ? w->progress : "-");
        say(w, line);
}

static void on_log(struct watch *w, const json_t *p)
{
        char name[128] = "", msg[2048], line[2300];
        if (param(p, "step"))
                show_clean(param(p, "step"), 60, name, sizeof(name));
        show_clean(param(p, "message") ? param(p, "message") : "", 2000, msg, sizeof(msg));
        snprintf(line, sizeof(line), "%s%s%s", name, name[0] ? ": " : "", msg);
        say(w, line);
}

/* The end event: prints the outcome and returns the exit status. */
static int on_end(struct watch *w, const json_t *p)
{
        const char *state = param(p, "state") ? param(p, "state") : "unknown";
        char st[32], msg[2048] = "", line[2200];
        show_clean(state, 20, st, sizeof(st));
        if (param(p, "message"))
                show_clean(param(p, "message"), 2000, msg, sizeof(msg));
        snprintf(line, sizeof(line), "job %lld %s%s%s", w->job, st, msg[0] ? ": " : "", msg);
        w->step[0] = '\0';
        clear_line(w);
        w->live = false; /* nothing to redraw any more */
        say(w, line);
        if (strcmp(state, "failed") == 0)
                fprintf(stderr,
                        "etlctl: see 'etlctl status %lld' for what failed and what to "
                        "do next\n",
                        w->job);
        int status = cli_state_status(state);
        return status == CLI_EXIT_UNFINISHED ? CLI_EXIT_JOB_FAILED : status;
}

int watch_job(const struct cli *cli, struct conn *c, long long job)
{
        json_t *res;
        int r = conn_call(c, "watch", json_pack("{s:I}", "job", (json_int_t)job), &res);
        if (r)
                return r;
        struct watch w = {.cli = cli, .job = job};
        w.tty = !cli->json && isatty(STDOUT_FILENO);
        w.live = w.tty;
        const char *state = json_string_value(json_object_get(res, "state"));
        if (cli->json)
                cli_print_json(res);
        if (state && cli_state_final(state)) {
                if (!cli->json)
                        printf("job %lld already %s\n", job, state);
                r = cli_state_status(state);
                json_decref(res);
                return r;
        }
        if (state)
                snprintf(w.state, sizeof(w.state), "%s", state);
        /* the first frame: the step running now, not "-" */
        const char *step = json_string_value(json_object_get(res, "step"));
        if (step) {
                show_clean(step, 60, w.step, sizeof(w.step));
                step_started(&w, json_object_get(res, "progress"));
                format_progress(&w, json_object_get(res, "progress"), w.live, w.progress,
                                sizeof(w.progress));
        }
        json_decref(res);
        snprintf(interrupt_note, sizeof(interrupt_note),
                 "\netlctl: stopped watching; job %lld goes on in etld (stop it with "
                 "'etlctl cancel %lld')\n",
                 job, job);
        if (!cli->json) {
                signal(SIGINT, on_interrupt);
                signal(SIGTERM, on_interrupt);
        }
        if (w.live)
                redraw(&w);
        else if (step && !cli->json) {
                char line[512];
                snprintf(line, sizeof(line), "%s %s%s%s", w.step, w.state,
                         w.progress[0] ? ": " : "", w.progress);
                say(&w, line);
        }

        for (;;) {
                json_t *msg;
                r = conn_next(c, &msg);
                if (r) {
                        clear_line(&w);
                        return r;
                }
                const char *method = json_string_value(json_object_get(msg, "method"));
                json_t *p = json_object_get(msg, "params");
                json_t *pjob = json_object_get(p, "job");
                if (!method || strcmp(method, "event") != 0 || !json_is_integer(pjob) ||
                    json_integer_value(pjob) != job) {
                        json_decref(msg);
                        continue;
                }
                const char *kind = param(p, "kind") ? param(p, "kind") : "";
                if (cli->json) {
                        cli_print_json(p);
                        if (strcmp(kind, "end") == 0) {
                                r = cli_state_status(param(p, "state") ? param(p, "state")
                                                                       : "unknown");
                                json_decref(msg);
                                return r == CLI_EXIT_UNFINISHED ? CLI_EXIT_JOB_FAILED : r;
                        }
                } else if (strcmp(kind, "step") == 0)
                        on_step(&w, p);
                else if (strcmp(kind, "progress") == 0)
                        on_progress(&w, p);
                else if (strcmp(kind, "log") == 0)
                        on_log(&w, p);
                else if (strcmp(kind, "end") == 0) {
                        r = on_end(&w, p);
                        json_decref(msg);
                        return r;
                }
                json_decref(msg);
        }
}
