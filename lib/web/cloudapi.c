// SPDX-License-Identifier: LGPL-2.1-or-later
/* Cloud provider APIs; see cloudapi.h. DigitalOcean: REST API v2, droplets and tags. */

#include <arpa/inet.h>
#include <assert.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cloudapi.h"
#include "cloudapi-dns.h"
#include "conf-url.h"
#include "crypto-util.h"
#include "encoding.h"
#include "macro.h"
#include "string-util.h"
#include "web.h"

void cloud_api_done(CloudApi *api) {
        free(api->base_url);
        erase_and_free(api->token);
        free(api->zone);
        free(api->project);
        free(api->key_id);
        erase_and_free(api->session_token);
        erase_and_free(api->credentials);
        *api = (CloudApi) {};
}

void cloud_host_done(CloudHost *h) {
        free(h->id);
        free(h->name);
        free(h->status);
        free(h->ip);
        *h = (CloudHost) {};
}

void cloud_hosts_free(CloudHost *l, size_t n) {
        for (size_t i = 0; i < n; i++)
                cloud_host_done(&l[i]);
        free(l);
}

int cloud_host_from(const char *id, const char *name, const char *status, const char *ready, const char *ip,
                    CloudHost *ret) {
        const char *st = status ?: "unknown";

        if (!cloud_id_is_valid(id))
                return -EBADMSG; /* an id goes into request paths: nothing but an id */
        if (!cloud_ip_is_valid(ip))
                ip = NULL; /* whatever else it is, it is not an address */
        /* "active" once the provider says so and the host has its public address. */
        if (streq(st, ready))
                st = ip ? "active" : "pending";
        *ret = (CloudHost) {
                .id = strdup(id),
                .name = cloud_printable(name),
                .status = cloud_printable(st),
                .ip = ip ? strdup(ip) : NULL,
        };
        if (!ret->id || !ret->name || !ret->status || (ip && !ret->ip)) {
                cloud_host_done(ret);
                return -ENOMEM;
        }
        return 0;
}

int cloud_hosts_append(CloudHost **l, size_t *n, json_object *d, int (*parse)(json_object *d, CloudHost *ret)) {
        CloudHost *m = reallocarray(*l, *n + 1, sizeof(CloudHost));
        if (!m)
                return -ENOMEM;
        *l = m;
        if (parse(d, &m[*n]) >= 0)
                (*n)++;
        return 0;
}

int cloud_hosts_return(CloudHost *l, size_t n, int r, CloudHost **ret, size_t *ret_n) {
        if (r < 0) {
                cloud_hosts_free(l, n);
                return r;
        }
        if (!l && !(l = new0(CloudHost, 1)))
                return -ENOMEM;
        *ret = l;
        *ret_n = n;
        return 0;
}

bool cloud_flags_parse(CloudFlags *f, int c, const char *arg) {
        static const size_t field[_CLOUD_OPT_MAX - CLOUD_OPT_PROVIDER] = {
                [CLOUD_OPT_PROVIDER - CLOUD_OPT_PROVIDER] = offsetof(CloudFlags, provider),
                [CLOUD_OPT_TOKEN_FILE - CLOUD_OPT_PROVIDER] = offsetof(CloudFlags, token_file),
                [CLOUD_OPT_REGION - CLOUD_OPT_PROVIDER] = offsetof(CloudFlags, region),
                [CLOUD_OPT_SIZE - CLOUD_OPT_PROVIDER] = offsetof(CloudFlags, size),
                [CLOUD_OPT_IMAGE - CLOUD_OPT_PROVIDER] = offsetof(CloudFlags, image),
                [CLOUD_OPT_API_URL - CLOUD_OPT_PROVIDER] = offsetof(CloudFlags, api_url),
                [CLOUD_OPT_PROJECT - CLOUD_OPT_PROVIDER] = offsetof(CloudFlags, project),
        };

        assert(f);

        if (c < CLOUD_OPT_PROVIDER || c >= _CLOUD_OPT_MAX)
                return false;
        *(const char **) ((uint8_t *) f + field[c - CLOUD_OPT_PROVIDER]) = arg;
        return true;
}

int cloud_api_init(CloudApi *api, const CloudProvider *p, const CloudFlags *f, char *token, bool creates,
                   long timeout_sec, unsigned max_retries, char **ret_error) {
        _cleanup_(erase_and_freep) char *t = token;
        const char *project = f->project;

        assert(api);
        assert(p);
        assert(token || p->credentials);

        /* it goes into a header: one word of printable ASCII, nothing a header could be split on */
        for (const char *c = token; c && *c; c++)
                if (*c < 0x21 || *c > 0x7e)
                        return errorf(ret_error, -EINVAL, "the API token holds a space, a line end or a byte that "
                                      "is not printable ASCII");
        if (p->project_env && !project) {
                project = getenv(p->project_env);
                if (project && !*project)
                        project = NULL;
                if (!project && creates)
                        return errorf(ret_error, -EINVAL, "%s needs the project its hosts belong to: --project ID, or "
                                      "$%s", p->name, p->project_env);
        }
        /* It goes into request bodies and paths: an id, nothing else. */
        if (project && !cloud_id_is_valid(project))
                return errorf(ret_error, -EINVAL, "the project must be an id (letters, digits and hyphens)");
        if ((f->region ?: p->region) && p->zoned && !cloud_id_is_valid(f->region ?: p->region))
                return errorf(ret_error, -EINVAL, "--region takes a %s name such as %s", p->region_kind ?: "region",
                              p->region);
        const char *zone = f->region ?: p->region, *z = strstr(p->api_url, "{zone}");
        *api = (CloudApi) {
                /* a regional endpoint: the zone in the default URL */
                .base_url = f->api_url ? strdup(f->api_url)
                            : z && p->zoned ? asprintf_safe("%.*s%s%s", (int) (z - p->api_url), p->api_url, zone,
                                                            z + strlen("{zone}"))
                            : strdup(p->api_url),
                .token = TAKE_PTR(t),
                .auth_header = p->auth_header,
                .zone = p->zoned ? strdup(f->region ?: p->region) : NULL,
                .project = project ? strdup(project) : NULL,
                .timeout_sec = timeout_sec,
                .max_retries = max_retries,
        };
        if (!api->base_url || (p->zoned && !api->zone) || (project && !api->project)) {
                cloud_api_done(api);
                return -ENOMEM;
        }
        if (p->credentials) {
                int r = p->credentials(f, api, ret_error);
                if (r < 0) {
                        cloud_api_done(api);
                        return r;
                }
        }
        return 0;
}

void cloud_create_defaults(CloudCreate *c, const CloudFlags *f, const CloudProvider *p) {
        assert(c);
        assert(f);
        assert(p);

        c->region = f->region ?: p->region;
        c->size = f->size ?: p->size;
        c->image = f->image ?: p->image;
}

/* What a non-2xx status means to a caller: a host that is not there (404) is an outcome the
 * operator handles, not a failure to log. */
bool cloud_id_is_valid(const char *id) {
        size_t n = id ? strlen(id) : 0;
        return n > 0 && n <= 64 &&
               strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") == n;
}

bool cloud_ip_is_valid(const char *ip) {
        union { struct in_addr a4; struct in6_addr a6; } a;
        return ip && (inet_pton(AF_INET, ip, &a) == 1 || inet_pton(AF_INET6, ip, &a) == 1);
}

char *cloud_printable(const char *s) {
        char *c = strndup(s ?: "", 64);
        for (char *p = c; p && *p; p++)
                if (*p < 0x20 || *p > 0x7e)
                        *p = '?';
        return c;
}

static int status_to_errno(long status) {
        switch (status) {
        case 401:
        case 403:
                return -EACCES;
        case 404:
                return -ENOENT;
        default:
                return status >= 400 && status <= 499 ? -EINVAL : -EIO; /* refused, or not known */
        }
}

/* How long to wait before attempt + 1: doubling from 1 s, or what the API asks (at most 60 s). */
static unsigned backoff_sec(unsigned attempt, long retry_after_sec) {
        unsigned s = 1u << MIN(attempt, 4u);
        return retry_after_sec > (long) s ? (unsigned) MIN(retry_after_sec, 60L) : s;
}

/* At most this long asleep in one call's retries, whatever the API asks. */
#define RETRY_SLEEP_MAX_SEC 120

/* once: a request that may not be sent again once it may have been carried out (a 5xx, a timeout):
 * it would make a second host or record. */
static int api_request(CloudApi *api, const char *method, const char *path, const char *content_type,
                       const char *payload, bool once, long *ret_status, json_object **ret_json, char **ret_error) {
        _cleanup_free_ char *url = NULL, *ctype = NULL;
        _cleanup_(erase_and_freep) char *auth = NULL;

        assert(api);
        assert(method);
        assert(path);

        if (api->refresh && time(NULL) >= api->token_expires - 300) {
                int r = api->refresh(api, ret_error);
                if (r < 0)
                        return r;
        }
        url = asprintf_safe("%s%s", api->base_url, path);
        auth = api->auth_header ? asprintf_safe("%s: %s", api->auth_header, api->token)
                                : asprintf_safe("Authorization: Bearer %s", api->token);
        ctype = asprintf_safe("Content-Type: %s", content_type);
        if (!url || !auth || !ctype)
                return -ENOMEM;
        for (unsigned attempt = 0, slept = 0;; attempt++) {
                const char *headers[] = { auth, ctype, "Accept: application/json", NULL };
                WebRequest q = {
                        .method = method, .url = url, .headers = headers, .body = payload,
                        .body_len = payload ? strlen(payload) : 0, .timeout_sec = api->timeout_sec,
                        .user_agent = "inletsctl",
                };
                _cleanup_(web_response_done) WebResponse a = {};
                _cleanup_free_ char *err = NULL;
                _cleanup_(json_object_putp) json_object *j = NULL;
                int r;

                r = web_request(&q, &a, &err);
                if (r < 0) {
                        if (attempt < api->max_retries &&
                            (r == -ECONNREFUSED || (r == -ETIMEDOUT && !once))) {
                                sleep(backoff_sec(attempt, -1));
                                continue;
                        }
                        return errorf(ret_error, r, "%s", err);
                }
                /* Rate limited or a hiccup: back off; a request sent once is not sent again after a 5xx. */
                if ((a.status == 429 || (a.status >= 500 && !once)) && attempt < api->max_retries &&
                    slept + backoff_sec(attempt, a.retry_after_sec) <= RETRY_SLEEP_MAX_SEC) {
                        unsigned wait = backoff_sec(attempt, a.retry_after_sec);
                        sleep(wait);
                        slept += wait;
                        continue;
                }
                if (ret_status)
                        *ret_status = a.status;
                j = a.body_len > 0 ? json_tokener_parse(a.body) : NULL;
                if (a.status < 200 || a.status > 299) {
                        json_object *m = NULL, *e = NULL;
                        /* DigitalOcean: {"message"}; Hetzner: {"error": {"message"}} */
                        const char *msg = j && json_object_object_get_ex(j, "message", &m) ? json_object_get_string(m)
                                          : j && json_object_object_get_ex(j, "error", &e) ? json_get_string(e, "message") : NULL;
                        /* The API's words go to a terminal: printable, and not a page of them. */
                        _cleanup_free_ char *shown = msg ? strndup(msg, 200) : NULL;
                        for (char *c = shown; c && *c; c++)
                                if (*c < 0x20 || *c > 0x7e)
                                        *c = '?';
                        return errorf(ret_error, status_to_errno(a.status), "%s %s: HTTP %ld%s%s%s", method,
                                      path, a.status, shown ? " (" : "", shown ?: "", shown ? ")" : "");
                }
                if (a.body_len > 0 && !j)
                        return errorf(ret_error, -EBADMSG, "%s %s: the answer is not JSON", method, path);
                if (ret_json)
                        *ret_json = TAKE_PTR(j);
                return 0;
        }
}

int cloud_api_call_once(CloudApi *api, const char *method, const char *path, json_object *body, long *ret_status,
                        json_object **ret_json, char **ret_error) {
        return api_request(api, method, path, "application/json",
                           body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL, true,
                           ret_status, ret_json, ret_error);
}

int cloud_api_call(CloudApi *api, const char *method, const char *path, json_object *body, long *ret_status,
                   json_object **ret_json, char **ret_error) {
        /* POST and PATCH (Scaleway's record changes) are not idempotent: sent once */
        return api_request(api, method, path, "application/json",
                           body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL,
                           streq(method, "POST") || streq(method, "PATCH"), ret_status, ret_json, ret_error);
}

int cloud_oauth_token(CloudApi *api, const char *uri, const char *form, char **ret_error) {
        const char *headers[] = { "Content-Type: application/x-www-form-urlencoded", "Accept: application/json", NULL };
        WebRequest q = { .method = "POST", .url = uri, .headers = headers, .body = form, .body_len = strlen(form),
                         .timeout_sec = api->timeout_sec, .user_agent = "inletsctl" };
        _cleanup_(web_response_done) WebResponse a = {};
        _cleanup_(json_object_putp) json_object *res = NULL;
        _cleanup_free_ char *err = NULL;
        json_object *exp = NULL;
        long long now = (long long) time(NULL);
        const char *tok;
        int r;

        r = web_request(&q, &a, &err);
        if (r < 0)
                return errorf(ret_error, r, "getting an access token: %s", err);
        res = a.body_len > 0 ? json_tokener_parse(a.body) : NULL;
        if (a.body)
                explicit_bzero(a.body, a.body_len); /* the token: only api->token keeps it */
        if (a.status != 200) {
                _cleanup_free_ char *shown = cloud_printable(json_get_string(res, "error_description") ?:
                                                             json_get_string(res, "error"));
                return errorf(ret_error, a.status == 400 || a.status == 401 || a.status == 403 ? -EACCES : -EIO,
                              "getting an access token at %s: HTTP %ld (%s)", uri, a.status, shown ?: "");
        }
        tok = json_get_string(res, "access_token");
        if (!tok || !*tok || strlen(tok) > 8192 || strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                             "0123456789-._~+/=") != strlen(tok))
                return errorf(ret_error, -EBADMSG, "getting an access token: no access_token in the answer");
        erase_and_free(api->token);
        api->token = strdup(tok);
        if (!api->token)
                return -ENOMEM;
        json_object_object_get_ex(res, "expires_in", &exp);
        /* made again once less than 5 minutes are left (api_request) */
        api->token_expires = now + (json_object_is_type(exp, json_type_int)
                                            ? MIN(MAX(json_object_get_int64(exp), 0), 86400) : 3600);
        return 0;
}

/* ---- providers: one generic implementation, described per provider ---- */

typedef struct Flavour Flavour;
struct Flavour {
        const char *collection;   /* "/v2/droplets"; "{zone}" stands for the API's zone */
        const char *one, *many;   /* the answer's wrapper keys; one NULL: the object is the answer */
        const char *list_query;   /* appended to the collection with the tag; NULL: list all, filter here */
        const char *name_key;     /* "name" or "label" */
        const char *ready;        /* the provider's word for running ("active" is ours) */
        const char *(*ip)(json_object *d);
        json_object *(*body)(const CloudCreate *c, const CloudApi *api);
        const char *status_key;   /* NULL: "status" */
        unsigned page_size;       /* >0: the list is read page by page ("&page=N") until one is short */
        /* Optional: what follows the create request (a host made is undone by destroy when it fails),
         * and a destroy of the provider's own. */
        int (*start)(const Flavour *f, CloudApi *api, const CloudCreate *c, const char *id, char **ret_error);
        int (*destroy)(const Flavour *f, CloudApi *api, const char *id, char **ret_error);
        bool labels;              /* tags are labels (Hetzner) */
};

/* The collection's path for api (its zone in place of "{zone}"). */
static char *collection_path(const Flavour *f, const CloudApi *api) {
        const char *z = strstr(f->collection, "{zone}");
        if (!z)
                return strdup(f->collection);
        return asprintf_safe("%.*s%s%s", (int) (z - f->collection), f->collection, api->zone ?: "", z + strlen("{zone}"));
}

static const char *ip_do(json_object *d) {
        json_object *nets = NULL, *v4 = NULL;
        if (json_object_object_get_ex(d, "networks", &nets) && json_object_object_get_ex(nets, "v4", &v4) &&
            json_object_is_type(v4, json_type_array))
                for (size_t i = 0; i < json_object_array_length(v4); i++) {
                        json_object *n = json_object_array_get_idx(v4, i);
                        if (streq_ptr(json_get_string(n, "type"), "public"))
                                return json_get_string(n, "ip_address");
                }
        return NULL;
}

const char *hetzner_public_ip(json_object *d) {
        json_object *net = NULL, *v4 = NULL;
        return json_object_object_get_ex(d, "public_net", &net) && json_object_object_get_ex(net, "ipv4", &v4)
                       ? json_get_string(v4, "ip") : NULL;
}

static const char *ip_vultr(json_object *d) {
        const char *ip = json_get_string(d, "main_ip");
        return ip && !streq(ip, "0.0.0.0") ? ip : NULL;
}

static const char *ip_linode(json_object *d) {
        json_object *v4 = NULL;
        return json_object_object_get_ex(d, "ipv4", &v4) && json_object_is_type(v4, json_type_array) &&
                               json_object_array_length(v4) > 0
                       ? json_object_get_string(json_object_array_get_idx(v4, 0)) : NULL;
}

static json_object *tags_array(const CloudCreate *c) {
        json_object *t = json_object_new_array();
        for (size_t i = 0; i < c->n_tags; i++)
                json_object_array_add(t, json_object_new_string(c->tags[i]));
        return t;
}

static void add_str(json_object *o, const char *k, const char *v) {
        json_object_object_add(o, k, json_object_new_string(v));
}

static json_object *body_do(const CloudCreate *c, const CloudApi *api _unused_) {
        json_object *b = json_object_new_object();
        add_str(b, "name", c->name);
        add_str(b, "region", c->region);
        add_str(b, "size", c->size);
        add_str(b, "image", c->image);
        add_str(b, "user_data", c->user_data);
        json_object_object_add(b, "tags", tags_array(c));
        return b;
}

static json_object *body_hetzner(const CloudCreate *c, const CloudApi *api _unused_) {
        json_object *b = json_object_new_object(), *labels = json_object_new_object();
        add_str(b, "name", c->name);
        add_str(b, "location", c->region);
        add_str(b, "server_type", c->size);
        add_str(b, "image", c->image);
        add_str(b, "user_data", c->user_data);
        for (size_t i = 0; i < c->n_tags; i++) /* labels without values stand for tags */
                add_str(labels, c->tags[i], "");
        json_object_object_add(b, "labels", labels);
        return b;
}

static json_object *body_vultr(const CloudCreate *c, const CloudApi *api _unused_) {
        json_object *b = json_object_new_object();
        _cleanup_free_ char *ud = base64mem(c->user_data, strlen(c->user_data));
        add_str(b, "label", c->name);
        add_str(b, "hostname", c->name);
        add_str(b, "region", c->region);
        add_str(b, "plan", c->size);
        if (c->image[strspn(c->image, "0123456789")] == 0) /* Vultr images are operating system ids */
                json_object_object_add(b, "os_id", json_object_new_int(atoi(c->image)));
        else
                add_str(b, "image_id", c->image);
        add_str(b, "user_data", ud ?: "");
        json_object_object_add(b, "tags", tags_array(c));
        return b;
}

static json_object *body_linode(const CloudCreate *c, const CloudApi *api _unused_) {
        json_object *b = json_object_new_object(), *meta = json_object_new_object();
        _cleanup_free_ char *ud = base64mem(c->user_data, strlen(c->user_data));
        _cleanup_(erase_and_freep) char *root = NULL;
        add_str(b, "label", c->name);
        add_str(b, "region", c->region);
        add_str(b, "type", c->size);
        add_str(b, "image", c->image);
        /* Required by the API; nobody needs it (no password logins), so it is random and forgotten. */
        if (random_token(&root) >= 0)
                add_str(b, "root_pass", root);
        json_object_object_add(b, "tags", tags_array(c));
        add_str(meta, "user_data", ud ?: "");
        json_object_object_add(b, "metadata", meta);
        return b;
}

static int host_parse(const Flavour *f, json_object *d, CloudHost *ret) {
        json_object *id = NULL;

        if (!d || !json_object_object_get_ex(d, "id", &id))
                return -EBADMSG;
        return cloud_host_from(json_object_get_string(id), json_get_string(d, f->name_key),
                               json_get_string(d, f->status_key ?: "status"), f->ready, f->ip(d), ret);
}

static int one_host(const Flavour *f, json_object *res, const char *what, CloudHost *ret, char **ret_error) {
        json_object *d = res;
        int r;

        if (f->one && !json_object_object_get_ex(res, f->one, &d))
                d = NULL;
        r = host_parse(f, d, ret);
        return r < 0 ? errorf(ret_error, r, "%s: no %s in the answer", what, f->one ?: "host") : 0;
}

/* The path of host id, and of what is below it (suffix "" or "/action"...). */
static char *host_path(const Flavour *f, const CloudApi *api, const char *id, const char *suffix) {
        _cleanup_free_ char *coll = collection_path(f, api);
        return coll ? asprintf_safe("%s/%s%s", coll, id, suffix) : NULL;
}

/* The provider's answer about host id (*ret_what: its path, for messages). */
static int host_get_json(const Flavour *f, CloudApi *api, const char *id, json_object **ret, char **ret_what,
                         char **ret_error) {
        _cleanup_free_ char *path = host_path(f, api, id, "");
        int r;

        if (!path)
                return -ENOMEM;
        r = cloud_api_call(api, "GET", path, NULL, NULL, ret, ret_error);
        if (r >= 0)
                *ret_what = TAKE_PTR(path);
        return r;
}

static int gen_destroy(const Flavour *f, CloudApi *api, const char *id, char **ret_error) {
        _cleanup_free_ char *path = NULL;

        if (f->destroy)
                return f->destroy(f, api, id, ret_error);
        if (!(path = host_path(f, api, id, "")))
                return -ENOMEM;
        return cloud_api_call(api, "DELETE", path, NULL, NULL, NULL, ret_error);
}

static int gen_create(const Flavour *f, CloudApi *api, const CloudCreate *c, CloudHost *ret, char **ret_error) {
        _cleanup_(json_object_putp) json_object *body = f->body(c, api), *res = NULL;
        _cleanup_free_ char *coll = collection_path(f, api);
        int r;

        if (!body || !coll)
                return -ENOMEM;
        r = cloud_api_call(api, "POST", coll, body, NULL, &res, ret_error);
        if (r < 0)
                return r;
        r = one_host(f, res, coll, ret, ret_error);
        if (r < 0 || !f->start)
                return r;
        r = f->start(f, api, c, ret->id, ret_error);
        if (r < 0) {
                /* Made but not started: not kept either. */
                _cleanup_free_ char *err = NULL;
                if (gen_destroy(f, api, ret->id, &err) < 0)
                        r = errorf(ret_error, -ECANCELED, "%s; deleting host %s failed too (%s): delete it by hand",
                                   *ret_error ?: strerror(-r), ret->id, err);
                else
                        r = errorf(ret_error, -ECANCELED, "%s; host %s is deleted again", *ret_error ?: strerror(-r),
                                   ret->id);
                cloud_host_done(ret);
        }
        return r;
}

static int gen_get(const Flavour *f, CloudApi *api, const char *id, CloudHost *ret, char **ret_error) {
        _cleanup_free_ char *path = NULL;
        _cleanup_(json_object_putp) json_object *res = NULL;
        int r;

        r = host_get_json(f, api, id, &res, &path, ret_error);
        if (r < 0)
                return r;
        return one_host(f, res, path, ret, ret_error);
}

static bool has_tag(const Flavour *f, json_object *d, const char *tag) {
        json_object *t = NULL;
        if (f->labels) /* Hetzner: labels without values stand for tags */
                return json_object_object_get_ex(d, "labels", &t) && json_object_is_type(t, json_type_object) &&
                       json_object_object_get_ex(t, tag, NULL);
        if (!json_object_object_get_ex(d, "tags", &t) || !json_object_is_type(t, json_type_array))
                return false;
        for (size_t i = 0; i < json_object_array_length(t); i++)
                if (streq_ptr(json_object_get_string(json_object_array_get_idx(t, i)), tag))
                        return true;
        return false;
}

#define LIST_PAGES_MAX 20

static int gen_list(const Flavour *f, CloudApi *api, const char *tag, CloudHost **ret, size_t *ret_n,
                    char **ret_error) {
        _cleanup_free_ char *coll = collection_path(f, api);
        CloudHost *l = NULL;
        size_t n = 0;
        int r = 0;

        if (!coll)
                return -ENOMEM;
        for (unsigned page = 1;; page++) {
                _cleanup_free_ char *path = NULL;
                _cleanup_(json_object_putp) json_object *res = NULL;
                json_object *arr = NULL;
                size_t m;
                CloudHost *k;

                path = f->page_size > 0 ? asprintf_safe("%s%s%s&page=%u", coll, f->list_query, tag, page)
                                        : asprintf_safe("%s%s%s", coll, f->list_query ?: "?page_size=500",
                                                        f->list_query ? tag : "");
                if (!path) {
                        r = -ENOMEM;
                        break;
                }
                r = cloud_api_call(api, "GET", path, NULL, NULL, &res, ret_error);
                if (r < 0)
                        break;
                if (!json_object_object_get_ex(res, f->many, &arr) || !json_object_is_type(arr, json_type_array)) {
                        r = errorf(ret_error, -EBADMSG, "GET %s: no %s in the answer", path, f->many);
                        break;
                }
                m = json_object_array_length(arr);
                k = reallocarray(l, n + m + 1, sizeof(CloudHost));
                if (!k) {
                        r = -ENOMEM;
                        break;
                }
                l = k;
                for (size_t i = 0; i < m; i++) {
                        json_object *d = json_object_array_get_idx(arr, i);
                        bool seen = false;
                        /* the API's filter is not trusted: the tag is checked here too */
                        if (!has_tag(f, d, tag) || host_parse(f, d, &l[n]) < 0)
                                continue;
                        for (size_t j = 0; j < n && !seen; j++)
                                seen = streq(l[j].id, l[n].id);
                        if (seen)
                                cloud_host_done(&l[n]);
                        else
                                n++;
                }
                /* the end is an empty page: a short one may only mean the API's pages are smaller */
                if (f->page_size == 0 || m == 0)
                        break;
                if (page >= LIST_PAGES_MAX) {
                        r = errorf(ret_error, -E2BIG, "GET %s: more than %u pages of hosts", coll, LIST_PAGES_MAX);
                        break;
                }
        }
        return cloud_hosts_return(l, n, r, ret, ret_n);
}

#define PROVIDER(id, flavour, pname, env, url, reg, sz, img, ...)                                                \
        static int id##_create(CloudApi *a, const CloudCreate *c, CloudHost *r, char **e) {                  \
                return gen_create(&flavour, a, c, r, e);                                                    \
        }                                                                                                   \
        static int id##_get(CloudApi *a, const char *i, CloudHost *r, char **e) {                           \
                return gen_get(&flavour, a, i, r, e);                                                       \
        }                                                                                                   \
        static int id##_destroy(CloudApi *a, const char *i, char **e) {                                     \
                return gen_destroy(&flavour, a, i, e);                                                      \
        }                                                                                                   \
        static int id##_list(CloudApi *a, const char *t, CloudHost **r, size_t *n, char **e) {              \
                return gen_list(&flavour, a, t, r, n, e);                                                   \
        }                                                                                                   \
        const CloudProvider cloud_provider_##id = {                                                         \
                .name = pname, .token_env = env, .api_url = url, .region = reg, .size = sz, .image = img,   \
                .create = id##_create, .get = id##_get, .destroy = id##_destroy, .list = id##_list,         \
                __VA_ARGS__                                                                                 \
        }

/* DigitalOcean API v2: droplets and tags. */
static const Flavour flavour_do = { "/v2/droplets", "droplet", "droplets", "?per_page=200&tag_name=", "name",
                                    "active", ip_do, body_do };
/* Hetzner Cloud API v1: servers and labels. */
static const Flavour flavour_hetzner = { "/v1/servers", "server", "servers", "?per_page=50&label_selector=", "name",
                                         "running", hetzner_public_ip, body_hetzner, .labels = true };
/* Vultr API v2: instances and tags; user data base64. */
static const Flavour flavour_vultr = { "/v2/instances", "instance", "instances", "?per_page=500&tag=", "label",
                                       "active", ip_vultr, body_vultr };
/* Linode API v4: instances (the bare object), tags filtered here; metadata user data base64. */
static const Flavour flavour_linode = { "/v4/linode/instances", NULL, "data", NULL, "label", "running", ip_linode,
                                        body_linode };

/* Scaleway Instance API v1: servers live in a zone and are created stopped; the user-data is set,
 * then the server is powered on. Authenticated with X-Auth-Token; hosts belong to a project. */
const char *scw_public_ip(json_object *d) {
        json_object *ips = NULL, *ip = NULL;
        if (json_object_object_get_ex(d, "public_ips", &ips) && json_object_is_type(ips, json_type_array))
                for (size_t i = 0; i < json_object_array_length(ips); i++) {
                        json_object *e = json_object_array_get_idx(ips, i);
                        if (streq_ptr(json_get_string(e, "family"), "inet"))
                                return json_get_string(e, "address");
                }
        return json_object_object_get_ex(d, "public_ip", &ip) ? json_get_string(ip, "address") : NULL;
}

static json_object *body_scw(const CloudCreate *c, const CloudApi *api) {
        json_object *b = json_object_new_object();
        add_str(b, "name", c->name);
        add_str(b, "commercial_type", c->size);
        add_str(b, "image", c->image);
        add_str(b, "project", api->project);
        json_object_object_add(b, "tags", tags_array(c));
        /* an address of its own, given up with the server */
        json_object_object_add(b, "dynamic_ip_required", json_object_new_boolean(true));
        return b;
}

#define SCW_SETTLE_WAIT_SEC 300
#define STR_ONE_OF(s, a, b) (streq_ptr((s), (a)) || streq_ptr((s), (b)))

static int scw_action(const Flavour *f, CloudApi *api, const char *id, const char *action, char **ret_error) {
        _cleanup_(json_object_putp) json_object *body = json_object_new_object();
        _cleanup_free_ char *path = host_path(f, api, id, "/action");

        if (!body || !path)
                return -ENOMEM;
        add_str(body, "action", action);
        return cloud_api_call(api, "POST", path, body, NULL, NULL, ret_error);
}

static int scw_start(const Flavour *f, CloudApi *api, const CloudCreate *c, const char *id, char **ret_error) {
        _cleanup_free_ char *path = host_path(f, api, id, "/user_data/cloud-init");
        int r;

        if (!path)
                return -ENOMEM;
        r = api_request(api, "PATCH", path, "text/plain", c->user_data, false, NULL, NULL, ret_error); /* idempotent */
        if (r < 0)
                return r;
        return scw_action(f, api, id, "poweron", ret_error);
}

/* A server that ran is terminated (it, its local volumes and its address go); one that never ran
 * cannot be, so it is deleted, and then its volumes. */
static int scw_destroy(const Flavour *f, CloudApi *api, const char *id, char **ret_error) {
        _cleanup_free_ char *path = NULL;
        _cleanup_(json_object_putp) json_object *res = NULL;
        json_object *d = NULL, *vols = NULL;
        int r;

        r = host_get_json(f, api, id, &res, &path, ret_error);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(res, "server", &d))
                return errorf(ret_error, -EBADMSG, "GET %s: no server in the answer", path);
        /* Neither can be done to a server on its way (starting, stopping): inletsctl waits until it
         * is running or stopped, a bounded time; the operator tries again on its next pass. */
        if (api->max_retries > 0) {
                struct timespec start, now;
                clock_gettime(CLOCK_MONOTONIC, &start);
                while (STR_ONE_OF(json_get_string(d, "state"), "starting", "stopping")) {
                        clock_gettime(CLOCK_MONOTONIC, &now);
                        if (now.tv_sec - start.tv_sec >= SCW_SETTLE_WAIT_SEC)
                                return errorf(ret_error, -EBUSY, "server %s is still %s after %d s: delete it again "
                                              "later", id, json_get_string(d, "state"), SCW_SETTLE_WAIT_SEC);
                        sleep(2);
                        json_object_putp(&res);
                        path = mfree(path);
                        r = host_get_json(f, api, id, &res, &path, ret_error);
                        if (r < 0)
                                return r;
                        if (!json_object_object_get_ex(res, "server", &d))
                                return errorf(ret_error, -EBADMSG, "GET %s: no server in the answer", path);
                }
        }
        if (!streq_ptr(json_get_string(d, "state"), "stopped"))
                return scw_action(f, api, id, "terminate", ret_error);
        r = cloud_api_call(api, "DELETE", path, NULL, NULL, NULL, ret_error);
        if (r == -ENOENT) /* gone, perhaps by this very DELETE whose answer was lost: its volumes next */
                *ret_error = mfree(*ret_error);
        else if (r < 0)
                return r;
        if (!json_object_object_get_ex(d, "volumes", &vols) || !json_object_is_type(vols, json_type_object))
                return 0;
        json_object_object_foreach(vols, k, v) {
                _cleanup_free_ char *vpath = NULL;
                const char *vid = json_get_string(v, "id");
                (void) k;
                if (!vid || !cloud_id_is_valid(vid))
                        continue;
                vpath = asprintf_safe("/instance/v1/zones/%s/volumes/%s", api->zone, vid);
                if (!vpath)
                        return -ENOMEM;
                r = cloud_api_call(api, "DELETE", vpath, NULL, NULL, NULL, ret_error);
                if (r < 0 && r != -ENOENT)
                        return errorf(ret_error, r, "server %s is deleted, its volume %s is not (%s): delete it in "
                                      "the console", id, vid, *ret_error);
        }
        return 0;
}

static const Flavour flavour_scw = { "/instance/v1/zones/{zone}/servers", "server", "servers", "?per_page=100&tags=",
                                     "name", "running", scw_public_ip, body_scw, "state", 100, scw_start, scw_destroy };

/* The token's environment variable is the one the provider's own tools read (doctl, hcloud,
 * vultr-cli, and Linode's Terraform provider). */
PROVIDER(digitalocean, flavour_do, "digitalocean", "DIGITALOCEAN_ACCESS_TOKEN", "https://api.digitalocean.com", "lon1",
         "s-1vcpu-1gb", "debian-12-x64", .dns_plan = do_dns_plan, .dns_add = do_dns_add,
         .dns_remove = do_dns_remove);
PROVIDER(hetzner, flavour_hetzner, "hetzner", "HCLOUD_TOKEN", "https://api.hetzner.cloud", "fsn1", "cx22", "debian-12",
         .dns_plan = hetzner_dns_plan, .dns_keep = hetzner_dns_keep, .dns_add = hetzner_dns_add, .dns_remove = hetzner_dns_remove);
PROVIDER(vultr, flavour_vultr, "vultr", "VULTR_API_KEY", "https://api.vultr.com", "ams", "vc2-1c-1gb", "2136");
PROVIDER(scaleway, flavour_scw, "scaleway", "SCW_SECRET_KEY", "https://api.scaleway.com", "fr-par-1", "DEV1-S",
         "debian_bookworm", .auth_header = "X-Auth-Token", .project_env = "SCW_DEFAULT_PROJECT_ID", .zoned = true,
         .region_kind = "zone", .dns_plan = scw_dns_plan, .dns_keep = scw_dns_keep, .dns_add = scw_dns_add, .dns_remove = scw_dns_remove);
PROVIDER(linode, flavour_linode, "linode", "LINODE_TOKEN", "https://api.linode.com", "eu-west", "g6-nanode-1",
         "linode/debian12");

const CloudProvider *const cloud_providers[] = { &cloud_provider_digitalocean, &cloud_provider_hetzner,
                                                 &cloud_provider_vultr, &cloud_provider_linode,
                                                 &cloud_provider_scaleway, &cloud_provider_ec2, &cloud_provider_gce,
                                                 &cloud_provider_azure, NULL };

const CloudProvider *cloud_provider_find(const char *name) {
        if (streq(name, "do"))
                return &cloud_provider_digitalocean;
        for (size_t i = 0; cloud_providers[i]; i++)
                if (streq(name, cloud_providers[i]->name))
                        return cloud_providers[i];
        return NULL;
}
