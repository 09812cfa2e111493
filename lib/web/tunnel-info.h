// SPDX-License-Identifier: LGPL-2.1-or-later
/* One tunnel's state as `inletsctl status` shows it: filled from D-Bus properties by inletsctl,
 * from the daemon's own counters for GET /status on an exit server's control port, and turned
 * into the JSON of `inletsctl status --json` and back (`inletsctl status --url`). One shape,
 * one JSON writer and reader, so the local and the remote view cannot drift apart. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
        /* Resumption (ResumeSec=): "held-streams" now, "resumed-sessions", "resumed-streams",
         * "resent-bytes", "expired-streams" since start */
        uint64_t resume[5];
        bool has_resume;
        /* UDP (UDPPorts=): the public UDP ports, and the counters of tunnel_udp_counters */
        uint16_t *udp_ports;
        size_t n_udp_ports;
        uint64_t udp[11];
        bool has_udp;
} TunnelInfo;

/* The reasons of Refused known here, in the order of refused_keys' bits. */
#define REFUSED_REASONS 4
extern const char *const tunnel_refused_reasons[REFUSED_REASONS];
/* Where reason i is counted in t. */
uint64_t *tunnel_info_refused(TunnelInfo *t, size_t i);

#define RESUME_COUNTERS 5
extern const char *const tunnel_resume_counters[RESUME_COUNTERS];

/* UDP: "flows" now, "flows-total", "datagrams-in", "datagrams-out", "bytes-in", "bytes-out",
 * "dropped-full", "dropped-size", "dropped-no-flow", "dropped-error", "flows-evicted" since start. */
#define UDP_COUNTERS 11
extern const char *const tunnel_udp_counters[UDP_COUNTERS];

void tunnel_info_done(TunnelInfo *t);
json_object *tunnel_info_json(const TunnelInfo *t);
/* Reads what tunnel_info_json() writes; members it does not know are skipped (a newer daemon),
 * members of the wrong type or out of range are -EBADMSG. */
int tunnel_info_from_json(json_object *o, TunnelInfo *ret);
