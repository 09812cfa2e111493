// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP/1.1 messages through libhttp-parser; see http1.h. */

#include <stdio.h>
#include <strings.h>

#include "http1.h"

HttpHead *http_head_new(bool request) {
        HttpHead *h = calloc(1, sizeof(*h));
        if (!h)
                return NULL;
        h->request = request;
        h->content_length = -1;
        return h;
}

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
        free(h->authority);
        free(h->scheme);
        free(h->protocol);
        free(h);
        return NULL;
}

int http_head_add(HttpHead *h, const char *name, size_t name_len, const char *value, size_t value_len) {
        HttpHeader *t;

        if (memchr(name, 0, name_len) || memchr(value, 0, value_len))
                return -EBADMSG;
        t = realloc(h->headers, sizeof(HttpHeader) * (h->n_headers + 1));
        if (!t)
                return -ENOMEM;
        h->headers = t;
        t = &h->headers[h->n_headers];
        t->name = strndup(name, name_len);
        t->value = strndup(value, value_len);
        if (!t->name || !t->value) {
                free(t->name);
                free(t->value);
                return -ENOMEM;
        }
        h->n_headers++;
        h->bytes += name_len + value_len;
        return 0;
}

ssize_t http_head_end(const char *buf, size_t len, size_t max) {
        const char *e = memmem(buf, MIN(len, max), "\r\n\r\n", 4);
        if (e)
                return e - buf + 4;
        return len >= max ? -E2BIG : 0;
}

/* ---- the streaming parser ---- */

static int append(char **s, const char *at, size_t n) {
        size_t old = *s ? strlen(*s) : 0;
        char *t;

        if (memchr(at, 0, n))
                return -EBADMSG;
        t = realloc(*s, old + n + 1);
        if (!t)
                return -ENOMEM;
        memcpy(t + old, at, n);
        t[old + n] = 0;
        *s = t;
        return 0;
}

static int fail(HttpMsgParser *mp, int error) {
        mp->error = error;
        return -1;
}

/* Trailers after a chunked body arrive through the same header callbacks. */
static HttpHead *current(HttpMsgParser *mp) {
        if (!(mp->p.flags & F_TRAILING))
                return mp->head;
        if (!mp->trailers) {
                mp->trailers = http_head_new(mp->request);
                mp->last_was_value = false;
        }
        return mp->trailers;
}

static int count(HttpMsgParser *mp, HttpHead *h, size_t n) {
        h->bytes += n;
        return h->bytes > mp->max_bytes ? fail(mp, -E2BIG) : 0;
}

static int on_message_begin(http_parser *p) {
        HttpMsgParser *mp = p->data;
        mp->started = true;
        mp->head = http_head_free(mp->head);
        mp->trailers = http_head_free(mp->trailers);
        mp->head = http_head_new(mp->request);
        mp->last_was_value = false;
        return mp->head ? 0 : fail(mp, -ENOMEM);
}

static int on_url(http_parser *p, const char *at, size_t n) {
        HttpMsgParser *mp = p->data;
        int r;

        if (count(mp, mp->head, n) < 0)
                return -1;
        r = append(&mp->head->url, at, n);
        return r < 0 ? fail(mp, r) : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
        HttpMsgParser *mp = p->data;
        HttpHead *h = current(mp);
        int r;

        if (!h)
                return fail(mp, -ENOMEM);
        if (count(mp, h, n) < 0)
                return -1;
        if (h->n_headers == 0 || mp->last_was_value) {
                HttpHeader *t;
                if (h->n_headers >= mp->max_headers)
                        return fail(mp, -EMLINK);
                t = realloc(h->headers, sizeof(HttpHeader) * (h->n_headers + 1));
                if (!t)
                        return fail(mp, -ENOMEM);
                h->headers = t;
                h->headers[h->n_headers++] = (HttpHeader) {};
                mp->last_was_value = false;
        }
        r = append(&h->headers[h->n_headers - 1].name, at, n);
        return r < 0 ? fail(mp, r) : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
        HttpMsgParser *mp = p->data;
        HttpHead *h = current(mp);
        int r;

        if (!h)
                return fail(mp, -ENOMEM);
        if (h->n_headers == 0)
                return fail(mp, -EBADMSG);
        if (count(mp, h, n) < 0)
                return -1;
        mp->last_was_value = true;
        r = append(&h->headers[h->n_headers - 1].value, at, n);
        return r < 0 ? fail(mp, r) : 0;
}

/* A header with an empty value never got a value callback. */
static int fill_empty_values(HttpHead *h) {
        for (size_t i = 0; h && i < h->n_headers; i++)
                if (!h->headers[i].value && !(h->headers[i].value = strdup("")))
                        return -ENOMEM;
        return 0;
}

static int on_headers_complete(http_parser *p) {
        HttpMsgParser *mp = p->data;
        HttpHead *h = mp->head;
        int r;

        if (fill_empty_values(h) < 0)
                return fail(mp, -ENOMEM);
        h->http_major = p->http_major;
        h->http_minor = p->http_minor;
        h->upgrade = p->upgrade;
        h->keep_alive = http_should_keep_alive(p);
        h->chunked = p->flags & F_CHUNKED;
        h->content_length = (p->flags & F_CONTENTLENGTH) ? (int64_t) p->content_length : -1;
        if (h->request) {
                h->method = strdup(http_method_str(p->method));
                if (!h->method)
                        return fail(mp, -ENOMEM);
        } else
                h->status = p->status_code;
        if (!mp->cb || !mp->cb->head) {
                mp->stopped = true;
                return 2;
        }
        r = mp->cb->head(mp->userdata, TAKE_PTR(mp->head));
        if (r < 0)
                return fail(mp, r);
        if (r == 2)
                mp->stopped = true;
        return r;
}

static int on_body(http_parser *p, const char *at, size_t n) {
        HttpMsgParser *mp = p->data;
        int r = mp->cb && mp->cb->body ? mp->cb->body(mp->userdata, (const uint8_t *) at, n) : 0;
        return r < 0 ? fail(mp, r) : 0;
}

static int on_message_complete(http_parser *p) {
        HttpMsgParser *mp = p->data;
        int r;

        if (mp->stopped)
                return 0;
        mp->complete = true;
        if (fill_empty_values(mp->trailers) < 0)
                return fail(mp, -ENOMEM);
        http_parser_pause(p, 1);
        r = mp->cb && mp->cb->complete ? mp->cb->complete(mp->userdata, TAKE_PTR(mp->trailers)) : 0;
        if (r < 0) {
                http_parser_pause(p, 0);
                return fail(mp, r);
        }
        return 0;
}

static const http_parser_settings msg_settings = {
        .on_message_begin = on_message_begin,
        .on_url = on_url,
        .on_header_field = on_header_field,
        .on_header_value = on_header_value,
        .on_headers_complete = on_headers_complete,
        .on_body = on_body,
        .on_message_complete = on_message_complete,
};

void http_msg_parser_init(HttpMsgParser *mp, bool request, size_t max_bytes, size_t max_headers,
                          const HttpMsgCallbacks *cb, void *userdata) {
        *mp = (HttpMsgParser) {
                .cb = cb,
                .userdata = userdata,
                .max_bytes = max_bytes,
                .max_headers = max_headers,
                .request = request,
        };
        http_parser_init(&mp->p, request ? HTTP_REQUEST : HTTP_RESPONSE);
        mp->p.data = mp;
}

void http_msg_parser_done(HttpMsgParser *mp) {
        mp->head = http_head_free(mp->head);
        mp->trailers = http_head_free(mp->trailers);
}

void http_msg_parser_next(HttpMsgParser *mp) {
        mp->complete = false;
        mp->started = false;
        http_parser_pause(&mp->p, 0);
}

bool http_msg_parser_idle(const HttpMsgParser *mp) {
        return !mp->started;
}

ssize_t http_msg_parser_feed(HttpMsgParser *mp, const uint8_t *p, size_t n) {
        enum http_errno e;
        size_t used;

        if (mp->error)
                return mp->error;
        if (mp->stopped || mp->complete)
                return 0;
        used = http_parser_execute(&mp->p, &msg_settings, (const char *) p, n);
        if (mp->error)
                return mp->error;
        e = HTTP_PARSER_ERRNO(&mp->p);
        if (e == HPE_PAUSED || e == HPE_OK || (e == HPE_CB_headers_complete && mp->stopped))
                return (ssize_t) used;
        if (e == HPE_HEADER_OVERFLOW)
                return mp->error = -E2BIG;
        if (n == 0 || e == HPE_INVALID_EOF_STATE)
                return mp->error = -EPIPE;
        return mp->error = -EBADMSG;
}

int http_head_parse(const char *buf, size_t len, bool request, size_t max_headers, HttpHead **ret) {
        HttpMsgParser mp;
        ssize_t r;

        http_msg_parser_init(&mp, request, SIZE_MAX, max_headers, NULL, NULL);
        r = http_msg_parser_feed(&mp, (const uint8_t *) buf, len);
        if (r >= 0 && (!mp.stopped || !mp.head))
                r = -EBADMSG; /* the head did not complete */
        if (r < 0) {
                http_msg_parser_done(&mp);
                return r == -EMLINK ? -E2BIG : (int) r;
        }
        *ret = TAKE_PTR(mp.head);
        http_msg_parser_done(&mp);
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

bool http_header_is_hop_by_hop(const HttpHead *h, const char *name) {
        static const char *const fixed[] = {
                "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Transfer-Encoding", "Upgrade", "Host",
        };

        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                if (strcasecmp(name, fixed[i]) == 0)
                        return true;
        for (size_t i = 0; i < h->n_headers; i++)
                if (strcasecmp(h->headers[i].name, "Connection") == 0 &&
                    http_header_has_token(h->headers[i].value, name))
                        return true;
        return false;
}

const char *http_status_reason(unsigned status) {
        static const struct { unsigned short code; const char *text; } table[] = {
                { 100, "Continue" }, { 101, "Switching Protocols" }, { 200, "OK" }, { 201, "Created" },
                { 202, "Accepted" }, { 203, "Non-Authoritative Information" }, { 204, "No Content" },
                { 205, "Reset Content" }, { 206, "Partial Content" }, { 207, "Multi-Status" },
                { 300, "Multiple Choices" }, { 301, "Moved Permanently" }, { 302, "Found" }, { 303, "See Other" },
                { 304, "Not Modified" }, { 307, "Temporary Redirect" }, { 308, "Permanent Redirect" },
                { 400, "Bad Request" }, { 401, "Unauthorized" }, { 403, "Forbidden" }, { 404, "Not Found" },
                { 405, "Method Not Allowed" }, { 406, "Not Acceptable" }, { 408, "Request Timeout" },
                { 409, "Conflict" }, { 410, "Gone" }, { 411, "Length Required" }, { 412, "Precondition Failed" },
                { 413, "Content Too Large" }, { 414, "URI Too Long" }, { 415, "Unsupported Media Type" },
                { 416, "Range Not Satisfiable" }, { 417, "Expectation Failed" }, { 421, "Misdirected Request" },
                { 422, "Unprocessable Content" }, { 425, "Too Early" }, { 426, "Upgrade Required" },
                { 428, "Precondition Required" }, { 429, "Too Many Requests" },
                { 431, "Request Header Fields Too Large" }, { 500, "Internal Server Error" },
                { 501, "Not Implemented" }, { 502, "Bad Gateway" }, { 503, "Service Unavailable" },
                { 504, "Gateway Timeout" }, { 505, "HTTP Version Not Supported" },
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (table[i].code == status)
                        return table[i].text;
        return "Unknown";
}
