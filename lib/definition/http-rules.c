// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP access rules of a tunnel client: BasicAuthFile=, BearerTokenFile=, RateLimit=,
 * RequestHeader=, ResponseHeader=; see http-rules.h. */

#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf-url.h"
#include "http-rules.h"
#include "macro.h"
#include "parse-util.h"
#include "string-util.h"
#include "time-util.h"

/* HOST= at the start of value: *ret_host a lower-case copy (NULL without one), *ret_rest what
 * follows. */
static int split_host(const char *value, char **ret_host, const char **ret_rest, const char **reason) {
        const char *eq = strchr(value, '=');
        size_t n = eq ? (size_t) (eq - value) : 0;
        _cleanup_free_ char *host = NULL;

        *ret_host = NULL;
        *ret_rest = value;
        if (!eq || memchr(value, ' ', n) || memchr(value, '\t', n) || memchr(value, ':', n) ||
            memchr(value, '/', n))
                return 0;
        host = strndup(value, n);
        if (!host)
                return -ENOMEM;
        for (char *p = host; *p; p++)
                *p = ascii_tolower(*p);
        if (n > 1 && host[n - 1] == '.')
                host[n - 1] = 0; /* the root's dot: the same name, as routing has it */
        if (!hostname_is_valid(host) || strstr(host, "..")) {
                *reason = "HOST= is not a valid host name";
                return -EINVAL;
        }
        *ret_host = TAKE_PTR(host);
        *ret_rest = eq + 1;
        return 0;
}

/* Appends one element of size bytes to *array (n elements, at most HTTP_RULES_MAX). */
static void *grow(void *array_ptr, size_t *n, size_t size, const char **reason) {
        void **array = array_ptr;
        void *t;

        if (*n >= HTTP_RULES_MAX) {
                *reason = "too many rules of this key (at most 256)";
                return NULL;
        }
        t = realloc(*array, size * (*n + 1));
        if (!t)
                return NULL;
        *array = t;
        memset((uint8_t *) t + size * *n, 0, size);
        return (uint8_t *) t + size * (*n)++;
}

static void credential_files_free(CredentialFile **files, size_t *n) {
        for (size_t i = 0; i < *n; i++) {
                free((*files)[i].host);
                free((*files)[i].path);
                htpasswd_free((*files)[i].htpasswd);
                bearer_tokens_free((*files)[i].tokens);
        }
        *files = mfree(*files);
        *n = 0;
}

static void header_rules_free(HeaderRule **rules, size_t *n) {
        for (size_t i = 0; i < *n; i++) {
                free((*rules)[i].host);
                free((*rules)[i].name);
                free((*rules)[i].value);
        }
        *rules = mfree(*rules);
        *n = 0;
}

static void rate_rules_free(RateRule **rules, size_t *n) {
        for (size_t i = 0; i < *n; i++)
                free((*rules)[i].host);
        *rules = mfree(*rules);
        *n = 0;
}

void http_rules_done(HttpRules *r) {
        assert(r);
        credential_files_free(&r->basic, &r->n_basic);
        credential_files_free(&r->bearer, &r->n_bearer);
        header_rules_free(&r->request_headers, &r->n_request_headers);
        header_rules_free(&r->response_headers, &r->n_response_headers);
        rate_rules_free(&r->rates, &r->n_rates);
}

bool http_rules_empty(const HttpRules *r) {
        return r->n_basic + r->n_bearer + r->n_request_headers + r->n_response_headers + r->n_rates == 0;
}

int http_rules_add_credential_file(HttpRules *r, bool bearer, const char *value, const char **reason) {
        CredentialFile **files = bearer ? &r->bearer : &r->basic;
        size_t *n = bearer ? &r->n_bearer : &r->n_basic;
        _cleanup_free_ char *host = NULL, *path = NULL;
        const char *rest;
        CredentialFile *f;
        bool none;
        int k;

        if (!*value) {
                credential_files_free(files, n);
                return 0;
        }
        k = split_host(value, &host, &rest, reason);
        if (k < 0)
                return k;
        none = streq(rest, "none");
        if (none && !host) {
                *reason = "none is for one host: HOST=none exempts it from the default file";
                return -EINVAL;
        }
        if (rest[0] != '/' && !none) {
                *reason = "expected [HOST=]/ABSOLUTE/PATH or HOST=none";
                return -EINVAL;
        }
        for (size_t i = 0; i < *n; i++)
                if (streq_ptr((*files)[i].host, host)) {
                        *reason = host ? "this host has a file of this kind already (one per host)"
                                       : "the default file of this kind is set already (one; HOST= for more)";
                        return -EEXIST;
                }
        if (!none) {
                path = strdup(rest);
                if (!path)
                        return -ENOMEM;
        }
        f = grow(files, n, sizeof(CredentialFile), reason);
        if (!f)
                return *n >= HTTP_RULES_MAX ? -E2BIG : -ENOMEM;
        f->host = TAKE_PTR(host);
        f->none = none;
        f->path = TAKE_PTR(path);
        return 0;
}

/* Fields the framing or the tunnel itself owns: a rule may not touch them. */
static bool header_name_reserved(const char *name) {
        static const char *const reserved[] = {
                "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
                "trailer", "proxy-connection", "expect",
        };
        for (size_t i = 0; i < ELEMENTSOF(reserved); i++)
                if (strcaseeq(name, reserved[i]))
                        return true;
        return false;
}

static bool header_name_valid(const char *s, size_t n) {
        if (n == 0 || n > 128)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("!#$%&'*+-.^_`|~", s[i]) && !((s[i] >= '0' && s[i] <= '9') || (ascii_tolower(s[i]) >= 'a' && ascii_tolower(s[i]) <= 'z')))
                        return false;
        return true;
}

/* Visible bytes, spaces and tabs (UTF-8 passes as bytes >= 0x80); no control bytes. */
static bool header_value_valid(const char *s) {
        size_t n = strlen(s);

        if (n > HEADER_VALUE_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (((unsigned char) s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
                        return false;
        return true;
}

int http_rules_add_header(HttpRules *r, bool response, const char *value, const char **reason) {
        HeaderRule **rules = response ? &r->response_headers : &r->request_headers;
        size_t *n = response ? &r->n_response_headers : &r->n_request_headers;
        _cleanup_free_ char *host = NULL, *name = NULL, *val = NULL;
        const char *rest, *p;
        HeaderAction action;
        HeaderRule *h;
        size_t len;
        int k;

        if (!*value) {
                header_rules_free(rules, n);
                return 0;
        }
        k = split_host(value, &host, &rest, reason);
        if (k < 0)
                return k;
        len = strcspn(rest, " \t");
        if (len == 3 && strncasecmp(rest, "set", 3) == 0)
                action = HEADER_SET;
        else if (len == 3 && strncasecmp(rest, "add", 3) == 0)
                action = HEADER_ADD;
        else if (len == 5 && strncasecmp(rest, "unset", 5) == 0)
                action = HEADER_UNSET;
        else {
                *reason = "expected [HOST=]set|add|unset NAME [VALUE]";
                return -EINVAL;
        }
        p = rest + len;
        p += strspn(p, " \t");
        len = strcspn(p, " \t");
        if (!header_name_valid(p, len)) {
                *reason = "expected a header name (letters, digits, '-' and the like) after the action";
                return -EINVAL;
        }
        name = strndup(p, len);
        if (!name)
                return -ENOMEM;
        if (header_name_reserved(name)) {
                *reason = "this header belongs to the message's framing or routing and cannot be changed";
                return -EINVAL;
        }
        p += len;
        p += strspn(p, " \t");
        if (action == HEADER_UNSET) {
                if (*p) {
                        *reason = "unset takes a header name only";
                        return -EINVAL;
                }
        } else {
                if (!header_value_valid(p)) {
                        *reason = "the value has control characters or is longer than 1024 bytes";
                        return -EINVAL;
                }
                val = strdup(p);
                if (!val)
                        return -ENOMEM;
        }
        h = grow(rules, n, sizeof(HeaderRule), reason);
        if (!h)
                return *n >= HTTP_RULES_MAX ? -E2BIG : -ENOMEM;
        *h = (HeaderRule) { .host = TAKE_PTR(host), .action = action, .name = TAKE_PTR(name), .value = TAKE_PTR(val) };
        return 0;
}

/* RATE is N/s, N/min or N/h; BURST defaults to N. */
int http_rules_add_rate(HttpRules *r, const char *value, const char **reason) {
        _cleanup_free_ char *host = NULL;
        const char *rest, *slash;
        unsigned n, burst;
        uint64_t per;
        char unit[8];
        RateRule *x;
        int k, consumed = 0;

        if (!*value) {
                rate_rules_free(&r->rates, &r->n_rates);
                return 0;
        }
        k = split_host(value, &host, &rest, reason);
        if (k < 0)
                return k;
        if (streq(rest, "none")) {
                if (!host) {
                        *reason = "none is for one host: HOST=none exempts it from the default limit";
                        return -EINVAL;
                }
                n = burst = 1;
                per = 0;
                goto add;
        }
        *reason = "expected [HOST=]N/s|N/min|N/h [BURST] or HOST=none, N and BURST from 1 to 1000000";
        slash = strchr(rest, '/');
        if (!slash || sscanf(rest, "%u/%7[a-z]%n", &n, unit, &consumed) != 2 || n == 0 || n > 1000000 ||
            !(rest[0] >= '0' && rest[0] <= '9'))
                return -EINVAL;
        if (streq(unit, "s"))
                per = USEC_PER_SEC;
        else if (streq(unit, "min"))
                per = 60 * USEC_PER_SEC;
        else if (streq(unit, "h"))
                per = 3600 * USEC_PER_SEC;
        else
                return -EINVAL;
        rest += consumed;
        rest += strspn(rest, " \t");
        burst = n;
        if (*rest && (parse_unsigned(rest, &burst) < 0 || burst == 0 || burst > 1000000))
                return -EINVAL;
add:
        for (size_t i = 0; i < r->n_rates; i++)
                if (streq_ptr(r->rates[i].host, host)) {
                        *reason = "this host has a RateLimit= already (one per host)";
                        return -EEXIST;
                }
        x = grow(&r->rates, &r->n_rates, sizeof(RateRule), reason);
        if (!x)
                return r->n_rates >= HTTP_RULES_MAX ? -E2BIG : -ENOMEM;
        *x = (RateRule) { .host = TAKE_PTR(host), .none = per == 0, .interval_usec = per / n ?: 1, .burst = burst };
        *reason = NULL;
        return 0;
}

const char *http_rules_unknown_host(const HttpRules *r, char *const *hosts, size_t n) {
        const char *named[5 * HTTP_RULES_MAX];
        size_t m = 0;

        for (size_t i = 0; i < r->n_basic; i++)
                named[m++] = r->basic[i].host;
        for (size_t i = 0; i < r->n_bearer; i++)
                named[m++] = r->bearer[i].host;
        for (size_t i = 0; i < r->n_request_headers; i++)
                named[m++] = r->request_headers[i].host;
        for (size_t i = 0; i < r->n_response_headers; i++)
                named[m++] = r->response_headers[i].host;
        for (size_t i = 0; i < r->n_rates; i++)
                named[m++] = r->rates[i].host;
        for (size_t i = 0; i < m; i++) {
                bool found = !named[i];
                for (size_t j = 0; !found && j < n; j++)
                        found = hosts[j] && streq(hosts[j], named[i]);
                if (!found)
                        return named[i];
        }
        return NULL;
}

int http_rules_add_credentials(HttpRules *r, Htpasswd *htpasswd, BearerTokens *tokens) {
        const char *reason;
        CredentialFile *f;

        assert(r);
        assert(!!htpasswd != !!tokens);

        f = (tokens ? http_rules_bearer(r, NULL) : http_rules_basic(r, NULL)) ? NULL
            : tokens ? grow(&r->bearer, &r->n_bearer, sizeof(CredentialFile), &reason)
                     : grow(&r->basic, &r->n_basic, sizeof(CredentialFile), &reason);
        if (!f) {
                bool exists = tokens ? http_rules_bearer(r, NULL) : http_rules_basic(r, NULL);
                htpasswd_free(htpasswd);
                bearer_tokens_free(tokens);
                return exists ? -EEXIST : -ENOMEM;
        }
        f->htpasswd = htpasswd;
        f->tokens = tokens;
        return 0;
}

static int load_one(CredentialFile *f, bool bearer, char **ret_error) {
        if (!f->path)
                return 0; /* made in memory */
        if (bearer)
                return bearer_tokens_load(f->path, &f->tokens, ret_error);
        return htpasswd_load(f->path, &f->htpasswd, ret_error);
}

int http_rules_load(HttpRules *r, char **ret_error) {
        static uint64_t loads = 0;
        int k;

        assert(r);

        r->serial = ++loads;
        for (size_t i = 0; i < r->n_basic; i++)
                if ((k = load_one(&r->basic[i], false, ret_error)) < 0)
                        return k;
        for (size_t i = 0; i < r->n_bearer; i++)
                if ((k = load_one(&r->bearer[i], true, ret_error)) < 0)
                        return k;
        return 0;
}

/* find_for_host() reads the host of any of these at the start of the element. */
_Static_assert(offsetof(CredentialFile, host) == 0, "host first");
_Static_assert(offsetof(RateRule, host) == 0, "host first");

static const void *find_for_host(const void *array, size_t n, size_t size, const char *host) {
        const void *fallback = NULL;

        for (size_t i = 0; i < n; i++) {
                const void *e = (const uint8_t *) array + i * size;
                /* Each element type starts with its host. */
                const char *h = *(char *const *) e;
                if (!h)
                        fallback = e;
                else if (host && streq(h, host))
                        return e;
        }
        return fallback;
}

const CredentialFile *http_rules_basic(const HttpRules *r, const char *host) {
        return find_for_host(r->basic, r->n_basic, sizeof(CredentialFile), host);
}

const CredentialFile *http_rules_bearer(const HttpRules *r, const char *host) {
        return find_for_host(r->bearer, r->n_bearer, sizeof(CredentialFile), host);
}

void http_rules_credentials(const HttpRules *r, const char *host, const CredentialFile **ret_basic,
                            const CredentialFile **ret_bearer) {
        const CredentialFile *basic = http_rules_basic(r, host), *bearer = http_rules_bearer(r, host);
        bool own_file = (basic && basic->host && !basic->none) || (bearer && bearer->host && !bearer->none);

        /* A host with a file of its own (either kind) takes no default file of the other: its
         * own are all it needs. HOST=none only drops the default of its own kind, so naming
         * one kind never opens a host to everyone by surprise. */
        if (own_file) {
                if (basic && !basic->host)
                        basic = NULL;
                if (bearer && !bearer->host)
                        bearer = NULL;
        }
        *ret_basic = basic && !basic->none ? basic : NULL;
        *ret_bearer = bearer && !bearer->none ? bearer : NULL;
}

const RateRule *http_rules_rate(const HttpRules *r, const char *host) {
        const RateRule *x = find_for_host(r->rates, r->n_rates, sizeof(RateRule), host);

        return x && !x->none ? x : NULL;
}

bool header_rule_applies(const HeaderRule *h, const char *host) {
        return !h->host || (host && streq(h->host, host));
}
