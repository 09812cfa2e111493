// SPDX-License-Identifier: LGPL-2.1-or-later
/* Parsing and formatting helpers; see util.h. */

#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <limits.h>
#include <netdb.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <stdarg.h>
#include <net/if.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"

#include "util.h"

uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

uint64_t realtime_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

int parse_boolean(const char *s) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcaseeq(s, yes[i]))
                        return 1;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcaseeq(s, no[i]))
                        return 0;
        return -EINVAL;
}

static int parse_u64(const char *s, uint64_t *ret, const char **ret_end) {
        char *end;
        unsigned long long v;

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
        int r = parse_u64(s, &v, &end);
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
        int r = parse_unsigned(s, &v);
        if (r < 0)
                return r;
        if (v == 0 || v > 65535)
                return -ERANGE;
        *ret = (uint16_t) v;
        return 0;
}

/* "30", "30s", "500ms", "2min", "1h"; several may be added: "1min 30s". */
int parse_sec(const char *s, uint64_t *ret_usec) {
        static const struct { const char *suffix; uint64_t mult; } units[] = {
                { "ms", USEC_PER_MSEC }, { "msec", USEC_PER_MSEC }, { "s", USEC_PER_SEC },
                { "sec", USEC_PER_SEC }, { "", USEC_PER_SEC }, { "m", 60 * USEC_PER_SEC },
                { "min", 60 * USEC_PER_SEC }, { "h", 3600 * USEC_PER_SEC },
        };
        uint64_t total = 0;
        bool any = false;

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

/* "1048576", "64K", "16M", "1G" (binary units). */
int parse_size(const char *s, uint64_t *ret) {
        uint64_t v, mult = 1;
        const char *end;
        int r = parse_u64(s, &v, &end);
        if (r < 0)
                return r;
        if (streq(end, "K") || streq(end, "KiB"))
                mult = 1024;
        else if (streq(end, "M") || streq(end, "MiB"))
                mult = 1024 * 1024;
        else if (streq(end, "G") || streq(end, "GiB"))
                mult = 1024 * 1024 * 1024;
        else if (*end)
                return -EINVAL;
        if (v > UINT64_MAX / mult)
                return -ERANGE;
        *ret = v * mult;
        return 0;
}

int split_host_port(const char *s, uint16_t default_port, char **ret_host, uint16_t *ret_port) {
        _cleanup_free_ char *host = NULL;
        const char *port = NULL;
        uint16_t p = default_port;
        int r;

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

int socket_address_parse(const char *s, uint16_t default_port, SocketAddress *ret) {
        _cleanup_free_ char *host = NULL;
        SocketAddress a = {};
        uint16_t port;
        int r;

        r = split_host_port(s, default_port, &host, &port);
        if (r < 0)
                return r;

        if (host[0] == 0 || streq(host, "*")) {
                a.in6.sin6_family = AF_INET6; /* dual-stack any */
                a.in6.sin6_addr = in6addr_any;
                a.in6.sin6_port = htons(port);
                a.len = sizeof(a.in6);
        } else if (inet_pton(AF_INET, host, &a.in.sin_addr) == 1) {
                a.in.sin_family = AF_INET;
                a.in.sin_port = htons(port);
                a.len = sizeof(a.in);
        } else {
                char *pct = strchr(host, '%');
                if (pct) {
                        *pct = 0;
                        a.in6.sin6_scope_id = if_nametoindex(pct + 1);
                        if (a.in6.sin6_scope_id == 0)
                                return -EINVAL;
                }
                if (inet_pton(AF_INET6, host, &a.in6.sin6_addr) != 1)
                        return -EINVAL;
                a.in6.sin6_family = AF_INET6;
                a.in6.sin6_port = htons(port);
                a.len = sizeof(a.in6);
        }
        *ret = a;
        return 0;
}

const char *socket_address_format(const SocketAddress *a, char buf[static SOCKADDR_STR_MAX]) {
        char ip[INET6_ADDRSTRLEN];

        if (a->sa.sa_family == AF_INET) {
                inet_ntop(AF_INET, &a->in.sin_addr, ip, sizeof(ip));
                snprintf(buf, SOCKADDR_STR_MAX, "%s:%u", ip, ntohs(a->in.sin_port));
        } else if (a->sa.sa_family == AF_INET6) {
                if (IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr)) {
                        inet_ntop(AF_INET, &a->in6.sin6_addr.s6_addr[12], ip, sizeof(ip));
                        snprintf(buf, SOCKADDR_STR_MAX, "%s:%u", ip, ntohs(a->in6.sin6_port));
                } else {
                        inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof(ip));
                        snprintf(buf, SOCKADDR_STR_MAX, "[%s]:%u", ip, ntohs(a->in6.sin6_port));
                }
        } else
                snprintf(buf, SOCKADDR_STR_MAX, "(unknown)");
        return buf;
}

uint16_t socket_address_port(const SocketAddress *a) {
        return ntohs(a->sa.sa_family == AF_INET ? a->in.sin_port : a->in6.sin6_port);
}

void socket_address_set_port(SocketAddress *a, uint16_t port) {
        if (a->sa.sa_family == AF_INET)
                a->in.sin_port = htons(port);
        else
                a->in6.sin6_port = htons(port);
}

int read_full_file(const char *path, size_t max_size, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, cap = 4096;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k;
                if (n == cap) {
                        char *b;
                        if (cap >= max_size)
                                return -EFBIG;
                        cap = MIN(cap * 2, max_size);
                        b = realloc(buf, cap + 1);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                }
                k = read(fd, buf + n, cap - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = 0;
        if (ret_size)
                *ret_size = n;
        *ret = TAKE_PTR(buf);
        return 0;
}

int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        const uint8_t *p = data;

        if (asprintf(&tmp, "%s.tmpXXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fchmod(fd, mode) < 0)
                goto fail;
        while (size > 0) {
                ssize_t k = write(fd, p, size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        goto fail;
                }
                p += k;
                size -= (size_t) k;
        }
        if (fsync(fd) < 0 || rename(tmp, path) < 0)
                goto fail;
        return 0;
fail:;
        int r = -errno;
        (void) unlink(tmp);
        return r;
}

int random_bytes(void *buf, size_t n) {
        return gnutls_rnd(GNUTLS_RND_KEY, buf, n) < 0 ? -EIO : 0;
}

char *hexmem(const void *p, size_t n) {
        static const char hex[] = "0123456789abcdef";
        const uint8_t *b = p;
        char *s = malloc(n * 2 + 1);
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

/* Accepts "ab12..." and "AB:12:..." (as openssl and gnutls print fingerprints). */
int unhexmem(const char *s, void *ret, size_t n) {
        uint8_t *b = ret;
        size_t i = 0;

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

int random_token(char **ret) {
        uint8_t b[32];
        char *s;
        int r = random_bytes(b, sizeof(b));
        if (r < 0)
                return r;
        s = hexmem(b, sizeof(b));
        explicit_bzero(b, sizeof(b));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

char *base64mem(const void *p, size_t n) {
        static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const uint8_t *b = p;
        char *s = malloc((n + 2) / 3 * 4 + 1), *o = s;
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
        size_t n = strlen(s), o = 0;
        _cleanup_free_ char *r = NULL;
        uint32_t acc = 0;
        int bits = 0, pad = 0;

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

int sha256(const void *data, size_t n, uint8_t ret[static 32]) {
        return gnutls_hash_fast(GNUTLS_DIG_SHA256, data, n, ret) < 0 ? -EIO : 0;
}

bool secret_equal(const char *a, size_t alen, const char *b, size_t blen) {
        uint8_t ha[32], hb[32];
        uint8_t d = 0;

        /* Hashing first makes the comparison independent of the lengths too. */
        if (sha256(a, alen, ha) < 0 || sha256(b, blen, hb) < 0)
                return false;
        for (size_t i = 0; i < sizeof(ha); i++)
                d |= ha[i] ^ hb[i];
        return d == 0;
}

int errorf(char **ret_error, int r, const char *format, ...) {
        va_list ap;
        char *m = NULL;

        if (ret_error) {
                va_start(ap, format);
                if (vasprintf(&m, format, ap) < 0)
                        m = NULL;
                va_end(ap);
                free(*ret_error);
                *ret_error = m;
        }
        return r < 0 ? r : -EINVAL;
}

uint16_t authority_port(const char *authority) {
        const char *c = authority ? strrchr(authority, ':') : NULL;
        uint16_t p = 0;
        if (c)
                (void) parse_port(c + 1, &p);
        return p;
}

char *strstrip(char *s) {
        char *e;
        s += strspn(s, " \t\r\n");
        e = s + strlen(s);
        while (e > s && strchr(" \t\r\n", e[-1]))
                e--;
        *e = 0;
        return s;
}

bool string_is_safe_id(const char *s, size_t max_len) {
        size_t n = strlen(s);
        if (n == 0 || n > max_len)
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char) *s) && !strchr("._@-", *s))
                        return false;
        return true;
}

int strv_push(char ***l, size_t *n, char *value) {
        char **t;

        if (!value) /* a failed strdup() passed straight in */
                return -ENOMEM;
        t = realloc(*l, sizeof(char *) * (*n + 2));
        if (!t) {
                free(value);
                return -ENOMEM;
        }
        t[(*n)++] = value;
        t[*n] = NULL;
        *l = t;
        return 0;
}

size_t socket_outq(int fd) {
        int n = 0;

        if (ioctl(fd, SIOCOUTQ, &n) < 0 || n < 0)
                return 0;
        return (size_t) n;
}

bool strv_contains(char *const *l, size_t n, const char *s) {
        for (size_t i = 0; i < n; i++)
                if (streq(l[i], s))
                        return true;
        return false;
}

int socket_listen_tcp(const SocketAddress *a, int *ret_fd) {
        _cleanup_close_ int fd = -1;
        int one = 1, zero = 0;

        fd = socket(a->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (a->sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&a->in6.sin6_addr))
                (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        /* Accepted sockets inherit TCP_NODELAY from their listener: no setsockopt() per
         * connection. */
        socket_set_nodelay(fd);
        if (bind(fd, &a->sa, a->len) < 0)
                return -errno;
        if (listen(fd, SOMAXCONN) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

void socket_set_nodelay(int fd) {
        int one = 1;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

char *bus_label_escape(const char *s) {
        char *r = malloc(strlen(s) * 3 + 2), *o = r;
        if (!r)
                return NULL;
        if (!*s) {
                strcpy(r, "_");
                return r;
        }
        for (size_t i = 0; s[i]; i++) {
                unsigned char c = (unsigned char) s[i];
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9'))
                        *o++ = (char) c;
                else
                        o += sprintf(o, "_%02x", c);
        }
        *o = 0;
        return r;
}

char *bus_label_unescape(const char *s) {
        char *r = malloc(strlen(s) + 1), *o = r;
        if (!r)
                return NULL;
        if (streq(s, "_")) {
                *r = 0;
                return r;
        }
        for (size_t i = 0; s[i]; i++) {
                if (s[i] == '_' && s[i + 1] && s[i + 2] && unhexchar(s[i + 1]) >= 0 && unhexchar(s[i + 2]) >= 0) {
                        *o++ = (char) (unhexchar(s[i + 1]) << 4 | unhexchar(s[i + 2]));
                        i += 2;
                } else
                        *o++ = s[i];
        }
        *o = 0;
        return r;
}

static int spare_fd = -1;

int accept_shed(int fd, SocketAddress *ret_peer) {
        static RateLimit rl = { .interval_usec = 10 * USEC_PER_SEC, .burst = 1 };
        SocketAddress peer = { .len = sizeof(peer.storage) };
        int cfd;

        cfd = accept4(fd, &peer.sa, &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd >= 0) {
                if (ret_peer)
                        *ret_peer = peer;
                return cfd;
        }
        if (errno == EMFILE || errno == ENFILE) {
                /* The connection stays queued and epoll would report it again at once: use the
                 * spare descriptor to take it off the queue and close it, instead of spinning. */
                int r = -errno;
                if (ratelimit_below(&rl))
                        log_warning_errno(r, "Cannot accept connections: %m; refusing new ones until "
                                             "descriptors are free.");
                spare_fd = safe_close(spare_fd);
                cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
                safe_close(cfd);
                spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                return -EAGAIN;
        }
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_debug_errno(errno, "Failed to accept a connection: %m");
        return -EAGAIN;
}

void accept_batch(int fd, unsigned max, accept_func_t f, void *userdata) {
        for (unsigned i = 0; i < max; i++) {
                SocketAddress peer;
                int cfd = accept_shed(fd, &peer);

                if (cfd < 0 || f(cfd, &peer, userdata) < 0)
                        return;
        }
}

void raise_fd_limit(void) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) >= 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
        if (spare_fd < 0)
                spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

char *asprintf_safe(const char *format, ...) {
        va_list ap;
        char *s;
        int r;

        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        return r < 0 ? NULL : s;
}

int resolve_addresses(const char *host, SocketAddress **ret, size_t *ret_n) {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG }, *ai = NULL;
        SocketAddress *l;
        size_t n = 0;
        int r;

        r = getaddrinfo(host, "1", &hints, &ai);
        if (r == EAI_SYSTEM)
                return -errno;
        if (r != 0)
                return -EHOSTUNREACH;
        for (struct addrinfo *i = ai; i; i = i->ai_next)
                n++;
        l = new0(SocketAddress, n);
        if (!l) {
                freeaddrinfo(ai);
                return -ENOMEM;
        }
        n = 0;
        for (struct addrinfo *i = ai; i; i = i->ai_next)
                if (i->ai_addrlen <= sizeof(struct sockaddr_storage)) {
                        memcpy(&l[n].storage, i->ai_addr, i->ai_addrlen);
                        l[n++].len = i->ai_addrlen;
                }
        freeaddrinfo(ai);
        *ret = l;
        *ret_n = n;
        return 0;
}

int socket_connect_next(const SocketAddress *addrs, size_t n, size_t *next, uint16_t port, bool *ret_connected) {
        while (*next < n) {
                SocketAddress a = addrs[(*next)++];
                int fd;

                socket_address_set_port(&a, port);
                fd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        continue;
                socket_set_nodelay(fd);
                if (connect(fd, &a.sa, a.len) < 0 && errno != EINPROGRESS) {
                        safe_close(fd);
                        continue;
                }
                if (ret_connected) {
                        /* To a local address the handshake is over when connect() returns (the
                         * kernel ran both ends before it did): asking again says so, and saves
                         * waiting for EPOLLOUT (two epoll_ctl() and a loop iteration). */
                        *ret_connected = false;
                        if (connect(fd, &a.sa, a.len) == 0 || errno == EISCONN)
                                *ret_connected = true;
                        else if (errno != EALREADY && errno != EINPROGRESS) {
                                safe_close(fd); /* refused at once */
                                continue;
                        }
                }
                return fd;
        }
        return -ECONNREFUSED;
}

int buffer_reserve(uint8_t **buf, size_t *off, size_t len, size_t *cap, size_t n) {
        if (*off + len + n <= *cap)
                return 0;
        if (*off > 0) {
                memmove(*buf, *buf + *off, len);
                *off = 0;
        }
        if (len + n > *cap) {
                size_t c = MAX(MAX(*cap * 2, len + n), (size_t) 16384);
                uint8_t *t = realloc(*buf, c);
                if (!t)
                        return -ENOMEM;
                *buf = t;
                *cap = c;
        }
        return 0;
}
