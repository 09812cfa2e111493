// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP access rules of a tunnel client in HTTP mode, per host (an Upstream= HOST) or for every
 * host: who may pass (BasicAuthFile=, BearerTokenFile=), how fast (RateLimit=), and what
 * headers go to the upstream and back (RequestHeader=, ResponseHeader=).
 *
 * Every item may start with HOST=: the text before the first '=' when it holds no space, ':'
 * or '/' (a header value or a path may hold '=' later). Without it the rule is the default for
 * hosts that have no rule of that key of their own (for credentials: of either kind).
 * BasicAuthFile=, BearerTokenFile= and RateLimit= take HOST=none: that host is exempt from
 * the default of that key. Parsing only; the files are read by
 * http_rules_load() (with the token, as they hold secrets). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "httpcred.h"

typedef enum HeaderAction {
        HEADER_SET,     /* replace every field of the name with this one */
        HEADER_ADD,     /* one more field, the others kept */
        HEADER_UNSET,   /* remove every field of the name */
} HeaderAction;

typedef struct HeaderRule {
        char *host;             /* NULL: every host */
        HeaderAction action;
        char *name;             /* as written; compared without case */
        char *value;            /* NULL for unset */
} HeaderRule;

/* BasicAuthFile= (an htpasswd file) or BearerTokenFile= (tokens, one a line). */
typedef struct CredentialFile {
        char *host;
        bool none;              /* HOST=none: this host needs no credentials */
        char *path;
        Htpasswd *htpasswd;     /* loaded by http_rules_load() */
        BearerTokens *tokens;
} CredentialFile;

typedef struct RateRule {
        char *host;
        bool none;              /* HOST=none: no limit for this host */
        uint64_t interval_usec; /* one request per interval, on average */
        unsigned burst;         /* requests a visitor may make at once */
} RateRule;

/* Rules per key (tens at most; a linear search is right). */
#define HTTP_RULES_MAX 256
#define HEADER_VALUE_MAX 1024

typedef struct HttpRules {
        CredentialFile *basic, *bearer;
        size_t n_basic, n_bearer;
        HeaderRule *request_headers, *response_headers;
        size_t n_request_headers, n_response_headers;
        RateRule *rates;
        size_t n_rates;
        uint64_t serial;        /* set by http_rules_load(): a new number for every load */
} HttpRules;

/* One value of each key; an empty value drops that key's rules. *reason says what was wrong. */
int http_rules_add_credential_file(HttpRules *r, bool bearer, const char *value, const char **reason);
int http_rules_add_header(HttpRules *r, bool response, const char *value, const char **reason);
int http_rules_add_rate(HttpRules *r, const char *value, const char **reason);
void http_rules_done(HttpRules *r);

bool http_rules_empty(const HttpRules *r);
/* The first host a rule names that is not in hosts[0, n) (lower case), or NULL. */
const char *http_rules_unknown_host(const HttpRules *r, char *const *hosts, size_t n);
/* Credentials made in memory (inlets' --basic-auth-password, --bearer-token) as the default
 * for every host; takes them, also on failure. -EEXIST when a default file of the kind is set
 * already. */
int http_rules_add_credentials(HttpRules *r, Htpasswd *htpasswd, BearerTokens *tokens);
/* Reads every BasicAuthFile= and BearerTokenFile=; on error a message naming file:line. Gives
 * r a serial number no earlier load had (state kept per rule, such as rate counts, is for
 * one load only). */
int http_rules_load(HttpRules *r, char **ret_error);

/* The entry of one key for host (lower case, or NULL for a host no Upstream= names): the
 * host's own, else the default, else NULL; HOST=none entries included. */
const CredentialFile *http_rules_basic(const HttpRules *r, const char *host);
const CredentialFile *http_rules_bearer(const HttpRules *r, const char *host);
/* What host must present: when it has a BasicAuthFile= or BearerTokenFile= file of its own,
 * only its own count, else the defaults; HOST=none drops its own kind only; NULL for a kind it
 * need not (and cannot) use. A host given only a bearer file does not also take the default
 * htpasswd file; one with BearerTokenFile=HOST=none still takes it. */
void http_rules_credentials(const HttpRules *r, const char *host, const CredentialFile **ret_basic,
                            const CredentialFile **ret_bearer);
/* RateLimit= for host: its own, else the default; NULL for none. */
const RateRule *http_rules_rate(const HttpRules *r, const char *host);
/* Header rules apply in the order written, those without HOST= to every host. */
bool header_rule_applies(const HeaderRule *h, const char *host);
