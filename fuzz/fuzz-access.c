// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target: access lists. Each input line is a value ("+" AllowFrom=, "-" DenyFrom=,
 * "!" ControlAllowFrom=); then peers taken from the input's tail and a few fixed ones are
 * judged, and each decision is checked against a plain linear reading of access.h's rule. */

#include <arpa/inet.h>
#include <stdio.h>
#include <strings.h>

#include "access.h"
#include "log.h"
#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The decision of one scope, by a linear scan: the longest matching prefix, allow on a tie. */
static bool reference_scope(const AccessList *l, const char *scope, size_t n, const SocketAddress *peer) {
        int best = -1;
        bool has_allow = false, allow = false;

        for (size_t i = 0; i < l->n_rules; i++) {
                const AccessRule *r = &l->rules[i];
                int len;

                if (!r->scope != !scope ||
                    (scope && (strlen(r->scope) != n || strncasecmp(r->scope, scope, n) != 0)))
                        continue;
                has_allow = has_allow || r->allow;
                if (!address_prefix_match(&r->prefix, peer))
                        continue;
                len = (int) r->prefix.prefixlen;
                if (len > best || (len == best && r->allow)) {
                        allow = len > best ? r->allow : true;
                        best = len;
                }
        }
        return best >= 0 ? allow : !has_allow;
}

static bool reference(const AccessList *l, const char *scope, const SocketAddress *peer) {
        if (!reference_scope(l, NULL, 0, peer))
                return false;
        if (!scope || !*scope)
                return true;
        return reference_scope(l, scope, scope[0] == '[' ? strlen(scope) : strcspn(scope, ":"), peer);
}

static void judge(const AccessList *l, const SocketAddress *peer) {
        static const char *const scopes[] = { NULL, "", "3389", "22", "app.example.com",
                                              "APP.Example.com:443", "a", "[::1]:80" };
        for (size_t i = 0; i < ELEMENTSOF(scopes); i++)
                if (access_list_allows(l, scopes[i], peer) != reference(l, scopes[i], peer))
                        abort();
}

static void judge_all(const AccessList *l, const uint8_t *data, size_t size) {
        static const char *const fixed[] = { "10.1.2.3", "192.0.2.1", "0.0.0.0", "255.255.255.255", "[::1]",
                                             "[2001:db8::1]", "[::ffff:10.1.2.3]", "[::]" };
        SocketAddress a;

        for (size_t i = 0; i < ELEMENTSOF(fixed); i++) {
                if (socket_address_parse(fixed[i], 1, &a) < 0)
                        abort();
                judge(l, &a);
        }
        /* Peers near the rules: each rule's own address, and one bit flipped past its prefix. */
        for (size_t i = 0; i < l->n_rules && i < 64; i++) {
                const AddressPrefix *p = &l->rules[i].prefix;
                a = (SocketAddress) {};
                if (p->family == AF_INET) {
                        a.in.sin_family = AF_INET;
                        memcpy(&a.in.sin_addr, p->addr, 4);
                        a.len = sizeof(a.in);
                } else {
                        a.in6.sin6_family = AF_INET6;
                        memcpy(&a.in6.sin6_addr, p->addr, 16);
                        a.len = sizeof(a.in6);
                }
                judge(l, &a);
                if (p->prefixlen > 0) {
                        uint8_t *b = p->family == AF_INET ? (uint8_t *) &a.in.sin_addr
                                                      : a.in6.sin6_addr.s6_addr;
                        unsigned bit = p->prefixlen - 1;
                        b[bit / 8] ^= 0x80 >> (bit % 8);
                        judge(l, &a);
                }
        }
        /* And the input's last bytes as an IPv4 and an IPv6 address. */
        if (size >= 16) {
                a = (SocketAddress) { .len = sizeof(a.in6) };
                a.in6.sin6_family = AF_INET6;
                memcpy(&a.in6.sin6_addr, data + size - 16, 16);
                judge(l, &a);
                a = (SocketAddress) { .len = sizeof(a.in) };
                a.in.sin_family = AF_INET;
                memcpy(&a.in.sin_addr, data + size - 4, 4);
                judge(l, &a);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        AccessList l = {}, control = {};
        char *copy, *line, *save = NULL;

        log_max_level = -1;
        if (size > 64 * 1024)
                return 0;
        copy = strndup((const char *) data, size);
        if (!copy)
                return 0;
        for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                AccessList *t = line[0] == '!' ? &control : &l;
                size_t before = t->n_rules;
                const char *reason = NULL;
                char *item = NULL;
                int r;

                if (!line[0])
                        continue;
                r = access_list_parse_full(t, line + 1, line[0] == '+' || line[0] == '!', line[0] != '!',
                                           &reason, &item);
                if (r < 0 && (t->n_rules != before || !reason))
                        abort(); /* an error leaves the list alone and says why */
                free(item);
        }
        judge_all(&l, data, size);
        judge_all(&control, data, size);
        access_list_done(&l);
        access_list_done(&control);
        free(copy);
        return 0;
}
