// SPDX-License-Identifier: LGPL-2.1-or-later
/* Exit servers made elsewhere (inletsctl create, and later the operator): everything a fresh
 * host needs to run `inletsd@NAME`, made locally — the token and a CA whose key goes to the
 * host, so the client pins the CA before the host exists (no trust on first use) — and the
 * cloud-init user-data that installs it. */
#pragma once

#include "conf.h"

typedef struct ExitServerPlan {
        char *name;
        Mode mode;
        uint16_t control_port;
        char *ports;            /* TCP mode: AllowPorts= ("3389 2222"), or NULL for any */
        char *package_url;      /* the inletsd .deb the host installs */
        char *token;            /* secret */
        char *ca_crt;           /* PEM */
        char *ca_key;           /* PEM, secret */
        char *ca_fingerprint;   /* "sha256:…", for ServerFingerprint= */
} ExitServerPlan;

int exit_server_plan_new(const char *name, Mode mode, const char *ports, uint16_t control_port,
                         const char *package_url, ExitServerPlan **ret, char **ret_error);
ExitServerPlan *exit_server_plan_free(ExitServerPlan *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(ExitServerPlan *, exit_server_plan_free);

/* "#cloud-config" user-data: writes /etc/inlets.d/NAME.conf, NAME.token (0600) and the CA into
 * /var/lib/inlets/NAME/, installs the package, enables inletsd@NAME. */
char *exit_server_user_data(const ExitServerPlan *p);
/* The tunnel client's definition for that server at host. */
char *exit_server_client_conf(const ExitServerPlan *p, const char *host, const char *token_file);
