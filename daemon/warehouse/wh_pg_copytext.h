/* wh_pg_copytext.h - rows in PostgreSQL's COPY text format (internal to
 * warehouse/).  Pure functions, no I/O and no libuv: the PostgreSQL driver
 * runs them on the thread pool for each wh_copy_rows batch and hands the
 * text to PQputCopyData on the loop. */
#pragma once
#include <stddef.h>

#include "util.h"
#include "warehouse/wh.h"

/* Appends rows to out, one line per row: cells separated by tabs, NULL as
 * \N, integers in decimal, reals as the shortest decimal that reads back as
 * the same double (NaN, Infinity, -Infinity as float8in spells them), text
 * with backslash, newline, carriage return and tab escaped.  0, or -ENOMEM
 * / -E2BIG from out (nothing appended then). */
int wh_pg_copytext(const struct wh_rows *rows, struct buf *out);
