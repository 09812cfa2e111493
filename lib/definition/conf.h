// SPDX-License-Identifier: LGPL-2.1-or-later
/* A tunnel definition: the systemd-style INI file /etc/inlets.d/NAME.conf parsed into one
 * structure. The daemon, inletsctl check and the inlets-style command lines all produce it.
 * Files: ini.c (the INI reader), conf-keys.c (the key table), conf-check.c (defaults and checks
 * per role), conf-token.c (the token), conf-url.c (URL= and Upstream=), conf.c (loading). */
#pragma once

#include "access.h"
#include "conf-url.h"
#include "http-rules.h"
#include "in-addr-prefix.h"
#include "macro.h"
#include "proxy-protocol.h"
#include "socket-util.h"
#include "string-table.h"

/* What ACMEDirectory=production|staging stand for (the ACME client itself is lib/web/acme.c). */
#define ACME_DIRECTORY_PRODUCTION "https://acme-v02.api.letsencrypt.org/directory"
#define ACME_DIRECTORY_STAGING "https://acme-staging-v02.api.letsencrypt.org/directory"

typedef enum Role {
        ROLE_SERVER,
        ROLE_CLIENT,
        ROLE_FILESERVER,
        _ROLE_MAX,
        _ROLE_INVALID = -EINVAL,
} Role;

typedef enum Mode {
        MODE_TCP,
        MODE_HTTP,
        _MODE_MAX,
        _MODE_INVALID = -EINVAL,
} Mode;

typedef struct PortMap {
        uint16_t public_port;
        uint16_t upstream_port;
        char *host;             /* PUBLIC:HOST:PORT: this port's own upstream host; NULL: Upstream= */
} PortMap;

/* LocalForward=[LISTEN:]PORT:HOST:HOSTPORT: the tunnel client listens on LISTEN:PORT and
 * carries each connection to HOST:HOSTPORT, which the exit server dials. */
typedef struct LocalForward {
        SocketAddress listen;
        char *host;             /* a name, or a numeric address (no brackets) */
        uint16_t port;
} LocalForward;

/* AllowForwardTo= items: HOST:PORT (that name or address, that port), or PREFIX / PREFIX:PORT
 * ([PREFIX]:PORT for IPv6) for numeric addresses in it (any port when none is given). A name
 * matches only a HOST item naming it: never a prefix (DNS decides nothing). */
typedef struct ForwardRule {
        char *host;             /* NULL: prefix */
        AddressPrefix prefix;
        uint16_t port;          /* 0: any (prefixes only) */
} ForwardRule;

/* ProxyProtocol=VERSION PORT...: the version for these public ports, whatever the tunnel-wide
 * ProxyProtocol= says. */
typedef struct ProxyProtocolPort {
        uint16_t public_port;
        ProxyProtocol version;
} ProxyProtocolPort;

#define DEFAULT_CONTROL_PORT 8123
#define DEFAULT_HTTP_PORT 8000
#define DEFAULT_FILESERVER_PORT 8080
#define DEFAULT_HTTPS_PORT 8443
#define TOKEN_MIN_LEN 16
#define TOKEN_MAX_LEN 4096
#define CONF_FILE_MAX (1024 * 1024)

typedef struct Definition {
        char *name;          /* NAME, or the file's basename without .conf */
        char *path;          /* the main file */

        /* [Tunnel] */
        Role role;
        Mode mode;
        char *token;         /* secret: erased on free, never logged */
        char *token_file;
        uint64_t keepalive_usec;
        uint64_t handshake_timeout_usec;
        uint64_t resume_usec;       /* ResumeSec=: how long a lost tunnel's streams are held; 0 off */
        SocketAddress metrics_listen;  /* MetricsListen=: unset (len 0): no metrics endpoint */
        int log_level;       /* -1: not set */
        uint64_t max_header_bytes;  /* HTTP mode: request/response head limits */
        unsigned max_headers;
        uint64_t idle_timeout_usec; /* HTTP mode: keep-alive connections */
        uint64_t udp_idle_usec;     /* UDPIdleSec=: a UDP flow without a datagram either way ends */

        /* [Server] */
        SocketAddress control_listen;
        SocketAddress data_listen;
        SocketAddress http_listen;
        SocketAddress https_listen;   /* unset: no HTTPS */
        char *https_certificate_file;
        char *https_key_file;
        uint64_t max_body_bytes;      /* 0: no limit */
        unsigned max_connections;     /* public HTTP connections */
        uint64_t response_timeout_usec;
        int tls;             /* TLS on the control port; "no" is for a TLS-terminating proxy */
        int auto_tls;
        char **auto_tls_san;
        size_t n_auto_tls_san;
        char *certificate_file;
        char *key_file;
        char *state_directory;
        uint16_t *allow_ports;
        size_t n_allow_ports;
        uint16_t *allow_udp_ports;    /* AllowUDPPorts=: [lo, hi] pairs; none: no UDP at all */
        size_t n_allow_udp_ports;
        unsigned max_clients;
        unsigned max_streams;   /* per client */
        uint64_t max_frame_size; /* WebSocket frame / message limit */
        char **acme_domains;    /* HTTP mode: certificates for the HTTPS port from an ACME CA */
        size_t n_acme_domains;
        char *acme_email;
        char *acme_directory;   /* the directory URL ("production"/"staging" resolved) */
        char *acme_ca_file;     /* trust for the CA's own HTTPS (default: the system's) */
        AccessList access;      /* AllowFrom= and DenyFrom=: the public ports and hosts */
        bool access_in_server, access_in_client; /* the sections they came from (one per role) */
        AccessList control_access; /* ControlAllowFrom=: allow rules only, no scopes */
        AccessList accept_proxy;   /* AcceptProxyProtocol=: trusted load balancers, the same form */
        AccessList control_accept_proxy; /* ControlAcceptProxyProtocol=: the same, control port */
        ForwardRule *allow_forward_to;   /* AllowForwardTo=: what clients' LocalForward= may reach */
        size_t n_allow_forward_to;

        /* [Client] */
        char *url;
        char *ca_file;
        char *upstream_ca_file;  /* HTTP mode: CAs for https:// upstreams (default: the system's) */
        bool has_fingerprint;
        uint8_t server_fingerprint[32];
        char **upstreams;
        size_t n_upstreams;
        HttpRules http_rules;   /* HTTP mode: BasicAuthFile=, BearerTokenFile=, RateLimit=, *Header= */
        PortMap *ports;
        size_t n_ports;
        PortMap *udp_ports;     /* UDPPorts=: the same items, for UDP */
        size_t n_udp_ports;
        uint64_t reconnect_max_delay_usec;
        char *client_id;
        ProxyProtocol proxy_protocol;  /* TCP mode, every port; _PROXY_PROTOCOL_INVALID: not set (no) */
        ProxyProtocolPort *proxy_protocol_ports; /* ... per public port, winning over it */
        size_t n_proxy_protocol_ports;
        LocalForward *local_forwards;    /* LocalForward= */
        size_t n_local_forwards;
        char *proxy;                /* Proxy= as written (may hold a password); NULL: the environment's */
        char *proxy_password_file;  /* ProxyPasswordFile= */
        ProxyURL proxy_url;         /* the HTTP proxy the tunnel goes through; host NULL: none */
        const char *proxy_source;   /* where it came from: "Proxy=", "https_proxy", ... */

        /* [FileServer] */
        SocketAddress listen;
        char *webroot;
        int allow_browsing;
        int basic_auth;      /* user "admin", the token as password */
        int allow_hidden;    /* serve and list names starting with '.' */
} Definition;

Definition *definition_free(Definition *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(Definition *, definition_free);

DECLARE_STRING_TABLE_LOOKUP(role, Role);
DECLARE_STRING_TABLE_LOOKUP(mode, Mode);

/* Parses PATH and its drop-ins PATH.d/ *.conf, then checks the result and loads the token.
 * On failure returns -errno and, if ret_error is set, a message naming file:line. Warnings
 * (unknown keys) are logged. */
int definition_load(const char *path, const char *name, Definition **ret, char **ret_error);
/* The same without reading the token (for the generator, which runs before any credential
 * exists, and must not read secrets anyway). */
int definition_load_no_token(const char *path, const char *name, Definition **ret, char **ret_error);

/* The same from a memory buffer, for the fuzzer and unit tests: parse only. */
int definition_parse_buffer(Definition *d, const char *path, const char *data, size_t size,
                            char **ret_error);
Definition *definition_new(const char *name, const char *path);
/* Fills defaults, validates the combination of keys, reads the token. */
int definition_finish(Definition *d, char **ret_error);
/* The same without the token (to write a definition out, or for the generator). */
int definition_finish_no_token(Definition *d, char **ret_error);

bool definition_port_allowed(const Definition *d, uint16_t port);
/* Exit server: whether AllowUDPPorts= lets a client offer this UDP port (unset: none). */
bool definition_udp_port_allowed(const Definition *d, uint16_t port);
/* Tunnel client, TCP mode: the PROXY protocol version for a stream to this public port. */
ProxyProtocol definition_proxy_protocol(const Definition *d, uint16_t public_port);
/* Exit server: whether AllowForwardTo= lets a client's LocalForward= reach host:port (host a
 * name or a numeric address without brackets). */
bool definition_forward_allowed(const Definition *d, const char *host, uint16_t port);
/* The host a TCP-mode port's connections go to: its own, else Upstream=. */
const char *port_map_host(const Definition *d, const PortMap *p);
