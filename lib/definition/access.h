// SPDX-License-Identifier: LGPL-2.1-or-later
/* Who may reach a tunnel: AllowFrom= / DenyFrom= (public ports and hosts) and
 * ControlAllowFrom= (the control port), as lists of address prefixes.
 *
 * Item syntax (space separated, list keys accumulate, an empty assignment resets that key's
 * rules): PREFIX applies to the whole tunnel; SCOPE=PREFIX only to one public port (TCP mode,
 * "3389=192.0.2.0/24") or one host name (HTTP mode, "app.example.com=10.0.0.0/8", matched
 * without case and without port). "any" stands for 0.0.0.0/0 and ::/0.
 *
 * Decision, as systemd's IPAddressAllow=/IPAddressDeny=: within one scope the most specific
 * matching rule wins (the longest prefix; an allow and a deny of the same prefix: allow); an
 * address no rule of the scope matches is allowed unless the scope has allow rules. A visitor
 * must be allowed by the tunnel-wide rules and by the rules of the port or host it reaches:
 * a port's rules narrow the tunnel-wide ones and never widen them (fail closed). */
#pragma once

#include <stdbool.h>

#include "in-addr-prefix.h"
#include "socket-util.h"

typedef struct AccessRule {
        AddressPrefix prefix;
        bool allow;
        char *scope;            /* NULL: the whole tunnel; else a port number or a lower-case host */
        bool scope_has_allow;   /* kept by the parser: whether this rule's scope holds an allow rule */
} AccessRule;

/* Rules of each kind (allow, deny) one list holds; "any" counts as two. */
#define ACCESS_RULES_MAX 4096

/* rules is kept sorted (by scope, family, prefix length longest first, address, allow first):
 * access_list_allows() searches it. Change it only through access_list_parse(). */
typedef struct AccessList {
        AccessRule *rules;
        size_t n_rules;
} AccessList;

/* Appends the items of one AllowFrom=/DenyFrom= value (allow says which); an empty value drops
 * the rules of that kind. scoped: whether SCOPE=PREFIX items are accepted (not for
 * ControlAllowFrom=). On error *reason names the item's problem and l is unchanged. */
int access_list_parse(AccessList *l, const char *value, bool allow, bool scoped, const char **reason);
/* The same; on a syntax error *ret_item (if given) is a copy of the offending item, for the
 * message. */
int access_list_parse_full(AccessList *l, const char *value, bool allow, bool scoped, const char **reason,
                           char **ret_item);
void access_list_done(AccessList *l);
/* The same rules (in the order they are kept: sorted). */
bool access_list_equal(const AccessList *a, const AccessList *b);
/* One rule as an item of its list: "PREFIX" or "SCOPE=PREFIX" (a host scope is at most 253
 * bytes). */
#define ACCESS_RULE_STR_MAX (256 + ADDRESS_PREFIX_STR_MAX)
const char *access_rule_format(const AccessRule *r, char buf[static ACCESS_RULE_STR_MAX]);
/* The decision for peer reaching scope (a port number as a string or a host name; NULL: only
 * the tunnel-wide rules). An empty list allows everyone. No allocation: called per connection
 * and per request. (A host may come with the ":PORT" of a Host: header: the port is ignored.) */
bool access_list_allows(const AccessList *l, const char *scope, const SocketAddress *peer);
