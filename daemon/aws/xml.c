/* xml.c - safe libxml2 parsing of AWS replies and lookup by local names.
 * See xml.h for the rules.  The S3-specific reply shapes are in s3.c. */
#include "aws/xml.h"

#include <errno.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* Keep libxml2 quiet: a parse error is a return value here, not stderr. */
static void silent_error(void *ctx, const char *msg, ...)
{
}

static void do_init(void)
{
        xmlInitParser();
        xmlSetGenericErrorFunc(NULL, silent_error);
}

void xml_init(void)
{
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, do_init);
}

xmlDoc *xml_read(const char *data, size_t len)
{
        xml_init();
        if (!data || len == 0 || len > INT32_MAX)
                return NULL;
        /* No XML_PARSE_NOENT (it would substitute entities), no DTDLOAD, no
         * DTDATTR, no XINCLUDE, no HUGE; NONET forbids any fetch. */
        int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA;
        xmlDoc *doc = xmlReadMemory(data, (int)len, "reply.xml", NULL, opts);
        if (!doc)
                return NULL;
        if (doc->intSubset || doc->extSubset || !xmlDocGetRootElement(doc)) {
                xmlFreeDoc(doc);
                return NULL;
        }
        return doc;
}

xmlNode *xml_root(xmlDoc *doc)
{
        return doc ? xmlDocGetRootElement(doc) : NULL;
}

bool xml_is(const xmlNode *n, const char *local)
{
        return n && n->type == XML_ELEMENT_NODE && n->name &&
               strcmp((const char *)n->name, local) == 0;
}

xmlNode *xml_next(const xmlNode *n, const char *local)
{
        if (!n)
                return NULL;
        for (xmlNode *c = n->next; c; c = c->next)
                if (xml_is(c, local))
                        return c;
        return NULL;
}

xmlNode *xml_child(const xmlNode *parent, const char *local)
{
        if (!parent)
                return NULL;
        for (xmlNode *c = parent->children; c; c = c->next)
                if (xml_is(c, local))
                        return c;
        return NULL;
}

xmlNode *xml_path(const xmlNode *n, const char *path)
{
        char part[128];
        const xmlNode *cur = n;

        while (cur && *path) {
                size_t k = strcspn(path, "/");
                if (k == 0 || k >= sizeof(part))
                        return NULL;
                memcpy(part, path, k);
                part[k] = '\0';
                cur = xml_child(cur, part);
                path += k;
                if (*path == '/')
                        path++;
        }
        return (xmlNode *)cur;
}

char *xml_text(const xmlNode *n)
{
        if (!n)
                return NULL;
        xmlChar *t = xmlNodeGetContent(n);
        if (!t)
                return strdup("");
        char *r = strdup((const char *)t);
        xmlFree(t);
        return r;
}

static void copy_trunc(char *buf, size_t size, const char *s)
{
        if (size == 0)
                return;
        size_t n = strlen(s);
        if (n >= size) {
                n = size - 1;
                /* do not cut a UTF-8 sequence in half */
                while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
                        n--;
        }
        memcpy(buf, s, n);
        buf[n] = '\0';
}

bool xml_child_copy(const xmlNode *parent, const char *local, char *buf, size_t size)
{
        xmlNode *c = xml_child(parent, local);
        if (!c)
                return false;
        xmlChar *t = xmlNodeGetContent(c);
        copy_trunc(buf, size, t ? (const char *)t : "");
        xmlFree(t);
        return true;
}

int xml_parse_aws_error(const char *data, size_t len, struct aws_error *ret)
{
        memset(ret, 0, sizeof(*ret));
        xmlDoc *doc = xml_read(data, len);
        if (!doc)
                return -EBADMSG;
        xmlNode *root = xml_root(doc), *err = NULL, *outer = root;
        if (xml_is(root, "Error"))
                err = root;
        else if (xml_is(root, "ErrorResponse"))
                err = xml_child(root, "Error");
        else if (xml_is(root, "Response"))
                err = xml_path(root, "Errors/Error");
        if (!err || !xml_child_copy(err, "Code", ret->code, sizeof(ret->code))) {
                memset(ret, 0, sizeof(*ret));
                xmlFreeDoc(doc);
                return -EBADMSG;
        }
        xml_child_copy(err, "Message", ret->message, sizeof(ret->message));
        if (!xml_child_copy(err, "RequestId", ret->request_id, sizeof(ret->request_id)) &&
            !xml_child_copy(outer, "RequestId", ret->request_id, sizeof(ret->request_id)))
                xml_child_copy(outer, "RequestID", ret->request_id, sizeof(ret->request_id));
        xml_child_copy(err, "HostId", ret->host_id, sizeof(ret->host_id));
        xml_child_copy(err, "Region", ret->region, sizeof(ret->region));
        xml_child_copy(err, "Endpoint", ret->endpoint, sizeof(ret->endpoint));
        if (!xml_child_copy(err, "BucketName", ret->bucket, sizeof(ret->bucket)))
                xml_child_copy(err, "Bucket", ret->bucket, sizeof(ret->bucket));
        xmlFreeDoc(doc);
        return 0;
}

/* ---- flat replies without libxml2 ----
 *
 * A CopyObject reply is a few hundred bytes, and building a libxml2 document
 * for it (a parser context, a dictionary, a node per element and per text)
 * cost more CPU than the rest of the copy's bookkeeping together.  The scanner
 * below accepts a deliberately small subset of XML and answers -EAGAIN for
 * anything outside it, so libxml2 still has the last word on every document
 * that is not plainly well-formed. */

struct scan {
        const char *p, *end;
};

static bool flat_char_ok(unsigned char c)
{
        return (c >= 0x20 && c < 0x7f) || c == '\t' || c == '\n';
}

static bool is_alpha(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool skip_ws(struct scan *s)
{
        const char *b = s->p;
        while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n'))
                s->p++;
        return s->p > b;
}

/* Consumes `w` when it comes next. */
static bool lit(struct scan *s, const char *w)
{
        size_t n = strlen(w);
        if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
                return false;
        s->p += n;
        return true;
}

/* An unprefixed name; its length, or 0 when there is none or it has a
 * prefix (namespace prefixes are left to libxml2). */
static size_t flat_name(struct scan *s)
{
        const char *b = s->p;
        if (s->p >= s->end || !(is_alpha(*s->p) || *s->p == '_'))
                return 0;
        s->p++;
        while (s->p < s->end &&
               (is_alpha(*s->p) || is_digit(*s->p) || *s->p == '_' || *s->p == '-' || *s->p == '.'))
                s->p++;
        if (s->p < s->end && *s->p == ':')
                return 0;
        return (size_t)(s->p - b);
}

/* A quoted attribute value without '<' or references; false otherwise. */
static bool flat_quoted(struct scan *s, const char **val, size_t *vlen)
{
        if (s->p >= s->end || (*s->p != '"' && *s->p != '\''))
                return false;
        char q = *s->p++;
        const char *b = s->p;
        while (s->p < s->end && *s->p != q) {
                if (*s->p == '<' || *s->p == '&' || !flat_char_ok((unsigned char)*s->p))
                        return false;
                s->p++;
        }
        if (s->p >= s->end)
                return false;
        *val = b;
        *vlen = (size_t)(s->p - b);
        s->p++;
        return true;
}

/* name S? '=' S? quoted, where name must be `want`. */
static bool flat_pseudo_attr(struct scan *s, const char *want, const char **val, size_t *vlen)
{
        if (!lit(s, want))
                return false;
        skip_ws(s);
        if (!lit(s, "="))
                return false;
        skip_ws(s);
        return flat_quoted(s, val, vlen);
}

/* The XML declaration, if there is one: version 1.0, encoding UTF-8 if
 * named, standalone yes or no.  False: leave the document to libxml2. */
static bool flat_decl(struct scan *s)
{
        const char *v;
        size_t n;

        if (!lit(s, "<?xml"))
                return true;
        if (!skip_ws(s) || !flat_pseudo_attr(s, "version", &v, &n) || n != 3 ||
            memcmp(v, "1.0", 3) != 0)
                return false;
        bool ws = skip_ws(s);
        if (ws && s->p < s->end && *s->p == 'e') {
                if (!flat_pseudo_attr(s, "encoding", &v, &n) || n != 5 ||
                    strncasecmp(v, "UTF-8", 5) != 0)
                        return false;
                ws = skip_ws(s);
        }
        if (ws && s->p < s->end && *s->p == 's') {
                if (!flat_pseudo_attr(s, "standalone", &v, &n) ||
                    !((n == 3 && memcmp(v, "yes", 3) == 0) || (n == 2 && memcmp(v, "no", 2) == 0)))
                        return false;
                skip_ws(s);
        }
        return lit(s, "?>");
}

/* `</name S? >` */
static bool flat_end_tag(struct scan *s, const char *name, size_t len)
{
        if (!lit(s, "</"))
                return false;
        const char *n = s->p;
        if (flat_name(s) != len || memcmp(n, name, len) != 0)
                return false;
        skip_ws(s);
        return lit(s, ">");
}

/* Character data up to the next '<', with references resolved; appended to
 * out (at most size - 1 bytes, then NUL) when out is not NULL. */
static bool flat_text(struct scan *s, char *out, size_t size)
{
        size_t o = 0;

        while (s->p < s->end && *s->p != '<') {
                unsigned char c = (unsigned char)*s->p;
                if (!flat_char_ok(c))
                        return false;
                if (c == ']' && s->end - s->p >= 3 && memcmp(s->p, "]]>", 3) == 0)
                        return false; /* not allowed in character data */
                if (c != '&') {
                        s->p++;
                } else if (lit(s, "&lt;")) {
                        c = '<';
                } else if (lit(s, "&gt;")) {
                        c = '>';
                } else if (lit(s, "&amp;")) {
                        c = '&';
                } else if (lit(s, "&quot;")) {
                        c = '"';
                } else if (lit(s, "&apos;")) {
                        c = '\'';
                } else if (lit(s, "&#")) {
                        bool hex = lit(s, "x");
                        unsigned long v = 0;
                        int digits = 0;
                        for (; s->p < s->end && *s->p != ';' && digits < 6; digits++, s->p++) {
                                int d = hex ? util_hexdigit(*s->p)
                                            : is_digit(*s->p) ? *s->p - '0' : -1;
                                if (d < 0)
                                        return false;
                                v = v * (hex ? 16 : 10) + (unsigned long)d;
                        }
                        if (digits == 0 || !lit(s, ";") || v > 0x7f ||
                            !flat_char_ok((unsigned char)v))
                                return false;
                        c = (unsigned char)v;
                } else {
                        return false;
                }
                if (out && o + 1 < size)
                        out[o++] = (char)c;
        }
        if (out && size)
                out[o] = '\0';
        return true;
}

/* The optional XML declaration and the root's start tag, with at most 8
 * attributes (a namespace declaration, say; none twice); *name and *len
 * point at the root's name.  false: not the simple shape. */
static bool flat_root(struct scan *s, const char **name, size_t *len)
{
        const char *attrs[8];
        size_t alens[8], nattrs = 0;

        if (!flat_decl(s))
                return false;
        skip_ws(s);
        if (!lit(s, "<"))
                return false;
        *name = s->p;
        *len = flat_name(s);
        if (*len == 0)
                return false;
        for (;;) {
                bool ws = skip_ws(s);
                if (lit(s, ">"))
                        return true;
                const char *an = s->p, *v;
                size_t al = flat_name(s), vl;
                if (!ws || al == 0 || nattrs == 8)
                        return false;
                for (size_t i = 0; i < nattrs; i++)
                        if (alens[i] == al && memcmp(attrs[i], an, al) == 0)
                                return false; /* a duplicate: not well-formed */
                attrs[nattrs] = an;
                alens[nattrs++] = al;
                skip_ws(s);
                if (!lit(s, "="))
                        return false;
                skip_ws(s);
                if (!flat_quoted(s, &v, &vl))
                        return false;
        }
}

int xml_flat_child(const char *data, size_t len, const char *root, const char *child, char *buf,
                   size_t size)
{
        struct scan sc = {data, data + len}, *s = &sc;
        const char *rname;
        size_t rlen;
        int found = 0;

        if (!data || !flat_root(s, &rname, &rlen) || rlen != strlen(root) ||
            memcmp(rname, root, rlen) != 0)
                return -EAGAIN;
        size_t clen = strlen(child);
        for (;;) {
                skip_ws(s);
                if (s->end - s->p >= 2 && memcmp(s->p, "</", 2) == 0) {
                        if (!flat_end_tag(s, rname, rlen))
                                return -EAGAIN;
                        skip_ws(s);
                        return s->p == s->end ? found : -EAGAIN;
                }
                if (!lit(s, "<"))
                        return -EAGAIN; /* text in the root, or the end came early */
                const char *cname = s->p;
                size_t cl = flat_name(s);
                if (cl == 0)
                        return -EAGAIN; /* comment, CDATA, PI, prefix, ... */
                skip_ws(s);
                if (!lit(s, ">"))
                        return -EAGAIN; /* attributes, or an empty-element tag */
                bool want = !found && cl == clen && memcmp(cname, child, cl) == 0;
                if (!flat_text(s, want ? buf : NULL, size) || !flat_end_tag(s, cname, cl))
                        return -EAGAIN;
                if (want)
                        found = 1;
        }
}

/* ---- nested replies without libxml2 ---- */

#define TREE_MAX_DEPTH 16

static int tree_add(struct xml_tree *t, const char *name, size_t len, int parent)
{
        if (t->n == t->cap) {
                size_t cap = t->cap ? t->cap * 2 : 64;
                if (cap > INT32_MAX)
                        return -ENOMEM;
                struct xml_tree_node *n = realloc(t->nodes, cap * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                t->nodes = n;
                t->cap = cap;
        }
        int i = (int)t->n++;
        struct xml_tree_node *n = &t->nodes[i];
        n->name = name;
        n->name_len = len;
        n->text = -1;
        n->parent = parent;
        n->first_child = n->last_child = n->next = -1;
        if (parent >= 0) {
                struct xml_tree_node *p = &t->nodes[parent];
                if (p->last_child >= 0)
                        t->nodes[p->last_child].next = i;
                else
                        p->first_child = i;
                p->last_child = i;
        }
        return i;
}

static bool all_ws(const char *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n')
                        return false;
        return true;
}

static int tree_parse(struct scan *s, struct xml_tree *t)
{
        int stack[TREE_MAX_DEPTH], depth = 0;
        const char *rn;
        size_t rl;

        if (!flat_root(s, &rn, &rl))
                return -EAGAIN;
        int r = tree_add(t, rn, rl, -1);
        if (r < 0)
                return r;
        stack[depth++] = r;
        while (depth > 0) {
                struct xml_tree_node *cur = &t->nodes[stack[depth - 1]];
                /* the text up to the next tag, decoded at the arena's end */
                char *out = t->arena + t->arena_len;
                const char *raw = s->p;
                if (!flat_text(s, out, (size_t)(s->end - raw) + 1) || s->p >= s->end)
                        return -EAGAIN;
                size_t tl = strlen(out);
                bool blank = all_ws(out, tl);
                if (s->end - s->p >= 2 && s->p[1] == '/') {
                        if (!flat_end_tag(s, cur->name, cur->name_len))
                                return -EAGAIN;
                        if (cur->first_child < 0) {
                                cur->text = (long)t->arena_len; /* a leaf */
                                t->arena_len += tl + 1;
                        } else if (!blank) {
                                return -EAGAIN; /* text after elements */
                        }
                        depth--;
                        continue;
                }
                if (!blank)
                        return -EAGAIN; /* text before an element: mixed content */
                s->p++;                 /* '<' */
                const char *cn = s->p;
                size_t cl = flat_name(s);
                if (cl == 0)
                        return -EAGAIN; /* comment, CDATA, PI, prefix, ... */
                skip_ws(s);
                int parent = stack[depth - 1];
                if (lit(s, "/>")) {
                        r = tree_add(t, cn, cl, parent);
                        if (r < 0)
                                return r;
                        t->nodes[r].text = (long)t->arena_len;
                        t->arena[t->arena_len++] = '\0';
                        continue;
                }
                if (!lit(s, ">") || depth == TREE_MAX_DEPTH)
                        return -EAGAIN;
                r = tree_add(t, cn, cl, parent);
                if (r < 0)
                        return r;
                stack[depth++] = r;
        }
        skip_ws(s);
        return s->p == s->end ? 0 : -EAGAIN;
}

int xml_tree_read(const char *data, size_t len, struct xml_tree *ret)
{
        struct scan sc = {data, data + len};
        struct xml_tree t = {0};

        if (!data || len == 0 || len > INT32_MAX)
                return -EAGAIN;
        /* Decoded texts are never longer than their source, and each has a
         * NUL where its source had at least a '<': the arena never grows. */
        t.arena = malloc(len + 1);
        if (!t.arena)
                return -ENOMEM;
        int r = tree_parse(&sc, &t);
        if (r < 0) {
                xml_tree_free(&t);
                return r;
        }
        *ret = t;
        return 0;
}

void xml_tree_free(struct xml_tree *t)
{
        if (!t)
                return;
        free(t->nodes);
        free(t->arena);
        memset(t, 0, sizeof(*t));
}

bool xml_tree_is(const struct xml_tree *t, int i, const char *local)
{
        if (i < 0 || (size_t)i >= t->n)
                return false;
        size_t l = strlen(local);
        return t->nodes[i].name_len == l && memcmp(t->nodes[i].name, local, l) == 0;
}

int xml_tree_next(const struct xml_tree *t, int i, const char *local)
{
        if (i < 0 || (size_t)i >= t->n)
                return -1;
        for (int c = t->nodes[i].next; c >= 0; c = t->nodes[c].next)
                if (xml_tree_is(t, c, local))
                        return c;
        return -1;
}

int xml_tree_child(const struct xml_tree *t, int parent, const char *local)
{
        if (parent < 0 || (size_t)parent >= t->n)
                return -1;
        int c = t->nodes[parent].first_child;
        if (c < 0 || xml_tree_is(t, c, local))
                return c;
        return xml_tree_next(t, c, local);
}

const char *xml_tree_text(const struct xml_tree *t, int i)
{
        if (i < 0 || (size_t)i >= t->n || t->nodes[i].text < 0)
                return NULL;
        return t->arena + t->nodes[i].text;
}

int xml_escape(const char *s, char **ret)
{
        struct buf b = {0};
        int r = 0;

        for (const unsigned char *p = (const unsigned char *)s; *p && r == 0; p++) {
                switch (*p) {
                case '&':
                        r = buf_append(&b, "&amp;", 5);
                        break;
                case '<':
                        r = buf_append(&b, "&lt;", 4);
                        break;
                case '>':
                        r = buf_append(&b, "&gt;", 4);
                        break;
                case '"':
                        r = buf_append(&b, "&quot;", 6);
                        break;
                case '\'':
                        r = buf_append(&b, "&apos;", 6);
                        break;
                case '\t':
                case '\n':
                case '\r':
                        r = buf_printf(&b, "&#%d;", *p);
                        break;
                default:
                        if (*p < 0x20)
                                r = -EINVAL;
                        else
                                r = buf_append(&b, p, 1);
                }
        }
        if (r == 0)
                r = buf_append(&b, "", 0); /* allocates the NUL for "" */
        if (r < 0) {
                buf_free(&b);
                return r;
        }
        *ret = b.data;
        return 0;
}
