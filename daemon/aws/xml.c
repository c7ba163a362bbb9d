/* xml.c - safe libxml2 parsing of AWS replies and lookup by local names.
 * See xml.h for the rules.  The S3-specific reply shapes are in s3.c. */
#include "aws/xml.h"

#include <errno.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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
