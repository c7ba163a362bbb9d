/* metrics.c - etld's metrics in the Prometheus text exposition format, for
 * `etlctl metrics` (RPC metrics) and daemon.metrics_file (node_exporter's
 * textfile collector).
 *
 * The counters live in the journal (table metrics, kept by the triggers of
 * sql/journal/0006-metrics.sql in the same transaction as what they count),
 * so they only grow, across restarts and retention alike; the queue gauges
 * come from the engine at the time of the call.  The file is written to a
 * temporary file beside it and renamed over it, so a reader never sees half
 * of it. */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* One family: its name, type, help and the journal's name for it. */
struct family {
        const char *name;
        const char *type;
        const char *help;
        const char *stored;      /* metrics.name in the journal */
        const char *label;       /* the name of the `label` column's label; NULL: none */
        double scale;            /* stored value times this */
};

static const struct family families[] = {
        { "etld_jobs_total", "counter", "Jobs that reached a final state.", "jobs", "state", 1 },
        { "etld_last_success_timestamp_seconds", "gauge",
          "When the latest successful job of the pipeline ended (Unix time).",
          "last_success_at", NULL, 0.001 },
        { "etld_last_success_duration_seconds", "gauge",
          "How long the latest successful job of the pipeline ran.", "last_success_ms", NULL,
          0.001 },
        { "etld_rows_loaded_total", "counter", "Rows the steps of finished attempts loaded.",
          "rows", "step", 1 },
        { "etld_bytes_read_total", "counter",
          "Bytes the steps of finished attempts read (objects loaded or copied).", "bytes",
          "step", 1 },
        { "etld_load_errors_total", "counter", "Records a COPY rejected.", "load_errors", "step",
          1 },
        { "etld_step_retries_total", "counter",
          "Steps started again after a failure (transient errors, resumes after a restart).",
          "step_retries", "step", 1 },
};

/* A label value with \, " and newline escaped, as the format asks. */
static int put_label(struct buf *b, const char *name, const char *value)
{
        int r = buf_printf(b, "%s=\"", name);
        for (const char *p = value; r == 0 && *p; p++) {
                if (*p == '\\' || *p == '"')
                        r = buf_printf(b, "\\%c", *p);
                else if (*p == '\n')
                        r = buf_printf(b, "\\n");
                else
                        r = buf_printf(b, "%c", *p);
        }
        return r < 0 ? r : buf_printf(b, "\"");
}

int metrics_text(struct journal *j, unsigned running, unsigned queued, struct buf *out)
{
        int r = buf_printf(out,
                           "# HELP etld_build_info etld's version.\n"
                           "# TYPE etld_build_info gauge\n"
                           "etld_build_info{version=\"%s\"} 1\n"
                           "# HELP etld_jobs_running Jobs running now.\n"
                           "# TYPE etld_jobs_running gauge\n"
                           "etld_jobs_running %u\n"
                           "# HELP etld_jobs_queued Jobs waiting to run (the queue's length).\n"
                           "# TYPE etld_jobs_queued gauge\n"
                           "etld_jobs_queued %u\n",
                           ETLD_VERSION, running, queued);
        json_t *rows = journal_metrics_json(j);
        for (size_t f = 0; r == 0 && f < sizeof(families) / sizeof(families[0]); f++) {
                const struct family *fam = &families[f];
                r = buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help,
                               fam->name, fam->type);
                size_t i;
                json_t *row;
                json_array_foreach(rows, i, row)
                {
                        if (r < 0)
                                break;
                        const char *name = json_string_value(json_array_get(row, 0));
                        if (!name || strcmp(name, fam->stored) != 0)
                                continue;
                        const char *pipeline = json_string_value(json_array_get(row, 1));
                        const char *label = json_string_value(json_array_get(row, 2));
                        json_int_t v = json_integer_value(json_array_get(row, 3));
                        r = buf_printf(out, "%s{", fam->name);
                        if (r == 0)
                                r = put_label(out, "pipeline", pipeline ? pipeline : "");
                        if (r == 0 && fam->label)
                                r = buf_printf(out, ",");
                        if (r == 0 && fam->label)
                                r = put_label(out, fam->label, label ? label : "");
                        if (r == 0 && fam->scale == 1)
                                r = buf_printf(out, "} %lld\n", (long long)v);
                        else if (r == 0)
                                r = buf_printf(out, "} %.3f\n", (double)v * fam->scale);
                }
        }
        json_decref(rows);
        return r;
}

int metrics_write_file(const char *path, const char *text, char *err, size_t errlen)
{
        char tmp[4096];
        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >=
            sizeof(tmp)) {
                snprintf(err, errlen, "daemon.metrics_file '%s' is too long a path", path);
                return -ENAMETOOLONG;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
                int e = errno;
                snprintf(err, errlen, "cannot write daemon.metrics_file: '%s': %s", tmp,
                         strerror(e));
                return -e;
        }
        size_t len = strlen(text), off = 0;
        int res = 0;
        while (off < len) {
                ssize_t n = write(fd, text + off, len - off);
                if (n < 0) {
                        res = -errno;
                        break;
                }
                off += (size_t)n;
        }
        if (close(fd) < 0 && res == 0)
                res = -errno;
        if (res == 0 && rename(tmp, path) < 0)
                res = -errno;
        if (res < 0) {
                snprintf(err, errlen, "cannot write daemon.metrics_file '%s': %s", path,
                         strerror(-res));
                unlink(tmp);
        }
        return res;
}
