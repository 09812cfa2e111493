// SPDX-License-Identifier: LGPL-2.1-or-later
/* The reconcile loop of inlets-operator; see operator.h.
 *
 * For Service NS/SVC (managed: type LoadBalancer, not being deleted, not opted out by a
 * manage annotation, and with --annotated-only opted in by one):
 *   Tunnel NS/SVC-tunnel       owned by the Service, finalizer TUNNEL_FINALIZER
 *   Secret NS/SVC-tunnel-auth  owned by the Tunnel: token, fingerprint (and tls.crt, tls.key,
 *                              the host's certificate, until the host is up: its user-data
 *                              needs them; no CA key is ever made to keep)
 *   cloud host                 tagged inletsd-tunnel-<Tunnel uid>: found again after a crash
 *   Deployment NS/SVC-tunnel-client, owned by the Tunnel: `inletsd tcp client`
 *   the Service's status.loadBalancer.ingress: the host's IP
 * A Tunnel being deleted (its Service went away or stopped being managed) has its host
 * deleted before the finalizer is removed; the garbage collector does the rest.
 *
 * A hand-written Tunnel (spec.serviceName set, no Service owning it; any name) is an explicit
 * request: it is reconciled for its Service whatever the Service's type and annotations say,
 * replaces the generated one, and gets the finalizer, Secret NAME-auth, a host and Deployment
 * spec.client_deployment.name (or NAME-client); it goes only when its author deletes it.
 * spec.updateServiceIP: false (either kind) leaves the Service's status alone.
 *
 * A Tunnel with spec.exitServer (a generated one copies the Service's EXIT_SERVER_ANNOTATION)
 * uses that ExitServer of its namespace -- an inletsd exit server someone runs already: its
 * URL, certificate pin and a Secret with its token -- instead of a cloud host: no host, no
 * finalizer, no Secret of its own; the Deployment mounts the ExitServer's Secret. Tunnels on
 * one exit server (one URL) get their Services' ports in order of creation: a Tunnel wanting a
 * port an earlier one has is "conflict" (status.message says which), without a Deployment. */

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <strings.h>

#include "cloud.h"
#include "conf-url.h"
#include "encoding.h"
#include "log.h"
#include "macro.h"
#include "operator.h"
#include "parse-util.h"
#include "string-util.h"
#include "time-util.h"
#include "web.h"

struct CacheEntry {
        CacheEntry *next;
        char *key;
        json_object *obj;
};

struct WorkItem {
        WorkItem *next;
        char *key;
        uint64_t when;   /* CLOCK_MONOTONIC µs */
};

/* ---- small helpers ---- */

static json_object *jget(json_object *o, const char *k) {
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static const char *meta(json_object *o, const char *k) {
        return json_get_string(jget(o, "metadata"), k);
}

static char *obj_key(json_object *o) {
        const char *ns = meta(o, "namespace"), *name = meta(o, "name");
        return ns && name ? asprintf_safe("%s/%s", ns, name) : NULL;
}

static CacheEntry **cache_find(CacheEntry **l, const char *key) {
        for (; *l; l = &(*l)->next)
                if (streq((*l)->key, key))
                        return l;
        return NULL;
}

static json_object *cache_get(CacheEntry *l, const char *key) {
        CacheEntry **e = cache_find(&l, key);
        return e ? (*e)->obj : NULL;
}

static void cache_remove(CacheEntry **l, const char *key) {
        CacheEntry **e = cache_find(l, key), *x;
        if (!e)
                return;
        x = *e;
        *e = x->next;
        json_object_put(x->obj);
        free(x->key);
        free(x);
}

static void cache_put(CacheEntry **l, const char *key, json_object *obj) {
        CacheEntry **e = cache_find(l, key), *x;
        if (e) {
                json_object_put((*e)->obj);
                (*e)->obj = json_object_get(obj);
                return;
        }
        x = calloc(1, sizeof(*x));
        if (!x || !(x->key = strdup(key))) {
                free(x);
                log_oom();
                return;
        }
        x->obj = json_object_get(obj);
        x->next = *l;
        *l = x;
}

static void cache_clear(CacheEntry **l) {
        while (*l)
                cache_remove(l, (*l)->key);
}

static bool is_load_balancer(json_object *svc) {
        return streq_ptr(json_get_string(jget(svc, "spec"), "type"), "LoadBalancer");
}

/* The Service's manage annotations (inlets-operator's two names: dev.inlets.manage and
 * operator.inlets.dev/manage, "1"/"true" or "0"/"false"): 1 opted in, 0 opted out (either name
 * saying no wins), -1 neither. */
static int manage_annotation(json_object *svc) {
        json_object *a = jget(jget(svc, "metadata"), "annotations");
        const char *names[] = { "dev.inlets.manage", "operator.inlets.dev/manage" };
        int v = -1;

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                const char *s = json_get_string(a, names[i]);
                int b = s ? parse_boolean(s) : -1;
                if (b == 0)
                        return 0;
                if (b > 0)
                        v = 1;
        }
        return v;
}

/* An explicit opt-out is honoured whether or not --annotated-only is on. */
static bool managed(Operator *o, json_object *svc) {
        int a;

        if (!svc || !is_load_balancer(svc) || meta(svc, "deletionTimestamp"))
                return false;
        a = manage_annotation(svc);
        return a == 1 || (a == -1 && !o->opt.annotated_only);
}

/* ---- the work queue ---- */

static void work_arm(Operator *o) {
        uint64_t first = UINT64_MAX;
        for (WorkItem *w = o->work; w; w = w->next)
                first = MIN(first, w->when);
        if (first == UINT64_MAX) {
                (void) sd_event_source_set_enabled(o->work_timer, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(o->work_timer, first);
        (void) sd_event_source_set_enabled(o->work_timer, SD_EVENT_ONESHOT);
}

void operator_enqueue(Operator *o, const char *key, uint64_t delay_usec) {
        uint64_t when = now_usec() + delay_usec;
        WorkItem *w;

        assert(o);
        assert(key);

        for (w = o->work; w; w = w->next)
                if (streq(w->key, key)) {
                        w->when = MIN(w->when, when);
                        work_arm(o);
                        return;
                }
        w = calloc(1, sizeof(*w));
        if (!w || !(w->key = strdup(key))) {
                free(w);
                log_oom();
                return;
        }
        w->when = when;
        w->next = o->work;
        o->work = w;
        work_arm(o);
}

static int on_work(sd_event_source *s, uint64_t usec, void *userdata) {
        Operator *o = userdata;
        uint64_t now = now_usec();

        /* one item per wakeup: watches and signals get their turn between reconciles */
        for (WorkItem **p = &o->work; *p; p = &(*p)->next)
                if ((*p)->when <= now) {
                        WorkItem *w = *p;
                        *p = w->next;
                        if (operator_reconcile(o, w->key) < 0)
                                operator_enqueue(o, w->key, 10 * USEC_PER_SEC);
                        free(w->key);
                        free(w);
                        break;
                }
        work_arm(o);
        return 0;
}

void operator_resync(Operator *o) {
        for (CacheEntry *e = o->services; e; e = e->next)
                operator_enqueue(o, e->key, 0);
        for (CacheEntry *e = o->tunnels; e; e = e->next) {
                const char *svc = json_get_string(jget(e->obj, "spec"), "serviceName");
                _cleanup_free_ char *k = svc ? asprintf_safe("%s/%s", meta(e->obj, "namespace"), svc) : NULL;
                if (k)
                        operator_enqueue(o, k, 0);
        }
}

static int on_resync(sd_event_source *s, uint64_t usec, void *userdata) {
        Operator *o = userdata;
        operator_resync(o);
        (void) sd_event_source_set_time_relative(s, o->opt.resync_usec);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

void operator_done(Operator *o) {
        cache_clear(&o->services);
        cache_clear(&o->tunnels);
        cache_clear(&o->exit_servers);
        while (o->work) {
                WorkItem *w = o->work;
                o->work = w->next;
                free(w->key);
                free(w);
        }
        sd_event_source_disable_unref(o->work_timer);
        sd_event_source_disable_unref(o->resync_timer);
}

int operator_start(Operator *o) {
        int r;

        assert(o);
        assert(o->event);
        assert(o->kube);

        r = sd_event_add_time(o->event, &o->work_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_work, o);
        if (r >= 0)
                r = sd_event_source_set_description(o->work_timer, "operator-work");
        if (r >= 0)
                r = sd_event_add_time_relative(o->event, &o->resync_timer, CLOCK_MONOTONIC, o->opt.resync_usec, 0,
                                               on_resync, o);
        if (r >= 0)
                r = sd_event_source_set_description(o->resync_timer, "operator-resync");
        if (r >= 0)
                r = kube_watch(o->kube, o->event, "/api/v1/services", operator_on_service, o);
        if (r >= 0)
                r = kube_watch(o->kube, o->event, "/apis/" TUNNEL_GROUP "/" TUNNEL_VERSION "/tunnels", operator_on_tunnel, o);
        if (r >= 0)
                r = kube_watch(o->kube, o->event, "/apis/" TUNNEL_GROUP "/" TUNNEL_VERSION "/exitservers",
                               operator_on_exit_server, o);
        return r;
}

/* ---- shared exit servers ---- */

/* The name of the ExitServer a Tunnel uses (spec.exitServer), NULL for a cloud host. */
static const char *exit_server_name(json_object *tun) {
        const char *n = json_get_string(jget(tun, "spec"), "exitServer");
        return n && *n ? n : NULL;
}

/* The ExitServer the Tunnel names, from the cache (its namespace): NULL if none. */
static json_object *exit_server_of(Operator *o, json_object *tun) {
        const char *name = exit_server_name(tun);
        _cleanup_free_ char *key = name ? asprintf_safe("%s/%s", meta(tun, "namespace"), name) : NULL;

        return key ? cache_get(o->exit_servers, key) : NULL;
}

static const char *exit_server_url(json_object *es) {
        return json_get_string(jget(es, "spec"), "url");
}

/* Every Service whose Tunnel uses an exit server at url (any, for NULL) is looked at again:
 * one Tunnel's ports, or its going, decides what the others on that server may have. */
static void enqueue_sharing(Operator *o, const char *url) {
        for (CacheEntry *e = o->tunnels; e; e = e->next) {
                json_object *es = exit_server_of(o, e->obj);
                const char *svc = json_get_string(jget(e->obj, "spec"), "serviceName");
                _cleanup_free_ char *k = NULL;

                if (!exit_server_name(e->obj) || !svc || (url && (!es || !streq_ptr(exit_server_url(es), url))))
                        continue;
                k = asprintf_safe("%s/%s", meta(e->obj, "namespace"), svc);
                if (k)
                        operator_enqueue(o, k, 0);
        }
}

void operator_on_exit_server(const char *type, json_object *obj, void *userdata) {
        Operator *o = userdata;
        _cleanup_free_ char *key = NULL;

        assert(o);
        assert(type);

        if (streq(type, "RELIST"))
                cache_clear(&o->exit_servers);
        else if ((key = obj_key(obj))) {
                if (streq(type, "DELETED"))
                        cache_remove(&o->exit_servers, key);
                else
                        cache_put(&o->exit_servers, key, obj);
        }
        /* Its URL may have changed: what was on the old one is decided again too. */
        enqueue_sharing(o, NULL);
}

/* ---- what the watches say ---- */

void operator_on_service(const char *type, json_object *obj, void *userdata) {
        Operator *o = userdata;
        _cleanup_free_ char *key = NULL;

        assert(o);
        assert(type);

        if (streq(type, "RELIST")) {
                /* what vanished while we were not watching is reconciled too */
                for (CacheEntry *e = o->services; e; e = e->next)
                        operator_enqueue(o, e->key, 0);
                cache_clear(&o->services);
                return;
        }
        key = obj_key(obj);
        if (!key)
                return;
        /* Every Service: a hand-written Tunnel may name one of any type. */
        if (streq(type, "DELETED")) {
                if (cache_get(o->services, key)) {
                        cache_remove(&o->services, key);
                        operator_enqueue(o, key, 0);
                }
                return;
        }
        cache_put(&o->services, key, obj);
        operator_enqueue(o, key, 0);
        /* Its ports may have changed: the other Tunnels on its shared exit server, too. */
        for (CacheEntry *e = o->tunnels; e; e = e->next)
                if (exit_server_name(e->obj) && streq_ptr(meta(e->obj, "namespace"), meta(obj, "namespace")) &&
                    streq_ptr(json_get_string(jget(e->obj, "spec"), "serviceName"), meta(obj, "name"))) {
                        json_object *es = exit_server_of(o, e->obj);
                        if (es)
                                enqueue_sharing(o, exit_server_url(es));
                }
}

void operator_on_tunnel(const char *type, json_object *obj, void *userdata) {
        Operator *o = userdata;
        _cleanup_free_ char *key = NULL, *svc_key = NULL;
        const char *svc;

        assert(o);
        assert(type);

        if (streq(type, "RELIST")) {
                operator_resync(o);
                cache_clear(&o->tunnels);
                return;
        }
        key = obj_key(obj);
        svc = json_get_string(jget(obj, "spec"), "serviceName");
        if (!key)
                return;
        if (exit_server_name(obj)) { /* it took or let go of ports on a shared server */
                json_object *es = exit_server_of(o, obj), *old = cache_get(o->tunnels, key);
                if (es)
                        enqueue_sharing(o, exit_server_url(es));
                if (old && exit_server_of(o, old) && exit_server_of(o, old) != es)
                        enqueue_sharing(o, exit_server_url(exit_server_of(o, old)));
        }
        if (streq(type, "DELETED"))
                cache_remove(&o->tunnels, key);
        else
                cache_put(&o->tunnels, key, obj);
        svc_key = svc ? asprintf_safe("%s/%s", meta(obj, "namespace"), svc) : NULL;
        if (svc_key)
                operator_enqueue(o, svc_key, 0);
}

/* ---- the API calls a step makes ---- */

static char *tunnel_path(const char *ns, const char *name, const char *sub) {
        return asprintf_safe("/apis/" TUNNEL_GROUP "/" TUNNEL_VERSION "/namespaces/%s/tunnels%s%s%s", ns,
                             name ? "/" : "", name ?: "", sub ?: "");
}

/* A write; on success the answer (the object as it now is) in *ret if asked for. 409 is
 * -EEXIST (created already) or -ESTALE (changed under us), 404 -ENOENT. */
static int kcall(Operator *o, const char *method, const char *path, json_object *body, const char *ctype,
                 json_object **ret) {
        _cleanup_free_ char *err = NULL;
        _cleanup_(json_object_putp) json_object *a = NULL;
        long st = kube_call(o->kube, method, path, body, ctype, &a, &err);

        if (st >= 200 && st <= 299) {
                if (ret)
                        *ret = TAKE_PTR(a);
                return 0;
        }
        if (st < 0)
                log_warning("%s %s: %s", method, path, err);
        else if (st != 404 && st != 409)
                log_warning("%s %s: HTTP %ld: %s", method, path, st, a ? kube_status_message(a) : "no message");
        return st == 404 ? -ENOENT : st == 409 ? (streq(method, "POST") ? -EEXIST : -ESTALE) : st < 0 ? (int) st : -EIO;
}

static json_object *owner_ref(const char *api_version, const char *kind, json_object *owner) {
        json_object *a = json_object_new_array(), *r = json_object_new_object();
        json_object_object_add(r, "apiVersion", json_object_new_string(api_version));
        json_object_object_add(r, "kind", json_object_new_string(kind));
        json_object_object_add(r, "name", json_object_new_string(meta(owner, "name") ?: ""));
        json_object_object_add(r, "uid", json_object_new_string(meta(owner, "uid") ?: ""));
        json_object_object_add(r, "controller", json_object_new_boolean(true));
        json_object_object_add(r, "blockOwnerDeletion", json_object_new_boolean(true));
        json_object_array_add(a, r);
        return a;
}

static json_object *metadata(const char *name, const char *ns, json_object *owner_refs) {
        json_object *m = json_object_new_object(), *l = json_object_new_object();
        json_object_object_add(m, "name", json_object_new_string(name));
        json_object_object_add(m, "namespace", json_object_new_string(ns));
        json_object_object_add(l, "app.kubernetes.io/managed-by", json_object_new_string("inlets-operator"));
        json_object_object_add(m, "labels", l);
        if (owner_refs)
                json_object_object_add(m, "ownerReferences", owner_refs);
        return m;
}

static int patch_tunnel_status(Operator *o, json_object *tun, const char *host_status, const char *id, const char *ip,
                               const char *message) {
        _cleanup_free_ char *path = tunnel_path(meta(tun, "namespace"), meta(tun, "name"), "/status");
        _cleanup_(json_object_putp) json_object *b = json_object_new_object(), *a = NULL;
        json_object *s = json_object_new_object(), *m = json_object_new_object();
        _cleanup_free_ char *key = obj_key(tun);
        int r;

        json_object_object_add(m, "resourceVersion", json_object_new_string(meta(tun, "resourceVersion") ?: ""));
        json_object_object_add(b, "metadata", m);
        json_object_object_add(s, "hostStatus", json_object_new_string(host_status));
        json_object_object_add(s, "hostId", id ? json_object_new_string(id) : NULL);
        json_object_object_add(s, "hostIP", ip ? json_object_new_string(ip) : NULL);
        json_object_object_add(s, "message", message ? json_object_new_string(message) : NULL);
        json_object_object_add(b, "status", s);
        r = path ? kcall(o, "PATCH", path, b, "application/merge-patch+json", &a) : -ENOMEM;
        if (r >= 0 && key)
                cache_put(&o->tunnels, key, a);
        return r;
}

/* The status, written only when it says something new (each write wakes every watcher). */
static int set_tunnel_status(Operator *o, json_object *tun, const char *host_status, const char *id, const char *ip,
                             const char *message) {
        json_object *st = jget(tun, "status");

        if (streq_ptr(json_get_string(st, "hostStatus"), host_status) && streq_ptr(json_get_string(st, "hostId"), id) &&
            streq_ptr(json_get_string(st, "hostIP"), ip) && streq_ptr(json_get_string(st, "message"), message))
                return 0;
        if (message)
                log_info("Tunnel %s/%s: %s: %s", meta(tun, "namespace"), meta(tun, "name"), host_status, message);
        return patch_tunnel_status(o, tun, host_status, id, ip, message);
}

static void host_tag(json_object *tun, char buf[static 64]) {
        snprintf(buf, 64, "inletsd-tunnel-%s", meta(tun, "uid") ?: "none");
}

/* Hosts carrying this Tunnel's tag (normally none or one). */
static int tagged_hosts(Operator *o, json_object *tun, CloudHost **ret, size_t *ret_n) {
        _cleanup_free_ char *err = NULL;
        char tag[64];
        int r;

        host_tag(tun, tag);
        r = o->provider->list(&o->cloud, tag, ret, ret_n, &err);
        if (r < 0)
                log_warning("Listing %s hosts tagged %s: %s", o->provider->name, tag, err);
        return r;
}

/* Sets the Tunnel's finalizers to fin (taken), at the resourceVersion we saw; the object as it
 * now is in *ret if asked for. */
static int patch_finalizers(Operator *o, json_object *tun, json_object *fin, json_object **ret) {
        _cleanup_(json_object_putp) json_object *b = json_object_new_object();
        _cleanup_free_ char *path = tunnel_path(meta(tun, "namespace"), meta(tun, "name"), NULL);
        json_object *m = json_object_new_object();

        json_object_object_add(m, "finalizers", fin);
        json_object_object_add(m, "resourceVersion", json_object_new_string(meta(tun, "resourceVersion") ?: ""));
        json_object_object_add(b, "metadata", m);
        return path ? kcall(o, "PATCH", path, b, "application/merge-patch+json", ret) : -ENOMEM;
}

/* status.hostId, when it is a host id at all: anyone allowed to write a Tunnel's status could
 * otherwise aim the operator's cloud token at another path. */
static const char *status_host_id(json_object *tun) {
        const char *id = json_get_string(jget(tun, "status"), "hostId");
        if (id && !cloud_id_is_valid(id)) {
                log_warning("Tunnel %s/%s: status.hostId is not a host id; ignored.", meta(tun, "namespace"),
                            meta(tun, "name"));
                return NULL;
        }
        return id;
}

/* The host goes before the finalizer does. */
static int finalize(Operator *o, json_object *tun) {
        json_object *fin = jget(jget(tun, "metadata"), "finalizers"), *keep;
        const char *id = status_host_id(tun);
        CloudHost *l = NULL;
        size_t n = 0;
        bool ours = false;
        int r;

        for (size_t i = 0; fin && i < json_object_array_length(fin); i++)
                ours = ours || streq_ptr(json_object_get_string(json_object_array_get_idx(fin, i)), TUNNEL_FINALIZER);
        if (!ours)
                return 0;
        if (!o->provider && id) /* a host made when there was one: not leaked silently */
                return log_warning_errno(EAGAIN, "Tunnel %s/%s: its host %s cannot be deleted without --provider; "
                                         "the Tunnel waits (or remove its finalizer %s by hand).",
                                         meta(tun, "namespace"), meta(tun, "name"), id, TUNNEL_FINALIZER);
        r = o->provider ? tagged_hosts(o, tun, &l, &n) : 0;
        if (r < 0)
                return r;
        for (size_t i = 0; i <= n; i++) {
                _cleanup_free_ char *err = NULL;
                const char *h = i < n ? l[i].id : id;
                bool tagged = false;

                if (!h)
                        continue;
                if (i == n) {
                        /* The recorded host: deleted above if it carries this Tunnel's tag; one
                         * that does not is not ours to delete, whatever the status says. */
                        for (size_t k = 0; k < n; k++)
                                tagged = tagged || streq(h, l[k].id);
                        if (!tagged && o->provider)
                                log_warning("Tunnel %s/%s: host %s (status.hostId) does not carry this Tunnel's tag; "
                                            "not deleted.", meta(tun, "namespace"), meta(tun, "name"), h);
                        continue;
                }
                r = o->provider->destroy(&o->cloud, h, &err);
                if (r < 0 && r != -ENOENT) { /* gone already is as good */
                        log_warning("Deleting host %s of tunnel %s/%s: %s", h, meta(tun, "namespace"), meta(tun, "name"), err);
                        cloud_hosts_free(l, n);
                        return r;
                }
                log_info("Deleted host %s of tunnel %s/%s.", h, meta(tun, "namespace"), meta(tun, "name"));
        }
        cloud_hosts_free(l, n);
        keep = json_object_new_array();
        for (size_t i = 0; fin && i < json_object_array_length(fin); i++) {
                const char *f = json_object_get_string(json_object_array_get_idx(fin, i));
                if (!streq_ptr(f, TUNNEL_FINALIZER))
                        json_object_array_add(keep, json_object_new_string(f));
        }
        r = patch_finalizers(o, tun, keep, NULL);
        return r == -ENOENT ? 0 : r;
}

/* The ExitServer a Service's annotation names, NULL for a cloud host of its own. */
static const char *service_exit_server(json_object *svc) {
        const char *n = json_get_string(jget(jget(svc, "metadata"), "annotations"), EXIT_SERVER_ANNOTATION);
        return n && *n ? n : NULL;
}

static int create_tunnel(Operator *o, json_object *svc, const char *name, json_object **ret) {
        const char *ns = meta(svc, "namespace"), *es = service_exit_server(svc);
        _cleanup_(json_object_putp) json_object *t = json_object_new_object();
        json_object *m = metadata(name, ns, owner_ref("v1", "Service", svc)), *fin = json_object_new_array(),
                    *spec = json_object_new_object(), *cd = json_object_new_object();
        _cleanup_free_ char *path = tunnel_path(ns, NULL, NULL), *dep = asprintf_safe("%s-client", name);
        int r;

        if (!es) /* a shared exit server has no host to delete */
                json_object_array_add(fin, json_object_new_string(TUNNEL_FINALIZER));
        json_object_object_add(m, "finalizers", fin);
        json_object_object_add(t, "apiVersion", json_object_new_string(TUNNEL_GROUP "/" TUNNEL_VERSION));
        json_object_object_add(t, "kind", json_object_new_string("Tunnel"));
        json_object_object_add(t, "metadata", m);
        json_object_object_add(spec, "serviceName", json_object_new_string(meta(svc, "name")));
        json_object_object_add(cd, "name", json_object_new_string(dep ?: ""));
        json_object_object_add(spec, "client_deployment", cd);
        if (es)
                json_object_object_add(spec, "exitServer", json_object_new_string(es));
        json_object_object_add(t, "spec", spec);
        r = path ? kcall(o, "POST", path, t, NULL, ret) : -ENOMEM;
        if (r >= 0)
                log_info("Service %s/%s: created Tunnel %s.", ns, meta(svc, "name"), name);
        return r;
}

/* The Secret's data as plain strings (token, fingerprint, tls.crt, tls.key). */
typedef struct Auth {
        char *token, *fingerprint, *tls_crt, *tls_key;
} Auth;

static void auth_done(Auth *a) {
        erase_and_free(a->token);
        free(a->fingerprint);
        free(a->tls_crt);
        erase_and_free(a->tls_key);
        *a = (Auth) {};
}

static char *secret_value(json_object *secret, const char *k) {
        const char *v = json_get_string(jget(secret, "data"), k);
        char *raw = NULL;
        size_t n;
        return v && unbase64mem(v, &raw, &n) >= 0 ? raw : NULL;
}

/* A token and the host's certificate, made here (the client pins the certificate), into a new
 * Secret; the Secret as it now is in *ret. */
static int create_secret(Operator *o, json_object *tun, const char *name, const char *path,
                         json_object **ret) {
        const char *ns = meta(tun, "namespace");
        _cleanup_free_ char *coll = NULL, *err = NULL;
        _cleanup_(exit_server_plan_freep) ExitServerPlan *p = NULL;
        _cleanup_(json_object_putp) json_object *b = NULL;
        json_object *data;
        int r;

        r = exit_server_plan_new("tunnel", MODE_TCP, NULL, o->opt.control_port, o->opt.package_url, NULL, &p,
                                 &err);
        if (r < 0) {
                log_error("Cannot make the tunnel's token and certificate: %s", err);
                return r;
        }
        b = json_object_new_object();
        data = json_object_new_object();
        json_object_object_add(b, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(b, "kind", json_object_new_string("Secret"));
        json_object_object_add(b, "metadata", metadata(name, ns, owner_ref(TUNNEL_GROUP "/" TUNNEL_VERSION,
                                                                           "Tunnel", tun)));
        json_object_object_add(b, "type", json_object_new_string("Opaque"));
        json_object_object_add(data, "token", json_object_new_string(p->token));
        json_object_object_add(data, "fingerprint", json_object_new_string(p->fingerprint));
        json_object_object_add(data, "tls.crt", json_object_new_string(p->server_crt));
        json_object_object_add(data, "tls.key", json_object_new_string(p->server_key));
        json_object_object_add(b, "stringData", data);
        coll = asprintf_safe("/api/v1/namespaces/%s/secrets", ns);
        r = coll ? kcall(o, "POST", coll, b, NULL, ret) : -ENOMEM;
        /* the body held secrets: wipe json-c's copy of its text */
        {
                const char *t = json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN);
                explicit_bzero((char *) t, strlen(t));
        }
        if (r == -EEXIST)
                r = kcall(o, "GET", path, NULL, NULL, ret);
        if (r < 0)
                return r;
        log_info("Tunnel %s/%s: created Secret %s.", ns, meta(tun, "name"), name);
        return 0;
}

static int ensure_secret(Operator *o, json_object *tun, const char *name, Auth *ret) {
        _cleanup_free_ char *path = asprintf_safe("/api/v1/namespaces/%s/secrets/%s", meta(tun, "namespace"),
                                                  name);
        _cleanup_(json_object_putp) json_object *s = NULL;
        int r;

        if (!path)
                return -ENOMEM;
        r = kcall(o, "GET", path, NULL, NULL, &s);
        if (r == -ENOENT)
                r = create_secret(o, tun, name, path, &s);
        if (r < 0)
                return r;
        *ret = (Auth) { secret_value(s, "token"), secret_value(s, "fingerprint"), secret_value(s, "tls.crt"),
                        secret_value(s, "tls.key") };
        return ret->token && ret->fingerprint ? 0 : -EBADMSG;
}

/* Once the host is up its key is needed nowhere else: it leaves the Secret (and so does a CA
 * key a Secret made by an older operator may still hold). */
static int drop_host_key(Operator *o, json_object *tun, const char *name) {
        _cleanup_free_ char *path = asprintf_safe("/api/v1/namespaces/%s/secrets/%s", meta(tun, "namespace"), name);
        _cleanup_(json_object_putp) json_object *b =
                json_tokener_parse("{\"data\":{\"tls.key\":null,\"ca.key\":null}}");

        return path ? kcall(o, "PATCH", path, b, "application/merge-patch+json", NULL) : -ENOMEM;
}

static int create_host(Operator *o, json_object *tun, const Auth *auth, CloudHost *ret) {
        ExitServerPlan p = {
                .name = (char *) "tunnel", .mode = MODE_TCP, .control_port = o->opt.control_port,
                .package_url = (char *) o->opt.package_url, .token = auth->token, .server_crt = auth->tls_crt,
                .server_key = auth->tls_key, .fingerprint = auth->fingerprint,
        };
        _cleanup_free_ char *user_data = NULL, *hostname = NULL, *err = NULL;
        char tag[64];
        int r;

        if (!auth->tls_crt || !auth->tls_key)
                return log_error_errno(EBADMSG, "Tunnel %s/%s: the Secret has no host certificate and key (lost, or "
                                       "made by an older operator) and no host yet; delete the Secret to start over.",
                                       meta(tun, "namespace"), meta(tun, "name"));
        user_data = exit_server_user_data(&p);
        /* The namespace and name, and the start of the Tunnel's uid: "a-b"/"c" and "a"/"b-c" are two
         * hosts (at Azure the name is the resource group's, which must be unique). */
        hostname = asprintf_safe("inlets-%s-%s", meta(tun, "namespace"), meta(tun, "name"));
        if (!user_data || !hostname)
                return -ENOMEM;
        for (char *c = hostname; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
                        *c = '-';
        {
                const char *uid = meta(tun, "uid") ?: "none";
                size_t cut = MIN(strlen(hostname), (size_t) 54), k = 0;
                char suffix[10] = "-";
                for (const char *u = uid; *u && k < 8; u++)
                        if ((*u >= 'a' && *u <= 'z') || (*u >= '0' && *u <= '9'))
                                suffix[1 + k++] = *u;
                suffix[1 + k] = 0;
                hostname[cut] = 0;
                char *h = asprintf_safe("%s%s", hostname, suffix);
                if (!h)
                        return -ENOMEM;
                free(hostname);
                hostname = h;
        }
        host_tag(tun, tag);
        char open_ports[24];
        /* a cloud firewall opens the control port and any public port: the Service's may change */
        snprintf(open_ports, sizeof open_ports, "%u 1-65535", o->opt.control_port);
        CloudCreate c = {
                .name = hostname, .user_data = user_data, .open_ports = open_ports,
                .tags = (const char *const[]) { "inletsd", tag }, .n_tags = 2,
        };
        cloud_create_defaults(&c, &o->opt.cloud, o->provider);
        r = o->provider->create(&o->cloud, &c, ret, &err);
        explicit_bzero(user_data, strlen(user_data));
        if (r < 0)
                log_error("Tunnel %s/%s: creating the host failed: %s", meta(tun, "namespace"), meta(tun, "name"), err);
        return r;
}

/* "80,443": the Service's ports, public port = Service port. */
static char *service_ports(json_object *svc) {
        json_object *ports = jget(jget(svc, "spec"), "ports");
        char *s = strdup(""), *t;

        for (size_t i = 0; s && ports && i < json_object_array_length(ports); i++) {
                json_object *p = json_object_array_get_idx(ports, i), *v = jget(p, "port");
                if (!v || (json_get_string(p, "protocol") && !streq(json_get_string(p, "protocol"), "TCP")))
                        continue;
                t = asprintf_safe("%s%s%d", s, *s ? "," : "", json_object_get_int(v));
                free(s);
                s = t;
        }
        return s;
}

static json_object *client_container(Operator *o, json_object *svc, const char *url, const char *fingerprint) {
        json_object *c = json_object_new_object(), *args = json_object_new_array(), *cmd = json_object_new_array(),
                    *mounts = json_object_new_array(), *mnt = json_object_new_object();
        _cleanup_free_ char *upstream = asprintf_safe("%s.%s.svc", meta(svc, "name"), meta(svc, "namespace")),
                            *ports = service_ports(svc);
        const char *a[] = { "tcp", "client", "--url", url, "--upstream", upstream, "--ports", ports,
                            "--token-file", "/var/lib/inlets/auth/token", "--fingerprint", fingerprint };

        json_object_object_add(c, "name", json_object_new_string("inlets-client"));
        json_object_object_add(c, "image", json_object_new_string(o->opt.client_image));
        json_object_array_add(cmd, json_object_new_string("inletsd"));
        json_object_object_add(c, "command", cmd);
        for (size_t i = 0; i < ELEMENTSOF(a); i++)
                json_object_array_add(args, json_object_new_string(a[i] ?: ""));
        json_object_object_add(c, "args", args);
        json_object_object_add(mnt, "name", json_object_new_string("auth"));
        json_object_object_add(mnt, "mountPath", json_object_new_string("/var/lib/inlets/auth"));
        json_object_object_add(mnt, "readOnly", json_object_new_boolean(true));
        json_object_array_add(mounts, mnt);
        json_object_object_add(c, "volumeMounts", mounts);
        if (o->opt.client_resources)
                json_object_object_add(c, "resources", json_object_get(o->opt.client_resources));
        /* It needs nothing of the node: no privilege, no writes outside its mounts. */
        json_object_object_add(c, "securityContext", json_tokener_parse(
                "{\"allowPrivilegeEscalation\":false,\"readOnlyRootFilesystem\":true,"
                "\"capabilities\":{\"drop\":[\"ALL\"]}}"));
        return c;
}

/* The Deployment of the tunnel client: one replica of container c (taken), the Secret's token
 * mounted. */
static json_object *deployment_new(json_object *tun, const char *name, const char *ns, const char *secret,
                                   json_object *c) {
        json_object *b = json_object_new_object(), *spec = json_object_new_object(),
                    *sel = json_object_new_object(), *lab = json_object_new_object(),
                    *tmpl = json_object_new_object(), *tm = json_object_new_object(),
                    *pspec = json_object_new_object(), *cs = json_object_new_array(),
                    *vols = json_object_new_array(), *vol = json_object_new_object(),
                    *sec = json_object_new_object(), *items = json_object_new_array(),
                    *item = json_object_new_object();

        json_object_object_add(b, "apiVersion", json_object_new_string("apps/v1"));
        json_object_object_add(b, "kind", json_object_new_string("Deployment"));
        json_object_object_add(b, "metadata", metadata(name, ns, owner_ref(TUNNEL_GROUP "/" TUNNEL_VERSION, "Tunnel", tun)));
        json_object_object_add(spec, "replicas", json_object_new_int(1));
        json_object_object_add(lab, "inlets.inlets.dev/tunnel", json_object_new_string(meta(tun, "name")));
        json_object_object_add(sel, "matchLabels", json_object_get(lab));
        json_object_object_add(spec, "selector", sel);
        json_object_object_add(tm, "labels", lab);
        json_object_object_add(tmpl, "metadata", tm);
        json_object_array_add(cs, c);
        json_object_object_add(pspec, "containers", cs);
        /* The image's user; the kubelet gives the Secret's files to group fsGroup, so mode
         * 0440 lets it read them (0400 would leave them root's alone). */
        json_object_object_add(pspec, "securityContext", json_tokener_parse(
                "{\"runAsNonRoot\":true,\"runAsUser\":65532,\"runAsGroup\":65532,\"fsGroup\":65532}"));
        json_object_object_add(item, "key", json_object_new_string("token"));
        json_object_object_add(item, "path", json_object_new_string("token"));
        json_object_array_add(items, item);
        json_object_object_add(sec, "secretName", json_object_new_string(secret));
        json_object_object_add(sec, "items", items);
        json_object_object_add(sec, "defaultMode", json_object_new_int(0440));
        json_object_object_add(vol, "name", json_object_new_string("auth"));
        json_object_object_add(vol, "secret", sec);
        json_object_array_add(vols, vol);
        json_object_object_add(pspec, "volumes", vols);
        json_object_object_add(tmpl, "spec", pspec);
        json_object_object_add(spec, "template", tmpl);
        json_object_object_add(b, "spec", spec);
        return b;
}

/* A merge patch that replaces the pod template's containers and volumes with those of want. */
static json_object *deployment_patch(json_object *want) {
        json_object *b = json_object_new_object(), *spec = json_object_new_object(),
                    *tmpl = json_object_new_object(), *pspec = json_object_new_object(),
                    *ws = jget(jget(jget(want, "spec"), "template"), "spec");

        json_object_object_add(pspec, "containers", json_object_get(jget(ws, "containers")));
        json_object_object_add(pspec, "volumes", json_object_get(jget(ws, "volumes")));
        json_object_object_add(pspec, "securityContext", json_object_get(jget(ws, "securityContext")));
        json_object_object_add(tmpl, "spec", pspec);
        json_object_object_add(spec, "template", tmpl);
        json_object_object_add(b, "spec", spec);
        return b;
}

/* The API server writes an empty resources object for none. */
static bool resources_equal(json_object *have, json_object *want) {
        bool empty_have = !have || json_object_object_length(have) == 0,
             empty_want = !want || json_object_object_length(want) == 0;
        return empty_have || empty_want ? empty_have == empty_want : json_object_equal(have, want);
}

/* The client Deployment name of Service svc: it dials url, pins fingerprint, and mounts key
 * "token" of Secret secret. */
static int ensure_deployment(Operator *o, json_object *svc, json_object *tun, const char *name,
                             const char *secret, const char *url, const char *fingerprint) {
        const char *ns = meta(svc, "namespace");
        _cleanup_free_ char *path = asprintf_safe("/apis/apps/v1/namespaces/%s/deployments/%s", ns, name),
                            *coll = asprintf_safe("/apis/apps/v1/namespaces/%s/deployments", ns);
        _cleanup_(json_object_putp) json_object *cur = NULL, *b = NULL,
                                                *want = deployment_new(tun, name, ns, secret,
                                                                       client_container(o, svc, url, fingerprint));
        json_object *have, *hs, *ws, *c;
        int r;

        if (!path || !coll)
                return -ENOMEM;
        r = kcall(o, "GET", path, NULL, NULL, &cur);
        if (r == -ENOENT) {
                r = kcall(o, "POST", coll, want, NULL, NULL);
                if (r >= 0)
                        log_info("Service %s/%s: created Deployment %s.", ns, meta(svc, "name"), name);
                return r == -EEXIST ? 0 : r;
        }
        if (r < 0)
                return r;
        hs = jget(jget(jget(cur, "spec"), "template"), "spec");
        ws = jget(jget(jget(want, "spec"), "template"), "spec");
        have = json_object_array_get_idx(jget(hs, "containers"), 0);
        c = json_object_array_get_idx(jget(ws, "containers"), 0);
        if (have && json_object_equal(jget(have, "args"), jget(c, "args")) &&
            json_object_equal(jget(have, "image"), jget(c, "image")) &&
            json_object_equal(jget(have, "securityContext"), jget(c, "securityContext")) &&
            resources_equal(jget(have, "resources"), jget(c, "resources")) &&
            json_object_equal(jget(hs, "securityContext"), jget(ws, "securityContext")) &&
            json_object_equal(jget(json_object_array_get_idx(jget(hs, "volumes"), 0), "secret"),
                              jget(json_object_array_get_idx(jget(ws, "volumes"), 0), "secret")) &&
            streq_ptr(json_get_string(jget(json_object_array_get_idx(jget(hs, "volumes"), 0), "secret"), "secretName"),
                      secret))
                return 0;
        log_debug("Deployment %s/%s: have %s %s, want %s %s", ns, name,
                  json_object_to_json_string(jget(have, "image")),
                  json_object_to_json_string(jget(have, "args")),
                  json_object_to_json_string(jget(c, "image")),
                  json_object_to_json_string(jget(c, "args")));
        b = deployment_patch(want);
        r = kcall(o, "PATCH", path, b, "application/merge-patch+json", NULL);
        if (r >= 0)
                log_info("Service %s/%s: updated Deployment %s (ports %s).", ns, meta(svc, "name"), name,
                         json_object_get_string(json_object_array_get_idx(jget(c, "args"), 7)));
        return r;
}

/* A Tunnel that may not run (a port clash, a broken ExitServer) has no client. */
static int delete_deployment(Operator *o, const char *ns, const char *name) {
        _cleanup_free_ char *path = asprintf_safe("/apis/apps/v1/namespaces/%s/deployments/%s", ns, name);
        int r;

        if (!path)
                return -ENOMEM;
        r = kcall(o, "DELETE", path, NULL, NULL, NULL);
        if (r >= 0)
                log_info("Deleted Deployment %s/%s.", ns, name);
        return r == -ENOENT ? 0 : r;
}

/* status.loadBalancer.ingress[].ip for an address, .hostname for a name. */
static const char *ingress_field(const char *addr) {
        uint8_t a[16];
        return inet_pton(AF_INET, addr, a) == 1 || inet_pton(AF_INET6, addr, a) == 1 ? "ip" : "hostname";
}

static bool ingress_is(json_object *svc, const char *addr) {
        json_object *ing = jget(jget(jget(svc, "status"), "loadBalancer"), "ingress");

        return addr && ing && json_object_is_type(ing, json_type_array) && json_object_array_length(ing) == 1 &&
               streq_ptr(json_get_string(json_object_array_get_idx(ing, 0), ingress_field(addr)), addr);
}

static int ensure_ingress(Operator *o, json_object *svc, const char *ip) {
        _cleanup_(json_object_putp) json_object *b = NULL;
        _cleanup_free_ char *path = asprintf_safe("/api/v1/namespaces/%s/services/%s/status", meta(svc, "namespace"),
                                                  meta(svc, "name"));
        json_object *one = json_object_new_object(), *ing = json_object_new_array(), *lb = json_object_new_object(),
                    *st = json_object_new_object();
        int r;

        json_object_object_add(one, ingress_field(ip), json_object_new_string(ip));
        json_object_array_add(ing, one);
        json_object_object_add(lb, "ingress", ing);
        json_object_object_add(st, "loadBalancer", lb);
        b = json_object_new_object();
        json_object_object_add(b, "status", st);
        if (ingress_is(svc, ip))
                return 0;
        if (!path)
                return -ENOMEM;
        r = kcall(o, "PATCH", path, b, "application/merge-patch+json", NULL);
        if (r >= 0)
                log_info("Service %s/%s: external IP %s.", meta(svc, "namespace"), meta(svc, "name"), ip);
        return r;
}

/* A Service that is no longer managed keeps no address that is about to go away. */
static int clear_ingress(Operator *o, json_object *svc, const char *ip) {
        _cleanup_(json_object_putp) json_object *b = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        if (!ingress_is(svc, ip))
                return 0;
        path = asprintf_safe("/api/v1/namespaces/%s/services/%s/status", meta(svc, "namespace"), meta(svc, "name"));
        if (!path)
                return -ENOMEM;
        b = json_tokener_parse("{\"status\":{\"loadBalancer\":{\"ingress\":null}}}");
        r = kcall(o, "PATCH", path, b, "application/merge-patch+json", NULL);
        if (r >= 0)
                log_info("Service %s/%s: no longer managed, external IP %s removed.", meta(svc, "namespace"),
                         meta(svc, "name"), ip);
        return r == -ENOENT ? 0 : r;
}

/* The names a step works with, all derived from the Service's key "namespace/name". */
typedef struct Names {
        const char *key, *svcname;
        char *ns, *tname, *tkey, *secret, *dep;
} Names;

static void names_done(Names *n) {
        free(n->ns);
        free(n->tname);
        free(n->tkey);
        free(n->secret);
        free(n->dep);
}

static int names_from_key(const char *key, Names *ret) {
        const char *slash = strchr(key, '/');

        *ret = (Names) { .key = key, .svcname = slash ? slash + 1 : key };
        if (!(ret->ns = strndup(key, strcspn(key, "/"))) ||
            !(ret->tname = asprintf_safe("%s-tunnel", ret->svcname)) ||
            !(ret->tkey = asprintf_safe("%s/%s", ret->ns, ret->tname)) ||
            !(ret->secret = asprintf_safe("%s-auth", ret->tname)) ||
            !(ret->dep = asprintf_safe("%s-client", ret->tname)))
                return -ENOMEM;
        return 0;
}

/* Whether this Tunnel writes the Service's status.loadBalancer (spec.updateServiceIP, default
 * true). */
static bool updates_service_ip(json_object *tun) {
        json_object *v = jget(jget(tun, "spec"), "updateServiceIP");
        return !v || !json_object_is_type(v, json_type_boolean) || json_object_get_boolean(v);
}

/* A Tunnel the operator made for a Service: that Service owns it. */
static bool generated(json_object *tun) {
        json_object *refs = jget(jget(tun, "metadata"), "ownerReferences");

        for (size_t i = 0; refs && json_object_is_type(refs, json_type_array) && i < json_object_array_length(refs); i++)
                if (streq_ptr(json_get_string(json_object_array_get_idx(refs, i), "kind"), "Service"))
                        return true;
        return false;
}

/* The hand-written Tunnel for Service ns/svc: the first by name when several name it. */
static json_object *handwritten_tunnel(Operator *o, const char *ns, const char *svc) {
        json_object *best = NULL;

        for (CacheEntry *e = o->tunnels; e; e = e->next)
                if (streq_ptr(meta(e->obj, "namespace"), ns) &&
                    streq_ptr(json_get_string(jget(e->obj, "spec"), "serviceName"), svc) && !generated(e->obj) &&
                    (!best || strcmp(meta(e->obj, "name") ?: "", meta(best, "name") ?: "") < 0))
                        best = e->obj;
        return best;
}

/* Names of what belongs to hand-written Tunnel tun instead of the generated ones. */
static int names_for_tunnel(Names *n, json_object *tun) {
        const char *name = meta(tun, "name"),
                   *dep = json_get_string(jget(jget(tun, "spec"), "client_deployment"), "name");

        free(n->tname);
        free(n->tkey);
        free(n->secret);
        free(n->dep);
        n->tname = strdup(name ?: "");
        n->tkey = asprintf_safe("%s/%s", n->ns, name ?: "");
        n->secret = asprintf_safe("%s-auth", name ?: "");
        n->dep = dep && *dep ? strdup(dep) : asprintf_safe("%s-client", name ?: "");
        return n->tname && n->tkey && n->secret && n->dep ? 0 : -ENOMEM;
}

/* A hand-written Tunnel gets the finalizer the generated ones are made with. */
static int ensure_finalizer(Operator *o, json_object *tun) {
        json_object *fin = jget(jget(tun, "metadata"), "finalizers"), *all;
        _cleanup_(json_object_putp) json_object *a = NULL;
        _cleanup_free_ char *key = obj_key(tun);
        int r;

        for (size_t i = 0; fin && i < json_object_array_length(fin); i++)
                if (streq_ptr(json_object_get_string(json_object_array_get_idx(fin, i)), TUNNEL_FINALIZER))
                        return 0;
        all = json_object_new_array();
        for (size_t i = 0; fin && i < json_object_array_length(fin); i++)
                json_object_array_add(all, json_object_get(json_object_array_get_idx(fin, i)));
        json_object_array_add(all, json_object_new_string(TUNNEL_FINALIZER));
        r = patch_finalizers(o, tun, all, &a);
        if (r >= 0 && key)
                cache_put(&o->tunnels, key, a);
        return r;
}

/* The Service is gone or no longer managed: its address goes, then its Tunnel (whose host goes
 * before the finalizer does). */
static int reconcile_unmanaged(Operator *o, const Names *n, json_object *svc, json_object *tun) {
        _cleanup_free_ char *path = NULL;
        int r = 0;

        if (svc && tun && updates_service_ip(tun))
                r = clear_ingress(o, svc, json_get_string(jget(tun, "status"), "hostIP"));
        if (r < 0)
                return r;
        if (tun && meta(tun, "deletionTimestamp"))
                return finalize(o, tun);
        if (tun && (path = tunnel_path(n->ns, n->tname, NULL))) {
                log_info("Service %s is gone or no longer managed: deleting Tunnel %s.", n->key, n->tname);
                r = kcall(o, "DELETE", path, NULL, NULL, NULL);
                r = r == -ENOENT ? 0 : r;
        }
        return r;
}

/* No host recorded: the one tagged for this Tunnel (after a crash), or a new one. */
static int reconcile_find_host(Operator *o, const Names *n, json_object *tun, const Auth *auth) {
        CloudHost *l = NULL, h = {};
        size_t k = 0;
        int r;

        r = tagged_hosts(o, tun, &l, &k);
        if (r < 0)
                return r;
        if (k > 0) {
                log_info("Tunnel %s: found its host %s again (tagged).", n->tkey, l[0].id);
                h = l[0];
                l[0] = (CloudHost) {};
        } else {
                r = create_host(o, tun, auth, &h);
                if (r >= 0)
                        log_info("Tunnel %s: created host %s on %s.", n->tkey, h.id, o->provider->name);
        }
        cloud_hosts_free(l, k);
        if (r >= 0)
                r = patch_tunnel_status(o, tun, "provisioning", h.id, NULL, NULL);
        cloud_host_done(&h);
        if (r >= 0)
                operator_enqueue(o, n->key, o->opt.poll_usec);
        return r;
}

/* A host that is not up yet: ask the provider, record what it says, look again later. */
static int reconcile_poll_host(Operator *o, const Names *n, json_object *tun, const char *id,
                               const char *hs) {
        _cleanup_free_ char *err = NULL;
        CloudHost h = {};
        int r;

        r = o->provider->get(&o->cloud, id, &h, &err);
        if (r == -ENOENT) {
                log_warning("Tunnel %s: host %s is gone; making another.", n->tkey, id);
                r = patch_tunnel_status(o, tun, "provisioning", NULL, NULL, NULL);
        } else if (r < 0)
                log_warning("Tunnel %s: host %s: %s", n->tkey, id, err);
        else if (streq_ptr(h.status, "active") && h.ip) {
                log_info("Tunnel %s: host %s is active at %s.", n->tkey, id, h.ip);
                r = patch_tunnel_status(o, tun, "active", id, h.ip, NULL);
                if (r >= 0)
                        operator_enqueue(o, n->key, 0);
        } else if (!streq_ptr(h.status, hs))
                r = patch_tunnel_status(o, tun, "provisioning", id, NULL, NULL);
        cloud_host_done(&h);
        if (r >= 0 && !streq_ptr(hs, "active"))
                operator_enqueue(o, n->key, o->opt.poll_usec);
        return r;
}

/* A managed Service: its Tunnel, the Secret, the host, then the client and the address. */
static int reconcile_managed(Operator *o, const Names *n, json_object *svc, json_object *tun) {
        _cleanup_(auth_done) Auth auth = {};
        _cleanup_free_ char *url = NULL;
        const char *hs, *id, *ip;
        int r;

        if (meta(tun, "deletionTimestamp"))
                return finalize(o, tun);
        if (!o->provider)
                return set_tunnel_status(o, tun, "waiting", NULL, NULL,
                                         "no cloud provider (--provider): name an ExitServer with the "
                                         EXIT_SERVER_ANNOTATION " annotation or spec.exitServer");
        r = ensure_secret(o, tun, n->secret, &auth);
        if (r < 0)
                return r;
        hs = json_get_string(jget(tun, "status"), "hostStatus");
        id = status_host_id(tun);
        ip = json_get_string(jget(tun, "status"), "hostIP");
        if (!id)
                return reconcile_find_host(o, n, tun, &auth);
        if (!streq_ptr(hs, "active") || !ip)
                return reconcile_poll_host(o, n, tun, id, hs);
        url = asprintf_safe(strchr(ip, ':') ? "wss://[%s]:%u" : "wss://%s:%u", ip, o->opt.control_port);
        if (!url)
                return -ENOMEM;
        r = ensure_deployment(o, svc, tun, n->dep, n->secret, url, auth.fingerprint);
        if (r >= 0 && updates_service_ip(tun))
                r = ensure_ingress(o, svc, ip);
        if (r >= 0 && auth.tls_key)
                r = drop_host_key(o, tun, n->secret);
        return r;
}

/* What is wrong with an ExitServer's spec, NULL if nothing; its address (spec.address, or the
 * URL's host) in *ret_addr. */
static const char *exit_server_problem(json_object *es, char **ret_addr) {
        json_object *spec = jget(es, "spec");
        const char *url = json_get_string(spec, "url"), *fp = json_get_string(spec, "fingerprint"),
                   *secret = json_get_string(spec, "tokenSecret"), *addr = json_get_string(spec, "address");
        _cleanup_(tunnel_url_done) TunnelURL u = {};
        uint8_t pin[32];

        if (!url || tunnel_url_parse(url, &u) < 0 || !u.tls)
                return "spec.url: expected wss://HOST[:PORT][/PATH]";
        if (!fp || strncasecmp(fp, "sha256:", 7) != 0 || unhexmem(fp + 7, pin, sizeof(pin)) < 0)
                return "spec.fingerprint: expected sha256: and 64 hex digits (the exit server's certificate or CA)";
        if (!secret || !*secret || strlen(secret) > 253 || strspn(secret, "abcdefghijklmnopqrstuvwxyz0123456789-.") != strlen(secret))
                return "spec.tokenSecret: expected the name of a Secret in the ExitServer's namespace";
        if (addr && (!*addr || strlen(addr) > 253 || (!hostname_is_valid(addr) && !streq(ingress_field(addr), "ip"))))
                return "spec.address: expected an IP address or a host name";
        *ret_addr = strdup(addr ?: u.host);
        return *ret_addr ? NULL : "out of memory";
}

/* One Tunnel on a shared exit server, for port_clash(). */
typedef struct Sharer {
        json_object *tun, *svc;
        const char *created, *ns, *name;
} Sharer;

static int sharer_compare(const void *a, const void *b) {
        const Sharer *x = a, *y = b;
        int c = strcmp(x->created, y->created); /* RFC 3339 UTC: in order as strings */
        if (c == 0)
                c = strcmp(x->ns, y->ns);
        return c != 0 ? c : strcmp(x->name, y->name);
}

static bool service_has_port(json_object *svc, int port) {
        json_object *ports = jget(jget(svc, "spec"), "ports");

        for (size_t i = 0; ports && json_object_is_type(ports, json_type_array) && i < json_object_array_length(ports); i++) {
                json_object *p = json_object_array_get_idx(ports, i);
                if ((!json_get_string(p, "protocol") || streq(json_get_string(p, "protocol"), "TCP")) &&
                    json_object_get_int(jget(p, "port")) == port)
                        return true;
        }
        return false;
}

/* The Tunnels on the exit server at url get their Services' ports in order of creation, each
 * all of them or none (a client asks for all its ports at once): the earlier Tunnel that has
 * one of tun's, and that port, or NULL. */
static json_object *port_clash(Operator *o, json_object *tun, const char *url, int *ret_port) {
        _cleanup_free_ Sharer *l = NULL;
        size_t n = 0, k = 0;

        for (CacheEntry *e = o->tunnels; e; e = e->next)
                n++;
        l = new0(Sharer, n ?: 1);
        if (!l)
                return NULL;
        for (CacheEntry *e = o->tunnels; e; e = e->next) {
                json_object *es = exit_server_of(o, e->obj);
                const char *svc = json_get_string(jget(e->obj, "spec"), "serviceName");
                _cleanup_free_ char *skey = svc ? asprintf_safe("%s/%s", meta(e->obj, "namespace"), svc) : NULL;
                json_object *s = skey ? cache_get(o->services, skey) : NULL;

                if (!es || !s || meta(e->obj, "deletionTimestamp") || meta(s, "deletionTimestamp") ||
                    !streq_ptr(exit_server_url(es), url))
                        continue;
                l[k++] = (Sharer) { e->obj, s, meta(e->obj, "creationTimestamp") ?: "", meta(e->obj, "namespace") ?: "",
                                    meta(e->obj, "name") ?: "" };
        }
        qsort(l, k, sizeof(Sharer), sharer_compare);
        /* Granted: those before i that clash with none before them. */
        for (size_t i = 0; i < k; i++) {
                json_object *ports = jget(jget(l[i].svc, "spec"), "ports");
                json_object *holder = NULL;
                int port = 0;

                for (size_t j = 0; !holder && ports && json_object_is_type(ports, json_type_array) &&
                                   j < json_object_array_length(ports); j++) {
                        json_object *p = json_object_array_get_idx(ports, j);
                        if (json_get_string(p, "protocol") && !streq(json_get_string(p, "protocol"), "TCP"))
                                continue;
                        port = json_object_get_int(jget(p, "port"));
                        for (size_t g = 0; !holder && g < i; g++)
                                if (l[g].tun && service_has_port(l[g].svc, port))
                                        holder = l[g].tun;
                }
                if (streq_ptr(meta(l[i].tun, "uid"), meta(tun, "uid"))) {
                        *ret_port = port;
                        return holder;
                }
                if (holder)
                        l[i].tun = NULL; /* not granted: takes nothing from those after it */
        }
        return NULL;
}

/* A Tunnel on a shared exit server: no host and no Secret of its own; the client Deployment
 * dials the ExitServer's URL with its token, unless an earlier Tunnel there has a port. */
static int reconcile_shared(Operator *o, const Names *n, json_object *svc, json_object *tun) {
        json_object *es = exit_server_of(o, tun), *holder;
        const char *was = json_get_string(jget(tun, "status"), "hostIP"), *problem;
        _cleanup_free_ char *addr = NULL, *msg = NULL;
        int port = 0, r = 0;

        if (meta(tun, "deletionTimestamp")) {
                if (updates_service_ip(tun))
                        r = clear_ingress(o, svc, was);
                return r < 0 ? r : finalize(o, tun);
        }
        /* It had a cloud host before it named an exit server: that goes first. */
        r = finalize(o, tun);
        if (r < 0)
                return r;
        if (!es)
                msg = asprintf_safe("ExitServer %s/%s does not exist", n->ns, exit_server_name(tun));
        else if ((problem = exit_server_problem(es, &addr)))
                msg = asprintf_safe("ExitServer %s/%s: %s", n->ns, exit_server_name(tun), problem);
        else if ((holder = port_clash(o, tun, exit_server_url(es), &port)))
                msg = asprintf_safe("port %d is taken on %s by Tunnel %s/%s", port, exit_server_url(es),
                                    meta(holder, "namespace"), meta(holder, "name"));
        if (msg) {
                r = delete_deployment(o, n->ns, n->dep);
                if (r >= 0 && updates_service_ip(tun))
                        r = clear_ingress(o, svc, was);
                if (r >= 0)
                        r = set_tunnel_status(o, tun, es && !addr ? "invalid" : es ? "conflict" : "waiting", NULL, NULL,
                                              msg);
                return r;
        }
        r = ensure_deployment(o, svc, tun, n->dep, json_get_string(jget(es, "spec"), "tokenSecret"),
                              exit_server_url(es), json_get_string(jget(es, "spec"), "fingerprint"));
        if (r >= 0)
                r = set_tunnel_status(o, tun, "active", NULL, addr, NULL);
        if (r >= 0 && updates_service_ip(tun))
                r = ensure_ingress(o, svc, addr);
        return r;
}

/* A hand-written Tunnel: its author asked for it, whatever the Service says; it waits for its
 * Service to exist, and goes only when deleted. */
static int reconcile_handwritten(Operator *o, Names *n, json_object *svc, json_object *tun) {
        _cleanup_(json_object_putp) json_object *cur = NULL;
        int r;

        r = names_for_tunnel(n, tun);
        if (r < 0)
                return r;
        if (meta(tun, "deletionTimestamp")) {
                if (svc && updates_service_ip(tun))
                        r = clear_ingress(o, svc, json_get_string(jget(tun, "status"), "hostIP"));
                return r < 0 ? r : finalize(o, tun);
        }
        if (exit_server_name(tun)) {
                if (!svc || meta(svc, "deletionTimestamp"))
                        return 0;
                return reconcile_shared(o, n, svc, tun);
        }
        r = ensure_finalizer(o, tun);
        if (r < 0)
                return r;
        if (!svc || meta(svc, "deletionTimestamp")) {
                log_debug("Tunnel %s: its Service %s does not exist (yet).", n->tkey, n->key);
                return 0;
        }
        /* the object as the finalizer patch left it, a reference of our own (steps replace it) */
        cur = json_object_get(cache_get(o->tunnels, n->tkey) ?: tun);
        return reconcile_managed(o, n, svc, cur);
}

int operator_reconcile(Operator *o, const char *key) {
        _cleanup_(names_done) Names n = {};
        _cleanup_(json_object_putp) json_object *tun = NULL, *hand = NULL;
        json_object *svc;
        int r;

        assert(o);
        assert(key);

        r = names_from_key(key, &n);
        if (r < 0)
                return r;
        svc = cache_get(o->services, key);
        /* references of our own: the steps below replace the cache's */
        tun = json_object_get(cache_get(o->tunnels, n.tkey));
        hand = json_object_get(handwritten_tunnel(o, n.ns, n.svcname));
        if (hand) {
                /* It replaces the one we made (whose host goes with it). */
                if (tun && generated(tun)) {
                        log_info("Service %s: hand-written Tunnel %s replaces %s.", key, meta(hand, "name"), n.tname);
                        r = reconcile_unmanaged(o, &n, svc, tun);
                        if (r < 0)
                                return r;
                }
                return reconcile_handwritten(o, &n, svc, hand);
        }
        if (tun && !generated(tun)) { /* hand-written for another Service, under our name */
                log_warning("Service %s: Tunnel %s exists and is not ours: not making one.", key, n.tkey);
                return 0;
        }
        if (!managed(o, svc))
                return reconcile_unmanaged(o, &n, svc, tun);
        if (tun && !meta(tun, "deletionTimestamp") && !streq_ptr(exit_server_name(tun), service_exit_server(svc))) {
                /* Another exit server (or a cloud host instead): made anew (a host goes first). */
                log_info("Service %s: the exit server it names changed: replacing Tunnel %s.", key, n.tname);
                return reconcile_unmanaged(o, &n, svc, tun);
        }
        if (!tun) {
                r = create_tunnel(o, svc, n.tname, &tun);
                if (r == -EEXIST) /* the watch will bring it */
                        return 0;
                if (r < 0)
                        return r;
                cache_put(&o->tunnels, n.tkey, tun);
        }
        if (exit_server_name(tun))
                return reconcile_shared(o, &n, svc, tun);
        return reconcile_managed(o, &n, svc, tun);
}
