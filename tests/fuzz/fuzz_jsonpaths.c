/* fuzz_jsonpaths.c - JSONPaths files (daemon/load/jsonpaths.h) evaluated
 * against records parsed with jv (daemon/load/jv.h).
 *
 * Input: the text of a JSONPaths file, a NUL byte, then JSON records (one
 * value after another, as in a log file).  Checked besides memory safety: a
 * parsed file has a text for every path; a failure says why; the member hint
 * is only a speed-up (evaluating with the hint of the previous record gives
 * the value evaluating without it gives). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "load/jsonpaths.h"

#define HINTS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *text, *records;
        size_t text_len, records_len;
        fuzz_split2(data, size, &text, &text_len, &records, &records_len);
        struct jsonpaths *p = NULL;
        char err[256] = "";
        int r = jsonpaths_parse(text, text_len, &p, err, sizeof(err));
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL || r == -ENOMEM, "jsonpaths_parse returned %d", r);
                FUZZ_CHECK(p == NULL && err[0], "a failed parse without a message");
                goto out;
        }
        if (r == 1) { /* no "jsonpaths" key: COPY uses 'auto' (no paths) */
                FUZZ_CHECK(p == NULL, "'auto' with paths");
                goto out;
        }
        size_t n = jsonpaths_count(p);
        for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(jsonpaths_text(p, i) != NULL, "path %zu has no text", i);
        struct jv_doc *doc = jv_doc_new();
        FUZZ_CHECK(doc, "out of memory");
        uint32_t hints[HINTS] = {0};
        size_t pos = 0;
        while (pos < records_len) {
                struct jv_result res;
                const struct jv *root = jv_parse(doc, records + pos, records_len - pos, &res);
                if (!root)
                        break;
                FUZZ_CHECK(res.pos > 0 && res.pos <= records_len - pos, "jv_parse consumed %zu",
                           res.pos);
                pos += res.pos;
                for (size_t i = 0; i < n; i++) {
                        const struct jv *plain = jsonpaths_eval(p, i, root, NULL);
                        const struct jv *hinted =
                            jsonpaths_eval(p, i, root, i < HINTS ? &hints[i] : NULL);
                        FUZZ_CHECK(plain == hinted, "path %zu ('%s'): the hint changed the value",
                                   i, jsonpaths_text(p, i));
                }
        }
        jv_doc_free(doc);
        jsonpaths_free(p);
out:
        free(text);
        free(records);
        return 0;
}
