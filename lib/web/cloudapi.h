// SPDX-License-Identifier: LGPL-2.1-or-later
/* Cloud provider APIs (inletsctl create/delete/list-hosts, and later the operator): JSON over
 * HTTPS with libcurl (GnuTLS) and json-c. A provider is a table of four operations on hosts. */
#pragma once

#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>

#include "macro.h"

typedef struct CloudApi {
        char *base_url;        /* e.g. https://api.digitalocean.com */
        char *token;           /* secret: Authorization: Bearer, or the provider's auth_header */
        const char *auth_header;
        char *zone;            /* zoned providers: the zone every path names (--region or the default) */
        char *project;         /* providers whose hosts belong to a project (--project or its variable) */
        char *key_id;          /* AWS: the access key id (token is its secret), and a session token */
        char *session_token;
        /* Tokens that expire (GCE): refresh() makes a new one from credentials (secret) once
         * token_expires (seconds since the epoch) is near. */
        int (*refresh)(struct CloudApi *api, char **ret_error);
        char *credentials;
        long long token_expires;
        long timeout_sec;
        /* Optional: asked between the steps of a long operation (create: Ctrl-C); true: it undoes
         * what it made and fails with -EINTR. */
        bool (*cancelled)(void);
        unsigned max_retries;  /* on 429 and 5xx; a POST or PATCH only on 429 and a refused connection */
} CloudApi;

/* One request; *ret_json gets the parsed body (NULL when empty). A non-2xx answer is an error
 * whose message includes the API's own ("message" field) and the status; its code tells the
 * status apart: 401/403 -EACCES, 404 -ENOENT (the host is gone), any other 4xx -EINVAL (refused),
 * the rest -EIO (not known whether it was done). The provider
 * operations below return these codes too. A POST or PATCH is sent again only when it cannot have been
 * done (429, a refused connection). */
int cloud_api_call(CloudApi *api, const char *method, const char *path, json_object *body, long *ret_status,
                   json_object **ret_json, char **ret_error);
/* The same, but never sent again once it may have been carried out (a 5xx, a timeout), whatever
 * the method: a PUT whose answer tells whether it made or changed something. */
int cloud_api_call_once(CloudApi *api, const char *method, const char *path, json_object *body, long *ret_status,
                        json_object **ret_json, char **ret_error);
void cloud_api_done(CloudApi *api);

/* An OAuth access token (RFC 6749) for api: form (urlencoded, secret) POSTed to uri; the answer's
 * access_token becomes api->token, valid for its expires_in (at most a day). */
int cloud_oauth_token(CloudApi *api, const char *uri, const char *form, char **ret_error);

/* A host id as it may go into a request path: 1 to 64 letters, digits and hyphens (DigitalOcean,
 * Hetzner and Linode use numbers, Vultr UUIDs). */
bool cloud_id_is_valid(const char *id);

/* An address from an API answer, only if it is one: it goes into the client's definition. */
bool cloud_ip_is_valid(const char *ip);
/* A copy of an API's words for a terminal: printable ASCII (others '?'), at most 64 bytes. */
char *cloud_printable(const char *s);

typedef struct CloudHost {
        char *id, *name, *status, *ip;
} CloudHost;

void cloud_host_done(CloudHost *h);

typedef struct CloudCreate {
        const char *name, *region, *size, *image, *user_data;
        const char *open_ports;  /* the TCP ports a firewall opens ("8123 80 443", ranges N-M) */
        const char *const *tags;
        size_t n_tags;
} CloudCreate;

/* The flags inletsctl create and inlets-operator share: the provider, the account, and the
 * provider's host defaults overridden. */
typedef struct CloudFlags {
        const char *provider, *token_file, *region, *size, *image, *api_url, *project;
} CloudFlags;

typedef struct CloudProvider {
        const char *name;
        const char *token_env;                          /* where the provider's own tools find the token */
        const char *api_url, *region, *size, *image;   /* defaults, all overridable */
        const char *auth_header;                        /* NULL: Authorization: Bearer TOKEN */
        const char *project_env;                        /* non-NULL: a project is needed, else found here */
        bool zoned;                                     /* ids are per zone (--region): delete names it */
        const char *region_kind;                        /* what --region names: NULL "region", or "zone" */
        /* Credentials of more than one part, found by the provider itself (AWS: --access-token-file
         * or ~/.aws/credentials, or the variables); NULL: one token, from the file or token_env. */
        int (*credentials)(const CloudFlags *f, CloudApi *api, char **ret_error);
        int (*create)(CloudApi *api, const CloudCreate *c, CloudHost *ret, char **ret_error);
        int (*get)(CloudApi *api, const char *id, CloudHost *ret, char **ret_error);
        int (*destroy)(CloudApi *api, const char *id, char **ret_error);
        int (*list)(CloudApi *api, const char *tag, CloudHost **ret, size_t *ret_n, char **ret_error);
        /* DNS records at the provider for create --dns (NULL: no DNS API here yet). dns_plan(),
         * before anything is made: the zone holding each name, refusing a name no zone holds or one
         * with an A, AAAA or CNAME record already; *ret_tags are the tags to create the host with,
         * which remember the names on it. dns_add(): the A/AAAA record for h's address of the name
         * one of those tags remembers; *ret_desc says what it made. dns_remove(): the A/AAAA records
         * at the names host id remembers that point at its address, *ret_n how many; it fails when
         * anything cannot be checked, and then the host must be kept (a record may still name its
         * address). -ENOENT: the host is gone. */
        int (*dns_plan)(CloudApi *api, char *const *names, size_t n, char ***ret_tags, char **ret_error);
        /* Optional, once before the first dns_add: the host keeps the address its records are made
         * for, beside all the tags it was created with (written from tags, then read back);
         * -EINVAL: it does not, and no record was asked for. */
        int (*dns_keep)(CloudApi *api, const CloudHost *h, char *const *tags, size_t n, char **ret_error);
        int (*dns_add)(CloudApi *api, const CloudHost *h, const char *tag, char **ret_desc, char **ret_error);
        int (*dns_remove)(CloudApi *api, const char *id, unsigned *ret_n, char **ret_error);
} CloudProvider;

void cloud_hosts_free(CloudHost *l, size_t n);
/* *ret from what an API says of a host: -EBADMSG unless id is an id (it goes into request paths);
 * an ip that is not an address is none; status ready (the provider's word for running) is
 * "active" once there is an address, "pending" before; name and status made printable. */
int cloud_host_from(const char *id, const char *name, const char *status, const char *ready, const char *ip,
                    CloudHost *ret);
/* One more host in *l, parsed from d (an answer that does not parse is skipped); -ENOMEM. */
int cloud_hosts_append(CloudHost **l, size_t *n, json_object *d, int (*parse)(json_object *d, CloudHost *ret));
/* The end of a list operation: on r < 0 frees l, else hands it out (never NULL); returns r. */
int cloud_hosts_return(CloudHost *l, size_t n, int r, CloudHost **ret, size_t *ret_n);

enum {
        CLOUD_OPT_PROVIDER = 0x100,
        CLOUD_OPT_TOKEN_FILE,
        CLOUD_OPT_REGION,
        CLOUD_OPT_SIZE,
        CLOUD_OPT_IMAGE,
        CLOUD_OPT_API_URL,
        CLOUD_OPT_PROJECT,
        _CLOUD_OPT_MAX, /* a program's own getopt values continue from here */
};

/* Their getopt_long() entries, in this order (the enum's). */
#define CLOUD_OPTIONS                                                                   \
        { "provider", required_argument, NULL, CLOUD_OPT_PROVIDER },                    \
        { "access-token-file", required_argument, NULL, CLOUD_OPT_TOKEN_FILE },         \
        { "region", required_argument, NULL, CLOUD_OPT_REGION },                        \
        { "size", required_argument, NULL, CLOUD_OPT_SIZE },                            \
        { "image", required_argument, NULL, CLOUD_OPT_IMAGE },                          \
        { "api-url", required_argument, NULL, CLOUD_OPT_API_URL },                      \
        { "project", required_argument, NULL, CLOUD_OPT_PROJECT }

/* Stores getopt's option c and its argument in f; false when c is not a CLOUD_OPT_*. */
bool cloud_flags_parse(CloudFlags *f, int c, const char *arg);

/* api for provider p with flags f, taking token (erased when freed; NULL when the provider finds
 * its own credentials); -EINVAL with a message when
 * a value is not an id, or when hosts are to be created (creates) at a provider that needs a
 * project and neither --project nor its variable names one. */
int cloud_api_init(CloudApi *api, const CloudProvider *p, const CloudFlags *f, char *token, bool creates,
                   long timeout_sec, unsigned max_retries, char **ret_error);
/* What c names, with the provider's defaults where f names nothing. */
void cloud_create_defaults(CloudCreate *c, const CloudFlags *f, const CloudProvider *p);

extern const CloudProvider cloud_provider_digitalocean, cloud_provider_hetzner, cloud_provider_vultr,
        cloud_provider_linode, cloud_provider_scaleway, cloud_provider_ec2, cloud_provider_gce, cloud_provider_azure;
/* NULL-terminated. */
extern const CloudProvider *const cloud_providers[];
const CloudProvider *cloud_provider_find(const char *name);
