// SPDX-License-Identifier: LGPL-2.1-or-later
/* inlets PRO's command lines ("tcp server --auto-tls-san 1.2.3.4 …") turned into the same
 * Definition a file gives, and a Definition written back as a file. inletsd runs them;
 * inletsctl define saves them. */
#pragma once

#include "conf.h"

typedef enum Generate {
        GENERATE_NONE,
        GENERATE_CONFIG,
        GENERATE_SYSTEMD,
        GENERATE_K8S_YAML,
} Generate;

typedef struct InletsArgs {
        Generate generate;
        char *token_file;     /* where the definition will read its token from */
        bool token_inline;    /* --token was used (a warning: visible in ps) */
        char *token_env;      /* --token-env VAR: the token came from the environment */
        /* --basic-auth-password or --bearer-token was used (its name): visible in ps, and
         * nothing a generated file or unit can hold */
        const char *inline_secret;
        char *image;          /* --image: the container image --generate=k8s_yaml names */
} InletsArgs;

/* argv starts at the mode word: "tcp" "server" FLAGS… On failure *ret_error says why. */
int inlets_args_parse(int argc, char *argv[], const char *name, Definition **ret, InletsArgs *ret_args,
                      char **ret_error);
void inlets_args_done(InletsArgs *a);
bool inlets_args_is_mode(const char *word);
void inlets_args_help(FILE *f);

/* The definition as /etc/inlets.d/NAME.conf text; the token is never written inline. */
char *definition_to_ini(const Definition *d, const char *token_file);

/* The image --generate=k8s_yaml names unless --image is given (the operator's default too):
 * the name tools/image gives the image it builds from the .debs (docs/operator.md). */
#define INLETSD_DEFAULT_IMAGE "localhost/inletsd:" PROJECT_VERSION

/* A tunnel client as Kubernetes objects (--generate=k8s_yaml): a ConfigMap holding the
 * definition and a Deployment running it, the token from a Secret NAME-token (key "token")
 * made beforehand; YAML text, or NULL when out of memory. */
char *definition_to_k8s_yaml(const Definition *d, const char *image);
