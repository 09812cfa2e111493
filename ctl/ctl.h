// SPDX-License-Identifier: LGPL-2.1-or-later
/* What inletsctl's verbs share: the bus, finding tunnels, reading one tunnel's state, and
 * turning bus errors into exit codes. */
#pragma once

#include <json-c/json.h>
#include <systemd/sd-bus.h>

#include "macro.h"
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
} CtlArgs;

extern CtlArgs arg;

typedef struct ClientRow {
        char *id, *address;
        uint64_t since, bytes_in, bytes_out;
        uint32_t streams;
} ClientRow;

typedef struct TunnelInfo {
        char *name, *role, *mode, *state, *config, *control, *url, *last_error;
        uint16_t *ports;
        size_t n_ports;
        char **upstreams;
        size_t n_upstreams;
        ClientRow *clients;
        size_t n_clients;
        uint32_t active_streams;
        uint64_t total_streams, bytes_in, bytes_out, started_at;
        char **cert_names;      /* ACME: the certificate in service */
        size_t n_cert_names;
        uint64_t cert_not_after, cert_renew_at;
        /* Refused: "allow-list", "control-allow-list", "proxy-header", "client-allow-list" */
        uint64_t refused_allow, refused_control, refused_proxy, refused_client;
        unsigned refused_keys;  /* which of the four the daemon sent (bits in that order) */
        bool has_refused;       /* the daemon has the property (an exit server) */
} TunnelInfo;

int ctl_bus(sd_bus **ret);
/* Names (unescaped) of the running tunnels, sorted. */
int ctl_list_names(sd_bus *bus, char ***ret, size_t *ret_n);
/* The same, saying on stderr why when the bus cannot tell. */
int ctl_running_names(sd_bus *bus, char ***ret, size_t *ret_n);
char *ctl_bus_name(const char *name);
int ctl_tunnel_info(sd_bus *bus, const char *name, TunnelInfo *ret, sd_bus_error *error);
void tunnel_info_done(TunnelInfo *t);
json_object *tunnel_info_json(const TunnelInfo *t);

/* Prints one line for a failed call and returns the exit code it stands for. */
int ctl_error(const char *name, const sd_bus_error *error, int r);
void format_bytes(uint64_t b, char buf[static 16]);
void format_timestamp(uint64_t usec, char buf[static 64]);
void format_age(uint64_t usec, char buf[static 32]);
void json_print(json_object *o);

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
