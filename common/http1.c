// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP/1.1 heads through libhttp-parser; see http1.h. */

#include <http_parser.h>
#include <stdio.h>
#include <strings.h>

#include "http1.h"

typedef struct ParseState {
        HttpHead *head;
        size_t max_headers;
        bool last_was_value;
        int error;
} ParseState;

HttpHead *http_head_free(HttpHead *h) {
        if (!h)
                return NULL;
        for (size_t i = 0; i < h->n_headers; i++) {
                free(h->headers[i].name);
                free(h->headers[i].value);
        }
        free(h->headers);
        free(h->method);
        free(h->url);
        free(h);
        return NULL;
}

ssize_t http_head_end(const char *buf, size_t len, size_t max) {
        const char *e = memmem(buf, MIN(len, max), "\r\n\r\n", 4);
        if (e)
                return e - buf + 4;
        return len >= max ? -E2BIG : 0;
}

static int append(char **s, const char *at, size_t n) {
        size_t old = *s ? strlen(*s) : 0;
        char *t = realloc(*s, old + n + 1);
        if (!t)
                return -ENOMEM;
        memcpy(t + old, at, n);
        t[old + n] = 0;
        *s = t;
        return 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
        ParseState *s = p->data;
        if (append(&s->head->url, at, n) < 0)
                return s->error = -ENOMEM, -1;
        return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
        ParseState *s = p->data;
        HttpHead *h = s->head;

        if (h->n_headers == 0 || s->last_was_value) {
                HttpHeader *t;
                if (h->n_headers >= s->max_headers)
                        return s->error = -E2BIG, -1;
                t = realloc(h->headers, sizeof(HttpHeader) * (h->n_headers + 1));
                if (!t)
                        return s->error = -ENOMEM, -1;
                h->headers = t;
                h->headers[h->n_headers++] = (HttpHeader) {};
                s->last_was_value = false;
        }
        if (append(&h->headers[h->n_headers - 1].name, at, n) < 0)
                return s->error = -ENOMEM, -1;
        return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
        ParseState *s = p->data;
        HttpHead *h = s->head;

        if (h->n_headers == 0)
                return s->error = -EBADMSG, -1;
        s->last_was_value = true;
        if (append(&h->headers[h->n_headers - 1].value, at, n) < 0)
                return s->error = -ENOMEM, -1;
        return 0;
}

static int on_headers_complete(http_parser *p) {
        ParseState *s = p->data;
        HttpHead *h = s->head;

        /* A header with an empty value never got a value callback. */
        for (size_t i = 0; i < h->n_headers; i++)
                if (!h->headers[i].value && !(h->headers[i].value = strdup("")))
                        return s->error = -ENOMEM, -1;
        h->http_major = p->http_major;
        h->http_minor = p->http_minor;
        h->upgrade = p->upgrade;
        if (h->request) {
                h->method = strdup(http_method_str(p->method));
                if (!h->method)
                        return s->error = -ENOMEM, -1;
        } else
                h->status = p->status_code;
        /* Stop here: what follows the head is not ours to parse. */
        return 2;
}

int http_head_parse(const char *buf, size_t len, bool request, size_t max_headers, HttpHead **ret) {
        static const http_parser_settings settings = {
                .on_url = on_url,
                .on_header_field = on_header_field,
                .on_header_value = on_header_value,
                .on_headers_complete = on_headers_complete,
        };
        _cleanup_(http_head_freep) HttpHead *h = NULL;
        ParseState s = { .max_headers = max_headers };
        http_parser p;
        size_t n;

        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->request = request;
        s.head = h;
        http_parser_init(&p, request ? HTTP_REQUEST : HTTP_RESPONSE);
        p.data = &s;
        n = http_parser_execute(&p, &settings, buf, len);
        if (s.error)
                return s.error;
        if (HTTP_PARSER_ERRNO(&p) != HPE_OK && HTTP_PARSER_ERRNO(&p) != HPE_CB_headers_complete)
                return -EBADMSG;
        if (request ? !h->method : h->status == 0)
                return -EBADMSG; /* the head did not complete */
        (void) n;
        *ret = TAKE_PTR(h);
        return 0;
}

const char *http_head_get(const HttpHead *h, const char *name) {
        for (size_t i = 0; i < h->n_headers; i++)
                if (strcasecmp(h->headers[i].name, name) == 0)
                        return h->headers[i].value;
        return NULL;
}

size_t http_head_count(const HttpHead *h, const char *name) {
        size_t n = 0;
        for (size_t i = 0; i < h->n_headers; i++)
                if (strcasecmp(h->headers[i].name, name) == 0)
                        n++;
        return n;
}

bool http_header_has_token(const char *value, const char *token) {
        size_t tl = strlen(token);

        while (value && *value) {
                size_t n;
                value += strspn(value, " \t,");
                n = strcspn(value, ",");
                while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
                        n--;
                if (n == tl && strncasecmp(value, token, tl) == 0)
                        return true;
                value += strcspn(value, ",");
        }
        return false;
}
