// SPDX-License-Identifier: LGPL-2.1-or-later
/* create --dns at the providers whose hosts are in cloudapi.c: their CloudProvider's dns_plan,
 * dns_add and dns_remove (cloudapi.h says what each does). */
#pragma once

#include "cloudapi.h"

int do_dns_plan(CloudApi *api, char *const *names, size_t n, char ***ret_tags, char **ret_error);
int do_dns_add(CloudApi *api, const CloudHost *h, const char *tag, char **ret_desc, char **ret_error);
int do_dns_remove(CloudApi *api, const char *id, unsigned *ret_n, char **ret_error);

int hetzner_dns_plan(CloudApi *api, char *const *names, size_t n, char ***ret_tags, char **ret_error);
int hetzner_dns_keep(CloudApi *api, const CloudHost *h, char *const *tags, size_t n, char **ret_error);
int hetzner_dns_add(CloudApi *api, const CloudHost *h, const char *tag, char **ret_desc, char **ret_error);
int hetzner_dns_remove(CloudApi *api, const char *id, unsigned *ret_n, char **ret_error);

int scw_dns_plan(CloudApi *api, char *const *names, size_t n, char ***ret_tags, char **ret_error);
int scw_dns_keep(CloudApi *api, const CloudHost *h, char *const *tags, size_t n, char **ret_error);
int scw_dns_add(CloudApi *api, const CloudHost *h, const char *tag, char **ret_desc, char **ret_error);
int scw_dns_remove(CloudApi *api, const char *id, unsigned *ret_n, char **ret_error);

/* A server's public IPv4 address as Hetzner's and Scaleway's answers say (in cloudapi.c). */
const char *hetzner_public_ip(json_object *server);
const char *scw_public_ip(json_object *server);
