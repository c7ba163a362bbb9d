/* step.c - what a step reports (outputs, events, checks, load errors, the
 * publish), kept on its step_run for the engine, and ending a step.  See
 * step.h; the table of pipelines is in pipelines/pipelines.c. */
#include "step.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "util.h"

void step_output(struct step_run *r, const char *key, const char *value)
{
        if (!r->outputs)
                r->outputs = json_object();
        json_object_set_new(r->outputs, key, proto_json_text(value ? value : ""));
}

void step_progress_text(struct step_run *r, const char *fmt, ...)
{
        r->progress_text[0] = '\0';
        if (!fmt)
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->progress_text, sizeof(r->progress_text), fmt, ap);
        va_end(ap);
        util_utf8_trim(r->progress_text);
}

void step_progress_total(struct step_run *r, uint64_t objects, uint64_t bytes)
{
        r->objects_total = objects;
        r->bytes_total = bytes;
}

void step_event(struct step_run *r, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        util_utf8_trim(msg);
        if (!r->events)
                r->events = json_array();
        json_array_append_new(r->events, proto_json_text(msg));
}

void step_check_result(struct step_run *r, const char *name, bool ok, const char *detail)
{
        if (!r->checks)
                r->checks = json_array();
        json_array_append_new(r->checks, json_pack("{s:o, s:b, s:o}", "name",
                                                   proto_json_text(name), "ok", ok, "detail",
                                                   proto_json_text(detail ? detail : "")));
}

void step_load_error(struct step_run *r, const struct load_error *e)
{
        if (!r->load_errors)
                r->load_errors = json_array();
        if (json_array_size(r->load_errors) >= STEP_LOAD_ERRORS_MAX)
                return;
        json_array_append_new(
            r->load_errors,
            json_pack("{s:o, s:I, s:o, s:o, s:I, s:o, s:o, s:i, s:o}", "filename",
                      proto_json_text(e->filename), "line_number", (json_int_t)e->line_number,
                      "colname", proto_json_text(e->colname), "type", proto_json_text(e->type),
                      "position", (json_int_t)e->position, "raw_line", proto_json_text(e->raw_line),
                      "raw_field_value", proto_json_text(e->raw_field_value), "err_code",
                      e->err_code, "err_reason", proto_json_text(e->err_reason)));
}

void step_published(struct step_run *r, const char *target, const char *mode,
                    struct objlist *objects)
{
        json_decref(r->published);
        r->published = json_pack("{s:s, s:s}", "target", target, "mode", mode);
        objlist_free(&r->published_objects);
        if (objects)
                objlist_move(&r->published_objects, objects);
}

void step_done(struct step_run *r, int result, bool transient, const char *fmt, ...)
{
        r->result = result;
        r->transient = transient;
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(r->error, sizeof(r->error), fmt, ap);
                va_end(ap);
                util_utf8_trim(r->error); /* the cut may split a character */
        }
        r->done(r);
}
