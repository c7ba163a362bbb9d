/* etlctl.c - the command-line client of etld: main, the global options, the
 * table of commands and the top-level --help.
 *
 * etlctl [--socket PATH] [--json] [--debug] COMMAND [ARGS]...  The global
 * options are parsed up to the command name; the command parses the rest
 * (commands.c), where the same global options are accepted again.  Every
 * path ends in one exit status from cli.h, and --help lists them. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "show.h"
#include "util.h"

struct command {
        const char *name;
        int (*run)(struct cli *cli, int argc, char **argv);
};

static const struct command commands[] = {
    {"submit", cmd_submit},   {"status", cmd_status}, {"list", cmd_list},     {"watch", cmd_watch},
    {"cancel", cmd_cancel},   {"retry", cmd_retry},   {"errors", cmd_errors}, {"ping", cmd_ping},
    {"version", cmd_version}, {"backup", cmd_backup}, {"logs", cmd_logs},
    {"metrics", cmd_metrics}, {"keys", cmd_keys},
};

static const char usage[] =
    "Usage: etlctl [--socket PATH] [--json] [--debug] COMMAND [ARGS]...\n"
    "\n"
    "Talks to etld, the daemon that runs the Sparkify ETL jobs, over its Unix socket.\n"
    "\n"
    "Commands:\n"
    "  submit PIPELINE [--config FILE]... [--set SECTION.KEY=VALUE]... [--key KEY]\n"
    "                  [--wait]\n"
    "                  queue a job (etl, stage, provision, teardown), print its id\n"
    "  status [JOB]    a job in detail (steps, checks, what to do next), or without\n"
    "                  JOB what etld is running and queuing now\n"
    "  list [--limit N] [--pipeline NAME] [--state STATE] [--key KEY] [--since WHEN]\n"
    "                  recent jobs, newest first, with their keys and durations\n"
    "  watch JOB       follow a job's progress until it ends\n"
    "  cancel JOB      stop a queued or running job\n"
    "  retry JOB [--wait]\n"
    "                  run a failed or cancelled job again as a new job, with the\n"
    "                  same pipeline, settings and key\n"
    "  errors JOB [--limit N]\n"
    "                  the records a job's COPY rejected (like STL_LOAD_ERRORS)\n"
    "  logs JOB [--step STEP]\n"
    "                  a job's event log with the time of each event\n"
    "  metrics         etld's counters in the Prometheus text format\n"
    "  backup FILE     have etld write a consistent copy of its journal into FILE\n"
    "                  (a new file; root or etld's uid only)\n"
    "  ping            check that etld answers\n"
    "  keys            the configuration keys --set takes (no etld needed)\n"
    "  version         etlctl's version, then etld's and the pipelines it runs\n"
    "  help [COMMAND]  this help, or a command's (same as COMMAND --help)\n"
    "\n"
    "Options (before or after the command):\n"
    "  --socket PATH   etld's socket (default: $ETLD_SOCKET, else " CLI_DEFAULT_SOCKET ")\n"
    "  --json          print etld's replies as JSON, one object per line\n"
    "  --debug         trace the JSON-RPC lines sent and received on stderr\n"
    "  -h, --help      show this help\n"
    "  -V, --version   print etlctl's version (no etld needed)\n"
    "\n"
    "Exit status:\n"
    "  0  success; for submit --wait, watch and status JOB: the job succeeded\n"
    "  1  the job failed or was cancelled (submit --wait, watch, status JOB)\n"
    "  2  usage error: unknown command or option, bad JOB number, bad setting\n"
    "  3  no etld answers on the socket, or it closed the connection\n"
    "  4  etld returned an error (no such job, job already finished, ...)\n"
    "  5  status JOB: the job is still queued or running\n"
    "\n"
    "Run 'etlctl COMMAND --help' for a command's options.\n";

/* ---- helpers shared by the commands (cli.h) ------------------------------------ */

int cli_fail(int status, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fputs("etlctl: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        return status;
}

int cli_usage_hint(const char *prog)
{
        fprintf(stderr, "Try '%s --help' for more information.\n", prog);
        return CLI_EXIT_USAGE;
}

int cli_usage_error(const char *prog, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s: ", prog);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        return cli_usage_hint(prog);
}

int cli_parse_positive(const char *prog, const char *what, const char *arg, long long *ret)
{
        long long v;
        if (util_parse_ll(arg, &v) < 0 || v <= 0)
                return cli_usage_error(prog, "%s must be a positive whole number, not '%s'", what,
                                       arg);
        *ret = v;
        return 0;
}

bool cli_common_option(struct cli *cli, int opt, const char *arg)
{
        switch (opt) {
        case OPT_JSON:
                cli->json = true;
                return true;
        case OPT_SOCKET:
                cli->socket = arg;
                return true;
        case OPT_DEBUG:
                cli->debug = true;
                log_set_level(LOG_DEBUG);
                return true;
        default:
                return false;
        }
}

void cli_print_json(const json_t *v)
{
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (s)
                printf("%s\n", s);
        free(s);
        fflush(stdout);
}

bool cli_state_final(const char *state)
{
        return strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
               strcmp(state, "cancelled") == 0;
}

int cli_state_status(const char *state)
{
        if (strcmp(state, "succeeded") == 0)
                return CLI_EXIT_OK;
        if (strcmp(state, "failed") == 0 || strcmp(state, "cancelled") == 0)
                return CLI_EXIT_JOB_FAILED;
        return CLI_EXIT_UNFINISHED;
}

/* ---- main ------------------------------------------------------------------------ */

static const struct command *find_command(const char *name)
{
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (strcmp(commands[i].name, name) == 0)
                        return &commands[i];
        return NULL;
}

/* Runs cmd with argv[0] named "etlctl CMD" so getopt's messages say which. */
static int run(const struct command *cmd, struct cli *cli, int argc, char **argv)
{
        char prog[64];
        snprintf(prog, sizeof(prog), "etlctl %s", cmd->name);
        argv[0] = prog;
        return cmd->run(cli, argc, argv);
}

/* etlctl help [COMMAND] */
static int help(struct cli *cli, int argc, char **argv)
{
        if (argc < 2) {
                fputs(usage, stdout);
                return CLI_EXIT_OK;
        }
        if (argc > 2)
                return cli_usage_error("etlctl help", "unexpected argument '%s'", argv[2]);
        const struct command *cmd = find_command(argv[1]);
        if (!cmd)
                return cli_usage_error("etlctl", "unknown command '%s'", argv[1]);
        char flag[] = "--help";
        char *args[] = {argv[1], flag, NULL};
        return run(cmd, cli, 2, args);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            CLI_COMMON_OPTIONS, {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0}};
        struct cli cli = {0};
        int opt;

        show_init();
        argv[0] = (char *)"etlctl";
        /* '+': stop at the command name, the command parses the rest. */
        while ((opt = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
                if (opt == 'h') {
                        fputs(usage, stdout);
                        return CLI_EXIT_OK;
                }
                if (opt == 'V') {
                        printf("etlctl %s\n", ETLD_VERSION);
                        return CLI_EXIT_OK;
                }
                if (!cli_common_option(&cli, opt, optarg))
                        return cli_usage_hint("etlctl");
        }
        if (optind >= argc)
                return cli_usage_error("etlctl", "missing COMMAND (submit, status, list, "
                                                 "watch, cancel, retry, errors, ping, "
                                                 "version, keys)");
        const char *name = argv[optind];
        if (strcmp(name, "help") == 0)
                return help(&cli, argc - optind, argv + optind);
        const struct command *cmd = find_command(name);
        if (!cmd)
                return cli_usage_error("etlctl", "unknown command '%s'", name);
        return run(cmd, &cli, argc - optind, argv + optind);
}
