// SPDX-License-Identifier: LGPL-2.1-or-later
/* See yamljson.h. */

#include <assert.h>
#include <stdlib.h>
#include <yaml.h>

#include "macro.h"
#include "string-util.h"
#include "web.h"
#include "yamljson.h"

typedef struct Reader {
        yaml_parser_t parser;
        yaml_event_t event;
        bool have;
} Reader;

static int next(Reader *r, char **ret_error) {
        if (r->have)
                yaml_event_delete(&r->event);
        r->have = false;
        if (!yaml_parser_parse(&r->parser, &r->event))
                return errorf(ret_error, -EBADMSG, "YAML line %zu: %s", r->parser.problem_mark.line + 1,
                              r->parser.problem ?: "syntax error");
        r->have = true;
        return 0;
}

static json_object *scalar(const yaml_event_t *e) {
        const char *v = (const char *) e->data.scalar.value;
        size_t n = e->data.scalar.length;

        if (e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
                char *end;
                long long i;

                if (streq(v, "true") || streq(v, "True"))
                        return json_object_new_boolean(true);
                if (streq(v, "false") || streq(v, "False"))
                        return json_object_new_boolean(false);
                if (n == 0 || streq(v, "null") || streq(v, "~"))
                        return NULL; /* json-c's null */
                errno = 0;
                i = strtoll(v, &end, 10);
                if (*end == 0 && errno == 0 && (v[0] != '0' || n == 1))
                        return json_object_new_int64(i);
        }
        return json_object_new_string_len(v, (int) n);
}

static int value(Reader *r, unsigned depth, json_object **ret, char **ret_error);

/* The items up to SEQUENCE-END, the current event being SEQUENCE-START. */
static int sequence(Reader *r, unsigned depth, json_object **ret, char **ret_error) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_array();
        int k;

        for (;;) {
                json_object *v = NULL;
                k = next(r, ret_error);
                if (k < 0)
                        return k;
                if (r->event.type == YAML_SEQUENCE_END_EVENT)
                        break;
                k = value(r, depth + 1, &v, ret_error);
                if (k < 0)
                        return k;
                json_object_array_add(o, v);
        }
        *ret = TAKE_PTR(o);
        return 0;
}

/* The pairs up to MAPPING-END, the current event being MAPPING-START. */
static int mapping(Reader *r, unsigned depth, json_object **ret, char **ret_error) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        int k;

        for (;;) {
                _cleanup_free_ char *key = NULL;
                json_object *v = NULL;
                k = next(r, ret_error);
                if (k < 0)
                        return k;
                if (r->event.type == YAML_MAPPING_END_EVENT)
                        break;
                if (r->event.type != YAML_SCALAR_EVENT)
                        return errorf(ret_error, -EBADMSG, "YAML line %zu: a key must be a scalar",
                                      r->event.start_mark.line + 1);
                key = strndup((const char *) r->event.data.scalar.value, r->event.data.scalar.length);
                if (!key)
                        return -ENOMEM;
                k = next(r, ret_error);
                if (k >= 0)
                        k = value(r, depth + 1, &v, ret_error);
                if (k < 0)
                        return k;
                json_object_object_add(o, key, v);
        }
        *ret = TAKE_PTR(o);
        return 0;
}

/* The value that starts at the current event. */
static int value(Reader *r, unsigned depth, json_object **ret, char **ret_error) {
        if (depth > YAML_MAX_DEPTH)
                return errorf(ret_error, -E2BIG, "YAML nested deeper than %d levels", YAML_MAX_DEPTH);
        switch (r->event.type) {
        case YAML_SCALAR_EVENT:
                *ret = scalar(&r->event);
                return 0;
        case YAML_ALIAS_EVENT:
                return errorf(ret_error, -EOPNOTSUPP, "YAML line %zu: aliases are not supported",
                              r->event.start_mark.line + 1);
        case YAML_SEQUENCE_START_EVENT:
                return sequence(r, depth, ret, ret_error);
        case YAML_MAPPING_START_EVENT:
                return mapping(r, depth, ret, ret_error);
        default:
                return errorf(ret_error, -EBADMSG, "YAML line %zu: unexpected event", r->event.start_mark.line + 1);
        }
}

int yaml_to_json(const char *data, size_t size, json_object **ret, char **ret_error) {
        Reader r = {};
        _cleanup_(json_object_putp) json_object *o = NULL;
        int k;

        assert(data || size == 0);
        assert(ret);

        if (!yaml_parser_initialize(&r.parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&r.parser, (const unsigned char *) data, size);
        /* STREAM-START, DOCUMENT-START, then the value */
        k = next(&r, ret_error);
        if (k >= 0)
                k = next(&r, ret_error);
        if (k >= 0 && r.event.type == YAML_STREAM_END_EVENT)
                k = errorf(ret_error, -ENODATA, "The YAML document is empty");
        else if (k >= 0 && r.event.type != YAML_DOCUMENT_START_EVENT)
                k = errorf(ret_error, -EBADMSG, "Not a YAML document");
        if (k >= 0)
                k = next(&r, ret_error);
        if (k >= 0)
                k = value(&r, 0, &o, ret_error);
        if (r.have)
                yaml_event_delete(&r.event);
        yaml_parser_delete(&r.parser);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(o);
        return 0;
}
