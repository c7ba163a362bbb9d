/* fuzz_xml.c - the AWS XML readers (daemon/aws/xml.h): libxml2 behind
 * xml_read(), and the two fast paths that skip it.
 *
 * Input: a reply body.  Checked besides memory safety, from xml.h's
 * promises:
 *   - a document xml_flat_child() accepts means to libxml2 what it means to
 *     it: libxml2 parses it, the root has that name, and the child's text
 *     (or its absence) is the same;
 *   - a tree xml_tree_read() builds is libxml2's tree: the same elements in
 *     the same order, and each leaf's text is what xml_text() gives;
 *   - xml_escape() of valid UTF-8 text, put in an element, reads back as the
 *     same text; it refuses only control characters XML cannot carry;
 *   - xml_parse_aws_error() leaves NUL-terminated fields. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/xml.h"
#include "fuzz.h"
#include "util.h"

static void check_flat(const char *data, size_t len, xmlDoc *doc, const char *root,
                       const char *child)
{
        size_t size = len + 1;
        char *buf = malloc(size);
        FUZZ_CHECK(buf, "out of memory");
        int r = xml_flat_child(data, len, root, child, buf, size);
        if (r != -EAGAIN) {
                FUZZ_CHECK(r == 0 || r == 1, "xml_flat_child returned %d", r);
                FUZZ_CHECK(doc, "xml_flat_child took a document libxml2 refuses");
                xmlNode *rn = xml_root(doc);
                FUZZ_CHECK(xml_is(rn, root) && !(rn->ns && rn->ns->prefix),
                           "xml_flat_child took root '%s', libxml2 sees '%s'", root, rn->name);
                xmlNode *c = xml_child(rn, child);
                FUZZ_CHECK((c != NULL) == (r == 1), "xml_flat_child says %d for <%s>", r, child);
                if (c) {
                        char *t = xml_text(c);
                        FUZZ_CHECK(t && strcmp(t, buf) == 0,
                                   "<%s>: xml_flat_child read '%s', libxml2 '%s'", child, buf,
                                   t ? t : "(null)");
                        free(t);
                }
        }
        free(buf);
}

/* The first element child of n, or NULL. */
static xmlNode *first_element(xmlNode *n)
{
        for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE)
                        return c;
        return NULL;
}

static xmlNode *next_element(xmlNode *n)
{
        for (xmlNode *c = n->next; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE)
                        return c;
        return NULL;
}

static void compare_tree(const struct xml_tree *t, int i, xmlNode *n)
{
        const struct xml_tree_node *tn = &t->nodes[i];
        FUZZ_CHECK(n && n->type == XML_ELEMENT_NODE, "node %d: libxml2 has no element there", i);
        FUZZ_CHECK(strlen((const char *)n->name) == tn->name_len &&
                       memcmp(n->name, tn->name, tn->name_len) == 0,
                   "node %d: '%.*s', libxml2 '%s'", i, (int)tn->name_len, tn->name, n->name);
        if (tn->first_child < 0) {
                FUZZ_CHECK(first_element(n) == NULL, "leaf %d has elements in libxml2", i);
                char *text = xml_text(n);
                const char *mine = xml_tree_text(t, i);
                FUZZ_CHECK(text && mine && strcmp(text, mine) == 0,
                           "leaf %d <%s>: '%s', libxml2 '%s'", i, n->name, mine ? mine : "(null)",
                           text ? text : "(null)");
                free(text);
                return;
        }
        FUZZ_CHECK(xml_tree_text(t, i) == NULL, "node %d has children and a text", i);
        xmlNode *c = first_element(n);
        for (int k = tn->first_child; k >= 0; k = t->nodes[k].next) {
                FUZZ_CHECK(t->nodes[k].parent == i, "node %d: parent %d, not %d", k,
                           t->nodes[k].parent, i);
                compare_tree(t, k, c);
                c = next_element(c);
        }
        FUZZ_CHECK(c == NULL, "node %d: libxml2 has more elements", i);
}

static void check_tree(const char *data, size_t len, xmlDoc *doc)
{
        struct xml_tree t;
        int r = xml_tree_read(data, len, &t);
        if (r == -EAGAIN || r == -ENOMEM)
                return;
        FUZZ_CHECK(r == 0, "xml_tree_read returned %d", r);
        FUZZ_CHECK(doc, "xml_tree_read took a document libxml2 refuses");
        FUZZ_CHECK(t.n > 0, "xml_tree_read: an empty tree");
        compare_tree(&t, 0, xml_root(doc));
        xml_tree_free(&t);
}

static bool xml_can_carry(const char *s)
{
        size_t n = strlen(s);
        for (size_t i = 0; i < n;) {
                size_t k = util_utf8_seq((const unsigned char *)s + i, n - i);
                if (k == 0)
                        return false;
                if (k == 3 && memcmp(s + i, "\xEF\xBF", 2) == 0 &&
                    ((unsigned char)s[i + 2] == 0xBE || (unsigned char)s[i + 2] == 0xBF))
                        return false; /* U+FFFE, U+FFFF */
                if (k == 1 && (unsigned char)s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' &&
                    s[i] != '\r')
                        return false;
                i += k;
        }
        return true;
}

static void check_escape(const uint8_t *data, size_t size)
{
        char *s = fuzz_strdup(data, size);
        char *esc = NULL;
        int r = xml_escape(s, &esc);
        bool control = false;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r')
                        control = true;
        FUZZ_CHECK((r == -EINVAL) == control, "xml_escape returned %d", r);
        if (r == 0 && xml_can_carry(s)) {
                struct buf b = {0};
                FUZZ_CHECK(buf_printf(&b, "<a>%s</a>", esc) == 0, "out of memory");
                xmlDoc *doc = xml_read(b.data, b.len);
                FUZZ_CHECK(doc, "the escaped text is not well-formed: %s", b.data);
                char *back = xml_text(xml_root(doc));
                FUZZ_CHECK(back && strcmp(back, s) == 0, "escaped and read back: '%s'",
                           back ? back : "(null)");
                free(back);
                xmlFreeDoc(doc);
                buf_free(&b);
        }
        free(esc);
        free(s);
}

static void check_aws_error(const char *data, size_t len)
{
        struct aws_error e;
        memset(&e, 0x55, sizeof(e));
        int r = xml_parse_aws_error(data, len, &e);
        FUZZ_CHECK(r == 0 || r == -EBADMSG, "xml_parse_aws_error returned %d", r);
        if (r == 0) {
                FUZZ_CHECK(memchr(e.code, 0, sizeof(e.code)) &&
                               memchr(e.message, 0, sizeof(e.message)) &&
                               memchr(e.request_id, 0, sizeof(e.request_id)) &&
                               memchr(e.host_id, 0, sizeof(e.host_id)) &&
                               memchr(e.region, 0, sizeof(e.region)) &&
                               memchr(e.endpoint, 0, sizeof(e.endpoint)) &&
                               memchr(e.bucket, 0, sizeof(e.bucket)),
                           "an aws_error field without its NUL");
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *text = (const char *)data;
        xmlDoc *doc = xml_read(text, size);
        check_flat(text, size, doc, "CopyObjectResult", "ETag");
        xmlNode *root = xml_root(doc);
        xmlNode *child = first_element(root);
        if (root && child)
                check_flat(text, size, doc, (const char *)root->name, (const char *)child->name);
        check_tree(text, size, doc);
        check_aws_error(text, size);
        check_escape(data, size);
        xmlFreeDoc(doc);
        return 0;
}
