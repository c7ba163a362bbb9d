/* log.c - see log.h. */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int max_level = LOG_INFO;

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

void log_msg(int level, const char *group, const char *fmt, ...)
{
        if (level > max_level)
                return;
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

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
