/* xml.h - reading AWS XML replies with libxml2, safely, by local names.
 *
 * Every document is parsed from memory with XML_PARSE_NONET, without entity
 * substitution or DTD loading; a document that carries a DTD at all is
 * refused (AWS never sends one, so one is an attack or a wrong server).
 * Elements are matched by local name only, so the namespace a server puts on
 * them (AWS's, an emulator's, or none) does not matter.
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

/* Fills *ret from an error reply.  0, or -EBADMSG when `data` is not an
 * error document (then *ret is left empty). */
int xml_parse_aws_error(const char *data, size_t len, struct aws_error *ret);

/* XML-escapes `s` (& < > " ' and control characters that XML 1.0 cannot
 * carry are refused: -EINVAL).  Result malloc'ed in *ret.  0 or -errno. */
int xml_escape(const char *s, char **ret);
