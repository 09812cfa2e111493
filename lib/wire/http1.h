// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP/1.1 messages through libhttp-parser: whole heads (the WebSocket upgrade and its
 * response), and a streaming parser (HttpMsgParser) for HTTP mode that hands over the head,
 * then the body as it arrives, then the trailers, one message at a time. An HttpHead is also
 * how HTTP/2 requests and responses cross the tunnel (mux.h). */
#pragma once

#include <http_parser.h>
#include <stdarg.h>
#include <sys/types.h>

#include "macro.h"

typedef struct HttpHeader {
        char *name;
        char *value;
} HttpHeader;

#define HTTP_HEAD_INLINE_HEADERS 16
#define HTTP_HEAD_INLINE_BYTES 512

/* A head owns its strings: the pseudo-header members, names and values all live in the head's
 * own arena (an inline block, then blocks that double), set through http_head_strndup() and
 * http_head_add(), and are freed with the head, never one by one. A typical head is one
 * allocation. A head is never copied or moved (the inline blocks point into it). */
typedef struct HttpHead {
        bool request;
        char *method;      /* requests */
        char *url;         /* requests: the request-target, or HTTP/2 :path */
        char *authority;   /* HTTP/2 :authority */
        char *scheme;      /* HTTP/2 :scheme */
        char *protocol;    /* HTTP/2 :protocol (extended CONNECT, RFC 8441) */
        unsigned status;   /* responses */
        unsigned short http_major, http_minor;
        HttpHeader *headers;
        size_t n_headers;
        size_t bytes;      /* names and values, as counted against limits */
        bool upgrade;
        bool keep_alive;   /* HTTP/1.x: the connection may carry another message */
        bool chunked;
        int64_t content_length; /* -1 when absent */

        /* the arena; see above */
        size_t n_headers_max;
        char *arena;
        size_t arena_left, block_size;
        struct HttpHeadBlock *blocks;
        HttpHeader inline_headers[HTTP_HEAD_INLINE_HEADERS];
        char inline_arena[HTTP_HEAD_INLINE_BYTES];
} HttpHead;

#define HTTP_HEAD_MAX_DEFAULT 8192
#define HTTP_HEADERS_MAX_DEFAULT 64

HttpHead *http_head_free(HttpHead *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpHead *, http_head_free);

HttpHead *http_head_new(bool request);
/* A NUL-terminated copy of s[0..n) in h's arena, freed with h; NULL without memory. */
char *http_head_strndup(HttpHead *h, const char *s, size_t n);
static inline char *http_head_strdup(HttpHead *h, const char *s) {
        return http_head_strndup(h, s, strlen(s));
}
/* Appends a header (copies; a NUL inside name or value is refused). */
int http_head_add(HttpHead *h, const char *name, size_t name_len, const char *value, size_t value_len);

/* An HTTP/2 field line: a pseudo-header field (:method, :path, :authority, :scheme, :protocol,
 * :status) sets its member (the first one seen counts; others are ignored), any other is
 * added as a header. */
int http_head_add_h2(HttpHead *h, const char *name, size_t name_len, const char *value, size_t value_len);

/* Length of the head in buf including the blank line, 0 if not complete yet, -E2BIG if no
 * end within max bytes. */
ssize_t http_head_end(const char *buf, size_t len, size_t max);

/* Parses exactly one head; -EBADMSG on a malformed one, -E2BIG on too many headers. */
int http_head_parse(const char *buf, size_t len, bool request, size_t max_headers, HttpHead **ret);

/* The value of the first header called name (case-insensitive), or NULL. */
const char *http_head_get(const HttpHead *h, const char *name);
/* Number of headers called name. */
size_t http_head_count(const HttpHead *h, const char *name);
/* Removes every header called name (case-insensitive), keeping the order of the others; the
 * number removed. */
size_t http_head_remove(HttpHead *h, const char *name);
/* Whether a comma-separated header value contains token (case-insensitive). */
bool http_header_has_token(const char *value, const char *token);

/* "Not Found" for 404, and so on; "Unknown" for codes without a phrase here. */
const char *http_status_reason(unsigned status);

/* Hop-by-hop: the fields RFC 9110 §7.6.1 says a proxy must not forward (Connection and what
 * it names, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade), plus Host, which
 * every hop sets itself. */
bool http_header_is_hop_by_hop(const HttpHead *h, const char *name);

/* ---- writing HTTP/1.1 (the public side of the exit server, the upstream side of the client) ---- */

/* Where the writers put bytes: a connection's output queue. */
typedef void (*HttpOutFunc)(const void *p, size_t n, void *userdata);

#define HTTP_WRITEF_MAX 1024
/* vsnprintf() into a buffer of size bytes (at most HTTP_WRITEF_MAX), then out: a longer
 * result is cut to size - 1 bytes. */
void http_vwritef(HttpOutFunc out, void *userdata, size_t size, const char *format, va_list ap)
        _printf_(4, 0);
/* "Name: value\r\n" for each field of h. */
void http_write_fields(const HttpHead *h, HttpOutFunc out, void *userdata);
/* n bytes of a body: as they are, or as one chunk (n == 0 would be the last chunk). */
void http_write_body(const void *p, size_t n, bool chunked, HttpOutFunc out, void *userdata);
/* The body of a status page of our own, one line: the text cut to fit buf with its "\n".
 * Returns its length (newline included). */
size_t http_format_line(char *buf, size_t size, const char *format, va_list ap) _printf_(3, 0);

typedef struct HttpMsgCallbacks {
        /* The head (ownership passes to the callee). Return 0 to read a body, 1 when the
         * message has none whatever its head says (a response to HEAD), 2 to stop after the
         * head (a 101 response: what follows is not HTTP), <0 to fail. */
        int (*head)(void *userdata, HttpHead *h);
        int (*body)(void *userdata, const uint8_t *p, size_t n);
        /* The message is complete; trailers (may be NULL) pass to the callee. */
        int (*complete)(void *userdata, HttpHead *trailers);
} HttpMsgCallbacks;

typedef struct HttpMsgParser {
        http_parser p;
        const HttpMsgCallbacks *cb;
        void *userdata;
        HttpHead *head, *trailers;
        size_t max_bytes, max_headers;
        bool request, last_was_value, started, stopped, complete;
        int error;
} HttpMsgParser;

void http_msg_parser_init(HttpMsgParser *mp, bool request, size_t max_bytes, size_t max_headers,
                          const HttpMsgCallbacks *cb, void *userdata);
void http_msg_parser_done(HttpMsgParser *mp);
/* Parses what it can of p and returns how much it used. It stops after a complete message
 * (pipelined bytes stay with the caller until http_msg_parser_next()) and after a head whose
 * callback returned 2. n == 0 signals the end of the input (a body delimited by close ends
 * there). Errors: -EBADMSG malformed, -E2BIG head over max_bytes, -EMLINK over max_headers,
 * -EPIPE input ended inside a message, or the callback's. */
ssize_t http_msg_parser_feed(HttpMsgParser *mp, const uint8_t *p, size_t n);
/* Ready for the next message on the same connection. */
void http_msg_parser_next(HttpMsgParser *mp);
/* Whether the parser is between messages (nothing of the next one seen yet). */
bool http_msg_parser_idle(const HttpMsgParser *mp);
