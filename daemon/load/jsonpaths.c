/* jsonpaths.c - compiles each JSONPath expression of a JSONPaths file into a
 * short list of steps (object member or array index) once, so that the
 * per-record work is a few hash lookups.  See jsonpaths.h. */
#include "jsonpaths.h"

#include <jansson.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct step {
        char *key;    /* member name, or NULL for an index */
        size_t klen;
        size_t index;
};

struct path {
        char *text;
        struct step *steps;
        size_t n_steps;
        bool dot, bracket; /* has a .name step, a ['name'] step */
};

struct jsonpaths {
        struct path *paths;
        size_t n;
};

static int add_step(struct path *p, char *key, size_t index)
{
        struct step *s = realloc(p->steps, (p->n_steps + 1) * sizeof(*s));
        if (!s) {
                free(key);
                return -ENOMEM;
        }
        p->steps = s;
        p->steps[p->n_steps].key = key;
        p->steps[p->n_steps].klen = key ? strlen(key) : 0;
        p->steps[p->n_steps].index = index;
        p->n_steps++;
        return 0;
}

static int bad_path(const char *text, size_t at, const char *why, char *err, size_t errlen)
{
        snprintf(err, errlen, "JSONPaths: invalid path \"%s\" at character %zu: %s", text,
                 at + 1, why);
        return -EINVAL;
}

/* Compiles text into p (p->text already set). */
static int compile(struct path *p, char *err, size_t errlen)
{
        const char *t = p->text;
        size_t i = 0;
        if (t[0] != '$')
                return bad_path(t, 0, "a path must start with '$'", err, errlen);
        i = 1;
        if (t[i] == '\0')
                return bad_path(t, i, "a path must name at least one element", err, errlen);
        while (t[i]) {
                int r;
                if (t[i] == '.') {
                        size_t start = ++i;
                        while (t[i] && t[i] != '.' && t[i] != '[') {
                                if (t[i] == '*' || t[i] == '@' || t[i] == '?' || t[i] == ']' ||
                                    t[i] == '\'' || t[i] == '"' || isspace((unsigned char)t[i]))
                                        return bad_path(t, i, "unexpected character in a name",
                                                        err, errlen);
                                i++;
                        }
                        if (i == start)
                                return bad_path(t, i, "empty name after '.'", err, errlen);
                        char *key = strndup(t + start, i - start);
                        if (!key)
                                return -ENOMEM;
                        r = add_step(p, key, 0);
                        if (r < 0)
                                return r;
                        p->dot = true;
                } else if (t[i] == '[') {
                        i++;
                        if (t[i] == '\'' || t[i] == '"') {
                                char q = t[i++];
                                char *key = malloc(strlen(t + i) + 1);
                                if (!key)
                                        return -ENOMEM;
                                size_t o = 0;
                                while (t[i] && t[i] != q) {
                                        if (t[i] == '\\' && t[i + 1])
                                                i++;
                                        key[o++] = t[i++];
                                }
                                key[o] = '\0';
                                if (t[i] != q) {
                                        free(key);
                                        return bad_path(t, i, "unterminated quoted name", err,
                                                        errlen);
                                }
                                i++;
                                if (t[i] != ']') {
                                        free(key);
                                        return bad_path(t, i, "expected ']'", err, errlen);
                                }
                                i++;
                                r = add_step(p, key, 0);
                                if (r < 0)
                                        return r;
                                p->bracket = true;
                        } else if (isdigit((unsigned char)t[i])) {
                                size_t idx = 0;
                                while (isdigit((unsigned char)t[i])) {
                                        if (idx > 100000000)
                                                return bad_path(t, i, "index too large", err,
                                                                errlen);
                                        idx = idx * 10 + (size_t)(t[i] - '0');
                                        i++;
                                }
                                if (t[i] != ']')
                                        return bad_path(t, i, "expected ']'", err, errlen);
                                i++;
                                r = add_step(p, NULL, idx);
                                if (r < 0)
                                        return r;
                        } else {
                                return bad_path(t, i,
                                                "expected a quoted name or an array index "
                                                "(wildcards and filters are not supported "
                                                "by Redshift)",
                                                err, errlen);
                        }
                } else {
                        return bad_path(t, i, "expected '.' or '['", err, errlen);
                }
        }
        return 0;
}

int jsonpaths_parse(const char *text, size_t len, struct jsonpaths **ret, char *err,
                    size_t errlen)
{
        json_error_t je;
        json_t *root = json_loadb(text, len, 0, &je);
        if (!root) {
                /* where, never what: the file may be any file etld can read,
                 * and jansson's text quotes the token it stopped at */
                snprintf(err, errlen,
                         "JSONPaths: not a JSON file: parsing stops at byte %d (line %d, "
                         "column %d); a JSONPaths file is {\"jsonpaths\": [\"$...\", ...]}",
                         je.position, je.line, je.column);
                return -EINVAL;
        }
        /* "COPY from JSON format": a JSONPaths file is "a single JSON
         * object with the name "jsonpaths""; another name means 'auto'. */
        if (json_is_object(root) && json_object_size(root) > 0 &&
            !json_object_get(root, "jsonpaths")) {
                json_decref(root);
                *ret = NULL;
                return 1;
        }
        json_t *arr = json_is_object(root) ? json_object_get(root, "jsonpaths") : NULL;
        if (!json_is_array(arr)) {
                json_decref(root);
                snprintf(err, errlen,
                         "JSONPaths: the file must be an object with a \"jsonpaths\" array");
                return -EINVAL;
        }
        if (json_array_size(arr) == 0) {
                json_decref(root);
                snprintf(err, errlen, "JSONPaths: the \"jsonpaths\" array is empty");
                return -EINVAL;
        }
        struct jsonpaths *p = calloc(1, sizeof(*p));
        if (p)
                p->paths = calloc(json_array_size(arr), sizeof(*p->paths));
        if (!p || !p->paths) {
                free(p);
                json_decref(root);
                return -ENOMEM;
        }
        int r = 0;
        for (size_t i = 0; i < json_array_size(arr); i++) {
                json_t *v = json_array_get(arr, i);
                if (!json_is_string(v)) {
                        snprintf(err, errlen, "JSONPaths: element %zu of \"jsonpaths\" is not "
                                 "a string", i + 1);
                        r = -EINVAL;
                        break;
                }
                p->paths[i].text = strdup(json_string_value(v));
                if (!p->paths[i].text) {
                        r = -ENOMEM;
                        break;
                }
                p->n = i + 1;
                r = compile(&p->paths[i], err, errlen);
                if (r < 0)
                        break;
        }
        /* "COPY from JSON format", JSONPath expressions: bracket notation
         * or dot notation, not both in one jsonpaths array. */
        for (size_t i = 0, dot = SIZE_MAX, br = SIZE_MAX; r == 0 && i < p->n; i++) {
                if (p->paths[i].dot && dot == SIZE_MAX)
                        dot = i;
                if (p->paths[i].bracket && br == SIZE_MAX)
                        br = i;
                if (dot != SIZE_MAX && br != SIZE_MAX) {
                        snprintf(err, errlen,
                                 "JSONPaths: bracket notation (\"%s\") and dot notation "
                                 "(\"%s\") cannot be mixed in one jsonpaths array",
                                 p->paths[br].text, p->paths[dot].text);
                        r = -EINVAL;
                }
        }
        json_decref(root);
        if (r < 0) {
                if (r == -ENOMEM)
                        snprintf(err, errlen, "JSONPaths: out of memory");
                jsonpaths_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

struct jsonpaths *jsonpaths_free(struct jsonpaths *p)
{
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n; i++) {
                for (size_t j = 0; j < p->paths[i].n_steps; j++)
                        free(p->paths[i].steps[j].key);
                free(p->paths[i].steps);
                free(p->paths[i].text);
        }
        free(p->paths);
        free(p);
        return NULL;
}

size_t jsonpaths_count(const struct jsonpaths *p)
{
        return p->n;
}

const char *jsonpaths_text(const struct jsonpaths *p, size_t i)
{
        return p->paths[i].text;
}

const struct jv *jsonpaths_eval_checked(const struct jsonpaths *p, size_t i,
                                        const struct jv *root, uint32_t *hint, bool *bad_index)
{
        const struct path *path = &p->paths[i];
        const struct jv *v = root;
        for (size_t s = 0; s < path->n_steps && v; s++) {
                const struct step *st = &path->steps[s];
                if (st->key) {
                        v = jv_get(v, st->key, st->klen, s == 0 ? hint : NULL);
                } else {
                        v = jv_index(v, st->index);
                        if (!v && bad_index)
                                *bad_index = true; /* not an array, or past its end */
                }
        }
        return v;
}

const struct jv *jsonpaths_eval(const struct jsonpaths *p, size_t i, const struct jv *root,
                                uint32_t *hint)
{
        return jsonpaths_eval_checked(p, i, root, hint, NULL);
}
