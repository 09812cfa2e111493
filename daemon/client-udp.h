// SPDX-License-Identifier: LGPL-2.1-or-later
/* The tunnel client's UDP flows (UDPPorts=): each CONNECT-UDP stream the exit server opens gets
 * a socket of its own, connected to the upstream its public port maps to, and carries the flow's
 * datagrams both ways in DATAGRAM capsules (docs/protocol.md, "UDP streams"). */
#pragma once

#include "manager.h"
#include "mux.h"
#include "socket-util.h"

typedef struct ClientUdp ClientUdp;

int client_udp_new(Manager *m, ClientUdp **ret);
ClientUdp *client_udp_free(ClientUdp *u);

/* Answers stream s, a CONNECT-UDP request (its ops are set here): 200 and a flow to upstream,
 * or status (403: not a port of UDPPorts=, or the lists refuse the visitor; 502: no address for
 * the upstream yet) with nothing carried. */
void client_udp_accept(ClientUdp *u, MuxStream *s, const SocketAddress *upstream);
void client_udp_refuse(ClientUdp *u, MuxStream *s, unsigned status);
/* Every flow ends (the session went). */
void client_udp_flows_end(ClientUdp *u);
