/* sigv4_tool.c - test helper: signs requests described as JSON lines on stdin
 * with sigv4.c and prints one JSON line per request on stdout, so that
 * tests/integration/test_sigv4_botocore.py can compare with botocore.
 *
 * In:  {"method": "GET", "host": "h", "path": "/raw path", "params": [["k", "v"], ...],
 *       "headers": [["Name", "value"], ...], "payload": "<hex>|UNSIGNED-PAYLOAD"|null,
 *       "region": "us-west-2", "service": "s3", "now": 1700000000,
 *       "access_key": "...", "secret_key": "...", "token": "..."|null,
 *       "presign": 0 (or expiry seconds), "sign_content_sha256": false}
 * Out: {"authorization": ..., "path": ..., "query": ..., "headers": [[n, v], ...],
 *       "canonical_request": ..., "string_to_sign": ..., "signature": ...}
 *   or {"error": "...", "code": -22}
 * Test credentials only: this prints what it is given.
 *
 * Also the credentials chain, for the IMDS emulator test:
 *   sigv4_tool resolve [PROFILE] | imds [ENDPOINT] | region [PROFILE] | imds-region [ENDPOINT]
 * prints {"source", "access_key_id", "secret_sha256", "token_sha256", "expiration"}
 * (hashes, not secrets), {"region", "source"} or {"error", "code"}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "aws/creds.h"
#include "aws/sigv4.h"

static const char *str_or_null(json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

static json_t *sign_one(json_t *in)
{
        json_t *jp = json_object_get(in, "params");
        json_t *jh = json_object_get(in, "headers");
        size_t np = json_array_size(jp), nh = json_array_size(jh);
        struct sigv4_param *params = calloc(np + 1, sizeof(*params));
        struct sigv4_header *headers = calloc(nh + 1, sizeof(*headers));
        struct sigv4_creds creds = { 0 };
        struct sigv4_request req = { 0 };
        struct sigv4_signed s;
        json_int_t presign = json_integer_value(json_object_get(in, "presign"));
        char err[256] = "";
        json_t *out;
        int r;

        if (!params || !headers) {
                free(params);
                free(headers);
                return json_pack("{s:s}", "error", "out of memory");
        }
        for (size_t i = 0; i < np; i++) {
                params[i].name = json_string_value(json_array_get(json_array_get(jp, i), 0));
                params[i].value = json_string_value(json_array_get(json_array_get(jp, i), 1));
        }
        for (size_t i = 0; i < nh; i++) {
                headers[i].name = json_string_value(json_array_get(json_array_get(jh, i), 0));
                headers[i].value = json_string_value(json_array_get(json_array_get(jh, i), 1));
        }
        /* The creds strings are borrowed from the JSON: not cleared with sigv4_creds_clear. */
        creds.access_key_id = (char *)str_or_null(in, "access_key");
        creds.secret_access_key = (char *)str_or_null(in, "secret_key");
        creds.session_token = (char *)str_or_null(in, "token");
        req.method = str_or_null(in, "method");
        req.host = str_or_null(in, "host");
        req.path = str_or_null(in, "path");
        req.params = params;
        req.nparams = np;
        req.headers = headers;
        req.nheaders = nh;
        req.payload_sha256_hex = str_or_null(in, "payload");
        req.region = str_or_null(in, "region");
        req.service = str_or_null(in, "service");
        req.now = (time_t)json_integer_value(json_object_get(in, "now"));
        if (json_is_true(json_object_get(in, "sign_content_sha256")))
                req.flags |= SIGV4_SIGN_CONTENT_SHA256;
        if (json_is_true(json_object_get(in, "path_encoded")))
                req.flags |= SIGV4_PATH_ENCODED;

        if (presign > 0)
                r = sigv4_presign(&req, &creds, (unsigned)presign, &s, err, sizeof(err));
        else
                r = sigv4_sign(&req, &creds, &s, err, sizeof(err));
        if (r < 0) {
                out = json_pack("{s:s,s:i}", "error", err, "code", r);
        } else {
                json_t *hs = json_array();

                for (size_t i = 0; i < s.nheaders; i++)
                        json_array_append_new(hs, json_pack("[s,s]", s.headers[i].name,
                                                            s.headers[i].value));
                out = json_pack("{s:s?,s:s,s:s,s:o,s:s,s:s,s:s}", "authorization",
                                s.authorization, "path", s.path, "query", s.query, "headers", hs,
                                "canonical_request", s.canonical_request, "string_to_sign",
                                s.string_to_sign, "signature", s.signature);
        }
        sigv4_signed_clear(&s);
        free(params);
        free(headers);
        return out;
}

static int chain(int argc, char **argv)
{
        const char *cmd = argv[1];
        const char *arg = argc > 2 ? argv[2] : NULL;
        char source[1024] = "", err[1024] = "", region[128] = "";
        struct sigv4_creds c = { 0 };
        json_t *out;
        char *text;
        int r;

        curl_global_init(CURL_GLOBAL_DEFAULT);
        if (strcmp(cmd, "resolve") == 0)
                r = creds_resolve(arg, &c, source, sizeof(source), err, sizeof(err));
        else if (strcmp(cmd, "imds") == 0)
                r = creds_imds_fetch(arg, 0, &c, source, sizeof(source), err, sizeof(err));
        else if (strcmp(cmd, "region") == 0)
                r = creds_resolve_region(arg, region, sizeof(region), source, sizeof(source), err,
                                         sizeof(err));
        else if (strcmp(cmd, "imds-region") == 0)
                r = creds_imds_fetch_region(arg, 0, region, sizeof(region), err, sizeof(err));
        else {
                fprintf(stderr, "usage: sigv4_tool [resolve|imds|region|imds-region [ARG]]\n");
                return 2;
        }
        if (r < 0) {
                out = json_pack("{s:s,s:i}", "error", err, "code", r);
        } else if (region[0]) {
                out = json_pack("{s:s,s:s}", "region", region, "source", source);
        } else {
                char sk[65], tk[65] = "";

                sigv4_sha256_hex(c.secret_access_key, strlen(c.secret_access_key), sk);
                if (c.session_token)
                        sigv4_sha256_hex(c.session_token, strlen(c.session_token), tk);
                out = json_pack("{s:s,s:s,s:s,s:s?,s:I}", "source", source, "access_key_id",
                                c.access_key_id, "secret_sha256", sk, "token_sha256",
                                c.session_token ? tk : NULL, "expiration",
                                (json_int_t)c.expiration);
        }
        text = json_dumps(out, JSON_COMPACT);
        puts(text);
        free(text);
        json_decref(out);
        sigv4_creds_clear(&c);
        curl_global_cleanup();
        return r < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
        char *line = NULL;
        size_t cap = 0;

        if (argc > 1)
                return chain(argc, argv);

        while (getline(&line, &cap, stdin) > 0) {
                json_error_t jerr;
                json_t *in = json_loads(line, 0, &jerr);
                json_t *out;
                char *text;

                if (!in) {
                        fprintf(stderr, "sigv4_tool: bad JSON: %s\n", jerr.text);
                        free(line);
                        return 2;
                }
                out = sign_one(in);
                text = json_dumps(out, JSON_COMPACT);
                puts(text ? text : "{\"error\":\"out of memory\"}");
                fflush(stdout);
                free(text);
                json_decref(out);
                json_decref(in);
        }
        free(line);
        return 0;
}
