// SPDX-License-Identifier: LGPL-2.1-or-later
/* Microsoft Azure for cloudapi.h: Azure Resource Manager (JSON), authorized with an OAuth access
 * token that a service principal's secret gets (client credentials at Microsoft's login, made
 * again before it expires). A host is a resource group of its own, named as the host and tagged
 * inletsd and inletsd-NAME, holding a network security group that opens the exit server's ports,
 * a virtual network, a static public IP address, a network interface and the virtual machine, one
 * PUT each. Deleting the group deletes all of it, so a create that fails half way, and delete,
 * are one DELETE of a group that is checked to be ours first. */

#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cloudapi.h"
#include "crypto-util.h"
#include "encoding.h"
#include "fileio.h"
#include "macro.h"
#include "sigv4.h"
#include "string-util.h"
#include "web.h"

#define AZ_LOGIN "https://login.microsoftonline.com"
#define AZ_SCOPE "https://management.azure.com/.default"
#define AZ_API_GROUPS "2021-04-01"
#define AZ_API_NETWORK "2024-05-01"
#define AZ_API_COMPUTE "2024-07-01"
#define AZ_WAIT_SEC 300          /* for a resource to be provisioned, or a group to be deleted */
#define AZ_PAGES_MAX 20
#define AZ_TAG "inletsd"         /* every group inletsctl makes carries it; delete takes no other */
#define AZ_TOKEN_TAG "inletsd-create" /* a random value only the create that made the group knows */

/* What a host's group holds, each named as the group (and the VM's disk, "GROUP-osdisk"). */
static const char *const az_types[] = { "Microsoft.Network/networkSecurityGroups",
                                        "Microsoft.Network/virtualNetworks",
                                        "Microsoft.Network/publicIPAddresses",
                                        "Microsoft.Network/networkInterfaces",
                                        "Microsoft.Compute/virtualMachines" };

static json_object *get(json_object *o, const char *key) {
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* ---- credentials: a service principal, then access tokens ---- */

/* api->credentials: the token URL, a line end, the form (secret) POSTed there. */
static int az_refresh(CloudApi *api, char **ret_error) {
        const char *nl = strchr(api->credentials ?: "", '\n');
        _cleanup_free_ char *uri = nl ? strndup(api->credentials, (size_t) (nl - api->credentials)) : NULL;

        if (!uri)
                return nl ? -ENOMEM : -EINVAL;
        return cloud_oauth_token(api, uri, nl + 1, ret_error);
}

/* A tenant is an id or a domain name (contoso.onmicrosoft.com): it goes into the login URL. */
static bool tenant_is_valid(const char *t) {
        size_t n = t ? strlen(t) : 0;
        return n > 0 && n <= 253 && t[0] != '.' && t[0] != '-' &&
               strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") == n;
}

static char *form_enc(const char *s) {
        return sigv4_uri_encode(s, strlen(s), 0);
}

/* The service principal from --access-token-file (the JSON `az ad sp create-for-rbac --json-auth`
 * writes: clientId, clientSecret, tenantId, subscriptionId) or from the variables Azure's SDKs
 * read; the subscription from --project, the file, or $AZURE_SUBSCRIPTION_ID. */
static int az_credentials(const CloudFlags *f, CloudApi *api, char **ret_error) {
        _cleanup_(erase_and_freep) char *data = NULL, *secret_enc = NULL, *form = NULL;
        _cleanup_(json_object_putp) json_object *file = NULL;
        _cleanup_free_ char *uri = NULL, *client_enc = NULL, *scope_enc = NULL;
        const char *client, *secret, *tenant, *sub;
        int r;

        if (f->token_file) {
                r = read_full_file(f->token_file, 65536, &data, NULL);
                if (r < 0)
                        return errorf(ret_error, r, "cannot read %s: %s", f->token_file, strerror(-r));
                file = json_tokener_parse(data);
                client = json_get_string(file, "clientId");
                secret = json_get_string(file, "clientSecret");
                tenant = json_get_string(file, "tenantId");
                sub = json_get_string(file, "subscriptionId");
                if (!client || !secret || !tenant)
                        return errorf(ret_error, -EINVAL, "%s is not a service principal's credentials (JSON with "
                                      "clientId, clientSecret, tenantId and subscriptionId, as `az ad sp "
                                      "create-for-rbac --json-auth` writes)", f->token_file);
        } else {
                client = getenv("AZURE_CLIENT_ID");
                secret = getenv("AZURE_CLIENT_SECRET");
                tenant = getenv("AZURE_TENANT_ID");
                sub = getenv("AZURE_SUBSCRIPTION_ID");
                if (!client || !*client || !secret || !*secret || !tenant || !*tenant)
                        return errorf(ret_error, -ENOENT, "azure needs a service principal: --access-token-file F "
                                      "(its JSON credentials), or $AZURE_CLIENT_ID, $AZURE_CLIENT_SECRET and "
                                      "$AZURE_TENANT_ID");
        }
        if (!tenant_is_valid(tenant) || !cloud_id_is_valid(client))
                return errorf(ret_error, -EINVAL, "the tenant must be an id or a domain name, the client an id");
        if (!api->project && sub && *sub) {
                if (!cloud_id_is_valid(sub))
                        return errorf(ret_error, -EINVAL, "the subscription must be an id");
                api->project = strdup(sub);
                if (!api->project)
                        return -ENOMEM;
        }
        if (!api->project)
                return errorf(ret_error, -EINVAL, "azure needs the subscription: --project ID, subscriptionId in the "
                              "file, or $AZURE_SUBSCRIPTION_ID");
        /* The secret goes to Microsoft's login, or to the stand-in --api-url names. */
        uri = asprintf_safe("%s/%s/oauth2/v2.0/token", f->api_url ?: AZ_LOGIN, tenant);
        client_enc = form_enc(client);
        secret_enc = form_enc(secret);
        scope_enc = form_enc(AZ_SCOPE);
        if (!uri || !client_enc || !secret_enc || !scope_enc)
                return -ENOMEM;
        if (strchr(uri, '\n'))
                return errorf(ret_error, -EINVAL, "--api-url holds a line end");
        form = asprintf_safe("grant_type=client_credentials&client_id=%s&client_secret=%s&scope=%s", client_enc,
                             secret_enc, scope_enc);
        api->credentials = form ? asprintf_safe("%s\n%s", uri, form) : NULL;
        if (!api->credentials)
                return -ENOMEM;
        api->refresh = az_refresh;
        api->token_expires = 0;
        return az_refresh(api, ret_error);
}

/* ---- paths ---- */

/* A group's path, or of a resource in it (type "Microsoft.Network/publicIPAddresses"), with the
 * API version when version is non-NULL. */
static char *az_path(const CloudApi *api, const char *group, const char *type, const char *name,
                     const char *version) {
        return asprintf_safe("/subscriptions/%s/resourceGroups/%s%s%s%s%s%s%s", api->project, group,
                             type ? "/providers/" : "", type ?: "", type ? "/" : "", type ? name : "",
                             version ? "?api-version=" : "", version ?: "");
}

/* ---- hosts ---- */

/* PUT body at path; wait: then until its provisioningState is Succeeded (a bounded time). */
static int az_put(CloudApi *api, const char *path, json_object *body, bool wait, char **ret_error) {
        _cleanup_(json_object_putp) json_object *res = NULL;
        struct timespec start, now;
        int r;

        if (!path || !body)
                return -ENOMEM;
        r = cloud_api_call(api, "PUT", path, body, NULL, &res, ret_error); /* a PUT may be sent again */
        if (r < 0 || !wait)
                return r;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                const char *state = json_get_string(get(res, "properties"), "provisioningState");
                if (streq_ptr(state, "Succeeded"))
                        return 0;
                if (streq_ptr(state, "Failed") || streq_ptr(state, "Canceled"))
                        return errorf(ret_error, -EINVAL, "PUT %s: provisioning %s", path, state);
                if (api->cancelled && api->cancelled())
                        return errorf(ret_error, -EINTR, "interrupted");
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - start.tv_sec >= AZ_WAIT_SEC)
                        return errorf(ret_error, -ETIMEDOUT, "PUT %s: not provisioned after %d s", path, AZ_WAIT_SEC);
                sleep(1);
                json_object_putp(&res);
                r = cloud_api_call(api, "GET", path, NULL, NULL, &res, ret_error);
                if (r < 0)
                        return r;
        }
}

static json_object *az_tags(const CloudCreate *c) {
        json_object *t = json_object_new_object();
        for (size_t i = 0; t && i < c->n_tags; i++)
                json_object_object_add(t, c->tags[i], json_object_new_string(""));
        return t;
}

static json_object *az_resource(const char *location, json_object *props) {
        json_object *o = json_object_new_object();
        if (!o) {
                json_object_put(props);
                return NULL;
        }
        json_object_object_add(o, "location", json_object_new_string(location));
        if (props)
                json_object_object_add(o, "properties", props);
        return o;
}

static json_object *id_ref(const char *id) {
        json_object *o = json_object_new_object();
        if (o)
                json_object_object_add(o, "id", json_object_new_string(id));
        return o;
}

/* The security group's one rule: TCP to the ports ("8123 80 443", ranges N-M) from anywhere. */
static json_object *az_nsg_props(const char *open_ports) {
        _cleanup_free_ char *list = strdup(open_ports ?: "");
        json_object *props = json_object_new_object(), *rules = json_object_new_array(),
                    *rule = json_object_new_object(), *rp = json_object_new_object(), *ranges = json_object_new_array();

        if (!list || !props || !rules || !rule || !rp || !ranges) {
                json_object_put(props);
                json_object_put(rules);
                json_object_put(rule);
                json_object_put(rp);
                json_object_put(ranges);
                return NULL;
        }
        for (char *save = NULL, *t = strtok_r(list, " ,", &save); t; t = strtok_r(NULL, " ,", &save))
                json_object_array_add(ranges, json_object_new_string(t));
        json_object_object_add(rp, "priority", json_object_new_int(100));
        json_object_object_add(rp, "direction", json_object_new_string("Inbound"));
        json_object_object_add(rp, "access", json_object_new_string("Allow"));
        json_object_object_add(rp, "protocol", json_object_new_string("Tcp"));
        json_object_object_add(rp, "sourceAddressPrefix", json_object_new_string("*"));
        json_object_object_add(rp, "sourcePortRange", json_object_new_string("*"));
        json_object_object_add(rp, "destinationAddressPrefix", json_object_new_string("*"));
        json_object_object_add(rp, "destinationPortRanges", ranges);
        json_object_object_add(rule, "name", json_object_new_string("inletsd"));
        json_object_object_add(rule, "properties", rp);
        json_object_array_add(rules, rule);
        json_object_object_add(props, "securityRules", rules);
        return props;
}

static json_object *az_vnet_props(void) {
        _cleanup_(json_object_putp) json_object *props = NULL;
        props = json_tokener_parse("{\"addressSpace\":{\"addressPrefixes\":[\"10.0.0.0/16\"]},\"subnets\":[{\"name\":"
                                   "\"default\",\"properties\":{\"addressPrefix\":\"10.0.0.0/24\"}}]}");
        return TAKE_PTR(props);
}

/* An RSA key's public half as OpenSSH writes it: Azure wants a key for the VM's one user, and
 * nobody logs in (the private half is never kept), so this one is made and forgotten. */
static int ssh_key_throwaway(char **ret) {
        gnutls_privkey_t k = NULL;
        gnutls_pubkey_t pub = NULL;
        gnutls_datum_t m = {}, e = {};
        unsigned char *blob = NULL;
        size_t n = 0;
        int r = -EIO;

        if (gnutls_privkey_init(&k) < 0 || gnutls_pubkey_init(&pub) < 0)
                goto out;
        if (gnutls_privkey_generate(k, GNUTLS_PK_RSA, 2048, 0) < 0 || gnutls_pubkey_import_privkey(pub, k, 0, 0) < 0 ||
            gnutls_pubkey_export_rsa_raw(pub, &m, &e) < 0)
                goto out;
        blob = malloc(4 + 7 + 4 + 1 + e.size + 4 + 1 + m.size);
        if (!blob) {
                r = -ENOMEM;
                goto out;
        }
        /* string "ssh-rsa", mpint e, mpint n (RFC 4253): big-endian, a leading 0 when the top bit is set */
        {
                const gnutls_datum_t *parts[] = { &e, &m };
                static const char type[] = "ssh-rsa";
                blob[0] = blob[1] = blob[2] = 0;
                blob[3] = 7;
                memcpy(blob + 4, type, 7);
                n = 11;
                for (size_t i = 0; i < 2; i++) {
                        const unsigned char *d = parts[i]->data;
                        size_t len = parts[i]->size;
                        while (len > 0 && d[0] == 0) {
                                d++;
                                len--;
                        }
                        size_t out = len + (len > 0 && (d[0] & 0x80));
                        blob[n++] = (unsigned char) (out >> 24);
                        blob[n++] = (unsigned char) (out >> 16);
                        blob[n++] = (unsigned char) (out >> 8);
                        blob[n++] = (unsigned char) out;
                        if (out > len)
                                blob[n++] = 0;
                        memcpy(blob + n, d, len);
                        n += len;
                }
        }
        {
                _cleanup_free_ char *b64 = base64mem(blob, n);
                *ret = b64 ? asprintf_safe("ssh-rsa %s inletsd", b64) : NULL;
                r = *ret ? 0 : -ENOMEM;
        }
out:
        free(blob);
        gnutls_free(m.data);
        gnutls_free(e.data);
        gnutls_pubkey_deinit(pub);
        gnutls_privkey_deinit(k);
        return r;
}

/* The image as "publisher:offer:sku:version" (az vm image list's URN): four parts, none empty. */
static json_object *az_image(const char *urn) {
        static const char *const keys[] = { "publisher", "offer", "sku", "version" };
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        const char *p = urn;

        if (!o || !urn)
                return NULL;
        for (size_t i = 0; i < 4; i++) {
                size_t n = strcspn(p, ":");
                if (n == 0 || n > 128 || (i < 3) != (p[n] == ':'))
                        return NULL;
                json_object_object_add(o, keys[i], json_object_new_string_len(p, (int) n));
                p += n + (i < 3);
        }
        return TAKE_PTR(o);
}

static json_object *az_vm(const CloudCreate *c, const char *nic_id, const char *key) {
        _cleanup_free_ char *ud = base64mem(c->user_data, strlen(c->user_data)),
                            *disk = asprintf_safe("%s-osdisk", c->name);
        _cleanup_(json_object_putp) json_object *vm = NULL, *image = az_image(c->image);
        char spec[1024];

        if (!ud || !image || !disk)
                return NULL;
        /* the parts that are only ours, written out; the caller's values added as strings */
        snprintf(spec, sizeof spec,
                 "{\"properties\":{\"hardwareProfile\":{},\"storageProfile\":{\"osDisk\":{\"createOption\":"
                 "\"FromImage\",\"deleteOption\":\"Delete\",\"managedDisk\":{\"storageAccountType\":"
                 "\"Standard_LRS\"}}},\"osProfile\":{\"adminUsername\":\"inletsd\",\"linuxConfiguration\":"
                 "{\"disablePasswordAuthentication\":true,\"ssh\":{\"publicKeys\":[{\"path\":"
                 "\"/home/inletsd/.ssh/authorized_keys\"}]}}},\"networkProfile\":{\"networkInterfaces\":[{"
                 "\"properties\":{\"primary\":true}}]}}}");
        vm = json_tokener_parse(spec);
        if (!vm)
                return NULL;
        json_object *props = get(vm, "properties"), *os = get(props, "osProfile"),
                    *nic = json_object_array_get_idx(get(get(props, "networkProfile"), "networkInterfaces"), 0),
                    *pk = json_object_array_get_idx(get(get(get(os, "linuxConfiguration"), "ssh"), "publicKeys"), 0);
        json_object_object_add(vm, "location", json_object_new_string(c->region));
        json_object_object_add(vm, "tags", az_tags(c));
        json_object_object_add(get(props, "hardwareProfile"), "vmSize", json_object_new_string(c->size));
        json_object_object_add(get(props, "storageProfile"), "imageReference", TAKE_PTR(image));
        json_object_object_add(get(get(props, "storageProfile"), "osDisk"), "name", json_object_new_string(disk));
        json_object_object_add(os, "computerName", json_object_new_string(c->name));
        json_object_object_add(os, "customData", json_object_new_string(ud));
        json_object_object_add(pk, "keyData", json_object_new_string(key));
        json_object_object_add(nic, "id", json_object_new_string(nic_id));
        return TAKE_PTR(vm);
}

/* The group, if it is ours: 1; 0: there is none; -EPERM: someone else's. Ours: tagged AZ_TAG
 * (with token: its AZ_TOKEN_TAG holds that value too, as only the create that made it knows). */
static int az_group_is_ours(CloudApi *api, const char *group, const char *token, char **ret_error) {
        _cleanup_(json_object_putp) json_object *res = NULL;
        _cleanup_free_ char *path = az_path(api, group, NULL, NULL, AZ_API_GROUPS);
        json_object *tags;
        int r;

        if (!path)
                return -ENOMEM;
        r = cloud_api_call(api, "GET", path, NULL, NULL, &res, ret_error);
        if (r == -ENOENT) {
                *ret_error = mfree(*ret_error);
                return 0;
        }
        if (r < 0)
                return r;
        tags = get(res, "tags");
        if (!json_object_is_type(tags, json_type_object) || !get(tags, AZ_TAG))
                return errorf(ret_error, -EPERM, "resource group %s is not tagged %s: inletsctl deletes only the "
                              "groups it made", group, AZ_TAG);
        if (token && !streq_ptr(json_get_string(tags, AZ_TOKEN_TAG), token))
                return errorf(ret_error, -EPERM, "resource group %s was not made by this create", group);
        return 1;
}

/* Whether the group holds only what create makes in it (-EPERM otherwise): deleting a group
 * deletes all it holds, and a tag is no proof that all of it is a host's. */
static int az_group_holds_only_ours(CloudApi *api, const char *group, char **ret_error) {
        _cleanup_(json_object_putp) json_object *res = NULL;
        _cleanup_free_ char *path = asprintf_safe("/subscriptions/%s/resourceGroups/%s/resources?api-version="
                                                  AZ_API_GROUPS, api->project, group),
                            *disk = asprintf_safe("%s-osdisk", group);
        json_object *v;
        int r;

        if (!path || !disk)
                return -ENOMEM;
        r = cloud_api_call(api, "GET", path, NULL, NULL, &res, ret_error);
        if (r < 0)
                return r;
        v = get(res, "value");
        if (!json_object_is_type(v, json_type_array) || json_get_string(res, "nextLink"))
                return errorf(ret_error, -EBADMSG, "GET %s: not one page of resources in the answer", path);
        for (size_t i = 0; i < json_object_array_length(v); i++) {
                json_object *e = json_object_array_get_idx(v, i);
                const char *name = json_get_string(e, "name"), *type = json_get_string(e, "type");
                bool ours = streq_ptr(type, "Microsoft.Compute/disks") && name && strcaseeq(name, disk);
                for (size_t t = 0; t < ELEMENTSOF(az_types) && !ours; t++)
                        ours = type && name && strcaseeq(type, az_types[t]) && strcaseeq(name, group);
                if (!ours) {
                        _cleanup_free_ char *n = cloud_printable(name), *ty = cloud_printable(type);
                        return errorf(ret_error, -EPERM, "resource group %s holds %s %s, which inletsctl did not make: "
                                      "not deleted", group, ty ?: "?", n ?: "?");
                }
        }
        return 0;
}

/* Deletes the group (and all in it) once it is known to be ours (token: made by the create that
 * knows it); waits until it is gone. */
static int az_group_delete(CloudApi *api, const char *id, const char *token, char **ret_error) {
        _cleanup_free_ char *path = NULL;
        struct timespec start, now;
        int r;

        if (!cloud_id_is_valid(id))
                return errorf(ret_error, -EINVAL, "%s is not a resource group's name", id);
        r = az_group_is_ours(api, id, token, ret_error);
        if (r == 0)
                return errorf(ret_error, -ENOENT, "resource group %s: not found", id);
        if (r < 0)
                return r;
        r = az_group_holds_only_ours(api, id, ret_error);
        if (r < 0)
                return r;
        path = az_path(api, id, NULL, NULL, AZ_API_GROUPS);
        if (!path)
                return -ENOMEM;
        r = cloud_api_call(api, "DELETE", path, NULL, NULL, NULL, ret_error);
        if (r < 0)
                return r;
        if (api->max_retries == 0)
                return 0; /* the operator looks again on its next pass */
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                r = az_group_is_ours(api, id, NULL, ret_error);
                if (r == 0)
                        return 0;
                if (r < 0)
                        return r;
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - start.tv_sec >= AZ_WAIT_SEC)
                        return errorf(ret_error, -EBUSY, "resource group %s is still being deleted after %d s: run "
                                      "delete again later", id, AZ_WAIT_SEC);
                sleep(2);
        }
}

static int az_destroy(CloudApi *api, const char *id, char **ret_error) {
        return az_group_delete(api, id, NULL, ret_error);
}

static int az_create(CloudApi *api, const CloudCreate *c, CloudHost *ret, char **ret_error) {
        const char *const *types = az_types;
        _cleanup_free_ char *nsg = NULL, *vnet = NULL, *pip = NULL, *nic = NULL, *subnet = NULL, *key = NULL,
                            *token = NULL;
        _cleanup_(json_object_putp) json_object *image = az_image(c->image);
        const char *g = c->name;
        long status = 0;
        int r;

        if (!cloud_id_is_valid(g))
                return errorf(ret_error, -EINVAL, "%s cannot name a resource group", g);
        if (!image)
                return errorf(ret_error, -EINVAL, "--image takes publisher:offer:sku:version, such as %s",
                              cloud_provider_azure.image);
        r = az_group_is_ours(api, g, NULL, ret_error);
        if (r != 0)
                return r < 0 ? r : errorf(ret_error, -EEXIST, "resource group %s exists already", g);
        r = ssh_key_throwaway(&key);
        if (r < 0)
                return errorf(ret_error, r, "making the VM's SSH key failed");
        r = random_token(&token);
        if (r < 0)
                return r;
        nsg = az_path(api, g, types[0], g, NULL);
        vnet = az_path(api, g, types[1], g, NULL);
        pip = az_path(api, g, types[2], g, NULL);
        nic = az_path(api, g, types[3], g, NULL);
        subnet = vnet ? asprintf_safe("%s/subnets/default", vnet) : NULL;
        if (!nsg || !vnet || !pip || !nic || !subnet)
                return -ENOMEM;
        {
                _cleanup_(json_object_putp) json_object *body = az_resource(c->region, NULL);
                _cleanup_free_ char *path = az_path(api, g, NULL, NULL, AZ_API_GROUPS);
                json_object *tags = az_tags(c);
                if (!body || !path || !tags) {
                        json_object_put(tags);
                        return -ENOMEM;
                }
                json_object_object_add(tags, AZ_TOKEN_TAG, json_object_new_string(token));
                json_object_object_add(body, "tags", tags);
                /* Sent once: a PUT sent again would find the group the first one made (200). */
                r = cloud_api_call_once(api, "PUT", path, body, &status, NULL, ret_error);
                if (r < 0 && r != -EIO && r != -ETIMEDOUT && r != -EBADMSG)
                        return r; /* refused: nothing made */
                if (r < 0) {
                        /* Not known whether it was made: if it was, by this create (its token), it goes. */
                        _cleanup_free_ char *err = NULL;
                        int q = az_group_is_ours(api, g, token, &err);
                        if (q == 0)
                                return r;
                        if (q > 0)
                                q = az_group_delete(api, g, token, &err);
                        return errorf(ret_error, r, "%s; %s", *ret_error ?: strerror(-r),
                                      q >= 0 ? "the group it may have made is deleted again"
                                             : "whether it made the group is not known: inletsctl list-hosts shows it");
                }
                /* 201: made now. 200: it was there after all (made meanwhile, or the GET was wrong),
                 * and this PUT replaced its tags: ours are taken off again, and it is left alone. */
                if (status != 201) {
                        _cleanup_(json_object_putp) json_object *none = json_object_new_object(),
                                                                *patch = json_object_new_object();
                        _cleanup_free_ char *err = NULL;
                        if (!none || !patch)
                                return -ENOMEM;
                        json_object_object_add(patch, "tags", TAKE_PTR(none));
                        int q = cloud_api_call(api, "PATCH", path, patch, NULL, NULL, &err);
                        return errorf(ret_error, -EEXIST, "resource group %s existed already (HTTP %ld to its PUT, "
                                      "which replaced its tags): %s, nothing made in it", g, status,
                                      q >= 0 ? "its tags are cleared again (the ones it had are lost), it is left alone"
                                             : "taking inletsd's tags off it failed too: remove them by hand");
                }
        }
        /* From here on the group exists: whatever fails, it goes again with all it holds. */
        for (size_t i = 0; i < ELEMENTSOF(az_types) && r >= 0; i++) {
                _cleanup_(json_object_putp) json_object *body = NULL;
                _cleanup_free_ char *path = NULL;
                bool compute = i == 4;

                if (api->cancelled && api->cancelled()) {
                        r = errorf(ret_error, -EINTR, "interrupted");
                        break;
                }
                path = az_path(api, g, types[i], g, compute ? AZ_API_COMPUTE : AZ_API_NETWORK);
                switch (i) {
                case 0:
                        body = az_resource(c->region, az_nsg_props(c->open_ports));
                        break;
                case 1:
                        body = az_resource(c->region, az_vnet_props());
                        break;
                case 2:
                        body = az_resource(c->region, json_tokener_parse("{\"publicIPAllocationMethod\":\"Static\","
                                                                         "\"publicIPAddressVersion\":\"IPv4\"}"));
                        if (body)
                                json_object_object_add(body, "sku", json_tokener_parse("{\"name\":\"Standard\"}"));
                        break;
                case 3: {
                        json_object *props = json_tokener_parse("{\"ipConfigurations\":[{\"name\":\"ipconfig1\","
                                                                "\"properties\":{}}]}");
                        json_object *ip = props ? get(json_object_array_get_idx(get(props, "ipConfigurations"), 0),
                                                      "properties") : NULL;
                        if (ip) {
                                json_object_object_add(ip, "subnet", id_ref(subnet));
                                json_object_object_add(ip, "publicIPAddress", id_ref(pip));
                                json_object_object_add(props, "networkSecurityGroup", id_ref(nsg));
                        }
                        body = az_resource(c->region, props);
                        break;
                }
                default:
                        body = az_vm(c, nic, key);
                }
                if (!body || !path) {
                        r = -ENOMEM;
                        break;
                }
                if (i < 4)
                        json_object_object_add(body, "tags", az_tags(c));
                /* the VM is waited for as a host is (get), the rest here */
                r = az_put(api, path, body, !compute, ret_error);
        }
        if (r < 0) {
                _cleanup_free_ char *err = NULL;
                if (az_group_delete(api, g, token, &err) < 0)
                        r = errorf(ret_error, r == -EINTR ? -EINTR : -ECANCELED, "%s; deleting resource group %s "
                                   "failed too (%s): delete it by hand", *ret_error ?: strerror(-r), g, err);
                else
                        r = errorf(ret_error, r == -EINTR ? -EINTR : -ECANCELED, "%s; resource group %s is deleted "
                                   "again", *ret_error ?: strerror(-r), g);
                return r;
        }
        return cloud_host_from(g, g, "creating", "running", NULL, ret);
}

/* The VM's state: its power state ("running", "starting"...) once it is provisioned, else its
 * provisioning state, lower-cased. */
static const char *az_vm_status(json_object *vm, char *buf, size_t size) {
        json_object *props = get(vm, "properties"), *st = get(get(props, "instanceView"), "statuses");
        const char *prov = json_get_string(props, "provisioningState") ?: "unknown";

        if (streq(prov, "Succeeded"))
                for (size_t i = 0; json_object_is_type(st, json_type_array) && i < json_object_array_length(st); i++) {
                        const char *code = json_get_string(json_object_array_get_idx(st, i), "code");
                        if (code && startswith(code, "PowerState/"))
                                return code + strlen("PowerState/");
                }
        snprintf(buf, size, "%s", prov);
        for (char *p = buf; *p; p++)
                *p = ascii_tolower(*p);
        return buf;
}

static int az_get(CloudApi *api, const char *id, CloudHost *ret, char **ret_error) {
        _cleanup_(json_object_putp) json_object *vm = NULL, *ip = NULL;
        _cleanup_free_ char *vpath = NULL, *ipath = NULL;
        char buf[32];
        int r;

        if (!cloud_id_is_valid(id))
                return errorf(ret_error, -EINVAL, "%s is not a resource group's name", id);
        vpath = az_path(api, id, "Microsoft.Compute/virtualMachines", id, AZ_API_COMPUTE "&$expand=instanceView");
        ipath = az_path(api, id, "Microsoft.Network/publicIPAddresses", id, AZ_API_NETWORK);
        if (!vpath || !ipath)
                return -ENOMEM;
        r = cloud_api_call(api, "GET", vpath, NULL, NULL, &vm, ret_error);
        if (r < 0)
                return r;
        r = cloud_api_call(api, "GET", ipath, NULL, NULL, &ip, ret_error);
        if (r < 0)
                return r;
        r = cloud_host_from(id, json_get_string(vm, "name"), az_vm_status(vm, buf, sizeof buf), "running",
                            json_get_string(get(ip, "properties"), "ipAddress"), ret);
        return r < 0 ? errorf(ret_error, r, "GET %s: no VM in the answer", vpath) : 0;
}

/* The groups tagged tag (checked here, not only by the API's filter), each with its VM; a group
 * without one yet (or any more) is listed with the group's state. */
static int az_list(CloudApi *api, const char *tag, CloudHost **ret, size_t *ret_n, char **ret_error) {
        _cleanup_free_ char *enc = sigv4_uri_encode(tag, strlen(tag), 0), *next = NULL;
        CloudHost *l = NULL;
        size_t n = 0;
        int r = 0;

        if (!enc)
                return -ENOMEM;
        next = asprintf_safe("/subscriptions/%s/resourcegroups?api-version=" AZ_API_GROUPS
                             "&%%24filter=tagName%%20eq%%20%%27%s%%27", api->project, enc);
        for (unsigned page = 0; next && r >= 0; page++) {
                _cleanup_(json_object_putp) json_object *res = NULL;
                _cleanup_free_ char *path = TAKE_PTR(next);
                json_object *v;
                const char *link;

                if (page >= AZ_PAGES_MAX) {
                        r = errorf(ret_error, -E2BIG, "more than %d pages of resource groups", AZ_PAGES_MAX);
                        break;
                }
                r = cloud_api_call(api, "GET", path, NULL, NULL, &res, ret_error);
                if (r < 0)
                        break;
                v = get(res, "value");
                if (!json_object_is_type(v, json_type_array)) {
                        r = errorf(ret_error, -EBADMSG, "GET %s: no value in the answer", path);
                        break;
                }
                for (size_t i = 0; i < json_object_array_length(v) && r >= 0; i++) {
                        json_object *g = json_object_array_get_idx(v, i);
                        const char *name = json_get_string(g, "name");
                        _cleanup_free_ char *err = NULL;
                        CloudHost h = {};
                        CloudHost *k;

                        if (!name || !cloud_id_is_valid(name) || !json_object_is_type(get(g, "tags"), json_type_object) ||
                            !get(get(g, "tags"), tag))
                                continue;
                        r = az_get(api, name, &h, &err);
                        if (r == -ENOENT) {
                                char buf[32];
                                r = cloud_host_from(name, name, az_vm_status(g, buf, sizeof buf), "running", NULL, &h);
                        }
                        if (r < 0) {
                                r = errorf(ret_error, r, "%s", err ?: "no such group");
                                break;
                        }
                        k = reallocarray(l, n + 1, sizeof(CloudHost));
                        if (!k) {
                                cloud_host_done(&h);
                                r = -ENOMEM;
                                break;
                        }
                        l = k;
                        l[n++] = h;
                }
                /* the next page, only at the same API */
                if (get(res, "nextLink") && !json_object_is_type(get(res, "nextLink"), json_type_string) &&
                    !json_object_is_type(get(res, "nextLink"), json_type_null)) {
                        r = errorf(ret_error, -EBADMSG, "GET %s: a nextLink that is not a URL", path);
                        break;
                }
                link = json_get_string(res, "nextLink");
                if (r >= 0 && link && *link) {
                        const char *rest = startswith(link, api->base_url);
                        if (!rest || *rest != '/' || strlen(rest) > 2048 ||
                            strspn(rest, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                                         "-._~/?&=%$'()+,;:@!*") != strlen(rest)) {
                                r = errorf(ret_error, -EBADMSG, "GET %s: a nextLink elsewhere, or not a URL", path);
                                break;
                        }
                        next = strdup(rest);
                        if (!next)
                                r = -ENOMEM;
                }
        }
        return cloud_hosts_return(l, n, r, ret, ret_n);
}

/* Debian 12 (Microsoft's listing of Debian's image; cloud-init runs the user data). */
const CloudProvider cloud_provider_azure = {
        .name = "azure", .token_env = "AZURE_CLIENT_SECRET", .api_url = "https://management.azure.com",
        .region = "westeurope", .size = "Standard_B2ats_v2", .image = "Debian:debian-12:12-gen2:latest",
        .credentials = az_credentials,
        .create = az_create, .get = az_get, .destroy = az_destroy, .list = az_list,
};
