// SPDX-License-Identifier: LGPL-2.1-or-later
/* What inletsctl's verbs share: the bus, finding tunnels, reading one tunnel's state, and
 * turning bus errors into exit codes. */
#pragma once

#include <json-c/json.h>
#include <systemd/sd-bus.h>

#include "macro.h"
#include "tunnel-info.h"
#include "web.h"

enum {
        EXIT_OK = 0,
        EXIT_ERROR = 1,
        EXIT_USAGE = 2,
        EXIT_NOT_RUNNING = 3,
        EXIT_DENIED = 4,
};

typedef struct CtlArgs {
        bool user;
        bool json;
        bool no_pager;
        bool force;
        const char *config_dir;
        /* status --url: an exit server on another machine */
        const char *url, *token_file, *fingerprint, *tls_ca;
} CtlArgs;

extern CtlArgs arg;

int ctl_bus(sd_bus **ret);
/* Names (unescaped) of the running tunnels, sorted. */
int ctl_list_names(sd_bus *bus, char ***ret, size_t *ret_n);
/* The same, saying on stderr why when the bus cannot tell. */
int ctl_running_names(sd_bus *bus, char ***ret, size_t *ret_n);
char *ctl_bus_name(const char *name);
int ctl_tunnel_info(sd_bus *bus, const char *name, TunnelInfo *ret, sd_bus_error *error);

/* Prints one line for a failed call and returns the exit code it stands for. */
int ctl_error(const char *name, const sd_bus_error *error, int r);
void format_bytes(uint64_t b, char buf[static 16]);
void format_timestamp(uint64_t usec, char buf[static 64]);
void format_age(uint64_t usec, char buf[static 32]);
void json_print(json_object *o);
/* GET /status from arg.url: the tunnels it shows in *ret (each to be tunnel_info_done()), or
 * an exit code other than EXIT_OK, the reason printed. */
int ctl_remote_status(TunnelInfo **ret, size_t *ret_n);

int verb_list(int argc, char *argv[]);
int verb_status(int argc, char *argv[]);
int verb_reload(int argc, char *argv[]);
int verb_renew(int argc, char *argv[]);
int verb_disconnect(int argc, char *argv[]);
int verb_streams(int argc, char *argv[]);
int verb_check(int argc, char *argv[]);
int verb_token(int argc, char *argv[]);
int verb_define(int argc, char *argv[]);
int verb_create(int argc, char *argv[]);
int verb_delete(int argc, char *argv[]);
int verb_list_hosts(int argc, char *argv[]);
