// SPDX-License-Identifier: LGPL-2.1-or-later
/* XML to json-c; see xmljson.h. A recursive descent over the bytes, at most XML_MAX_DEPTH
 * elements deep; every error names the byte offset. */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "string-util.h"
#include "web.h"
#include "xmljson.h"

typedef struct Parser {
        const char *p, *start, *end;
        char **error;
} Parser;

static int fail(Parser *x, const char *what) {
        return errorf(x->error, -EBADMSG, "XML answer, at byte %zu: %s", (size_t) (x->p - x->start), what);
}

static bool at(const Parser *x, const char *s) {
        size_t n = strlen(s);
        return (size_t) (x->end - x->p) >= n && memcmp(x->p, s, n) == 0;
}

static void skip_space(Parser *x) {
        while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\r' || *x->p == '\n'))
                x->p++;
}

/* Moves past the next occurrence of s; false when there is none. */
static bool skip_past(Parser *x, const char *s) {
        size_t n = strlen(s);
        for (const char *q = x->p; (size_t) (x->end - q) >= n; q++)
                if (memcmp(q, s, n) == 0) {
                        x->p = q + n;
                        return true;
                }
        return false;
}

static bool name_char(char c, bool first) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':' ||
               (!first && ((c >= '0' && c <= '9') || c == '-' || c == '.'));
}

static int parse_name(Parser *x, const char **ret, size_t *ret_n) {
        const char *s = x->p;
        if (x->p >= x->end || !name_char(*x->p, true))
                return fail(x, "an element name was expected");
        while (x->p < x->end && name_char(*x->p, false))
                x->p++;
        *ret = s;
        *ret_n = (size_t) (x->p - s);
        return 0;
}

static void put_utf8(FILE *f, uint32_t c) {
        if (c < 0x80)
                fputc((int) c, f);
        else if (c < 0x800) {
                fputc((int) (0xc0 | (c >> 6)), f);
                fputc((int) (0x80 | (c & 0x3f)), f);
        } else if (c < 0x10000) {
                fputc((int) (0xe0 | (c >> 12)), f);
                fputc((int) (0x80 | ((c >> 6) & 0x3f)), f);
                fputc((int) (0x80 | (c & 0x3f)), f);
        } else {
                fputc((int) (0xf0 | (c >> 18)), f);
                fputc((int) (0x80 | ((c >> 12) & 0x3f)), f);
                fputc((int) (0x80 | ((c >> 6) & 0x3f)), f);
                fputc((int) (0x80 | (c & 0x3f)), f);
        }
}

/* An entity or character reference at x->p ('&'), decoded into f. */
static int parse_reference(Parser *x, FILE *f) {
        static const struct { const char *name; char c; } named[] = {
                { "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' }, { "&quot;", '"' }, { "&apos;", '\'' },
        };
        uint32_t c = 0;
        bool hex;
        const char *q;

        for (size_t i = 0; i < ELEMENTSOF(named); i++)
                if (at(x, named[i].name)) {
                        fputc(named[i].c, f);
                        x->p += strlen(named[i].name);
                        return 0;
                }
        if (!at(x, "&#"))
                return fail(x, "an unknown entity");
        hex = at(x, "&#x");
        q = x->p + (hex ? 3 : 2);
        if (q >= x->end || *q == ';')
                return fail(x, "an empty character reference");
        for (; q < x->end && *q != ';'; q++) {
                int d = *q >= '0' && *q <= '9' ? *q - '0'
                        : hex && *q >= 'a' && *q <= 'f' ? *q - 'a' + 10
                        : hex && *q >= 'A' && *q <= 'F' ? *q - 'A' + 10 : -1;
                if (d < 0)
                        return fail(x, "a character reference that is not a number");
                c = c * (hex ? 16 : 10) + (uint32_t) d;
                if (c > 0x10ffff)
                        return fail(x, "a character reference beyond Unicode");
        }
        if (q >= x->end)
                return fail(x, "a character reference without its ';'");
        if (c == 0 || (c >= 0xd800 && c <= 0xdfff))
                return fail(x, "a character reference to no character");
        put_utf8(f, c);
        x->p = q + 1;
        return 0;
}

/* The element at x->p ('<' then its name) into *ret_value; its name into *ret_name. */
static int parse_element(Parser *x, unsigned depth, json_object **ret_value, char **ret_name) {
        _cleanup_(json_object_putp) json_object *obj = NULL, *arr = NULL;
        _cleanup_free_ char *text = NULL, *name = NULL;
        const char *n;
        size_t nn, text_len = 0, children = 0;
        bool all_items = true, all_plural = true;
        FILE *t;
        int r;

        if (depth >= XML_MAX_DEPTH)
                return fail(x, "elements nested too deep");
        x->p++; /* '<' */
        r = parse_name(x, &n, &nn);
        if (r < 0)
                return r;
        name = strndup(n, nn);
        if (!name)
                return -ENOMEM;
        /* attributes: skipped, their quoted values may hold '>' */
        for (;;) {
                if (x->p >= x->end)
                        return fail(x, "an element's start tag does not end");
                if (*x->p == '"' || *x->p == '\'') {
                        const char *close = memchr(x->p + 1, *x->p, (size_t) (x->end - x->p - 1));
                        if (!close)
                                return fail(x, "an attribute's value does not end");
                        x->p = close + 1;
                        continue;
                }
                if (at(x, "/>")) {
                        x->p += 2;
                        *ret_value = json_object_new_string("");
                        *ret_name = TAKE_PTR(name);
                        return *ret_value ? 0 : -ENOMEM;
                }
                if (*x->p == '<')
                        return fail(x, "'<' in a start tag");
                if (*x->p++ == '>')
                        break;
        }
        obj = json_object_new_object();
        arr = json_object_new_array();
        t = open_memstream(&text, &text_len);
        if (!obj || !arr || !t) {
                if (t)
                        fclose(t);
                return -ENOMEM;
        }
        for (r = 0; r >= 0;) {
                if (x->p >= x->end) {
                        r = fail(x, "an element does not end");
                        break;
                }
                if (at(x, "</")) {
                        const char *en;
                        size_t enn;
                        x->p += 2;
                        r = parse_name(x, &en, &enn);
                        if (r < 0)
                                break;
                        skip_space(x);
                        if (enn != nn || memcmp(en, n, nn) != 0 || x->p >= x->end || *x->p != '>') {
                                r = fail(x, "an end tag that does not match its start tag");
                                break;
                        }
                        x->p++;
                        break;
                }
                if (at(x, "<!--")) {
                        if (!skip_past(x, "-->"))
                                r = fail(x, "a comment does not end");
                        continue;
                }
                if (at(x, "<![CDATA[")) {
                        const char *s = x->p + 9;
                        x->p = s;
                        if (!skip_past(x, "]]>")) {
                                r = fail(x, "a CDATA section does not end");
                                break;
                        }
                        fwrite(s, 1, (size_t) (x->p - 3 - s), t);
                        continue;
                }
                if (at(x, "<?")) {
                        if (!skip_past(x, "?>"))
                                r = fail(x, "a processing instruction does not end");
                        continue;
                }
                if (at(x, "<!")) {
                        r = fail(x, "a declaration inside an element");
                        break;
                }
                if (*x->p == '<') {
                        json_object *v = NULL;
                        _cleanup_free_ char *cn = NULL;
                        r = parse_element(x, depth + 1, &v, &cn);
                        if (r < 0)
                                break;
                        children++;
                        all_items = all_items && streq(cn, "item");
                        /* <Things><Thing/>...</Things>, as Route 53 writes lists */
                        all_plural = all_plural && nn == strlen(cn) + 1 && n[nn - 1] == 's' &&
                                     strncmp(n, cn, nn - 1) == 0;
                        /* both shapes are kept until the end says which one it is */
                        json_object_array_add(arr, json_object_get(v));
                        json_object_object_add(obj, cn, v);
                        continue;
                }
                if (*x->p == '&') {
                        r = parse_reference(x, t);
                        continue;
                }
                fputc(*x->p++, t);
        }
        if (fclose(t) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0)
                return r;
        if (children == 0)
                *ret_value = json_object_new_string_len(text ?: "", (int) MIN(text_len, (size_t) INT32_MAX));
        else
                *ret_value = json_object_get(all_items || all_plural ? arr : obj);
        *ret_name = TAKE_PTR(name);
        return *ret_value ? 0 : -ENOMEM;
}

/* Whitespace, comments and processing instructions (the XML declaration among them). */
static int skip_misc(Parser *x) {
        for (;;) {
                skip_space(x);
                if (at(x, "<?")) {
                        if (!skip_past(x, "?>"))
                                return fail(x, "a processing instruction does not end");
                } else if (at(x, "<!--")) {
                        if (!skip_past(x, "-->"))
                                return fail(x, "a comment does not end");
                } else
                        return 0;
        }
}

int xml_to_json(const char *data, size_t size, json_object **ret, char **ret_error) {
        Parser x = { .p = data, .start = data, .end = data + size, .error = ret_error };
        _cleanup_(json_object_putp) json_object *root = NULL, *v = NULL;
        _cleanup_free_ char *name = NULL;
        int r;

        if (!data)
                return errorf(ret_error, -EBADMSG, "XML answer: empty");
        if (size >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
                x.p += 3;
        r = skip_misc(&x);
        if (r < 0)
                return r;
        if (at(&x, "<!"))
                return fail(&x, "a DOCTYPE (not taken)");
        if (x.p >= x.end || *x.p != '<')
                return fail(&x, "no element");
        r = parse_element(&x, 0, &v, &name);
        if (r < 0)
                return r;
        r = skip_misc(&x);
        if (r < 0)
                return r;
        if (x.p != x.end)
                return fail(&x, "more after the root element");
        root = json_object_new_object();
        if (!root)
                return -ENOMEM;
        json_object_object_add(root, name, TAKE_PTR(v));
        *ret = TAKE_PTR(root);
        return 0;
}
