// SPDX-License-Identifier: LGPL-2.1-or-later
/* The tunnel session: HTTP/2 (nghttp2) inside WebSocket binary frames on a TlsConn, with
 * reversed roles: the exit server is the HTTP/2 client and opens one CONNECT stream per
 * public connection; the tunnel client is the HTTP/2 server and answers each by dialling its
 * upstream. Every stream is a socket pumped both ways with HTTP/2 flow control, so a slow
 * socket stalls only its own stream. */
#pragma once

#include <systemd/sd-event.h>

#include "handover.h"
#include "http1.h"
#include "macro.h"
#include "tls.h"

typedef struct Mux Mux;
typedef struct MuxStream MuxStream;

/* HTTP mode: a message stream has no socket; its owner is the endpoint. The head callback
 * brings the response (exit server); data brings body bytes, which the owner acknowledges
 * with mux_stream_consume() once it has passed them on (that reopens the window; until then
 * they count against the session's buffer budget); end brings the end of the body and any
 * trailers. closed comes last, exactly once, also when the session dies; after it the stream
 * is gone. On the exit server a stream that ended cleanly is closed only once its owner has
 * consumed all it was handed (or reset it, or detached with mux_stream_set_ops(s, NULL, NULL),
 * which gives up what is unconsumed). Callbacks may call mux_stream_* functions but must not
 * free the Mux. sent (optional) says that n body bytes given with mux_stream_write() went into
 * the tunnel: the owner may let its peer send as many more. It comes from inside the session's
 * output, so it must not call mux_* functions. */
typedef struct MuxStreamOps {
        void (*head)(MuxStream *s, HttpHead *h, void *userdata);     /* h passes to the callee */
        void (*data)(MuxStream *s, const uint8_t *p, size_t n, void *userdata);
        void (*end)(MuxStream *s, HttpHead *trailers, void *userdata); /* trailers may be NULL */
        void (*writable)(MuxStream *s, void *userdata);
        void (*sent)(MuxStream *s, size_t n, void *userdata);
        void (*closed)(MuxStream *s, bool reset, void *userdata);
} MuxStreamOps;

typedef struct MuxCallbacks {
        /* Tunnel client: a CONNECT request arrived. Answer with mux_stream_accept() or
         * mux_stream_refuse(), now or later. */
        void (*stream_request)(Mux *m, MuxStream *s, const char *authority, void *userdata);
        /* Tunnel client, HTTP mode: a request (or an extended CONNECT carrying :protocol)
         * arrived; h passes to the callee. Call mux_stream_set_ops() at once, then answer with
         * mux_respond() or mux_stream_reset(). */
        void (*http_request)(Mux *m, MuxStream *s, HttpHead *h, bool end_stream, void *userdata);
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
        unsigned max_streams;      /* exit server: streams it opens at most (-EBUSY beyond);
                                    * tunnel client: SETTINGS_MAX_CONCURRENT_STREAMS */
        uint64_t keepalive_usec;
        bool resumable;            /* both ends agreed to resume (docs/protocol.md) */
        Mux *predecessor;          /* tunnel client: see mux_set_predecessor() */
} MuxConfig;

/* Bytes a session holds in stream buffers for sockets (or, HTTP mode, handed to owners) before
 * it stops giving the peer window: the budget the metrics show beside what is held. */
#define MUX_SESSION_BUFFER_BUDGET ((size_t) 128 << 20)

typedef struct MuxStats {
        uint64_t bytes_in;   /* from the tunnel to sockets */
        uint64_t bytes_out;  /* from sockets into the tunnel */
        unsigned active_streams;
        uint64_t total_streams;
        size_t held;         /* buffered now, against MUX_SESSION_BUFFER_BUDGET */
        size_t retained;     /* resumable sessions: sent, not acknowledged yet */
        uint64_t resumed_streams; /* streams this session took over from a lost one */
        uint64_t resent_bytes;    /* ... and the bytes it sent again for them */
} MuxStats;

/* Takes ownership of conn. `initial` holds plaintext already read past the upgrade head. */
int mux_new(sd_event *e, TlsConn *conn, const MuxConfig *cfg, const uint8_t *initial, size_t n_initial,
            const MuxCallbacks *cb, void *userdata, Mux **ret);
/* From closed() or outside every mux call; never from another callback (asserted). After
 * closed(), freeing is all that is left to do with m. */
Mux *mux_free(Mux *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Mux *, mux_free);

/* Exit server: a public connection (fd is taken over) becomes a CONNECT stream. */
int mux_open_stream(Mux *m, int fd, const char *authority, const char *peer, void *userdata, MuxStream **ret);

/* Exit server: the socket fd (taken over), connected to target ("HOST:PORT") for a tunnel
 * client's LocalForward=, becomes a CONNECT stream carrying x-inlets-forward: forward (the id
 * the client gave in its "forward" control message; docs/protocol.md). */
int mux_open_forward(Mux *m, int fd, const char *target, uint32_t forward, void *userdata, MuxStream **ret);
/* Tunnel client: the x-inlets-forward of a CONNECT stream: 0 none (a public connection),
 * UINT32_MAX a malformed one. */
uint32_t mux_stream_forward(MuxStream *s);

/* Tunnel client: the connected upstream socket for s (fd taken over). After a refusal or
 * when the stream was reset meanwhile, the stream is gone: don't touch s again. */
int mux_stream_accept(MuxStream *s, int fd);
void mux_stream_refuse(MuxStream *s, bool connect_error);
void mux_stream_set_userdata(MuxStream *s, void *userdata);
const char *mux_stream_authority(MuxStream *s);

/* HTTP mode. Exit server: opens a request stream (h: method, url as :path, authority,
 * scheme, protocol, headers; hop-by-hop fields are the caller's to remove). */
int mux_request(Mux *m, const HttpHead *h, bool end_stream, const char *peer, const MuxStreamOps *ops,
                void *userdata, MuxStream **ret);
void mux_stream_set_ops(MuxStream *s, const MuxStreamOps *ops, void *userdata);
/* Tunnel client: the response head. */
int mux_respond(MuxStream *s, unsigned status, const HttpHeader *headers, size_t n_headers, bool end_stream);
/* Queues body bytes (all of them). Returns 1 when the stream holds enough, or (exit server)
 * when all message streams of the session together do: stop reading until the writable
 * callback. */
int mux_stream_write(MuxStream *s, const void *p, size_t n);
/* Whether the stream already holds enough (then the writable callback follows). */
bool mux_stream_full(MuxStream *s);
/* The body is complete; trailers optional. */
int mux_stream_end(MuxStream *s, const HttpHeader *trailers, size_t n_trailers);
/* n bytes from the data callback went on their way. */
void mux_stream_consume(MuxStream *s, size_t n);

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
/* Resets one stream (RST_STREAM CANCEL, socket reset). Safe inside mux_foreach_stream(). A
 * message stream's closed callback is not called for a reset its owner asked for. */
void mux_stream_reset(MuxStream *s);

/* Ends the session at once (reset), as if the peer had gone; closed() follows. */
void mux_abort(Mux *m, const char *reason);

/* Resumption (cfg.resumable; docs/protocol.md, "Resuming a session"). Each CONNECT stream has
 * a number (x-inlets-stream) and keeps what it sent until the peer acknowledges it ("ack"
 * control messages, which the Mux handles itself). A session that died (closed() called, not
 * freed) holds its streams' sockets, unread, with their buffers: */
/* How many of the dead session's connections could resume; *ret_ended: how many more streams,
 * already closed, wait only to send their end again (worth holding the session for too). */
unsigned mux_resumable_streams(Mux *m, unsigned *ret_ended);
/* Exit server: moves old's resumable streams into m, a new session of the same client, and asks
 * the client to resume each (their userdata becomes userdata). old keeps the rest; free it
 * after. Returns how many were moved. */
unsigned mux_adopt(Mux *m, Mux *old, void *userdata);
/* Tunnel client: the exit server's resume requests on m claim old's streams (NULL: none). Set
 * it to NULL before freeing old. */
void mux_set_predecessor(Mux *m, Mux *old);

/* Restarts (systemd's file descriptor store): a session to resume is handed to the next
 * process. mux_sever() ends a live one as a crash would (a reset, nothing sent: its peer holds
 * it and resumes); mux_save() writes a dead session's streams to f and appends their sockets to
 * *fds, for the caller to pass on, then mux_forget_sockets() closes ours without a reset.
 * mux_load() reads them back into a dead Mux for mux_adopt(), taking the sockets it uses from
 * fds (set to -1; the caller closes the rest). */
void mux_sever(Mux *m);
bool mux_is_dead(Mux *m);
/* Whether a WebSocket frame came from the peer: the exit server knows then that the client
 * read the 101 (and the resumption credentials in it). */
bool mux_heard(Mux *m);
/* Tunnel client, a restart while a session resumed: the streams its predecessor old still
 * holds (not claimed yet, or kept for their end) join dead m, to be saved with it. */
void mux_absorb(Mux *m, Mux *old);
int mux_save(Mux *m, FILE *f, int **fds, size_t *n_fds);
void mux_forget_sockets(Mux *m);
int mux_load(sd_event *e, const MuxConfig *cfg, HandoverReader *r, int *fds, size_t n_fds, Mux **ret);
