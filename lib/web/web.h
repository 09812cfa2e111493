// SPDX-License-Identifier: LGPL-2.1-or-later
/* One blocking HTTP(S) request with libcurl (GnuTLS), for the cloud APIs (inletsctl) and the
 * ACME client (in the exit server's ACME helper process, never on the event loop), and the
 * operator's Kubernetes calls. web_setup() sets the same options on a handle of one's own
 * (the operator's watches run on a curl multi handle). */
#pragma once

#include <json-c/json.h>

struct curl_slist;

#include "macro.h"

#define WEB_BODY_MAX (4 * 1024 * 1024)

typedef struct WebRequest {
        const char *method;              /* "GET", "POST", "HEAD", ... */
        const char *url;
        const char *const *headers;      /* "Name: value", NULL-terminated; may be NULL */
        const char *body;                /* NULL: none */
        size_t body_len;
        const char *ca_file;             /* NULL: the system's trust store */
        const char *cert_file, *key_file; /* a client certificate (PEM), or NULL */
        long timeout_sec;                /* 0: 30 s */
        const char *user_agent;
} WebRequest;

typedef struct WebResponse {
        long status;                     /* the HTTP status: callers decide by it, never by a message */
        char *body;                      /* NUL-terminated, NULL when empty */
        size_t body_len;
        char *location;                  /* the fields ACME and the APIs need */
        char *replay_nonce;
        char *content_type;
        long retry_after_sec;            /* -1: none */
} WebResponse;

/* Loads libcurl (web_request() and web_setup() do it on first use); <0 with a message when it
 * is not installed. */
int web_load(char **ret_error);
/* 0 with any HTTP status in ret (a 4xx is not an error here); <0 when no answer came,
 * with a message naming the URL. */
int web_request(const WebRequest *q, WebResponse *ret, char **ret_error);
/* The options of q on c; the caller owns *ret_headers (curl_slist_free_all) and sets its own
 * write function. */
int web_setup(void *curl_easy, const WebRequest *q, struct curl_slist **ret_headers);
void web_response_done(WebResponse *r);

/* json-c counts references and its put returns an int, so the trivial cleanup macro does not fit:
 * _cleanup_(json_object_putp) json_object *o = ...; drops the reference on every path. */
static inline void json_object_putp(json_object **o) {
        if (*o)
                *o = (json_object_put(*o), NULL);
}

/* o[key] if it is a string, else NULL (o may be NULL). */
const char *json_get_string(json_object *o, const char *key);
