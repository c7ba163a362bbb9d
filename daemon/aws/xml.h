/* xml.h - reading AWS XML replies with libxml2, safely, by local names.
 *
 * Every document is parsed from memory with XML_PARSE_NONET, without entity
 * substitution or DTD loading; a document that carries a DTD at all is
 * refused (AWS never sends one, so one is an attack or a wrong server).
 * Elements are matched by local name only, so the namespace a server puts on
 * them (AWS's, an emulator's, or none) does not matter.
 *
 * The commonest replies (CopyObject's, ListObjectsV2 pages) are first tried
 * with two small readers that take only a plain subset of XML and hand
 * everything else to libxml2 (xml_flat_child, xml_tree_read): building a
 * libxml2 document per reply was most of the CPU an S3 copy cost us.
 *
 * Pure code: no I/O, no logging.  Thread-safe once xml_init() has run (it
 * is run by the parse functions themselves, through a once-guard). */
#pragma once
#include <libxml/tree.h>
#include <stdbool.h>
#include <stddef.h>

/* An AWS error reply, from any of the shapes the services use:
 *   S3:          <Error><Code/><Message/><RequestId/><HostId/>...</Error>
 *   query APIs:  <ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>
 *   EC2:         <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>
 * Strings are always NUL-terminated (possibly empty) and truncated to fit. */
struct aws_error {
        char code[128];
        char message[512];
        char request_id[128];
        char host_id[256];
        char region[64];    /* S3 redirects: <Region> (AuthorizationHeaderMalformed) */
        char endpoint[256]; /* S3 PermanentRedirect: <Endpoint> */
        char bucket[128];   /* S3: <BucketName> / <Bucket> when given */
};

void xml_init(void);

/* Parses `data`; NULL when it is not well-formed XML, is empty, or has a DTD.
 * Free with xmlFreeDoc(). */
xmlDoc *xml_read(const char *data, size_t len);

/* The root element, or NULL. */
xmlNode *xml_root(xmlDoc *doc);
/* Is `n` an element with this local name? */
bool xml_is(const xmlNode *n, const char *local);
/* First element child of `parent` named `local` (any namespace), or NULL. */
xmlNode *xml_child(const xmlNode *parent, const char *local);
/* Next element sibling after `n` named `local`, or NULL. */
xmlNode *xml_next(const xmlNode *n, const char *local);
/* Follows a "A/B/C" path of local names from `n`'s children; NULL if absent. */
xmlNode *xml_path(const xmlNode *n, const char *path);
/* Text content of `n` (malloc'ed; NULL when n is NULL or on ENOMEM). */
char *xml_text(const xmlNode *n);
/* Text of child `local` into buf (truncated); returns whether it existed. */
bool xml_child_copy(const xmlNode *parent, const char *local, char *buf, size_t size);

/* The fast path for small flat replies such as CopyObject's: `data` is read
 * without libxml2 when it is exactly an optional XML declaration, a root
 * element named `root` (no prefix; attributes allowed) whose content is
 * elements holding only text, and whitespace.  Then the text of the first
 * child named `child` goes into buf (truncated) and the result is 1, or 0
 * when there is no such child.  -EAGAIN means "not that simple shape, or not
 * sure": parse it with xml_read().  Only printable ASCII, tab and LF are
 * accepted, with the predefined and numeric character references, so that
 * every document accepted here means to libxml2 what it means here; the
 * rest (comments, CDATA, DTDs, prefixes, nesting, other encodings) goes to
 * libxml2.  On -EAGAIN the contents of buf are unspecified. */
int xml_flat_child(const char *data, size_t len, const char *root, const char *child, char *buf,
                   size_t size);

/* The same idea for nested replies (ListObjectsV2): xml_tree_read() reads
 * `data` without libxml2 when it is exactly an optional XML declaration and
 * a root element (attributes allowed on it only) whose elements hold either
 * only elements (with whitespace around them) or only text; no prefixes,
 * printable ASCII, tab and LF, the predefined and numeric references.
 * 0, -ENOMEM, or -EAGAIN: not that shape, use xml_read().  Nodes are
 * numbered from 0 (the root) in document order; -1 stands for none. */
struct xml_tree_node {
        const char *name; /* into the document (not NUL-terminated) */
        size_t name_len;
        long text; /* a leaf's text: offset in the tree's arena; -1: has children */
        int parent, first_child, last_child, next;
};
struct xml_tree {
        struct xml_tree_node *nodes;
        size_t n, cap;
        char *arena; /* the leaves' texts, each NUL-terminated */
        size_t arena_len;
};
int xml_tree_read(const char *data, size_t len, struct xml_tree *ret);
void xml_tree_free(struct xml_tree *t);
/* Is node `i` named `local`? (false for -1) */
bool xml_tree_is(const struct xml_tree *t, int i, const char *local);
/* First child of `parent` named `local`, or -1. */
int xml_tree_child(const struct xml_tree *t, int parent, const char *local);
/* Next sibling after `i` named `local`, or -1. */
int xml_tree_next(const struct xml_tree *t, int i, const char *local);
/* The text of leaf `i` (what xml_text would give), or NULL when `i` is -1 or
 * has element children (then its libxml2 content is more than a text). */
const char *xml_tree_text(const struct xml_tree *t, int i);

/* Fills *ret from an error reply.  0, or -EBADMSG when `data` is not an
 * error document (then *ret is left empty). */
int xml_parse_aws_error(const char *data, size_t len, struct aws_error *ret);

/* XML-escapes `s` (& < > " ' and control characters that XML 1.0 cannot
 * carry are refused: -EINVAL).  Result malloc'ed in *ret.  0 or -errno. */
int xml_escape(const char *s, char **ret);
