// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP/1.1 message heads (the WebSocket upgrade request and its response), parsed with
 * libhttp-parser. The caller finds the end of the head first, so the parser always sees a
 * whole head at once and never a split callback. */
#pragma once

#include <sys/types.h>

#include "macro.h"

typedef struct HttpHeader {
        char *name;
        char *value;
} HttpHeader;

typedef struct HttpHead {
        bool request;
        char *method;      /* requests */
        char *url;         /* requests */
        unsigned status;   /* responses */
        unsigned short http_major, http_minor;
        HttpHeader *headers;
        size_t n_headers;
        bool upgrade;
} HttpHead;

#define HTTP_HEAD_MAX_DEFAULT 8192
#define HTTP_HEADERS_MAX_DEFAULT 64

HttpHead *http_head_free(HttpHead *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpHead *, http_head_free);

/* Length of the head in buf including the blank line, 0 if not complete yet, -E2BIG if no
 * end within max bytes. */
ssize_t http_head_end(const char *buf, size_t len, size_t max);

/* Parses exactly one head; -EBADMSG on a malformed one, -E2BIG on too many headers. */
int http_head_parse(const char *buf, size_t len, bool request, size_t max_headers, HttpHead **ret);

/* The value of the first header called name (case-insensitive), or NULL. */
const char *http_head_get(const HttpHead *h, const char *name);
/* Number of headers called name. */
size_t http_head_count(const HttpHead *h, const char *name);
/* Whether a comma-separated header value contains token (case-insensitive). */
bool http_header_has_token(const char *value, const char *token);
