/* show.c - the human-readable side of etlctl.  See show.h.
 *
 * `etlctl status JOB` is what an operator reads at 3 a.m., so it answers, in
 * order: what state the job is in and since when, what failed and why, what
 * to do next, then the steps, the data-quality checks and what the job made.
 * Tables (list, errors, the daemon summary) size their columns to the content
 * and cut long cells so a row stays on one line. */
#include "show.h"

#include <langinfo.h>
#include <locale.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static bool utf8;

void show_init(void)
{
        setlocale(LC_CTYPE, "");
        const char *cs = nl_langinfo(CODESET);
        utf8 = cs && strcmp(cs, "UTF-8") == 0;
}

const char *show_mark(bool ok)
{
        if (utf8)
                return ok ? "✓" : "✗";
        return ok ? "ok  " : "FAIL";
}

int show_term_width(int fd)
{
        struct winsize ws;
        if (!isatty(fd) || ioctl(fd, TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0)
                return 0;
        return ws.ws_col;
}

/* ---- values --------------------------------------------------------------- */

static int digits(const char *s, int n)
{
        int v = 0;
        for (int i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -1;
                v = v * 10 + (s[i] - '0');
        }
        return v;
}

bool show_parse_time(const char *iso, double *ret)
{
        /* YYYY-MM-DDTHH:MM:SS[.fff]Z */
        if (!iso || strlen(iso) < 20 || iso[4] != '-' || iso[7] != '-' ||
            (iso[10] != 'T' && iso[10] != ' ') || iso[13] != ':' || iso[16] != ':')
                return false;
        struct tm tm = {0};
        int year = digits(iso, 4), mon = digits(iso + 5, 2), day = digits(iso + 8, 2);
        int hour = digits(iso + 11, 2), min = digits(iso + 14, 2), sec = digits(iso + 17, 2);
        if (year < 0 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 ||
            min < 0 || min > 59 || sec < 0 || sec > 60)
                return false;
        const char *p = iso + 19;
        double frac = 0, scale = 0.1;
        if (*p == '.') {
                for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
                        frac += (*p - '0') * scale;
        }
        if (strcmp(p, "Z") != 0)
                return false;
        tm.tm_year = year - 1900;
        tm.tm_mon = mon - 1;
        tm.tm_mday = day;
        tm.tm_hour = hour;
        tm.tm_min = min;
        tm.tm_sec = sec;
        *ret = (double)timegm(&tm) + frac;
        return true;
}

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void show_duration(double s, char *out, size_t n)
{
        if (s < 0)
                s = 0;
        long long t = (long long)s;
        if (s < 60)
                snprintf(out, n, "%.1fs", s);
        else if (t < 3600)
                snprintf(out, n, "%lldm%02llds", t / 60, t % 60);
        else if (t < 86400)
                snprintf(out, n, "%lldh%02lldm", t / 3600, t % 3600 / 60);
        else
                snprintf(out, n, "%lldd%02lldh", t / 86400, t % 86400 / 3600);
}

void show_bytes(double b, char *out, size_t n)
{
        static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
        if (b < 1024) {
                snprintf(out, n, "%.0f B", b);
                return;
        }
        size_t u = 0;
        b /= 1024;
        while (b >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
                b /= 1024;
                u++;
        }
        snprintf(out, n, "%.1f %s", b, units[u]);
}

static double number(const json_t *v)
{
        return json_is_number(v) ? json_number_value(v) : 0;
}

void show_progress(const json_t *p, char *out, size_t n)
{
        out[0] = '\0';
        if (!json_is_object(p))
                return;
        size_t len = 0;
        const json_t *objects = json_object_get(p, "objects");
        const json_t *rows = json_object_get(p, "rows");
        const json_t *bytes = json_object_get(p, "bytes");
        const char *text = json_string_value(json_object_get(p, "text"));
        if (text && *text) {
                /* what the step waits for; its counters only when they count */
                char clean[160];
                show_clean(text, 120, clean, sizeof(clean));
                len = (size_t)snprintf(out, n, "%s", clean);
                if (len >= n ||
                    (number(objects) == 0 && number(rows) == 0 && number(bytes) == 0))
                        return;
        }
        if (json_is_number(objects))
                len += (size_t)snprintf(out + len, n - len, "%s%.0f objects", len ? ", " : "",
                                        number(objects));
        if (json_is_number(rows) && len < n)
                len += (size_t)snprintf(out + len, n - len, "%s%.0f rows", len ? ", " : "",
                                        number(rows));
        if (json_is_number(bytes) && len < n) {
                char b[32];
                show_bytes(number(bytes), b, sizeof(b));
                snprintf(out + len, n - len, "%s%s", len ? ", " : "", b);
        }
}

/* Display columns of UTF-8 text, counting every character as one. */
static size_t cols_of(const char *s)
{
        size_t n = 0;
        for (; *s; s++)
                if (((unsigned char)*s & 0xc0) != 0x80)
                        n++;
        return n;
}

/* Bytes of the UTF-8 sequence starting with c (1 for anything odd). */
static size_t seq_len(unsigned char c)
{
        if (c >= 0xf0 && c < 0xf8)
                return 4;
        if (c >= 0xe0)
                return c < 0xf0 ? 3 : 1;
        if (c >= 0xc0)
                return 2;
        return 1;
}

void show_clean(const char *s, size_t max, char *out, size_t n)
{
        const char *ell = utf8 ? "…" : "...";
        size_t ell_cols = utf8 ? 1 : 3;
        size_t len = 0, cols = 0;
        if (n == 0)
                return;
        if (!s)
                s = "";
        size_t total = cols_of(s);
        for (const char *p = s; *p;) {
                size_t k = seq_len((unsigned char)*p);
                bool ok = true;
                for (size_t i = 1; i < k; i++)
                        if (((unsigned char)p[i] & 0xc0) != 0x80)
                                ok = false;
                if (!ok)
                        k = 1;
                if (max && total > max && cols + ell_cols >= max)
                        break;
                if (len + k + 1 >= n)
                        break;
                unsigned char c = (unsigned char)*p;
                if (k == 1 && (c < 0x20 || c == 0x7f || c >= 0x80))
                        out[len++] = c == '\t' || c == '\n' || c == '\r' ? ' ' : '?';
                else {
                        memcpy(out + len, p, k);
                        len += k;
                }
                cols++;
                p += k;
        }
        out[len] = '\0';
        if (max && total > max && len + strlen(ell) + 1 <= n) {
                memcpy(out + len, ell, strlen(ell) + 1);
        }
}

/* Any JSON scalar as short text; "-" for null or absent. */
static void text_of(const json_t *v, char *out, size_t n)
{
        if (!v || json_is_null(v))
                snprintf(out, n, "-");
        else if (json_is_string(v))
                snprintf(out, n, "%s", json_string_value(v));
        else if (json_is_integer(v))
                snprintf(out, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (json_is_real(v))
                snprintf(out, n, "%g", json_real_value(v));
        else if (json_is_boolean(v))
                snprintf(out, n, "%s", json_is_true(v) ? "true" : "false");
        else {
                char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                snprintf(out, n, "%s", d ? d : "?");
                free(d);
        }
}

static const char *str(const json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

/* ---- tables ---------------------------------------------------------------- */

#define TABLE_MAX_COLS 10
#define CELL_MAX 4096

struct table {
        size_t ncols;
        const char *head[TABLE_MAX_COLS];
        size_t max[TABLE_MAX_COLS]; /* widest a cell may be, 0 = no limit */
        size_t width[TABLE_MAX_COLS];
        char **cells; /* nrows * ncols */
        size_t nrows;
};

static void table_init(struct table *t, size_t ncols, const char *const *head)
{
        memset(t, 0, sizeof(*t));
        t->ncols = ncols;
        for (size_t i = 0; i < ncols; i++) {
                t->head[i] = head[i];
                t->width[i] = cols_of(head[i]);
        }
}

/* Adds a row of ncols JSON values, cleaned and cut to each column's max. */
static void table_add(struct table *t, const json_t *const *vals)
{
        char **cells = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(char *));
        if (!cells)
                return;
        t->cells = cells;
        char raw[CELL_MAX], clean[CELL_MAX];
        for (size_t i = 0; i < t->ncols; i++) {
                text_of(vals[i], raw, sizeof(raw));
                show_clean(raw, t->max[i], clean, sizeof(clean));
                char *c = strdup(clean);
                cells[t->nrows * t->ncols + i] = c;
                size_t w = c ? cols_of(c) : 0;
                if (w > t->width[i])
                        t->width[i] = w;
        }
        t->nrows++;
}

static void print_row(FILE *f, const struct table *t, const char *const *cells)
{
        for (size_t i = 0; i < t->ncols; i++) {
                const char *c = cells[i] ? cells[i] : "";
                if (i + 1 == t->ncols)
                        fprintf(f, "%s\n", c);
                else
                        fprintf(f, "%s%*s  ", c, (int)(t->width[i] - cols_of(c)), "");
        }
}

static void table_print(FILE *f, struct table *t)
{
        print_row(f, t, t->head);
        for (size_t r = 0; r < t->nrows; r++)
                print_row(f, t, (const char *const *)t->cells + r * t->ncols);
}

static void table_free(struct table *t)
{
        for (size_t i = 0; i < t->nrows * t->ncols; i++)
                free(t->cells[i]);
        free(t->cells);
        t->cells = NULL;
        t->nrows = 0;
}

/* Room left on the terminal for a last column, else def. */
static size_t last_column_room(const struct table *t, size_t def)
{
        int term = show_term_width(fileno(stdout));
        if (term <= 0)
                return def;
        size_t used = 0;
        for (size_t i = 0; i + 1 < t->ncols; i++)
                used += t->width[i] + 2;
        return (size_t)term > used + 12 ? (size_t)term - used - 1 : 12;
}

/* ---- status JOB --------------------------------------------------------------- */

/* "  label     value" lines of the job header. */
static void field(FILE *f, const char *label, const char *value)
{
        char clean[CELL_MAX];
        show_clean(value, 0, clean, sizeof(clean));
        fprintf(f, "  %-9s %s\n", label, clean);
}

static void time_field(FILE *f, const char *label, const json_t *job, const char *key,
                       const char *suffix)
{
        const char *iso = str(job, key);
        if (!iso)
                return;
        char line[256];
        snprintf(line, sizeof(line), "%s%s", iso, suffix ? suffix : "");
        field(f, label, line);
}

/* A queued job's not_before when it is still ahead, else NULL. */
static const char *pending_not_before(const json_t *job)
{
        const char *nb = str(job, "not_before");
        double t;
        const char *state = str(job, "state");
        if (!nb || !state || strcmp(state, "queued") != 0 || !show_parse_time(nb, &t) ||
            t <= now_s())
                return NULL;
        return nb;
}

static void next_step_hint(FILE *f, long long id, const char *state, const char *pipeline,
                           const char *not_before, long long retried_by)
{
        char pipe[128];
        show_clean(pipeline ? pipeline : "PIPELINE", 60, pipe, sizeof(pipe));
        char hint[512];
        hint[0] = '\0';
        if (strcmp(state, "queued") == 0 && not_before)
                snprintf(hint, sizeof(hint),
                         "starts once %.40s has passed (and a slot is free); drop it with "
                         "'etlctl cancel %lld'",
                         not_before, id);
        else if (strcmp(state, "queued") == 0)
                snprintf(hint, sizeof(hint),
                         "waits for a free slot (or for a job on the same warehouse or "
                         "cluster); follow it with 'etlctl watch %lld', drop it with "
                         "'etlctl cancel %lld'",
                         id, id);
        else if (strcmp(state, "running") == 0)
                snprintf(hint, sizeof(hint),
                         "follow it with 'etlctl watch %lld'; stop it with 'etlctl cancel %lld'",
                         id, id);
        else if (retried_by > 0)
                snprintf(hint, sizeof(hint), "it runs again as job %lld: 'etlctl status %lld'",
                         retried_by, retried_by);
        else if (strcmp(state, "failed") == 0)
                snprintf(hint, sizeof(hint),
                         "rejected records, if any: 'etlctl errors %lld'; fix the cause, then "
                         "run it again with 'etlctl retry %lld' (same %s settings)",
                         id, id, pipe);
        else if (strcmp(state, "cancelled") == 0)
                snprintf(hint, sizeof(hint),
                         "run it again with 'etlctl retry %lld'; AWS resources it created stay "
                         "recorded for 'etlctl submit teardown'",
                         id);
        if (hint[0])
                fprintf(f, "  %-9s %s\n", "next", hint);
}

static void show_steps(FILE *f, const json_t *steps)
{
        if (json_array_size(steps) == 0)
                return;
        static const char *const head[] = {"STEP", "STATE", "TRIES", "TIME", "PROGRESS"};
        struct table t;
        table_init(&t, 5, head);
        size_t i;
        const json_t *s;
        json_array_foreach(steps, i, s)
        {
                double start, end;
                char took[32] = "", prog[256];
                const char *state = str(s, "state");
                if (show_parse_time(str(s, "started_at"), &start)) {
                        if (show_parse_time(str(s, "finished_at"), &end))
                                show_duration(end - start, took, sizeof(took));
                        else if (state && strcmp(state, "running") == 0)
                                show_duration(now_s() - start, took, sizeof(took));
                }
                show_progress(json_object_get(s, "progress"), prog, sizeof(prog));
                json_t *jtook = json_string(took[0] ? took : "-");
                json_t *jprog = json_string(prog[0] ? prog : "-");
                const json_t *row[] = {json_object_get(s, "name"), json_object_get(s, "state"),
                                       json_object_get(s, "attempts"), jtook, jprog};
                table_add(&t, row);
                json_decref(jtook);
                json_decref(jprog);
        }
        fprintf(f, "\nsteps\n");
        /* indent the table by two spaces */
        for (size_t r = 0; r <= t.nrows; r++) {
                const char *const *cells =
                    r == 0 ? t.head : (const char *const *)t.cells + (r - 1) * t.ncols;
                fputs("  ", f);
                print_row(f, &t, cells);
        }
        table_free(&t);
        json_array_foreach(steps, i, s)
        {
                const char *err = str(s, "error");
                if (!err)
                        continue;
                char name[128], clean[CELL_MAX];
                show_clean(str(s, "name"), 60, name, sizeof(name));
                show_clean(err, 0, clean, sizeof(clean));
                fprintf(f, "  error in %s: %s\n", name, clean);
        }
}

static void show_checks(FILE *f, const json_t *checks)
{
        if (json_array_size(checks) == 0)
                return;
        fprintf(f, "\nchecks\n");
        size_t i;
        const json_t *c;
        json_array_foreach(checks, i, c)
        {
                char name[256], detail[CELL_MAX];
                show_clean(str(c, "name"), 0, name, sizeof(name));
                show_clean(str(c, "detail"), 0, detail, sizeof(detail));
                fprintf(f, "  %s %s%s%s\n", show_mark(json_is_true(json_object_get(c, "ok"))), name,
                        detail[0] ? ": " : "", detail);
        }
}

/* "prefix.key = value" lines of an object. */
static void show_pairs(FILE *f, const char *prefix, const json_t *obj)
{
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)obj, key, v)
        {
                char raw[CELL_MAX], k[256], val[CELL_MAX];
                text_of(v, raw, sizeof(raw));
                show_clean(key, 0, k, sizeof(k));
                show_clean(raw, 0, val, sizeof(val));
                if (prefix)
                        fprintf(f, "  %s.%s = %s\n", prefix, k, val);
                else
                        fprintf(f, "  %s = %s\n", k, val);
        }
}

void show_job(FILE *f, const json_t *job)
{
        long long id = json_integer_value(json_object_get(job, "id"));
        const char *state = str(job, "state") ? str(job, "state") : "unknown";
        const char *pipeline = str(job, "pipeline");
        char pipe[128], st[64];
        show_clean(pipeline ? pipeline : "?", 60, pipe, sizeof(pipe));
        show_clean(state, 40, st, sizeof(st));
        fprintf(f, "job %lld (%s): %s\n", id, pipe, st);

        double created = 0, started = 0, finished = 0, now = now_s();
        bool has_created = show_parse_time(str(job, "created_at"), &created);
        bool has_started = show_parse_time(str(job, "started_at"), &started);
        bool has_finished = show_parse_time(str(job, "finished_at"), &finished);
        char d[32], extra[128];

        extra[0] = '\0';
        if (has_created) {
                show_duration(now - created, d, sizeof(d));
                snprintf(extra, sizeof(extra), "  (%s ago)", d);
        }
        time_field(f, "created", job, "created_at", extra);
        extra[0] = '\0';
        if (has_started && !has_finished) {
                show_duration(now - started, d, sizeof(d));
                snprintf(extra, sizeof(extra), "  (running for %s)", d);
        }
        time_field(f, "started", job, "started_at", extra);
        extra[0] = '\0';
        if (has_finished) {
                show_duration(finished - (has_started ? started : created), d, sizeof(d));
                snprintf(extra, sizeof(extra), "  (took %s)", d);
        }
        time_field(f, "finished", job, "finished_at", extra);
        const char *not_before = pending_not_before(job);
        double nb;
        if (not_before && show_parse_time(not_before, &nb)) {
                char line[160];
                show_duration(nb - now, d, sizeof(d));
                snprintf(line, sizeof(line), "not before %.40s  (in %s)", not_before, d);
                field(f, "waiting", line);
        } else if (!has_started && strcmp(state, "queued") == 0 && has_created) {
                show_duration(now - created, d, sizeof(d));
                snprintf(extra, sizeof(extra), "queued for %s", d);
                field(f, "waiting", extra);
        }

        const json_t *uid = json_object_get(job, "uid");
        if (json_is_integer(uid)) {
                char who[128];
                struct passwd *pw = getpwuid((uid_t)json_integer_value(uid));
                if (pw)
                        snprintf(who, sizeof(who), "uid %" JSON_INTEGER_FORMAT " (%s)",
                                 json_integer_value(uid), pw->pw_name);
                else
                        snprintf(who, sizeof(who), "uid %" JSON_INTEGER_FORMAT,
                                 json_integer_value(uid));
                field(f, "by", who);
        }
        if (str(job, "key"))
                field(f, "key", str(job, "key"));
        long long retry_of = json_integer_value(json_object_get(job, "retry_of"));
        long long retried_by = json_integer_value(json_object_get(job, "retried_by"));
        char link[64];
        if (retry_of > 0) {
                snprintf(link, sizeof(link), "job %lld", retry_of);
                field(f, "retry of", link);
        }
        if (retried_by > 0) {
                snprintf(link, sizeof(link), "as job %lld", retried_by);
                field(f, "retried", link);
        }
        if (str(job, "error"))
                field(f, "error", str(job, "error"));
        if (str(job, "unwritten")) /* etld could not write the final state yet */
                field(f, "journal", str(job, "unwritten"));
        next_step_hint(f, id, state, pipeline, not_before, retried_by);

        show_steps(f, json_object_get(job, "steps"));
        show_checks(f, json_object_get(job, "checks"));

        bool any = false;
        size_t i;
        const json_t *s;
        json_array_foreach(json_object_get(job, "steps"), i, s)
        {
                const json_t *out = json_object_get(s, "outputs");
                if (json_object_size(out) == 0)
                        continue;
                if (!any)
                        fprintf(f, "\noutputs\n");
                any = true;
                char name[128];
                show_clean(str(s, "name"), 60, name, sizeof(name));
                show_pairs(f, name, out);
        }
        const json_t *config = json_object_get(job, "config");
        if (json_object_size(config) > 0) {
                fprintf(f, "\nconfig (set for this job)\n");
                show_pairs(f, NULL, config);
        }
}

/* ---- tables of jobs and errors --------------------------------------------------- */

/* A job's duration_s as "1m 05s" (null: empty). */
static json_t *duration_cell(const json_t *job)
{
        const json_t *d = json_object_get(job, "duration_s");
        if (!json_is_number(d))
                return json_null();
        char out[32];
        show_duration(json_number_value(d), out, sizeof(out));
        return json_string(out);
}

#define LIST_COLS 9

static void show_jobs_table(FILE *f, const json_t *jobs, bool with_finished)
{
        static const char *const head_list[LIST_COLS] = {
                "ID", "PIPELINE", "STATE", "KEY", "CREATED", "FINISHED", "DURATION", "RETRY_OF",
                "ERROR"};
        static const char *const head_live[] = {"ID", "PIPELINE", "STATE", "CREATED", "STARTED"};
        struct table t;
        if (with_finished)
                table_init(&t, LIST_COLS, head_list);
        else
                table_init(&t, 5, head_live);
        t.max[1] = 24;
        t.max[2] = 12;
        if (with_finished)
                t.max[3] = 24;
        size_t i;
        const json_t *j;
        /* the list: a first pass without the error column's limit to learn
         * the widths */
        for (int pass = with_finished ? 0 : 1; pass < 2; pass++) {
                if (pass == 1 && with_finished) {
                        size_t room = last_column_room(&t, 60);
                        table_free(&t);
                        table_init(&t, LIST_COLS, head_list);
                        t.max[1] = 24;
                        t.max[2] = 12;
                        t.max[3] = 24;
                        t.max[LIST_COLS - 1] = room;
                }
                json_array_foreach(jobs, i, j)
                {
                        /* a job waiting for its time says so where a time or
                         * a note goes: the summary's STARTED, the list's last
                         * column */
                        const char *nb = pending_not_before(j);
                        char note[80];
                        snprintf(note, sizeof(note), "not before %.40s", nb ? nb : "");
                        json_t *jnote = nb && pass == 1 ? json_string(note) : NULL;
                        if (!with_finished) {
                                const json_t *row[] = {
                                    json_object_get(j, "id"), json_object_get(j, "pipeline"),
                                    json_object_get(j, "state"), json_object_get(j, "created_at"),
                                    jnote ? jnote : json_object_get(j, "started_at")};
                                table_add(&t, row);
                                json_decref(jnote);
                                continue;
                        }
                        json_t *dur = duration_cell(j);
                        const json_t *row[LIST_COLS] = {
                            json_object_get(j, "id"),
                            json_object_get(j, "pipeline"),
                            json_object_get(j, "state"),
                            json_object_get(j, "key"),
                            json_object_get(j, "created_at"),
                            json_object_get(j, "finished_at"),
                            dur,
                            json_object_get(j, "retry_of"),
                            pass == 0 ? json_null()
                                      : jnote ? jnote : json_object_get(j, "error")};
                        table_add(&t, row);
                        json_decref(dur);
                        json_decref(jnote);
                }
        }
        table_print(f, &t);
        table_free(&t);
}

void show_list(FILE *f, const json_t *jobs)
{
        if (json_array_size(jobs) == 0) {
                fprintf(f, "no jobs\n");
                return;
        }
        show_jobs_table(f, jobs, true);
}

void show_logs(FILE *f, const json_t *events)
{
        if (json_array_size(events) == 0) {
                fprintf(f, "no events\n");
                return;
        }
        static const char *const head[] = {"TIME", "LEVEL", "STEP", "MESSAGE"};
        struct table t;
        table_init(&t, 4, head);
        t.max[2] = 24;
        size_t i;
        const json_t *e;
        json_array_foreach(events, i, e)
        {
                const json_t *row[] = {json_object_get(e, "at"), json_object_get(e, "level"),
                                       json_object_get(e, "step"), json_object_get(e, "message")};
                table_add(&t, row);
        }
        table_print(f, &t);
        table_free(&t);
}

void show_summary(FILE *f, const json_t *s)
{
        char version[64], up[32];
        show_clean(str(s, "version") ? str(s, "version") : "?", 30, version, sizeof(version));
        show_duration(number(json_object_get(s, "uptime_s")), up, sizeof(up));
        fprintf(f, "etld %s, pid %.0f, up %s\n", version, number(json_object_get(s, "pid")), up);
        fprintf(f, "%.0f running, %.0f queued\n", number(json_object_get(s, "running")),
                number(json_object_get(s, "queued")));
        size_t i;
        const json_t *p;
        json_array_foreach(json_object_get(s, "published"), i, p)
        {
                char target[200], mode[16], when[40];
                show_clean(str(p, "target") ? str(p, "target") : "?", 120, target,
                           sizeof(target));
                show_clean(str(p, "mode") ? str(p, "mode") : "?", 12, mode, sizeof(mode));
                show_clean(str(p, "published_at") ? str(p, "published_at") : "?", 30, when,
                           sizeof(when));
                fprintf(f, "published %s: job %.0f (%s, %.0f objects) at %s\n", target,
                        number(json_object_get(p, "job")), mode,
                        number(json_object_get(p, "objects")), when);
        }
        const json_t *jobs = json_object_get(s, "jobs");
        if (json_array_size(jobs) == 0) {
                fprintf(f, "no job is running or queued; 'etlctl list' shows past jobs\n");
                return;
        }
        fputc('\n', f);
        show_jobs_table(f, jobs, false);
}

void show_errors(FILE *f, const json_t *errors)
{
        if (json_array_size(errors) == 0) {
                fprintf(f, "no load errors\n");
                return;
        }
        static const char *const keys[] = {"step",     "filename",   "line_number",
                                           "colname",  "type",       "position",
                                           "err_code", "err_reason", "raw_field_value"};
        static const char *const head[] = {"STEP", "FILE", "LINE",   "COLUMN", "TYPE",
                                           "POS",  "CODE", "REASON", "VALUE"};
        struct table t;
        table_init(&t, 9, head);
        t.max[0] = 16;
        t.max[1] = 48;
        t.max[3] = 24;
        t.max[4] = 16;
        t.max[7] = 60;
        t.max[8] = 40;
        size_t i;
        const json_t *e;
        json_array_foreach(errors, i, e)
        {
                const json_t *row[9];
                for (size_t k = 0; k < 9; k++)
                        row[k] = json_object_get(e, keys[k]);
                table_add(&t, row);
        }
        table_print(f, &t);
        table_free(&t);
}
