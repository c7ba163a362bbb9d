/* commands.c - one function per etlctl command: its --help, its options, the
 * request it sends and how the reply is printed.
 *
 * Every command parses its own argv with getopt_long (options may come before
 * or after the positional arguments), checks everything it can before
 * connecting (job numbers, limits, --config files, --set keys), then makes one
 * connection and one or two calls.  Output goes through show.h, or is the
 * result as one JSON line with --json. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "cli.h"
#include "conn.h"
#include "show.h"
#include "util.h"
#include "watch.h"

#define COMMON_HELP                                                                                \
        "\nOptions every command accepts:\n"                                                       \
        "  --json           print etld's reply as JSON, one object per line\n"                     \
        "  --socket PATH    etld's socket (default: $ETLD_SOCKET, else " CLI_DEFAULT_SOCKET ")\n"  \
        "  --debug          trace the JSON-RPC lines sent and received on stderr\n"                \
        "  -h, --help       show this help\n"

#define STATUS_HELP                                                                                \
        "  2  usage error\n"                                                                       \
        "  3  no etld answers on the socket, or it closed the connection\n"                        \
        "  4  etld returned an error (the message says which)\n"

static const char submit_help[] =
    "Usage: etlctl submit PIPELINE [--config FILE]... [--set SECTION.KEY=VALUE]...\n"
    "                     [--key KEY] [--wait]\n"
    "\n"
    "Queues a run of PIPELINE (etl, stage, provision, teardown: 'etlctl version'\n"
    "lists those etld runs) and prints its job id.  Settings and the pipeline\n"
    "are checked here, before the job is sent: an unknown key (with the nearest\n"
    "known one), a value of the wrong type or a pipeline etld does not run is a\n"
    "usage error naming it.\n"
    "\n"
    "  --config FILE    settings for this job from an INI file laid out like\n"
    "                   /etc/etld/etld.conf; repeatable, read in order\n"
    "  --set S.K=VALUE  one setting, e.g. --set warehouse.target=sqlite:///tmp/w.db;\n"
    "                   repeatable, applied after the --config files\n"
    "  --key KEY        names the job's latest attempt: while the job under KEY is\n"
    "                   queued, running or succeeded, etld returns it instead of\n"
    "                   queuing another; once it failed or was cancelled, a new\n"
    "                   attempt is queued (and said so).  The pipeline and\n"
    "                   settings must be those KEY's job was submitted with:\n"
    "                   etld refuses others, naming the settings that differ\n"
    "  --wait           then follow the job like 'etlctl watch' and exit with its\n"
    "                   outcome\n" COMMON_HELP "\nExit status:\n"
    "  0  queued (with --wait: the job succeeded)\n"
    "  1  with --wait: the job failed or was cancelled\n" STATUS_HELP;

static const char status_help[] =
    "Usage: etlctl status [JOB]\n"
    "\n"
    "With JOB: the job's state, when it was created, started and finished, who\n"
    "submitted it, its key, the job it runs again and the one that ran it again,\n"
    "its error and what to do next; then each step (state, attempts,\n"
    "time, objects/rows/bytes), the data-quality checks, the step outputs and the\n"
    "settings it runs with.\n"
    "Without JOB: etld's version and uptime, and the jobs running or queued.\n" COMMON_HELP
    "\nExit status:\n"
    "  0  success; with JOB: the job succeeded\n"
    "  1  JOB failed or was cancelled\n" STATUS_HELP "  5  JOB is still queued or running\n";

static const char list_help[] =
    "Usage: etlctl list [--limit N] [--pipeline NAME] [--state STATE] [--key KEY]\n"
    "                   [--since WHEN]\n"
    "\n"
    "Recent jobs, newest first: ID, PIPELINE, STATE, KEY, CREATED, FINISHED,\n"
    "DURATION (from start to end, or until now while it runs), RETRY_OF (the job\n"
    "it runs again, after 'etlctl retry' or a new attempt under a key), ERROR (cut\n"
    "to fit; 'etlctl status JOB' shows it whole).\n"
    "\n"
    "  --limit N        at most N jobs (default 50)\n"
    "  --pipeline NAME  only jobs of this pipeline\n"
    "  --state STATE    only jobs in this state: queued, running, succeeded, failed,\n"
    "                   cancelled\n"
    "  --key KEY        only jobs submitted under this key\n"
    "  --since WHEN     only jobs created since WHEN: a UTC date or time\n"
    "                   (2026-12-01, 2026-12-01T22:00:00Z) or a time ago (90m, 36h, 7d)\n" COMMON_HELP
    "\nExit status:\n  0  success\n" STATUS_HELP;

static const char watch_help[] =
    "Usage: etlctl watch JOB\n"
    "\n"
    "Follows JOB until it ends.  On a terminal: one status line redrawn in place\n"
    "(step, state, objects, rows, bytes), with finished steps and log messages\n"
    "printed above it.  Into a pipe or file: one timestamped line per event.\n"
    "With --json: the watch reply, then each event's params, one JSON object per\n"
    "line.\n" COMMON_HELP "\nExit status:\n"
    "  0  the job succeeded\n"
    "  1  the job failed or was cancelled\n" STATUS_HELP;

static const char cancel_help[] =
    "Usage: etlctl cancel JOB\n"
    "\n"
    "Stops JOB: a queued job ends at once, a running one once its in-flight\n"
    "transfers and SQL are stopped ('cancelling'; 'etlctl watch JOB' shows the\n"
    "end).  Cloud resources it created stay recorded for the teardown pipeline.\n"
    "A job that has already ended is left as it is, with a note saying how it\n"
    "ended (like 'systemctl stop' of a stopped unit).\n" COMMON_HELP
    "\nExit status:\n  0  JOB is cancelled, cancelling, or had already ended\n" STATUS_HELP;

static const char retry_help[] =
    "Usage: etlctl retry JOB [--wait]\n"
    "\n"
    "Runs JOB, a job that failed or was cancelled, again as a new job: the same\n"
    "pipeline, the settings it was submitted with (the \"config\" of 'etlctl status\n"
    "JOB'; secrets are never kept with a job, they come from etld.conf), its key,\n"
    "and etld.conf as it is now.  You are the new job's submitter; its retry_of\n"
    "is JOB.  etld refuses a job that is queued, running or succeeded, or one\n"
    "retried already (it names the latest attempt), and says why.\n"
    "\n"
    "  --wait           then follow the new job like 'etlctl watch' and exit with\n"
    "                   its outcome\n" COMMON_HELP "\nExit status:\n"
    "  0  queued (with --wait: the job succeeded)\n"
    "  1  with --wait: the job failed or was cancelled\n" STATUS_HELP;

static const char errors_help[] =
    "Usage: etlctl errors JOB [--limit N]\n"
    "\n"
    "The records JOB's COPY rejected, shaped like Redshift's STL_LOAD_ERRORS: step,\n"
    "file, line, column, type, position, error code and reason, raw field value\n"
    "(--json adds the raw line).\n"
    "\n"
    "  --limit N        at most N errors (default 100)\n" COMMON_HELP
    "\nExit status:\n  0  success\n" STATUS_HELP;

static const char ping_help[] = "Usage: etlctl ping\n"
                                "\n"
                                "Checks that etld answers on its socket.\n" COMMON_HELP
                                "\nExit status:\n  0  etld answers\n" STATUS_HELP;

static const char version_help[] =
    "Usage: etlctl version\n"
    "\n"
    "Prints etlctl's version, then asks etld for its version, protocol and the\n"
    "pipelines it runs ('etlctl --version' prints only etlctl's, without etld).\n"
    "With --json: etld's reply with \"etlctl\" (etlctl's version) added.\n" COMMON_HELP
    "\nExit status:\n  0  success\n" STATUS_HELP;

static const char backup_help[] =
    "Usage: etlctl backup FILE\n"
    "\n"
    "Has etld write a consistent copy of its journal (jobs, steps, outputs, load\n"
    "errors, events) into FILE while it runs, with SQLite's online backup, a\n"
    "little per turn of its loop so other clients are answered meanwhile.  FILE\n"
    "must not exist (a backup never overwrites); a relative FILE is taken from the\n"
    "current directory.  etld writes it as its own user, mode 0600, so only root\n"
    "and etld's uid may ask.  The copy is a plain SQLite database: open it with\n"
    "sqlite3, or put it in place of STATE_DIR/journal.db while etld is stopped.\n" COMMON_HELP
    "\nExit status:\n  0  FILE written\n" STATUS_HELP;

static const char keys_help[] =
    "Usage: etlctl keys\n"
    "\n"
    "Lists the configuration keys --set and --config take (etld.conf(5) says\n"
    "more), one a line: SECTION.KEY, its default, and what it is for.  Needs no\n"
    "etld; the shell completions read it.  With --json: one object per key.\n" COMMON_HELP
    "\nExit status:\n  0  success\n  2  usage error\n";

static const struct option common_only[] = {CLI_COMMON_OPTIONS, {NULL, 0, NULL, 0}};

/* Runs getopt_long over a command with only the common options and checks
 * the number of positional arguments.  Returns -1 to go on (with *pos at
 * the first positional), or an exit status. */
static int parse_simple(struct cli *cli, int argc, char **argv, const char *help, int min_pos,
                        int max_pos, int *pos)
{
        int opt;
        optind = 0;
        while ((opt = getopt_long(argc, argv, "h", common_only, NULL)) != -1) {
                if (opt == 'h') {
                        fputs(help, stdout);
                        return CLI_EXIT_OK;
                }
                if (!cli_common_option(cli, opt, optarg))
                        return cli_usage_hint(argv[0]);
        }
        int n = argc - optind;
        if (n < min_pos)
                return cli_usage_error(argv[0], "missing JOB");
        if (n > max_pos)
                return cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind + max_pos]);
        *pos = optind;
        return -1;
}

static int open_conn(struct cli *cli, struct conn *c)
{
        if (!cli->socket) {
                const char *env = getenv("ETLD_SOCKET");
                cli->socket = env && *env ? env : CLI_DEFAULT_SOCKET;
        }
        return conn_open(c, cli->socket, cli->debug);
}

/* Connects, makes one call and closes; 0 with *result. */
static int call_once(struct cli *cli, const char *method, json_t *params, json_t **result)
{
        struct conn c;
        int r = open_conn(cli, &c);
        if (r == 0)
                r = conn_call(&c, method, params, result);
        else
                json_decref(params);
        conn_close(&c);
        return r;
}

/* ---- submit and retry ----------------------------------------------------- */

/* Prints the reply of a submit or retry ({"job", "existing", "state",
 * "retry_of"}; key: submit's --key or NULL), takes res, and with wait
 * follows the job on c.  Returns the exit status. */
static int submitted(struct cli *cli, struct conn *c, json_t *res, const char *key, bool wait)
{
        long long job = json_integer_value(json_object_get(res, "job"));
        long long retry_of = json_integer_value(json_object_get(res, "retry_of"));
        const char *state = json_string_value(json_object_get(res, "state"));
        bool existing = json_is_true(json_object_get(res, "existing"));
        if (cli->json)
                cli_print_json(res);
        else if (existing)
                printf("job %lld %s (already submitted with key '%s')\n", job, state ? state : "?",
                       key ? key : "");
        else if (retry_of > 0 && key)
                printf("job %lld %s: a new attempt of job %lld, which failed or was cancelled, "
                       "under key '%s'\n",
                       job, state ? state : "queued", retry_of, key);
        else if (retry_of > 0)
                printf("job %lld %s: a retry of job %lld\n", job, state ? state : "queued",
                       retry_of);
        else
                printf("job %lld %s\n", job, state ? state : "queued");
        fflush(stdout);
        json_decref(res);
        if (!wait)
                return CLI_EXIT_OK;
        if (job <= 0)
                return cli_fail(CLI_EXIT_RPC_ERROR, "etld's reply has no job id");
        return watch_job(cli, c, job);
}

/* Whether etld runs `pipeline`: it names them in its version reply (the
 * daemon's table of pipelines is the truth; a list kept here too would go
 * out of step with an etld of another version).  0 when it does, or when
 * etld is too old to say; else a usage error listing them. */
static int check_pipeline(struct conn *c, const char *prog, const char *pipeline)
{
        json_t *res;
        int r = conn_call(c, "version", json_object(), &res);
        if (r)
                return r;
        json_t *list = json_object_get(res, "pipelines");
        if (!json_is_array(list) || json_array_size(list) == 0) {
                json_decref(res);
                return 0;
        }
        char names[512] = "";
        size_t len = 0, i;
        json_t *p;
        bool known = false;
        json_array_foreach(list, i, p)
        {
                const char *name = json_string_value(json_object_get(p, "name"));
                if (!name)
                        continue;
                known = known || strcmp(name, pipeline) == 0;
                int n = snprintf(names + len, sizeof(names) - len, "%s%s", len ? ", " : "", name);
                if (n > 0 && (size_t)n < sizeof(names) - len)
                        len += (size_t)n;
        }
        if (!known)
                r = cli_usage_error(prog, "unknown pipeline '%s' (etld runs: %s)", pipeline, names);
        json_decref(res);
        return r;
}

enum {
        OPT_CONFIG = OPT_FIRST_OWN,
        OPT_SET,
        OPT_KEY,
        OPT_WAIT,
        OPT_LIMIT,
        OPT_PIPELINE,
        OPT_STATE,
        OPT_SINCE,
        OPT_STEP,
};

int cmd_submit(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"config", required_argument, NULL, OPT_CONFIG},
            {"set", required_argument, NULL, OPT_SET},
            {"key", required_argument, NULL, OPT_KEY},
            {"wait", no_argument, NULL, OPT_WAIT},
            CLI_COMMON_OPTIONS,
            {NULL, 0, NULL, 0},
        };
        const char **configs = calloc((size_t)argc, sizeof(char *));
        const char **sets = calloc((size_t)argc, sizeof(char *));
        size_t nconfigs = 0, nsets = 0;
        const char *key = NULL;
        bool wait = false;
        struct cfg *cfg = NULL;
        int r = -1, opt;
        if (!configs || !sets) {
                r = cli_fail(CLI_EXIT_USAGE, "out of memory");
                goto out;
        }
        optind = 0;
        while (r < 0 && (opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (opt) {
                case OPT_CONFIG:
                        configs[nconfigs++] = optarg;
                        break;
                case OPT_SET:
                        sets[nsets++] = optarg;
                        break;
                case OPT_KEY:
                        if (!*optarg)
                                r = cli_usage_error(argv[0], "--key must not be empty");
                        key = optarg;
                        break;
                case OPT_WAIT:
                        wait = true;
                        break;
                case 'h':
                        fputs(submit_help, stdout);
                        r = CLI_EXIT_OK;
                        break;
                default:
                        if (!cli_common_option(cli, opt, optarg))
                                r = cli_usage_hint(argv[0]);
                }
        }
        if (r >= 0)
                goto out;
        if (argc - optind < 1) {
                r = cli_usage_error(argv[0], "missing PIPELINE (e.g. etl)");
                goto out;
        }
        if (argc - optind > 1) {
                r = cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind + 1]);
                goto out;
        }
        const char *pipeline = argv[optind];
        if (!*pipeline) {
                r = cli_usage_error(argv[0], "PIPELINE must not be empty");
                goto out;
        }

        /* Settings: the --config files in order, then the --set overrides. */
        char err[1024];
        cfg = cfg_new();
        if (!cfg) {
                r = cli_fail(CLI_EXIT_USAGE, "out of memory");
                goto out;
        }
        for (size_t i = 0; i < nconfigs; i++) {
                if (cfg_load_file(cfg, configs[i], err, sizeof(err)) < 0) {
                        r = cli_fail(CLI_EXIT_USAGE, "--config: %s", err);
                        goto out;
                }
        }
        for (size_t i = 0; i < nsets; i++) {
                if (cfg_set_assignment(cfg, sets[i], err, sizeof(err)) < 0) {
                        r = cli_fail(CLI_EXIT_USAGE, "--set: %s", err);
                        goto out;
                }
        }
        json_t *params =
            json_pack("{s:s, s:o}", "pipeline", pipeline, "settings", cfg_to_json(cfg, true));
        if (params && key)
                json_object_set_new(params, "key", json_string(key));

        struct conn c;
        r = open_conn(cli, &c);
        if (r) {
                json_decref(params);
                conn_close(&c);
                goto out;
        }
        r = check_pipeline(&c, argv[0], pipeline);
        if (r) {
                json_decref(params);
                conn_close(&c);
                goto out;
        }
        json_t *res;
        r = conn_call(&c, "submit", params, &res);
        if (r) {
                conn_close(&c);
                goto out;
        }
        r = submitted(cli, &c, res, key, wait);
        conn_close(&c);
out:
        cfg_free(cfg);
        free(configs);
        free(sets);
        return r;
}

int cmd_retry(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"wait", no_argument, NULL, OPT_WAIT},
            CLI_COMMON_OPTIONS,
            {NULL, 0, NULL, 0},
        };
        bool wait = false;
        int opt, r;
        optind = 0;
        while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                if (opt == 'h') {
                        fputs(retry_help, stdout);
                        return CLI_EXIT_OK;
                }
                if (opt == OPT_WAIT)
                        wait = true;
                else if (!cli_common_option(cli, opt, optarg))
                        return cli_usage_hint(argv[0]);
        }
        if (argc - optind < 1)
                return cli_usage_error(argv[0], "missing JOB");
        if (argc - optind > 1)
                return cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind + 1]);
        long long job;
        if ((r = cli_parse_positive(argv[0], "JOB", argv[optind], &job)))
                return r;
        struct conn c;
        json_t *res;
        r = open_conn(cli, &c);
        if (r == 0)
                r = conn_call(&c, "retry", json_pack("{s:I}", "job", (json_int_t)job), &res);
        if (r == 0)
                r = submitted(cli, &c, res, NULL, wait);
        conn_close(&c);
        return r;
}

/* ---- status ------------------------------------------------------------------ */

int cmd_status(struct cli *cli, int argc, char **argv)
{
        int pos, r = parse_simple(cli, argc, argv, status_help, 0, 1, &pos);
        if (r >= 0)
                return r;
        long long job = 0;
        if (pos < argc && (r = cli_parse_positive(argv[0], "JOB", argv[pos], &job)))
                return r;
        json_t *res;
        r = call_once(cli, "status",
                      job ? json_pack("{s:I}", "job", (json_int_t)job) : json_object(), &res);
        if (r)
                return r;
        if (cli->json)
                cli_print_json(res);
        else if (job)
                show_job(stdout, res);
        else
                show_summary(stdout, res);
        if (job) {
                const char *state = json_string_value(json_object_get(res, "state"));
                r = cli_state_status(state ? state : "unknown");
        }
        json_decref(res);
        return r;
}

/* ---- list and errors ---------------------------------------------------------- */

/* Parses "COMMAND [JOB] [--limit N]"; -1 to go on. */
static int parse_limit(struct cli *cli, int argc, char **argv, const char *help, bool want_job,
                       long long *job, long long *limit)
{
        static const struct option opts[] = {
            {"limit", required_argument, NULL, OPT_LIMIT},
            CLI_COMMON_OPTIONS,
            {NULL, 0, NULL, 0},
        };
        int opt, r;
        optind = 0;
        while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                if (opt == 'h') {
                        fputs(help, stdout);
                        return CLI_EXIT_OK;
                }
                if (opt == OPT_LIMIT) {
                        if ((r = cli_parse_positive(argv[0], "--limit", optarg, limit)))
                                return r;
                } else if (!cli_common_option(cli, opt, optarg))
                        return cli_usage_hint(argv[0]);
        }
        int want = want_job ? 1 : 0;
        if (argc - optind < want)
                return cli_usage_error(argv[0], "missing JOB");
        if (argc - optind > want)
                return cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind + want]);
        if (want_job && (r = cli_parse_positive(argv[0], "JOB", argv[optind], job)))
                return r;
        return -1;
}

/* Calls method; prints the reply as JSON with --json, else the array under
 * key with show. */
static int call_and_show(struct cli *cli, const char *method, json_t *params, const char *key,
                         void (*show)(FILE *f, const json_t *items))
{
        json_t *res;
        int r = call_once(cli, method, params, &res);
        if (r)
                return r;
        if (cli->json)
                cli_print_json(res);
        else
                show(stdout, json_object_get(res, key));
        json_decref(res);
        return CLI_EXIT_OK;
}

/* --since: "2026-12-01", "2026-12-01T22:00:00Z" (UTC), or "N[smhd]" ago;
 * milliseconds since the epoch. */
static int parse_since(const char *prog, const char *arg, int64_t *ret)
{
        char *end;
        errno = 0;
        long long n = strtoll(arg, &end, 10);
        static const struct {
                char unit;
                int64_t ms;
        } units[] = {{'s', 1000}, {'m', 60000}, {'h', 3600000}, {'d', 86400000}};
        if (errno == 0 && end != arg && n >= 0 && n < 100000 && end[0] && !end[1]) {
                for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                        if (*end == units[i].unit) {
                                *ret = util_now_ms() - n * units[i].ms;
                                return 0;
                        }
        }
        struct tm tm = {0};
        const char *rest = strptime(arg, "%Y-%m-%d", &tm);
        if (rest && *rest == 'T')
                rest = strptime(rest + 1, "%H:%M:%S", &tm);
        if (rest && (*rest == 'Z' || *rest == '\0') && (!*rest || !rest[1])) {
                time_t t = timegm(&tm);
                if (t != (time_t)-1) {
                        *ret = (int64_t)t * 1000;
                        return 0;
                }
        }
        return cli_usage_error(prog,
                               "--since '%s' is neither a UTC date or time (2026-12-01, "
                               "2026-12-01T22:00:00Z) nor a time ago (90m, 36h, 7d)",
                               arg);
}

int cmd_list(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"limit", required_argument, NULL, OPT_LIMIT},
            {"pipeline", required_argument, NULL, OPT_PIPELINE},
            {"state", required_argument, NULL, OPT_STATE},
            {"key", required_argument, NULL, OPT_KEY},
            {"since", required_argument, NULL, OPT_SINCE},
            CLI_COMMON_OPTIONS,
            {NULL, 0, NULL, 0},
        };
        long long limit = 50;
        int64_t since = -1;
        json_t *params = json_object();
        int opt, r = -1;
        optind = 0;
        while (r < 0 && (opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                if (opt == 'h') {
                        fputs(list_help, stdout);
                        r = CLI_EXIT_OK;
                } else if (opt == OPT_LIMIT) {
                        int e = cli_parse_positive(argv[0], "--limit", optarg, &limit);
                        if (e)
                                r = e;
                } else if (opt == OPT_PIPELINE || opt == OPT_STATE || opt == OPT_KEY) {
                        const char *name = opt == OPT_PIPELINE ? "pipeline"
                                           : opt == OPT_STATE  ? "state"
                                                               : "key";
                        if (!*optarg)
                                r = cli_usage_error(argv[0], "--%s needs a value", name);
                        else
                                json_object_set_new(params, name, json_string(optarg));
                } else if (opt == OPT_SINCE) {
                        int e = parse_since(argv[0], optarg, &since);
                        if (e)
                                r = e;
                } else if (!cli_common_option(cli, opt, optarg)) {
                        r = cli_usage_hint(argv[0]);
                }
        }
        if (r < 0 && optind < argc)
                r = cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind]);
        if (r >= 0) {
                json_decref(params);
                return r;
        }
        json_object_set_new(params, "limit", json_integer(limit));
        if (since >= 0)
                json_object_set_new(params, "since", json_integer(since));
        return call_and_show(cli, "list", params, "jobs", show_list);
}

static const char metrics_help[] =
    "Usage: etlctl metrics\n"
    "\n"
    "etld's metrics in the Prometheus text exposition format: jobs by pipeline and\n"
    "final state, each pipeline's last success (time and duration), rows and bytes\n"
    "loaded, load errors, step retries, jobs running and queued, build info.  The\n"
    "counters live in the journal, so they only grow, across restarts too.  For a\n"
    "scraper, daemon.metrics_file makes etld keep a file of the same text.\n" COMMON_HELP
    "\nExit status:\n  0  success\n" STATUS_HELP;

int cmd_metrics(struct cli *cli, int argc, char **argv)
{
        int pos, r = parse_simple(cli, argc, argv, metrics_help, 0, 0, &pos);
        if (r >= 0)
                return r;
        json_t *res;
        r = call_once(cli, "metrics", json_object(), &res);
        if (r)
                return r;
        if (cli->json)
                cli_print_json(res);
        else if (json_is_string(json_object_get(res, "text")))
                fputs(json_string_value(json_object_get(res, "text")), stdout);
        json_decref(res);
        return CLI_EXIT_OK;
}

static const char logs_help[] =
    "Usage: etlctl logs JOB [--step STEP]\n"
    "\n"
    "JOB's event log, oldest first: TIME (UTC), LEVEL, STEP, MESSAGE (etld keeps\n"
    "the newest 1,000 events of each job).\n"
    "\n"
    "  --step STEP      only the events of this step (e.g. load)\n" COMMON_HELP
    "\nExit status:\n  0  success\n" STATUS_HELP;

int cmd_logs(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"step", required_argument, NULL, OPT_STEP},
            CLI_COMMON_OPTIONS,
            {NULL, 0, NULL, 0},
        };
        const char *step = NULL;
        int opt, r;
        optind = 0;
        while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                if (opt == 'h') {
                        fputs(logs_help, stdout);
                        return CLI_EXIT_OK;
                }
                if (opt == OPT_STEP) {
                        if (!*optarg)
                                return cli_usage_error(argv[0], "--step needs a value");
                        step = optarg;
                } else if (!cli_common_option(cli, opt, optarg)) {
                        return cli_usage_hint(argv[0]);
                }
        }
        if (argc - optind < 1)
                return cli_usage_error(argv[0], "missing JOB");
        if (argc - optind > 1)
                return cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind + 1]);
        long long job;
        if ((r = cli_parse_positive(argv[0], "JOB", argv[optind], &job)))
                return r;
        json_t *params = json_pack("{s:I}", "job", (json_int_t)job);
        if (step)
                json_object_set_new(params, "step", json_string(step));
        return call_and_show(cli, "logs", params, "events", show_logs);
}

int cmd_errors(struct cli *cli, int argc, char **argv)
{
        long long limit = 100, job = 0;
        int r = parse_limit(cli, argc, argv, errors_help, true, &job, &limit);
        if (r >= 0)
                return r;
        return call_and_show(cli, "errors", json_pack("{s:I, s:I}", "job", (json_int_t)job, "limit", (json_int_t)limit), "errors", show_errors);
}

/* ---- watch and cancel ------------------------------------------------------------ */

int cmd_watch(struct cli *cli, int argc, char **argv)
{
        int pos, r = parse_simple(cli, argc, argv, watch_help, 1, 1, &pos);
        if (r >= 0)
                return r;
        long long job;
        if ((r = cli_parse_positive(argv[0], "JOB", argv[pos], &job)))
                return r;
        struct conn c;
        r = open_conn(cli, &c);
        if (r == 0)
                r = watch_job(cli, &c, job);
        conn_close(&c);
        return r;
}

/* etld refused a cancel (takes error).  A job that has already ended is
 * what the user wanted: a note and 0, like `systemctl stop` of a stopped
 * unit.  Anything else (no such job, not yours) is the error it is. */
static int cancel_refused(struct cli *cli, long long job, json_t *error)
{
        const char *message = json_string_value(json_object_get(error, "message"));
        const char *state =
            json_string_value(json_object_get(json_object_get(error, "data"), "state"));
        int r;
        if (json_integer_value(json_object_get(error, "code")) == RPC_BAD_STATE && state &&
            cli_state_final(state)) {
                if (cli->json) {
                        json_t *res = json_pack("{s:I, s:s, s:b}", "job", (json_int_t)job, "state",
                                                state, "ended_before", 1);
                        cli_print_json(res);
                        json_decref(res);
                } else {
                        printf("job %lld had already ended (%s); nothing to cancel\n", job, state);
                }
                r = CLI_EXIT_OK;
        } else {
                r = cli_fail(CLI_EXIT_RPC_ERROR, "%s",
                             message ? message : "etld refused the cancel");
        }
        json_decref(error);
        return r;
}

int cmd_cancel(struct cli *cli, int argc, char **argv)
{
        int pos, r = parse_simple(cli, argc, argv, cancel_help, 1, 1, &pos);
        if (r >= 0)
                return r;
        long long job;
        if ((r = cli_parse_positive(argv[0], "JOB", argv[pos], &job)))
                return r;
        struct conn c;
        json_t *res = NULL, *error = NULL;
        r = open_conn(cli, &c);
        if (r == 0)
                r = conn_call_error(&c, "cancel", json_pack("{s:I}", "job", (json_int_t)job), &res,
                                    &error);
        conn_close(&c);
        if (error)
                return cancel_refused(cli, job, error);
        if (r)
                return r;
        const char *state = json_string_value(json_object_get(res, "state"));
        if (cli->json)
                cli_print_json(res);
        else if (state && strcmp(state, "cancelling") == 0)
                printf("job %lld cancelling: in-flight work is being stopped; "
                       "'etlctl watch %lld' shows when it ends\n",
                       job, job);
        else
                printf("job %lld %s\n", job, state ? state : "cancelled");
        json_decref(res);
        return CLI_EXIT_OK;
}

/* ---- ping and version ------------------------------------------------------------ */

int cmd_ping(struct cli *cli, int argc, char **argv)
{
        int pos, r = parse_simple(cli, argc, argv, ping_help, 0, 0, &pos);
        if (r >= 0)
                return r;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        json_t *res;
        r = call_once(cli, "ping", json_object(), &res);
        if (r)
                return r;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (cli->json)
                cli_print_json(res);
        else
                printf("pong from etld on %s (%.1f ms)\n", cli->socket, ms);
        json_decref(res);
        return CLI_EXIT_OK;
}

int cmd_version(struct cli *cli, int argc, char **argv)
{
        int pos, r = parse_simple(cli, argc, argv, version_help, 0, 0, &pos);
        if (r >= 0)
                return r;
        /* etlctl's own version first: it is worth having when no etld answers. */
        if (!cli->json) {
                printf("etlctl %s\n", ETLD_VERSION);
                fflush(stdout);
        }
        json_t *res;
        r = call_once(cli, "version", json_object(), &res);
        if (r)
                return r;
        const char *version = json_string_value(json_object_get(res, "version"));
        json_int_t protocol = json_integer_value(json_object_get(res, "protocol"));
        if (cli->json) {
                json_object_set_new(res, "etlctl", json_string(ETLD_VERSION));
                cli_print_json(res);
        } else {
                printf("etld %s (protocol %" JSON_INTEGER_FORMAT ")\n", version ? version : "?",
                       protocol);
                json_t *list = json_object_get(res, "pipelines");
                size_t i;
                json_t *p;
                json_array_foreach(list, i, p)
                {
                        const char *name = json_string_value(json_object_get(p, "name"));
                        printf("%s%s", i ? ", " : "pipelines: ", name ? name : "?");
                }
                if (json_array_size(list))
                        putchar('\n');
        }
        if (protocol != 1)
                fprintf(
                    stderr,
                    "etlctl: warning: etlctl speaks protocol 1, etld protocol %" JSON_INTEGER_FORMAT
                    "; upgrade the older one\n",
                    protocol);
        json_decref(res);
        return CLI_EXIT_OK;
}

/* ---- keys ------------------------------------------------------------------------ */

int cmd_keys(struct cli *cli, int argc, char **argv)
{
        int pos, r = parse_simple(cli, argc, argv, keys_help, 0, 0, &pos);
        if (r >= 0)
                return r;
        for (const struct cfg_key *k = cfg_keys; k->section; k++) {
                char dotted[128];
                snprintf(dotted, sizeof(dotted), "%s.%s", k->section, k->key);
                if (cli->json) {
                        json_t *o = json_pack("{s:s, s:s?, s:s, s:b}", "key", dotted, "default",
                                              k->def, "help", k->help, "secret", k->secret);
                        cli_print_json(o);
                        json_decref(o);
                } else {
                        printf("%-32s %-12s %s\n", dotted, k->def && *k->def ? k->def : "-",
                               k->help);
                }
        }
        return CLI_EXIT_OK;
}

/* ---- backup ------------------------------------------------------------------------ */

int cmd_backup(struct cli *cli, int argc, char **argv)
{
        int pos, r = parse_simple(cli, argc, argv, backup_help, 0, 1, &pos);
        if (r >= 0)
                return r;
        if (pos >= argc || !argv[pos][0])
                return cli_usage_error(argv[0], "missing FILE");
        /* etld runs elsewhere: it gets an absolute path */
        char path[4096];
        if (argv[pos][0] == '/') {
                snprintf(path, sizeof(path), "%s", argv[pos]);
        } else {
                char cwd[2048];
                if (!getcwd(cwd, sizeof(cwd)))
                        return cli_fail(CLI_EXIT_USAGE, "cannot resolve '%s': %s", argv[pos],
                                        strerror(errno));
                snprintf(path, sizeof(path), "%s/%s", cwd, argv[pos]);
        }
        json_t *res;
        r = call_once(cli, "backup", json_pack("{s:s}", "file", path), &res);
        if (r)
                return r;
        if (cli->json)
                cli_print_json(res);
        else
                printf("journal copied to %s (%" JSON_INTEGER_FORMAT " pages)\n",
                       json_string_value(json_object_get(res, "file")),
                       json_integer_value(json_object_get(res, "pages")));
        json_decref(res);
        return CLI_EXIT_OK;
}
