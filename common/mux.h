// SPDX-License-Identifier: LGPL-2.1-or-later
/* The tunnel session: HTTP/2 (nghttp2) inside WebSocket binary frames on a TlsConn, with
 * reversed roles: the exit server is the HTTP/2 client and opens one CONNECT stream per
 * public connection; the tunnel client is the HTTP/2 server and answers each by dialling its
 * upstream. Every stream is a socket pumped both ways with HTTP/2 flow control, so a slow
 * socket stalls only its own stream. */
#pragma once

#include <systemd/sd-event.h>

#include "tls.h"

typedef struct Mux Mux;
typedef struct MuxStream MuxStream;

typedef struct MuxCallbacks {
        /* Tunnel client: a CONNECT request arrived. Answer with mux_stream_accept() or
         * mux_stream_refuse(), now or later. */
        void (*stream_request)(Mux *m, MuxStream *s, const char *authority, void *userdata);
        /* A stream is gone; its counters are final. */
        void (*stream_closed)(Mux *m, MuxStream *s, void *userdata);
        /* The session ended (error < 0, or 0 for an orderly end). Called from the event loop,
         * never from inside another mux call, so the callee may mux_free(m). */
        void (*closed)(Mux *m, int error, const char *reason, void *userdata);
        /* A control message (a WebSocket text message, see docs/protocol.md). */
        void (*control)(Mux *m, const char *message, void *userdata);
} MuxCallbacks;

typedef struct MuxConfig {
        bool h2_client;            /* exit server */
        bool ws_client;            /* tunnel client: masks its frames */
        uint64_t max_frame_size;   /* WebSocket frame/message limit */
        unsigned max_streams;
        uint64_t keepalive_usec;
} MuxConfig;

typedef struct MuxStats {
        uint64_t bytes_in;   /* from the tunnel to sockets */
        uint64_t bytes_out;  /* from sockets into the tunnel */
        unsigned active_streams;
        uint64_t total_streams;
} MuxStats;

/* Takes ownership of conn. `initial` holds plaintext already read past the upgrade head. */
int mux_new(sd_event *e, TlsConn *conn, const MuxConfig *cfg, const uint8_t *initial, size_t n_initial,
            const MuxCallbacks *cb, void *userdata, Mux **ret);
Mux *mux_free(Mux *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Mux *, mux_free);

/* Exit server: a public connection (fd is taken over) becomes a CONNECT stream. */
int mux_open_stream(Mux *m, int fd, const char *authority, const char *peer, void *userdata, MuxStream **ret);

/* Tunnel client: the connected upstream socket for s (fd taken over). After a refusal or
 * when the stream was reset meanwhile, the stream is gone: don't touch s again. */
int mux_stream_accept(MuxStream *s, int fd);
void mux_stream_refuse(MuxStream *s, bool connect_error);
void mux_stream_set_userdata(MuxStream *s, void *userdata);
const char *mux_stream_authority(MuxStream *s);

/* Ends the session politely (GOAWAY, WebSocket close, close_notify); closed() follows. */
void mux_shutdown(Mux *m, int ws_code);

void mux_get_stats(Mux *m, MuxStats *ret);
void *mux_stream_userdata(MuxStream *s);
void mux_stream_get(MuxStream *s, uint64_t *ret_in, uint64_t *ret_out, const char **ret_peer);
int mux_stream_id(MuxStream *s);

typedef struct MuxStreamInfo {
        int id;
        const char *authority;  /* exit server: public address; tunnel client: as asked */
        const char *peer;       /* public peer address */
        uint64_t bytes_in, bytes_out;
        uint64_t created;       /* CLOCK_MONOTONIC µs */
        void *userdata;
        MuxStream *stream;
} MuxStreamInfo;

void mux_foreach_stream(Mux *m, void (*f)(const MuxStreamInfo *info, void *userdata), void *userdata);
/* No new streams from the peer (HTTP/2 GOAWAY, graceful); the live ones carry on. */
void mux_goaway(Mux *m);

/* Sends a control message (one line of text, at most WS_TEXT_MAX bytes). */
int mux_send_control(Mux *m, const char *message);
/* Resets one stream (RST_STREAM CANCEL, socket reset). Safe inside mux_foreach_stream(). */
void mux_stream_reset(MuxStream *s);

/* Ends the session at once (reset), as if the peer had gone; closed() follows. */
void mux_abort(Mux *m, const char *reason);
