/* log.h - one line per message on stderr, with a group and a level.
 *
 * Under systemd (JOURNAL_STREAM set) each line starts with the "<N>" priority
 * prefix that journald understands; otherwise with a timestamp.  Messages
 * about a job (log_job) carry fields too: under systemd they go to journald
 * through its native protocol (one datagram to /run/systemd/journal/socket:
 * MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, ETLD_GROUP, JOB, PIPELINE, STEP), so
 * `journalctl JOB=12` or `journalctl -p err PIPELINE=etl` finds them; when
 * that socket refuses, the line goes to stderr as any other.  Library-like
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

/* A message about a job: job > 0, pipeline and step may be NULL. */
void log_job(int level, const char *group, long long job, const char *pipeline, const char *step,
             const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* The journald socket log_job writes to under systemd; NULL: the default
 * (/run/systemd/journal/socket).  For tests. */
void log_set_journal_socket(const char *path);

#define log_error(grp, ...) log_msg(LOG_ERR, grp, __VA_ARGS__)
#define log_warning(grp, ...) log_msg(LOG_WARNING, grp, __VA_ARGS__)
#define log_info(grp, ...) log_msg(LOG_INFO, grp, __VA_ARGS__)
#define log_debug(grp, ...) log_msg(LOG_DEBUG, grp, __VA_ARGS__)
