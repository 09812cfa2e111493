// SPDX-License-Identifier: LGPL-2.1-or-later
/* The fileserver; see fileserver.h. One FsConn per HTTP/1.1 connection: read a head, answer
 * (GET or HEAD), keep alive. Files go out with sendfile(). Paths are resolved with openat2()
 * and RESOLVE_BENEATH against the webroot, so neither "..", symlinks nor anything else can
 * leave it; url_path_resolve() has already refused encoded slashes, NULs and dot segments.
 *
 * One timer per connection, always armed, bounds what the peer can make us wait for: a head,
 * within HandshakeTimeoutSec= of its start (accept, or the first byte after a response; bytes
 * that keep trickling do not extend it); between requests, IdleTimeoutSec=; while a response
 * goes out, IdleTimeoutSec= without a byte taken (a download that moves is never cut, one
 * nobody reads does not hold the file and the slot for ever). */

#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "crypto-util.h"
#include "encoding.h"
#include "fileserver.h"
#include "http1.h"
#include "log.h"
#include "macro.h"
#include "ratelimit.h"
#include "socket-util.h"
#include "time-util.h"
#include "urlpath.h"

typedef struct FsConn FsConn;

typedef enum FsTimer {
        FS_TIMER_HEAD,
        FS_TIMER_IDLE,
        FS_TIMER_WRITE,
} FsTimer;

struct FileServer {
        Manager *manager;
        int listen_fd, root_fd;
        sd_event_source *io;
        FsConn *conns;
        unsigned n_conns;
        uint64_t requests, bytes_out;
        RateLimit auth_log;
};

struct FsConn {
        FileServer *fs;
        FsConn *prev, *next;
        int fd;
        sd_event_source *io, *timer;
        char remote[SOCKADDR_STR_MAX];
        char in[HTTP_HEAD_MAX_DEFAULT];
        size_t in_len;
        char *out;
        size_t out_len, out_off;
        int file_fd;
        off_t file_off;
        uint64_t file_left;
        FsTimer timer_kind;
        size_t outq_mark;       /* socket_outq() when FS_TIMER_WRITE was armed */
        bool keep_alive, writing;
};

static const Definition *def(FileServer *f) {
        assert(f);
        return f->manager->def;
}

static void set_timer(FsConn *c, FsTimer kind) {
        const Definition *d = def(c->fs);

        c->timer_kind = kind;
        if (kind == FS_TIMER_WRITE)
                c->outq_mark = socket_outq(c->fd);
        (void) sd_event_source_set_time_relative(c->timer, kind == FS_TIMER_HEAD ? d->handshake_timeout_usec
                                                                                 : d->idle_timeout_usec);
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

static FsConn *conn_free(FsConn *c) {
        FileServer *f;

        if (!c)
                return NULL;
        f = c->fs;
        LIST_REMOVE(f->conns, c);
        f->n_conns--;
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        safe_close(c->fd);
        safe_close(c->file_fd);
        free(c->out);
        free(c);
        return NULL;
}

static const char *mime_type(const char *path) {
        static const struct { const char *ext, *type; } table[] = {
                { "html", "text/html; charset=utf-8" }, { "htm", "text/html; charset=utf-8" },
                { "css", "text/css; charset=utf-8" },   { "js", "text/javascript; charset=utf-8" },
                { "json", "application/json" },         { "txt", "text/plain; charset=utf-8" },
                { "md", "text/markdown; charset=utf-8" }, { "xml", "application/xml" },
                { "svg", "image/svg+xml" },             { "png", "image/png" },
                { "jpg", "image/jpeg" },                { "jpeg", "image/jpeg" },
                { "gif", "image/gif" },                 { "webp", "image/webp" },
                { "ico", "image/vnd.microsoft.icon" },  { "pdf", "application/pdf" },
                { "zip", "application/zip" },           { "gz", "application/gzip" },
                { "tar", "application/x-tar" },         { "mp4", "video/mp4" },
                { "webm", "video/webm" },               { "mp3", "audio/mpeg" },
                { "wasm", "application/wasm" },         { "csv", "text/csv; charset=utf-8" },
        };
        const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
        if (dot && (!slash || dot > slash))
                for (size_t i = 0; i < ELEMENTSOF(table); i++)
                        if (strcaseeq(dot + 1, table[i].ext))
                                return table[i].type;
        return "application/octet-stream";
}

static void http_date(time_t t, char buf[static 64]) {
        struct tm tm;
        strftime(buf, 64, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&t, &tm));
}

/* Queues a complete response head (and a small body). */
static int respond(FsConn *c, int status, const char *reason, const char *extra, const char *type,
                   const char *body, size_t body_len, uint64_t content_length, bool head_only) {
        char date[64];
        _cleanup_free_ char *h = NULL;
        int n;

        http_date(time(NULL), date);
        n = asprintf(&h,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: inletsd\r\nContent-Length: %" PRIu64 "\r\n"
                     "%s%s%sX-Content-Type-Options: nosniff\r\nConnection: %s\r\n%s\r\n",
                     status, reason, date, content_length, type ? "Content-Type: " : "", type ?: "",
                     type ? "\r\n" : "", c->keep_alive ? "keep-alive" : "close", extra ?: "");
        if (n < 0)
                return -ENOMEM;
        free(c->out);
        c->out = malloc((size_t) n + (head_only ? 0 : body_len));
        if (!c->out)
                return -ENOMEM;
        memcpy(c->out, h, (size_t) n);
        if (!head_only && body_len > 0)
                memcpy(c->out + n, body, body_len);
        c->out_len = (size_t) n + (head_only ? 0 : body_len);
        c->out_off = 0;
        return 0;
}

static int respond_error(FsConn *c, int status, const char *reason, const char *extra, bool head_only) {
        char body[128];
        int n = snprintf(body, sizeof(body), "%d %s\n", status, reason);
        return respond(c, status, reason, extra, "text/plain; charset=utf-8", body, (size_t) n, (uint64_t) n, head_only);
}

static bool authorized(FsConn *c, const HttpHead *h) {
        const Definition *d = def(c->fs);
        const char *a = http_head_get(h, "Authorization");
        _cleanup_(erase_and_freep) char *decoded = NULL, *expected = NULL;
        size_t n;

        if (!d->basic_auth)
                return true;
        if (!a || strncasecmp(a, "Basic ", 6) != 0 || unbase64mem(a + 6, &decoded, &n) < 0 ||
            asprintf(&expected, "admin:%s", d->token) < 0)
                return false;
        return secret_equal(decoded, n, expected, strlen(expected));
}

static int open_beneath(int root, const char *rel, int flags);

static int cmp_dirent(const void *a, const void *b) {
        const struct dirent *x = *(struct dirent *const *) a, *y = *(struct dirent *const *) b;
        bool dx = x->d_type == DT_DIR, dy = y->d_type == DT_DIR;
        if (dx != dy)
                return dx ? -1 : 1;
        return strcmp(x->d_name, y->d_name);
}

static int listing(FsConn *c, int dfd, const char *rel, bool head_only) {
        _cleanup_free_ char *title = NULL, *esc = NULL;
        char *buf = NULL;
        size_t size = 0, n = 0;
        struct dirent **ents = NULL, *de;
        FILE *f;
        DIR *d;
        int fd2, r;

        fd2 = dup(dfd);
        if (fd2 < 0 || !(d = fdopendir(fd2))) {
                safe_close(fd2);
                return respond_error(c, 500, "Internal Server Error", NULL, head_only);
        }
        while ((de = readdir(d))) {
                struct dirent **t;
                if (de->d_name[0] == '.' && (streq(de->d_name, ".") || streq(de->d_name, "..") ||
                                             !def(c->fs)->allow_hidden))
                        continue;
                t = realloc(ents, sizeof(*t) * (n + 1));
                if (!t)
                        break;
                ents = t;
                ents[n] = malloc(sizeof(struct dirent));
                if (!ents[n])
                        break;
                memcpy(ents[n], de, sizeof(struct dirent));
                if (ents[n]->d_type == DT_UNKNOWN || ents[n]->d_type == DT_LNK) {
                        /* Resolved as a request would be: what points out of the webroot is not
                         * shown at all (its size or type would tell about the outside). */
                        _cleanup_free_ char *p = NULL;
                        _cleanup_close_ int efd = -1;
                        struct stat st;
                        if (asprintf(&p, "%s/%s", rel, de->d_name) < 0 ||
                            (efd = open_beneath(c->fs->root_fd, p, O_RDONLY | O_NONBLOCK)) < 0 || fstat(efd, &st) < 0) {
                                free(ents[n]);
                                continue;
                        }
                        ents[n]->d_type = S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
                }
                n++;
        }
        qsort(ents, n, sizeof(*ents), cmp_dirent);

        if (asprintf(&title, "/%s%s", streq(rel, ".") ? "" : rel, streq(rel, ".") ? "" : "/") < 0 ||
            !(esc = html_escape(title)) || !(f = open_memstream(&buf, &size))) {
                closedir(d);
                for (size_t i = 0; i < n; i++)
                        free(ents[i]);
                free(ents);
                return respond_error(c, 500, "Internal Server Error", NULL, head_only);
        }
        fprintf(f,
                "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                "<title>Index of %s</title>\n<style>\nbody{font-family:system-ui,sans-serif;margin:2em;color:#222}"
                "table{border-collapse:collapse}td,th{padding:.25em 1.5em .25em 0;text-align:left}"
                "td.size{text-align:right;font-variant-numeric:tabular-nums}a{text-decoration:none}\n</style>\n"
                "</head>\n<body>\n<h1>Index of %s</h1>\n<table>\n"
                "<thead><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr></thead>\n<tbody>\n",
                esc, esc);
        if (!streq(rel, "."))
                fprintf(f, "<tr><td><a href=\"../\">../</a></td><td class=\"size\">-</td><td></td></tr>\n");
        for (size_t i = 0; i < n; i++) {
                struct stat st;
                _cleanup_free_ char *href = url_escape_segment(ents[i]->d_name), *name = html_escape(ents[i]->d_name);
                bool dir = ents[i]->d_type == DT_DIR;
                char when[32] = "", sz[32] = "-";
                if (href && name && fstatat(dirfd(d), ents[i]->d_name, &st, 0) >= 0) {
                        struct tm tm;
                        strftime(when, sizeof(when), "%Y-%m-%d %H:%M", gmtime_r(&st.st_mtime, &tm));
                        if (!dir)
                                snprintf(sz, sizeof(sz), "%lld", (long long) st.st_size);
                        fprintf(f, "<tr><td><a href=\"%s%s\">%s%s</a></td><td class=\"size\">%s</td><td>%s</td></tr>\n",
                                href, dir ? "/" : "", name, dir ? "/" : "", sz, when);
                }
                free(ents[i]);
        }
        free(ents);
        closedir(d);
        fprintf(f, "</tbody>\n</table>\n</body>\n</html>\n");
        fclose(f);
        r = respond(c, 200, "OK", "Cache-Control: no-cache\r\n", "text/html; charset=utf-8", buf, size, size,
                    head_only);
        free(buf);
        return r;
}

/* A single "bytes=" range; false when absent, multiple or malformed (then the whole file). */
static bool parse_range(const char *v, uint64_t size, uint64_t *ret_start, uint64_t *ret_end, bool *ret_unsat) {
        unsigned long long a, b;
        char extra;

        *ret_unsat = false;
        if (!v || strncmp(v, "bytes=", 6) != 0 || strchr(v, ','))
                return false;
        v += 6;
        if (v[0] == '-') {
                if (sscanf(v + 1, "%llu%c", &a, &extra) != 1 || a == 0) {
                        *ret_unsat = sscanf(v + 1, "%llu%c", &a, &extra) == 1;
                        return *ret_unsat;
                }
                if (size == 0) {
                        *ret_unsat = true;
                        return true;
                }
                *ret_start = a >= size ? 0 : size - a;
                *ret_end = size - 1;
                return true;
        }
        if (sscanf(v, "%llu-%c", &a, &extra) == 1 || (sscanf(v, "%llu-", &a) == 1 && v[strlen(v) - 1] == '-')) {
                b = size ? size - 1 : 0;
        } else if (sscanf(v, "%llu-%llu%c", &a, &b, &extra) != 2 || b < a)
                return false;
        if (a >= size) {
                *ret_unsat = true;
                return true;
        }
        *ret_start = a;
        *ret_end = MIN((uint64_t) b, size - 1);
        return true;
}

static int open_beneath(int root, const char *rel, int flags) {
        struct open_how how = {
                .flags = (uint64_t) (flags | O_CLOEXEC | O_NOCTTY),
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        int fd = (int) syscall(SYS_openat2, root, rel, &how, sizeof(how));
        return fd < 0 ? -errno : fd;
}

/* A regular file (fd, of path rel): conditional requests, ranges, then the head; the body goes
 * out from conn_write(). */
static int handle_file(FsConn *c, const HttpHead *h, const char *rel, int *fd, const struct stat *st,
                       bool head_only) {
        _cleanup_free_ char *extra = NULL;
        bool unsat = false;
        const char *v;
        char etag[64], lm[64], cr[128] = "";
        uint64_t start = 0, end = 0, size;
        int r;

        size = (uint64_t) st->st_size;
        snprintf(etag, sizeof(etag), "\"%llx-%llx\"", (unsigned long long) st->st_size,
                 (unsigned long long) st->st_mtim.tv_sec * 1000000000ULL + (unsigned long long) st->st_mtim.tv_nsec);
        http_date(st->st_mtime, lm);
        v = http_head_get(h, "If-None-Match");
        if (v ? (strstr(v, etag) || streq(v, "*")) : false)
                goto not_modified;
        if (!v && (v = http_head_get(h, "If-Modified-Since"))) {
                struct tm tm = {};
                if (strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm) && timegm(&tm) >= st->st_mtime)
                        goto not_modified;
        }

        v = http_head_get(h, "If-Range");
        if (parse_range(http_head_get(h, "Range"), size, &start, &end, &unsat) && (!v || streq(v, etag))) {
                if (unsat) {
                        snprintf(cr, sizeof(cr), "Content-Range: bytes */%" PRIu64 "\r\n", size);
                        return respond_error(c, 416, "Range Not Satisfiable", cr, head_only);
                }
                snprintf(cr, sizeof(cr), "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n", start, end, size);
        } else {
                start = 0;
                end = size ? size - 1 : 0;
        }
        if (asprintf(&extra, "Last-Modified: %s\r\nETag: %s\r\nAccept-Ranges: bytes\r\n%s", lm, etag, cr) < 0)
                return -ENOMEM;
        r = respond(c, *cr ? 206 : 200, *cr ? "Partial Content" : "OK", extra, mime_type(rel), NULL, 0,
                    size ? end - start + 1 : 0, true);
        if (r < 0 || head_only)
                return r;
        c->file_fd = TAKE_FD(*fd);
        c->file_off = (off_t) start;
        c->file_left = size ? end - start + 1 : 0;
        return 0;

not_modified:
        if (asprintf(&extra, "ETag: %s\r\nLast-Modified: %s\r\n", etag, lm) < 0)
                return -ENOMEM;
        /* 304 carries no body and no Content-Length of the file. */
        return respond(c, 304, "Not Modified", extra, NULL, NULL, 0, 0, true);
}

static int handle(FsConn *c, const HttpHead *h) {
        FileServer *fs = c->fs;
        _cleanup_free_ char *rel = NULL, *extra = NULL;
        _cleanup_close_ int fd = -1;
        bool head_only, dir_req;
        const char *v;
        struct stat st;
        int r;

        assert(c);
        assert(h);

        fs->requests++;
        head_only = streq(h->method, "HEAD");
        v = http_head_get(h, "Connection");
        c->keep_alive = h->http_major == 1 && (h->http_minor >= 1 ? !http_header_has_token(v, "close")
                                                                    : http_header_has_token(v, "keep-alive"));
        if (!streq(h->method, "GET") && !head_only) {
                c->keep_alive = false;
                return respond_error(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", false);
        }
        if (http_head_get(h, "Transfer-Encoding") ||
            ((v = http_head_get(h, "Content-Length")) && !streq(v, "0"))) {
                c->keep_alive = false; /* we will not read the body */
                return respond_error(c, 413, "Content Too Large", NULL, head_only);
        }
        if (!authorized(c, h)) {
                if (http_head_get(h, "Authorization") && ratelimit_below(&fs->auth_log))
                        log_conn(LOG_WARNING, NULL, c->remote, 0, "Fileserver: wrong credentials from %s.", c->remote);
                return respond_error(c, 401, "Unauthorized", "WWW-Authenticate: Basic realm=\"inletsd\", charset=\"UTF-8\"\r\n",
                                     head_only);
        }

        r = url_path_resolve(h->url, def(fs)->allow_hidden, &rel, &dir_req);
        if (r == -EACCES)
                return respond_error(c, 404, "Not Found", NULL, head_only);
        if (r < 0)
                return respond_error(c, 400, "Bad Request", NULL, head_only);
        fd = open_beneath(fs->root_fd, rel, O_RDONLY | O_NONBLOCK); /* a FIFO must not block us */
        if (fd < 0) {
                if (fd == -EXDEV || fd == -ELOOP)
                        log_debug("Fileserver: %s tried to leave the webroot with %s", c->remote, h->url);
                return fd == -EACCES || fd == -EPERM ? respond_error(c, 403, "Forbidden", NULL, head_only)
                                                     : respond_error(c, 404, "Not Found", NULL, head_only);
        }
        if (fstat(fd, &st) < 0)
                return respond_error(c, 500, "Internal Server Error", NULL, head_only);
        if (S_ISDIR(st.st_mode)) {
                if (!dir_req) {
                        /* Relative links in a listing need the trailing slash. */
                        if (asprintf(&extra, "Location: %.*s/\r\n", (int) strcspn(h->url, "?#"), h->url) < 0)
                                return -ENOMEM;
                        return respond_error(c, 301, "Moved Permanently", extra, head_only);
                }
                if (!def(fs)->allow_browsing)
                        return respond_error(c, 403, "Forbidden", NULL, head_only);
                return listing(c, fd, rel, head_only);
        }
        if (!S_ISREG(st.st_mode))
                return respond_error(c, 403, "Forbidden", NULL, head_only);
        return handle_file(c, h, rel, &fd, &st, head_only);
}

static void conn_process(FsConn *c);

/* Returns false when the connection was freed. */
static bool conn_write(FsConn *c) {
        uint64_t before = c->fs->bytes_out;

        while (c->out_off < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EAGAIN)
                                goto wait;
                        conn_free(c);
                        return false;
                }
                c->out_off += (size_t) n;
                c->fs->bytes_out += (uint64_t) n;
        }
        while (c->file_left > 0) {
                ssize_t n = sendfile(c->fd, c->file_fd, &c->file_off, MIN(c->file_left, (uint64_t) (4 << 20)));
                if (n < 0 && errno == EAGAIN)
                        goto wait;
                if (n <= 0) { /* error, or the file shrank under us */
                        conn_free(c);
                        return false;
                }
                c->file_left -= (uint64_t) n;
                c->fs->bytes_out += (uint64_t) n;
        }
        /* Response complete. */
        c->file_fd = safe_close(c->file_fd);
        c->out = mfree(c->out);
        c->out_len = c->out_off = 0;
        c->writing = false;
        if (!c->keep_alive) {
                (void) shutdown(c->fd, SHUT_WR);
                conn_free(c);
                return false;
        }
        (void) sd_event_source_set_io_events(c->io, EPOLLIN);
        /* Bytes of the next request already here (pipelining) start its head's clock now. */
        set_timer(c, c->in_len > 0 ? FS_TIMER_HEAD : FS_TIMER_IDLE);
        return true;

wait:
        /* The socket is full: the stall bound counts from the last byte it took, so only a
         * wakeup that moved something re-arms it (once per buffer-full, not per byte). */
        if (c->fs->bytes_out != before)
                set_timer(c, FS_TIMER_WRITE);
        return true;
}

/* MaxHeaderBytes= as on the other HTTP paths, within the connection's own 8 KiB: a browser's
 * GET needs no more. */
static size_t head_max(FsConn *c) {
        return MIN(sizeof(c->in), def(c->fs)->max_header_bytes);
}

/* Answers every complete request in the buffer (pipelining), one at a time. */
static void conn_process(FsConn *c) {
        while (!c->writing) {
                _cleanup_(http_head_freep) HttpHead *h = NULL;
                ssize_t end = http_head_end(c->in, c->in_len, head_max(c));
                int r;

                if (end == 0)
                        return;
                c->keep_alive = false;
                if (end < 0)
                        r = respond_error(c, 431, "Request Header Fields Too Large", NULL, false);
                else if ((r = http_head_parse(c->in, (size_t) end, true, def(c->fs)->max_headers, &h)) < 0)
                        r = r == -E2BIG ? respond_error(c, 431, "Request Header Fields Too Large", NULL, false)
                                        : respond_error(c, 400, "Bad Request", NULL, false);
                else
                        r = handle(c, h);
                if (r < 0) {
                        conn_free(c);
                        return;
                }
                if (end > 0) {
                        memmove(c->in, c->in + end, c->in_len - (size_t) end);
                        c->in_len -= (size_t) end;
                }
                log_debug("Fileserver: %s %s %s", c->remote, h ? h->method : "-", h ? h->url : "(bad request)");
                c->writing = true;
                set_timer(c, FS_TIMER_WRITE);
                (void) sd_event_source_set_io_events(c->io, EPOLLOUT);
                if (!conn_write(c))
                        return;
        }
}

static int conn_handler(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        FsConn *c = userdata;

        if (c->writing) {
                if (conn_write(c))
                        conn_process(c);
                return 0;
        }
        for (;;) {
                ssize_t n;
                if (c->in_len >= head_max(c)) {
                        conn_process(c); /* answers 431 */
                        return 0;
                }
                n = recv(fd, c->in + c->in_len, head_max(c) - c->in_len, MSG_DONTWAIT);
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n <= 0) {
                        conn_free(c);
                        return 0;
                }
                c->in_len += (size_t) n;
        }
        /* The first byte of a head after an idle wait starts its clock; later bytes do not move
         * it (re-arming here let one byte a second hold a connection for ever). */
        if (c->timer_kind == FS_TIMER_IDLE && c->in_len > 0)
                set_timer(c, FS_TIMER_HEAD);
        conn_process(c);
        return 0;
}

static int conn_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        FsConn *c = userdata;

        /* A download whose bytes leave the kernel's queue is moving, even when no wakeup came
         * (one comes only once half the socket buffer drained). */
        if (c->timer_kind == FS_TIMER_WRITE) {
                size_t q = socket_outq(c->fd);
                if (q < c->outq_mark) {
                        set_timer(c, FS_TIMER_WRITE); /* marks the queue anew */
                        return 0;
                }
        }
        conn_free(c);
        return 0;
}

static int conn_watch(FsConn *c) {
        FileServer *fs = c->fs;
        int r;

        r = sd_event_add_io(fs->manager->event, &c->io, c->fd, EPOLLIN, conn_handler, c);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(c->io, "fileserver-conn");
        r = sd_event_add_time_relative(fs->manager->event, &c->timer, CLOCK_MONOTONIC,
                                       def(fs)->handshake_timeout_usec, 0, conn_timeout, c);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(c->timer, "fileserver-conn-timer");
        return 0;
}

static int listen_accept(int cfd, const SocketAddress *peer, void *userdata) {
        FileServer *fs = userdata;
        FsConn *c;

        if (fs->n_conns >= def(fs)->max_clients) {
                safe_close(cfd);
                return 0;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                safe_close(cfd);
                return -ENOMEM;
        }
        c->fs = fs;
        c->fd = cfd;
        c->file_fd = -1;
        c->timer_kind = FS_TIMER_HEAD; /* the first head: within the bound from accept */
        socket_address_format(peer, c->remote);
        LIST_PREPEND(fs->conns, c);
        fs->n_conns++;
        if (conn_watch(c) < 0)
                conn_free(c);
        return 0;
}

static int listen_handler(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        accept_batch(fd, 64, listen_accept, userdata);
        return 0;
}

int fileserver_new(Manager *m, FileServer **ret) {
        FileServer *f;

        assert(m);
        assert(ret);
        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->manager = m;
        f->listen_fd = f->root_fd = -1;
        f->auth_log = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 10 };
        *ret = f;
        return 0;
}

int fileserver_start(FileServer *f) {
        const Definition *d = def(f);
        char buf[SOCKADDR_STR_MAX];
        int r;

        assert(f->root_fd < 0 && f->listen_fd < 0);
        f->root_fd = open(d->webroot, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (f->root_fd < 0)
                return log_error_errno(errno, "%s: cannot open Webroot=%s: %m", d->path, d->webroot);
        r = socket_listen_tcp(&d->listen, &f->listen_fd);
        if (r < 0)
                return log_error_errno(r, "Failed to listen on %s: %m", socket_address_format(&d->listen, buf));
        r = sd_event_add_io(f->manager->event, &f->io, f->listen_fd, EPOLLIN, listen_handler, f);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(f->io, "fileserver-listen");
        if (!d->basic_auth)
                log_warning("BasicAuth=no: anyone who reaches %s can read %s.", socket_address_format(&d->listen, buf),
                            d->webroot);
        log_info("Serving %s on http://%s/ (%s, browsing %s).", d->webroot, socket_address_format(&d->listen, buf),
                 d->basic_auth ? "basic auth, user admin" : "no auth", d->allow_browsing ? "on" : "off");
        manager_set_state(f->manager, TUNNEL_LISTENING);
        return 0;
}

void fileserver_stop(FileServer *f) {
        assert(f);
        f->io = sd_event_source_disable_unref(f->io);
        f->listen_fd = safe_close(f->listen_fd);
}

void fileserver_get_counters(FileServer *f, TunnelCounters *ret) {
        assert(f);
        assert(ret);
        *ret = (TunnelCounters) { .bytes_out = f->bytes_out, .total_streams = f->requests, .active_streams = f->n_conns };
}

FileServer *fileserver_free(FileServer *f) {
        if (!f)
                return NULL;
        while (f->conns)
                conn_free(f->conns);
        sd_event_source_disable_unref(f->io);
        safe_close(f->listen_fd);
        safe_close(f->root_fd);
        free(f);
        return NULL;
}
