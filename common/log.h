/* log.h - one line per message on stderr, with a group and a level.
 *
 * Under systemd (JOURNAL_STREAM set) each line starts with the "<N>" priority
 * prefix that journald understands; otherwise with a timestamp.  Library-like
 * modules (common/, load/) never log above debug: they return errors and the
 * caller that knows the context logs once. */
#pragma once
#include <stdarg.h>

enum log_level { LOG_ERR = 3, LOG_WARNING = 4, LOG_INFO = 6, LOG_DEBUG = 7 };

/* "error", "warning", "info", "debug" -> level; -1 when unknown. */
int log_level_from_name(const char *name);
void log_set_level(int level);
int log_get_level(void);

void log_msg(int level, const char *group, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#define log_error(grp, ...) log_msg(LOG_ERR, grp, __VA_ARGS__)
#define log_warning(grp, ...) log_msg(LOG_WARNING, grp, __VA_ARGS__)
#define log_info(grp, ...) log_msg(LOG_INFO, grp, __VA_ARGS__)
#define log_debug(grp, ...) log_msg(LOG_DEBUG, grp, __VA_ARGS__)
