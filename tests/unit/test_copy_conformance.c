/* test_copy_conformance.c - the conformance table of the COPY emulator: one
 * test per documented Redshift COPY behaviour, each naming the AWS
 * documentation section (Amazon Redshift Database Developer Guide) it checks.
 * Every test runs a real COPY statement through load_start() into a temporary
 * SQLite warehouse, on the test's loop (testload.h), and looks at what landed and what was rejected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testfs.h"
#include "testload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "load/load.h"

struct rejected {
        char filename[512], colname[64], type[64], raw[1100], field[300], reason[300];
        uint64_t line, position;
        int code;
};

struct fx {
        char dir[256];
        struct wh *wh;
        struct load_progress progress;
        unsigned concurrency;
        int n_errors;
        struct rejected errs[16];
        char err[1024];
};

static void put_bytes(struct fx *f, const char *rel, const void *data, size_t len)
{
        testfs_put(f->dir, rel, data, len);
}

static void put(struct fx *f, const char *rel, const char *text)
{
        put_bytes(f, rel, text, strlen(text));
}

static void on_error(void *userdata, const struct load_error *e)
{
        struct fx *f = userdata;
        if (f->n_errors < 16) {
                struct rejected *r = &f->errs[f->n_errors];
                snprintf(r->filename, sizeof(r->filename), "%s", e->filename);
                snprintf(r->colname, sizeof(r->colname), "%s", e->colname);
                snprintf(r->type, sizeof(r->type), "%s", e->type);
                snprintf(r->raw, sizeof(r->raw), "%s", e->raw_line);
                snprintf(r->field, sizeof(r->field), "%s", e->raw_field_value);
                snprintf(r->reason, sizeof(r->reason), "%s", e->err_reason);
                r->line = e->line_number;
                r->position = e->position;
                r->code = e->err_code;
        }
        f->n_errors++;
}

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));
        if (!f)
                return -1;
        snprintf(f->dir, sizeof(f->dir), "/tmp/test_conf.XXXXXX");
        if (!mkdtemp(f->dir))
                return -1;
        char uri[400], err[256];
        snprintf(uri, sizeof(uri), "sqlite://%s/wh.db", f->dir);
        if (testload_wh_open(uri, &f->wh, err, sizeof(err)) < 0)
                return -1;
        f->concurrency = 2;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;
        testload_wh_close(f->wh);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        int r = system(cmd);
        free(f);
        return r == 0 ? 0 : -1;
}

static void ddl(struct fx *f, const char *sql)
{
        char err[256];
        char drop[64];
        snprintf(drop, sizeof(drop), "DROP TABLE IF EXISTS t");
        assert_int_equal(testload_exec(f->wh, drop, err, sizeof(err)), 0);
        if (testload_exec(f->wh, sql, err, sizeof(err)) < 0)
                fail_msg("ddl %s: %s", sql, err);
}

/* Runs one COPY; "%D" in the statement is the temp folder. */
static int run(struct fx *f, const char *stmt)
{
        char sql[4096];
        size_t n = 0;
        const char *s = stmt;
        for (const char *d = strstr(s, "%D"); d; d = strstr(s, "%D")) {
                n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%.*s%s", (int)(d - s), s, f->dir);
                s = d + 2;
        }
        snprintf(sql + n, sizeof(sql) - n, "%s", s);
        struct load_request req = {
                .statement = sql,
                .wh = f->wh,
                .progress = &f->progress,
                .concurrency = f->concurrency,
                .on_error = on_error,
                .userdata = f,
        };
        f->n_errors = 0;
        f->err[0] = '\0';
        return testload_run(&req, false, f->err, sizeof(f->err));
}

static void ok(struct fx *f, const char *stmt)
{
        int r = run(f, stmt);
        if (r != 0)
                fail_msg("load: %d %s", r, f->err);
}

static void fails(struct fx *f, const char *stmt, const char *want)
{
        int r = run(f, stmt);
        if (r >= 0)
                fail_msg("load succeeded, want an error with '%s'", want);
        if (!strstr(f->err, want))
                fail_msg("error '%s' lacks '%s'", f->err, want);
}

/* The single value a query returns, as text ("NULL" for NULL). */
static const char *val(struct fx *f, const char *sql)
{
        static char out[4][512];
        static int k;
        char *o = out[k++ % 4];
        json_t *rows = NULL;
        char err[256];
        if (testload_query(f->wh, sql, &rows, err, sizeof(err)) < 0)
                fail_msg("query %s: %s", sql, err);
        json_t *v = json_array_get(json_array_get(rows, 0), 0);
        if (!v || json_is_null(v))
                snprintf(o, 512, "NULL");
        else if (json_is_string(v))
                snprintf(o, 512, "%s", json_string_value(v));
        else if (json_is_integer(v))
                snprintf(o, 512, "%lld", (long long)json_integer_value(v));
        else
                snprintf(o, 512, "%.17g", json_real_value(v));
        json_decref(rows);
        return o;
}

#define EQ(f, sql, want) assert_string_equal(val(f, sql), want)

/* ---- "COPY from JSON format" ------------------------------------------- */

/* "COPY from JSON format", 'auto': "COPY maps the data elements in the JSON
 * source data to the columns in the target table by matching object keys,
 * or names, in the source name-value pairs to the names of columns"; keys
 * must match the (lower-case) column names exactly; fields with no column
 * are ignored; a column with no field gets NULL. */
static void test_json_auto_matches_keys_case_sensitively(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (artist VARCHAR(20), year INTEGER, extra VARCHAR(5))");
        put(f, "a/1.json", "{\"artist\":\"Muse\",\"Year\":2001,\"other\":1}");
        ok(f, "COPY t FROM 'file://%D/a/' FORMAT AS JSON 'auto'");
        EQ(f, "SELECT artist FROM t", "Muse");
        EQ(f, "SELECT year FROM t", "NULL");
        EQ(f, "SELECT extra FROM t", "NULL");
}

/* "COPY from JSON format", 'auto ignorecase': "the case of the key names in
 * the source data doesn't need to match the column names". */
static void test_json_auto_ignorecase(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (artist VARCHAR(20), year INTEGER)");
        put(f, "a/1.json", "{\"ARTIST\":\"Muse\",\"Year\":2001}");
        ok(f, "COPY t FROM 'file://%D/a/' FORMAT AS JSON 'auto ignorecase'");
        EQ(f, "SELECT artist || year FROM t", "Muse2001");
}

/* "COPY from JSON format": "The JSON data file contains a set of either
 * objects or arrays ... objects can be concatenated or separated by
 * whitespace (newlines)". */
static void test_json_objects_concatenated_or_newline_separated(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (id INTEGER)");
        put(f, "a/1.json", "{\"id\":1}{\"id\":2} {\"id\":3}\n{\"id\":4}\r\n\n{\n \"id\": 5\n}");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto'");
        EQ(f, "SELECT count(*) || ':' || sum(id) FROM t", "5:15");
}

/* "COPY from JSON format", JSONPaths: bracket notation or dot notation,
 * array indexes ("$['friends'][0]"); a path that selects nothing loads
 * NULL. */
static void test_jsonpaths_bracket_dot_and_index(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (a VARCHAR(10), b INTEGER, c INTEGER, d VARCHAR(10))");
        put(f, "p.json",
            "{\"jsonpaths\": [\"$['name']\", \"$['x']['y']\", \"$['arr'][1]\", \"$['none']\"]}");
        put(f, "a/1.json", "{\"name\":\"n\",\"x\":{\"y\":7},\"arr\":[5,6]}");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'file://%D/p.json'");
        EQ(f, "SELECT a || b || c FROM t", "n76");
        EQ(f, "SELECT d FROM t", "NULL");
        ddl(f, "CREATE TABLE t (a VARCHAR(10), b INTEGER, c INTEGER, d VARCHAR(10))");
        put(f, "p.json", "{\"jsonpaths\": [\"$.name\", \"$.x.y\", \"$.arr[1]\", \"$.none\"]}");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'file://%D/p.json'");
        EQ(f, "SELECT a || b || c FROM t", "n76");
}

/* "COPY from JSON format", JSONPath expressions: bracket notation and dot
 * notation cannot be mixed in one jsonpaths array -- the COPY fails before
 * reading anything. */
static void test_jsonpaths_notations_not_mixed(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (a VARCHAR(10), b INTEGER)");
        put(f, "a/1.json", "{\"name\":\"n\",\"x\":{\"y\":7}}");
        put(f, "p.json", "{\"jsonpaths\": [\"$['name']\", \"$.x.y\"]}");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'file://%D/p.json'", "cannot be mixed");
        put(f, "p.json", "{\"jsonpaths\": [\"$.name\", \"$.x['y']\"]}");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'file://%D/p.json'", "cannot be mixed");
        EQ(f, "SELECT count(*) FROM t", "0");
}

/* "COPY from JSON format" and "Data format parameters": a JSONPaths file is
 * "a single JSON object with the name "jsonpaths""; "If the name is any
 * string other than "jsonpaths", COPY uses the 'auto' argument instead of
 * using the JSONPaths file" -- no error, keys matched to column names. */
static void test_jsonpaths_other_name_means_auto(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (id INTEGER, name VARCHAR(10))");
        put(f, "a/1.json", "{\"id\":1,\"name\":\"one\",\"x\":9}");
        put(f, "p.json", "{\"paths\": [\"$.x\", \"$.x\"]}");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'file://%D/p.json'");
        EQ(f, "SELECT id || name FROM t", "1one");
        /* and as with 'auto', a record that is an array is not a row */
        put(f, "a/1.json", "[2, \"two\"]");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'file://%D/p.json'", "MAXERROR");
}

/* "COPY from JSON format", JSONPath expressions: "If an index ... doesn't
 * exist", or the value is not an array, "COPY fails with the following
 * error: Invalid JSONPath format: Not an array or index out of range." --
 * the whole COPY, not a reject (MAXERROR does not help). */
static void test_jsonpaths_index_out_of_range_fails(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (a INTEGER)");
        put(f, "p.json", "{\"jsonpaths\": [\"$.arr[2]\"]}");
        put(f, "a/1.json", "{\"arr\":[1,2,3]}\n{\"arr\":[1,2]}\n");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'file://%D/p.json' MAXERROR 100",
              "Invalid JSONPath format: Not an array or index out of range");
        assert_int_equal(f->n_errors, 0);
        EQ(f, "SELECT count(*) FROM t", "0");
        put(f, "a/1.json", "{\"arr\":{\"2\":5}}\n");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'file://%D/p.json' MAXERROR 100",
              "Not an array or index out of range");
        /* a missing member is not an index error: NULL */
        put(f, "a/1.json", "{\"other\":1}\n");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'file://%D/p.json'");
        EQ(f, "SELECT coalesce(a, 'null') FROM t", "null");
}

/* "COPY from JSON format", JSONPaths: records may be arrays; "$[0]" picks
 * their elements. */
static void test_jsonpaths_array_records(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (id INTEGER, name VARCHAR(10))");
        put(f, "p.json", "{\"jsonpaths\": [\"$[0]\", \"$[1]\"]}");
        put(f, "a/1.json", "[1, \"one\"]\n[2, \"two\"]");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'file://%D/p.json'");
        EQ(f, "SELECT group_concat(id || name, ',') FROM t", "1one,2two");
}

/* "COPY from JSON format": "the number of JSONPath expressions must match
 * the number of columns" -- a load error before anything is read. */
static void test_jsonpaths_count_must_match_columns(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (a INTEGER, b INTEGER)");
        put(f, "p.json", "{\"jsonpaths\": [\"$.a\"]}");
        put(f, "a/1.json", "{\"a\":1}");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'file://%D/p.json'",
              "the number of jsonpaths and the number of columns should match");
}

/* "COPY from JSON format", JSONPath expressions: wildcards and filters are
 * not supported; an invalid expression fails the COPY naming it. */
static void test_jsonpaths_bad_syntax(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (a INTEGER)");
        put(f, "a/1.json", "{\"a\":1}");
        put(f, "p.json", "{\"jsonpaths\": [\"$.a[*]\"]}");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'file://%D/p.json'", "$.a[*]");
        put(f, "p.json", "{\"jsonpaths\": [\"a\"]}");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'file://%D/p.json'", "must start with '$'");
        put(f, "p.json", "{\"jsonpaths\": {}}");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'file://%D/p.json'", "\"jsonpaths\" array");
}

/* "COPY from JSON format": a JSONPaths file that does not exist fails the
 * COPY naming it. */
static void test_jsonpaths_file_missing(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (a INTEGER)");
        put(f, "a/1.json", "{\"a\":1}");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'file://%D/nope.json'", "nope.json");
}

/* "COPY from JSON format": "If a JSON object or array is the value for a
 * column of CHAR or VARCHAR, the value is loaded as JSON text" (compact). */
static void test_nested_values_load_as_json_text(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (o VARCHAR(40), a VARCHAR(40))");
        put(f, "a/1.json", "{\"o\": {\"k\": [1, 2], \"s\": \"a b\"}, \"a\": [ true, null ]}");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto'");
        EQ(f, "SELECT o FROM t", "{\"k\":[1,2],\"s\":\"a b\"}");
        EQ(f, "SELECT a FROM t", "[true,null]");
}

/* "COPY from JSON format": a JSON null (and a missing field) loads NULL. */
static void test_null_loads_null(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (a VARCHAR(5), b INTEGER, c DOUBLE PRECISION, d TIMESTAMP)");
        put(f, "a/1.json", "{\"a\":null,\"b\":null,\"c\":null}");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto'");
        EQ(f, "SELECT coalesce(a, b, c, d, 'all null') FROM t", "all null");
}

/* "COPY from JSON format", numbers: a JSON string holding a number loads
 * into a numeric column; a number loads into a character column as the text
 * the JSON wrote (no reformatting: "1.10" stays "1.10"). */
static void test_numbers_as_strings_and_strings_as_numbers(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (i INTEGER, d DOUBLE PRECISION, n DECIMAL(8,2), s VARCHAR(30), "
               "e VARCHAR(30))");
        put(f, "a/1.json",
            "{\"i\":\"42\",\"d\":\"2.5\",\"n\":\"12.34\",\"s\":1.10,\"e\":1.541016707796e+12}");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto'");
        EQ(f, "SELECT i FROM t", "42");
        EQ(f, "SELECT d FROM t", "2.5");
        EQ(f, "SELECT n FROM t", "12.34");
        EQ(f, "SELECT s FROM t", "1.10");
        EQ(f, "SELECT e FROM t", "1.541016707796e+12");
}

/* ---- "Data conversion parameters" and "Load error reference" -------------- */

/* "Load error reference": 1207 "Invalid digit" for a non-digit in an integer
 * column; 1222 "Integer value overflow error" for a value out of the
 * SMALLINT, INTEGER, BIGINT ranges of "Numeric types" (1204, "exceeded the
 * acceptable range", stays for DECIMAL, REAL and lengths). */
static void test_integer_invalid_digit_and_overflow(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (s SMALLINT, i INTEGER, b BIGINT)");
        put(f, "a/1.json",
            "{\"s\":32767,\"i\":-2147483648,\"b\":9223372036854775807}\n"
            "{\"s\":\"12a\"}\n"
            "{\"s\":32768}\n"
            "{\"b\":9223372036854775808}\n");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' MAXERROR 10");
        EQ(f, "SELECT s || ',' || i || ',' || b FROM t", "32767,-2147483648,9223372036854775807");
        assert_int_equal(f->n_errors, 3);
        assert_int_equal(f->errs[0].code, 1207);
        assert_string_equal(f->errs[0].colname, "s");
        assert_string_equal(f->errs[0].field, "12a");
        assert_int_equal(f->errs[1].code, 1222);
        assert_int_equal(f->errs[2].code, 1222);
}

/* "Data conversion parameters", ROUNDEC: "By default, the COPY command
 * doesn't round up numeric values whose scale exceeds the scale of the
 * column"; with ROUNDEC they are rounded. */
static void test_decimal_truncates_or_rounds_with_roundec(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (n DECIMAL(8,2))");
        put(f, "a/1.json", "{\"n\":2.345}");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto'");
        EQ(f, "SELECT printf('%.3f', n) FROM t", "2.340");
        ddl(f, "CREATE TABLE t (n DECIMAL(8,2))");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' ROUNDEC");
        EQ(f, "SELECT printf('%.3f', n) FROM t", "2.350");
}

/* "Numeric types", DECIMAL: more integer digits than precision - scale is a
 * numeric overflow (1204). */
static void test_decimal_precision_overflow(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (n DECIMAL(4,2))");
        put(f, "a/1.json", "{\"n\":123.4}");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'auto'", "MAXERROR is 0");
        assert_int_equal(f->errs[0].code, 1204);
}

/* "Character types": VARCHAR(n) counts bytes, not characters; a longer value
 * is rejected (1204 "String length exceeds DDL length"). */
static void test_varchar_length_in_bytes(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (s VARCHAR(3))");
        put(f, "a/1.json", "{\"s\":\"\xc3\xa9\xc3\xa9\"}"); /* 2 characters, 4 bytes */
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'auto'", "String length exceeds DDL length");
        assert_int_equal(f->errs[0].code, 1204);
}

/* "Data conversion parameters", TRUNCATECOLUMNS: "Truncates data in columns
 * to the appropriate number of characters so that it fits the column
 * specification" -- at a UTF-8 character boundary. */
static void test_truncatecolumns_cuts_at_utf8_boundary(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (s VARCHAR(3), c CHAR(2))");
        put(f, "a/1.json", "{\"s\":\"\xc3\xa9\xc3\xa9\",\"c\":\"abc\"}");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' TRUNCATECOLUMNS");
        EQ(f, "SELECT s FROM t", "\xc3\xa9");
        EQ(f, "SELECT c FROM t", "ab");
}

/* "Data conversion parameters", BLANKSASNULL: "Loads blank fields, which
 * consist of only white space characters, as NULL"; EMPTYASNULL: "Indicates
 * that Amazon Redshift should load empty CHAR and VARCHAR fields as NULL";
 * "Empty fields for other data types, such as INT, are always loaded with
 * NULL". */
static void test_blanksasnull_and_emptyasnull(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (a VARCHAR(5), b VARCHAR(5), i INTEGER)");
        put(f, "a/1.json", "{\"a\":\"\",\"b\":\"  \",\"i\":\"\"}");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto'");
        EQ(f, "SELECT quote(a) || quote(b) || quote(i) FROM t", "'''  'NULL");
        ddl(f, "CREATE TABLE t (a VARCHAR(5), b VARCHAR(5), i INTEGER)");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' EMPTYASNULL");
        EQ(f, "SELECT quote(a) || quote(b) FROM t", "NULL'  '");
        ddl(f, "CREATE TABLE t (a VARCHAR(5), b VARCHAR(5), i INTEGER)");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' BLANKSASNULL");
        EQ(f, "SELECT quote(a) || quote(b) FROM t", "NULLNULL");
}

/* "Data conversion parameters", TIMEFORMAT 'epochmillisecs' and
 * 'epochsecs': the value is the time since 1970-01-01 00:00:00 UTC. */
static void test_timeformat_epoch(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (ts TIMESTAMP)");
        put(f, "a/1.json", "{\"ts\":1541105830796}");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' TIMEFORMAT 'epochmillisecs'");
        EQ(f, "SELECT ts FROM t", "2018-11-01 20:57:10.796");
        put(f, "a/1.json", "{\"ts\":1541105830}");
        ddl(f, "CREATE TABLE t (ts TIMESTAMP)");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' TIMEFORMAT AS 'epochsecs'");
        EQ(f, "SELECT ts FROM t", "2018-11-01 20:57:10");
}

/* "Using automatic recognition with DATEFORMAT and TIMEFORMAT"
 * (automatic-recognition.html): 'auto' reads every form of the page's table,
 * each with the page's own example. */
static void test_timeformat_auto(void **state)
{
        struct fx *f = *state;
        static const struct {
                const char *in, *ts, *tstz;
        } forms[] = {
                { "2019-02-11T05:09:12.195Z", "2019-02-11 05:09:12.195", "2019-02-11 05:09:12.195+00" },
                { "2018-11-01T20:57:10.5Z", "2018-11-01 20:57:10.5", "2018-11-01 20:57:10.5+00" },
                { "J2451187", "1999-01-08 00:00:00", "1999-01-08 00:00:00+00" },
                { "19960108 040809", "1996-01-08 04:08:09", "1996-01-08 04:08:09+00" },
                { "960108 040809", "1996-01-08 04:08:09", "1996-01-08 04:08:09+00" },
                { "1996.008", "1996-01-08 00:00:00", "1996-01-08 00:00:00+00" },
                { "1996-01-08 04:05:06.789", "1996-01-08 04:05:06.789", "1996-01-08 04:05:06.789+00" },
                { "17 Dec 07:37:16 1997 PST", "1997-12-17 07:37:16", "1997-12-17 15:37:16+00" },
                { "12/17/1997 07:37:16.00 PST", "1997-12-17 07:37:16", "1997-12-17 15:37:16+00" },
                { "1997-12-17 07:37:16-08", "1997-12-17 07:37:16", "1997-12-17 15:37:16+00" },
                { "12.17.1997 07:37:16.00 PST", "1997-12-17 07:37:16", "1997-12-17 15:37:16+00" },
                { "2018-11-01", "2018-11-01 00:00:00", "2018-11-01 00:00:00+00" },
        };
        for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
                ddl(f, "CREATE TABLE t (ts TIMESTAMP, tz TIMESTAMPTZ, d DATE)");
                char rec[200];
                snprintf(rec, sizeof(rec), "{\"ts\":\"%s\",\"tz\":\"%s\",\"d\":\"%s\"}",
                         forms[i].in, forms[i].in, forms[i].in);
                put(f, "a/1.json", rec);
                int r = run(f, "COPY t FROM 'file://%D/a/' JSON 'auto' TIMEFORMAT 'auto' "
                               "DATEFORMAT 'auto'");
                if (r != 0)
                        fail_msg("'auto' does not read '%s': %s", forms[i].in, f->err);
                assert_string_equal(val(f, "SELECT ts FROM t"), forms[i].ts);
                assert_string_equal(val(f, "SELECT tz FROM t"), forms[i].tstz);
                char day[11];
                snprintf(day, sizeof(day), "%.10s", forms[i].ts);
                assert_string_equal(val(f, "SELECT d FROM t"), day);
        }
        /* "Automatic recognition doesn't support epochsecs and epochmillisecs" */
        ddl(f, "CREATE TABLE t (ts TIMESTAMP)");
        put(f, "a/1.json", "{\"ts\":\"1541105830\"}{\"ts\":\"13/45/2019 00:00:00\"}");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' TIMEFORMAT 'auto' MAXERROR 3");
        assert_int_equal(f->n_errors, 2);
        assert_int_equal(f->errs[0].code, 1206);
}

/* "Data conversion parameters", TIMEFORMAT and DATEFORMAT: 'auto',
 * 'epochsecs' and 'epochmillisecs' are case-sensitive keywords ("auto
 * (case-sensitive)"); in any other case they are format strings, and
 * 'EPOCHSECS' as a format string reads no epoch. */
static void test_time_keywords_are_case_sensitive(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (ts TIMESTAMP)");
        put(f, "a/1.json", "{\"ts\":1541105830}");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' TIMEFORMAT 'epochsecs'");
        EQ(f, "SELECT ts FROM t", "2018-11-01 20:57:10");
        /* (here a format string etld cannot read: the COPY fails naming it) */
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'auto' TIMEFORMAT 'EPOCHSECS'",
              "format string 'EPOCHSECS'");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'auto' TIMEFORMAT 'EpochMillisecs'",
              "format string 'EpochMillisecs'");
        put(f, "a/1.json", "{\"ts\":\"2018-11-01T20:57:10Z\"}");
        ddl(f, "CREATE TABLE t (ts TIMESTAMP)");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' TIMEFORMAT 'auto'");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'auto' TIMEFORMAT 'AUTO'", "format string 'AUTO'");
        ddl(f, "CREATE TABLE t (d DATE)");
        put(f, "a/1.json", "{\"d\":\"1996.008\"}");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' DATEFORMAT 'auto'");
        EQ(f, "SELECT d FROM t", "1996-01-08");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'auto' DATEFORMAT 'Auto'", "format string 'Auto'");
}

/* "DATEFORMAT and TIMEFORMAT strings": YYYY, MM, DD, HH24, HH12 with AM/PM,
 * MI, SS with fractional seconds "up to a microsecond level of detail", MON
 * month names; the default TIMESTAMP format is YYYY-MM-DD HH:MI:SS. */
static void test_timeformat_and_dateformat_strings(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (ts TIMESTAMP, d DATE)");
        put(f, "a/1.json",
            "{\"ts\":\"03.31.2003 06:45:05.123456 PM\",\"d\":\"March 31, 2003\"}\n"
            "{\"ts\":\"12.01.2003 12:00:00 AM\",\"d\":\"Jan 02, 1999\"}\n");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' TIMEFORMAT 'MM.DD.YYYY HH12:MI:SS AM' "
              "DATEFORMAT 'MON DD, YYYY'");
        EQ(f, "SELECT group_concat(ts || '/' || d, ',') FROM t",
           "2003-03-31 18:45:05.123456/2003-03-31,2003-12-01 00:00:00/1999-01-02");
        ddl(f, "CREATE TABLE t (ts TIMESTAMP, d DATE)");
        put(f, "a/1.json", "{\"ts\":\"2003/03/31 18:45\",\"d\":\"31-03-03\"}");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' TIMEFORMAT 'YYYY/MM/DD HH24:MI' "
              "DATEFORMAT 'DD-MM-YY'");
        EQ(f, "SELECT ts || '/' || d FROM t", "2003-03-31 18:45:00/2003-03-31");
}

/* "Load error reference": 1206 invalid timestamp, 1205 invalid date. */
static void test_bad_timestamp_and_date_rejected(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (ts TIMESTAMP, d DATE)");
        put(f, "a/1.json", "{\"ts\":\"2018-13-01 00:00:00\"}\n{\"d\":\"2018-02-30\"}\n");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' MAXERROR 3");
        assert_int_equal(f->n_errors, 2);
        assert_int_equal(f->errs[0].code, 1206);
        assert_int_equal(f->errs[1].code, 1205);
}

/* "Boolean type": true/false, t/f, yes/no, y/n, 1/0 load; anything else is
 * rejected (1210). */
static void test_boolean_values(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (b BOOLEAN)");
        put(f, "a/1.json",
            "{\"b\":true}{\"b\":\"f\"}{\"b\":\"YES\"}{\"b\":0}{\"b\":\"maybe\"}");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' MAXERROR 2");
        EQ(f, "SELECT group_concat(b, '') FROM t", "1010");
        assert_int_equal(f->errs[0].code, 1210);
}

/* "Data conversion parameters", ACCEPTINVCHARS: "Enables loading of data
 * into VARCHAR columns even if the data contains invalid UTF-8 characters";
 * each invalid byte is replaced by the replacement character ('?' unless
 * given); without it the record is rejected (1220). */
static void test_acceptinvchars(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (s VARCHAR(10))");
        put(f, "a/1.json", "{\"s\":\"a\xff" "b\"}");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'auto'", "MAXERROR is 0");
        assert_int_equal(f->errs[0].code, 1220);
        ddl(f, "CREATE TABLE t (s VARCHAR(10))");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' ACCEPTINVCHARS");
        EQ(f, "SELECT s FROM t", "a?b");
        ddl(f, "CREATE TABLE t (s VARCHAR(10))");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' ACCEPTINVCHARS AS '^'");
        EQ(f, "SELECT s FROM t", "a^b");
}

/* ---- "Data format parameters", "Data sources" --------------------------- */

/* "COPY from Amazon S3": the FROM value is a key prefix, matched as a string
 * ("s3://bucket/custdata" loads custdata.txt, custdata_2/..."), objects in
 * key order. */
static void test_prefix_is_a_string_prefix(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (id INTEGER)");
        put(f, "b/log/1.json", "{\"id\":1}");
        put(f, "b/log_old/2.json", "{\"id\":2}");
        put(f, "b/logs.json", "{\"id\":3}");
        put(f, "b/other.json", "{\"id\":4}");
        ok(f, "COPY t FROM 'file://%D/b/log' JSON 'auto'");
        EQ(f, "SELECT group_concat(id, '') FROM t", "123");
}

/* "COPY from Amazon S3": a prefix that matches no object is an error
 * ("The specified S3 prefix ... does not exist"). */
static void test_empty_prefix_is_an_error(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (id INTEGER)");
        fails(f, "COPY t FROM 'file://%D/nothing-here' JSON 'auto'", "no objects found under");
}

/* "Data format parameters", GZIP: the objects are gzip-compressed. */
static void test_gzip(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (id INTEGER)");
        const char *text = "{\"id\":7}\n{\"id\":8}\n";
        unsigned char gz[256];
        z_stream z;
        memset(&z, 0, sizeof(z));
        assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
                         Z_OK);
        z.next_in = (Bytef *)text;
        z.avail_in = (uInt)strlen(text);
        z.next_out = gz;
        z.avail_out = sizeof(gz);
        assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
        put_bytes(f, "g/1.json.gz", gz, sizeof(gz) - z.avail_out);
        deflateEnd(&z);
        ok(f, "COPY t FROM 'file://%D/g/' JSON 'auto' GZIP");
        EQ(f, "SELECT sum(id) FROM t", "15");
}

/* Writes the manifest name, formatted (its entries name files under f->dir). */
static void put_manifest(struct fx *f, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void put_manifest(struct fx *f, const char *name, const char *fmt, ...)
{
        char man[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(man, sizeof(man), fmt, ap);
        va_end(ap);
        put(f, name, man);
}

/* "Using a manifest to specify data files": the entries' files are loaded;
 * "mandatory": true fails the COPY when the file is not found; an optional
 * file that is missing is skipped. */
static void test_manifest_mandatory(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (id INTEGER)");
        put(f, "m/x.json", "{\"id\":1}");
        put(f, "m/y.json", "{\"id\":2}");
        put_manifest(f, "cust.manifest",
                     "{\"entries\": [{\"url\":\"file://%s/m/y.json\", \"mandatory\":true},"
                     "{\"url\":\"file://%s/m/x.json\"},"
                     "{\"url\":\"file://%s/m/gone.json\", \"mandatory\":false}]}",
                     f->dir, f->dir, f->dir);
        ok(f, "COPY t FROM 'file://%D/cust.manifest' JSON 'auto' MANIFEST");
        EQ(f, "SELECT group_concat(id, '') FROM t", "21"); /* manifest order */
        put_manifest(f, "cust.manifest",
                     "{\"entries\": [{\"url\":\"file://%s/m/x.json\", \"mandatory\":true},"
                     "{\"url\":\"file://%s/m/gone.json\", \"mandatory\":true}]}",
                     f->dir, f->dir);
        fails(f, "COPY t FROM 'file://%D/cust.manifest' JSON 'auto' MANIFEST", "gone.json");
}

/* An entry's "meta": {"content_length": N} (Redshift's, required only for
 * ORC and Parquet) is a size hint: a wrong one reads the object as it is;
 * one that is no byte count fails the COPY, naming the entry. */
static void test_manifest_meta(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (id INTEGER)");
        put(f, "m/x.json", "{\"id\":1}");
        put(f, "m/y.json", "{\"id\":2}{\"id\":3}");
        put_manifest(f, "meta.manifest",
                     "{\"entries\": [{\"url\":\"file://%s/m/x.json\", "
                     "\"meta\":{\"content_length\":8}},"
                     "{\"url\":\"file://%s/m/y.json\", \"meta\":{\"content_length\":1}}]}",
                     f->dir, f->dir);
        ok(f, "COPY t FROM 'file://%D/meta.manifest' JSON 'auto' MANIFEST");
        EQ(f, "SELECT group_concat(id, '') FROM t", "123");
        const char *bad[] = {"\"meta\":{\"content_length\":\"8\"}",
                             "\"meta\":{\"content_length\":-1}", "\"meta\":[8]"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                put_manifest(f, "meta.manifest",
                             "{\"entries\": [{\"url\":\"file://%s/m/x.json\"},"
                             "{\"url\":\"file://%s/m/y.json\", %s}]}",
                             f->dir, f->dir, bad[i]);
                fails(f, "COPY t FROM 'file://%D/meta.manifest' JSON 'auto' MANIFEST",
                      "entry 2 must have");
        }
        EQ(f, "SELECT COUNT(*) FROM t", "3");
}

/* A manifest that is not one JSON object with an "entries" array of
 * entries fails the COPY before anything is read, saying where or what is
 * wrong, and loads nothing. */
static void test_manifest_malformed(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (id INTEGER)");
        put(f, "m/x.json", "{\"id\":1}");
        const struct {
                const char *text, *want;
        } cases[] = {
            {"{\"entries\": [{\"url\":\"file://%s/m/x.json\"}", "not a JSON file: parsing stops"},
            {"{\"entries\": []}\n\n x", "parsing stops at byte 18 (line 3, column 2)"},
            {"{\"entries\": [\"\\u00zz\"]}", "not a JSON file"},
            {"", "not a JSON file: parsing stops at byte 0"},
            {"[]", "must be an object with an \"entries\" array"},
            {"{\"entries\": {}}", "must be an object with an \"entries\" array"},
            {"{\"entries\": []}", "lists no files"},
            {"{\"entries\": [{\"url\":\"file://%s/m/x.json\"}, 7]}", "entry 2 must have"},
            {"{\"entries\": [{\"url\":\"file://%s/m/x.json\", \"mandatory\":1}]}",
             "entry 1 must have"},
            {"{\"entries\": [{\"url\":\"file://%s/m/x.json\", "
             "\"meta\":{\"content_length\":1.5}}]}",
             "entry 1 must have"},
            {"{\"entries\": [{\"url\":\"file://%s/m/x.json\", "
             "\"meta\":{\"content_length\":99999999999999999999999}}]}",
             "entry 1 must have"},
            {"{\"entries\": [{\"url\":\"http://%s/m/x.json\"}]}", "unknown source"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral" /* the cases above: one %s, the folder */
                put_manifest(f, "bad.manifest", cases[i].text, f->dir);
#pragma GCC diagnostic pop
                fails(f, "COPY t FROM 'file://%D/bad.manifest' JSON 'auto' MANIFEST",
                      cases[i].want);
        }
        EQ(f, "SELECT COUNT(*) FROM t", "0");
        /* the same entry, well formed, loads */
        put_manifest(f, "bad.manifest",
                     "\n {\"entries\": [{\"url\":\"file://%s/m/x.json\", "
                     "\"meta\":{\"content_length\":8}, \"mandatory\":true}]} \n",
                     f->dir);
        ok(f, "COPY t FROM 'file://%D/bad.manifest' JSON 'auto' MANIFEST");
        EQ(f, "SELECT COUNT(*) FROM t", "1");
}

/* A manifest is read whole, and may name as many objects as a real bucket
 * holds: Sparkify's song_data is ~15,000 objects, a manifest of 1.5 MB. */
static void test_manifest_of_a_real_bucket(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (id INTEGER)");
        put(f, "m/x.json", "{\"id\":1}");
        struct buf man = {0};
        assert_int_equal(buf_printf(&man, "{\"entries\": [{\"url\":\"file://%s/m/x.json\"}", f->dir),
                         0);
        for (int i = 0; i < 15000; i++)
                assert_int_equal(buf_printf(&man,
                                            ",{\"url\":\"file://%s/m/song-%05d-not-staged.json\","
                                            "\"mandatory\":false}",
                                            f->dir, i),
                                 0);
        assert_int_equal(buf_printf(&man, "]}"), 0);
        assert_true(man.len > ((size_t)1 << 20));
        put(f, "big.manifest", man.data);
        buf_free(&man);
        ok(f, "COPY t FROM 'file://%D/big.manifest' JSON 'auto' MANIFEST");
        EQ(f, "SELECT COUNT(*) FROM t", "1");
}

/* ---- "STL_LOAD_ERRORS", MAXERROR ---------------------------------------- */

/* "STL_LOAD_ERRORS": filename, line_number, colname, type, position,
 * raw_line, raw_field_value, err_code, err_reason of each rejected record. */
static void test_stl_load_errors_fields(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (id INTEGER, name VARCHAR(10))");
        put(f, "a/1.json", "{\"id\":1,\"name\":\"a\"}\n{\"id\":\"x2\",\"name\":\"b\"}\n");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' MAXERROR 2");
        assert_int_equal(f->n_errors, 1);
        struct rejected *e = &f->errs[0];
        assert_non_null(strstr(e->filename, "/a/1.json"));
        assert_int_equal(e->line, 2);
        assert_string_equal(e->colname, "id");
        assert_string_equal(e->type, "INTEGER");
        assert_int_equal(e->position, 20);
        assert_string_equal(e->raw, "{\"id\":\"x2\",\"name\":\"b\"}");
        assert_string_equal(e->field, "x2");
        assert_int_equal(e->code, 1207);
        assert_non_null(strstr(e->reason, "Invalid digit"));
        EQ(f, "SELECT count(*) FROM t", "1");
}

/* "Load error reference" 1216 "Invalid input line": a record that is not
 * valid JSON is rejected and counts towards MAXERROR; loading goes on at the
 * next record. */
static void test_invalid_json_record_rejected(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (id INTEGER)");
        put(f, "a/1.json", "{\"id\":1}\n{\"id\":,}\n{\"id\":3}\n");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' MAXERROR 2");
        assert_int_equal(f->n_errors, 1);
        assert_int_equal(f->errs[0].code, 1216);
        assert_int_equal(f->errs[0].line, 2);
        EQ(f, "SELECT group_concat(id, '') FROM t", "13");
}

/* "Data load operations" (copy-parameters-data-load.html), MAXERROR: "If
 * the load returns the error_count number of errors or greater, the load
 * fails"; "Set this value to 0 or 1 if you want the load to fail as soon as
 * the first error occurs"; the default is 0.  So MAXERROR n tolerates n - 1
 * rejects: pinned at n - 1 (loads), n and n + 1 (fail), and 0 and 1 both
 * stop at the first.  The README ("The COPY emulator") gives the reasons. */
static void test_maxerror_boundary(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (id INTEGER)");
        /* two rejects (a, b), one good row */
        put(f, "a/1.json", "{\"id\":\"a\"}{\"id\":\"b\"}{\"id\":3}");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'auto'", "MAXERROR is 0");
        assert_int_equal(f->n_errors, 1);
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'auto' MAXERROR 0", "1 reject(s), MAXERROR is 0");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'auto' MAXERROR 1", "1 reject(s), MAXERROR is 1");
        assert_int_equal(f->n_errors, 1);
        /* n = 2 errors: MAXERROR n + 1 = 3 loads, n = 2 fails, n - 1 = 1 fails */
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' MAXERROR 3");
        assert_int_equal(f->n_errors, 2);
        EQ(f, "SELECT count(*) FROM t", "1");
        ddl(f, "CREATE TABLE t (id INTEGER)");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'auto' MAXERROR 2", "2 reject(s), MAXERROR is 2");
        assert_int_equal(f->n_errors, 2);
        EQ(f, "SELECT count(*) FROM t", "0");
        /* the same boundary seen from MAXERROR 3: 2, 3 and 4 rejects */
        put(f, "a/1.json", "{\"id\":\"a\"}{\"id\":\"b\"}{\"id\":\"c\"}{\"id\":9}");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'auto' MAXERROR 3", "3 reject(s), MAXERROR is 3");
        put(f, "a/1.json", "{\"id\":\"a\"}{\"id\":\"b\"}{\"id\":\"c\"}{\"id\":\"d\"}");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'auto' MAXERROR 3", "3 reject(s), MAXERROR is 3");
        assert_int_equal(f->n_errors, 3); /* stops at the third */
}

/* "COPY from JSON format": "The maximum size of a JSON object in Amazon
 * Redshift is 4 MB, which applies before any shredding or parsing" -- an
 * object over it fails the COPY (it is not a reject MAXERROR could allow);
 * one of exactly 4 MiB loads. */
static void test_json_object_over_4mb_fails(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (id INTEGER, s VARCHAR(10))");
        size_t max = (size_t)4 << 20;
        char *big = malloc(max + 64);
        assert_non_null(big);
        /* {"id":2,"s":"x","pad":"....."} of exactly max bytes */
        const char *head = "{\"id\":2,\"s\":\"x\",\"pad\":\"";
        size_t hl = strlen(head);
        memcpy(big, head, hl);
        memset(big + hl, 'p', max - hl - 2);
        memcpy(big + max - 2, "\"}", 2);
        put(f, "a/1.json", "{\"id\":1}\n");
        put_bytes(f, "a/2.json", big, max);
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto'");
        EQ(f, "SELECT count(*) || ':' || sum(id) FROM t", "2:3");
        /* one byte more */
        ddl(f, "CREATE TABLE t (id INTEGER, s VARCHAR(10))");
        memmove(big + hl + 1, big + hl, max - hl);
        big[hl] = 'p';
        put_bytes(f, "a/2.json", big, max + 1);
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'auto' MAXERROR 100",
              "larger than the 4194304-byte maximum");
        assert_int_equal(f->n_errors, 0); /* not a reject */
        free(big);
}

/* "STL_LOAD_ERRORS", line_number: "For COPY from JSON, the line number of
 * the last line of the JSON object with the error" -- a reject of an object
 * written over several lines names its closing line. */
static void test_line_number_is_last_line_of_object(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (id INTEGER, name VARCHAR(10))");
        put(f, "a/1.json", "{\"id\": 1,\n \"name\": \"a\"}\n{\n  \"id\": \"x2\",\n"
                           "  \"name\": \"b\"\n}\n{\"id\": \"x3\"}\n");
        ok(f, "COPY t FROM 'file://%D/a/' JSON 'auto' MAXERROR 3");
        assert_int_equal(f->n_errors, 2);
        assert_int_equal(f->errs[0].line, 6); /* the object on lines 3-6 */
        assert_int_equal(f->errs[1].line, 7); /* one line: that line */
}

/* ---- "COPY" syntax ------------------------------------------------------- */

/* "COPY" parameters: credentials clauses and REGION are accepted;
 * COMPUPDATE/STATUPDATE too. */
static void test_credentials_region_accepted(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (id INTEGER)");
        put(f, "a/1.json", "{\"id\":1}");
        ok(f, "COPY t FROM 'file://%D/a/' IAM_ROLE 'arn:aws:iam::0:role/r' REGION 'us-west-2' "
              "FORMAT AS JSON 'auto' COMPUPDATE OFF STATUPDATE OFF");
        ok(f, "COPY t FROM 'file://%D/a/' ACCESS_KEY_ID 'AK' SECRET_ACCESS_KEY 'SK' "
              "SESSION_TOKEN 'T' JSON 'auto'");
        ok(f, "COPY t FROM 'file://%D/a/' CREDENTIALS 'aws_iam_role=arn' JSON 'auto'");
        EQ(f, "SELECT count(*) FROM t", "3");
}

/* "COPY": an unknown word is an error naming it and its position; options we
 * do not emulate are explicit errors, never silently ignored. */
static void test_unknown_and_unsupported_options(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (id INTEGER)");
        put(f, "a/1.json", "{\"id\":1}");
        fails(f, "COPY t FROM 'file://%D/a/' JSON 'auto' FILLRECORD", "FILLRECORD");
        fails(f, "COPY t FROM 'file://%D/a/' IAM_ROLE 'r'", "not supported yet");
}

/* "COPY", column list: only the listed columns are loaded, in that order
 * for JSONPaths. */
static void test_column_list(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (a INTEGER, b INTEGER, c INTEGER)");
        put(f, "p.json", "{\"jsonpaths\": [\"$.x\", \"$.y\"]}");
        put(f, "a/1.json", "{\"x\":1,\"y\":2}");
        ok(f, "COPY t (c, a) FROM 'file://%D/a/' JSON 'file://%D/p.json'");
        EQ(f, "SELECT a || '/' || coalesce(b, 'null') || '/' || c FROM t", "2/null/1");
}

/* Concurrency changes nothing: objects are loaded in key order and rejects
 * reported in order whatever the number of parser threads. */
static void test_concurrency_keeps_key_order(void **state)
{
        struct fx *f = *state;
        ddl(f, "CREATE TABLE t (id INTEGER)");
        for (int i = 0; i < 40; i++) {
                char rel[64], body[4096];
                size_t n = 0;
                snprintf(rel, sizeof(rel), "c/%03d.json", i);
                for (int j = 0; j < 50; j++) {
                        if (j == 7 && i % 10 == 3)
                                n += (size_t)snprintf(body + n, sizeof(body) - n,
                                                      "{\"id\":\"bad\"}\n");
                        else
                                n += (size_t)snprintf(body + n, sizeof(body) - n,
                                                      "{\"id\":%d}\n", i * 100 + j);
                }
                put(f, rel, body);
        }
        f->concurrency = 8;
        ok(f, "COPY t FROM 'file://%D/c/' JSON 'auto' MAXERROR 10");
        char *first = strdup(val(f, "SELECT group_concat(id, ',') FROM (SELECT id FROM t ORDER BY rowid)"));
        int n1 = f->n_errors;
        ddl(f, "CREATE TABLE t (id INTEGER)");
        f->concurrency = 1;
        ok(f, "COPY t FROM 'file://%D/c/' JSON 'auto' MAXERROR 10");
        assert_string_equal(val(f, "SELECT group_concat(id, ',') FROM (SELECT id FROM t ORDER BY rowid)"),
                            first);
        assert_int_equal(f->n_errors, n1);
        EQ(f, "SELECT count(*) FROM t", "1996");
        assert_int_equal(n1, 4);
        free(first);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
#define T(x) cmocka_unit_test_setup_teardown(x, setup, teardown)
                T(test_json_auto_matches_keys_case_sensitively),
                T(test_json_auto_ignorecase),
                T(test_json_objects_concatenated_or_newline_separated),
                T(test_jsonpaths_bracket_dot_and_index),
                T(test_jsonpaths_notations_not_mixed),
                T(test_jsonpaths_other_name_means_auto),
                T(test_jsonpaths_index_out_of_range_fails),
                T(test_jsonpaths_array_records),
                T(test_jsonpaths_count_must_match_columns),
                T(test_jsonpaths_bad_syntax),
                T(test_jsonpaths_file_missing),
                T(test_nested_values_load_as_json_text),
                T(test_null_loads_null),
                T(test_numbers_as_strings_and_strings_as_numbers),
                T(test_integer_invalid_digit_and_overflow),
                T(test_decimal_truncates_or_rounds_with_roundec),
                T(test_decimal_precision_overflow),
                T(test_varchar_length_in_bytes),
                T(test_truncatecolumns_cuts_at_utf8_boundary),
                T(test_blanksasnull_and_emptyasnull),
                T(test_timeformat_epoch),
                T(test_timeformat_auto),
                T(test_time_keywords_are_case_sensitive),
                T(test_timeformat_and_dateformat_strings),
                T(test_bad_timestamp_and_date_rejected),
                T(test_boolean_values),
                T(test_acceptinvchars),
                T(test_prefix_is_a_string_prefix),
                T(test_empty_prefix_is_an_error),
                T(test_gzip),
                T(test_manifest_mandatory),
                T(test_manifest_meta),
                T(test_manifest_malformed),
                T(test_manifest_of_a_real_bucket),
                T(test_stl_load_errors_fields),
                T(test_invalid_json_record_rejected),
                T(test_maxerror_boundary),
                T(test_json_object_over_4mb_fails),
                T(test_line_number_is_last_line_of_object),
                T(test_credentials_region_accepted),
                T(test_unknown_and_unsupported_options),
                T(test_column_list),
                T(test_concurrency_keeps_key_order),
#undef T
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        testload_loop_close();
        return r;
}
