// SPDX-License-Identifier: LGPL-2.1-or-later
/* Cloud provider APIs; see cloudapi.h. DigitalOcean: REST API v2, droplets and tags. */

#include <curl/curl.h>
#include <stdio.h>
#include <unistd.h>

#include "cloudapi.h"
#include "util.h"

#define BODY_MAX (4 * 1024 * 1024)

typedef struct Buf {
        char *p;
        size_t n;
        bool overflow;
} Buf;

static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Buf *b = userdata;
        size_t n = size * nmemb;
        char *t;

        if (b->n + n > BODY_MAX) {
                b->overflow = true;
                return 0;
        }
        t = realloc(b->p, b->n + n + 1);
        if (!t)
                return 0;
        memcpy(t + b->n, ptr, n);
        b->p = t;
        b->n += n;
        b->p[b->n] = 0;
        return n;
}

static const char *jstr(json_object *o, const char *key) {
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v) : NULL;
}

void cloud_api_done(CloudApi *api) {
        free(api->base_url);
        erase_and_free(api->token);
        *api = (CloudApi) {};
}

void cloud_host_done(CloudHost *h) {
        free(h->id);
        free(h->name);
        free(h->status);
        free(h->ip);
        *h = (CloudHost) {};
}

int cloud_api_call(CloudApi *api, const char *method, const char *path, json_object *body, long *ret_status,
                   json_object **ret_json, char **ret_error) {
        _cleanup_free_ char *url = NULL, *auth = NULL;
        const char *payload = body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL;
        long status = 0;
        int r = -EIO;

        if (asprintf(&url, "%s%s", api->base_url, path) < 0 || asprintf(&auth, "Authorization: Bearer %s", api->token) < 0)
                return -ENOMEM;
        for (unsigned attempt = 0;; attempt++) {
                CURL *c = curl_easy_init();
                struct curl_slist *h = NULL;
                Buf b = {};
                CURLcode cc;

                if (!c)
                        return -ENOMEM;
                h = curl_slist_append(h, auth);
                h = curl_slist_append(h, "Content-Type: application/json");
                h = curl_slist_append(h, "Accept: application/json");
                curl_easy_setopt(c, CURLOPT_URL, url);
                curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
                curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
                curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
                curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
                curl_easy_setopt(c, CURLOPT_TIMEOUT, api->timeout_sec ?: 30L);
                curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
                curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
                curl_easy_setopt(c, CURLOPT_USERAGENT, "inletsctl");
                if (payload)
                        curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
                cc = curl_easy_perform(c);
                if (cc == CURLE_OK)
                        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
                curl_slist_free_all(h);
                curl_easy_cleanup(c);

                if (cc != CURLE_OK) {
                        free(b.p);
                        if (attempt < api->max_retries && (cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_COULDNT_CONNECT)) {
                                sleep(1u << MIN(attempt, 4u));
                                continue;
                        }
                        return errorf(ret_error, -EIO, "%s %s: %s", method, path, curl_easy_strerror(cc));
                }
                if ((status == 429 || status >= 500) && attempt < api->max_retries) {
                        free(b.p);
                        sleep(1u << MIN(attempt, 4u)); /* rate limited or a hiccup: back off */
                        continue;
                }
                if (ret_status)
                        *ret_status = status;
                {
                        json_object *j = b.n > 0 ? json_tokener_parse(b.p) : NULL;
                        if (status < 200 || status > 299) {
                                json_object *m = NULL, *e = NULL;
                                /* DigitalOcean: {"message"}; Hetzner: {"error": {"message"}} */
                                const char *msg = j && json_object_object_get_ex(j, "message", &m)
                                                          ? json_object_get_string(m)
                                                  : j && json_object_object_get_ex(j, "error", &e)
                                                          ? jstr(e, "message") : NULL;
                                r = errorf(ret_error, status == 401 || status == 403 ? -EACCES : -EIO,
                                           "%s %s: HTTP %ld%s%s%s", method, path, status, msg ? " (" : "", msg ?: "",
                                           msg ? ")" : "");
                                json_object_put(j);
                                free(b.p);
                                return r;
                        }
                        if (b.n > 0 && !j) {
                                free(b.p);
                                return errorf(ret_error, -EBADMSG, "%s %s: the answer is not JSON", method, path);
                        }
                        free(b.p);
                        if (ret_json)
                                *ret_json = j;
                        else
                                json_object_put(j);
                        return 0;
                }
        }
}

/* ---- DigitalOcean ---- */

static int do_host(json_object *d, CloudHost *ret) {
        json_object *id = NULL, *nets = NULL, *v4 = NULL;

        if (!d || !json_object_object_get_ex(d, "id", &id))
                return -EBADMSG;
        *ret = (CloudHost) {
                .id = strdup(json_object_get_string(id)),
                .name = strdup(jstr(d, "name") ?: ""),
                .status = strdup(jstr(d, "status") ?: "unknown"),
        };
        if (json_object_object_get_ex(d, "networks", &nets) && json_object_object_get_ex(nets, "v4", &v4) &&
            json_object_is_type(v4, json_type_array))
                for (size_t i = 0; i < json_object_array_length(v4); i++) {
                        json_object *n = json_object_array_get_idx(v4, i);
                        if (streq_ptr(jstr(n, "type"), "public") && jstr(n, "ip_address")) {
                                ret->ip = strdup(jstr(n, "ip_address"));
                                break;
                        }
                }
        if (!ret->id || !ret->name || !ret->status) {
                cloud_host_done(ret);
                return -ENOMEM;
        }
        return 0;
}

static int do_create(CloudApi *api, const CloudCreate *c, CloudHost *ret, char **ret_error) {
        json_object *body = json_object_new_object(), *tags = json_object_new_array(), *res = NULL, *d = NULL;
        int r;

        json_object_object_add(body, "name", json_object_new_string(c->name));
        json_object_object_add(body, "region", json_object_new_string(c->region));
        json_object_object_add(body, "size", json_object_new_string(c->size));
        json_object_object_add(body, "image", json_object_new_string(c->image));
        json_object_object_add(body, "user_data", json_object_new_string(c->user_data));
        for (size_t i = 0; i < c->n_tags; i++)
                json_object_array_add(tags, json_object_new_string(c->tags[i]));
        json_object_object_add(body, "tags", tags);
        r = cloud_api_call(api, "POST", "/v2/droplets", body, NULL, &res, ret_error);
        json_object_put(body);
        if (r < 0)
                return r;
        r = json_object_object_get_ex(res, "droplet", &d) ? do_host(d, ret) : -EBADMSG;
        json_object_put(res);
        return r < 0 ? errorf(ret_error, r, "POST /v2/droplets: no droplet in the answer") : 0;
}

static int do_get(CloudApi *api, const char *id, CloudHost *ret, char **ret_error) {
        _cleanup_free_ char *path = NULL;
        json_object *res = NULL, *d = NULL;
        int r;

        if (asprintf(&path, "/v2/droplets/%s", id) < 0)
                return -ENOMEM;
        r = cloud_api_call(api, "GET", path, NULL, NULL, &res, ret_error);
        if (r < 0)
                return r;
        r = json_object_object_get_ex(res, "droplet", &d) ? do_host(d, ret) : -EBADMSG;
        json_object_put(res);
        return r < 0 ? errorf(ret_error, r, "GET %s: no droplet in the answer", path) : 0;
}

static int do_destroy(CloudApi *api, const char *id, char **ret_error) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "/v2/droplets/%s", id) < 0)
                return -ENOMEM;
        return cloud_api_call(api, "DELETE", path, NULL, NULL, NULL, ret_error);
}

static int do_list(CloudApi *api, const char *tag, CloudHost **ret, size_t *ret_n, char **ret_error) {
        _cleanup_free_ char *path = NULL;
        json_object *res = NULL, *arr = NULL;
        CloudHost *l = NULL;
        size_t n = 0;
        int r;

        if (asprintf(&path, "/v2/droplets?tag_name=%s&per_page=200", tag) < 0)
                return -ENOMEM;
        r = cloud_api_call(api, "GET", path, NULL, NULL, &res, ret_error);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(res, "droplets", &arr) || !json_object_is_type(arr, json_type_array)) {
                json_object_put(res);
                return errorf(ret_error, -EBADMSG, "GET %s: no droplets in the answer", path);
        }
        l = new0(CloudHost, json_object_array_length(arr));
        for (size_t i = 0; l && i < json_object_array_length(arr); i++)
                if (do_host(json_object_array_get_idx(arr, i), &l[n]) >= 0)
                        n++;
        json_object_put(res);
        if (!l)
                return -ENOMEM;
        *ret = l;
        *ret_n = n;
        return 0;
}

const CloudProvider cloud_provider_digitalocean = {
        .name = "digitalocean",
        .api_url = "https://api.digitalocean.com",
        .region = "lon1",
        .size = "s-1vcpu-1gb",
        .image = "debian-12-x64",
        .create = do_create,
        .get = do_get,
        .destroy = do_destroy,
        .list = do_list,
};

/* ---- Hetzner Cloud: API v1, servers and labels (our tags become labels without values) ---- */

static int hz_host(json_object *d, CloudHost *ret) {
        json_object *id = NULL, *net = NULL, *v4 = NULL;
        const char *st;

        if (!d || !json_object_object_get_ex(d, "id", &id))
                return -EBADMSG;
        st = jstr(d, "status") ?: "unknown";
        *ret = (CloudHost) {
                .id = strdup(json_object_get_string(id)),
                .name = strdup(jstr(d, "name") ?: ""),
                .status = strdup(streq(st, "running") ? "active" : st), /* one word for "ready" */
        };
        if (json_object_object_get_ex(d, "public_net", &net) && json_object_object_get_ex(net, "ipv4", &v4) &&
            jstr(v4, "ip"))
                ret->ip = strdup(jstr(v4, "ip"));
        if (!ret->id || !ret->name || !ret->status) {
                cloud_host_done(ret);
                return -ENOMEM;
        }
        return 0;
}

static int hz_create(CloudApi *api, const CloudCreate *c, CloudHost *ret, char **ret_error) {
        json_object *body = json_object_new_object(), *labels = json_object_new_object(), *res = NULL, *d = NULL;
        int r;

        json_object_object_add(body, "name", json_object_new_string(c->name));
        json_object_object_add(body, "location", json_object_new_string(c->region));
        json_object_object_add(body, "server_type", json_object_new_string(c->size));
        json_object_object_add(body, "image", json_object_new_string(c->image));
        json_object_object_add(body, "user_data", json_object_new_string(c->user_data));
        for (size_t i = 0; i < c->n_tags; i++)
                json_object_object_add(labels, c->tags[i], json_object_new_string(""));
        json_object_object_add(body, "labels", labels);
        r = cloud_api_call(api, "POST", "/v1/servers", body, NULL, &res, ret_error);
        json_object_put(body);
        if (r < 0)
                return r;
        r = json_object_object_get_ex(res, "server", &d) ? hz_host(d, ret) : -EBADMSG;
        json_object_put(res);
        return r < 0 ? errorf(ret_error, r, "POST /v1/servers: no server in the answer") : 0;
}

static int hz_get(CloudApi *api, const char *id, CloudHost *ret, char **ret_error) {
        _cleanup_free_ char *path = NULL;
        json_object *res = NULL, *d = NULL;
        int r;

        if (asprintf(&path, "/v1/servers/%s", id) < 0)
                return -ENOMEM;
        r = cloud_api_call(api, "GET", path, NULL, NULL, &res, ret_error);
        if (r < 0)
                return r;
        r = json_object_object_get_ex(res, "server", &d) ? hz_host(d, ret) : -EBADMSG;
        json_object_put(res);
        return r < 0 ? errorf(ret_error, r, "GET %s: no server in the answer", path) : 0;
}

static int hz_destroy(CloudApi *api, const char *id, char **ret_error) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "/v1/servers/%s", id) < 0)
                return -ENOMEM;
        return cloud_api_call(api, "DELETE", path, NULL, NULL, NULL, ret_error);
}

static int hz_list(CloudApi *api, const char *tag, CloudHost **ret, size_t *ret_n, char **ret_error) {
        _cleanup_free_ char *path = NULL;
        json_object *res = NULL, *arr = NULL;
        CloudHost *l;
        size_t n = 0;
        int r;

        if (asprintf(&path, "/v1/servers?label_selector=%s&per_page=50", tag) < 0)
                return -ENOMEM;
        r = cloud_api_call(api, "GET", path, NULL, NULL, &res, ret_error);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(res, "servers", &arr) || !json_object_is_type(arr, json_type_array)) {
                json_object_put(res);
                return errorf(ret_error, -EBADMSG, "GET %s: no servers in the answer", path);
        }
        l = new0(CloudHost, json_object_array_length(arr));
        for (size_t i = 0; l && i < json_object_array_length(arr); i++)
                if (hz_host(json_object_array_get_idx(arr, i), &l[n]) >= 0)
                        n++;
        json_object_put(res);
        if (!l)
                return -ENOMEM;
        *ret = l;
        *ret_n = n;
        return 0;
}

const CloudProvider cloud_provider_hetzner = {
        .name = "hetzner",
        .api_url = "https://api.hetzner.cloud",
        .region = "fsn1",
        .size = "cx22",
        .image = "debian-12",
        .create = hz_create,
        .get = hz_get,
        .destroy = hz_destroy,
        .list = hz_list,
};

const CloudProvider *cloud_provider_find(const char *name) {
        if (streq(name, "digitalocean") || streq(name, "do"))
                return &cloud_provider_digitalocean;
        if (streq(name, "hetzner"))
                return &cloud_provider_hetzner;
        return NULL;
}
