// SPDX-License-Identifier: LGPL-2.1-or-later
/* AllowFrom=/DenyFrom=/ControlAllowFrom=: parsing into one sorted rule array and the decision,
 * by binary search so that a long list costs little per connection; see access.h. */

#include <assert.h>
#include <stdio.h>

#include "access.h"
#include "conf-url.h"
#include "macro.h"
#include "parse-util.h"

/* The order of the rule array: scope (tunnel-wide first), family, prefix length longest first,
 * address, allow before deny. A search key fixes the first depth of these. */
typedef struct RuleKey {
        const char *scope;      /* compared without case, up to scope_len */
        size_t scope_len;
        int family;
        unsigned prefixlen;
        const uint8_t *addr;
} RuleKey;

enum { BY_SCOPE = 1, BY_FAMILY, BY_LENGTH, BY_ADDRESS };

static int scope_cmp(const char *rule, const char *q, size_t qlen) {
        if (!rule || !q)
                return !rule && !q ? 0 : !rule ? -1 : 1;
        for (size_t i = 0;; i++) {
                unsigned char a = (unsigned char) rule[i];
                unsigned char b = i < qlen ? (unsigned char) ascii_tolower(q[i]) : 0;

                if (a != b)
                        return a < b ? -1 : 1;
                if (a == 0)
                        return 0;
        }
}

static int rule_cmp_key(const AccessRule *r, const RuleKey *k, int depth) {
        int c = scope_cmp(r->scope, k->scope, k->scope_len);
        if (c != 0 || depth == BY_SCOPE)
                return c;
        if (r->prefix.family != k->family)
                return r->prefix.family < k->family ? -1 : 1;
        if (depth == BY_FAMILY)
                return 0;
        if (r->prefix.prefixlen != k->prefixlen)
                return r->prefix.prefixlen > k->prefixlen ? -1 : 1; /* longest first */
        if (depth == BY_LENGTH)
                return 0;
        return memcmp(r->prefix.addr, k->addr, 16);
}

static RuleKey rule_key(const AccessRule *r) {
        return (RuleKey) {
                .scope = r->scope,
                .scope_len = r->scope ? strlen(r->scope) : 0,
                .family = r->prefix.family,
                .prefixlen = r->prefix.prefixlen,
                .addr = r->prefix.addr,
        };
}

static int rule_cmp(const void *a, const void *b) {
        const AccessRule *x = a, *y = b;
        RuleKey k = rule_key(y);
        int c = rule_cmp_key(x, &k, BY_ADDRESS);
        return c != 0 ? c : (int) y->allow - (int) x->allow;
}

/* The first index in [lo, hi) whose rule is not below k (upper: is above k). */
static size_t bound(const AccessList *l, size_t lo, size_t hi, const RuleKey *k, int depth, bool upper) {
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = rule_cmp_key(&l->rules[mid], k, depth);
                if (upper ? c <= 0 : c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

/* Sorts the rules and marks each with whether its scope holds an allow rule. */
static void access_list_sort(AccessList *l) {
        if (l->n_rules > 1)
                qsort(l->rules, l->n_rules, sizeof(AccessRule), rule_cmp);
        for (size_t i = 0, j; i < l->n_rules; i = j) {
                bool allow = false;
                for (j = i; j < l->n_rules && scope_cmp(l->rules[j].scope, l->rules[i].scope,
                                                         l->rules[i].scope ? SIZE_MAX : 0) == 0; j++)
                        allow = allow || l->rules[j].allow;
                for (size_t k = i; k < j; k++)
                        l->rules[k].scope_has_allow = allow;
        }
}

static void rules_free(AccessRule *rules, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(rules[i].scope);
        free(rules);
}

const char *access_rule_format(const AccessRule *r, char buf[static ACCESS_RULE_STR_MAX]) {
        char p[ADDRESS_PREFIX_STR_MAX];

        assert(r);
        snprintf(buf, ACCESS_RULE_STR_MAX, "%s%s%s", r->scope ?: "", r->scope ? "=" : "",
                 address_prefix_format(&r->prefix, p));
        return buf;
}

bool access_list_equal(const AccessList *a, const AccessList *b) {
        assert(a);
        assert(b);
        if (a->n_rules != b->n_rules)
                return false;
        for (size_t i = 0; i < a->n_rules; i++) {
                const AccessRule *x = &a->rules[i], *y = &b->rules[i];
                if (x->allow != y->allow || !streq_ptr(x->scope, y->scope) ||
                    x->prefix.family != y->prefix.family || x->prefix.prefixlen != y->prefix.prefixlen ||
                    memcmp(x->prefix.addr, y->prefix.addr, sizeof(x->prefix.addr)) != 0)
                        return false;
        }
        return true;
}

void access_list_done(AccessList *l) {
        assert(l);
        rules_free(l->rules, l->n_rules);
        *l = (AccessList) {};
}

static size_t count_kind(const AccessList *l, bool allow) {
        size_t n = 0;
        for (size_t i = 0; i < l->n_rules; i++)
                n += l->rules[i].allow == allow;
        return n;
}

static void drop_kind(AccessList *l, bool allow) {
        size_t j = 0;
        for (size_t i = 0; i < l->n_rules; i++) {
                if (l->rules[i].allow == allow)
                        free(l->rules[i].scope);
                else
                        l->rules[j++] = l->rules[i];
        }
        l->n_rules = j;
        if (j == 0)
                l->rules = mfree(l->rules);
        access_list_sort(l);
}

/* The scope of "SCOPE=PREFIX" in canonical form: a port as digits without leading zeros, a
 * host in lower case. */
static int parse_scope(const char *s, size_t n, char **ret, const char **reason) {
        _cleanup_free_ char *v = strndup(s, n);
        uint16_t port;

        if (!v)
                return -ENOMEM;
        if (n == 0) {
                *reason = "empty scope before '=': expected PORT=PREFIX or HOST=PREFIX";
                return -EINVAL;
        }
        if (strspn(v, "0123456789") == n) {
                if (parse_port(v, &port) < 0) {
                        *reason = "a port scope must be 1-65535";
                        return -ERANGE;
                }
                free(v);
                if (asprintf(&v, "%u", port) < 0) {
                        v = NULL;
                        return -ENOMEM;
                }
        } else {
                if (n > 1 && v[n - 1] == '.')
                        v[--n] = 0; /* the same name, as requests are matched */
                if (!hostname_is_valid(v) || strstr(v, "..") || v[n - 1] == '.') {
                        *reason = "a scope is a port (1-65535) or a host name (letters, digits, '-', '.')";
                        return -EINVAL;
                }
                for (char *p = v; *p; p++)
                        *p = ascii_tolower(*p);
        }
        *ret = TAKE_PTR(v);
        return 0;
}

/* One item into up to two rules ("any" is both families). */
static int parse_item(const char *w, size_t n, bool allow, bool scoped, AccessRule ret[static 2],
                      size_t *ret_n, const char **reason) {
        _cleanup_free_ char *item = strndup(w, n), *scope = NULL;
        const char *eq, *prefix;
        int r;

        if (!item)
                return -ENOMEM;
        eq = strchr(item, '=');
        prefix = item;
        if (eq) {
                if (!scoped) {
                        *reason = "this list takes addresses and prefixes only, no SCOPE=PREFIX";
                        return -EINVAL;
                }
                r = parse_scope(item, eq - item, &scope, reason);
                if (r < 0)
                        return r;
                prefix = eq + 1;
                if (!*prefix) {
                        *reason = "expected an address or prefix after '='";
                        return -EINVAL;
                }
        }
        if (strcaseeq(prefix, "any")) {
                ret[0] = (AccessRule) { .prefix = { .family = AF_INET }, .allow = allow, .scope = scope };
                ret[1] = (AccessRule) { .prefix = { .family = AF_INET6 }, .allow = allow };
                if (scope && !(ret[1].scope = strdup(scope)))
                        return -ENOMEM;
                TAKE_PTR(scope);
                *ret_n = 2;
                return 0;
        }
        ret[0] = (AccessRule) { .allow = allow };
        r = address_prefix_parse(prefix, &ret[0].prefix, reason);
        if (r < 0)
                return r;
        ret[0].scope = TAKE_PTR(scope);
        *ret_n = 1;
        return 0;
}

#define ACCESS_SEPARATORS " \t\n,"
#define STR_(x) #x
#define STR(x) STR_(x)

int access_list_parse_full(AccessList *l, const char *value, bool allow, bool scoped, const char **reason,
                           char **ret_item) {
        AccessRule *new = NULL, *t;
        size_t n_new = 0, have;
        const char *dummy, *p;
        int r = 0;

        assert(l);
        assert(value);
        if (!reason)
                reason = &dummy;

        if (value[strspn(value, ACCESS_SEPARATORS)] == 0) {
                drop_kind(l, allow);
                return 0;
        }
        have = count_kind(l, allow);
        for (p = value;;) {
                AccessRule two[2];
                size_t k, m = 0;

                p += strspn(p, ACCESS_SEPARATORS);
                if (!*p)
                        break;
                k = strcspn(p, ACCESS_SEPARATORS);
                r = parse_item(p, k, allow, scoped, two, &m, reason);
                if (r >= 0 && have + n_new + m > ACCESS_RULES_MAX) {
                        for (size_t i = 0; i < m; i++)
                                free(two[i].scope);
                        *reason = "too many rules: at most " STR(ACCESS_RULES_MAX) " each of allow and deny";
                        r = -E2BIG;
                }
                if (r >= 0) {
                        t = realloc(new, sizeof(AccessRule) * (n_new + m));
                        if (!t) {
                                for (size_t i = 0; i < m; i++)
                                        free(two[i].scope);
                                r = -ENOMEM;
                        } else {
                                new = t;
                                memcpy(new + n_new, two, sizeof(AccessRule) * m);
                                n_new += m;
                        }
                }
                if (r < 0) {
                        rules_free(new, n_new);
                        if (ret_item && r != -ENOMEM)
                                *ret_item = strndup(p, MIN(k, (size_t) 256));
                        return r;
                }
                p += k;
        }

        t = realloc(l->rules, sizeof(AccessRule) * (l->n_rules + n_new));
        if (!t) {
                rules_free(new, n_new);
                return -ENOMEM;
        }
        l->rules = t;
        memcpy(l->rules + l->n_rules, new, sizeof(AccessRule) * n_new);
        l->n_rules += n_new;
        free(new);
        access_list_sort(l);
        return 0;
}

int access_list_parse(AccessList *l, const char *value, bool allow, bool scoped, const char **reason) {
        return access_list_parse_full(l, value, allow, scoped, reason, NULL);
}

/* What one scope's rules say of an address (scope NULL: the tunnel-wide ones). */
typedef struct ScopeMatch {
        bool has_allow;         /* the scope has allow rules */
        bool matched;
        unsigned prefixlen;     /* of the most specific matching rule */
        bool allow;             /* its verdict */
} ScopeMatch;

static ScopeMatch scope_match(const AccessList *l, const char *scope, size_t scope_len, int family,
                              const uint8_t addr[static 16]) {
        RuleKey k = { .scope = scope, .scope_len = scope_len, .family = family };
        ScopeMatch m = {};
        size_t lo, hi;

        lo = bound(l, 0, l->n_rules, &k, BY_SCOPE, false);
        hi = bound(l, lo, l->n_rules, &k, BY_SCOPE, true);
        if (lo == hi)
                return m;
        m.has_allow = l->rules[lo].scope_has_allow;
        if (family > 0) {
                size_t flo = bound(l, lo, hi, &k, BY_FAMILY, false);
                size_t fhi = bound(l, flo, hi, &k, BY_FAMILY, true);

                /* One binary search per prefix length present, longest first: the first hit is
                 * the most specific rule, and allow sorts before deny. */
                for (size_t i = flo, end; i < fhi; i = end) {
                        uint8_t masked[16];
                        size_t j;

                        k.prefixlen = l->rules[i].prefix.prefixlen;
                        end = bound(l, i, fhi, &k, BY_LENGTH, true);
                        memcpy(masked, addr, 16);
                        address_prefix_mask(masked, k.prefixlen);
                        k.addr = masked;
                        j = bound(l, i, end, &k, BY_ADDRESS, false);
                        if (j < end && rule_cmp_key(&l->rules[j], &k, BY_ADDRESS) == 0) {
                                m.matched = true;
                                m.prefixlen = k.prefixlen;
                                m.allow = l->rules[j].allow;
                                break;
                        }
                }
        }
        return m;
}

/* Within one scope: the most specific match, or without one, allowed unless there are allow
 * rules (a scope without rules allows). */
static bool scope_verdict(const ScopeMatch *m) {
        return m->matched ? m->allow : !m->has_allow;
}

bool access_list_allows(const AccessList *l, const char *scope, const SocketAddress *peer) {
        uint8_t addr[16] = {};
        ScopeMatch t, s = {};
        int family;

        assert(l);
        assert(peer);

        if (l->n_rules == 0)
                return true;
        family = address_prefix_peer(peer, addr);
        t = scope_match(l, NULL, 0, family, addr);
        /* A Host: header may carry a port; "[v6]" never names a scope (scopes are names). */
        if (scope && *scope)
                s = scope_match(l, scope, scope[0] == '[' ? strlen(scope) : strcspn(scope, ":"), family, addr);
        /* Each must allow: a port's or host's rules narrow the tunnel-wide ones, never widen
         * them (fail closed: an allow list somewhere cannot undo a deny elsewhere). */
        return scope_verdict(&t) && scope_verdict(&s);
}
