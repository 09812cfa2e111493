// SPDX-License-Identifier: LGPL-2.1-or-later
/* See kube.h. */

#include <assert.h>
#include <curl/curl.h>
#include <libgen.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "encoding.h"
#include "fileio.h"
#include "kube.h"
#include "log.h"
#include "macro.h"
#include "string-util.h"
#include "time-util.h"
#include "web.h"
#include "yamljson.h"

#define WATCH_TIMEOUT_SEC 290
#define WATCH_LINE_MAX (4 * 1024 * 1024)
#define RETRY_MAX_USEC (30 * USEC_PER_SEC)

struct KubeWatch {
        Kube *kube;
        KubeWatch *next;
        char *path;
        KubeEventFunc f;
        void *userdata;
        char *rv;              /* resourceVersion to resume from */
        CURL *easy;
        struct curl_slist *headers;
        char *line;            /* a partial event line */
        size_t line_len;
        bool relist;           /* 410 Gone: the next start lists again */
        uint64_t retry_usec;
        sd_event_source *timer;
};

struct Kube {
        char *server;
        char *token;           /* secret */
        char *token_file;      /* in-cluster: re-read, the kubelet rotates it */
        uint64_t token_read;
        char *ca_file, *cert_file, *key_file;
        char *tmpdir;          /* kubeconfig *-data written out for curl (0700) */
        sd_event *event;
        CURLM *multi;
        sd_event_source *multi_timer;
        KubeWatch *watches;
        unsigned watch_timeout_sec;
};

void kube_set_watch_timeout(Kube *k, unsigned sec) {
        assert(k);
        k->watch_timeout_sec = sec;
}

const char *kube_server(Kube *k) {
        assert(k);
        return k->server;
}

static void watch_stop(KubeWatch *w) {
        if (w->easy) {
                curl_multi_remove_handle(w->kube->multi, w->easy);
                curl_easy_cleanup(w->easy);
                w->easy = NULL;
        }
        curl_slist_free_all(w->headers);
        w->headers = NULL;
}

static void watch_free(KubeWatch *w) {
        watch_stop(w);
        sd_event_source_disable_unref(w->timer);
        free(w->path);
        free(w->rv);
        free(w->line);
        free(w);
}

Kube *kube_free(Kube *k) {
        if (!k)
                return NULL;
        while (k->watches) {
                KubeWatch *w = k->watches;
                k->watches = w->next;
                watch_free(w);
        }
        if (k->multi)
                curl_multi_cleanup(k->multi);
        sd_event_source_disable_unref(k->multi_timer);
        sd_event_unref(k->event);
        if (k->tmpdir) {
                char *f[] = { k->ca_file, k->cert_file, k->key_file };
                for (size_t i = 0; i < ELEMENTSOF(f); i++)
                        if (f[i] && startswith(f[i], k->tmpdir))
                                (void) unlink(f[i]);
                (void) rmdir(k->tmpdir);
        }
        free(k->server);
        erase_and_free(k->token);
        free(k->token_file);
        free(k->ca_file);
        free(k->cert_file);
        free(k->key_file);
        free(k->tmpdir);
        free(k);
        return NULL;
}

static int read_token(Kube *k) {
        _cleanup_(erase_and_freep) char *t = NULL;
        int r;

        if (!k->token_file || (k->token && now_usec() - k->token_read < 60 * USEC_PER_SEC))
                return 0;
        r = read_full_file(k->token_file, 64 * 1024, &t, NULL);
        if (r < 0)
                return r;
        strstrip(t);
        erase_and_free(k->token);
        k->token = TAKE_PTR(t);
        k->token_read = now_usec();
        return 0;
}

int kube_new_in_cluster(const char *sa_dir, Kube **ret, char **ret_error) {
        _cleanup_(kube_freep) Kube *k = calloc(1, sizeof(Kube));
        const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
        int r;

        assert(sa_dir);
        assert(ret);

        if (!k)
                return -ENOMEM;
        if (!host || !port)
                return errorf(ret_error, -ENXIO, "Not in a cluster (KUBERNETES_SERVICE_HOST is not set); use --kubeconfig");
        k->server = asprintf_safe(strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
        k->token_file = asprintf_safe("%s/token", sa_dir);
        k->ca_file = asprintf_safe("%s/ca.crt", sa_dir);
        if (!k->server || !k->token_file || !k->ca_file)
                return -ENOMEM;
        r = read_token(k);
        if (r < 0)
                return errorf(ret_error, r, "Cannot read the service account token %s: %s", k->token_file, strerror(-r));
        *ret = TAKE_PTR(k);
        return 0;
}

static json_object *named(json_object *config, const char *list, const char *name, const char *inner) {
        json_object *a = NULL;
        if (!name || !json_object_object_get_ex(config, list, &a) || !json_object_is_type(a, json_type_array))
                return NULL;
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *e = json_object_array_get_idx(a, i), *v = NULL;
                if (streq_ptr(json_get_string(e, "name"), name) && json_object_object_get_ex(e, inner, &v))
                        return v;
        }
        return NULL;
}

/* A file named by key (relative to the kubeconfig's directory) or the base64 key-data
 * written into k->tmpdir. */
static int kubeconfig_file(Kube *k, json_object *o, const char *key, const char *dir, char **ret, char **ret_error) {
        _cleanup_free_ char *dkey = asprintf_safe("%s-data", key);
        const char *path = json_get_string(o, key), *data = dkey ? json_get_string(o, dkey) : NULL;
        _cleanup_(erase_and_freep) char *raw = NULL;
        size_t n;
        int r;

        if (path) {
                *ret = path[0] == '/' ? strdup(path) : asprintf_safe("%s/%s", dir, path);
                return *ret ? 0 : -ENOMEM;
        }
        if (!data)
                return 0;
        if (unbase64mem(data, &raw, &n) < 0)
                return errorf(ret_error, -EBADMSG, "kubeconfig: %s is not base64", dkey);
        if (!k->tmpdir) {
                const char *rt = getenv("RUNTIME_DIRECTORY") ?: "/tmp";
                k->tmpdir = asprintf_safe("%s/inlets-operator.XXXXXX", rt);
                if (!k->tmpdir || !mkdtemp(k->tmpdir))
                        return errorf(ret_error, -errno, "Cannot make a private directory in %s: %m", rt);
        }
        *ret = asprintf_safe("%s/%s", k->tmpdir, key);
        if (!*ret)
                return -ENOMEM;
        r = write_file_atomic(*ret, raw, n, 0600);
        return r < 0 ? errorf(ret_error, r, "Cannot write %s: %s", *ret, strerror(-r)) : 0;
}

int kube_new_from_kubeconfig(const char *path, const char *context, Kube **ret, char **ret_error) {
        _cleanup_(kube_freep) Kube *k = calloc(1, sizeof(Kube));
        _cleanup_free_ char *text = NULL, *copy = strdup(path);
        _cleanup_(json_object_putp) json_object *config = NULL;
        json_object *ctx, *cluster, *user;
        const char *dir, *v;
        size_t n;
        int r;

        assert(path);
        assert(ret);

        if (!k || !copy)
                return -ENOMEM;
        dir = dirname(copy);
        r = read_full_file(path, 4 * 1024 * 1024, &text, &n);
        if (r < 0)
                return errorf(ret_error, r, "Cannot read %s: %s", path, strerror(-r));
        r = yaml_to_json(text, n, &config, ret_error);
        if (r < 0)
                return r;
        context = context ?: json_get_string(config, "current-context");
        ctx = named(config, "contexts", context, "context");
        cluster = ctx ? named(config, "clusters", json_get_string(ctx, "cluster"), "cluster") : NULL;
        user = ctx ? named(config, "users", json_get_string(ctx, "user"), "user") : NULL;
        if (!ctx || !cluster || !json_get_string(cluster, "server"))
                return errorf(ret_error, -EINVAL, "%s: no context '%s' with a cluster and its server", path,
                              context ?: "(current-context is not set)");
        k->server = strdup(json_get_string(cluster, "server"));
        if (k->server && k->server[strlen(k->server) - 1] == '/')
                k->server[strlen(k->server) - 1] = 0;
        r = kubeconfig_file(k, cluster, "certificate-authority", dir, &k->ca_file, ret_error);
        if (r >= 0 && user)
                r = kubeconfig_file(k, user, "client-certificate", dir, &k->cert_file, ret_error);
        if (r >= 0 && user)
                r = kubeconfig_file(k, user, "client-key", dir, &k->key_file, ret_error);
        if (r >= 0 && user && (v = json_get_string(user, "token")) && !(k->token = strdup(v)))
                r = -ENOMEM;
        if (r >= 0 && user && (v = json_get_string(user, "tokenFile")) && !(k->token_file = strdup(v)))
                r = -ENOMEM;
        if (r >= 0)
                r = read_token(k);
        if (r < 0)
                return r;
        if (!k->server)
                return -ENOMEM;
        *ret = TAKE_PTR(k);
        return 0;
}

static int request_setup(Kube *k, const char *method, const char *url, const char *body, const char *content_type,
                         WebRequest *q, char **auth, char **ctype) {
        if (read_token(k) < 0)
                log_warning("Cannot re-read the service account token %s; using the old one.", k->token_file);
        *auth = k->token ? asprintf_safe("Authorization: Bearer %s", k->token) : NULL;
        *ctype = asprintf_safe("Content-Type: %s", content_type ?: "application/json");
        if ((k->token && !*auth) || !*ctype)
                return -ENOMEM;
        *q = (WebRequest) {
                .method = method, .url = url, .body = body, .body_len = body ? strlen(body) : 0, .ca_file = k->ca_file,
                .cert_file = k->cert_file, .key_file = k->key_file, .timeout_sec = 20, .user_agent = "inlets-operator",
        };
        return 0;
}

long kube_call(Kube *k, const char *method, const char *path, json_object *body, const char *content_type,
               json_object **ret_json, char **ret_error) {
        _cleanup_free_ char *url = asprintf_safe("%s%s", k->server, path), *ctype = NULL;
        _cleanup_(erase_and_freep) char *auth = NULL;
        _cleanup_(web_response_done) WebResponse a = { .retry_after_sec = -1 };
        const char *payload = body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL;
        WebRequest q;
        int r;

        assert(k);
        assert(method);
        assert(path);

        if (ret_json)
                *ret_json = NULL;
        if (!url)
                return -ENOMEM;
        r = request_setup(k, method, url, payload, content_type, &q, &auth, &ctype);
        if (r < 0)
                return r;
        q.headers = (const char *const[]) { ctype, "Accept: application/json", auth, NULL };
        r = web_request(&q, &a, ret_error);
        if (r < 0)
                return r;
        if (ret_json && a.body_len > 0)
                *ret_json = json_tokener_parse(a.body);
        return a.status;
}

const char *kube_status_message(json_object *status) {
        return json_get_string(status, "message") ?: "no message";
}

/* ---- watches on sd-event through a curl multi handle ---- */

static void watch_schedule(KubeWatch *w, uint64_t usec);
static void process_done(Kube *k);

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Kube *k = userdata;
        int running, action = 0;

        if (revents & EPOLLIN)
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                action |= CURL_CSELECT_ERR;
        (void) curl_multi_socket_action(k->multi, fd, action, &running);
        process_done(k);
        return 0;
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userdata, void *socketp) {
        Kube *k = userdata;
        sd_event_source *s = socketp;
        uint32_t events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);

        if (what == CURL_POLL_REMOVE) {
                if (s) {
                        sd_event_source_disable_unref(s);
                        curl_multi_assign(k->multi, fd, NULL);
                }
                return 0;
        }
        if (s)
                return sd_event_source_set_io_events(s, events) < 0 ? -1 : 0;
        if (sd_event_add_io(k->event, &s, fd, events, on_io, k) < 0)
                return -1;
        (void) sd_event_source_set_description(s, "kube-curl-io");
        curl_multi_assign(k->multi, fd, s);
        return 0;
}

static int on_multi_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Kube *k = userdata;
        int running;
        (void) curl_multi_socket_action(k->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        process_done(k);
        return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userdata) {
        Kube *k = userdata;
        if (timeout_ms < 0)
                return sd_event_source_set_enabled(k->multi_timer, SD_EVENT_OFF) < 0 ? -1 : 0;
        if (sd_event_source_set_time_relative(k->multi_timer, (uint64_t) timeout_ms * USEC_PER_MSEC) < 0 ||
            sd_event_source_set_enabled(k->multi_timer, SD_EVENT_ONESHOT) < 0)
                return -1;
        return 0;
}

static void set_rv(KubeWatch *w, json_object *o) {
        json_object *m = NULL;
        const char *rv = json_object_object_get_ex(o, "metadata", &m) ? json_get_string(m, "resourceVersion") : NULL;
        if (rv) {
                free(w->rv);
                w->rv = strdup(rv);
        }
}

static void watch_line(KubeWatch *w, const char *line, size_t n) {
        _cleanup_(json_object_putp) json_object *e = json_tokener_parse(line);
        json_object *obj = NULL;
        const char *type = json_get_string(e, "type");

        if (!e || !type || !json_object_object_get_ex(e, "object", &obj)) {
                log_warning("Watch %s: an event that is not understood, ignoring.", w->path);
                return;
        }
        if (streq(type, "ERROR")) {
                json_object *c = NULL;
                int code = json_object_object_get_ex(obj, "code", &c) ? json_object_get_int(c) : 0;
                log_info("Watch %s: %s (%d); listing again.", w->path, kube_status_message(obj), code);
                w->relist = true; /* 410 Gone, or anything else we cannot resume from */
        } else {
                set_rv(w, obj);
                if (!streq(type, "BOOKMARK"))
                        w->f(type, obj, w->userdata);
        }
}

static size_t watch_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
        KubeWatch *w = userdata;
        size_t n = size * nmemb;

        for (size_t i = 0; i < n;) {
                const char *nl = memchr(ptr + i, '\n', n - i);
                size_t take = nl ? (size_t) (nl - (ptr + i)) : n - i;
                char *t;

                if (w->line_len + take + 1 > WATCH_LINE_MAX) {
                        log_error("Watch %s: an event larger than %d bytes; starting over.", w->path, WATCH_LINE_MAX);
                        w->relist = true;
                        return 0;
                }
                t = realloc(w->line, w->line_len + take + 1);
                if (!t)
                        return 0;
                w->line = t;
                memcpy(w->line + w->line_len, ptr + i, take);
                w->line_len += take;
                w->line[w->line_len] = 0;
                i += take;
                if (nl) {
                        i++;
                        if (w->line_len > 0)
                                watch_line(w, w->line, w->line_len);
                        w->line_len = 0;
                }
        }
        return n;
}

static int watch_list(KubeWatch *w) {
        _cleanup_free_ char *err = NULL;
        _cleanup_(json_object_putp) json_object *list = NULL;
        json_object *items = NULL;
        long status = kube_call(w->kube, "GET", w->path, NULL, NULL, &list, &err);

        if (status != 200) {
                log_error("Listing %s failed: %s", w->path,
                          status < 0 ? err : list ? kube_status_message(list) : "no answer");
                return -EIO;
        }
        w->f("RELIST", NULL, w->userdata);
        if (json_object_object_get_ex(list, "items", &items) && json_object_is_type(items, json_type_array))
                for (size_t i = 0; i < json_object_array_length(items); i++)
                        w->f("ADDED", json_object_array_get_idx(items, i), w->userdata);
        set_rv(w, list);
        w->relist = false;
        log_debug("Listed %s at resourceVersion %s.", w->path, w->rv ?: "?");
        return 0;
}

static int watch_start(KubeWatch *w) {
        _cleanup_free_ char *url = NULL, *ctype = NULL;
        _cleanup_(erase_and_freep) char *auth = NULL;
        WebRequest q;
        int r;

        if (w->relist || !w->rv) {
                r = watch_list(w);
                if (r < 0)
                        return r;
        }
        url = asprintf_safe("%s%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%d&resourceVersion=%s",
                            w->kube->server, w->path, w->kube->watch_timeout_sec ?: WATCH_TIMEOUT_SEC, w->rv);
        if (!url)
                return -ENOMEM;
        r = request_setup(w->kube, "GET", url, NULL, NULL, &q, &auth, &ctype);
        if (r < 0)
                return r;
        q.headers = (const char *const[]) { "Accept: application/json", auth, NULL };
        q.timeout_sec = (long) (w->kube->watch_timeout_sec ?: WATCH_TIMEOUT_SEC) + 30;
        w->easy = curl_easy_init();
        if (!w->easy || web_setup(w->easy, &q, &w->headers) < 0)
                return -ENOMEM;
        curl_easy_setopt(w->easy, CURLOPT_WRITEFUNCTION, watch_write);
        curl_easy_setopt(w->easy, CURLOPT_WRITEDATA, w);
        curl_easy_setopt(w->easy, CURLOPT_PRIVATE, w);
        w->line_len = 0;
        if (curl_multi_add_handle(w->kube->multi, w->easy) != CURLM_OK)
                return -EIO;
        return 0;
}

static int on_watch_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        KubeWatch *w = userdata;
        if (watch_start(w) < 0) {
                watch_stop(w);
                w->retry_usec = MIN(MAX(w->retry_usec * 2, USEC_PER_SEC), RETRY_MAX_USEC);
                watch_schedule(w, w->retry_usec);
        }
        return 0;
}

static void watch_schedule(KubeWatch *w, uint64_t usec) {
        (void) sd_event_source_set_time_relative(w->timer, usec);
        (void) sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
}

static void process_done(Kube *k) {
        CURLMsg *m;
        int left;

        while ((m = curl_multi_info_read(k->multi, &left))) {
                KubeWatch *w = NULL;
                long status = 0;

                if (m->msg != CURLMSG_DONE)
                        continue;
                curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &w);
                curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
                if (!w)
                        continue;
                if (m->data.result == CURLE_OK && status == 200) {
                        w->retry_usec = 0; /* the server ended it (timeoutSeconds): resume at once */
                        log_info("Watch %s ended; resuming from resourceVersion %s.", w->path, w->rv);
                } else {
                        if (status == 410)
                                w->relist = true;
                        w->retry_usec = MIN(MAX(w->retry_usec * 2, USEC_PER_SEC), RETRY_MAX_USEC);
                        log_warning("Watch %s: %s; again in %" PRIu64 " s.", w->path,
                                    m->data.result != CURLE_OK ? curl_easy_strerror(m->data.result) : "HTTP error",
                                    w->retry_usec / USEC_PER_SEC);
                }
                watch_stop(w); /* m is invalid from here */
                watch_schedule(w, w->retry_usec);
        }
}

int kube_watch(Kube *k, sd_event *event, const char *path, KubeEventFunc f, void *userdata) {
        KubeWatch *w;
        int r;

        assert(k);
        assert(event);
        assert(path);
        assert(f);

        if (!k->multi) {
                k->event = sd_event_ref(event);
                k->multi = curl_multi_init();
                if (!k->multi)
                        return -ENOMEM;
                curl_multi_setopt(k->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
                curl_multi_setopt(k->multi, CURLMOPT_SOCKETDATA, k);
                curl_multi_setopt(k->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
                curl_multi_setopt(k->multi, CURLMOPT_TIMERDATA, k);
                r = sd_event_add_time_relative(event, &k->multi_timer, CLOCK_MONOTONIC, 0, 0, on_multi_timer, k);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(k->multi_timer, "kube-curl-timer");
                (void) sd_event_source_set_enabled(k->multi_timer, SD_EVENT_OFF);
        }
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->kube = k;
        w->f = f;
        w->userdata = userdata;
        w->path = strdup(path);
        w->next = k->watches;
        k->watches = w;
        if (!w->path)
                return -ENOMEM;
        /* the first list happens on the loop, like every later one */
        r = sd_event_add_time_relative(event, &w->timer, CLOCK_MONOTONIC, 0, 0, on_watch_timer, w);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(w->timer, "kube-watch");
        return 0;
}
