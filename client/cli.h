/* cli.h - what etlctl's files share: the exit statuses, the options every
 * command accepts, and the few helpers that turn a mistake into a message.
 *
 * etlctl is a short-lived process: a helper here prints its sentence on stderr
 * ("etlctl: ...") and hands back the exit status, and the caller returns it up
 * to main.  Nothing here talks to the socket; that is conn.h. */
#pragma once
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>

/* Exit statuses; `etlctl --help` documents them, keep the two in step. */
enum {
        CLI_EXIT_OK = 0,         /* success, or the job succeeded */
        CLI_EXIT_JOB_FAILED = 1, /* the job failed or was cancelled */
        CLI_EXIT_USAGE = 2,      /* bad command line */
        CLI_EXIT_NO_DAEMON = 3,  /* nothing answers on the socket, or it hung up */
        CLI_EXIT_RPC_ERROR = 4,  /* etld answered with an error */
        CLI_EXIT_UNFINISHED = 5, /* status JOB: still queued or running */
};

#define CLI_DEFAULT_SOCKET "/run/etld/etld.sock"
#define CLI_LINE_MAX (16u * 1024 * 1024) /* longest line accepted from etld */

struct cli {
        const char *socket; /* --socket, else $ETLD_SOCKET, else the default */
        bool json;          /* --json: print etld's results as JSON lines */
        bool debug;         /* --debug: trace every line on stderr */
};

/* Long options every command accepts besides its own, and their values. */
enum { OPT_JSON = 0x100, OPT_SOCKET, OPT_DEBUG, OPT_FIRST_OWN };
#define CLI_COMMON_OPTIONS                                                                         \
        {"json", no_argument, NULL, OPT_JSON}, {"socket", required_argument, NULL, OPT_SOCKET},    \
            {"debug", no_argument, NULL, OPT_DEBUG},                                               \
        {                                                                                          \
                "help", no_argument, NULL, 'h'                                                     \
        }

/* Handles one of CLI_COMMON_OPTIONS except --help; false for any other. */
bool cli_common_option(struct cli *cli, int opt, const char *arg);

/* Prints "etlctl: MESSAGE" on stderr and returns status. */
int cli_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* prog is "etlctl COMMAND" (or "etlctl").  Prints "PROG: MESSAGE" and the
 * hint to run PROG --help; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Only the hint, after getopt has printed what is wrong. */
int cli_usage_hint(const char *prog);

/* Parses a positive integer named `what` ("JOB", "--limit"); 0, or
 * CLI_EXIT_USAGE after a message naming the argument. */
int cli_parse_positive(const char *prog, const char *what, const char *arg, long long *ret);

/* Writes v as one compact JSON line on stdout. */
void cli_print_json(const json_t *v);

/* Exit status for a job state: 0 succeeded, 1 failed/cancelled, 5 otherwise. */
int cli_state_status(const char *state);
bool cli_state_final(const char *state);

/* The commands; argv[0] is "etlctl COMMAND", options follow. */
int cmd_submit(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_list(struct cli *cli, int argc, char **argv);
int cmd_watch(struct cli *cli, int argc, char **argv);
int cmd_cancel(struct cli *cli, int argc, char **argv);
int cmd_retry(struct cli *cli, int argc, char **argv);
int cmd_errors(struct cli *cli, int argc, char **argv);
int cmd_logs(struct cli *cli, int argc, char **argv);
int cmd_metrics(struct cli *cli, int argc, char **argv);
int cmd_ping(struct cli *cli, int argc, char **argv);
int cmd_version(struct cli *cli, int argc, char **argv);
int cmd_backup(struct cli *cli, int argc, char **argv);
int cmd_keys(struct cli *cli, int argc, char **argv);
