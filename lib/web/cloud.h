// SPDX-License-Identifier: LGPL-2.1-or-later
/* Exit servers made elsewhere (inletsctl create, inlets-operator): everything a fresh host needs
 * to run `inletsd@NAME`, made locally -- the token and the host's TLS certificate, so the client
 * pins it before the host exists (no trust on first use) -- and the cloud-init user-data that
 * installs it. The user-data stays readable from the cloud's metadata service for the life of
 * the host, so it carries no CA key: the CA signs the one certificate and is forgotten. */
#pragma once

#include "conf.h"
#include "macro.h"

typedef struct ExitServerPlan {
        char *name;
        Mode mode;
        uint16_t control_port;
        char *ports;            /* TCP mode: AllowPorts= ("3389 2222"), or NULL for any */
        char *package_url;      /* the inletsd .deb the host installs */
        char *token;            /* secret */
        char *server_crt;       /* PEM: the host's certificate, then the CA that issued it */
        char *server_key;       /* PEM, secret: that certificate's key, for the host only */
        char *ca_crt;           /* PEM: the issuing CA, for CAFile=; its key no longer exists */
        char *fingerprint;      /* "sha256:…" of the host's certificate, for ServerFingerprint= */
        char **acme_domains;    /* HTTP mode: names the host serves on HTTPS 443 with a certificate it
                                 * gets by ACME (HTTP-01 on port 80); each an Upstream= name */
        size_t n_acme_domains;
        char *acme_email;
        char *acme_directory;   /* ACMEDirectory= (staging or a URL); NULL: Let's Encrypt */
} ExitServerPlan;

/* host, when known, is the name or address the certificate names besides the pin (for CAFile=). */
int exit_server_plan_new(const char *name, Mode mode, const char *ports, uint16_t control_port,
                         const char *package_url, const char *host, ExitServerPlan **ret, char **ret_error);
/* HTTPS by ACME (inletsctl create --letsencrypt-domain): an HTTP-mode plan only; issuer is
 * prod/production (or NULL), staging, or an https:// directory URL. Each value is checked as the
 * host's own config parser will check it. */
int exit_server_plan_set_acme(ExitServerPlan *p, char *const *domains, size_t n_domains, const char *email,
                              const char *issuer, char **ret_error);
ExitServerPlan *exit_server_plan_free(ExitServerPlan *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(ExitServerPlan *, exit_server_plan_free);

/* "#cloud-config" user-data: writes /etc/inlets.d/NAME.conf, NAME.token (0600, root: the unit
 * loads it as its credential) and server.crt/server.key into /var/lib/inlets/NAME/ (handed to
 * user inletsd once the package made it), installs the package, enables inletsd@NAME, then
 * removes cloud-init's on-disk copies of the user-data. */
char *exit_server_user_data(const ExitServerPlan *p);
/* The tunnel client's definition for that server at host (with ACME, an Upstream= line per name). */
char *exit_server_client_conf(const ExitServerPlan *p, const char *host, const char *token_file);
