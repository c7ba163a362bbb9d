/* fuzz_cfg.c - etld.conf's reader (common/cfg.h) and the
 * other ways settings arrive: `--set section.key=value` and the JSON object
 * of a submit.
 *
 * Input: the text of an INI file.  Checked besides memory safety:
 *   - a refused file is named in the message, with the line ("FILE:LINE:");
 *   - a file with a NUL byte is refused (it would cut a line short);
 *   - what a file set survives the trip etlctl makes with it (`submit
 *     --config FILE` sends cfg_to_json() and etld applies it): every key set
 *     is in the JSON, and applying the JSON to an empty configuration gives
 *     the same JSON;
 *   - each line as a --set assignment either applies or says why;
 *   - the typed getters read every key. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "fuzz.h"

static void check_roundtrip(const struct cfg *c)
{
        json_t *j = cfg_to_json(c, true);
        FUZZ_CHECK(j, "cfg_to_json failed");
        size_t set = 0;
        for (const struct cfg_key *k = cfg_keys; k->section; k++) {
                struct cfg *one = cfg_new();
                FUZZ_CHECK(one, "out of memory");
                /* set explicitly: cfg_get gives the entry, not the table's default */
                char name[128];
                snprintf(name, sizeof(name), "%s.%s", k->section, k->key);
                const char *v = cfg_get(c, k->section, k->key);
                const char *d = cfg_get(one, k->section, k->key);
                if (v && v != d) {
                        set++;
                        json_t *jv = json_object_get(j, name);
                        FUZZ_CHECK(
                            json_is_string(jv) && strcmp(json_string_value(jv), v) == 0,
                            "%s is set but cfg_to_json gives %s", name,
                            jv ? (json_is_string(jv) ? json_string_value(jv) : "a non-string")
                               : "nothing");
                }
                switch (k->type) {
                case CFG_INT:
                        cfg_get_int(c, k->section, k->key);
                        break;
                case CFG_BOOL:
                        cfg_get_bool(c, k->section, k->key);
                        break;
                case CFG_DURATION:
                        FUZZ_CHECK(cfg_get_duration_ms(c, k->section, k->key) <=
                                       CFG_DURATION_MAX_MS,
                                   "%s: a duration over the maximum", name);
                        break;
                case CFG_CHOICE: {
                        /* a set value is one of the words, whole */
                        const char *words = cfg_choices(k);
                        size_t vl = v ? strlen(v) : 0;
                        bool found = !v;
                        for (const char *w = words; v && w && *w;
                             w += strcspn(w, "|"), w += *w == '|')
                                if (strcspn(w, "|") == vl && strncmp(w, v, vl) == 0)
                                        found = true;
                        FUZZ_CHECK(found, "%s = '%s' is not one of %s", name, v, words);
                        break;
                }
                case CFG_REGION:
                case CFG_STRING:
                        break;
                }
                cfg_free(one);
        }
        FUZZ_CHECK(json_object_size(j) == set, "cfg_to_json has %zu keys, %zu are set",
                   json_object_size(j), set);
        struct cfg *again = cfg_new();
        char err[512] = "";
        FUZZ_CHECK(again && cfg_apply_json(again, j, err, sizeof(err)) == 0,
                   "the settings of a file do not apply as JSON: %s", err);
        json_t *j2 = cfg_to_json(again, true);
        FUZZ_CHECK(json_equal(j, j2), "the settings changed on their way through JSON");
        json_decref(j2);
        cfg_free(again);
        struct cfg *dup = cfg_dup(c);
        FUZZ_CHECK(dup, "out of memory");
        j2 = cfg_to_json(dup, true);
        FUZZ_CHECK(json_equal(j, j2), "cfg_dup changed the settings");
        json_decref(j2);
        cfg_free(dup);
        json_decref(j);
}

static void check_assignments(const char *text)
{
        struct cfg *c = cfg_new();
        FUZZ_CHECK(c, "out of memory");
        char *copy = strdup(text);
        FUZZ_CHECK(copy, "out of memory");
        for (char *line = copy, *next; line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                char err[512] = "";
                int r = cfg_set_assignment(c, line, err, sizeof(err));
                FUZZ_CHECK(r == 0 || (r == -EINVAL && err[0]) || r == -ENOMEM,
                           "cfg_set_assignment returned %d (%s)", r, err);
        }
        check_roundtrip(c);
        free(copy);
        cfg_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *path = fuzz_write_file(0, data, size);
        struct cfg *c = cfg_new();
        FUZZ_CHECK(c, "out of memory");
        char err[1024] = "";
        int r = cfg_load_file(c, path, err, sizeof(err));
        if (r == 0) {
                FUZZ_CHECK(!memchr(data, '\0', size), "a file with a NUL byte was taken");
                check_roundtrip(c);
        } else {
                FUZZ_CHECK(r == -EINVAL, "cfg_load_file returned %d (%s)", r, err);
                size_t n = strlen(path);
                FUZZ_CHECK(strncmp(err, path, n) == 0 && err[n] == ':',
                           "the message does not name the file and line: %s", err);
        }
        cfg_free(c);
        char *text = fuzz_strdup(data, size);
        check_assignments(text);
        free(text);
        return 0;
}
