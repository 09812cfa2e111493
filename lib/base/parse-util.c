// SPDX-License-Identifier: LGPL-2.1-or-later
/* Value parsers for configuration and command lines; see parse-util.h.
 * They share one strict unsigned reader, parse_u64(). */

#include <assert.h>
#include <ctype.h>
#include <limits.h>

#include "macro.h"
#include "parse-util.h"
#include "time-util.h"

int parse_boolean(const char *s) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

        assert(s);

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcaseeq(s, yes[i]))
                        return 1;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcaseeq(s, no[i]))
                        return 0;
        return -EINVAL;
}

/* Leading digits of s (no sign, no space); *ret_end points after them. */
static int parse_u64(const char *s, uint64_t *ret, const char **ret_end) {
        char *end;
        unsigned long long v;

        assert(s);
        assert(ret);
        assert(ret_end);

        if (!isdigit((unsigned char) *s))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        *ret = v;
        *ret_end = end;
        return 0;
}

int parse_unsigned(const char *s, unsigned *ret) {
        uint64_t v;
        const char *end;
        int r;

        assert(ret);

        r = parse_u64(s, &v, &end);
        if (r < 0)
                return r;
        if (*end)
                return -EINVAL;
        if (v > UINT_MAX)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

int parse_port(const char *s, uint16_t *ret) {
        unsigned v;
        int r;

        assert(ret);

        r = parse_unsigned(s, &v);
        if (r < 0)
                return r;
        if (v == 0 || v > 65535)
                return -ERANGE;
        *ret = (uint16_t) v;
        return 0;
}

int parse_sec(const char *s, uint64_t *ret_usec) {
        static const struct { const char *suffix; uint64_t mult; } units[] = {
                { "ms", USEC_PER_MSEC }, { "msec", USEC_PER_MSEC }, { "s", USEC_PER_SEC },
                { "sec", USEC_PER_SEC }, { "", USEC_PER_SEC }, { "m", 60 * USEC_PER_SEC },
                { "min", 60 * USEC_PER_SEC }, { "h", 3600 * USEC_PER_SEC },
        };
        uint64_t total = 0;
        bool any = false;

        assert(s);
        assert(ret_usec);

        while (*s) {
                uint64_t v;
                const char *end;
                size_t n;
                bool found = false;
                int r;

                s += strspn(s, " \t");
                if (!*s)
                        break;
                r = parse_u64(s, &v, &end);
                if (r < 0)
                        return r;
                n = strcspn(end, " \t0123456789");
                for (size_t i = 0; i < ELEMENTSOF(units); i++)
                        if (strlen(units[i].suffix) == n && strncmp(end, units[i].suffix, n) == 0) {
                                if (v > UINT64_MAX / units[i].mult / 2)
                                        return -ERANGE;
                                total += v * units[i].mult;
                                found = true;
                                break;
                        }
                if (!found)
                        return -EINVAL;
                s = end + n;
                any = true;
        }
        if (!any)
                return -EINVAL;
        *ret_usec = total;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        static const struct { const char *suffix; uint64_t mult; } units[] = {
                { "", 1 },
                { "K", 1024 }, { "KiB", 1024 },
                { "M", 1024 * 1024 }, { "MiB", 1024 * 1024 },
                { "G", 1024 * 1024 * 1024 }, { "GiB", 1024 * 1024 * 1024 },
        };
        const char *end;
        uint64_t v;
        int r;

        assert(ret);

        r = parse_u64(s, &v, &end);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (streq(end, units[i].suffix)) {
                        if (v > UINT64_MAX / units[i].mult)
                                return -ERANGE;
                        *ret = v * units[i].mult;
                        return 0;
                }
        return -EINVAL;
}

int split_host_port(const char *s, uint16_t default_port, char **ret_host, uint16_t *ret_port) {
        _cleanup_free_ char *host = NULL;
        const char *port = NULL;
        uint16_t p = default_port;
        int r;

        assert(s);
        assert(ret_host);
        assert(ret_port);

        if (s[0] == '[') {
                const char *e = strchr(s, ']');
                if (!e)
                        return -EINVAL;
                host = strndup(s + 1, e - s - 1);
                if (e[1] == ':')
                        port = e + 2;
                else if (e[1])
                        return -EINVAL;
        } else {
                const char *c = strrchr(s, ':');
                if (c && strchr(s, ':') == c) { /* exactly one colon: host:port */
                        host = strndup(s, c - s);
                        port = c + 1;
                } else
                        host = strdup(s); /* no colon, or a bare IPv6 address */
        }
        if (!host)
                return -ENOMEM;
        if (port) {
                r = parse_port(port, &p);
                if (r < 0)
                        return r;
        }
        if (p == 0)
                return -EINVAL;
        *ret_host = TAKE_PTR(host);
        *ret_port = p;
        return 0;
}

uint16_t authority_port(const char *authority) {
        const char *c = authority ? strrchr(authority, ':') : NULL;
        uint16_t p = 0;
        if (c)
                (void) parse_port(c + 1, &p);
        return p;
}
