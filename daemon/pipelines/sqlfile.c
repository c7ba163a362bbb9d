/* sqlfile.c - SQL files with placeholders, split into statements.  See sqlfile.h. */
#include "sqlfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int substitute(const struct cfg *cfg, const char *path, const char *in, char **ret,
                      char *err, size_t errlen)
{
        struct buf out = { 0 };
        int line = 1;
        const char *p = in;
        while (*p) {
                if (*p == '\n')
                        line++;
                if (*p == '-' && p[1] == '-') { /* comments are copied as they are */
                        const char *end = strchr(p, '\n');
                        size_t n = end ? (size_t)(end - p) : strlen(p);
                        if (buf_append(&out, p, n) < 0)
                                goto nomem;
                        p += n;
                        continue;
                }
                if (*p != '{') {
                        if (buf_append(&out, p, 1) < 0)
                                goto nomem;
                        p++;
                        continue;
                }
                const char *close = strchr(p, '}');
                const char *dot = close ? memchr(p, '.', (size_t)(close - p)) : NULL;
                char section[64], key[64];
                size_t sl = dot ? (size_t)(dot - p - 1) : 0;
                size_t kl = dot ? (size_t)(close - dot - 1) : 0;
                if (!dot || sl == 0 || kl == 0 || sl >= sizeof(section) || kl >= sizeof(key)) {
                        snprintf(err, errlen, "%s:%d: '{' starts no {section.key} placeholder",
                                 path, line);
                        buf_free(&out);
                        return -EINVAL;
                }
                memcpy(section, p + 1, sl);
                section[sl] = '\0';
                memcpy(key, dot + 1, kl);
                key[kl] = '\0';
                const struct cfg_key *k = cfg_find_key(section, key);
                if (!k || k->secret) {
                        snprintf(err, errlen, "%s:%d: unknown placeholder {%s.%s}", path, line,
                                 section, key);
                        buf_free(&out);
                        return -EINVAL;
                }
                const char *v = cfg_get(cfg, section, key);
                if (buf_append(&out, "'", 1) < 0)
                        goto nomem;
                for (const char *c = v ? v : ""; *c; c++)
                        if ((*c == '\'' && buf_append(&out, "''", 2) < 0) ||
                            (*c != '\'' && buf_append(&out, c, 1) < 0))
                                goto nomem;
                if (buf_append(&out, "'", 1) < 0)
                        goto nomem;
                p = close + 1;
        }
        if (buf_append(&out, "", 0) < 0)
                goto nomem;
        *ret = out.data;
        return 0;
nomem:
        buf_free(&out);
        return -ENOMEM;
}

int sqlfile_load(const struct cfg *cfg, const char *dialect, const char *name, char **ret,
                 char *err, size_t errlen)
{
        struct buf path = { 0 };
        if (buf_printf(&path, "%s/%s/%s", cfg_get(cfg, "daemon", "sql_dir"), dialect, name) < 0)
                return -ENOMEM;
        char *text = NULL;
        int r = util_read_file(path.data, &text, NULL);
        if (r < 0) {
                snprintf(err, errlen, "%s: %s (is [daemon] sql_dir right?)", path.data,
                         strerror(-r));
                buf_free(&path);
                return r;
        }
        r = substitute(cfg, path.data, text, ret, err, errlen);
        free(text);
        buf_free(&path);
        return r;
}

void sqlfile_free_list(char **list)
{
        for (size_t i = 0; list && list[i]; i++)
                free(list[i]);
        free(list);
}

/* True when s[0..n) has something besides whitespace and comments. */
static bool has_code(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '-' && i + 1 < n && s[i + 1] == '-') {
                        while (i < n && s[i] != '\n')
                                i++;
                } else if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
                        i += 2;
                        while (i + 1 < n && !(s[i] == '*' && s[i + 1] == '/'))
                                i++;
                        i++;
                } else if (!isspace((unsigned char)s[i])) {
                        return true;
                }
        }
        return false;
}

int sqlfile_split(const char *script, char ***ret, size_t *ret_n)
{
        char **list = calloc(1, sizeof(char *));
        size_t n = 0;
        if (!list)
                return -ENOMEM;
        const char *start = script;
        const char *p = script;
        for (;;) {
                char c = *p;
                if (c == '\'' || c == '"') {
                        p++;
                        while (*p && !(*p == c && p[1] != c))
                                p += (*p == c) ? 2 : 1;
                        if (*p)
                                p++;
                        continue;
                }
                if (c == '-' && p[1] == '-') {
                        while (*p && *p != '\n')
                                p++;
                        continue;
                }
                if (c == '/' && p[1] == '*') {
                        const char *end = strstr(p + 2, "*/");
                        p = end ? end + 2 : p + strlen(p);
                        continue;
                }
                if (c == ';' || c == '\0') {
                        size_t len = (size_t)(p - start);
                        if (has_code(start, len)) {
                                char **l = realloc(list, (n + 2) * sizeof(char *));
                                if (!l) {
                                        sqlfile_free_list(list);
                                        return -ENOMEM;
                                }
                                list = l;
                                list[n] = strndup(start, len);
                                list[n + 1] = NULL;
                                if (!list[n]) {
                                        sqlfile_free_list(list);
                                        return -ENOMEM;
                                }
                                n++;
                        }
                        if (c == '\0')
                                break;
                        start = p + 1;
                }
                p++;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}
