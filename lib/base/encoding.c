// SPDX-License-Identifier: LGPL-2.1-or-later
/* Hex and base64 encoding; see encoding.h.
 * Byte loops without tables beyond the alphabets: these run on tokens and keys, not data. */

#include <assert.h>

#include "encoding.h"
#include "macro.h"

char *hexmem(const void *p, size_t n) {
        static const char hex[] = "0123456789abcdef";
        const uint8_t *b = p;
        char *s;

        assert(p || n == 0);

        s = malloc(n * 2 + 1);
        if (!s)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                s[2 * i] = hex[b[i] >> 4];
                s[2 * i + 1] = hex[b[i] & 15];
        }
        s[n * 2] = 0;
        return s;
}

int unhexchar(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -EINVAL;
}

int unhexmem(const char *s, void *ret, size_t n) {
        uint8_t *b = ret;
        size_t i = 0;

        assert(s);
        assert(ret || n == 0);

        while (*s) {
                int hi, lo;
                if (*s == ':') {
                        s++;
                        continue;
                }
                hi = unhexchar(s[0]);
                lo = s[1] ? unhexchar(s[1]) : -EINVAL;
                if (hi < 0 || lo < 0 || i >= n)
                        return -EINVAL;
                b[i++] = (uint8_t) (hi << 4 | lo);
                s += 2;
        }
        return i == n ? 0 : -EINVAL;
}

char *base64mem(const void *p, size_t n) {
        static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const uint8_t *b = p;
        char *s, *o;

        assert(p || n == 0);

        s = o = malloc((n + 2) / 3 * 4 + 1);
        if (!s)
                return NULL;
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t) b[i] << 16 | (i + 1 < n ? (uint32_t) b[i + 1] << 8 : 0) |
                             (i + 2 < n ? b[i + 2] : 0);
                *o++ = t[v >> 18 & 63];
                *o++ = t[v >> 12 & 63];
                *o++ = i + 1 < n ? t[v >> 6 & 63] : '=';
                *o++ = i + 2 < n ? t[v & 63] : '=';
        }
        *o = 0;
        return s;
}

char *base64url_mem(const void *p, size_t n) {
        char *s = base64mem(p, n);
        if (!s)
                return NULL;
        for (char *c = s; *c; c++)
                if (*c == '+')
                        *c = '-';
                else if (*c == '/')
                        *c = '_';
                else if (*c == '=') {
                        *c = 0;
                        break;
                }
        return s;
}

int unbase64mem(const char *s, char **ret, size_t *ret_len) {
        size_t n, o = 0;
        _cleanup_free_ char *r = NULL;
        uint32_t acc = 0;
        int bits = 0, pad = 0;

        assert(s);
        assert(ret);

        n = strlen(s);
        if (n % 4 != 0)
                return -EINVAL;
        r = malloc(n / 4 * 3 + 1);
        if (!r)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                int v;
                if (c == '=') {
                        if (i < n - 2)
                                return -EINVAL;
                        pad++;
                        continue;
                }
                if (pad)
                        return -EINVAL;
                v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26
                  : c >= '0' && c <= '9' ? c - '0' + 52 : c == '+' ? 62 : c == '/' ? 63 : -1;
                if (v < 0)
                        return -EINVAL;
                acc = acc << 6 | (uint32_t) v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        r[o++] = (char) (acc >> bits);
                }
        }
        r[o] = 0;
        if (ret_len)
                *ret_len = o;
        *ret = TAKE_PTR(r);
        return 0;
}
