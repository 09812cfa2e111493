// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP/1.1 messages through libhttp-parser; see http1.h. */

#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <strings.h>

#include "http1.h"
#include "macro.h"

typedef struct HttpHeadBlock {
        struct HttpHeadBlock *next;
        char data[];
} HttpHeadBlock;

HttpHead *http_head_new(bool request) {
        HttpHead *h = malloc(sizeof(*h));
        if (!h)
                return NULL;
        /* the inline blocks need no zeroing */
        memset(h, 0, offsetof(HttpHead, inline_headers));
        h->request = request;
        h->content_length = -1;
        h->headers = h->inline_headers;
        h->n_headers_max = ELEMENTSOF(h->inline_headers);
        h->arena = h->inline_arena;
        h->arena_left = h->block_size = sizeof(h->inline_arena);
        return h;
}

HttpHead *http_head_free(HttpHead *h) {
        if (!h)
                return NULL;
        while (h->blocks) {
                HttpHeadBlock *b = h->blocks;
                h->blocks = b->next;
                free(b);
        }
        if (h->headers != h->inline_headers)
                free(h->headers);
        free(h);
        return NULL;
}

/* n bytes of the arena; a new block, twice the last one's size or n, when they do not fit. */
static char *arena_alloc(HttpHead *h, size_t n) {
        char *p;

        if (n > h->arena_left) {
                size_t size = MAX(h->block_size * 2, n);
                HttpHeadBlock *b;

                if (size > SIZE_MAX / 2 - sizeof(*b))
                        return NULL;
                b = malloc(sizeof(*b) + size);
                if (!b)
                        return NULL;
                b->next = h->blocks;
                h->blocks = b;
                h->arena = b->data;
                h->arena_left = h->block_size = size;
        }
        p = h->arena;
        h->arena += n;
        h->arena_left -= n;
        return p;
}

/* Appends at[0..n) to *s, a string of h's arena or NULL. The streaming parser's callbacks see a
 * field in pieces when it arrives split across reads: the last string of the arena grows in
 * place; otherwise it moves, into a block at least twice as large as the last, so that a head
 * fed byte by byte still takes a bounded, linear amount of memory. */
static int head_append(HttpHead *h, char **s, const char *at, size_t n) {
        size_t old = *s ? strlen(*s) : 0;
        char *t;

        if (memchr(at, 0, n))
                return -EBADMSG;
        if (*s && *s + old + 1 == h->arena && n <= h->arena_left) {
                t = *s;
                h->arena += n;
                h->arena_left -= n;
        } else {
                if (old + n + 1 < n)
                        return -ENOMEM;
                t = arena_alloc(h, old + n + 1);
                if (!t)
                        return -ENOMEM;
                if (old > 0)
                        memcpy(t, *s, old);
        }
        memcpy(t + old, at, n);
        t[old + n] = 0;
        *s = t;
        return 0;
}

char *http_head_strndup(HttpHead *h, const char *s, size_t n) {
        char *t;

        assert(h);
        assert(s || n == 0);

        t = n < SIZE_MAX ? arena_alloc(h, n + 1) : NULL;
        if (!t)
                return NULL;
        memcpy(t, s, n);
        t[n] = 0;
        return t;
}

/* Room for one more header (the array doubles; it starts inline). */
static HttpHeader *head_new_header(HttpHead *h) {
        if (h->n_headers == h->n_headers_max) {
                size_t max = h->n_headers_max * 2;
                HttpHeader *t;

                if (max > SIZE_MAX / sizeof(HttpHeader))
                        return NULL;
                if (h->headers == h->inline_headers) {
                        t = malloc(max * sizeof(HttpHeader));
                        if (t)
                                memcpy(t, h->headers, h->n_headers * sizeof(HttpHeader));
                } else
                        t = realloc(h->headers, max * sizeof(HttpHeader));
                if (!t)
                        return NULL;
                h->headers = t;
                h->n_headers_max = max;
        }
        h->headers[h->n_headers] = (HttpHeader) {};
        return &h->headers[h->n_headers++];
}

int http_head_add(HttpHead *h, const char *name, size_t name_len, const char *value, size_t value_len) {
        char *n, *v;
        HttpHeader *t;

        assert(h);
        assert(name || name_len == 0);
        assert(value || value_len == 0);

        if (memchr(name, 0, name_len) || memchr(value, 0, value_len))
                return -EBADMSG;
        n = http_head_strndup(h, name, name_len);
        v = n ? http_head_strndup(h, value, value_len) : NULL;
        t = v ? head_new_header(h) : NULL;
        if (!t)
                return -ENOMEM;
        *t = (HttpHeader) { n, v };
        h->bytes += name_len + value_len;
        return 0;
}

int http_head_add_h2(HttpHead *h, const char *name, size_t name_len, const char *value, size_t value_len) {
        char **dst = NULL;

        assert(h);
        assert(name || name_len == 0);
        assert(value || value_len == 0);

        if (name_len == 0 || name[0] != ':')
                return http_head_add(h, name, name_len, value, value_len);
        if (name_len == 7 && memcmp(name, ":method", 7) == 0)
                dst = &h->method;
        else if (name_len == 5 && memcmp(name, ":path", 5) == 0)
                dst = &h->url;
        else if (name_len == 10 && memcmp(name, ":authority", 10) == 0)
                dst = &h->authority;
        else if (name_len == 7 && memcmp(name, ":scheme", 7) == 0)
                dst = &h->scheme;
        else if (name_len == 9 && memcmp(name, ":protocol", 9) == 0)
                dst = &h->protocol;
        else if (name_len == 7 && memcmp(name, ":status", 7) == 0) {
                h->status = value_len == 3 && isdigit(value[0]) && isdigit(value[1]) && isdigit(value[2])
                                    ? (unsigned) ((value[0] - '0') * 100 + (value[1] - '0') * 10 + value[2] - '0')
                                    : 0;
                return 0;
        }
        if (!dst || *dst)
                return 0;
        if (memchr(value, 0, value_len))
                return -EBADMSG;
        *dst = http_head_strndup(h, value, value_len);
        return *dst ? 0 : -ENOMEM;
}

ssize_t http_head_end(const char *buf, size_t len, size_t max) {
        const char *e = memmem(buf, MIN(len, max), "\r\n\r\n", 4);
        if (e)
                return e - buf + 4;
        return len >= max ? -E2BIG : 0;
}

/* ---- the streaming parser ---- */

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

/* Appends a piece of a field to *s, a string of h's arena. */
static int append(HttpMsgParser *mp, HttpHead *h, char **s, const char *at, size_t n) {
        int r = head_append(h, s, at, n);
        return r < 0 ? fail(mp, r) : 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
        HttpMsgParser *mp = p->data;

        if (count(mp, mp->head, n) < 0)
                return -1;
        return append(mp, mp->head, &mp->head->url, at, n);
}

/* A piece of a header's name or of its value: the parser gives them in turn, a name
 * after a value starts the next header. */
static int on_header_piece(http_parser *p, const char *at, size_t n, bool value) {
        HttpMsgParser *mp = p->data;
        HttpHead *h = current(mp);
        HttpHeader *last;

        if (!h)
                return fail(mp, -ENOMEM);
        if (value && h->n_headers == 0)
                return fail(mp, -EBADMSG);
        if (count(mp, h, n) < 0)
                return -1;
        if (!value && (h->n_headers == 0 || mp->last_was_value)) {
                if (h->n_headers >= mp->max_headers)
                        return fail(mp, -EMLINK);
                if (!head_new_header(h))
                        return fail(mp, -ENOMEM);
        }
        mp->last_was_value = value;
        last = &h->headers[h->n_headers - 1];
        return append(mp, h, value ? &last->value : &last->name, at, n);
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
        return on_header_piece(p, at, n, false);
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
        return on_header_piece(p, at, n, true);
}

/* A header with an empty value never got a value callback. */
static int fill_empty_values(HttpHead *h) {
        for (size_t i = 0; h && i < h->n_headers; i++)
                if (!h->headers[i].value && !(h->headers[i].value = http_head_strndup(h, "", 0)))
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
                h->method = http_head_strdup(h, http_method_str(p->method));
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
        assert(mp);

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
        assert(mp);

        mp->head = http_head_free(mp->head);
        mp->trailers = http_head_free(mp->trailers);
}

void http_msg_parser_next(HttpMsgParser *mp) {
        assert(mp);

        mp->complete = false;
        mp->started = false;
        http_parser_pause(&mp->p, 0);
}

bool http_msg_parser_idle(const HttpMsgParser *mp) {
        assert(mp);

        return !mp->started;
}

ssize_t http_msg_parser_feed(HttpMsgParser *mp, const uint8_t *p, size_t n) {
        enum http_errno e;
        size_t used;

        assert(mp);
        assert(p || n == 0);

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

        assert(buf || len == 0);
        assert(ret);

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
        assert(h);
        assert(name);

        for (size_t i = 0; i < h->n_headers; i++)
                if (strcasecmp(h->headers[i].name, name) == 0)
                        return h->headers[i].value;
        return NULL;
}

size_t http_head_count(const HttpHead *h, const char *name) {
        size_t n = 0;

        assert(h);
        assert(name);

        for (size_t i = 0; i < h->n_headers; i++)
                if (strcasecmp(h->headers[i].name, name) == 0)
                        n++;
        return n;
}

size_t http_head_remove(HttpHead *h, const char *name) {
        size_t j = 0;

        assert(h);
        assert(name);

        /* The strings stay in the arena until the head goes; only the table shrinks. */
        for (size_t i = 0; i < h->n_headers; i++)
                if (strcasecmp(h->headers[i].name, name) != 0)
                        h->headers[j++] = h->headers[i];
        size_t removed = h->n_headers - j;
        h->n_headers = j;
        return removed;
}

bool http_header_has_token(const char *value, const char *token) {
        size_t tl;

        assert(token);

        tl = strlen(token);

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

/* Called for every field of every message a proxy forwards: lengths and first letters decide
 * before any strcasecmp() (a strcasecmp() per fixed name and per field was a tenth of the
 * tunnel client's instructions in HTTP mode). */
bool http_header_is_hop_by_hop(const HttpHead *h, const char *name) {
        static const struct {
                const char *name;
                size_t len;
        } fixed[] = {
                { "Connection", 10 },       { "Keep-Alive", 10 }, { "Proxy-Connection", 16 }, { "TE", 2 },
                { "Transfer-Encoding", 17 }, { "Upgrade", 7 },     { "Host", 4 },
        };
        size_t len;
        char first;

        assert(h);
        assert(name);

        len = strlen(name);
        first = ascii_tolower(name[0]);

        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                if (fixed[i].len == len && ascii_tolower(fixed[i].name[0]) == first &&
                    strcasecmp(name, fixed[i].name) == 0)
                        return true;
        for (size_t i = 0; i < h->n_headers; i++)
                if (ascii_tolower(h->headers[i].name[0]) == 'c' && strcasecmp(h->headers[i].name, "Connection") == 0 &&
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

/* ---- writing ---- */

void http_vwritef(HttpOutFunc out, void *userdata, size_t size, const char *format, va_list ap) {
        char buf[HTTP_WRITEF_MAX];
        int n;

        assert(out);
        assert(size > 0 && size <= sizeof(buf));

        n = vsnprintf(buf, size, format, ap);
        out(buf, (size_t) MIN(MAX(n, 0), (int) size - 1), userdata);
}

void http_write_fields(const HttpHead *h, HttpOutFunc out, void *userdata) {
        assert(h);
        assert(out);

        for (size_t i = 0; i < h->n_headers; i++) {
                out(h->headers[i].name, strlen(h->headers[i].name), userdata);
                out(": ", 2, userdata);
                out(h->headers[i].value, strlen(h->headers[i].value), userdata);
                out("\r\n", 2, userdata);
        }
}

void http_write_body(const void *p, size_t n, bool chunked, HttpOutFunc out, void *userdata) {
        char size[24];

        assert(p || n == 0);
        assert(out);

        if (chunked) {
                int k = snprintf(size, sizeof(size), "%zx\r\n", n);
                out(size, (size_t) k, userdata);
        }
        out(p, n, userdata);
        if (chunked)
                out("\r\n", 2, userdata);
}

size_t http_format_line(char *buf, size_t size, const char *format, va_list ap) {
        int n;

        assert(buf);
        assert(size >= 2 && size <= INT_MAX);

        n = vsnprintf(buf, size - 1, format, ap);
        n = MIN(MAX(n, 0), (int) size - 2);
        buf[n++] = '\n';
        return (size_t) n;
}
