/* cfg.h - etld's configuration: one table of known keys, INI files, overrides.
 *
 * Every key etld understands is listed once in cfg.c (section, key, type,
 * default, secret?, reloadable?).  A file or a `--set section.key=value`
 * naming anything else is an error that names the file and line, or the
 * override.  Both etld (daemon config, per-job overrides) and etlctl
 * (`submit --config FILE`) use this module.  No I/O besides reading the file,
 * no logging.  An unknown key's error names the nearest known one. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CFG_CHOICE: one of the words cfg_choices() gives ("full|incremental").
 * CFG_DURATION: "90s", "30m", "2h", "1d" or sums ("1h30m"), at most
 * CFG_DURATION_MAX_MS; empty means none.  CFG_REGION: an AWS region name
 * (lower-case letters, digits and '-', as "us-west-2"), or empty; a region
 * becomes part of a host name, so nothing else may pass. */
enum cfg_type { CFG_STRING, CFG_INT, CFG_BOOL, CFG_DURATION, CFG_CHOICE, CFG_REGION };
#define CFG_DURATION_MAX_MS (366LL * 86400 * 1000)

/* Who may set a key for one job (`submit` settings).  Root, etld's own uid
 * and members of daemon.admin_group are admins: they may set what editing
 * etld.conf would let them set.  Every table entry chooses one. */
enum cfg_scope {
        CFG_SCOPE_UNSET,   /* never in the table: test_cfg checks */
        CFG_JOB,           /* anyone */
        CFG_JOB_DATA,      /* anyone; a file:// URI only under daemon.data_roots */
        CFG_JOB_WAREHOUSE, /* anyone; only a sqlite:// target under the state
                              directory or daemon.warehouse_roots */
        CFG_ADMIN,         /* admins only: names a local file, a credential source
                              or where credentials go */
        CFG_DAEMON,        /* etld.conf only: applies to the whole daemon, so it
                              cannot take effect for one job */
};

struct cfg_key {
        const char *section;
        const char *key;
        enum cfg_type type;
        const char *def; /* default value as text, NULL = unset */
        bool secret;     /* never written to the journal, a log or a reply */
        bool reloadable; /* SIGHUP applies it to the running daemon */
        const char *help;
        enum cfg_scope scope;
        const char *why; /* CFG_ADMIN: why only an admin may set it per job */
};

/* The table of every known key, terminated by an entry with section == NULL. */
extern const struct cfg_key cfg_keys[];

struct cfg;

struct cfg *cfg_new(void);
struct cfg *cfg_free(struct cfg *c);   /* NULL-safe, returns NULL */
struct cfg *cfg_dup(const struct cfg *c);

/* Reads an INI file into c, on top of what is there.  On failure returns
 * -errno or -EINVAL and writes "FILE:LINE: what is wrong" into err. */
int cfg_load_file(struct cfg *c, const char *path, char *err, size_t errlen);

/* Sets "section.key" (as written by --set).  Checks the key exists and the
 * value has the key's type.  -EINVAL with a message naming the key otherwise. */
int cfg_set(struct cfg *c, const char *dotted, const char *value, char *err, size_t errlen);

/* Parses "section.key=value" and calls cfg_set. */
int cfg_set_assignment(struct cfg *c, const char *assignment, char *err, size_t errlen);

/* The value of a key: what was set, else the default, else NULL. */
const char *cfg_get(const struct cfg *c, const char *section, const char *key);
/* Was the key given (etld.conf, --set, a job's settings), not just its default? */
bool cfg_is_set(const struct cfg *c, const char *section, const char *key);
long long cfg_get_int(const struct cfg *c, const char *section, const char *key);
bool cfg_get_bool(const struct cfg *c, const char *section, const char *key);
/* A CFG_DURATION key in milliseconds; 0 when unset or empty. */
int64_t cfg_get_duration_ms(const struct cfg *c, const char *section, const char *key);

/* The words a CFG_CHOICE key takes, '|'-separated; NULL for other keys. */
const char *cfg_choices(const struct cfg_key *k);

/* Looks a key up in the table; NULL when unknown. */
const struct cfg_key *cfg_find_key(const char *section, const char *key);

/* The known key nearest to "section.key" by edit distance, when it is close
 * enough to be a misspelling of it (at most a third of its bytes, and three,
 * differ); NULL otherwise.  The "did you mean" of every unknown-key error. */
const struct cfg_key *cfg_nearest_key(const char *dotted);

/* {"section.key": "value", ...} of the keys set explicitly; secrets left out
 * unless with_secrets. */
json_t *cfg_to_json(const struct cfg *c, bool with_secrets);

/* The names of the settings that differ between two {"section.key": value}
 * objects (the settings two jobs keep), sorted: set on one side only, or set
 * to values that differ for the key's type ("yes" and "true" are the same
 * boolean, "010" and 10 the same integer, "90m" and "1h30m" the same
 * duration; strings and unknown keys compare as text).  Secret keys are left
 * out.  A JSON array of strings; NULL when out of memory. */
json_t *cfg_json_diff(json_t *a, json_t *b);

/* Applies {"section.key": "value"} on top of c (values must be strings,
 * numbers or booleans).  -EINVAL with a message naming the key otherwise. */
int cfg_apply_json(struct cfg *c, json_t *obj, char *err, size_t errlen);
