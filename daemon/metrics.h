/* metrics.h - etld's metrics in the Prometheus text exposition format
 * (version 0.0.4): build info, the queue, and the journal's counters of
 * jobs, rows, bytes, load errors and step retries, and the time and duration
 * of each pipeline's latest success.  See metrics.c. */
#pragma once
#include <stddef.h>

#include "journal.h"
#include "util.h"

/* Appends the whole exposition to out; running and queued are the engine's
 * counts now.  0 or -ENOMEM. */
int metrics_text(struct journal *j, unsigned running, unsigned queued, struct buf *out);

/* Replaces the file at path with text, atomically (a temporary file beside
 * it, then rename).  -errno with err naming the file. */
int metrics_write_file(const char *path, const char *text, char *err, size_t errlen);
