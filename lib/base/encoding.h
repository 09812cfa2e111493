// SPDX-License-Identifier: LGPL-2.1-or-later
/* Hex and base64 (RFC 4648) encoders and decoders. Encoders return a new NUL-terminated
 * string, or NULL when out of memory. */
#pragma once

#include <stddef.h>

char *hexmem(const void *p, size_t n); /* lower case */
int unhexchar(char c);                 /* 0-15, or -EINVAL */
/* Exactly n bytes from "ab12..." or "AB:12:..." (as openssl and gnutls print fingerprints);
 * -EINVAL on anything else. */
int unhexmem(const char *s, void *ret, size_t n);
char *base64mem(const void *p, size_t n);
char *base64url_mem(const void *p, size_t n); /* RFC 4648 §5, no padding (JOSE) */
/* Standard base64 with padding; -EINVAL on anything else. ret is NUL-terminated. */
int unbase64mem(const char *s, char **ret, size_t *ret_len);
