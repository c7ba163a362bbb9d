/* watch.h - follow one job's events until it ends (`watch`, `submit --wait`). */
#pragma once
#include "cli.h"
#include "conn.h"

/* Sends `watch` for job on c and prints its events until the "end" event:
 * a live progress line on a terminal, one line per event otherwise, JSON
 * lines with --json.  Returns the job's exit status (0 succeeded, 1 failed or
 * cancelled) or the connection's (3, 4). */
int watch_job(const struct cli *cli, struct conn *c, long long job);
