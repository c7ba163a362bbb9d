/* show.h - how etlctl prints etld's answers for a person: job details,
 * tables, times, durations, byte counts.
 *
 * Pure formatting: JSON in, text on a FILE out.  Text that came from etld is
 * never trusted to be tidy: control characters are replaced before they reach
 * a terminal. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Call once at start-up: picks ✓/✗ or ok/FAIL from the locale. */
void show_init(void);

/* "2024-05-01T03:00:00Z" (fractions allowed) -> seconds since the epoch. */
bool show_parse_time(const char *iso, double *ret);

/* 4.2s, 3m05s, 2h03m, 3d04h. */
void show_duration(double seconds, char *out, size_t n);
/* 123 B, 1.2 KiB, 45.0 MiB... */
void show_bytes(double bytes, char *out, size_t n);
/* "10 objects, 456 rows, 1.2 MiB" from a progress object, after its "text"
 * when it has one ("creating, 4 min"); "" when empty. */
void show_progress(const json_t *progress, char *out, size_t n);
/* A string with control characters replaced, cut to max display columns
 * (0 = no limit) with "…" or "..." when cut. */
void show_clean(const char *s, size_t max, char *out, size_t n);

/* Mark for a passed or failed check. */
const char *show_mark(bool ok);

void show_job(FILE *f, const json_t *job);         /* status JOB */
void show_summary(FILE *f, const json_t *summary); /* status */
void show_list(FILE *f, const json_t *jobs);       /* list */
void show_logs(FILE *f, const json_t *events);     /* logs JOB */
void show_errors(FILE *f, const json_t *errors);   /* errors JOB */

/* Columns of the terminal on fd, or 0 when it is not one. */
int show_term_width(int fd);
