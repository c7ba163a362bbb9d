/* test_load.c - load_start() end to end: a temp folder laid out like the
 * Sparkify bucket, loaded into a temp SQLite warehouse on the test's loop
 * (testload.h runs it to its end). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testfs.h"
#include "testload.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "load/load.h"
#include "util.h"

struct fx {
        char dir[256];
        struct wh *wh;
        struct load_progress progress;
        bool cancel; /* load_cancel right after load_start */
        int n_errors;
        struct {
                char filename[512];
                uint64_t line;
                char colname[64];
                int code;
                char reason[256];
                char raw[1100];
                char field[256];
                uint64_t position;
        } last;
        bool cancel_on_error;
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
        f->n_errors++;
        snprintf(f->last.filename, sizeof(f->last.filename), "%s", e->filename);
        f->last.line = e->line_number;
        snprintf(f->last.colname, sizeof(f->last.colname), "%s", e->colname);
        f->last.code = e->err_code;
        snprintf(f->last.reason, sizeof(f->last.reason), "%s", e->err_reason);
        snprintf(f->last.raw, sizeof(f->last.raw), "%s", e->raw_line);
        snprintf(f->last.field, sizeof(f->last.field), "%s", e->raw_field_value);
        f->last.position = e->position;
        if (f->cancel_on_error)
                testload_cancel();
}

static const char *const ddl =
        "CREATE TABLE staging_events (artist VARCHAR(256), auth VARCHAR(32), "
        "firstName VARCHAR(256), gender VARCHAR(8), itemInSession INTEGER, "
        "lastName VARCHAR(256), length DOUBLE PRECISION, level VARCHAR(16), "
        "location VARCHAR(256), method VARCHAR(8), page VARCHAR(64), "
        "registration DOUBLE PRECISION, sessionId INTEGER, song VARCHAR(256), "
        "status INTEGER, ts TIMESTAMP, userAgent VARCHAR(512), userId VARCHAR(32));"
        "CREATE TABLE staging_songs (num_songs INTEGER, artist_id VARCHAR(32), "
        "artist_latitude DOUBLE PRECISION, artist_longitude DOUBLE PRECISION, "
        "artist_location VARCHAR(512), artist_name VARCHAR(512), song_id VARCHAR(32), "
        "title VARCHAR(512), duration DOUBLE PRECISION, year INTEGER);"
        "CREATE TABLE small (id INTEGER, name VARCHAR(5), Mixed VARCHAR(10));";

static const char *const log_json_path =
        "{\"jsonpaths\": [\"$['artist']\", \"$['auth']\", \"$['firstName']\", "
        "\"$['gender']\", \"$['itemInSession']\", \"$['lastName']\", \"$['length']\", "
        "\"$['level']\", \"$['location']\", \"$['method']\", \"$['page']\", "
        "\"$['registration']\", \"$['sessionId']\", \"$['song']\", \"$['status']\", "
        "\"$['ts']\", \"$['userAgent']\", \"$['userId']\"]}";

static const char *const event1 =
        "{\"artist\":\"Harmonia\",\"auth\":\"Logged In\",\"firstName\":\"Ryan\","
        "\"gender\":\"M\",\"itemInSession\":0,\"lastName\":\"Smith\",\"length\":655.77751,"
        "\"level\":\"free\",\"location\":\"San Jose-Sunnyvale-Santa Clara, CA\","
        "\"method\":\"PUT\",\"page\":\"NextSong\",\"registration\":1.541016707796e+12,"
        "\"sessionId\":583,\"song\":\"Sehr kosmisch\",\"status\":200,\"ts\":1542241826796,"
        "\"userAgent\":\"Mozilla\\/5.0\",\"userId\":\"26\"}";
static const char *const event2 =
        "{\"artist\":null,\"auth\":\"Logged Out\",\"firstName\":null,\"gender\":null,"
        "\"itemInSession\":3,\"lastName\":null,\"length\":null,\"level\":\"paid\","
        "\"location\":null,\"method\":\"GET\",\"page\":\"Home\",\"registration\":null,"
        "\"sessionId\":3,\"song\":null,\"status\":200,\"ts\":1541105830000,"
        "\"userAgent\":null,\"userId\":\"\"}";

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));
        if (!f)
                return -1;
        snprintf(f->dir, sizeof(f->dir), "/tmp/test_load.XXXXXX");
        if (!mkdtemp(f->dir))
                return -1;
        char uri[400], err[256];
        snprintf(uri, sizeof(uri), "sqlite://%s/wh.db", f->dir);
        if (testload_wh_open(uri, &f->wh, err, sizeof(err)) < 0) {
                fprintf(stderr, "wh_open: %s\n", err);
                return -1;
        }
        if (testload_exec(f->wh, ddl, err, sizeof(err)) < 0) {
                fprintf(stderr, "ddl: %s\n", err);
                return -1;
        }
        put(f, "bucket/log_json_path.json", log_json_path);
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

/* Runs one COPY; "%D" in the statement is the temp folder. */
static int run(struct fx *f, const char *stmt, char *err, size_t errlen)
{
        char sql[2048];
        const char *d = strstr(stmt, "%D");
        size_t n = 0;
        const char *s = stmt;
        while (d) {
                n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%.*s%s", (int)(d - s), s, f->dir);
                s = d + 2;
                d = strstr(s, "%D");
        }
        snprintf(sql + n, sizeof(sql) - n, "%s", s);
        struct load_request req = {
                .statement = sql,
                .wh = f->wh,
                .progress = &f->progress,
                .batch_rows = 2,
                .on_error = on_error,
                .userdata = f,
        };
        err[0] = '\0';
        return testload_run(&req, f->cancel, err, errlen);
}

static json_t *query(struct fx *f, const char *sql)
{
        json_t *rows = NULL;
        char err[256];
        if (testload_query(f->wh, sql, &rows, err, sizeof(err)) < 0)
                fail_msg("query %s: %s", sql, err);
        return rows;
}

static void expect_ok(struct fx *f, const char *stmt)
{
        char err[512];
        int r = run(f, stmt, err, sizeof(err));
        if (r != 0)
                fail_msg("load: %d %s", r, err);
}

static void expect_fail(struct fx *f, const char *stmt, int code, const char *want)
{
        char err[512];
        int r = run(f, stmt, err, sizeof(err));
        if (r != code)
                fail_msg("load gave %d (%s), want %d", r, err, code);
        if (!strstr(err, want))
                fail_msg("error '%s' lacks '%s'", err, want);
}

static int64_t count(struct fx *f, const char *table)
{
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
        json_t *rows = query(f, sql);
        int64_t n = json_integer_value(json_array_get(json_array_get(rows, 0), 0));
        json_decref(rows);
        return n;
}

static void test_events_jsonpaths_epochmillis(void **state)
{
        struct fx *f = *state;
        char text[4096];
        snprintf(text, sizeof(text), "%s\n%s\n", event1, event2);
        put(f, "bucket/log_data/2018/11/2018-11-12-events.json", text);
        put(f, "bucket/log_data/2018/11/2018-11-13-events.json", event1);
        expect_ok(f, "COPY staging_events FROM 'file://%D/bucket/log_data'\n"
                     "  IAM_ROLE 'arn:aws:iam::1:role/r' REGION 'us-west-2'\n"
                     "  FORMAT AS JSON 'file://%D/bucket/log_json_path.json'\n"
                     "  TIMEFORMAT AS 'epochmillisecs' COMPUPDATE OFF STATUPDATE OFF;");
        assert_int_equal(count(f, "staging_events"), 3);
        assert_int_equal(atomic_load(&f->progress.rows), 3);
        assert_int_equal(atomic_load(&f->progress.objects), 2);
        assert_int_equal(atomic_load(&f->progress.errors), 0);
        assert_true(atomic_load(&f->progress.bytes) > 0);
        json_t *rows = query(f, "SELECT artist, firstName, itemInSession, length, "
                                "registration, ts, userId, typeof(ts), typeof(length) "
                                "FROM staging_events ORDER BY rowid");
        json_t *r0 = json_array_get(rows, 0);
        assert_string_equal(json_string_value(json_array_get(r0, 0)), "Harmonia");
        assert_string_equal(json_string_value(json_array_get(r0, 1)), "Ryan");
        assert_int_equal(json_integer_value(json_array_get(r0, 2)), 0);
        assert_true(json_real_value(json_array_get(r0, 3)) == 655.77751);
        assert_true(json_real_value(json_array_get(r0, 4)) == 1.541016707796e+12);
        assert_string_equal(json_string_value(json_array_get(r0, 5)), "2018-11-15 00:30:26.796");
        assert_string_equal(json_string_value(json_array_get(r0, 6)), "26");
        assert_string_equal(json_string_value(json_array_get(r0, 7)), "text");
        assert_string_equal(json_string_value(json_array_get(r0, 8)), "real");
        json_t *r1 = json_array_get(rows, 1);
        assert_true(json_is_null(json_array_get(r1, 0)));
        assert_string_equal(json_string_value(json_array_get(r1, 5)), "2018-11-01 20:57:10");
        assert_string_equal(json_string_value(json_array_get(r1, 6)), "");
        json_decref(rows);
}

static void test_songs_auto(void **state)
{
        struct fx *f = *state;
        put(f, "bucket/song_data/A/A/A/TRAAAAW128F429D538.json",
            "{\"num_songs\": 1, \"artist_id\": \"ARD7TVE1187B99BFB1\", \"artist_latitude\": null, "
            "\"artist_longitude\": null, \"artist_location\": \"California - LA\", "
            "\"artist_name\": \"Casual\", \"song_id\": \"SOMZWCG12A8C13C480\", "
            "\"title\": \"I Didn't Mean To\", \"duration\": 218.93179, \"year\": 0}");
        put(f, "bucket/song_data/A/A/B/TRAABCL128F4286650.json",
            "{\"num_songs\": 1, \"Artist_Id\": \"CASE\", \"title\": \"T2\", \"year\": 1995}");
        expect_ok(f, "COPY staging_songs FROM 'file://%D/bucket/song_data' "
                     "IAM_ROLE 'x' FORMAT AS JSON 'auto'");
        json_t *rows = query(f, "SELECT artist_id, title, duration, year, artist_latitude "
                                "FROM staging_songs ORDER BY title");
        assert_int_equal(json_array_size(rows), 2);
        json_t *r0 = json_array_get(rows, 0);
        assert_string_equal(json_string_value(json_array_get(r0, 0)), "ARD7TVE1187B99BFB1");
        assert_string_equal(json_string_value(json_array_get(r0, 1)), "I Didn't Mean To");
        assert_true(json_real_value(json_array_get(r0, 2)) == 218.93179);
        assert_int_equal(json_integer_value(json_array_get(r0, 3)), 0);
        assert_true(json_is_null(json_array_get(r0, 4)));
        /* 'auto' is case-sensitive: Artist_Id does not match artist_id */
        assert_true(json_is_null(json_array_get(json_array_get(rows, 1), 0)));
        json_decref(rows);

        testload_exec(f->wh, "DELETE FROM staging_songs", NULL, 0);
        expect_ok(f, "COPY staging_songs FROM 'file://%D/bucket/song_data' "
                     "FORMAT AS JSON 'auto ignorecase'");
        rows = query(f, "SELECT artist_id FROM staging_songs WHERE title = 'T2'");
        assert_string_equal(json_string_value(json_array_get(json_array_get(rows, 0), 0)),
                            "CASE");
        json_decref(rows);
}

static void test_column_names_fold_and_column_list(void **state)
{
        struct fx *f = *state;
        /* the DDL says Mixed; Redshift folds it to mixed */
        put(f, "in/a.json", "{\"id\": 1, \"name\": \"ab\", \"Mixed\": \"M\", \"mixed\": \"m\"}\n"
                            "{\"id\": \"2\", \"name\": \"\"}\n");
        expect_ok(f, "COPY small FROM 'file://%D/in/' JSON 'auto' EMPTYASNULL");
        json_t *rows = query(f, "SELECT id, name, Mixed FROM small ORDER BY id");
        assert_string_equal(json_string_value(json_array_get(json_array_get(rows, 0), 2)), "m");
        assert_int_equal(json_integer_value(json_array_get(json_array_get(rows, 1), 0)), 2);
        assert_true(json_is_null(json_array_get(json_array_get(rows, 1), 1)));
        json_decref(rows);

        testload_exec(f->wh, "DELETE FROM small", NULL, 0);
        expect_ok(f, "COPY small (name, id) FROM 'file://%D/in/a' JSON 'auto'");
        rows = query(f, "SELECT id, name, Mixed FROM small ORDER BY id");
        assert_true(json_is_null(json_array_get(json_array_get(rows, 0), 2)));
        assert_string_equal(json_string_value(json_array_get(json_array_get(rows, 1), 1)), "");
        json_decref(rows);
        expect_fail(f, "COPY small (nope) FROM 'file://%D/in/a' JSON 'auto'", -EINVAL,
                    "column 'nope' of table 'small' does not exist");
}

static void test_maxerror_and_on_error(void **state)
{
        struct fx *f = *state;
        put(f, "in/bad.json", "{\"id\": 1, \"name\": \"ok\"}\n"
                              "{\"id\": \"x1\", \"name\": \"bad\"}\n"
                              "{\"id\": 3, \"name\": \"toolong\"}\n"
                              "{\"id\": 4,, }\n"
                              "[1, 2]\n"
                              "{\"id\": 6, \"name\": \"fine\"}");
        /* MAXERROR 0: the first reject fails the COPY, naming object, line, column */
        expect_fail(f, "COPY small FROM 'file://%D/in/bad.json' JSON 'auto'", -EINVAL,
                    "bad.json' line 2, column 'id' (INTEGER): Invalid digit, Value 'x', "
                    "Pos 0, Type: Integer [error 1207]");
        assert_int_equal(f->n_errors, 1);
        assert_int_equal(f->last.line, 2);
        assert_int_equal(f->last.code, 1207);
        assert_string_equal(f->last.colname, "id");
        assert_string_equal(f->last.field, "x1");
        assert_string_equal(f->last.raw, "{\"id\": \"x1\", \"name\": \"bad\"}");
        assert_int_equal(f->last.position, 24);
        assert_non_null(strstr(f->last.filename, "/in/bad.json"));

        /* MAXERROR 5: four rejects (fewer than 5) and the good rows load */
        f->n_errors = 0;
        testload_exec(f->wh, "DELETE FROM small", NULL, 0);
        expect_ok(f, "COPY small FROM 'file://%D/in/bad.json' JSON 'auto' MAXERROR 5");
        assert_int_equal(f->n_errors, 4);
        assert_int_equal(count(f, "small"), 2);
        assert_int_equal(f->last.line, 5);
        assert_int_equal(f->last.code, 1216);

        /* MAXERROR 4: the fourth reject reaches it */
        f->n_errors = 0;
        testload_exec(f->wh, "DELETE FROM small", NULL, 0);
        expect_fail(f, "COPY small FROM 'file://%D/in/bad.json' JSON 'auto' MAXERROR 4",
                    -EINVAL, "line 5: Invalid JSON record: not an object [error 1216]");

        /* TRUNCATECOLUMNS turns the long name into a row */
        f->n_errors = 0;
        testload_exec(f->wh, "DELETE FROM small", NULL, 0);
        expect_ok(f, "COPY small FROM 'file://%D/in/bad.json' JSON 'auto' MAXERROR 10 "
                     "TRUNCATECOLUMNS");
        assert_int_equal(f->n_errors, 3);
        json_t *rows = query(f, "SELECT name FROM small WHERE id = 3");
        assert_string_equal(json_string_value(json_array_get(json_array_get(rows, 0), 0)),
                            "toolo");
        json_decref(rows);
}

/* A load error never shows more than the record it rejects: an object that
 * does not start with a JSON object or array fails the COPY naming the
 * object and the byte, and text further on that is no record is a reject
 * without a raw line.  Whatever file a source points at, its bytes stay
 * out of errors. */
static void test_not_json_never_shown(void **state)
{
        struct fx *f = *state;
        put(f, "secret/shadow", "root:$6$SECRETHASH:19000:0:99999:7:::\nmore SECRET\n");
        char err[512];
        int r = run(f, "COPY small FROM 'file://%D/secret/' JSON 'auto' MAXERROR 100", err,
                    sizeof(err));
        assert_int_equal(r, -EINVAL);
        assert_non_null(strstr(err, "secret/shadow' is not JSON: the text at byte 0 (line 1)"));
        assert_null(strstr(err, "SECRET"));
        assert_null(strstr(err, "root"));
        assert_int_equal(f->n_errors, 0);

        /* a bare value first is no record either */
        put(f, "pin/a", "  123456\n");
        r = run(f, "COPY small FROM 'file://%D/pin/' JSON 'auto' MAXERROR 100", err, sizeof(err));
        assert_int_equal(r, -EINVAL);
        assert_non_null(strstr(err, "at byte 2 (line 1)"));
        assert_null(strstr(err, "123456"));

        /* after a record: a reject, counted, with no raw line or value */
        f->n_errors = 0;
        put(f, "mixed/a.json",
            "{\"id\": 1}\nSECRET line\n\"SECRET string\"\n{\"id\": 2}\n"
            "{\"id\": 3,\nSECRET}\nSECRET after\n{\"id\": 4}\n");
        expect_ok(f, "COPY small FROM 'file://%D/mixed/' JSON 'auto' MAXERROR 3");
        /* lines 2-3 are one stretch that is no record (splitting resumes at
         * the next line starting with '{' or '['); lines 5-7 a bad record */
        assert_int_equal(f->n_errors, 2);
        assert_int_equal(count(f, "small"), 3);
        /* the last reject is the bad record of lines 5-6: up to its error's line */
        assert_string_equal(f->last.raw, "{\"id\": 3,\nSECRET}");
        assert_int_equal(f->last.line, 6); /* the error's line, as for every bad record */

        f->n_errors = 0;
        put(f, "tail/a.json", "{\"id\": 5}\nSECRET tail\n");
        expect_ok(f, "COPY small FROM 'file://%D/tail/' JSON 'auto' MAXERROR 2");
        assert_int_equal(f->n_errors, 1);
        assert_string_equal(f->last.raw, "");
        assert_string_equal(f->last.field, "");
        assert_int_equal(f->last.code, 1216);
        assert_int_equal(f->last.position, 10);
}

static void test_gzip_and_acceptinvchars(void **state)
{
        struct fx *f = *state;
        const char *text = "{\"id\": 1, \"name\": \"a\"}\n{\"id\": 2, \"name\": \"b\"}\n";
        unsigned char out[512];
        z_stream z;
        memset(&z, 0, sizeof(z));
        assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
                         Z_OK);
        z.next_in = (Bytef *)text;
        z.avail_in = (uInt)strlen(text);
        z.next_out = out;
        z.avail_out = sizeof(out);
        assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
        size_t n = sizeof(out) - z.avail_out;
        deflateEnd(&z);
        put_bytes(f, "gz/part-0.json.gz", out, n);
        expect_ok(f, "COPY small FROM 'file://%D/gz/part' JSON 'auto' GZIP");
        assert_int_equal(count(f, "small"), 2);
        expect_fail(f, "COPY small FROM 'file://%D/in/nothing' JSON 'auto' GZIP", -EINVAL,
                    "no objects found under 'file://");
        put(f, "plain/a.json", "{\"id\": 1}");
        expect_fail(f, "COPY small FROM 'file://%D/plain/' JSON 'auto' GZIP", -EINVAL,
                    "is not valid gzip");

        put(f, "inv/a.json", "{\"id\": 7, \"name\": \"x\xff\"}");
        expect_fail(f, "COPY small FROM 'file://%D/inv/' JSON 'auto'", -EINVAL, "[error 1220]");
        expect_ok(f, "COPY small FROM 'file://%D/inv/' JSON 'auto' ACCEPTINVCHARS AS '^'");
        json_t *rows = query(f, "SELECT name FROM small WHERE id = 7");
        assert_string_equal(json_string_value(json_array_get(json_array_get(rows, 0), 0)),
                            "x^");
        json_decref(rows);
}

static void test_cancel(void **state)
{
        struct fx *f = *state;
        char text[8192] = "";
        size_t used = 0;
        for (int i = 0; i < 100; i++)
                used += (size_t)snprintf(text + used, sizeof(text) - used, "{\"id\": %d}\n", i);
        put(f, "many/a.json", text);
        f->cancel = true;
        expect_fail(f, "COPY small FROM 'file://%D/many/' JSON 'auto'", -ECANCELED, "cancelled");
        assert_int_equal(atomic_load(&f->progress.rows), 0);

        /* cancelled in the middle: stops within one batch (batch_rows = 2) */
        f->cancel = false;
        put(f, "many/b.json", "{\"id\": \"bad\"}");
        f->cancel_on_error = true;
        /* b.json sorts after a.json; cancel is set by the reject in b, then
         * checked at the next object or batch */
        put(f, "many/c.json", text);
        expect_fail(f, "COPY small FROM 'file://%D/many/' JSON 'auto' MAXERROR 5", -ECANCELED,
                    "cancelled");
        uint64_t rows = atomic_load(&f->progress.rows);
        assert_true(rows >= 100 && rows <= 102);
}

static void test_errors(void **state)
{
        struct fx *f = *state;
        put(f, "in/a.json", "{\"id\": 1}");
        expect_fail(f, "COPY small FROM 'file://%D/in/' JSON 'auto' MANIFEST", -EISDIR,
                    "cannot read the manifest");
        expect_fail(f, "COPY small FROM 'file://%D/in/' JSON 'auto' TIMEFORMAT 'YYYY QQ'",
                    -EINVAL, "is not a datepart or timepart");
        expect_fail(f, "COPY small FROM 'file://%D/in/' IAM_ROLE 'r'", -ENOTSUP,
                    "COPY option FORMAT (pipe-delimited text) is not supported yet");
        /* s3:// without etld's S3 client (source_ctx): refused, naming the URI */
        expect_fail(f, "COPY small FROM 's3://bucket/in/' JSON 'auto'", -EPROTONOSUPPORT,
                    "s3://bucket/in/");
        expect_fail(f, "COPY small FROM 'file://%D/in/' JSON 'auto' BOGUS", -EINVAL,
                    "unexpected 'BOGUS' at position");
        expect_fail(f, "COPY nosuch FROM 'file://%D/in/' JSON 'auto'", -ENOENT,
                    "table 'nosuch' does not exist");
        expect_fail(f, "COPY small FROM 'file://%D/in/zzz' JSON 'auto'", -EINVAL,
                    "no objects found under");
        expect_fail(f, "COPY small FROM 'file://%D/in/' JSON 'file://%D/bucket/log_json_path.json'",
                    -EINVAL, "has 18 paths, the table has 3 columns");
        expect_fail(f, "COPY small FROM 'file://%D/in/' JSON 'file://%D/none.json'", -ENOENT,
                    "cannot read the JSONPaths file");
        put(f, "paths_bad.json", "{\"jsonpaths\": [\"$.id\", \"$.a[*]\", \"$.b\"]}");
        expect_fail(f, "COPY small FROM 'file://%D/in/' JSON 'file://%D/paths_bad.json'",
                    -EINVAL, "invalid path \"$.a[*]\"");
        put(f, "trunc/a.json", "{\"id\": 1}\n{\"id\": 2, \"name\": \"x");
        expect_fail(f, "COPY small FROM 'file://%D/trunc/' JSON 'auto'", -EINVAL,
                    "trunc/a.json' line 2: truncated JSON record");
        put(f, "unreadable/a.json", "{\"id\": 1}");
        char path[600];
        snprintf(path, sizeof(path), "%s/unreadable/a.json", f->dir);
        chmod(path, 0);
        if (access(path, R_OK) != 0) /* root reads anything */
                expect_fail(f, "COPY small FROM 'file://%D/unreadable/' JSON 'auto'", -EACCES,
                            "unreadable/a.json");
        /* only the truncated object's first record went in: a load never
         * rolls back, the caller's transaction does */
        assert_int_equal(count(f, "small"), 1);
}

/* Cancels the running load once the counter it watches passes a mark. */
struct canceller {
        uv_timer_t t;
        const _Atomic uint64_t *counter;
        uint64_t mark;
        bool fired;
};

static void canceller_tick(uv_timer_t *t)
{
        struct canceller *c = t->data;
        if (!c->fired && atomic_load(c->counter) >= c->mark) {
                c->fired = true;
                testload_cancel();
        }
}

static void canceller_closed(uv_handle_t *h)
{
        (void)h;
}

/* load_cancel in the middle of reading, parsing and inserting many objects:
 * done comes with -ECANCELED, every row the warehouse took is counted, the
 * connection is usable at once (the insert was ended), and nothing leaks
 * (valgrind: meson test --wrap=valgrind test_load). */
static void test_cancel_mid_load(void **state)
{
        struct fx *f = *state;
        char terr[256];
        assert_int_equal(testload_begin(f->wh, terr, sizeof(terr)), 0);
        const int objects = 12, per = 6000;
        for (int o = 0; o < objects; o++) {
                struct buf b = { 0 };
                for (int i = 0; i < per; i++)
                        buf_printf(&b, "{\"id\": %d, \"name\": \"n%d\"}\n", o * per + i, i % 7);
                char rel[64];
                snprintf(rel, sizeof(rel), "mid/%02d.json", o);
                put_bytes(f, rel, b.data, b.len);
                buf_free(&b);
        }
        char sql[600];
        snprintf(sql, sizeof(sql), "COPY small FROM 'file://%s/mid/' JSON 'auto'", f->dir);
        struct {
                size_t field;
                uint64_t mark;
        } when[] = {
                { offsetof(struct load_progress, bytes), 1 },        /* reading */
                { offsetof(struct load_progress, rows), 1 },         /* inserting */
                { offsetof(struct load_progress, rows), per * 3 },   /* a few objects in */
                { offsetof(struct load_progress, objects), 5 },      /* between objects */
        };
        for (size_t k = 0; k < sizeof(when) / sizeof(when[0]); k++) {
                char err[512];
                assert_int_equal(testload_exec(f->wh, "DELETE FROM small", err, sizeof(err)), 0);
                memset(&f->progress, 0, sizeof(f->progress));
                struct canceller c = {
                        .counter = (const _Atomic uint64_t *)((const char *)&f->progress +
                                                               when[k].field),
                        .mark = when[k].mark,
                };
                uv_timer_init(testload_loop(), &c.t);
                c.t.data = &c;
                uv_timer_start(&c.t, canceller_tick, 0, 1);
                struct load_request req = {
                        .statement = sql,
                        .wh = f->wh,
                        .progress = &f->progress,
                        .concurrency = 4,
                        .batch_rows = 64,
                        .userdata = f,
                };
                int r = testload_run(&req, false, err, sizeof(err));
                uv_close((uv_handle_t *)&c.t, canceller_closed);
                assert_true(c.fired);
                if (r != -ECANCELED)
                        fail_msg("cancel at mark %zu: %d %s", k, r, err);
                assert_non_null(strstr(err, "COPY small: cancelled"));
                uint64_t rows = atomic_load(&f->progress.rows);
                assert_true(rows < (uint64_t)(objects * per));
                assert_int_equal(count(f, "small"), (int64_t)rows);
        }
        assert_int_equal(testload_commit(f->wh, terr, sizeof(terr)), 0);
}

/* gzip of text in members cut at the given byte offsets of text. */
static unsigned char *gzip_members(const char *text, size_t len, const size_t *cuts, size_t ncuts,
                                   size_t *outlen)
{
        size_t cap = len + 1024 * (ncuts + 2), used = 0;
        unsigned char *out = malloc(cap);
        assert_non_null(out);
        size_t from = 0;
        for (size_t i = 0; i <= ncuts; i++) {
                size_t to = i < ncuts ? cuts[i] : len;
                z_stream z;
                memset(&z, 0, sizeof(z));
                assert_int_equal(deflateInit2(&z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8,
                                              Z_DEFAULT_STRATEGY),
                                 Z_OK);
                z.next_in = (Bytef *)text + from;
                z.avail_in = (uInt)(to - from);
                z.next_out = out + used;
                z.avail_out = (uInt)(cap - used);
                assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
                used = cap - z.avail_out;
                deflateEnd(&z);
                from = to;
        }
        *outlen = used;
        return out;
}

/* Objects far larger than a read chunk, plain and gzip (several members cut
 * inside records): every row, and rejects with exact lines and byte
 * positions deep in the object. */
static void test_streaming_large_objects(void **state)
{
        struct fx *f = *state;
        char terr[256];
        assert_int_equal(testload_begin(f->wh, terr, sizeof(terr)), 0); /* one fsync */
        struct buf b = { 0 };
        const int rows = 120000; /* ~3.5 MB: many 256 KiB chunks */
        uint64_t bad_line[2] = { 0 }, bad_pos[2] = { 0 };
        for (int i = 1; i <= rows; i++) {
                if (i == 70001 || i == 110003) {
                        int k = i == 70001 ? 0 : 1;
                        bad_line[k] = (uint64_t)i;
                        bad_pos[k] = b.len;
                        buf_printf(&b, "{\"id\": \"not a number %d\", \"name\": \"x\"}\n", i);
                        continue;
                }
                buf_printf(&b, "{\"id\": %d, \"name\": \"n%d\"}\n", i, i % 10);
        }
        put_bytes(f, "big/a.json", b.data, b.len);
        expect_ok(f, "COPY small FROM 'file://%D/big/' JSON 'auto' MAXERROR 3");
        assert_int_equal(count(f, "small"), rows - 2);
        assert_int_equal(f->n_errors, 2);
        assert_int_equal(f->last.line, bad_line[1]);
        assert_int_equal(f->last.position, bad_pos[1]);
        assert_string_equal(f->last.colname, "id");
        assert_non_null(strstr(f->last.raw, "not a number 110003"));
        char want[600];
        snprintf(want, sizeof(want), "file://%s/big/a.json", f->dir);
        assert_string_equal(f->last.filename, want);
        /* MAXERROR 2: the COPY fails at the second, naming object and line */
        char msg[700];
        snprintf(msg, sizeof(msg), "big/a.json' line %" PRIu64 ", column 'id'", bad_line[1]);
        expect_fail(f, "COPY small FROM 'file://%D/big/' JSON 'auto' MAXERROR 2", -EINVAL, msg);

        size_t cuts[] = { 1, 262144 + 17, 1000003, b.len - 5 };
        size_t gzlen;
        unsigned char *gz = gzip_members(b.data, b.len, cuts, 4, &gzlen);
        put_bytes(f, "bigz/a.json.gz", gz, gzlen);
        f->n_errors = 0;
        int64_t before = count(f, "small");
        expect_ok(f, "COPY small FROM 'file://%D/bigz/' JSON 'auto' GZIP MAXERROR 3");
        assert_int_equal(count(f, "small") - before, rows - 2);
        assert_int_equal(f->n_errors, 2);
        assert_int_equal(f->last.line, bad_line[1]);
        assert_int_equal(f->last.position, bad_pos[1]); /* of the text, not of the gzip */

        /* cut short: a truncated gzip stream; garbage after it: not gzip */
        put_bytes(f, "bigz_cut/a.json.gz", gz, gzlen - 100);
        expect_fail(f, "COPY small FROM 'file://%D/bigz_cut/' JSON 'auto' GZIP MAXERROR 3",
                    -EINVAL, "bigz_cut/a.json.gz' is a truncated gzip stream");
        unsigned char *junk = malloc(gzlen + 4);
        assert_non_null(junk);
        memcpy(junk, gz, gzlen);
        memcpy(junk + gzlen, "junk", 4);
        put_bytes(f, "bigz_junk/a.json.gz", junk, gzlen + 4);
        expect_fail(f, "COPY small FROM 'file://%D/bigz_junk/' JSON 'auto' GZIP MAXERROR 3",
                    -EINVAL, "is not valid gzip (GZIP given)");
        /* an empty object and an empty gzip member are no records */
        put_bytes(f, "emptyz/a.json.gz", "", 0);
        size_t elen;
        unsigned char *egz = gzip_members("", 0, NULL, 0, &elen);
        put_bytes(f, "emptyz/b.json.gz", egz, elen);
        put_bytes(f, "emptyz/c.json.gz", gz, gzlen);
        before = count(f, "small");
        expect_ok(f, "COPY small FROM 'file://%D/emptyz/' JSON 'auto' GZIP MAXERROR 3");
        assert_int_equal(count(f, "small") - before, rows - 2);
        free(egz);
        free(junk);
        free(gz);
        buf_free(&b);
        assert_int_equal(testload_commit(f->wh, terr, sizeof(terr)), 0);
}

/* Redshift, COPY from JSON: "The maximum size of a JSON object in Amazon
 * Redshift is 4 MB, which applies before any shredding or parsing."  A larger
 * record is a reject naming the object and line, read no further. */
static void test_record_larger_than_4mb(void **state)
{
        struct fx *f = *state;
        char terr[256];
        assert_int_equal(testload_begin(f->wh, terr, sizeof(terr)), 0); /* one fsync */
        struct buf b = { 0 };
        buf_printf(&b, "{\"id\": 1}\n{\"id\": 2, \"name\": \"");
        size_t big = (4u << 20) + 10;
        char *fill = malloc(big);
        assert_non_null(fill);
        memset(fill, 'y', big);
        buf_append(&b, fill, big);
        free(fill);
        buf_printf(&b, "\"}\n{\"id\": 3}\n");
        put_bytes(f, "huge/a.json", b.data, b.len);
        /* "COPY from JSON format": over 4 MB fails the COPY, whatever MAXERROR */
        expect_fail(f, "COPY small FROM 'file://%D/huge/' JSON 'auto'", -EINVAL,
                    "the JSON object at 'file://");
        f->n_errors = 0;
        expect_fail(f, "COPY small FROM 'file://%D/huge/' JSON 'auto' MAXERROR 10", -EINVAL,
                    "huge/a.json' line 2 is larger than the 4194304-byte maximum");
        assert_int_equal(f->n_errors, 0);
        /* the object failed whole: none of its rows reached the table */
        assert_int_equal(count(f, "small"), 0);
        buf_free(&b);
        assert_int_equal(testload_commit(f->wh, terr, sizeof(terr)), 0);
}

/* Rows in key order, the same rejects, with 1, 8 and 32 objects in flight. */
static void test_same_with_1_8_and_32_in_flight(void **state)
{
        struct fx *f = *state;
        char terr[256];
        assert_int_equal(testload_begin(f->wh, terr, sizeof(terr)), 0); /* one fsync */
        for (int o = 0; o < 12; o++) {
                struct buf b = { 0 };
                int n = 2000 + o * 997;
                for (int i = 0; i < n; i++) {
                        if (i % 1999 == 7)
                                buf_printf(&b, "{\"id\": %d, \"name\": tru}\n", i);
                        else
                                buf_printf(&b, "{\"id\": %d, \"name\": \"o%d\"}%s", o * 100000 + i,
                                           o, i % 3 ? "\n" : " ");
                }
                char rel[64];
                snprintf(rel, sizeof(rel), "par/%02d.json", o);
                put_bytes(f, rel, b.data, b.len);
                buf_free(&b);
        }
        json_t *res[3];
        int errs[3];
        uint64_t lastline[3], lastpos[3];
        unsigned conc[3] = { 1, 8, 32 };
        for (int k = 0; k < 3; k++) {
                char err[512];
                char sql[600];
                assert_int_equal(testload_exec(f->wh, "DELETE FROM small", err, sizeof(err)), 0);
                snprintf(sql, sizeof(sql),
                         "COPY small FROM 'file://%s/par/' JSON 'auto' MAXERROR 100", f->dir);
                f->n_errors = 0;
                struct load_request req = {
                        .statement = sql,
                        .wh = f->wh,
                        .progress = &f->progress,
                        .concurrency = conc[k],
                        .on_error = on_error,
                        .userdata = f,
                };
                int r = testload_run(&req, false, err, sizeof(err));
                if (r != 0)
                        fail_msg("load (%u in flight): %s", conc[k], err);
                res[k] = query(f, "SELECT id, name FROM small ORDER BY rowid");
                errs[k] = f->n_errors;
                lastline[k] = f->last.line;
                lastpos[k] = f->last.position;
        }
        assert_true(json_array_size(res[0]) > 30000);
        assert_true(errs[0] > 12);
        for (int k = 1; k < 3; k++) {
                assert_true(json_equal(res[0], res[k]));
                assert_int_equal(errs[0], errs[k]);
                assert_int_equal(lastline[0], lastline[k]);
                assert_int_equal(lastpos[0], lastpos[k]);
        }
        for (int k = 0; k < 3; k++)
                json_decref(res[k]);
        assert_int_equal(testload_commit(f->wh, terr, sizeof(terr)), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_events_jsonpaths_epochmillis, setup, teardown),
            cmocka_unit_test_setup_teardown(test_songs_auto, setup, teardown),
            cmocka_unit_test_setup_teardown(test_column_names_fold_and_column_list, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_maxerror_and_on_error, setup, teardown),
            cmocka_unit_test_setup_teardown(test_gzip_and_acceptinvchars, setup, teardown),
            cmocka_unit_test_setup_teardown(test_not_json_never_shown, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cancel_mid_load, setup, teardown),
            cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
            cmocka_unit_test_setup_teardown(test_streaming_large_objects, setup, teardown),
            cmocka_unit_test_setup_teardown(test_record_larger_than_4mb, setup, teardown),
            cmocka_unit_test_setup_teardown(test_same_with_1_8_and_32_in_flight, setup, teardown),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        testload_loop_close();
        return r;
}
