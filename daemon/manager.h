// SPDX-License-Identifier: LGPL-2.1-or-later
/* The manager owns everything one inletsd process runs: the event loop, the definition, the
 * role object (exit server or tunnel client) and the bus connection. */
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "conf.h"
#include "histogram.h"
#include "macro.h"
#include "mux.h"
#include "string-table.h"

typedef struct Server Server;
typedef struct Client Client;
typedef struct PolkitQuery PolkitQuery;
typedef struct FileServer FileServer;
typedef struct AcmeCert AcmeCert;

typedef enum TunnelState {
        TUNNEL_STARTING,
        TUNNEL_LISTENING,
        TUNNEL_CONNECTING,
        TUNNEL_CONNECTED,
        TUNNEL_RECONNECTING,
        TUNNEL_STOPPING,
        _TUNNEL_STATE_MAX,
} TunnelState;

typedef enum BusMode {
        BUS_SYSTEM,
        BUS_USER,
        BUS_NONE,
} BusMode;

/* What the bus shows of a connected tunnel client (exit server side). */
typedef struct PeerInfo {
        const char *id;
        const char *address;
        uint64_t since_usec;   /* CLOCK_REALTIME */
        uint64_t bytes_in, bytes_out;
        unsigned streams;
        const uint16_t *ports;
        size_t n_ports;
        const uint16_t *udp_ports;
        size_t n_udp_ports;
} PeerInfo;

typedef struct StreamInfo {
        uint32_t id;
        const char *client;
        const char *peer;
        uint16_t port;
        uint64_t bytes_in, bytes_out;
        uint64_t age_usec;
} StreamInfo;

/* TCP mode, per public port: the streams and bytes of streams that ended (live ones are read
 * with manager_foreach_stream()); for the metrics. At most PORT_TABLE_MAX ports. */
#define PORT_TABLE_MAX 1024
typedef struct PortTotals {
        uint16_t port;
        unsigned active;           /* snapshots only: live streams */
        uint64_t streams, bytes_in, bytes_out;
} PortTotals;
typedef struct PortTable {
        PortTotals *v;             /* sorted by port */
        size_t n;
} PortTable;
/* The entry of port, made when missing; NULL past PORT_TABLE_MAX, for port 0, or without memory. */
PortTotals *port_table_get(PortTable *t, uint16_t port);
void port_table_done(PortTable *t);

/* Why a tunnel client's upstream connection failed (TCP and HTTP mode), for the metrics. */
typedef enum UpstreamFailure {
        UPSTREAM_REFUSED,       /* ECONNREFUSED */
        UPSTREAM_UNREACHABLE,   /* no address, no route */
        UPSTREAM_TIMEOUT,
        UPSTREAM_TLS,           /* an https:// upstream's handshake or certificate */
        UPSTREAM_OTHER,
        _UPSTREAM_FAILURE_MAX,
} UpstreamFailure;
extern const char *const upstream_failure_names[_UPSTREAM_FAILURE_MAX];

typedef struct TunnelCounters {
        uint64_t bytes_in, bytes_out, total_streams;
        unsigned active_streams;
        uint64_t buffered;      /* live sessions: bytes in stream buffers now (MuxStats.held) */
} TunnelCounters;

/* Visitors an access list turned away (exit server), per reason; the bus names the reasons
 * "allow-list" (AllowFrom=/DenyFrom=, public ports and hosts) and "control-allow-list"
 * (ControlAllowFrom=). */
typedef struct RefusedCounters {
        uint64_t allow_list, control_allow_list;
        uint64_t proxy_header;  /* AcceptProxyProtocol=: no valid header from a trusted source */
        uint64_t client_allow_list; /* exit server: a tunnel client's own lists refused the visitor */
} RefusedCounters;

/* UDP (UDPPorts=, AllowUDPPorts=): flows and datagrams, either role. In: from the tunnel to a
 * socket; out: from a socket into the tunnel (as BytesIn/BytesOut). Dropped datagrams by reason. */
typedef enum UdpDrop {
        UDP_DROP_FULL,      /* no room: the tunnel or the socket is behind */
        UDP_DROP_SIZE,      /* larger than the path takes (EMSGSIZE) or a capsule can hold */
        UDP_DROP_NO_FLOW,   /* no flow for it: no client, a limit, an access list, refused */
        UDP_DROP_ERROR,     /* the socket refused it otherwise */
        _UDP_DROP_MAX,
} UdpDrop;
extern const char *const udp_drop_names[_UDP_DROP_MAX];

typedef struct UdpCounters {
        unsigned flows;                 /* open now */
        uint64_t flows_total;
        uint64_t evicted;               /* flows ended to make room for new ones */
        uint64_t datagrams_in, datagrams_out;
        uint64_t bytes_in, bytes_out;
        uint64_t dropped[_UDP_DROP_MAX];
} UdpCounters;

/* Resumable sessions (ResumeSec=): what waits now, and what came back or did not. */
typedef struct ResumeCounters {
        unsigned held_sessions;     /* lost connections whose streams wait now */
        unsigned held_streams;
        uint64_t resumed_sessions;  /* lost connections taken back by the next one */
        uint64_t resumed_streams;
        uint64_t resent_bytes;      /* bytes sent again after a resumption */
        uint64_t expired_streams;   /* held streams closed: no resumption in time */
} ResumeCounters;

typedef struct Manager {
        sd_event *event;
        Definition *def;
        char *config_path;
        char *name;           /* NAME for `inletsd NAME`, else NULL */
        Server *server;
        Client *client;
        FileServer *fileserver;
        struct Metrics *metrics;  /* MetricsListen= */
        struct Resolver *resolver; /* host names, off the loop (resolve.h) */
        int metrics_fd;           /* the socket systemd passed for it ("metrics"), until started */
        sd_event_source *sigterm, *sigint, *sighup, *sigusr2, *drain_timer;
        bool stopping;
        /* A restart: what the previous process handed over through the fd store ("handover-state",
         * "handover-N"), until the role took it; the names, to remove them from the store. */
        int handover_state;
        int *handover_fds;
        size_t n_handover_fds;
        char **handover_names;
        uint64_t drain_deadline;

        BusMode bus_mode;
        sd_bus *bus;
        char *bus_name;
        PolkitQuery *polkit_queries;
        sd_event_source *counter_timer;
        TunnelCounters emitted;
        RefusedCounters emitted_refused;
        uint64_t emitted_resume[5]; /* RESUME_COUNTERS, as D-Bus Resumption has them */
        uint64_t emitted_udp[11];   /* UDP_COUNTERS, as D-Bus UDP has them */

        PortTable ports;      /* TCP mode: streams that ended, per public port */
        UdpCounters udp;
        Histogram upstream_connect;  /* tunnel client: upstream connections made, by time taken */
        uint64_t upstream_failures[_UPSTREAM_FAILURE_MAX];

        TunnelState state;
        bool ready_sent;
        sd_event_source *status_timer;
        char *last_error;
        uint64_t started_at;  /* CLOCK_REALTIME µs */
} Manager;

DECLARE_STRING_TABLE_LOOKUP(tunnel_state, TunnelState);

int manager_new(Definition *def, const char *config_path, const char *name, BusMode bus_mode, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);
int manager_start(Manager *m);
int manager_run(Manager *m);

/* Re-reads the definition. A bad file changes nothing and returns its error (file:line). */
int manager_reload(Manager *m, char **ret_error);

void manager_set_state(Manager *m, TunnelState s);
/* Tells systemd (if it listens) that we are ready, and what we are doing in one line. */
void manager_notify_status(Manager *m);
void manager_set_error(Manager *m, const char *error);
void manager_emit_changed(Manager *m, const char *property);
void manager_client_event(Manager *m, bool connected, const char *id, const char *text);

void manager_get_counters(Manager *m, TunnelCounters *ret);
/* All zero but for an exit server. */
void manager_get_refused(Manager *m, RefusedCounters *ret);
void manager_get_resume(Manager *m, ResumeCounters *ret);
void manager_foreach_client(Manager *m, void (*f)(const PeerInfo *p, void *userdata), void *userdata);
void manager_foreach_stream(Manager *m, void (*f)(const StreamInfo *s, void *userdata), void *userdata);
/* The streams of one session as the bus shows them (client: the exit server side's id). */
void manager_foreach_mux_stream(Mux *mux, const char *client, void (*f)(const StreamInfo *s, void *userdata),
                                void *userdata);
/* A stream ended (the mux's stream_closed), or a session ends with streams still open: their
 * counts go to m->ports. */
void manager_stream_ended(Manager *m, MuxStream *s);
void manager_session_ended(Manager *m, Mux *mux);
/* A tunnel client's upstream connection was made (error 0, took its time) or failed (-errno;
 * -EPROTO and -EPERM for TLS). */
void manager_note_upstream(Manager *m, int error, uint64_t took_usec);
/* After the role started: the previous process's handed-over fds leave the fd store (and are
 * closed here unless the role took them). */
void manager_handover_release(Manager *m);

/* The listening sockets systemd passed (sd_listen_fds_with_names), close-on-exec and
 * non-blocking: "metrics" becomes m->metrics_fd, every other one goes to take(name, fd), which
 * returns true when it kept fd (else it is closed with a warning). */
int manager_take_systemd_sockets(Manager *m, bool (*take)(const char *name, int fd, void *userdata), void *userdata);
/* m->ports with the live streams added (active set): free with port_table_done(). */
int manager_port_snapshot(Manager *m, PortTable *ret);
int manager_disconnect_client(Manager *m, const char *id);
/* The role's ACME certificate manager (exit server in HTTP mode with ACMEDomain=), else NULL. */
AcmeCert *manager_acme(Manager *m);
