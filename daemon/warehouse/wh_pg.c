/* wh_pg.c - the PostgreSQL and Redshift warehouse drivers (postgresql://...
 * or postgres://..., a libpq connection URI; redshift://...).
 *
 * The driver face: it turns each wh.h operation into requests on the
 * connection of wh_pg_conn.c, which runs libpq's non-blocking API on the
 * loop thread, and calls the operation's callback from there.  Nothing
 * here blocks and nothing is shared between threads, except the COPY text
 * encoder (wh_pg_copytext.c), which runs on the pool for each wh_copy_rows
 * batch; its text is queued for PQputCopyData on the loop, and the batch's
 * callback comes as soon as the queue is under 2 MiB (else once it drained
 * under 1 MiB), so the next batch is encoded while this one is sent.
 *
 * Connecting: the first operation connects.  Host names are resolved with
 * uv_getaddrinfo before PQconnectStart (and given to libpq as hostaddr),
 * since libpq would resolve them blocking.  Session: client_encoding UTF8,
 * DateStyle ISO, TimeZone UTC and the most float digits each server takes
 * (extra_float_digits 3 on PostgreSQL, 2 on Redshift, whose
 * "extra_float_digits" page allows -15 to 2: 3 is an error there, and a
 * failed setup fails the connection), so values print and parse the same
 * everywhere.  Server notices go to the debug log, scrubbed.
 *
 * Cancel (wh_cancel, wh_close): a running statement gets PQcancel (on the
 * pool, with a PGcancel taken on the loop), and the connection is closed if
 * the server does not answer within 15 s (under wh_close, at once); a COPY
 * in progress is ended with PQputCopyEnd(errormsg); a batch still being
 * encoded is dropped.  wh_close then drops the connection (the server rolls
 * back), closes the handles and waits for the PQcancel jobs before its
 * callback.
 *
 * Errors: a lost connection (pg_terminate_backend, server restart, network)
 * and a failed connect that never reached the server are -EAGAIN, which the
 * engine treats as transient and retries: the transaction was rolled back by
 * the server, so the step runs again from a consistent state.  Serialization
 * failures and deadlocks are -EBUSY; a full disk -ENOSPC; a refused login or
 * a missing database -EACCES; a statement_timeout (set it in the URI,
 * `?options=-c%20statement_timeout%3D600000`) -ETIME.  Messages name the
 * target as user@host:port/dbname and never contain the password: the
 * password (wh_params.password, or libpq's own sources: the URI, PGPASSWORD,
 * passfile/PGPASSFILE, ~/.pgpass, or $CREDENTIALS_DIRECTORY/pgpass given as
 * passfile under systemd) is scrubbed from every message we pass on.
 *
 * Redshift's load errors: a COPY sent with wh_exec is preceded, in its
 * transaction, by `SELECT pg_backend_pid(), SYSDATE` (this session's
 * process id; the transaction's start, "SYSDATE" page).  After the COPY
 * failed and was rolled back, wh_load_errors finds its rows of
 * STL_LOAD_ERRORS through STL_QUERY: the "PG_BACKEND_PID" page correlates
 * pg_backend_pid() with STL_QUERY.pid, and the "STL_LOAD_ERRORS" page says
 * its query column joins the other system tables.  pg_last_copy_id() is not
 * used: its page speaks of the most recently completed COPY, and says
 * nothing of one that failed and was rolled back. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"
#include "util.h"
#include "warehouse/wh_pg_conn.h"
#include "warehouse/wh_pg_copytext.h"

#define CONNECT_TIMEOUT_MS 30000 /* when the URI sets no connect_timeout */

/* The setup sent once connected; see the header comment. */
static const char SESSION_SETUP[] =
    "SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET extra_float_digits = 3";
/* https://docs.aws.amazon.com/redshift/latest/dg/r_extra_float_digits.html:
 * "0, -15 to 2"; r_datestyle.html and r_timezone_config.html take the rest. */
static const char RS_SESSION_SETUP[] =
    "SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET extra_float_digits = 2";

static struct wh_pg *pg(struct wh *base)
{
        return (struct wh_pg *)base;
}

/* ---- opening --------------------------------------------------------------------- */

/* Frees what open_drv made (w itself is wh.c's, after wh_close). */
static void pg_free_strings(struct wh_pg *w)
{
        free(w->kw);
        free(w->val);
        free(w->uri);
        if (w->password)
                memset(w->password, 0, strlen(w->password));
        free(w->password);
        if (w->uri_password)
                memset(w->uri_password, 0, strlen(w->uri_password));
        free(w->uri_password);
        free(w->passfile);
        free(w->resolve_host);
        free(w->host_opt);
        free(w->port_opt);
        free(w->copy_sql);
        buf_free(&w->enc);
}

static void pg_free(struct wh_pg *w)
{
        pg_free_strings(w);
        free(w);
}

/* The password part of a URI's userinfo, as written (for scrubbing messages
 * when libpq cannot parse the URI). */
static char *uri_userinfo_password(const char *uri)
{
        const char *s = strstr(uri, "://");
        if (!s)
                return NULL;
        s += 3;
        size_t auth = strcspn(s, "/?");
        const char *at = memchr(s, '@', auth);
        if (!at)
                return NULL;
        const char *colon = memchr(s, ':', (size_t)(at - s));
        if (!colon || colon + 1 == at)
                return NULL;
        return strndup(colon + 1, (size_t)(at - colon - 1));
}

static bool is_ip_literal(const char *h)
{
        unsigned char b[sizeof(struct in6_addr)];
        return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

/* Makes the connection object for driver drv (PostgreSQL, or Redshift with
 * the URI already rewritten by rs_open); no I/O. */
static int open_drv(const struct wh_params *p, const struct wh_driver *drv, struct wh **ret,
                    char *err, size_t errlen)
{
        struct wh_pg *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        wh_pg_conn_init(w);
        w->setup_sql = drv == &wh_redshift_driver ? RS_SESSION_SETUP : SESSION_SETUP;
        w->uri = strdup(p->uri);
        if (p->password && *p->password)
                w->password = strdup(p->password);
        if (!w->uri || (p->password && *p->password && !w->password)) {
                pg_free(w);
                return -ENOMEM;
        }

        char *perr = NULL;
        PQconninfoOption *opts = PQconninfoParse(w->uri, &perr);
        if (!opts) {
                w->uri_password = uri_userinfo_password(w->uri);
                char m[WH_MSG_MAX];
                wh_pg_clean_msg(w, perr ? perr : "out of memory", m, sizeof(m));
                util_setf(err, errlen, "warehouse.target: not a valid PostgreSQL URI: %s", m);
                PQfreemem(perr);
                pg_free(w);
                return perr ? -EINVAL : -ENOMEM;
        }
        const char *host = "", *hostaddr = "", *port = "", *timeout = NULL, *passfile = NULL;
        const char *user = "", *dbname = "";
        for (PQconninfoOption *o = opts; o->keyword; o++) {
                if (!o->val)
                        continue;
                if (strcmp(o->keyword, "host") == 0)
                        host = o->val;
                else if (strcmp(o->keyword, "hostaddr") == 0)
                        hostaddr = o->val;
                else if (strcmp(o->keyword, "port") == 0)
                        port = o->val;
                else if (strcmp(o->keyword, "user") == 0)
                        user = o->val;
                else if (strcmp(o->keyword, "dbname") == 0)
                        dbname = o->val;
                else if (strcmp(o->keyword, "connect_timeout") == 0)
                        timeout = o->val;
                else if (strcmp(o->keyword, "passfile") == 0)
                        passfile = o->val;
                else if (strcmp(o->keyword, "password") == 0 && *o->val)
                        w->uri_password = strdup(o->val);
        }
        w->host_opt = strdup(host);
        w->port_opt = strdup(port);
        /* until connect_start knows libpq's defaults too */
        util_setf(w->label, sizeof(w->label), "%s%s%s%s%s/%s", user, *user ? "@" : "",
                  *host ? host : "localhost", *port ? ":" : "", port, dbname);
        /* libpq's connect_timeout is ours to enforce with PQconnectPoll. */
        long long t = -1;
        w->connect_timeout_ms = CONNECT_TIMEOUT_MS;
        if (timeout && util_parse_ll(timeout, &t) == 0)
                w->connect_timeout_ms = t <= 0 ? 0 : (uint64_t)(t < 2 ? 2 : t) * 1000;
        /* A host name (not an address, not a socket directory, one host) is
         * resolved on the loop with uv_getaddrinfo: libpq would block. */
        if (*host && !*hostaddr && !strchr(host, ',') && host[0] != '/' && host[0] != '@' &&
            !is_ip_literal(host))
                w->resolve_host = strdup(host);
        /* Under systemd, LoadCredential=pgpass:... gives a passfile. */
        const char *creds = getenv("CREDENTIALS_DIRECTORY");
        if (!w->password && !w->uri_password && !passfile && !getenv("PGPASSFILE") &&
            !getenv("PGPASSWORD") && creds && *creds) {
                struct buf b = {0};
                struct stat sb;
                if (buf_printf(&b, "%s/pgpass", creds) == 0 && stat(b.data, &sb) == 0)
                        w->passfile = b.data;
                else
                        buf_free(&b);
        }
        PQconninfoFree(opts);

        /* dbname=URI expanded first; what follows overrides it. */
        w->kw = calloc(10, sizeof(*w->kw));
        w->val = calloc(10, sizeof(*w->val));
        if (!w->kw || !w->val || !w->host_opt || !w->port_opt) {
                pg_free(w);
                return -ENOMEM;
        }
        size_t n = 0;
        w->kw[n] = "dbname";
        w->val[n++] = w->uri;
        w->kw[n] = "fallback_application_name";
        w->val[n++] = "etld";
        w->kw[n] = "client_encoding";
        w->val[n++] = "UTF8";
        if (w->password) {
                w->kw[n] = "password";
                w->val[n++] = w->password;
        }
        if (w->passfile) {
                w->kw[n] = "passfile";
                w->val[n++] = w->passfile;
        }
        w->nkw = n; /* room for host, hostaddr and the NULL after */

        *ret = &w->base;
        return 0;
}

static int pg_open(const struct wh_params *p, struct wh **ret, char *err, size_t errlen)
{
        return open_drv(p, &wh_pg_driver, ret, err, errlen);
}

/* Redshift speaks PostgreSQL's protocol: the same connection, with the
 * URI rewritten by wh_redshift_uri (TLS required unless the URI says
 * otherwise, port 5439, database dev) and the "redshift" SQL folder. */
static int rs_open(const struct wh_params *p, struct wh **ret, char *err, size_t errlen)
{
        char *uri = NULL;
        int res = wh_redshift_uri(p->uri, &uri, err, errlen);
        if (res < 0)
                return res;
        struct wh_params q = *p;
        q.uri = uri;
        res = open_drv(&q, &wh_redshift_driver, ret, err, errlen);
        free(uri);
        return res;
}

int wh_redshift_uri(const char *uri, char **ret, char *err, size_t errlen)
{
        static const char scheme[] = "redshift://";
        *ret = NULL;
        if (strncmp(uri, scheme, sizeof(scheme) - 1) != 0) {
                util_setf(err, errlen, "warehouse.target: '%.*s...' is not a redshift:// URI",
                          (int)strcspn(uri, ":"), uri);
                return -EINVAL;
        }
        const char *auth = uri + sizeof(scheme) - 1;
        size_t alen = strcspn(auth, "/?#");
        const char *at = memchr(auth, '@', alen);
        const char *host = at ? at + 1 : auth;
        size_t hlen = alen - (size_t)(host - auth);
        if (hlen == 0) {
                util_setf(err, errlen,
                          "warehouse.target redshift://: no host (etld fills it in from the "
                          "provision job's outputs only for the etl pipeline)");
                return -EINVAL;
        }
        /* A port after the host, or after an IPv6 literal's ']'. */
        const char *close = memchr(host, ']', hlen);
        const char *after = close ? close + 1 : host;
        bool has_port = memchr(after, ':', hlen - (size_t)(after - host)) != NULL;
        const char *rest = auth + alen; /* "", "/db...", "?..." */
        bool has_db = rest[0] == '/' && rest[1] && rest[1] != '?' && rest[1] != '#';
        const char *query = strchr(rest, '?');
        bool has_ssl = query && (strstr(query, "?sslmode=") || strstr(query, "&sslmode="));
        struct buf b = {0};
        int res = buf_printf(&b, "postgresql://%.*s%s", (int)alen, auth, has_port ? "" : ":5439");
        if (res == 0 && has_db)
                res = buf_printf(&b, "%.*s", (int)(query ? (size_t)(query - rest) : strlen(rest)),
                                 rest);
        else if (res == 0)
                res = buf_printf(&b, "/dev");
        if (res == 0 && query)
                res = buf_printf(&b, "%s", query);
        if (res == 0 && !has_ssl)
                res = buf_printf(&b, "%ssslmode=require", query ? (query[1] ? "&" : "") : "?");
        if (res < 0) {
                buf_free(&b);
                return res;
        }
        *ret = b.data;
        return 0;
}

/* ---- results as JSON ------------------------------------------------------------
 *
 * On the loop thread: what etld queries is small (counts, checks, a table's
 * columns, at most 1000 load errors), so turning it into JSON costs less
 * than a trip to the pool and back would; bulk data only ever flows the
 * other way, through COPY. */

/* A JSON value of one field, by the column's type. */
static json_t *field_json(const PGresult *r, int row, int col)
{
        if (PQgetisnull(r, row, col))
                return json_null();
        const char *v = PQgetvalue(r, row, col);
        int len = PQgetlength(r, row, col);
        long long ll;
        switch (PQftype(r, col)) {
        case 20: /* int8 */
        case 21: /* int2 */
        case 23: /* int4 */
        case 26: /* oid */
                if (util_parse_ll(v, &ll) == 0)
                        return json_integer(ll);
                break;
        case 16: /* bool: 1/0, as SQLite gives it */
                return json_integer(v[0] == 't');
        case 700: /* float4 */
        case 701: /* float8 */
        case 1700: /* numeric */ {
                if (PQftype(r, col) == 1700 && !strpbrk(v, ".eEN") && util_parse_ll(v, &ll) == 0)
                        return json_integer(ll);
                char *end = NULL;
                double d = strtod(v, &end);
                if (end && *end == '\0' && isfinite(d))
                        return json_real(d);
                break;
        }
        default:
                break;
        }
        return json_stringn(v, (size_t)len);
}

/* The rows of the last statement that returned rows; NULL when out of memory. */
static json_t *rows_json(const struct wh_pg *w)
{
        json_t *rows = json_array();
        const PGresult *r = NULL;
        for (size_t i = 0; i < w->nres; i++)
                if (PQresultStatus(w->res[i]) == PGRES_TUPLES_OK)
                        r = w->res[i];
        int nr = r ? PQntuples(r) : 0, nc = r ? PQnfields(r) : 0;
        for (int i = 0; rows && i < nr; i++) {
                json_t *row = json_array();
                for (int c = 0; row && c < nc; c++)
                        json_array_append_new(row, field_json(r, i, c));
                if (!row || json_array_append_new(rows, row) < 0) {
                        json_decref(rows);
                        rows = NULL;
                }
        }
        return rows;
}

/* The declared type in Redshift's spelling, which the COPY emulator's type
 * parser reads (convert_parse_type): "VARCHAR(256)", "DOUBLE PRECISION",
 * "TIMESTAMP"...  Unbounded text is VARCHAR(65535), Redshift's largest, so no
 * value the table holds is refused; a type with no Redshift spelling keeps
 * PostgreSQL's (format_type), and COPY refuses to load into it. */
static char *redshift_type(const char *typname, long long typmod, const char *formatted)
{
        struct buf b = {0};
        int r;
        if (strcmp(typname, "varchar") == 0)
                r = typmod >= 4 ? buf_printf(&b, "VARCHAR(%lld)", typmod - 4)
                                : buf_printf(&b, "VARCHAR(65535)");
        else if (strcmp(typname, "text") == 0)
                r = buf_printf(&b, "VARCHAR(65535)");
        else if (strcmp(typname, "bpchar") == 0)
                r = typmod >= 4 ? buf_printf(&b, "CHAR(%lld)", typmod - 4)
                                : buf_printf(&b, "VARCHAR(65535)");
        else if (strcmp(typname, "int2") == 0)
                r = buf_printf(&b, "SMALLINT");
        else if (strcmp(typname, "int4") == 0)
                r = buf_printf(&b, "INTEGER");
        else if (strcmp(typname, "int8") == 0)
                r = buf_printf(&b, "BIGINT");
        else if (strcmp(typname, "float4") == 0)
                r = buf_printf(&b, "REAL");
        else if (strcmp(typname, "float8") == 0)
                r = buf_printf(&b, "DOUBLE PRECISION");
        else if (strcmp(typname, "bool") == 0)
                r = buf_printf(&b, "BOOLEAN");
        else if (strcmp(typname, "date") == 0)
                r = buf_printf(&b, "DATE");
        else if (strcmp(typname, "timestamp") == 0)
                r = buf_printf(&b, "TIMESTAMP");
        else if (strcmp(typname, "timestamptz") == 0)
                r = buf_printf(&b, "TIMESTAMPTZ");
        else if (strcmp(typname, "numeric") == 0 && typmod >= 4)
                r = buf_printf(&b, "NUMERIC(%lld,%lld)", ((typmod - 4) >> 16) & 0xffff,
                               (typmod - 4) & 0xffff);
        else
                r = buf_printf(&b, "%s", formatted);
        if (r < 0) {
                buf_free(&b);
                return NULL;
        }
        return b.data;
}

/* ---- operations ------------------------------------------------------------------ */

/* The request of the running op is over: the op too, with its outcome. */
static void op_done(struct wh_pg *w)
{
        struct wh_op *op = w->op;
        w->op = NULL;
        if (w->err < 0 && op->err == 0)
                wh_op_fail(op, w->err, "%s", w->msg);
        wh_pg_conn_clear_results(w);
        wh_op_done(&w->base, op);
}

static void on_query(struct wh_pg *w)
{
        if (w->err == 0) {
                w->op->out = rows_json(w);
                if (!w->op->out)
                        wh_op_fail(w->op, -ENOMEM, "%s: out of memory", w->label);
        }
        op_done(w);
}

static void on_columns(struct wh_pg *w)
{
        struct wh_op *op = w->op;
        if (w->err < 0) {
                wh_op_fail(op, w->err, "reading the columns of '%s': %s", op->sql, w->msg);
                op_done(w);
                return;
        }
        const PGresult *r = w->nres ? w->res[w->nres - 1] : NULL;
        int nr = r ? PQntuples(r) : 0;
        json_t *cols = json_array();
        for (int i = 0; cols && i < nr; i++) {
                long long typmod = -1;
                util_parse_ll(PQgetvalue(r, i, 2), &typmod);
                char *type = redshift_type(PQgetvalue(r, i, 1), typmod, PQgetvalue(r, i, 3));
                json_t *col = type ? json_pack("[ss]", PQgetvalue(r, i, 0), type) : NULL;
                free(type);
                if (!col || json_array_append_new(cols, col) < 0) {
                        json_decref(cols);
                        cols = NULL;
                }
        }
        if (!cols)
                wh_op_fail(op, -ENOMEM, "reading the columns of '%s': out of memory", op->sql);
        else if (nr == 0)
                wh_op_fail(op, -ENOENT, "table '%s' does not exist", op->sql);
        if (op->err < 0)
                json_decref(cols);
        else
                op->out = cols;
        op_done(w);
}

static void start_columns(struct wh_pg *w, struct wh_op *op)
{
        /* Identity and generated columns are left out, as Redshift's COPY
         * leaves out IDENTITY columns: the server fills them.  to_regclass
         * resolves the name as an unquoted identifier would be. */
        static const char sql[] =
            "SELECT a.attname, t.typname, a.atttypmod, "
            "format_type(a.atttypid, a.atttypmod) "
            "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
            "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped "
            "AND a.attidentity NOT IN ('a', 'd') AND a.attgenerated <> 's' "
            "ORDER BY a.attnum";
        wh_pg_conn_query(w, sql, 1, (const char *const *)&op->sql, PG_KEEP, on_columns);
}

/* Whether the first word of sql, after blanks and comments, is word. */
static bool first_word_is(const char *sql, const char *word)
{
        const char *p = sql;
        for (;;) {
                p += strspn(p, " \t\r\n\f\v");
                if (p[0] == '-' && p[1] == '-') {
                        p += strcspn(p, "\n");
                } else if (p[0] == '/' && p[1] == '*') {
                        const char *end = strstr(p + 2, "*/");
                        if (!end)
                                return false;
                        p = end + 2;
                } else {
                        break;
                }
        }
        size_t n = strlen(word);
        return strncasecmp(p, word, n) == 0 && !isalnum((unsigned char)p[n]) && p[n] != '_';
}

/* Redshift: the session's process id and the transaction's start are in;
 * the COPY goes now. */
static void on_rs_pid(struct wh_pg *w)
{
        if (w->err < 0) {
                op_done(w);
                return;
        }
        const PGresult *r = w->nres ? w->res[w->nres - 1] : NULL;
        long long pid = 0;
        w->copy_pid = 0;
        if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == 2 &&
            util_parse_ll(PQgetvalue(r, 0, 0), &pid) == 0) {
                /* a timestamp's text: digits, '-', ':', '.', ' ' and nothing else */
                const char *since = PQgetvalue(r, 0, 1);
                size_t n = strlen(since);
                if (n < sizeof(w->copy_since) && strspn(since, "0123456789-:. ") == n) {
                        w->copy_pid = pid;
                        util_setf(w->copy_since, sizeof(w->copy_since), "%s", since);
                }
        }
        wh_pg_conn_query(w, w->op->sql, 0, NULL, 0, op_done);
}

static void start_load_errors(struct wh_pg *w, struct wh_op *op)
{
        if (w->copy_pid <= 0) {
                wh_op_fail(op, -ENOENT, "no COPY of this session to look up");
                op_done(w);
                return;
        }
        char sql[1024];
        util_setf(sql, sizeof(sql),
                  "SELECT filename, line_number, colname, type, position, raw_line, "
                  "raw_field_value, err_code, err_reason FROM stl_load_errors "
                  "WHERE query IN (SELECT query FROM stl_query WHERE pid = %lld "
                  "AND starttime >= '%s') ORDER BY query, line_number, colname LIMIT 1000",
                  w->copy_pid, w->copy_since);
        free(op->sql); /* the request needs the text until it is over */
        op->sql = strdup(sql);
        if (!op->sql) {
                wh_op_fail(op, -ENOMEM, "out of memory");
                op_done(w);
                return;
        }
        wh_pg_conn_query(w, op->sql, 0, NULL, PG_KEEP, on_query);
}

/* ---- COPY FROM STDIN --------------------------------------------------------------- */

/* A double-quoted identifier; fold: lower-case ASCII first, as PostgreSQL
 * does with an unquoted name. */
static int quote_ident(struct buf *b, const char *name, bool fold)
{
        int r = buf_append(b, "\"", 1);
        for (const char *s = name; r == 0 && *s; s++) {
                char c = *s;
                if (fold && c >= 'A' && c <= 'Z')
                        c = (char)(c - 'A' + 'a');
                r = buf_append(b, &c, 1);
                if (r == 0 && c == '"')
                        r = buf_append(b, "\"", 1);
        }
        return r ? r : buf_append(b, "\"", 1);
}

static void on_copy_started(struct wh_pg *w)
{
        free(w->copy_sql);
        w->copy_sql = NULL;
        if (w->err < 0)
                wh_op_fail(w->op, w->err, "COPY %s FROM STDIN: %s", w->op->sql, w->msg);
        else
                w->copying = true;
        op_done(w);
}

static void start_copy(struct wh_pg *w, struct wh_op *op)
{
        if (w->state != PG_COPY_IN && w->state != PG_COPY_ENDING)
                w->copying = false; /* it failed or was cancelled, and nobody ended it */
        if (w->copying || !*op->sql) {
                wh_op_fail(op, -EINVAL,
                           w->copying ? "a COPY is in progress on this connection"
                                      : "bad COPY target '%s'",
                           op->sql);
                op_done(w);
                return;
        }
        struct buf sql = {0};
        int r = buf_printf(&sql, "COPY ");
        if (r == 0)
                r = quote_ident(&sql, op->sql, true);
        if (r == 0)
                r = buf_printf(&sql, " (");
        for (size_t i = 0; r == 0 && i < op->ncols; i++) {
                if (i)
                        r = buf_printf(&sql, ", ");
                if (r == 0)
                        r = quote_ident(&sql, op->columns[i], false);
        }
        if (r == 0)
                r = buf_printf(&sql, ") FROM STDIN");
        if (r < 0) {
                buf_free(&sql);
                wh_op_fail(op, -ENOMEM, "out of memory");
                op_done(w);
                return;
        }
        w->copy_sql = sql.data;
        w->copy_ncols = op->ncols;
        wh_pg_conn_copy_start(w, w->copy_sql, on_copy_started);
}

/* Pool: the batch in COPY text. */
static void encode_run(uv_work_t *req)
{
        struct wh_pg *w = req->data;
        w->enc.len = 0;
        w->enc_err = wh_pg_copytext(&w->op->rows, &w->enc);
}

static void encode_after(uv_work_t *req, int status)
{
        struct wh_pg *w = req->data;
        struct wh_op *op = w->op;
        w->encoding = false;
        if (status == UV_ECANCELED || w->base.cancelled) {
                wh_op_fail(op, -ECANCELED, "COPY cancelled");
                op_done(w);
                return;
        }
        if (w->enc_err < 0) {
                wh_op_fail(op, w->enc_err, "encoding rows for COPY: %s", strerror(-w->enc_err));
                op_done(w);
                return;
        }
        /* the text goes to the connection; enc starts afresh */
        char *data = w->enc.data;
        size_t len = w->enc.len;
        w->enc = (struct buf){0};
        int r = wh_pg_conn_copy_put(w, data, len);
        if (r < 0) {
                wh_op_fail(op, r, "%s", w->msg);
                op_done(w);
                return;
        }
        if (w->queued > PG_QUEUED_HIGH) {
                wh_pg_conn_copy_room(w, op_done);
                return;
        }
        w->err = 0;
        op_done(w);
}

static void start_copy_rows(struct wh_pg *w, struct wh_op *op)
{
        if (!w->copying) {
                wh_op_fail(op, -EINVAL, "wh_copy_rows without wh_copy_begin");
        } else if (op->rows.n_cols != w->copy_ncols) {
                wh_op_fail(op, -EINVAL, "rows of %zu cells for a COPY of %zu columns",
                           op->rows.n_cols, w->copy_ncols);
        } else if (w->copy_err < 0) {
                wh_op_fail(op, w->copy_err, "%s", w->copy_msg);
        } else if (op->rows.n_rows > 0) {
                w->encoding = true;
                w->work.data = w;
                (void)uv_queue_work(w->base.loop, &w->work, encode_run, encode_after);
                return;
        }
        w->err = 0;
        op_done(w);
}

static void on_copy_end(struct wh_pg *w)
{
        long long n = 0;
        if (w->err == 0 && strncmp(w->cmd_status, "COPY ", 5) == 0 &&
            util_parse_ll(w->cmd_status + 5, &n) == 0 && n >= 0)
                w->op->count = (uint64_t)n;
        op_done(w);
}

static void start_copy_end(struct wh_pg *w, struct wh_op *op)
{
        if (!w->copying) {
                wh_op_fail(op, -EINVAL, "wh_copy_end without wh_copy_begin");
                op_done(w);
                return;
        }
        w->copying = false;
        wh_pg_conn_copy_end(w, on_copy_end);
}

/* ---- the driver ---------------------------------------------------------------------- */

static void pg_start(struct wh *base, struct wh_op *op)
{
        struct wh_pg *w = pg(base);
        w->op = op;
        w->err = 0;
        switch (op->kind) {
        case WH_OP_EXEC:
                if (base->drv == &wh_redshift_driver && first_word_is(op->sql, "COPY"))
                        wh_pg_conn_query(w, "SELECT pg_backend_pid(), SYSDATE", 0, NULL, PG_KEEP,
                                         on_rs_pid);
                else
                        wh_pg_conn_query(w, op->sql, 0, NULL, 0, op_done);
                break;
        case WH_OP_QUERY:
                wh_pg_conn_query(w, op->sql, 0, NULL, PG_KEEP, on_query);
                break;
        case WH_OP_BEGIN:
                wh_pg_conn_query(w, "BEGIN", 0, NULL, 0, op_done);
                break;
        case WH_OP_COMMIT:
                wh_pg_conn_query(w, "COMMIT", 0, NULL, PG_COMMIT, op_done);
                break;
        case WH_OP_ROLLBACK:
                w->copying = false;     /* the connection abandons a COPY first */
                if (w->state == PG_NEW) /* never connected: nothing to roll back */
                        op_done(w);
                else
                        wh_pg_conn_query(w, "ROLLBACK", 0, NULL, PG_ROLLBACK, op_done);
                break;
        case WH_OP_COLUMNS:
                start_columns(w, op);
                break;
        case WH_OP_COPY_BEGIN:
                start_copy(w, op);
                break;
        case WH_OP_COPY_ROWS:
                start_copy_rows(w, op);
                break;
        case WH_OP_COPY_END:
                start_copy_end(w, op);
                break;
        case WH_OP_LOAD_ERRORS:
                start_load_errors(w, op);
                break;
        }
}

static void pg_cancel(struct wh *base, struct wh_op *op)
{
        (void)op;
        struct wh_pg *w = pg(base);
        if (w->encoding)
                (void)uv_cancel((uv_req_t *)&w->work); /* else encode_after sees cancelled */
        wh_pg_conn_cancel(w);
}

static void on_conn_closed(struct wh_pg *w)
{
        pg_free_strings(w);
        wh_driver_closed(&w->base);
}

static void pg_close(struct wh *base)
{
        wh_pg_conn_close(pg(base), on_conn_closed);
}

const struct wh_driver wh_pg_driver = {
    .dialect = "postgres",
    .open = pg_open,
    .start = pg_start,
    .cancel = pg_cancel,
    .close = pg_close,
};

/* The same driver with Redshift's SQL folder.  Redshift's COPY reads S3
 * itself, so the load step sends the COPY statements as they are and never
 * uses wh_columns or wh_copy_*. */
const struct wh_driver wh_redshift_driver = {
    .dialect = "redshift",
    .open = rs_open,
    .start = pg_start,
    .cancel = pg_cancel,
    .close = pg_close,
    .load_errors = true,
};
