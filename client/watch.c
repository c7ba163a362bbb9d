/* watch.c - printing a job's event stream as it happens.  See watch.h.
 *
 * etld answers `watch` with the job's current state, then sends "event"
 * notifications (kind step, progress, log, end) until the job ends.  On a
 * terminal one status line is redrawn in place with \r, and lines that
 * matter later (a step finished, a log message) are printed above it; into a
 * pipe or file every event is one plain, timestamped line, easy to grep. */
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
};

static void on_interrupt(int sig)
{
        /* Leave the shell prompt on a line of its own. */
        ssize_t r = write(STDOUT_FILENO, "\n", 1);
        (void)r;
        signal(sig, SIG_DFL);
        raise(sig);
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
                char when[16];
                time_t now = time(NULL);
                struct tm tm;
                localtime_r(&now, &tm);
                strftime(when, sizeof(when), "%H:%M:%S", &tm);
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
                w->step_start = util_now_mono_ms();
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
                }
        }
        show_progress(json_object_get(p, "progress"), w->progress, sizeof(w->progress));
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
        json_decref(res);
        if (w.live) {
                signal(SIGINT, on_interrupt);
                signal(SIGTERM, on_interrupt);
                redraw(&w);
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
