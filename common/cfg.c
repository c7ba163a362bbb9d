/* cfg.c - the configuration table, its INI reader and the checks of every
 * value against its key.  See cfg.h. */
#include "cfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* Every key etld understands.  The README and etc/etld.conf document each of
 * them; tests/unit/test_cfg.c fails when one of them misses a key. */
const struct cfg_key cfg_keys[] = {
        { "daemon", "socket", CFG_STRING, "/run/etld/etld.sock", false, false,
          "Unix socket etlctl talks to ($ETLD_SOCKET and --socket override it)",
          CFG_DAEMON, NULL },
        { "daemon", "state_dir", CFG_STRING, "/var/lib/etld", false, false,
          "journal and default warehouse live here (--state-dir overrides it)",
          CFG_DAEMON, NULL },
        { "daemon", "sql_dir", CFG_STRING, ETLD_DEFAULT_SQL_DIR, false, true,
          "folder holding sql/sqlite, sql/postgres, sql/redshift",
          CFG_ADMIN, "etld runs the SQL files of this folder with its own rights" },
        { "daemon", "max_jobs", CFG_INT, "2", false, true, "jobs running at once",
          CFG_DAEMON, NULL },
        { "daemon", "log_level", CFG_STRING, "info", false, true,
          "error, warning, info or debug",
          CFG_DAEMON, NULL },
        { "daemon", "retry_max", CFG_INT, "5", false, true,
          "attempts of a step that failed with a transient error",
          CFG_ADMIN, "daemon.* keys are the operator's" },
        { "daemon", "retry_base_ms", CFG_INT, "500", false, true,
          "first retry delay; doubles each attempt",
          CFG_ADMIN, "daemon.* keys are the operator's" },
        { "daemon", "retry_cap_ms", CFG_INT, "30000", false, true, "longest retry delay",
          CFG_ADMIN, "daemon.* keys are the operator's" },
        { "daemon", "admin_group", CFG_STRING, "", false, true,
          "members of this group may set every key per job, as root and etld's own user may",
          CFG_DAEMON, NULL },
        { "daemon", "data_roots", CFG_STRING, "", false, true,
          "comma-separated folders under which other users' jobs may read file:// sources, "
          "JSONPaths files and manifests (empty: none)",
          CFG_DAEMON, NULL },
        { "daemon", "warehouse_roots", CFG_STRING, "", false, true,
          "comma-separated folders, besides the state directory, under which other users' "
          "jobs may write sqlite:// warehouses",
          CFG_DAEMON, NULL },
        { "daemon", "metrics_file", CFG_STRING, "", false, true,
          "a file etld rewrites atomically with its metrics (Prometheus text format) whenever a "
          "job starts or ends, for node_exporter's textfile collector; empty: none",
          CFG_DAEMON, NULL },
        { "daemon", "keep_jobs", CFG_INT, "1000", false, true,
          "finished jobs the journal keeps at most (0: no limit); never pruned: the latest "
          "of each pipeline, a published one, one whose resources still exist",
          CFG_DAEMON, NULL },
        { "daemon", "keep_days", CFG_INT, "90", false, true,
          "days a finished job is kept in the journal (0: no limit), with the same exceptions",
          CFG_DAEMON, NULL },
        { "daemon", "max_connections_per_uid", CFG_INT, "64", false, true,
          "connections one uid may hold open at once", CFG_DAEMON, NULL },
        { "daemon", "idle_timeout", CFG_DURATION, "60s", false, true,
          "a connection that neither sends nor watches is closed after this long",
          CFG_DAEMON, NULL },
        { "aws", "region", CFG_REGION, "us-west-2", false, true, "AWS region",
          CFG_JOB, NULL },
        { "aws", "profile", CFG_STRING, NULL, false, true, "profile of ~/.aws/credentials",
          CFG_ADMIN, "it chooses which of etld's credentials sign requests" },
        { "aws", "endpoint_url", CFG_STRING, NULL, false, true, "endpoint for every service",
          CFG_ADMIN, "etld sends its signed requests and session token there" },
        { "aws", "endpoint_url_s3", CFG_STRING, NULL, false, true, "S3 endpoint override",
          CFG_ADMIN, "etld sends its signed requests and session token there" },
        { "aws", "endpoint_url_iam", CFG_STRING, NULL, false, true, "IAM endpoint override",
          CFG_ADMIN, "etld sends its signed requests and session token there" },
        { "aws", "endpoint_url_ec2", CFG_STRING, NULL, false, true, "EC2 endpoint override",
          CFG_ADMIN, "etld sends its signed requests and session token there" },
        { "aws", "endpoint_url_redshift", CFG_STRING, NULL, false, true,
          "Redshift endpoint override",
          CFG_ADMIN, "etld sends its signed requests and session token there" },
        { "aws", "endpoint_url_sts", CFG_STRING, NULL, false, true,
          "STS endpoint override (assumed roles, web identity)",
          CFG_ADMIN, "etld sends its signed requests and session token there" },
        { "iam", "role_name", CFG_STRING, "etld-redshift-s3-read", false, true,
          "IAM role Redshift assumes to read S3",
          CFG_JOB, NULL },
        { "iam", "role_arn", CFG_STRING, "", false, true,
          "role ARN for COPY on Redshift (the provision job records it)",
          CFG_ADMIN, "Redshift assumes this role for COPY: a credential source" },
        { "network", "vpc_id", CFG_STRING, NULL, false, true, "VPC (default VPC when unset)",
          CFG_JOB, NULL },
        { "network", "ingress_cidr", CFG_STRING, "0.0.0.0/0", false, true,
          "who may reach the cluster port",
          CFG_JOB, NULL },
        { "network", "security_group", CFG_STRING, "etld-redshift-sg", false, true,
          "name of the cluster's security group (provision creates it)",
          CFG_JOB, NULL },
        { "network", "subnet_group", CFG_STRING, "etld-subnet-group", false, true,
          "name of the cluster subnet group (provision creates it)",
          CFG_JOB, NULL },
        { "cluster", "identifier", CFG_STRING, "etld-cluster", false, true,
          "Redshift cluster identifier",
          CFG_JOB, NULL },
        { "cluster", "node_type", CFG_STRING, "dc2.large", false, true, "node type",
          CFG_JOB, NULL },
        { "cluster", "nodes", CFG_INT, "4", false, true, "number of nodes",
          CFG_JOB, NULL },
        { "cluster", "db_name", CFG_STRING, "dev", false, true, "database name",
          CFG_JOB, NULL },
        { "cluster", "db_user", CFG_STRING, "awsuser", false, true, "master user",
          CFG_JOB, NULL },
        { "cluster", "db_password_file", CFG_STRING, NULL, false, true,
          "file holding the master password",
          CFG_ADMIN, "etld reads this local file and sends it as a password" },
        { "cluster", "port", CFG_INT, "5439", false, true, "cluster port",
          CFG_JOB, NULL },
        { "cluster", "publicly_accessible", CFG_BOOL, "true", false, true,
          "give the cluster a public address",
          CFG_JOB, NULL },
        { "cluster", "wait_timeout", CFG_INT, "1800", false, true,
          "seconds to wait for the cluster to become available",
          CFG_JOB, NULL },
        { "cluster", "poll_interval_ms", CFG_INT, "15000", false, true,
          "milliseconds between DescribeClusters polls while waiting",
          CFG_JOB, NULL },
        { "provision", "plan", CFG_BOOL, "false", false, true,
          "provision only says what it would create or adopt (Describe/Get calls only)",
          CFG_JOB, NULL },
        { "provision", "ttl", CFG_DURATION, NULL, false, true,
          "a teardown runs this long after provision succeeded (90s, 30m, 2h, 1d, 1h30m)",
          CFG_JOB, NULL },
        { "teardown", "plan", CFG_BOOL, "false", false, true,
          "teardown only says what it would delete (Describe/Get calls only)",
          CFG_JOB, NULL },
        { "teardown", "force", CFG_BOOL, "false", false, true,
          "teardown also deletes resources provision adopted",
          CFG_ADMIN, "it deletes resources etld did not create" },
        { "teardown", "delete_bucket", CFG_BOOL, "false", false, true,
          "teardown also empties and deletes the [stage] bucket when etld created it",
          CFG_JOB, NULL },
        { "s3", "song_data", CFG_STRING, "s3://udacity-dend/song_data", false, true,
          "COPY source of staging_songs",
          CFG_JOB_DATA, NULL },
        { "s3", "log_data", CFG_STRING, "s3://udacity-dend/log_data", false, true,
          "COPY source of staging_events",
          CFG_JOB_DATA, NULL },
        { "s3", "log_jsonpath", CFG_STRING, "s3://udacity-dend/log_json_path.json", false, true,
          "JSONPaths file of the staging_events COPY",
          CFG_JOB_DATA, NULL },
        { "s3", "region", CFG_REGION, "", false, true,
          "region of the sources' bucket (COPY REGION); empty: the stage job's bucket "
          "region when the sources are in it, else [aws] region",
          CFG_JOB, NULL },
        { "stage", "source_bucket", CFG_STRING, "udacity-dend", false, true,
          "bucket the stage pipeline copies from",
          CFG_JOB, NULL },
        { "stage", "source_region", CFG_REGION, "us-west-2", false, true,
          "region of the source bucket",
          CFG_JOB, NULL },
        { "stage", "bucket", CFG_STRING, NULL, false, true, "the project's own bucket",
          CFG_JOB, NULL },
        { "stage", "concurrency", CFG_INT, "64", false, true, "server-side copies in flight",
          CFG_JOB, NULL },
        { "stage", "dry_run", CFG_BOOL, "false", false, true,
          "list what stage would create and copy, change nothing",
          CFG_JOB, NULL },
        { "load", "concurrency", CFG_INT, "64", false, true, "objects read at once",
          CFG_JOB, NULL },
        { "load", "batch_rows", CFG_INT, "5000", false, true, "rows per insert batch",
          CFG_JOB, NULL },
        { "etl", "mode", CFG_CHOICE, "full", false, true,
          "full: rebuild the star tables from every object; incremental: load only the "
          "objects no earlier publish took and merge them",
          CFG_JOB, NULL },
        { "warehouse", "target", CFG_STRING, NULL, false, true,
          "sqlite:///path, postgresql://... or redshift://...; default: "
          "sqlite warehouse.db in the state directory",
          CFG_JOB_WAREHOUSE, NULL },
        { "warehouse", "password", CFG_STRING, NULL, true, true,
          "database password (prefer db_password_file)",
          CFG_ADMIN, "a credential" },
        { NULL, NULL, 0, NULL, false, false, NULL, CFG_SCOPE_UNSET, NULL },
};

/* The words of each CFG_CHOICE key. */
static const struct {
        const char *section, *key, *words;
} choices[] = {
        { "etl", "mode", "full|incremental" },
};

const char *cfg_choices(const struct cfg_key *k)
{
        for (size_t i = 0; i < sizeof(choices) / sizeof(choices[0]); i++)
                if (strcmp(choices[i].section, k->section) == 0 &&
                    strcmp(choices[i].key, k->key) == 0)
                        return choices[i].words;
        return NULL;
}

/* The URI schemes of keys that name a URI, as one string for messages, and
 * the one word such a key also takes instead of a URI.  warehouse.target's
 * are the drivers of daemon/warehouse/wh.c (schemes[]), and "redshift", the
 * provisioned cluster (daemon/pipelines/etl.c).  A target of another scheme
 * is refused when it is set (etld.conf, etlctl --set, a submit's settings),
 * not when the job reaches the warehouse. */
static const struct {
        const char *section, *key, *schemes, *word;
} uri_keys[] = {
    {"warehouse", "target", "sqlite://, postgresql://, postgres://, redshift://", "redshift"},
};

/* NULL when k takes any text or value is one of k's schemes (or its word);
 * else the entry that refuses it. */
static const char *refused_scheme(const struct cfg_key *k, const char *value, const char **ret_word)
{
        for (size_t i = 0; i < sizeof(uri_keys) / sizeof(uri_keys[0]); i++) {
                if (strcmp(uri_keys[i].section, k->section) != 0 ||
                    strcmp(uri_keys[i].key, k->key) != 0)
                        continue;
                if (!*value || (uri_keys[i].word && strcmp(value, uri_keys[i].word) == 0))
                        return NULL;
                for (const char *w = uri_keys[i].schemes; *w;) {
                        size_t wl = strcspn(w, ",");
                        if (strncmp(value, w, wl) == 0)
                                return NULL;
                        w += wl;
                        w += strspn(w, ", ");
                }
                *ret_word = uri_keys[i].word;
                return uri_keys[i].schemes;
        }
        return NULL;
}

struct cfg_entry {
        const struct cfg_key *key;
        char *value;
};

struct cfg {
        struct cfg_entry *entries;
        size_t n;
};

struct cfg *cfg_new(void)
{
        return calloc(1, sizeof(struct cfg));
}

struct cfg *cfg_free(struct cfg *c)
{
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n; i++)
                free(c->entries[i].value);
        free(c->entries);
        free(c);
        return NULL;
}

const struct cfg_key *cfg_find_key(const char *section, const char *key)
{
        for (const struct cfg_key *k = cfg_keys; k->section; k++)
                if (strcmp(k->section, section) == 0 && strcmp(k->key, key) == 0)
                        return k;
        return NULL;
}

static int put(struct cfg *c, const struct cfg_key *k, const char *value)
{
        char *copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        for (size_t i = 0; i < c->n; i++) {
                if (c->entries[i].key == k) {
                        free(c->entries[i].value);
                        c->entries[i].value = copy;
                        return 0;
                }
        }
        struct cfg_entry *e = realloc(c->entries, (c->n + 1) * sizeof(*e));
        if (!e) {
                free(copy);
                return -ENOMEM;
        }
        c->entries = e;
        c->entries[c->n].key = k;
        c->entries[c->n].value = copy;
        c->n++;
        return 0;
}

struct cfg *cfg_dup(const struct cfg *c)
{
        struct cfg *d = cfg_new();
        if (!d)
                return NULL;
        for (size_t i = 0; i < c->n; i++) {
                if (put(d, c->entries[i].key, c->entries[i].value) < 0)
                        return cfg_free(d);
        }
        return d;
}

static bool parse_bool(const char *v, bool *ret)
{
        static const char *const yes[] = { "1", "true", "yes", "on" };
        static const char *const no[] = { "0", "false", "no", "off" };
        for (size_t i = 0; i < 4; i++) {
                if (strcasecmp(v, yes[i]) == 0) {
                        *ret = true;
                        return true;
                }
                if (strcasecmp(v, no[i]) == 0) {
                        *ret = false;
                        return true;
                }
        }
        return false;
}

/* Checks value against k's type; a message naming the key when wrong. */
static int check_value(const struct cfg_key *k, const char *value, char *err, size_t errlen)
{
        long long n;
        bool b;
        /* Settings travel as JSON (etlctl submit --config, the job's copy in
         * the journal), which cannot carry other bytes: refuse them here
         * rather than lose the key on the way. */
        for (size_t i = 0, len = strlen(value); i < len;) {
                size_t seq = util_utf8_seq((const unsigned char *)value + i, len - i);
                if (seq == 0) {
                        snprintf(err, errlen,
                                 "%s.%s: the value is not valid UTF-8 (byte %zu); write it in "
                                 "UTF-8",
                                 k->section, k->key, i + 1);
                        return -EINVAL;
                }
                i += seq;
        }
        switch (k->type) {
        case CFG_INT:
                if (util_parse_ll(value, &n) < 0 || n < 0) {
                        snprintf(err, errlen, "%s.%s: '%s' is not a non-negative integer",
                                 k->section, k->key, value);
                        return -EINVAL;
                }
                break;
        case CFG_BOOL:
                if (!parse_bool(value, &b)) {
                        snprintf(err, errlen, "%s.%s: '%s' is not a boolean (true/false)",
                                 k->section, k->key, value);
                        return -EINVAL;
                }
                break;
        case CFG_DURATION: {
                int64_t ms;
                int r = *value ? util_parse_duration_ms(value, CFG_DURATION_MAX_MS, &ms) : 0;
                if (r == -ERANGE) {
                        snprintf(err, errlen, "%s.%s: '%.64s' is longer than a year (366d)",
                                 k->section, k->key, value);
                        return -EINVAL;
                }
                if (r < 0) {
                        snprintf(err, errlen,
                                 "%s.%s: '%.64s' is not a duration: write a number and a "
                                 "unit, like 90s, 30m, 2h, 1d or 1h30m",
                                 k->section, k->key, value);
                        return -EINVAL;
                }
                break;
        }
        case CFG_CHOICE: {
                size_t vl = strlen(value);
                const char *words = cfg_choices(k);
                for (const char *w = words; w && *w;) {
                        size_t wl = strcspn(w, "|");
                        if (wl == vl && strncmp(w, value, vl) == 0)
                                return 0;
                        w += wl + (w[wl] == '|');
                }
                snprintf(err, errlen, "%s.%s: '%.64s' is not one of %s", k->section, k->key,
                         value, words ? words : "(none)");
                return -EINVAL;
        }
        case CFG_REGION:
                if (strlen(value) > 32 || strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789-") !=
                                                  strlen(value)) {
                        snprintf(err, errlen,
                                 "%s.%s: '%.64s' is not a region name (lower-case letters, digits "
                                 "and '-', as in us-west-2)",
                                 k->section, k->key, value);
                        return -EINVAL;
                }
                break;
        case CFG_STRING: {
                const char *word = NULL;
                const char *schemes = refused_scheme(k, value, &word);
                if (schemes) {
                        /* Only the scheme is quoted: the rest of a URI may hold
                         * a password. */
                        size_t sl = strcspn(value, ":/");
                        snprintf(err, errlen,
                                 "%s.%s: unknown scheme '%.*s' (known: %s%s%s; e.g. "
                                 "sqlite:///var/lib/etld/warehouse.db)",
                                 k->section, k->key, (int)(sl < 32 ? sl : 32), value, schemes,
                                 word ? ", or just " : "", word ? word : "");
                        return -EINVAL;
                }
                break;
        }
        }
        return 0;
}

/* Levenshtein distance between a and b (insertions, deletions and
 * substitutions, one each); names longer than 127 bytes count as far from
 * everything. */
static size_t edit_distance(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b);
        size_t row[128];
        if (la >= sizeof(row) / sizeof(row[0]) || lb >= sizeof(row) / sizeof(row[0]))
                return SIZE_MAX;
        for (size_t j = 0; j <= lb; j++)
                row[j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t diag = row[0]; /* row[i-1][j-1] */
                row[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t up = row[j];
                        size_t best = diag + (a[i - 1] != b[j - 1]);
                        if (up + 1 < best)
                                best = up + 1;
                        if (row[j - 1] + 1 < best)
                                best = row[j - 1] + 1;
                        row[j] = best;
                        diag = up;
                }
        }
        return row[lb];
}

const struct cfg_key *cfg_nearest_key(const char *dotted)
{
        const struct cfg_key *best = NULL;
        size_t best_d = SIZE_MAX;
        for (const struct cfg_key *k = cfg_keys; k->section; k++) {
                char name[128];
                snprintf(name, sizeof(name), "%s.%s", k->section, k->key);
                size_t d = edit_distance(dotted, name);
                if (d < best_d) {
                        best_d = d;
                        best = k;
                }
        }
        /* A third of the name may be wrong, at most three edits: further
         * than that the "nearest" key is a guess, not a spelling. */
        size_t len = strlen(dotted);
        size_t limit = len / 3 < 3 ? len / 3 : 3;
        return best_d <= limit ? best : NULL;
}

/* "unknown key 'S.K'", with the nearest known key when there is one. */
static void unknown_dotted(const char *dotted, char *err, size_t errlen)
{
        const struct cfg_key *near = cfg_nearest_key(dotted);
        if (near)
                snprintf(err, errlen, "unknown key '%.150s' (did you mean '%s.%s'?)", dotted,
                         near->section, near->key);
        else
                snprintf(err, errlen, "unknown key '%.150s'", dotted);
}

static void unknown_key(const char *section, const char *key, char *err, size_t errlen)
{
        char dotted[160];
        snprintf(dotted, sizeof(dotted), "%s.%s", section, key);
        unknown_dotted(dotted, err, errlen);
}

static int set_key(struct cfg *c, const char *section, const char *key, const char *value,
                   char *err, size_t errlen)
{
        const struct cfg_key *k = cfg_find_key(section, key);
        if (!k) {
                unknown_key(section, key, err, errlen);
                return -EINVAL;
        }
        int r = check_value(k, value, err, errlen);
        if (r < 0)
                return r;
        return put(c, k, value);
}

int cfg_set(struct cfg *c, const char *dotted, const char *value, char *err, size_t errlen)
{
        const char *dot = strchr(dotted, '.');
        if (!dot || dot == dotted || !dot[1]) {
                snprintf(err, errlen, "'%s' is not of the form section.key", dotted);
                return -EINVAL;
        }
        char section[64];
        size_t len = (size_t)(dot - dotted);
        if (len >= sizeof(section)) {
                unknown_dotted(dotted, err, errlen);
                return -EINVAL;
        }
        memcpy(section, dotted, len);
        section[len] = '\0';
        return set_key(c, section, dot + 1, value, err, errlen);
}

int cfg_set_assignment(struct cfg *c, const char *assignment, char *err, size_t errlen)
{
        const char *eq = strchr(assignment, '=');
        if (!eq) {
                snprintf(err, errlen, "'%s' is not of the form section.key=value", assignment);
                return -EINVAL;
        }
        char *name = strndup(assignment, (size_t)(eq - assignment));
        if (!name)
                return -ENOMEM;
        int r = cfg_set(c, name, eq + 1, err, errlen);
        free(name);
        return r;
}

/* ---- the INI reader --------------------------------------------------------------
 *
 * etld.conf is read here, not by inih.  Debian's inih reads each line into a
 * buffer of INI_MAX_LINE (200) bytes fixed when the library was built, on its
 * stack (INI_USE_STACK, no INI_ALLOW_REALLOC): ini_parse_stream() hands its
 * reader that buffer, so no reader of ours can give it a longer line, and a
 * libpq URI with its options (warehouse.target) is longer than that.
 * Splitting such a line into pieces inih then joins again would need its
 * multi-line continuation, which turns any indented line into part of the key
 * above.  So the reader below does what inih does with Debian's build options,
 * for lines of up to CFG_LINE_MAX bytes, and counts its own lines:
 *   - a UTF-8 byte order mark at the start of the file is skipped;
 *   - blank lines and lines starting with ';' or '#' are comments;
 *   - "[section]" starts a section (a comment may follow it);
 *   - "key = value" or "key: value" sets a key; whitespace around both is
 *     dropped, and " ;" starts a comment inside the value;
 *   - anything else is a syntax error.
 * Unlike inih, an indented line is an ordinary line, not the continuation of
 * the value above (which would quietly replace it).  A NUL byte is refused: it
 * would end the line there in C. */

#define CFG_LINE_MAX (64 * 1024) /* longest line of a configuration file */

static bool is_blank(char ch)
{
        return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' || ch == '\f';
}

/* s without the whitespace at both ends (in place). */
static char *trim(char *s)
{
        while (is_blank(*s))
                s++;
        size_t n = strlen(s);
        while (n > 0 && is_blank(s[n - 1]))
                s[--n] = '\0';
        return s;
}

/* Cuts a value at its inline comment: ';' after whitespace, as inih does. */
static void cut_comment(char *v)
{
        for (char *p = v; *p; p++) {
                if (*p == ';' && p > v && is_blank(p[-1])) {
                        *p = '\0';
                        return;
                }
        }
}

/* One line: NULL when it is fine, else what is wrong with it (a sentence
 * without the FILE:LINE prefix, in msg). */
static const char *parse_line(struct cfg *c, char *line, char *section, size_t seclen, char *msg,
                              size_t msglen)
{
        char *s = trim(line);
        if (!*s || *s == ';' || *s == '#')
                return NULL;
        if (*s == '[') {
                char *end = strchr(s, ']');
                char *rest = end ? trim(end + 1) : NULL;
                if (!end || (*rest && *rest != ';' && *rest != '#'))
                        return "syntax error (expected [section] or key = value)";
                *end = '\0';
                char *name = trim(s + 1);
                bool known = false;
                for (const struct cfg_key *k = cfg_keys; k->section; k++)
                        if (strcmp(k->section, name) == 0)
                                known = true;
                if (!known) {
                        snprintf(msg, msglen, "unknown section [%.64s]", name);
                        return msg;
                }
                snprintf(section, seclen, "%s", name);
                return NULL;
        }
        char *eq = s + strcspn(s, "=:");
        if (!*eq || eq == s)
                return "syntax error (expected [section] or key = value)";
        *eq = '\0';
        char *name = trim(s);
        char *value = eq + 1;
        cut_comment(value);
        value = trim(value);
        if (!section[0]) {
                snprintf(msg, msglen, "key '%.64s' outside any [section]", name);
                return msg;
        }
        if (set_key(c, section, name, value, msg, msglen) < 0)
                return msg;
        return NULL;
}

int cfg_load_file(struct cfg *c, const char *path, char *err, size_t errlen)
{
        FILE *f = fopen(path, "re");
        if (!f) {
                int r = -errno;
                snprintf(err, errlen, "%s: %s", path, strerror(errno));
                return r;
        }
        char section[64] = "";
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        int lineno = 0, r = 0;
        char msg[512];
        const char *what = NULL;
        while (!what && (len = getline(&line, &cap, f)) >= 0) {
                lineno++;
                char *s = line;
                if (lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
                        s += 3;
                if ((size_t)len > CFG_LINE_MAX) {
                        snprintf(msg, sizeof(msg), "line longer than %d bytes", CFG_LINE_MAX);
                        what = msg;
                } else if (strlen(line) != (size_t)len) {
                        what = "a NUL byte; is this a text file?";
                } else {
                        what = parse_line(c, s, section, sizeof(section), msg, sizeof(msg));
                }
        }
        if (!what && ferror(f)) {
                r = -EIO;
                snprintf(err, errlen, "%s:%d: read error", path, lineno + 1);
        }
        if (what) {
                r = -EINVAL;
                snprintf(err, errlen, "%s:%d: %s", path, lineno, what);
        }
        free(line);
        fclose(f);
        return r;
}

const char *cfg_get(const struct cfg *c, const char *section, const char *key)
{
        const struct cfg_key *k = cfg_find_key(section, key);
        if (!k)
                return NULL;
        for (size_t i = 0; c && i < c->n; i++)
                if (c->entries[i].key == k)
                        return c->entries[i].value;
        return k->def;
}

bool cfg_is_set(const struct cfg *c, const char *section, const char *key)
{
        const struct cfg_key *k = cfg_find_key(section, key);
        for (size_t i = 0; k && c && i < c->n; i++)
                if (c->entries[i].key == k)
                        return true;
        return false;
}

long long cfg_get_int(const struct cfg *c, const char *section, const char *key)
{
        const char *v = cfg_get(c, section, key);
        long long n = 0;
        if (!v || util_parse_ll(v, &n) < 0)
                return 0;
        return n;
}

bool cfg_get_bool(const struct cfg *c, const char *section, const char *key)
{
        const char *v = cfg_get(c, section, key);
        bool b = false;
        if (!v || !parse_bool(v, &b))
                return false;
        return b;
}

int64_t cfg_get_duration_ms(const struct cfg *c, const char *section, const char *key)
{
        const char *v = cfg_get(c, section, key);
        int64_t ms = 0;
        if (!v || !*v || util_parse_duration_ms(v, CFG_DURATION_MAX_MS, &ms) < 0)
                return 0;
        return ms;
}

json_t *cfg_to_json(const struct cfg *c, bool with_secrets)
{
        json_t *o = json_object();
        if (!o)
                return NULL;
        for (size_t i = 0; i < c->n; i++) {
                const struct cfg_key *k = c->entries[i].key;
                if (k->secret && !with_secrets)
                        continue;
                char name[128];
                snprintf(name, sizeof(name), "%s.%s", k->section, k->key);
                json_object_set_new(o, name, json_string(c->entries[i].value));
        }
        return o;
}

/* The key "section.key" names, or NULL. */
static const struct cfg_key *find_dotted(const char *name)
{
        const char *dot = strchr(name, '.');
        char section[64];
        if (!dot || (size_t)(dot - name) >= sizeof(section))
                return NULL;
        memcpy(section, name, (size_t)(dot - name));
        section[dot - name] = '\0';
        return cfg_find_key(section, dot + 1);
}

int cfg_apply_json(struct cfg *c, json_t *obj, char *err, size_t errlen)
{
        if (!json_is_object(obj)) {
                snprintf(err, errlen, "settings must be an object of \"section.key\": value");
                return -EINVAL;
        }
        const char *name;
        json_t *v;
        json_object_foreach(obj, name, v)
        {
                char num[64];
                const char *text = NULL;
                const struct cfg_key *k = find_dotted(name);
                /* A string key takes a JSON string; numbers and booleans are
                 * accepted where the key has that type, or as strings. */
                if (json_is_string(v)) {
                        text = json_string_value(v);
                } else if (json_is_integer(v) && k && k->type == CFG_INT) {
                        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                        text = num;
                } else if (json_is_boolean(v) && k && k->type == CFG_BOOL) {
                        text = json_is_true(v) ? "true" : "false";
                } else if (k) {
                        snprintf(err, errlen, "%s: value must be %s", name,
                                 k->type == CFG_INT        ? "an integer"
                                 : k->type == CFG_BOOL     ? "a boolean"
                                 : k->type == CFG_DURATION ? "a duration string like \"2h\""
                                                           : "a string");
                        return -EINVAL;
                }
                if (!text) {
                        unknown_dotted(name, err, errlen);
                        return -EINVAL;
                }
                int r = cfg_set(c, name, text, err, errlen);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A setting's value as text: strings as they are, integers and booleans as
 * cfg_apply_json writes them; NULL for anything else. */
static const char *value_text(json_t *v, char *buf, size_t n)
{
        if (json_is_string(v))
                return json_string_value(v);
        if (json_is_integer(v)) {
                snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                return buf;
        }
        if (json_is_boolean(v))
                return json_is_true(v) ? "true" : "false";
        return NULL;
}

/* Whether two values of the setting `name` mean the same. */
static bool same_value(const char *name, json_t *a, json_t *b)
{
        char abuf[32], bbuf[32];
        const char *x = value_text(a, abuf, sizeof(abuf));
        const char *y = value_text(b, bbuf, sizeof(bbuf));
        if (!x || !y)
                return json_equal(a, b);
        if (strcmp(x, y) == 0)
                return true;
        const struct cfg_key *k = find_dotted(name);
        if (!k)
                return false;
        long long nx, ny;
        bool bx, by;
        int64_t mx = 0, my = 0;
        switch (k->type) {
        case CFG_INT:
                return util_parse_ll(x, &nx) == 0 && util_parse_ll(y, &ny) == 0 && nx == ny;
        case CFG_BOOL:
                return parse_bool(x, &bx) && parse_bool(y, &by) && bx == by;
        case CFG_DURATION:
                return (!*x || util_parse_duration_ms(x, CFG_DURATION_MAX_MS, &mx) == 0) &&
                       (!*y || util_parse_duration_ms(y, CFG_DURATION_MAX_MS, &my) == 0) &&
                       mx == my;
        case CFG_CHOICE: /* the words are matched exactly */
        case CFG_REGION:
        case CFG_STRING:
                break;
        }
        return false;
}

static int compare_names(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether `name` is a secret key (never kept with a job, so never compared). */
static bool is_secret(const char *name)
{
        const struct cfg_key *k = find_dotted(name);
        return k && k->secret;
}

json_t *cfg_json_diff(json_t *a, json_t *b)
{
        size_t max = json_object_size(a) + json_object_size(b), n = 0;
        const char **names = calloc(max ? max : 1, sizeof(*names));
        json_t *out = json_array();
        if (!names || !out) {
                free(names);
                json_decref(out);
                return NULL;
        }
        const char *name;
        json_t *v;
        json_object_foreach(a, name, v)
        {
                json_t *w = json_object_get(b, name);
                if (!is_secret(name) && (!w || !same_value(name, v, w)))
                        names[n++] = name;
        }
        json_object_foreach(b, name, v)
        {
                if (!is_secret(name) && !json_object_get(a, name))
                        names[n++] = name;
        }
        qsort(names, n, sizeof(*names), compare_names);
        int r = 0;
        for (size_t i = 0; i < n && r == 0; i++)
                r = json_array_append_new(out, json_string(names[i]));
        free(names);
        if (r < 0) {
                json_decref(out);
                return NULL;
        }
        return out;
}
