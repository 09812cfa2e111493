// SPDX-License-Identifier: LGPL-2.1-or-later
/* Cloud provider APIs (inletsctl create/delete/list-hosts, and later the operator): JSON over
 * HTTPS with libcurl (GnuTLS) and json-c. A provider is a table of four operations on hosts. */
#pragma once

#include <json-c/json.h>

#include "macro.h"

typedef struct CloudApi {
        char *base_url;        /* e.g. https://api.digitalocean.com */
        char *token;           /* secret: Authorization: Bearer */
        long timeout_sec;
        unsigned max_retries;  /* on 429 and 5xx */
} CloudApi;

/* One request; *ret_json gets the parsed body (NULL when empty). A non-2xx answer is an error
 * whose message includes the API's own ("message" field) and the status. */
int cloud_api_call(CloudApi *api, const char *method, const char *path, json_object *body, long *ret_status,
                   json_object **ret_json, char **ret_error);
void cloud_api_done(CloudApi *api);

typedef struct CloudHost {
        char *id, *name, *status, *ip;
} CloudHost;

void cloud_host_done(CloudHost *h);

typedef struct CloudCreate {
        const char *name, *region, *size, *image, *user_data;
        const char *const *tags;
        size_t n_tags;
} CloudCreate;

typedef struct CloudProvider {
        const char *name;
        const char *api_url, *region, *size, *image;   /* defaults, all overridable */
        int (*create)(CloudApi *api, const CloudCreate *c, CloudHost *ret, char **ret_error);
        int (*get)(CloudApi *api, const char *id, CloudHost *ret, char **ret_error);
        int (*destroy)(CloudApi *api, const char *id, char **ret_error);
        int (*list)(CloudApi *api, const char *tag, CloudHost **ret, size_t *ret_n, char **ret_error);
} CloudProvider;

extern const CloudProvider cloud_provider_digitalocean, cloud_provider_hetzner, cloud_provider_vultr,
        cloud_provider_linode;
const CloudProvider *cloud_provider_find(const char *name);
