/* s3.c - the S3 client on the HTTP engine.
 *
 * One `struct s3_req` per operation: it describes the request once (method,
 * bucket, key, query parameters, fixed headers, body) and then makes tries:
 * each try works out the bucket's region and address, signs with SigV4, and
 * submits an http_xfer; the transfer's completion either finishes the
 * operation, retries it after a backoff (its own uv_timer), follows a region
 * redirect, or moves on (the next DeleteObjects batch).  The request's memory
 * is released in the timer's close callback, after done() has run.
 *
 * Also here: the pure helpers (addressing, S3 reply XML, request bodies). */
#include "aws/s3.h"
#include "aws/request.h"

#include <errno.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_PARAMS 6
#define MAX_HDRS 6
#define REGION_CACHE 32

enum s3_op {
        OP_LIST,
        OP_HEAD,
        OP_GET,
        OP_PUT,
        OP_COPY,
        OP_CREATE_BUCKET,
        OP_HEAD_BUCKET,
        OP_DELETE_OBJECTS,
        OP_DELETE_BUCKET,
};

static const char *const op_names[] = {
    [OP_LIST] = "ListObjectsV2",
    [OP_HEAD] = "HeadObject",
    [OP_GET] = "GetObject",
    [OP_PUT] = "PutObject",
    [OP_COPY] = "CopyObject",
    [OP_CREATE_BUCKET] = "CreateBucket",
    [OP_HEAD_BUCKET] = "HeadBucket",
    [OP_DELETE_OBJECTS] = "DeleteObjects",
    [OP_DELETE_BUCKET] = "DeleteBucket",
};

struct region_entry {
        char bucket[64];
        char region[64];
};

struct s3_client {
        struct aws_request_client rc;
        uv_loop_t *loop; /* for s3_stream */
        char *region;
        char *endpoint;
        struct s3_target ep; /* the endpoint's base and host, parsed once (base NULL: not) */
        bool path_style;
        struct region_entry regions[REGION_CACHE];
        unsigned region_next;
};

struct s3_req {
        struct aws_request rq;
        struct s3_client *c;
        enum s3_op op;
        struct s3_cb cb;
        char *bucket, *key;
        const char *method;
        struct sigv4_param params[MAX_PARAMS];
        size_t nparams;
        struct sigv4_header hdrs[MAX_HDRS];
        size_t nhdrs;
        char *owned[2 * (MAX_PARAMS + MAX_HDRS)];
        size_t nowned;

        const void *body;
        size_t body_len;
        char *owned_body;
        char payload_hash[65];
        struct s3_put_opts put;
        uint64_t put_off;

        struct s3_get_opts get;
        uint64_t delivered;
        char first_etag[128];
        bool got_first;

        char **keys;
        size_t nkeys, batch_start, batch_n;
        bool batch_ready;   /* the body of keys[batch_start ...] is built */
        char batch_md5[32]; /* its Content-MD5 */

        /* what the current try signs (request.h: borrowed until the next) */
        struct s3_target target;
        bool target_borrowed; /* base and host are the client's (c->ep) */
        struct sigv4_header try_hdrs[MAX_HDRS + 2];
        char range[64];
        char region[64];
        bool fixed_region;
        unsigned redirects;
        struct s3_result res;
        bool verifying;        /* CreateBucket: HeadBucket after BucketAlreadyExists */
        char verify_msg[1024]; /* ... and the CreateBucket error to report if not ours */
        struct aws_error verify_aws;
        long verify_status;
};

/* ---- small helpers ---- */

static struct s3_req *req_of(struct aws_request *rq)
{
        return (struct s3_req *)((char *)rq - offsetof(struct s3_req, rq));
}

static void copy_str(char *dst, size_t size, const char *src)
{
        if (!size)
                return;
        snprintf(dst, size, "%s", src ? src : "");
}

static char *own(struct s3_req *r, const char *s)
{
        if (!s || r->nowned >= sizeof(r->owned) / sizeof(r->owned[0]))
                return NULL;
        char *d = strdup(s);
        if (d)
                r->owned[r->nowned++] = d;
        return d;
}

static int add_param(struct s3_req *r, const char *name, const char *value)
{
        if (r->nparams >= MAX_PARAMS)
                return -E2BIG;
        const char *v = value ? own(r, value) : "";
        if (!v)
                return -ENOMEM;
        r->params[r->nparams].name = name;
        r->params[r->nparams].value = v;
        r->nparams++;
        return 0;
}

static int add_hdr(struct s3_req *r, const char *name, const char *value)
{
        if (r->nhdrs >= MAX_HDRS)
                return -E2BIG;
        const char *v = own(r, value);
        if (!v)
                return -ENOMEM;
        r->hdrs[r->nhdrs].name = name;
        r->hdrs[r->nhdrs].value = v;
        r->nhdrs++;
        return 0;
}

static const char *bucket_region(struct s3_client *c, const char *bucket)
{
        for (unsigned i = 0; i < REGION_CACHE; i++)
                if (c->regions[i].bucket[0] && strcmp(c->regions[i].bucket, bucket) == 0)
                        return c->regions[i].region;
        return NULL;
}

static void set_bucket_region(struct s3_client *c, const char *bucket, const char *region)
{
        if (!bucket || strlen(bucket) >= sizeof(c->regions[0].bucket) ||
            strlen(region) >= sizeof(c->regions[0].region))
                return;
        for (unsigned i = 0; i < REGION_CACHE; i++)
                if (strcmp(c->regions[i].bucket, bucket) == 0) {
                        copy_str(c->regions[i].region, sizeof(c->regions[i].region), region);
                        return;
                }
        struct region_entry *e = &c->regions[c->region_next++ % REGION_CACHE];
        copy_str(e->bucket, sizeof(e->bucket), bucket);
        copy_str(e->region, sizeof(e->region), region);
}

/* ---- pure helpers ---- */

bool s3_bucket_virtual_ok(const char *b)
{
        size_t n = strlen(b);
        if (n < 3 || n > 63 || b[0] == '-' || b[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') || b[i] == '-'))
                        return false;
        return true;
}

void s3_target_clear(struct s3_target *t)
{
        if (!t)
                return;
        free(t->base);
        free(t->host);
        free(t->path);
        t->base = t->host = t->path = NULL;
}

static char *join3(const char *a, const char *b, const char *c)
{
        size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
        char *r = malloc(la + lb + lc + 1);
        if (!r)
                return NULL;
        memcpy(r, a, la);
        memcpy(r + la, b, lb);
        memcpy(r + la + lb, c, lc + 1);
        return r;
}

int s3_target_build(const char *endpoint, bool path_style, const char *region, const char *bucket,
                    const char *key, struct s3_target *ret)
{
        struct s3_target t = {0};
        const char *reg = region && *region ? region : "us-east-1";
        int r = -ENOMEM;

        if (endpoint && *endpoint) {
                CURLU *u = curl_url();
                char *scheme = NULL, *host = NULL, *port = NULL;
                if (!u)
                        return -ENOMEM;
                if (curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK ||
                    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
                    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
                    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
                        r = -EINVAL;
                        goto endpoint_done;
                }
                if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
                        port = NULL;
                t.host = port ? join3(host, ":", port) : strdup(host);
                if (!t.host)
                        goto endpoint_done;
                t.base = join3(scheme, "://", t.host);
                if (!t.base)
                        goto endpoint_done;
                path_style = true;
                r = 0;
        endpoint_done:
                curl_free(scheme);
                curl_free(host);
                curl_free(port);
                curl_url_cleanup(u);
                if (r < 0) {
                        s3_target_clear(&t);
                        return r;
                }
        } else {
                char h[400];
                bool virt = bucket && !path_style && s3_bucket_virtual_ok(bucket);
                if (strlen(reg) > 64 || (bucket && strlen(bucket) > 255))
                        return -EINVAL;
                if (virt)
                        snprintf(h, sizeof(h), "%s.s3.%s.amazonaws.com", bucket, reg);
                else
                        snprintf(h, sizeof(h), "s3.%s.amazonaws.com", reg);
                path_style = !virt;
                t.host = strdup(h);
                t.base = t.host ? join3("https://", t.host, "") : NULL;
                if (!t.base) {
                        s3_target_clear(&t);
                        return -ENOMEM;
                }
        }
        /* raw path: sigv4 encodes it for the wire */
        if (path_style && bucket)
                t.path = join3("/", bucket, key ? "/" : "");
        else
                t.path = strdup("/");
        if (t.path && key) {
                char *p = join3(t.path, key, "");
                free(t.path);
                t.path = p;
        }
        if (!t.path) {
                s3_target_clear(&t);
                return -ENOMEM;
        }
        *ret = t;
        return 0;
}

void s3_list_page_free(struct s3_list_page *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n; i++) {
                free(p->objects[i].key);
                free(p->objects[i].etag);
                free(p->objects[i].last_modified);
        }
        free(p->objects);
        for (size_t i = 0; i < p->nprefixes; i++)
                free(p->prefixes[i]);
        free(p->prefixes);
        free(p->next_token);
        free(p);
}

/* strdup of a leaf's text; *ret NULL when the node is absent (-1).  -EAGAIN
 * when it has element children (libxml2 would give their texts together). */
static int tree_dup(const struct xml_tree *t, int i, char **ret)
{
        *ret = NULL;
        if (i < 0)
                return 0;
        const char *v = xml_tree_text(t, i);
        if (!v)
                return -EAGAIN;
        *ret = strdup(v);
        return *ret ? 0 : -ENOMEM;
}

/* Like xml_child_copy: the child's text truncated into buf; false when there
 * is no such child.  *again is set when the child is not a leaf. */
static bool tree_child_copy(const struct xml_tree *t, int parent, const char *local, char *buf,
                            size_t size, bool *again)
{
        int i = xml_tree_child(t, parent, local);
        if (i < 0)
                return false;
        const char *v = xml_tree_text(t, i);
        if (!v) {
                *again = true;
                return false;
        }
        snprintf(buf, size, "%s", v); /* ASCII only: no sequence to cut */
        return true;
}

/* s3_parse_list without libxml2 (a listing of 1,000 keys as a libxml2
 * document cost about as much as copying them), for replies of the simple
 * shape xml_tree_read() takes; -EAGAIN for the others, and for anything
 * that would not read exactly as the libxml2 path reads it. */
static int parse_list_fast(const char *data, size_t len, struct s3_list_page **ret)
{
        struct xml_tree t;
        int r = xml_tree_read(data, len, &t);
        if (r < 0)
                return r;
        struct s3_list_page *p = NULL;
        size_t nobj = 0, npre = 0;
        bool again = false;
        r = -EAGAIN;
        if (!xml_tree_is(&t, 0, "ListBucketResult"))
                goto out;
        for (int c = xml_tree_child(&t, 0, "Contents"); c >= 0;
             c = xml_tree_next(&t, c, "Contents"))
                nobj++;
        for (int c = xml_tree_child(&t, 0, "CommonPrefixes"); c >= 0;
             c = xml_tree_next(&t, c, "CommonPrefixes"))
                npre++;
        r = -ENOMEM;
        p = calloc(1, sizeof(*p));
        if (!p)
                goto out;
        p->objects = calloc(nobj ? nobj : 1, sizeof(*p->objects));
        p->prefixes = calloc(npre ? npre : 1, sizeof(*p->prefixes));
        if (!p->objects || !p->prefixes)
                goto out;
        for (int c = xml_tree_child(&t, 0, "Contents"); c >= 0;
             c = xml_tree_next(&t, c, "Contents")) {
                struct s3_object *o = &p->objects[p->n++];
                int k = xml_tree_child(&t, c, "Key");
                char size[32] = "";
                long long sz = -1;
                if (k < 0) {
                        r = -EBADMSG;
                        goto out;
                }
                if ((r = tree_dup(&t, k, &o->key)) < 0 ||
                    (r = tree_dup(&t, xml_tree_child(&t, c, "ETag"), &o->etag)) < 0 ||
                    (r = tree_dup(&t, xml_tree_child(&t, c, "LastModified"), &o->last_modified)) <
                        0)
                        goto out;
                if (tree_child_copy(&t, c, "Size", size, sizeof(size), &again) &&
                    util_parse_ll(size, &sz) < 0)
                        sz = -1;
                o->size = sz;
        }
        for (int c = xml_tree_child(&t, 0, "CommonPrefixes"); c >= 0;
             c = xml_tree_next(&t, c, "CommonPrefixes")) {
                char *v;
                if ((r = tree_dup(&t, xml_tree_child(&t, c, "Prefix"), &v)) < 0)
                        goto out;
                if (v)
                        p->prefixes[p->nprefixes++] = v;
        }
        char trunc[16] = "";
        tree_child_copy(&t, 0, "IsTruncated", trunc, sizeof(trunc), &again);
        p->truncated = strcmp(trunc, "true") == 0;
        if (p->truncated) {
                if ((r = tree_dup(&t, xml_tree_child(&t, 0, "NextContinuationToken"),
                                  &p->next_token)) < 0)
                        goto out;
                if (!p->next_token || !*p->next_token) {
                        r = -EBADMSG; /* truncated without a way on */
                        goto out;
                }
        }
        r = again ? -EAGAIN : 0;
out:
        xml_tree_free(&t);
        if (r < 0)
                s3_list_page_free(p);
        else
                *ret = p;
        return r;
}

int s3_parse_list(const char *data, size_t len, struct s3_list_page **ret)
{
        int fast = parse_list_fast(data, len, ret);
        if (fast != -EAGAIN)
                return fast;
        xmlDoc *doc = xml_read(data, len);
        if (!doc)
                return -EBADMSG;
        xmlNode *root = xml_root(doc);
        if (!xml_is(root, "ListBucketResult")) {
                xmlFreeDoc(doc);
                return -EBADMSG;
        }
        struct s3_list_page *p = calloc(1, sizeof(*p));
        size_t nobj = 0, npre = 0;
        int r = -ENOMEM;
        if (!p)
                goto out;
        for (xmlNode *c = xml_child(root, "Contents"); c; c = xml_next(c, "Contents"))
                nobj++;
        for (xmlNode *c = xml_child(root, "CommonPrefixes"); c; c = xml_next(c, "CommonPrefixes"))
                npre++;
        p->objects = calloc(nobj ? nobj : 1, sizeof(*p->objects));
        p->prefixes = calloc(npre ? npre : 1, sizeof(*p->prefixes));
        if (!p->objects || !p->prefixes)
                goto out;
        for (xmlNode *c = xml_child(root, "Contents"); c; c = xml_next(c, "Contents")) {
                struct s3_object *o = &p->objects[p->n];
                xmlNode *k = xml_child(c, "Key");
                char size[32] = "";
                long long sz = -1;
                if (!k) {
                        r = -EBADMSG;
                        goto out;
                }
                o->key = xml_text(k);
                o->etag = xml_text(xml_child(c, "ETag"));
                o->last_modified = xml_text(xml_child(c, "LastModified"));
                p->n++;
                if (!o->key)
                        goto out;
                if (xml_child_copy(c, "Size", size, sizeof(size)) && util_parse_ll(size, &sz) < 0)
                        sz = -1;
                o->size = sz;
        }
        for (xmlNode *c = xml_child(root, "CommonPrefixes"); c; c = xml_next(c, "CommonPrefixes")) {
                char *s = xml_text(xml_child(c, "Prefix"));
                if (!s)
                        continue;
                p->prefixes[p->nprefixes++] = s;
        }
        char trunc[16] = "";
        xml_child_copy(root, "IsTruncated", trunc, sizeof(trunc));
        p->truncated = strcmp(trunc, "true") == 0;
        if (p->truncated) {
                p->next_token = xml_text(xml_child(root, "NextContinuationToken"));
                if (!p->next_token || !*p->next_token) {
                        r = -EBADMSG; /* truncated without a way on */
                        goto out;
                }
        }
        r = 0;
out:
        xmlFreeDoc(doc);
        if (r < 0)
                s3_list_page_free(p);
        else
                *ret = p;
        return r;
}

int s3_parse_copy_result(const char *data, size_t len, char *etag, size_t etag_size,
                         struct aws_error *aerr)
{
        /* The usual reply is small and flat: read it without libxml2. */
        if (xml_flat_child(data, len, "CopyObjectResult", "ETag", etag, etag_size) == 1)
                return 0;
        if (etag_size)
                etag[0] = '\0';
        /* Anything else may be an error document (a 200 carrying <Error>),
         * or a reply the fast path leaves to libxml2. */
        xmlDoc *doc = xml_read(data, len);
        xmlNode *root = xml_root(doc);
        if (!doc || !xml_is(root, "CopyObjectResult")) {
                if (doc)
                        xmlFreeDoc(doc);
                if (xml_parse_aws_error(data, len, aerr) == 0)
                        return -EREMOTEIO;
                doc = xml_read(data, len);
                if (!doc)
                        return -EBADMSG;
                root = xml_root(doc);
        }
        int r = xml_is(root, "CopyObjectResult") && xml_child_copy(root, "ETag", etag, etag_size)
                    ? 0
                    : -EBADMSG;
        xmlFreeDoc(doc);
        return r;
}

int s3_parse_delete_result(const char *data, size_t len, size_t *deleted, size_t *errors,
                           struct aws_error *first)
{
        *deleted = *errors = 0;
        memset(first, 0, sizeof(*first));
        xmlDoc *doc = xml_read(data, len);
        if (!doc)
                return -EBADMSG;
        xmlNode *root = xml_root(doc);
        if (!xml_is(root, "DeleteResult")) {
                xmlFreeDoc(doc);
                return -EBADMSG;
        }
        for (xmlNode *c = xml_child(root, "Deleted"); c; c = xml_next(c, "Deleted"))
                (*deleted)++;
        for (xmlNode *c = xml_child(root, "Error"); c; c = xml_next(c, "Error")) {
                if (*errors == 0) {
                        xml_child_copy(c, "Code", first->code, sizeof(first->code));
                        xml_child_copy(c, "Message", first->message, sizeof(first->message));
                        xml_child_copy(c, "Key", first->bucket, sizeof(first->bucket));
                }
                (*errors)++;
        }
        xmlFreeDoc(doc);
        return 0;
}

int s3_build_delete_body(const char *const *keys, size_t n, char **ret, size_t *ret_len)
{
        struct buf b = {0};
        int r;

        if (n == 0 || n > S3_DELETE_BATCH)
                return -EINVAL;
        r = buf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                           "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                           "<Quiet>true</Quiet>");
        for (size_t i = 0; i < n && r == 0; i++) {
                char *e = NULL;
                r = xml_escape(keys[i], &e);
                if (r == 0)
                        r = buf_printf(&b, "<Object><Key>%s</Key></Object>", e);
                free(e);
        }
        if (r == 0)
                r = buf_printf(&b, "</Delete>");
        if (r < 0) {
                buf_free(&b);
                return r;
        }
        *ret = b.data;
        *ret_len = b.len;
        return 0;
}

int s3_build_create_bucket_body(const char *region, char **ret, size_t *ret_len)
{
        struct buf b = {0};
        char *e = NULL;

        *ret = NULL;
        *ret_len = 0;
        if (!region || !*region || strcmp(region, "us-east-1") == 0)
                return 0;
        int r = xml_escape(region, &e);
        if (r == 0)
                r = buf_printf(&b,
                               "<CreateBucketConfiguration "
                               "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                               "<LocationConstraint>%s</LocationConstraint>"
                               "</CreateBucketConfiguration>",
                               e);
        free(e);
        if (r < 0) {
                buf_free(&b);
                return r;
        }
        *ret = b.data;
        *ret_len = b.len;
        return 0;
}

static int md5_base64(const void *data, size_t len, char out[32])
{
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        if (EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL) != 1)
                return -EIO;
        EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
        return 0;
}

/* ---- the client ---- */

static const struct aws_request_ops s3_ops;

int s3_client_new(struct http_mux *mux, const struct s3_client_opts *opts,
                  const struct sigv4_creds *creds, struct s3_client **ret)
{
        struct s3_client *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->loop = http_mux_loop(mux);
        c->region = strdup(opts && opts->region && *opts->region ? opts->region : "us-east-1");
        c->endpoint = opts && opts->endpoint && *opts->endpoint ? strdup(opts->endpoint) : NULL;
        c->path_style = (opts && opts->path_style) || c->endpoint;
        if (aws_request_client_init(&c->rc, mux, &s3_ops, opts ? &opts->retry : NULL, creds) < 0 ||
            !c->region || (opts && opts->endpoint && *opts->endpoint && !c->endpoint)) {
                s3_client_free(c);
                return -ENOMEM;
        }
        /* Parsing the endpoint URL showed in the profile of every request.  A
         * bad endpoint is reported by the first request, as before. */
        if (c->endpoint && s3_target_build(c->endpoint, true, NULL, NULL, NULL, &c->ep) < 0)
                memset(&c->ep, 0, sizeof(c->ep));
        *ret = c;
        return 0;
}

int s3_client_set_creds(struct s3_client *c, const struct sigv4_creds *creds)
{
        return aws_request_client_set_creds(&c->rc, creds);
}

int s3_client_rotate_creds(struct s3_client *c, const char *profile)
{
        return aws_request_client_rotate_creds(&c->rc, profile);
}

int s3_client_set_sts(struct s3_client *c, const struct creds_sts *sts)
{
        return aws_request_client_set_sts(&c->rc, sts);
}

void s3_client_free(struct s3_client *c)
{
        if (!c)
                return;
        aws_request_client_clear(&c->rc);
        free(c->region);
        free(c->endpoint);
        s3_target_clear(&c->ep);
        free(c);
}

/* Releases what prepare built of the target: with a parsed endpoint, only
 * the path (the client may be gone already: ask the request). */
static void target_done(struct s3_req *r)
{
        struct s3_target *t = &r->target;
        if (r->target_borrowed) {
                free(t->path);
                memset(t, 0, sizeof(*t));
        } else {
                s3_target_clear(t);
        }
}

static void s3_release(struct aws_request *rq)
{
        struct s3_req *r = req_of(rq);
        for (size_t i = 0; i < r->nowned; i++)
                free(r->owned[i]);
        if (r->keys) {
                for (size_t i = 0; i < r->nkeys; i++)
                        free(r->keys[i]);
                free(r->keys);
        }
        target_done(r);
        free(r->owned_body);
        free(r->bucket);
        free(r->key);
        s3_list_page_free(r->res.page);
        free(r);
}

static void s3_done(struct aws_request *rq, int err)
{
        struct s3_req *r = req_of(rq);
        r->res.err = err;
        aws_request_outcome(rq, &r->res.status, &r->res.attempts, &r->res.aws, r->res.msg,
                            r->res.request_id);
        if (r->op == OP_GET && !r->get.on_body && err == 0)
                r->res.body = rq->x.resp.data ? rq->x.resp.data : "";
        r->cb.done(r, &r->res, r->cb.ud);
}

static void fill_info(struct s3_req *r)
{
        struct http_xfer *x = &r->rq.x;
        struct s3_object_info *i = &r->res.info;
        const char *v;
        long long n;

        if ((v = http_xfer_header(x, "ETag")))
                copy_str(i->etag, sizeof(i->etag), v);
        if ((v = http_xfer_header(x, "Last-Modified")))
                copy_str(i->last_modified, sizeof(i->last_modified), v);
        if ((v = http_xfer_header(x, "Content-Type")))
                copy_str(i->content_type, sizeof(i->content_type), v);
        i->size = -1;
        v = http_xfer_header(x, "Content-Range"); /* bytes a-b/total */
        if (v && (v = strchr(v, '/')) && util_parse_ll(v + 1, &n) == 0)
                i->size = n;
        else if ((v = http_xfer_header(x, "Content-Length")) && util_parse_ll(v, &n) == 0)
                i->size = n;
}

static int get_on_body(struct http_xfer *x, const char *data, size_t len)
{
        struct s3_req *r = req_of(x->userdata);
        if (r->rq.cancelled)
                return -ECANCELED;
        if (!r->got_first) {
                r->got_first = true;
                fill_info(r);
                if (!r->first_etag[0])
                        copy_str(r->first_etag, sizeof(r->first_etag), r->res.info.etag);
        }
        int rc = r->get.on_body(r, data, len, r->cb.ud);
        if (rc == 0) {
                r->delivered += len;
                r->res.bytes = r->delivered;
        }
        return rc;
}

static long put_read(struct http_xfer *x, char *buf, size_t len)
{
        struct s3_req *r = req_of(x->userdata);
        long n = r->put.read(r->put.read_ud, r->put_off, buf, len);
        if (n > 0)
                r->put_off += (uint64_t)n;
        return n;
}

/* The DeleteObjects body for keys[batch_start ...], its hash and headers. */
static int build_batch(struct s3_req *r)
{
        size_t n = r->nkeys - r->batch_start;
        if (n > S3_DELETE_BATCH)
                n = S3_DELETE_BATCH;
        free(r->owned_body);
        r->owned_body = NULL;
        int rc = s3_build_delete_body((const char *const *)r->keys + r->batch_start, n,
                                      &r->owned_body, &r->body_len);
        if (rc < 0)
                return rc;
        r->batch_n = n;
        r->body = r->owned_body;
        sigv4_sha256_hex(r->body, r->body_len, r->payload_hash);
        if (md5_base64(r->body, r->body_len, r->batch_md5) < 0)
                return -EIO;
        r->hdrs[0] = (struct sigv4_header){"Content-MD5", r->batch_md5};
        r->hdrs[1] = (struct sigv4_header){"Content-Type", "application/xml"};
        r->nhdrs = 2;
        r->batch_ready = true;
        return 0;
}

/* Each try: the bucket's region and address, Range/If-Match for a GetObject
 * (from the first byte not yet delivered), the body. */
static int s3_prepare(struct aws_request *rq, struct aws_try *t)
{
        struct s3_req *r = req_of(rq);
        struct s3_client *c = r->c;
        struct sigv4_header *h = r->try_hdrs;
        size_t nh = 0;
        int rc;

        if (r->op == OP_DELETE_OBJECTS && !r->batch_ready && (rc = build_batch(r)) < 0) {
                aws_request_say(rq, "cannot build the request: %s", strerror(-rc));
                return rc;
        }
        if (!r->fixed_region) {
                const char *br = r->bucket ? bucket_region(c, r->bucket) : NULL;
                copy_str(r->region, sizeof(r->region), br ? br : c->region);
        }
        for (size_t i = 0; i < r->nhdrs; i++)
                h[nh++] = r->hdrs[i];
        if (r->op == OP_GET) {
                uint64_t from = r->get.offset + (r->get.on_body ? r->delivered : 0);
                if (!r->get.on_body)
                        r->delivered = 0;
                if (r->get.length > 0)
                        snprintf(r->range, sizeof(r->range), "bytes=%llu-%llu",
                                 (unsigned long long)from,
                                 (unsigned long long)(r->get.offset + (uint64_t)r->get.length - 1));
                else
                        snprintf(r->range, sizeof(r->range), "bytes=%llu-",
                                 (unsigned long long)from);
                if (from > 0 || r->get.length > 0)
                        h[nh++] = (struct sigv4_header){"Range", r->range};
                const char *im = r->get.if_match    ? r->get.if_match
                                 : r->first_etag[0] ? r->first_etag
                                                    : NULL;
                if (im)
                        h[nh++] = (struct sigv4_header){"If-Match", im};
        }
        target_done(r);
        if (c->ep.base) {
                /* with an endpoint: path style, the host parsed once */
                struct buf u = {0};
                rc = buf_cat(&u, r->key ? 4 : 2, "/", r->bucket, "/", r->key) == 0 ? 0 : -ENOMEM;
                r->target = (struct s3_target){c->ep.base, c->ep.host, u.data};
                r->target_borrowed = true;
        } else {
                r->target_borrowed = false;
                rc = s3_target_build(c->endpoint, c->path_style, r->region, r->bucket, r->key,
                                     &r->target);
        }
        if (rc < 0) {
                aws_request_say(rq, "bad endpoint or name");
                return rc;
        }
        t->sign = (struct sigv4_request){
            .method = r->method,
            .host = r->target.host,
            .path = r->target.path,
            .params = r->params,
            .nparams = r->nparams,
            .headers = h,
            .nheaders = nh,
            .payload_sha256_hex = r->payload_hash,
            .region = r->region,
            .service = "s3",
        };
        t->base = r->target.base;
        struct http_xfer *x = &rq->x;
        x->body = r->body;
        x->body_len = r->body_len;
        if (r->put.read) {
                x->read_body = put_read;
                x->read_len = (int64_t)r->put.read_len;
        }
        r->put_off = 0;
        if (r->op == OP_GET) {
                x->on_body = r->get.on_body ? get_on_body : NULL;
                x->max_body = r->get.max_body;
        }
        r->got_first = false;
        return 0;
}

static const char *status_code(long status)
{
        switch (status) {
        case 301:
                return "PermanentRedirect";
        case 307:
                return "TemporaryRedirect";
        case 400:
                return "BadRequest";
        case 403:
                return "Forbidden";
        case 404:
                return "NotFound";
        case 412:
                return "PreconditionFailed";
        case 500:
                return "InternalError";
        case 503:
                return "ServiceUnavailable";
        default:
                return "HttpError";
        }
}

/* A 2xx reply: finish the operation (or move to its next step).  Returns
 * false when the reply turned out to be an error (CopyObject's 200 + Error),
 * with aws filled, for the layer's error path. */
static bool s3_on_reply(struct aws_request *rq)
{
        struct s3_req *r = req_of(rq);
        struct http_xfer *x = &rq->x;
        int rc;

        switch (r->op) {
        case OP_LIST:
                rc = s3_parse_list(x->resp.data, x->resp.len, &r->res.page);
                if (rc < 0) {
                        aws_request_say(rq, "unreadable reply (%zu bytes)", x->resp.len);
                        aws_request_complete(rq, rc);
                        return true;
                }
                break;
        case OP_HEAD:
                fill_info(r);
                break;
        case OP_PUT:
                fill_info(r);
                r->res.info.size = r->put.read ? (int64_t)r->put.read_len : (int64_t)r->body_len;
                break;
        case OP_GET:
                if (!r->got_first)
                        fill_info(r);
                if (!r->get.on_body)
                        r->res.bytes = x->resp.len;
                break;
        case OP_COPY:
                rc = s3_parse_copy_result(x->resp.data, x->resp.len, r->res.info.etag,
                                          sizeof(r->res.info.etag), &rq->aws);
                if (rc == -EREMOTEIO)
                        return false;
                if (rc < 0) {
                        aws_request_say(rq, "unreadable reply");
                        aws_request_complete(rq, rc);
                        return true;
                }
                break;
        case OP_HEAD_BUCKET: {
                const char *v = http_xfer_header(x, "x-amz-bucket-region");
                copy_str(r->res.region, sizeof(r->res.region), v ? v : r->region);
                break;
        }
        case OP_DELETE_OBJECTS: {
                size_t del = 0, errs = 0;
                struct aws_error first;
                rc = s3_parse_delete_result(x->resp.data, x->resp.len, &del, &errs, &first);
                if (rc < 0) {
                        aws_request_say(rq, "unreadable reply");
                        aws_request_complete(rq, rc);
                        return true;
                }
                /* Quiet mode lists only failures */
                r->res.deleted += del ? del : r->batch_n - errs;
                if (errs && !r->res.delete_errors) {
                        rq->aws = first;
                        snprintf(rq->msg, sizeof(rq->msg), "S3 DeleteObjects s3://%s/%s: %s: %s",
                                 r->bucket, first.bucket, first.code, first.message);
                }
                r->res.delete_errors += errs;
                r->batch_start += r->batch_n;
                if (r->batch_start < r->nkeys) {
                        r->batch_ready = false;
                        aws_request_restart(rq);
                        return true;
                }
                aws_request_complete(rq, r->res.delete_errors ? -EREMOTEIO : 0);
                return true;
        }
        case OP_CREATE_BUCKET:
                r->res.already_existed = r->verifying;
                break;
        case OP_DELETE_BUCKET:
                break;
        }
        aws_request_complete(rq, 0);
        return true;
}

/* A refusal: region redirects, CreateBucket of a bucket that is ours, a
 * resumed GetObject that had everything already. */
static bool s3_on_refusal(struct aws_request *rq)
{
        struct s3_req *r = req_of(rq);
        struct http_xfer *x = &rq->x;
        struct aws_error *a = &rq->aws;

        /* the bucket lives in another region: go there */
        const char *hr = http_xfer_header(x, "x-amz-bucket-region");
        const char *nr = hr && *hr ? hr : a->region[0] ? a->region : NULL;
        if (r->bucket && !r->fixed_region && nr && strcmp(nr, r->region) != 0 && r->redirects < 3 &&
            (x->status == 301 || x->status == 307 || x->status == 400 ||
             (r->op == OP_HEAD_BUCKET && x->status == 403))) {
                set_bucket_region(r->c, r->bucket, nr);
                r->redirects++;
                aws_request_redo(rq); /* a redirect is not a failed try */
                return true;
        }
        if (r->op == OP_CREATE_BUCKET && strcmp(a->code, "BucketAlreadyOwnedByYou") == 0) {
                r->res.already_existed = true;
                aws_request_complete(rq, 0);
                return true;
        }
        if (r->op == OP_CREATE_BUCKET && r->verifying) {
                /* not ours after all: report the CreateBucket refusal */
                rq->aws = r->verify_aws;
                rq->status = r->verify_status;
                copy_str(rq->msg, sizeof(rq->msg), r->verify_msg);
                aws_request_complete(rq, aws_request_status_err(r->verify_status));
                return true;
        }
        if (r->op == OP_CREATE_BUCKET && strcmp(a->code, "BucketAlreadyExists") == 0) {
                /* Emulators (and S3 for some races) say BucketAlreadyExists for
                 * a bucket of our own; it is ours if we may HeadBucket it (a
                 * stranger's bucket answers 403). */
                aws_request_say_refusal(rq);
                copy_str(r->verify_msg, sizeof(r->verify_msg), rq->msg);
                r->verify_aws = *a;
                r->verify_status = x->status;
                r->verifying = true;
                r->method = "HEAD";
                r->body = NULL;
                r->body_len = 0;
                r->nhdrs = 0;
                copy_str(r->payload_hash, sizeof(r->payload_hash), SIGV4_EMPTY_SHA256);
                aws_request_restart(rq);
                return true;
        }
        if (r->op == OP_GET && x->status == 416 && r->got_first == false && r->delivered > 0) {
                aws_request_complete(rq, 0); /* everything had arrived before the failure */
                return true;
        }
        return false;
}

static const struct aws_request_ops s3_ops = {
    .request_id_header = "x-amz-request-id",
    .prepare = s3_prepare,
    .on_reply = s3_on_reply,
    .on_refusal = s3_on_refusal,
    .status_code = status_code,
    .done = s3_done,
    .release = s3_release,
};

static int req_new(struct s3_client *c, enum s3_op op, const char *method, const char *bucket,
                   const char *key, const struct s3_cb *cb, struct s3_req **ret)
{
        if (!cb || !cb->done || !bucket || !*bucket)
                return -EINVAL;
        struct s3_req *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->c = c;
        r->op = op;
        r->cb = *cb;
        r->method = method;
        r->bucket = strdup(bucket);
        r->key = key ? strdup(key) : NULL;
        copy_str(r->payload_hash, sizeof(r->payload_hash), SIGV4_EMPTY_SHA256);
        r->res.info.size = -1;
        if (!r->bucket || (key && !r->key) ||
            aws_request_init(&r->rq, &c->rc, cb->tag, "S3 %s s3://%s/%s", op_names[op], bucket,
                             key ? key : "") < 0) {
                free(r->bucket);
                free(r->key);
                free(r);
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}

/* Discards a request that never started (no done() call). */
static int req_abort(struct s3_req *r, int err)
{
        aws_request_discard(&r->rq);
        return err;
}

static int req_start(struct s3_req *r, struct s3_req **ret)
{
        if (ret)
                *ret = r;
        aws_request_start(&r->rq);
        return 0;
}

int s3_list_objects(struct s3_client *c, const char *bucket, const char *prefix, const char *token,
                    unsigned max_keys, const char *delimiter, const struct s3_cb *cb,
                    struct s3_req **ret)
{
        struct s3_req *r;
        char mk[16];
        int rc = req_new(c, OP_LIST, "GET", bucket, NULL, cb, &r);
        if (rc < 0)
                return rc;
        rc = add_param(r, "list-type", "2");
        if (rc == 0 && prefix && *prefix)
                rc = add_param(r, "prefix", prefix);
        if (rc == 0 && token && *token)
                rc = add_param(r, "continuation-token", token);
        if (rc == 0 && delimiter && *delimiter)
                rc = add_param(r, "delimiter", delimiter);
        if (rc == 0 && max_keys) {
                snprintf(mk, sizeof(mk), "%u", max_keys);
                rc = add_param(r, "max-keys", mk);
        }
        if (rc < 0)
                return req_abort(r, rc);
        return req_start(r, ret);
}

int s3_head_object(struct s3_client *c, const char *bucket, const char *key, const struct s3_cb *cb,
                   struct s3_req **ret)
{
        struct s3_req *r;
        if (!key || !*key)
                return -EINVAL;
        int rc = req_new(c, OP_HEAD, "HEAD", bucket, key, cb, &r);
        if (rc < 0)
                return rc;
        return req_start(r, ret);
}

int s3_get_object(struct s3_client *c, const char *bucket, const char *key,
                  const struct s3_get_opts *o, const struct s3_cb *cb, struct s3_req **ret)
{
        struct s3_req *r;
        if (!key || !*key)
                return -EINVAL;
        int rc = req_new(c, OP_GET, "GET", bucket, key, cb, &r);
        if (rc < 0)
                return rc;
        if (o)
                r->get = *o;
        if (r->get.if_match) {
                r->get.if_match = own(r, r->get.if_match);
                if (!r->get.if_match)
                        return req_abort(r, -ENOMEM);
        }
        return req_start(r, ret);
}

int s3_put_object(struct s3_client *c, const char *bucket, const char *key,
                  const struct s3_put_opts *o, const struct s3_cb *cb, struct s3_req **ret)
{
        struct s3_req *r;
        if (!key || !*key || !o)
                return -EINVAL;
        int rc = req_new(c, OP_PUT, "PUT", bucket, key, cb, &r);
        if (rc < 0)
                return rc;
        r->put = *o;
        if (o->read) {
                copy_str(r->payload_hash, sizeof(r->payload_hash), SIGV4_UNSIGNED_PAYLOAD);
        } else {
                r->body = o->data ? o->data : "";
                r->body_len = o->data ? o->len : 0;
                sigv4_sha256_hex(r->body, r->body_len, r->payload_hash);
        }
        if (o->content_type && (rc = add_hdr(r, "Content-Type", o->content_type)) < 0)
                return req_abort(r, rc);
        return req_start(r, ret);
}

int s3_copy_object(struct s3_client *c, const char *src_bucket, const char *src_key,
                   const char *dst_bucket, const char *dst_key, const struct s3_cb *cb,
                   struct s3_req **ret)
{
        struct s3_req *r;
        if (!src_bucket || !*src_bucket || !src_key || !*src_key || !dst_key || !*dst_key)
                return -EINVAL;
        int rc = req_new(c, OP_COPY, "PUT", dst_bucket, dst_key, cb, &r);
        if (rc < 0)
                return rc;
        char *ek = sigv4_uri_encode(src_key, true);
        char *src = ek ? join3(src_bucket, "/", ek) : NULL;
        free(ek);
        if (!src)
                return req_abort(r, -ENOMEM);
        rc = add_hdr(r, "x-amz-copy-source", src);
        free(src);
        if (rc < 0)
                return req_abort(r, rc);
        return req_start(r, ret);
}

int s3_create_bucket(struct s3_client *c, const char *bucket, const char *region,
                     const struct s3_cb *cb, struct s3_req **ret)
{
        struct s3_req *r;
        int rc = req_new(c, OP_CREATE_BUCKET, "PUT", bucket, NULL, cb, &r);
        if (rc < 0)
                return rc;
        copy_str(r->region, sizeof(r->region), region && *region ? region : c->region);
        r->fixed_region = true;
        rc = s3_build_create_bucket_body(r->region, &r->owned_body, &r->body_len);
        if (rc < 0)
                return req_abort(r, rc);
        if (r->owned_body) {
                r->body = r->owned_body;
                sigv4_sha256_hex(r->body, r->body_len, r->payload_hash);
                if ((rc = add_hdr(r, "Content-Type", "application/xml")) < 0)
                        return req_abort(r, rc);
        }
        set_bucket_region(c, bucket, r->region);
        return req_start(r, ret);
}

int s3_head_bucket(struct s3_client *c, const char *bucket, const struct s3_cb *cb,
                   struct s3_req **ret)
{
        struct s3_req *r;
        int rc = req_new(c, OP_HEAD_BUCKET, "HEAD", bucket, NULL, cb, &r);
        if (rc < 0)
                return rc;
        return req_start(r, ret);
}

int s3_delete_bucket(struct s3_client *c, const char *bucket, const struct s3_cb *cb,
                     struct s3_req **ret)
{
        struct s3_req *r;
        int rc = req_new(c, OP_DELETE_BUCKET, "DELETE", bucket, NULL, cb, &r);
        if (rc < 0)
                return rc;
        return req_start(r, ret);
}

int s3_delete_objects(struct s3_client *c, const char *bucket, const char *const *keys, size_t n,
                      const struct s3_cb *cb, struct s3_req **ret)
{
        struct s3_req *r;
        if (n == 0)
                return -EINVAL;
        int rc = req_new(c, OP_DELETE_OBJECTS, "POST", bucket, NULL, cb, &r);
        if (rc < 0)
                return rc;
        rc = add_param(r, "delete", "");
        r->keys = calloc(n, sizeof(*r->keys));
        if (rc < 0 || !r->keys)
                return req_abort(r, rc < 0 ? rc : -ENOMEM);
        for (size_t i = 0; i < n; i++) {
                r->keys[i] = strdup(keys[i]);
                r->nkeys++;
                if (!r->keys[i])
                        return req_abort(r, -ENOMEM);
        }
        return req_start(r, ret);
}

void s3_req_cancel(struct s3_req *r)
{
        if (r)
                aws_request_cancel(&r->rq);
}

void s3_req_resume(struct s3_req *r)
{
        if (r && !r->rq.finished && r->rq.x.active)
                http_resume(&r->rq.x);
}

unsigned s3_cancel_tag(struct s3_client *c, const void *tag)
{
        return aws_request_cancel_tag(&c->rc, tag);
}

struct s3_list_page *s3_result_take_page(const struct s3_result *res)
{
        struct s3_result *m = (struct s3_result *)res;
        struct s3_list_page *p = m->page;
        m->page = NULL;
        return p;
}
