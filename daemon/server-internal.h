// SPDX-License-Identifier: LGPL-2.1-or-later
/* What the exit server's files share: the Server, Listener, Session and Pending objects, and
 * the calls one concern makes into another. Private to daemon/server*.c. */
#pragma once

#include <assert.h>
#include <gnutls/gnutls.h>

#include "access.h"
#include "http1.h"
#include "httpfront.h"
#include "macro.h"
#include "mux.h"
#include "proxy-accept.h"
#include "ratelimit.h"
#include "resume.h"
#include "server.h"
#include "socket-util.h"
#include "tls.h"

#define MAX_PENDING 1024
#define MAX_OFFERED_PORTS 256
#define AUTH_SOURCES 256

/* Recent wrong tokens from one source (address_key(); the port does not count). */
typedef struct AuthFailures {
        uint8_t addr[16];
        unsigned count;
        uint64_t last;
} AuthFailures;

/* What a client offers: ports in TCP mode, host names in HTTP mode. */
typedef struct Offer {
        uint16_t *ports;
        size_t n_ports;
        char **hosts;
        size_t n_hosts;
} Offer;

static inline void offer_done(Offer *o) {
        o->ports = mfree(o->ports);
        o->hosts = strv_free(o->hosts);
}

typedef struct Session Session;
typedef struct Pending Pending;
typedef struct Forward Forward;
typedef struct Listener Listener;
typedef struct UdpPort UdpPort;

/* A public port (TCP mode), shared by every session that offers it. */
struct Listener {
        Server *server;
        Listener *next;
        uint16_t port;
        char scope[6];       /* the port as access_list_allows() takes it */
        char what[12];       /* "Port 3389", for messages */
        ProxyGate gate;      /* AcceptProxyProtocol= */
        int fd;
        sd_event_source *io;
        unsigned refs, rr;
        bool from_systemd;   /* kept open without clients: systemd owns it */
        unsigned held_refs;  /* of refs: held sessions (ResumeSec=) */
        bool paused;         /* only held sessions offer it: connections wait in the queue */
        char local[SOCKADDR_STR_MAX]; /* bound to one address: what every connection has */
};

/* Why a tunnel client's session ended, for the metrics. */
typedef enum SessionEnd {
        SESSION_END_CLOSED,     /* the client closed it (WebSocket close, GOAWAY) */
        SESSION_END_ERROR,      /* the connection failed (reset, TLS, protocol) */
        SESSION_END_TIMEOUT,    /* no answer within the keepalive */
        SESSION_END_REPLACED,   /* the same ClientID connected again */
        SESSION_END_DISCONNECTED, /* DisconnectClient (inletsctl disconnect) */
        SESSION_END_RELOAD,     /* a reload took a port it needs away */
        SESSION_END_STOPPING,   /* the exit server stops */
        SESSION_END_RESUMED,    /* lost, then taken back by the client's next connection */
        _SESSION_END_MAX,
        _SESSION_END_UNSET = -1,
} SessionEnd;
extern const char *const session_end_names[_SESSION_END_MAX];

/* A tunnel client past its handshake: its Mux and what it offers. */
struct Session {
        Server *server;
        Session *prev, *next;
        char *id;
        char remote[SOCKADDR_STR_MAX];
        uint64_t since;       /* CLOCK_REALTIME µs */
        Mux *mux;
        uint16_t *ports;
        size_t n_ports;
        char **hosts;         /* HTTP mode: lower case; "*" serves any host */
        size_t n_hosts;
        /* The client's own AllowFrom=/DenyFrom= ("access" control messages): in force, and
         * the one being received until "access commit". */
        AccessList access, access_pending;
        bool access_open;
        SessionEnd end;       /* set by who ends it on purpose, before the mux closes */
        uint16_t *udp_ports;  /* its UDPPorts= ("udp-ports" control message; server-udp.c) */
        size_t n_udp_ports;
        unsigned n_udp_flows;
        Forward *forwards;    /* its LocalForward= dials in progress (server-forward.c) */
        unsigned n_forwards;
        /* Resumption (docs/protocol.md): agreed at the upgrade; the id and secret key a
         * reconnecting client proves it had; held: the connection is lost and the streams wait
         * (unread) for ResumeSec=. */
        bool resumable, held;
        char resume_id[RESUME_ID_HEX + 1];
        uint8_t resume_key[32];
        /* A resumed session: the id and key the client resumed with stay good until it is heard
         * on the new connection (a 101 lost with that connection left it without the new ones). */
        bool prev_valid;
        char prev_resume_id[RESUME_ID_HEX + 1];
        uint8_t prev_resume_key[32];
        sd_event_source *hold_timer;
};

/* A connection on the control port until its WebSocket upgrade is answered. */
struct Pending {
        Server *server;
        Pending *prev, *next;
        TlsConn *conn;
        sd_event_source *io, *timer;
        bool handshake_done;
        bool refuse_on_timer;   /* a wrong token: the 401 goes out when the timer fires */
        bool draining;          /* GET /status answered: writing it out, then closing */
        char head[HTTP_HEAD_MAX_DEFAULT];
        size_t head_len;
        char remote[SOCKADDR_STR_MAX];
        SocketAddress peer;
};

/* Why a connection to the control port did not become a session. */
typedef enum HandshakeFailure {
        HANDSHAKE_TLS,          /* the TLS handshake failed */
        HANDSHAKE_TIMEOUT,      /* nothing complete within HandshakeTimeoutSec= */
        HANDSHAKE_TOKEN,        /* a wrong or missing token (401) */
        HANDSHAKE_REQUEST,      /* not a valid upgrade request (4xx but 401) */
        HANDSHAKE_BUSY,         /* MaxClients= reached (503) */
        HANDSHAKE_CLOSED,       /* the peer went away during the upgrade */
        _HANDSHAKE_FAILURE_MAX,
} HandshakeFailure;

struct Server {
        Manager *manager;
        gnutls_certificate_credentials_t creds;
        /* Replaced by a reload; kept until exit, as handshakes may still use them. */
        gnutls_certificate_credentials_t *retired_creds;
        size_t n_retired_creds;
        gnutls_certificate_credentials_t new_creds;
        bool new_creds_set;
        int control_fd, new_control_fd;
        sd_event_source *control_io;
        ProxyGate control_gate;   /* ControlAcceptProxyProtocol= */
        TunnelCounters closed;    /* of sessions that ended */
        ResumeCounters resume;    /* the counters; held_* are counted when asked */
        Listener *listeners;
        UdpPort *udp_ports;       /* public UDP ports (server-udp.c) */
        bool udp_draining;        /* server_drain(): UDP ports stay unread, none is bound */
        sd_event_source *udp_timer; /* ends idle flows */
        RateLimit udp_log;
        Session *sessions;
        Pending *pending;
        unsigned n_forwards;      /* LocalForward= dials in progress, every session's */
        unsigned n_sessions, n_pending;
        RateLimit auth_log, busy_log, refused_log, control_refused_log;
        RefusedCounters refused;  /* public ports (TCP mode) and the control port; HTTP: the fronts */
        uint64_t handshake_failures[_HANDSHAKE_FAILURE_MAX];
        uint64_t connects;        /* sessions established since start */
        uint64_t disconnects[_SESSION_END_MAX];
        AuthFailures auth_failures[AUTH_SOURCES];
        /* HTTP mode */
        int http_fd, https_fd;   /* from systemd, until started */
        HttpFront *http, *https;
        gnutls_certificate_credentials_t https_creds; /* HTTPSCertificateFile= or ACME */
        gnutls_certificate_credentials_t placeholder_creds; /* ACME, until its first certificate */
        AcmeCert *acme;
        unsigned host_rr;
};

static inline const Definition *server_def(Server *s) {
        assert(s);
        return s->manager->def;
}

/* server.c */
/* An access list turned peer away: counted, and logged at a bounded rate. port 0: the control
 * port (ControlAllowFrom=), else a public port (AllowFrom=/DenyFrom=). */
void server_note_refused(Server *s, uint16_t port, const SocketAddress *peer);
int server_load_credentials(const Definition *d, gnutls_certificate_credentials_t *ret, char **ret_error);
void server_retire_credentials(Server *s, gnutls_certificate_credentials_t c);

/* server-listener.c: public ports, counted by the sessions that offer them. */
Listener *listener_free(Listener *l);
Listener *listener_find(Server *s, uint16_t port);
/* Takes one more reference on port, binding it first if needed; on failure a message for the
 * client in *ret_error (may be NULL). */
int listener_ref(Server *s, uint16_t port, char **ret_error);
void listener_unref(Server *s, uint16_t port);
/* A "data-PORT" socket systemd passed: takes fd, accepts only while a client offers the port. */
int listener_add_from_systemd(Server *s, uint16_t port, int fd);
void listener_drain(Listener *l);
/* A port offered only by held sessions (ResumeSec=) stops accepting: new connections wait in
 * the queue until the client resumes (or the hold ends); else it accepts. After a change of
 * the port's refs or held_refs. */
void listener_update(Server *s, uint16_t port);

/* server-handshake.c: the control port and the Pending handshakes. */
int server_control_watch(Server *s);
/* The control port's connection from peer (see proxy-accept.h; userdata the Server). */
int server_control_accept(int cfd, const SocketAddress *peer, bool via_proxy, void *userdata);
Pending *pending_free(Pending *p);

/* server-session.c: sessions, what they offer, and their control messages. */
/* Counts the session's end (reason: x->end, else what the mux said) and its totals. */
Session *session_free(Session *x);
Session *session_find(Server *s, const char *id);
/* Takes the offer's ports and hosts on success; the listeners of the ports must be referenced
 * already. The session has no Mux until session_start(). */
int session_new(Server *s, const char *id, const char *remote, Offer *offer, Session **ret);
/* Takes conn; early: what the client sent after its upgrade request. */
int session_start(Session *x, TlsConn *conn, const uint8_t *early, size_t n_early);
/* Ends x on purpose: a live session's Mux is aborted (reason) or, with reason NULL, shut down
 * politely, and the session goes when the Mux is closed; a held one is freed at once (x is
 * gone). */
void session_end_now(Session *x, SessionEnd end, const char *reason);
/* Moves the held session's streams to x (which the same client's resume request started) and
 * frees held. */
void session_resume(Session *x, Session *held);
/* The session's connection is gone: its streams wait ResumeSec= for the client (ports that
 * only held sessions offer stop accepting). */
int session_hold_start(Session *x, SessionEnd end);

void session_log_connected(Session *x);
Session *session_for_port(Server *s, Listener *l);
/* Whether the client's own lists let peer reach the port or host (scope); counted when not. */
bool session_allows(Session *x, const char *scope, const SocketAddress *peer);
Mux *server_route_host(const char *host, const SocketAddress *peer, bool *ret_refused, bool *ret_exact,
                       void *userdata);
int parse_offered_ports(const char *v, uint16_t **ret, size_t *ret_n);
int parse_offered_hosts(const char *v, char ***ret, size_t *ret_n);
/* Why a port a client asked for is refused, for the 409 and the log. */
void port_refusal(const Definition *d, uint16_t port, char *buf, size_t size);

/* server-forward.c: the "forward" control message and the dials it starts. */
void session_control_forward(Session *x, Mux *m, const char *args);
void session_forwards_free(Session *x);

/* server-udp.c: public UDP ports and their flows. */
/* "udp-ports LIST" (LIST may be empty: none): the session's new complete UDP offer, answered. */
void session_control_udp_ports(Session *x, Mux *m, const char *list);
/* The session's flows end (it ends, or its connection is lost and it is held); then its ports
 * are given up (session_udp_release). */
void session_udp_flows_end(Session *x);
void session_udp_release(Session *x);
/* x's ports are read while a live session offers them (after x is held, or resumed). */
void session_udp_update(Session *x);
/* A resumed session x takes over held's UDP ports, which stay bound meanwhile. */
void session_udp_take(Session *x, Session *held);
/* Flows whose visitors the lists in force (the server's, their client's) refuse end. */
void udp_flows_recheck(Server *s);
/* A "udp-PORT" socket systemd passed (ListenDatagram=): takes fd, read only while a client
 * offers the port. */
int udp_port_add_from_systemd(Server *s, uint16_t port, int fd);
UdpPort *udp_port_find(Server *s, uint16_t port);
/* Stop reading and end every flow: what comes waits in the sockets for the next process. */
void udp_ports_drain(Server *s);
void udp_ports_free(Server *s);
