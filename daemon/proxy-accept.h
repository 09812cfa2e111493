// SPDX-License-Identifier: LGPL-2.1-or-later
/* AcceptProxyProtocol= (public ports and HTTP ports) and ControlAcceptProxyProtocol= (the
 * control port): connections from trusted load balancers start with a PROXY header (v1 or v2)
 * naming the visitor; the connection then goes on as if the visitor had made it. Connections
 * from any other source never have a byte read here. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "manager.h"
#include "ratelimit.h"
#include "socket-util.h"

/* Connections that may wait for their header at once, per gate: beyond it the oldest goes. */
#define PROXY_WAIT_MAX 256

/* A connection ready to serve: peer is the visitor (the header's source, or the connection's
 * own peer when the header names none or it came from an untrusted source); via_proxy is true
 * when it came from a trusted load balancer. The header's destination (the balancer's own
 * address) is not passed on: the public address of a stream stays the exit server's port,
 * which is what the tunnel client routes by. */
typedef int (*proxy_accept_func_t)(int cfd, const SocketAddress *peer, bool via_proxy, void *userdata);

typedef struct ProxyWait ProxyWait;

typedef struct ProxyGate {
        Manager *manager;
        const char *what;        /* for messages: "Port 3389", "HTTP port", "Control port" */
        bool control;            /* ControlAcceptProxyProtocol= instead of AcceptProxyProtocol= */
        proxy_accept_func_t next;
        void *userdata;
        uint64_t *refused;       /* counts connections closed for a missing or malformed header */
        ProxyWait *waits;        /* newest first */
        unsigned n_waits;
        RateLimit log;
} ProxyGate;

void proxy_gate_init(ProxyGate *g, Manager *m, const char *what, bool control, uint64_t *refused,
                     proxy_accept_func_t next, void *userdata);
/* Closes the connections still waiting for their header. */
void proxy_gate_done(ProxyGate *g);
/* accept_batch()'s callback, userdata the ProxyGate: a connection from a source in the gate's
 * list (read from the definition now, so a reload applies to the next one)
 * waits for its header, at most HandshakeTimeoutSec=; any other goes to next at once. */
int proxy_gate_accept(int cfd, const SocketAddress *peer, void *userdata);
