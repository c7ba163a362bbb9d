/* log.c - see log.h. */
#include "log.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int max_level = LOG_INFO;
static const char *journal_socket = "/run/systemd/journal/socket";

int log_level_from_name(const char *name)
{
        static const struct {
                const char *name;
                int level;
        } names[] = {
                { "error", LOG_ERR },
                { "warning", LOG_WARNING },
                { "info", LOG_INFO },
                { "debug", LOG_DEBUG },
        };
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (strcmp(name, names[i].name) == 0)
                        return names[i].level;
        return -1;
}

void log_set_level(int level)
{
        max_level = level;
}

int log_get_level(void)
{
        return max_level;
}

void log_set_journal_socket(const char *path)
{
        journal_socket = path ? path : "/run/systemd/journal/socket";
}

static void emit_line(int level, const char *group, const char *msg);

void log_msg(int level, const char *group, const char *fmt, ...)
{
        if (level > max_level)
                return;
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        emit_line(level, group, msg);
}

/* One field of a native journal datagram: KEY=value, or when the value has
 * a newline KEY, newline, its length as 64-bit little endian, the value. */
static size_t put_field(char *out, size_t cap, size_t off, const char *key, const char *value)
{
        size_t klen = strlen(key), vlen = strlen(value);
        bool binary = strchr(value, '\n') != NULL;
        size_t need = klen + 1 + (binary ? 8 : 0) + vlen + 1;
        if (off + need > cap)
                return off; /* left out: the datagram stays well-formed */
        memcpy(out + off, key, klen);
        off += klen;
        if (binary) {
                out[off++] = '\n';
                uint64_t n = vlen;
                for (int i = 0; i < 8; i++)
                        out[off++] = (char)(n >> (8 * i));
        } else {
                out[off++] = '=';
        }
        memcpy(out + off, value, vlen);
        off += vlen;
        out[off++] = '\n';
        return off;
}

/* Sends the datagram to journald; false when that cannot be done. */
static bool to_journal(const char *data, size_t len)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t plen = strlen(journal_socket);
        if (plen >= sizeof(sa.sun_path))
                return false;
        memcpy(sa.sun_path, journal_socket, plen + 1);
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return false;
        ssize_t n = sendto(fd, data, len, MSG_NOSIGNAL, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
        return n == (ssize_t)len;
}

void log_job(int level, const char *group, long long job, const char *pipeline, const char *step,
             const char *fmt, ...)
{
        if (level > max_level)
                return;
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (getenv("JOURNAL_STREAM")) {
                char d[4096], num[32];
                size_t off = 0;
                char line[2200];
                snprintf(line, sizeof(line), "[%s] %s", group, msg);
                off = put_field(d, sizeof(d), off, "MESSAGE", line);
                snprintf(num, sizeof(num), "%d", level);
                off = put_field(d, sizeof(d), off, "PRIORITY", num);
                off = put_field(d, sizeof(d), off, "SYSLOG_IDENTIFIER", "etld");
                off = put_field(d, sizeof(d), off, "ETLD_GROUP", group);
                if (job > 0) {
                        snprintf(num, sizeof(num), "%lld", job);
                        off = put_field(d, sizeof(d), off, "JOB", num);
                }
                if (pipeline)
                        off = put_field(d, sizeof(d), off, "PIPELINE", pipeline);
                if (step)
                        off = put_field(d, sizeof(d), off, "STEP", step);
                if (to_journal(d, off))
                        return;
        }
        emit_line(level, group, msg);
}

static void emit_line(int level, const char *group, const char *msg)
{
        static const char *const names[] = { [LOG_ERR] = "error", [LOG_WARNING] = "warning",
                                             [LOG_INFO] = "info", [LOG_DEBUG] = "debug" };
        const char *name = level >= 0 && level <= LOG_DEBUG && names[level] ? names[level] : "log";
        if (getenv("JOURNAL_STREAM")) {
                fprintf(stderr, "<%d>[%s] %s\n", level, group, msg);
        } else {
                struct timespec ts;
                struct tm tm;
                char when[32];
                clock_gettime(CLOCK_REALTIME, &ts);
                gmtime_r(&ts.tv_sec, &tm);
                strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
                fprintf(stderr, "%s.%03ldZ %s [%s] %s\n", when, ts.tv_nsec / 1000000, name, group,
                        msg);
        }
}
