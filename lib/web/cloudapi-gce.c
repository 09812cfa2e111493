// SPDX-License-Identifier: LGPL-2.1-or-later
/* Google Compute Engine for cloudapi.h: the Compute API v1 (JSON), authorized with an OAuth access
 * token that a service account's key gets (RFC 7523: a JWT signed RS256 with the key, exchanged
 * at the key's token_uri; made again before it expires). A host is an instance in a zone on the
 * default network, labelled inletsd and inletsd-NAME, with a network tag inletsd-NAME that a
 * firewall rule of the same name (description "inletsd") opens the exit server's ports to. */

#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloudapi.h"
#include "encoding.h"
#include "fileio.h"
#include "macro.h"
#include "sigv4.h"
#include "string-util.h"
#include "web.h"

#define GCE_TOKEN_URI "https://oauth2.googleapis.com/token"
#define GCE_SCOPE "https://www.googleapis.com/auth/compute"
#define GCE_PAGES_MAX 20
#define GCE_FIREWALL_MARK "inletsd"

/* ---- credentials: a service account's key, then access tokens ---- */

/* header.claims signed with RS256 under the PEM key, as a JWT. */
static int jwt_rs256(const char *key_pem, const char *header, const char *claims, char **ret, char **ret_error) {
        _cleanup_free_ char *h64 = base64url_mem(header, strlen(header)), *c64 = base64url_mem(claims, strlen(claims)),
                            *input = NULL, *s64 = NULL;
        gnutls_datum_t pem = { (unsigned char *) key_pem, (unsigned) strlen(key_pem) }, data, sig = {};
        gnutls_privkey_t k = NULL;
        int r;

        if (!h64 || !c64 || !(input = asprintf_safe("%s.%s", h64, c64)))
                return -ENOMEM;
        if (gnutls_privkey_init(&k) < 0)
                return -ENOMEM;
        r = gnutls_privkey_import_x509_raw(k, &pem, GNUTLS_X509_FMT_PEM, NULL, 0);
        if (r < 0 || gnutls_privkey_get_pk_algorithm(k, NULL) != GNUTLS_PK_RSA) {
                gnutls_privkey_deinit(k);
                return errorf(ret_error, -EINVAL, "the service account key's private_key is not an RSA key in PEM%s%s",
                              r < 0 ? ": " : "", r < 0 ? gnutls_strerror(r) : "");
        }
        data = (gnutls_datum_t) { (unsigned char *) input, (unsigned) strlen(input) };
        r = gnutls_privkey_sign_data(k, GNUTLS_DIG_SHA256, 0, &data, &sig); /* PKCS#1 v1.5: RS256 */
        gnutls_privkey_deinit(k);
        if (r < 0)
                return errorf(ret_error, -EIO, "signing the token request failed: %s", gnutls_strerror(r));
        s64 = base64url_mem(sig.data, sig.size);
        gnutls_free(sig.data);
        if (!s64)
                return -ENOMEM;
        *ret = asprintf_safe("%s.%s", input, s64);
        return *ret ? 0 : -ENOMEM;
}

/* A fresh access token from the key in api->credentials. */
static int gce_refresh(CloudApi *api, char **ret_error) {
        _cleanup_(json_object_putp) json_object *key = json_tokener_parse(api->credentials ?: ""), *header = NULL,
                                                *claims = NULL;
        _cleanup_(erase_and_freep) char *jwt = NULL, *body = NULL, *assertion = NULL;
        const char *email = json_get_string(key, "client_email"), *pem = json_get_string(key, "private_key"),
                   *uri = json_get_string(key, "token_uri") ?: GCE_TOKEN_URI;
        long long now = (long long) time(NULL);
        int r;

        if (!email || !pem)
                return errorf(ret_error, -EINVAL, "the service account key has no client_email and private_key");
        header = json_object_new_object();
        claims = json_object_new_object();
        if (!header || !claims)
                return -ENOMEM;
        json_object_object_add(header, "alg", json_object_new_string("RS256"));
        json_object_object_add(header, "typ", json_object_new_string("JWT"));
        if (json_get_string(key, "private_key_id"))
                json_object_object_add(header, "kid", json_object_new_string(json_get_string(key, "private_key_id")));
        json_object_object_add(claims, "iss", json_object_new_string(email));
        json_object_object_add(claims, "scope", json_object_new_string(GCE_SCOPE));
        json_object_object_add(claims, "aud", json_object_new_string(uri));
        json_object_object_add(claims, "iat", json_object_new_int64(now));
        json_object_object_add(claims, "exp", json_object_new_int64(now + 3600));
        r = jwt_rs256(pem, json_object_to_json_string_ext(header, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                      json_object_to_json_string_ext(claims, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                      &jwt, ret_error);
        if (r < 0)
                return r;
        assertion = sigv4_uri_encode(jwt, strlen(jwt), 0);
        body = assertion ? asprintf_safe("grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer"
                                         "&assertion=%s", assertion) : NULL;
        if (!body)
                return -ENOMEM;
        return cloud_oauth_token(api, uri, body, ret_error);
}

static int gce_credentials(const CloudFlags *f, CloudApi *api, char **ret_error) {
        _cleanup_(erase_and_freep) char *data = NULL;
        _cleanup_(json_object_putp) json_object *key = NULL;
        const char *path = f->token_file ?: getenv("GOOGLE_APPLICATION_CREDENTIALS"), *uri, *project;
        int r;

        if (!path || !*path)
                return errorf(ret_error, -ENOENT, "gce needs a service account's key: --access-token-file F (its JSON "
                              "file), or $GOOGLE_APPLICATION_CREDENTIALS");
        r = read_full_file(path, 65536, &data, NULL);
        if (r < 0)
                return errorf(ret_error, r, "cannot read %s: %s", path, strerror(-r));
        key = json_tokener_parse(data);
        if (!key || !streq_ptr(json_get_string(key, "type"), "service_account"))
                return errorf(ret_error, -EINVAL, "%s is not a service account's key (JSON, \"type\": "
                              "\"service_account\")", path);
        /* The signed request goes to token_uri: Google's, or the stand-in --api-url names. */
        uri = json_get_string(key, "token_uri") ?: GCE_TOKEN_URI;
        if (!streq(uri, GCE_TOKEN_URI) && !(f->api_url && startswith(uri, f->api_url) &&
                                            uri[strlen(f->api_url)] == '/'))
                return errorf(ret_error, -EINVAL, "%s: token_uri must be %s", path, GCE_TOKEN_URI);
        project = json_get_string(key, "project_id");
        if (!api->project && project) {
                if (!cloud_id_is_valid(project))
                        return errorf(ret_error, -EINVAL, "%s: project_id is not a project id", path);
                api->project = strdup(project);
                if (!api->project)
                        return -ENOMEM;
        }
        if (!api->project)
                return errorf(ret_error, -EINVAL, "gce needs the project: --project ID, or project_id in the key");
        api->credentials = TAKE_PTR(data);
        api->refresh = gce_refresh;
        api->token_expires = 0;
        return gce_refresh(api, ret_error);
}

/* ---- hosts ---- */

static json_object *get(json_object *o, const char *key) {
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static json_object *first(json_object *arr) {
        return json_object_is_type(arr, json_type_array) && json_object_array_length(arr) > 0
                       ? json_object_array_get_idx(arr, 0) : NULL;
}

static char *gce_path(const CloudApi *api, const char *what, const char *name) {
        return asprintf_safe("/compute/v1/projects/%s/%s%s%s", api->project, what, name ? "/" : "", name ?: "");
}

static char *zone_path(const CloudApi *api, const char *name) {
        _cleanup_free_ char *what = asprintf_safe("zones/%s/instances", api->zone);
        return what ? gce_path(api, what, name) : NULL;
}

static int gce_host_parse(json_object *d, CloudHost *ret) {
        const char *name = json_get_string(d, "name");
        /* an instance's name is its id in every path */
        return cloud_host_from(name, name, json_get_string(d, "status"), "RUNNING",
                               json_get_string(first(get(first(get(d, "networkInterfaces")), "accessConfigs")), "natIP"),
                               ret);
}

static int gce_get(CloudApi *api, const char *id, CloudHost *ret, char **ret_error) {
        _cleanup_(json_object_putp) json_object *res = NULL;
        _cleanup_free_ char *path = zone_path(api, id);
        int r;

        if (!path)
                return -ENOMEM;
        r = cloud_api_call(api, "GET", path, NULL, NULL, &res, ret_error);
        if (r < 0)
                return r;
        r = gce_host_parse(res, ret);
        return r < 0 ? errorf(ret_error, r, "GET %s: no instance in the answer", path) : 0;
}

static bool has_label(json_object *d, const char *key) {
        json_object *l = get(d, "labels");
        return json_object_is_type(l, json_type_object) && json_object_object_get_ex(l, key, NULL);
}

static int gce_list(CloudApi *api, const char *tag, CloudHost **ret, size_t *ret_n, char **ret_error) {
        _cleanup_free_ char *coll = zone_path(api, NULL), *next = NULL;
        CloudHost *l = NULL;
        size_t n = 0;
        int r = 0;

        if (!coll)
                return -ENOMEM;
        for (unsigned page = 0;; page++) {
                _cleanup_(json_object_putp) json_object *res = NULL;
                _cleanup_free_ char *path = NULL, *tok = NULL;
                json_object *items;

                if (page >= GCE_PAGES_MAX) {
                        r = errorf(ret_error, -E2BIG, "GET %s: more than %d pages of instances", coll, GCE_PAGES_MAX);
                        break;
                }
                tok = next ? sigv4_uri_encode(next, strlen(next), 0) : NULL;
                path = asprintf_safe("%s?maxResults=500%s%s", coll, tok ? "&pageToken=" : "", tok ?: "");
                if (!path || (next && !tok)) {
                        r = -ENOMEM;
                        break;
                }
                r = cloud_api_call(api, "GET", path, NULL, NULL, &res, ret_error);
                if (r < 0)
                        break;
                items = get(res, "items");
                for (size_t i = 0; json_object_is_type(items, json_type_array) && i < json_object_array_length(items); i++) {
                        json_object *d = json_object_array_get_idx(items, i);
                        if (has_label(d, tag) && (r = cloud_hosts_append(&l, &n, d, gce_host_parse)) < 0)
                                break;
                }
                free(next);
                next = json_get_string(res, "nextPageToken") && *json_get_string(res, "nextPageToken")
                               ? strdup(json_get_string(res, "nextPageToken")) : NULL;
                if (r < 0 || !next)
                        break;
        }
        return cloud_hosts_return(l, n, r, ret, ret_n);
}

static bool network_is_default(const char *n) {
        static const char d[] = "global/networks/default";
        size_t l = n ? strlen(n) : 0;
        return l >= sizeof d - 1 && streq(n + l - (sizeof d - 1), d) && (l == sizeof d - 1 || n[l - sizeof d] == '/');
}

static int gce_firewall_get(CloudApi *api, const char *name, json_object **ret, char **ret_error) {
        _cleanup_free_ char *path = gce_path(api, "global/firewalls", name);
        return path ? cloud_api_call(api, "GET", path, NULL, NULL, ret, ret_error) : -ENOMEM;
}

/* A firewall rule is ours: made by us (our description), for that one tag. */
static bool firewall_is_ours(json_object *rule, const char *name) {
        json_object *t = get(rule, "targetTags");
        return streq_ptr(json_get_string(rule, "description"), GCE_FIREWALL_MARK) &&
               json_object_is_type(t, json_type_array) && json_object_array_length(t) == 1 &&
               streq_ptr(json_object_get_string(first(t)), name);
}

/* 1: the rule named name is ours; 0: it is not. */
static int gce_firewall_is_ours(CloudApi *api, const char *name, char **ret_error) {
        _cleanup_(json_object_putp) json_object *res = NULL;
        int r = gce_firewall_get(api, name, &res, ret_error);
        return r < 0 ? r : firewall_is_ours(res, name);
}

static int gce_firewall_delete(CloudApi *api, const char *name, char **ret_error) {
        _cleanup_free_ char *path = gce_path(api, "global/firewalls", name);
        int r;

        if (!path)
                return -ENOMEM;
        r = gce_firewall_is_ours(api, name, ret_error);
        if (r <= 0)
                return r == -ENOENT ? 0 : r; /* gone, or not ours: left */
        r = cloud_api_call(api, "DELETE", path, NULL, NULL, NULL, ret_error);
        return r == -ENOENT ? 0 : r;
}

/* The firewall rule of a host: opens c->open_ports to instances tagged c->name. *ret_made: new. */
static int gce_firewall(CloudApi *api, const CloudCreate *c, bool *ret_made, char **ret_error) {
        _cleanup_(json_object_putp) json_object *body = json_object_new_object(), *allowed = json_object_new_array(),
                                                *rule = json_object_new_object(), *ports = json_object_new_array();
        _cleanup_(json_object_putp) json_object *old = NULL;
        _cleanup_free_ char *path = gce_path(api, "global/firewalls", NULL), *list = strdup(c->open_ports ?: "");
        json_object *tags, *src;
        long status = 0;
        int r;

        *ret_made = false;
        if (!body || !allowed || !rule || !ports || !path || !list)
                return -ENOMEM;
        for (char *save = NULL, *t = strtok_r(list, " ,", &save); t; t = strtok_r(NULL, " ,", &save))
                json_object_array_add(ports, json_object_new_string(t));
        json_object_object_add(rule, "IPProtocol", json_object_new_string("tcp"));
        json_object_object_add(rule, "ports", json_object_get(ports));
        json_object_array_add(allowed, json_object_get(rule));
        tags = json_object_new_array();
        src = json_object_new_array();
        if (!tags || !src) {
                json_object_put(tags);
                json_object_put(src);
                return -ENOMEM;
        }
        json_object_array_add(tags, json_object_new_string(c->name));
        json_object_array_add(src, json_object_new_string("0.0.0.0/0"));
        json_object_object_add(body, "name", json_object_new_string(c->name));
        json_object_object_add(body, "description", json_object_new_string(GCE_FIREWALL_MARK));
        json_object_object_add(body, "network", json_object_new_string("global/networks/default"));
        json_object_object_add(body, "direction", json_object_new_string("INGRESS"));
        json_object_object_add(body, "allowed", json_object_get(allowed));
        json_object_object_add(body, "targetTags", tags);
        json_object_object_add(body, "sourceRanges", src);
        r = cloud_api_call(api, "POST", path, body, &status, NULL, ret_error);
        if (r >= 0) {
                *ret_made = true;
                return 0;
        }
        /* 409: a rule of that name exists; taken only if it is ours and opens exactly this */
        if (status != 409)
                return r;
        *ret_error = mfree(*ret_error);
        r = gce_firewall_get(api, c->name, &old, ret_error);
        if (r < 0)
                return r;
        if (!firewall_is_ours(old, c->name))
                return errorf(ret_error, -EADDRINUSE, "a firewall rule named %s exists and is not inletsd's: rename "
                              "or delete it", c->name);
        if (!json_object_equal(get(old, "allowed"), allowed) || !json_object_equal(get(old, "sourceRanges"), src) ||
            !streq_ptr(json_get_string(old, "direction") ?: "INGRESS", "INGRESS") ||
            !network_is_default(json_get_string(old, "network")) || get(old, "sourceTags") ||
            get(old, "sourceServiceAccounts") || json_object_get_boolean(get(old, "disabled")))
                return errorf(ret_error, -EADDRINUSE, "firewall rule %s, left by an earlier host of that name, opens "
                              "other than this host needs: delete it (gcloud compute firewall-rules delete %s) or "
                              "choose another --name", c->name, c->name);
        return 0;
}

#define GCE_OPERATION_WAIT_SEC 180

/* Waits (inletsctl; the operator does not sleep) until the zone operation op is DONE; -EINVAL
 * with its error when it failed: then nothing was made. */
static int gce_operation_wait(CloudApi *api, json_object *op, char **ret_error) {
        _cleanup_(json_object_putp) json_object *cur = json_object_get(op);
        struct timespec start, now;
        const char *name = json_get_string(op, "name");
        int r;

        if (!name || !cloud_id_is_valid(name))
                return errorf(ret_error, -EBADMSG, "the instance's insert answered no operation");
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                _cleanup_free_ char *what = NULL, *path = NULL;
                json_object *err = get(get(cur, "error"), "errors");
                if (err) {
                        _cleanup_free_ char *shown = cloud_printable(json_get_string(first(err), "message") ?:
                                                                     json_get_string(first(err), "code"));
                        return errorf(ret_error, -EINVAL, "inserting the instance failed: %s", shown ?: "");
                }
                if (streq_ptr(json_get_string(cur, "status"), "DONE") || api->max_retries == 0)
                        return 0;
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - start.tv_sec >= GCE_OPERATION_WAIT_SEC)
                        return errorf(ret_error, -ETIMEDOUT, "the instance's insert did not end in %d s (the "
                                      "instance may still be made)", GCE_OPERATION_WAIT_SEC);
                sleep(1);
                what = asprintf_safe("zones/%s/operations", api->zone);
                path = what ? gce_path(api, what, name) : NULL;
                if (!path)
                        return -ENOMEM;
                json_object_putp(&cur);
                r = cloud_api_call(api, "GET", path, NULL, NULL, &cur, ret_error);
                if (r < 0) /* the insert was taken: whether it made the instance is not known */
                        return errorf(ret_error, r == -ENOMEM ? r : -EIO, "%s; the instance may have been made",
                                      *ret_error ?: strerror(-r));
        }
}

static int gce_create(CloudApi *api, const CloudCreate *c, CloudHost *ret, char **ret_error) {
        _cleanup_(json_object_putp) json_object *b = json_object_new_object(), *op = NULL;
        _cleanup_free_ char *coll = zone_path(api, NULL), *mt = asprintf_safe("zones/%s/machineTypes/%s", api->zone,
                                                                               c->size);
        json_object *disk, *init, *disks, *nic, *nics, *ac, *acs, *meta, *items, *item, *labels, *tags, *titems;
        bool made;
        int r;

        if (!b || !coll || !mt)
                return -ENOMEM;
        r = gce_firewall(api, c, &made, ret_error);
        if (r < 0)
                return r;
        disk = json_object_new_object();
        init = json_object_new_object();
        disks = json_object_new_array();
        nic = json_object_new_object();
        nics = json_object_new_array();
        ac = json_object_new_object();
        acs = json_object_new_array();
        meta = json_object_new_object();
        items = json_object_new_array();
        item = json_object_new_object();
        labels = json_object_new_object();
        tags = json_object_new_object();
        titems = json_object_new_array();
        json_object_object_add(init, "sourceImage", json_object_new_string(c->image));
        json_object_object_add(disk, "boot", json_object_new_boolean(true));
        json_object_object_add(disk, "autoDelete", json_object_new_boolean(true));
        json_object_object_add(disk, "initializeParams", init);
        json_object_array_add(disks, disk);
        json_object_object_add(ac, "type", json_object_new_string("ONE_TO_ONE_NAT"));
        json_object_object_add(ac, "name", json_object_new_string("External NAT"));
        json_object_array_add(acs, ac);
        json_object_object_add(nic, "network", json_object_new_string("global/networks/default"));
        json_object_object_add(nic, "accessConfigs", acs);
        json_object_array_add(nics, nic);
        json_object_object_add(item, "key", json_object_new_string("user-data"));
        json_object_object_add(item, "value", json_object_new_string(c->user_data));
        json_object_array_add(items, item);
        json_object_object_add(meta, "items", items);
        for (size_t i = 0; i < c->n_tags; i++)
                json_object_object_add(labels, c->tags[i], json_object_new_string(""));
        json_object_array_add(titems, json_object_new_string(c->name));
        json_object_object_add(tags, "items", titems);
        json_object_object_add(b, "name", json_object_new_string(c->name));
        json_object_object_add(b, "machineType", json_object_new_string(mt));
        json_object_object_add(b, "disks", disks);
        json_object_object_add(b, "networkInterfaces", nics);
        json_object_object_add(b, "metadata", meta);
        json_object_object_add(b, "labels", labels);
        json_object_object_add(b, "tags", tags);
        /* the answer is an operation, whose end says whether the instance was made (quota, a
         * missing image...); the instance is read by its name after it */
        r = cloud_api_call(api, "POST", coll, b, NULL, &op, ret_error);
        if (r >= 0)
                r = gce_operation_wait(api, op, ret_error);
        if (r >= 0)
                r = gce_get(api, c->name, ret, ret_error);
        if (r < 0 && made && (r == -EINVAL || r == -EACCES)) { /* refused: nothing uses the rule */
                _cleanup_free_ char *err = NULL;
                (void) gce_firewall_delete(api, c->name, &err);
        }
        return r;
}

/* Deletes the instance, then its firewall rule (the one named like its inletsd- network tag, if
 * ours). */
static int gce_destroy(CloudApi *api, const char *id, char **ret_error) {
        _cleanup_(json_object_putp) json_object *res = NULL;
        _cleanup_free_ char *path = zone_path(api, id), *rule = NULL;
        json_object *t;
        int r;

        if (!path)
                return -ENOMEM;
        r = cloud_api_call(api, "GET", path, NULL, NULL, &res, ret_error);
        if (r < 0)
                return r;
        /* its rule is named as it is, and is its only if it carries that network tag and our label;
         * other tags name nothing here */
        t = get(get(res, "tags"), "items");
        for (size_t i = 0; has_label(res, "inletsd") && json_object_is_type(t, json_type_array) &&
                           i < json_object_array_length(t) && !rule; i++)
                if (streq_ptr(json_object_get_string(json_object_array_get_idx(t, i)), id))
                        rule = strdup(id);
        r = cloud_api_call(api, "DELETE", path, NULL, NULL, NULL, ret_error);
        if (r < 0)
                return r;
        return rule ? gce_firewall_delete(api, rule, ret_error) : 0;
}

/* Ubuntu's image, as GCE's Debian images run no cloud-init (docs/cloud.md). */
const CloudProvider cloud_provider_gce = {
        .name = "gce", .token_env = "GOOGLE_APPLICATION_CREDENTIALS", .api_url = "https://compute.googleapis.com",
        .region = "europe-west1-b", .size = "e2-micro",
        .image = "projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64", .zoned = true,
        .region_kind = "zone", .credentials = gce_credentials,
        .create = gce_create, .get = gce_get, .destroy = gce_destroy, .list = gce_list,
};
