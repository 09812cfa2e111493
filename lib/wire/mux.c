// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP/2-over-WebSocket tunnel sessions; see mux.h.
 *
 * Data path, socket to tunnel: recv() into the stream's buffer; nghttp2 asks how much to send
 * (read_length callback lets DATA frames grow to 1 MiB) and, with NO_COPY, hands us the 9-byte
 * frame header; we write WebSocket header + frame header + payload straight from the stream's
 * buffer into TLS. Tunnel to socket: payload arrives in decrypted records, which are held
 * for the read batch; each stream's chunks then go to its socket in one writev() straight
 * from them (small chunks outside a batch are send() at once); only what the socket does
 * not take is copied, and the stream's window reopens (nghttp2_session_consume_stream) as
 * that drains. The connection window is consumed at once, so a stalled socket never holds
 * back the other streams -- until the session holds SESSION_BUFFER_BUDGET bytes for sockets
 * that do not read: then it is consumed only as they drain, which bounds what one session can
 * make the process hold (budget + one window). In a resumable session a CONNECT stream keeps
 * what it sent until the peer acknowledges it, where it is: a read buffer whose front is still
 * needed is set aside whole (Kept) and the stream reads on into another, from a small pool, so
 * keeping costs no copy and no fresh pages. Message streams (HTTP mode) count the same
 * way: what their owner was handed is held until it says it passed it on (mux_stream_consume);
 * on the exit server a stream that ended cleanly on HTTP/2 stays until then, so neither a
 * public front's buffer nor a slot of max_streams comes free early. Stream sockets are
 * edge-triggered (see STREAM_EVENTS). */

#include <assert.h>
#include <gnutls/crypto.h>
#include <inttypes.h>
#include <nghttp2/nghttp2.h>
#include <stdarg.h>
#include <stdio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "buffer.h"
#include "log.h"
#include "macro.h"
#include "mux.h"
#include "resume.h"
#include "socket-util.h"
#include "time-util.h"
#include "ws.h"

#define STREAM_READ_SIZE (256 * 1024)
#define STREAM_READ_FIRST (16 * 1024)  /* what an idle or chatty connection needs */
#define H2_MAX_FRAME (1024 * 1024)
#define H2_WINDOW (16 * 1024 * 1024)
#define SESSION_BUFFER_BUDGET MUX_SESSION_BUFFER_BUDGET
#define OUT_HIGH_WATER (1024 * 1024)
#define TLS_RECORD 16384
#define CORK_MIN 4096                 /* tunnel-to-socket chunks this large are corked */
#define MUX_BATCH_MAX 64
#define MSG_HIGH_WATER (256 * 1024)   /* message streams: ask the owner to stop */
#define MSG_LOW_WATER (64 * 1024)     /* ... and to go on */
/* Exit server: request body bytes all message streams of a session may queue for the tunnel.
 * Past it every owner hears "full" (and stops taking from its peer) until the queue drains
 * below MSG_SESSION_LOW: without it each public stream could queue its own share, and a
 * tunnel that takes nothing made the process hold MaxStreamsPerClient= times that. */
#define MSG_SESSION_BUDGET ((size_t) 16 << 20)
#define MSG_SESSION_LOW ((size_t) 12 << 20)
#define MSG_MAX_HEADERS 256
#define MSG_MAX_HEADER_BYTES (64 * 1024)
/* Resumption: a receiver acknowledges a stream's bytes as it writes them to the stream's
 * socket, every ACK_EVERY (and all on the keepalive timer); a sender keeps what is not
 * acknowledged, and stops reading a socket while its stream keeps RETAIN_STREAM_MAX or the
 * session RETAIN_SESSION_MAX. What a receiver holds unwritten is not acknowledged: a
 * resumption drops it and the sender sends it again, so no buffer outlives its window. */
#define ACK_EVERY (256 * 1024)
#define RETAIN_STREAM_MAX ((size_t) 8 << 20)
#define RETAIN_SESSION_MAX ((size_t) 64 << 20)
/* Read buffers kept buffers give back, for the next: fresh memory costs a page fault a page. */
#define POOL_MAX 32
#define KEY_BUCKETS 256           /* numbered streams by key, for acknowledgments */
/* Streams closed both ways whose end the peer has not acknowledged yet, kept to send it again
 * (a peer acknowledges an end at once: only one that does not keeps many). */
#define ENDED_MAX 1024

/* An old read buffer a resumable stream keeps for the bytes [off, off + len) it sent from it. */
typedef struct Kept {
        struct Kept *next;
        uint8_t *buf;
        size_t cap, off, len;
} Kept;

struct MuxStream {
        Mux *mux;
        MuxStream *prev, *next;
        int32_t id;          /* -1 once the HTTP/2 stream is closed */
        int fd;
        sd_event_source *io;
        bool aborted;        /* reset: drop whatever still arrives */
        bool corked;         /* written with MSG_MORE in this read batch, not pushed yet */
        bool responded;      /* tunnel client: 200 sent; exit server: 200 received */
        bool reading;        /* may read from the socket */
        EdgeInput redge;     /* edge-triggered: the socket may hold bytes */
        bool wready;         /* ... it may take bytes */
        bool rearmed;        /* asked epoll to report the socket again */

        uint8_t *rbuf;       /* socket -> tunnel */
        size_t roff, rlen;
        bool read_eof, deferred, grow;

        uint8_t *wbuf;       /* tunnel -> socket, only what send() did not take */
        size_t woff, wlen, wcap;
        size_t batched;      /* bytes in m->batch, still in the records they came in */
        bool remote_eof, wr_shut;

        uint64_t bytes_in, bytes_out, created;
        char *authority, *peer, *method;
        uint32_t forward;        /* x-inlets-forward (tunnel client); UINT32_MAX: not a valid one */
        void *userdata;

        /* Message streams (HTTP mode): no fd; the owner is the endpoint. */
        bool message, want_writable, notify_writable, no_body;
        bool finish_pending;     /* closed on HTTP/2; waits for the owner to consume msg_held */
        size_t msg_held;         /* handed to the owner, not consumed yet (in m->held) */
        const MuxStreamOps *ops;
        size_t rcap;
        HttpHead *head;          /* the head (or trailers) being received */
        HttpHead *trailers;      /* ours, to send after the body */
        uint32_t close_error;

        /* Resumption (cfg.resumable, CONNECT streams): */
        uint64_t key;            /* x-inlets-stream: the exit server's number for it; 0 none */
        MuxStream *key_next;     /* in m->by_key[key % KEY_BUCKETS] */
        uint64_t recv;           /* bytes that came from the tunnel, ever (stream_delivered()) */
        uint64_t recv_acked;     /* ... written to the socket, as our last "ack" said */
        /* Sent and not acknowledged: stream bytes [ubase, ubase + ulen), in place, no copy: the
         * kept buffers (old rbufs, oldest first), then rbuf[roff - rkeep, roff). */
        Kept *kept, *kept_tail;
        size_t rkeep, ulen;
        uint64_t ubase;
        size_t resend;           /* the last `resend` of those bytes go again before rbuf's */
        uint64_t peer_recv;      /* x-inlets-resume: what the peer had of ours */
        bool resuming;           /* tunnel client: a resume request; exit server: waits for its answer */
        bool has_peer_recv;
        /* The end of a numbered stream counts as one more byte (as a FIN takes a sequence
         * number): recv includes the end received, an ack of ubase + ulen + 1 says ours arrived. */
        bool end_sent, end_recv, end_acked;
        bool ended;              /* in m->ended: closed on both layers, kept for its end */
        bool reported;           /* the owners heard it closed */
        bool handed;             /* written by mux_save(): its socket went to the next process */
};

struct Mux {
        sd_event *event;
        sd_event_source *io, *timer, *defer, *kick;
        TlsConn *conn;
        nghttp2_session *h2;
        WsParser ws;
        MuxConfig cfg;
        const MuxCallbacks *cb;
        void *userdata;

        MuxStream *streams;
        unsigned n_streams;
        bool any_corked, any_writable, any_finish;
        size_t held;          /* bytes in stream buffers waiting for their sockets */
        size_t msg_queued;    /* message streams: body bytes in rbuf, waiting for the tunnel */
        bool msg_waiting;     /* owners were told "full" because of msg_queued */
        size_t conn_owed;     /* connection window not yet given back (over the budget) */
        uint64_t total_streams, bytes_in, bytes_out;
        /* Resumption */
        uint64_t next_key;       /* exit server: the last x-inlets-stream given */
        size_t retained;         /* all streams' ulen */
        bool any_ack;            /* a stream got ACK_EVERY since its last ack */
        bool heard;              /* a WebSocket frame came from the peer */
        Mux *predecessor;        /* tunnel client: the lost session whose streams may resume */
        MuxStream *by_key[KEY_BUCKETS];
        MuxStream *ended;        /* streams closed, kept until the peer has their end (newest first) */
        unsigned n_ended;
        bool ended_warned;
        uint8_t *pool[POOL_MAX]; /* free STREAM_READ_SIZE buffers (emptied when unused a tick) */
        unsigned n_pool;
        bool pool_used;
        uint64_t resumed, resent;
        uint64_t last_rx;
        bool ping_outstanding;

        bool dead, close_sent, draining;
        bool finished;           /* the owner heard closed(): all it may do now is free us */
        unsigned in_callback;    /* depth of calls into the owners: none may free the Mux */
        char text[WS_TEXT_MAX + 1];
        size_t text_len;
        int error;
        char reason[160];
        uint8_t scratch[TLS_RECORD];
        uint8_t key_pool[256];   /* WebSocket masking keys not used yet */
        size_t key_off;

        /* Tunnel-to-socket data of one read batch, pointing into the decrypted records
         * (tls_conn_hold): written with one writev() per stream at the end of the batch. */
        bool batching;
        unsigned n_batch;
        struct { MuxStream *s; const uint8_t *p; size_t n; } batch[MUX_BATCH_MAX];
};

/* Every call into an owner is counted: an owner must not free the Mux from one (mux_free()
 * asserts it), as we go on using it when the call returns. closed() is the exception: it
 * comes from the loop, outside every other call. */
#define CALL_OWNER(m, call)                     \
        do {                                    \
                (m)->in_callback++;             \
                call;                           \
                (m)->in_callback--;             \
        } while (0)

static void mux_fail(Mux *m, int error, const char *format, ...) _printf_(3, 4);
static void mux_claim(Mux *m, MuxStream *p);
static void stream_move(Mux *from, Mux *to, MuxStream *s);
static void ended_free(MuxStream *s);
static void mux_pump(Mux *m);
static void mux_flush_batch(Mux *m);

/* Bytes a stream buffer took (n > 0) or let go: the connection window follows the budget. */
static void held_add(Mux *m, size_t n) {
        m->held += n;
        if (m->held > SESSION_BUFFER_BUDGET)
                m->conn_owed += n;
        else
                (void) nghttp2_session_consume_connection(m->h2, n);
}

static void held_sub(Mux *m, size_t n) {
        m->held -= MIN(n, m->held);
        if (m->conn_owed > 0 && m->held <= SESSION_BUFFER_BUDGET) {
                (void) nghttp2_session_consume_connection(m->h2, m->conn_owed);
                m->conn_owed = 0;
        }
}

/* A message stream's owner is done with what it was handed (reset, detached, or gone). */
static void stream_release_message(MuxStream *s) {
        if (s->msg_held > 0 && !s->mux->dead)
                held_sub(s->mux, s->msg_held);
        s->msg_held = 0;
}
static void mux_finish(Mux *m);
static void mux_drain(Mux *m);
static void mux_kick(Mux *m);

/* Whether a message stream holds enough for now; if so its owner hears (writable) when that
 * changes. */
static bool msg_full(MuxStream *s) {
        Mux *m = s->mux;

        if (s->rlen >= MSG_HIGH_WATER) {
                s->want_writable = true;
                return true;
        }
        if (m->cfg.h2_client && m->msg_queued >= MSG_SESSION_BUDGET) {
                s->want_writable = true;
                m->msg_waiting = true;
                return true;
        }
        return false;
}

/* n bytes of a message stream's rbuf left it (sent, or dropped): owners waiting for the
 * session's queue to drain may go on. */
static void msg_dequeued(Mux *m, size_t n) {
        m->msg_queued -= MIN(n, m->msg_queued);
        if (!m->msg_waiting || m->msg_queued >= MSG_SESSION_LOW || m->dead)
                return;
        m->msg_waiting = false;
        for (MuxStream *s = m->streams; s; s = s->next)
                if (s->want_writable && s->rlen < MSG_LOW_WATER) {
                        s->want_writable = false;
                        s->notify_writable = true;
                        m->any_writable = true;
                }
        if (m->any_writable)
                mux_kick(m);
}

/* A message stream's queued body bytes will never be sent (reset, or gone). */
static void msg_drop_queued(MuxStream *s) {
        if (!s->message || s->rlen == 0)
                return;
        size_t n = s->rlen;
        s->rlen = s->roff = 0;
        msg_dequeued(s->mux, n);
}

/* Runs mux_pump() from the loop: for calls from the owners of message streams, which may be
 * inside one of our callbacks. */
static void mux_kick(Mux *m) {
        if (!m->dead && m->kick)
                (void) sd_event_source_set_enabled(m->kick, SD_EVENT_ONESHOT);
}

/* ---- WebSocket output ---- */

static void ws_key(Mux *m, uint8_t key[4]) {
        /* RFC 6455 wants an unpredictable key per frame: from GnuTLS's nonce generator, 64
         * keys per call (a call per small frame was 1 % of the tunnel client's CPU in HTTP
         * mode). Keys are used once; the pool never leaves the process. */
        if (m->key_off + 4 > sizeof(m->key_pool)) {
                (void) gnutls_rnd(GNUTLS_RND_NONCE, m->key_pool, sizeof(m->key_pool));
                m->key_off = 0;
        }
        memcpy(key, m->key_pool + m->key_off, 4);
        m->key_off += 4;
}

/* One WebSocket frame: header, then prefix (small, copied), then payload. A mutable payload
 * is masked in place (the caller owns and discards it); a const one is copied in chunks when
 * it must be masked. The first record carries the headers and the start of the payload, so
 * no tiny records go out. */
static int ws_send(Mux *m, WsOpcode op, const uint8_t *prefix, size_t plen, uint8_t *payload,
                   const uint8_t *cpayload, size_t len) {
        uint8_t key[4], *stage = m->scratch;
        const uint8_t *src = payload ?: cpayload;
        bool mask = m->cfg.ws_client;
        size_t h, first, off;
        int r;

        if (mask)
                ws_key(m, key);
        h = ws_header_build(stage, op, plen + len, mask ? key : NULL);
        if (plen > 0)
                memcpy(stage + h, prefix, plen);
        first = MIN(len, sizeof(m->scratch) - h - plen);
        if (mask) {
                ws_mask(stage + h, plen, key, 0);
                ws_mask_to(stage + h + plen, src, first, key, plen);
        } else if (first > 0)
                memcpy(stage + h + plen, src, first);
        r = tls_conn_send(m->conn, stage, h + plen + first);
        if (r < 0)
                return r;

        for (off = first; off < len;) {
                size_t n = len - off;
                if (!mask) {
                        r = tls_conn_send(m->conn, src + off, n);
                } else if (payload) {
                        ws_mask(payload + off, n, key, plen + off);
                        r = tls_conn_send(m->conn, payload + off, n);
                } else {
                        n = MIN(n, sizeof(m->scratch));
                        ws_mask_to(m->scratch, src + off, n, key, plen + off);
                        r = tls_conn_send(m->conn, m->scratch, n);
                }
                if (r < 0)
                        return r;
                off += n;
        }
        return 0;
}

static void ws_send_close(Mux *m, int code) {
        uint8_t b[2] = { (uint8_t) (code >> 8), (uint8_t) code };
        if (m->close_sent)
                return;
        m->close_sent = true;
        (void) ws_send(m, WS_OP_CLOSE, NULL, 0, NULL, b, 2);
}

/* ---- streams ---- */

/* Stream sockets are registered once, edge-triggered, for everything: no epoll_ctl() while a
 * connection lives (level-triggered registrations cost several per connection and a re-poll
 * of each ready socket on every loop iteration). redge and wready keep what the last edge
 * said until a read finds the socket drained or a write finds it full. */
#define STREAM_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

/* A resumable stream keeps what it sent until acknowledged: past the limits it stops reading. */
static bool stream_retains_enough(const MuxStream *s) {
        return s->key > 0 && (s->ulen >= RETAIN_STREAM_MAX || s->mux->retained >= RETAIN_SESSION_MAX);
}

static bool stream_wants_read(const MuxStream *s) {
        /* Room in rbuf, or a full one all sent and kept: stream_read() starts another. (Not while
         * some of it waits to be sent: a buffer set aside for a few kept bytes would hold its
         * whole size for them, a peer that takes little at a time could make us hold many.) */
        bool room = s->roff + s->rlen < MAX(s->rcap, (size_t) STREAM_READ_FIRST) || (s->rkeep > 0 && s->rlen == 0);
        return s->reading && !s->read_eof && room && s->id > 0 && !stream_retains_enough(s);
}

/* The stream may read again (room in its buffer, reading allowed) while the socket still holds
 * bytes: no new edge comes for those, so have epoll report the socket once more. */
static void stream_rearm(MuxStream *s) {
        if (s->io && s->redge.readable && !s->rearmed && stream_wants_read(s)) {
                s->rearmed = true;
                (void) sd_event_source_set_io_events(s->io, STREAM_EVENTS); /* EPOLL_CTL_MOD */
        }
}

/* ---- resumption: what a stream sent and the peer has not acknowledged ---- */

/* Numbered streams are found by key (an "ack" names up to a thousand of them: a walk of the
 * list for each made 4 KiB messages cost milliseconds, the outside review). */
static void key_insert(MuxStream *s, uint64_t key) {
        MuxStream **b = &s->mux->by_key[key % KEY_BUCKETS];
        s->key = key;
        s->key_next = *b;
        *b = s;
}

static void key_remove(MuxStream *s) {
        if (s->key == 0)
                return;
        for (MuxStream **p = &s->mux->by_key[s->key % KEY_BUCKETS]; *p; p = &(*p)->key_next)
                if (*p == s) {
                        *p = s->key_next;
                        break;
                }
        s->key_next = NULL;
}

static MuxStream *key_find(Mux *m, uint64_t key) {
        for (MuxStream *s = m->by_key[key % KEY_BUCKETS]; s; s = s->key_next)
                if (s->key == key)
                        return s;
        return NULL;
}

/* n bytes at rbuf + roff were sent: they stay where they are until acknowledged. */
static void retain_sent(MuxStream *s, size_t n) {
        s->rkeep += n;
        s->ulen += n;
        s->mux->retained += n;
}

static uint8_t *pool_get(Mux *m, size_t cap) {
        m->pool_used = true;
        if (cap == STREAM_READ_SIZE && m->n_pool > 0)
                return m->pool[--m->n_pool];
        return malloc(cap);
}

static void pool_put(Mux *m, uint8_t *buf, size_t cap) {
        if (cap == STREAM_READ_SIZE && m->n_pool < POOL_MAX)
                m->pool[m->n_pool++] = buf;
        else
                free(buf);
}

static void pool_drain(Mux *m) {
        while (m->n_pool > 0)
                free(m->pool[--m->n_pool]);
}

/* rbuf has no room left and its front is kept: it joins the kept buffers with what it keeps, and
 * a new rbuf takes what was read and not sent yet. */
static int retain_detach_rbuf(MuxStream *s, size_t new_cap) {
        Kept *k = new0(Kept, 1);
        uint8_t *t = pool_get(s->mux, new_cap);

        if (!k || !t || s->rlen > new_cap) {
                free(k);
                if (t)
                        pool_put(s->mux, t, new_cap);
                return -ENOMEM;
        }
        memcpy(t, s->rbuf + s->roff, s->rlen);
        *k = (Kept) { .buf = s->rbuf, .cap = s->rcap, .off = s->roff - s->rkeep, .len = s->rkeep };
        if (s->kept_tail)
                s->kept_tail->next = k;
        else
                s->kept = k;
        s->kept_tail = k;
        s->rbuf = t;
        s->rcap = new_cap;
        s->roff = 0;
        s->rkeep = 0;
        return 0;
}

/* Where the kept bytes from position pos (0: the first kept byte) are: a pointer and how many
 * follow it contiguously. */
static const uint8_t *retain_at(const MuxStream *s, size_t pos, size_t *ret_n) {
        for (const Kept *k = s->kept; k; k = k->next) {
                if (pos < k->len) {
                        *ret_n = k->len - pos;
                        return k->buf + k->off + pos;
                }
                pos -= k->len;
        }
        assert(pos < s->rkeep);
        *ret_n = s->rkeep - pos;
        return s->rbuf + s->roff - s->rkeep + pos;
}

static void retain_free(MuxStream *s) {
        while (s->kept) {
                Kept *k = s->kept;
                s->kept = k->next;
                pool_put(s->mux, k->buf, k->cap);
                free(k);
        }
        s->kept_tail = NULL;
        s->mux->retained -= MIN(s->ulen, s->mux->retained);
        s->ulen = s->rkeep = 0;
}

/* The peer has the stream's bytes up to offset: what is below goes. Returns false for an
 * offset outside what was sent (and not being sent again). */
static bool retain_ack(MuxStream *s, uint64_t offset) {
        Mux *m = s->mux;
        bool was_full = m->retained >= RETAIN_SESSION_MAX, stream_full = s->ulen >= RETAIN_STREAM_MAX;
        size_t drop;

        if (offset < s->ubase)
                return true; /* an older ack */
        if (s->end_sent && s->resend == 0 && offset - s->ubase == (uint64_t) s->ulen + 1) {
                s->end_acked = true; /* all of it, and its end */
                offset--;
        }
        if (offset - s->ubase > s->ulen - s->resend)
                return false;
        drop = (size_t) (offset - s->ubase);
        s->ulen -= drop;
        s->ubase = offset;
        m->retained -= MIN(drop, m->retained);
        while (drop > 0 && s->kept) {
                Kept *k = s->kept;
                size_t n = MIN(drop, k->len);
                k->off += n;
                k->len -= n;
                drop -= n;
                if (k->len == 0) {
                        s->kept = k->next;
                        if (!s->kept)
                                s->kept_tail = NULL;
                        pool_put(m, k->buf, k->cap);
                        free(k);
                }
        }
        assert(drop <= s->rkeep);
        s->rkeep -= drop;
        if (s->rkeep == 0 && s->rlen == 0)
                s->roff = 0; /* nothing in rbuf is needed any more: it starts over */
        if (was_full && m->retained < RETAIN_SESSION_MAX) {
                for (MuxStream *i = m->streams; i; i = i->next)
                        stream_rearm(i);
        } else if (stream_full)
                stream_rearm(s);
        return true;
}

/* Whether offset is one the peer may have of ours: from what we keep to its end. */
static bool retain_covers(const MuxStream *s, uint64_t offset) {
        return offset >= s->ubase && offset - s->ubase <= (uint64_t) s->ulen + (s->end_sent ? 1 : 0);
}

/* A resumed stream: the peer has our bytes up to offset, the rest of what we keep goes again. */
static bool retain_rewind(MuxStream *s, uint64_t offset) {
        if (!retain_covers(s, offset))
                return false;
        s->resend = 0;
        if (!retain_ack(s, offset))
                return false;
        s->resend = s->ulen;
        return true;
}

/* "ack KEY:OFFSET ...": streams whose bytes the peer has. */
static void mux_handle_ack(Mux *m, const char *p) {
        uint64_t key, off;
        int r;

        while ((r = resume_ack_next(&p, &key, &off)) > 0) {
                MuxStream *s = key > 0 ? key_find(m, key) : NULL;
                if (s && !retain_ack(s, off))
                        log_debug("Stream %d: acknowledgment of %" PRIu64 " bytes it was not sent: ignored.", s->id,
                                  off);
                else if (s && s->ended && s->end_acked)
                        ended_free(s);
        }
        if (r < 0)
                log_debug("Malformed acknowledgment from the peer: ignored from there on.");
}

/* What of the stream's bytes (its end counting as one) are written to its socket: all that
 * came, less what waits in its buffer or the read batch. Only that is acknowledged. */
static uint64_t stream_delivered(const MuxStream *s) {
        return s->recv - s->wlen - s->batched - (s->end_recv && !s->wr_shut ? 1 : 0);
}

/* Whether the stream has written ACK_EVERY since its last ack. */
static bool stream_ack_due(const MuxStream *s) {
        uint64_t done = stream_delivered(s);
        return s->key > 0 && done > s->recv_acked && done - s->recv_acked >= ACK_EVERY;
}

/* ... then mux_send_acks() says it. */
static void stream_note_delivered(MuxStream *s) {
        if (stream_ack_due(s))
                s->mux->any_ack = true;
}

/* Acknowledges what streams wrote: those past ACK_EVERY, or (all) every one with news. */
static void mux_send_acks(Mux *m, bool all) {
        char msg[WS_TEXT_MAX + 1];
        size_t o = 0;

        m->any_ack = false;
        if (!m->cfg.resumable || m->dead)
                return;
        for (MuxStream *s = m->streams; s; s = s->next) {
                uint64_t done = stream_delivered(s);
                char item[48];
                int k;

                if (s->key == 0 || done <= s->recv_acked || (!all && done - s->recv_acked < ACK_EVERY))
                        continue;
                k = snprintf(item, sizeof(item), " %" PRIu64 ":%" PRIu64, s->key, done);
                if (o > 0 && o + (size_t) k > WS_TEXT_MAX) {
                        (void) ws_send(m, WS_OP_TEXT, NULL, 0, NULL, (const uint8_t *) msg, o);
                        o = 0;
                }
                if (o == 0)
                        o = (size_t) snprintf(msg, sizeof(msg), "ack");
                memcpy(msg + o, item, (size_t) k);
                o += (size_t) k;
                s->recv_acked = done;
        }
        if (o > 0)
                (void) ws_send(m, WS_OP_TEXT, NULL, 0, NULL, (const uint8_t *) msg, o);
}

/* A numbered stream's end arrived: it counts as a byte, acknowledged once it is passed on
 * (stream_try_shutdown()). */
static void stream_end_received(MuxStream *s) {
        if (s->key == 0 || s->end_recv)
                return;
        s->end_recv = true;
        s->recv++;
}

/* The stream's end is written (SHUT_WR): acknowledged at once, with all before it (the sender
 * keeps the stream until then; ours may be gone before the next keepalive tick). */
static void stream_end_delivered(MuxStream *s) {
        Mux *m = s->mux;
        char msg[64];
        int k;

        if (s->key == 0 || !s->end_recv || !m->cfg.resumable || m->dead)
                return;
        k = snprintf(msg, sizeof(msg), "ack %" PRIu64 ":%" PRIu64, s->key, stream_delivered(s));
        (void) ws_send(m, WS_OP_TEXT, NULL, 0, NULL, (const uint8_t *) msg, (size_t) k);
        s->recv_acked = stream_delivered(s);
}

/* A resumed stream drops what it received and did not write (not acknowledged: the peer
 * sends it again), and its end if that is not written either: the new session's window is
 * all it will hold. Returns the offset to resume from. */
static uint64_t stream_drop_unwritten(MuxStream *s) {
        uint64_t done = stream_delivered(s);

        assert(s->batched == 0);
        if (s->wlen > 0) {
                held_sub(s->mux, s->wlen);
                s->wlen = s->woff = 0;
                s->wbuf = mfree(s->wbuf);
                s->wcap = 0;
        }
        if (!s->wr_shut) { /* (an RST_STREAM(NO_ERROR) set remote_eof without an end: review) */
                s->end_recv = false;
                s->remote_eof = false;
        }
        s->recv = s->recv_acked = done;
        return done;
}

/* A numbered stream whose socket is open resumes: both ends send again what the other lacks.
 * Also one already closed on HTTP/2 both ways that still writes what it holds to its socket:
 * its own tail and end may have been lost with the connection, and what it holds goes again
 * through the next session's window rather than be carried outside it (the outside review:
 * carried, such streams lost their tails, and grew a session's buffers a window per cut). */
static bool stream_resumable(const MuxStream *s) {
        return s->key > 0 && !s->message && !s->aborted && s->fd >= 0 && s->responded && s->batched == 0;
}

/* Forgets what a stream has in the batch: its socket is going. The connection window is
 * given back; the stream's own does not matter any more. */
static void stream_unbatch(MuxStream *s) {
        Mux *m = s->mux;

        if (s->batched == 0)
                return;
        for (unsigned i = 0; i < m->n_batch; i++)
                if (m->batch[i].s == s) {
                        m->batch[i].s = NULL;
                        if (!m->dead)
                                (void) nghttp2_session_consume_connection(m->h2, m->batch[i].n);
                }
        s->batched = 0;
}

static void stream_close_fd(MuxStream *s, bool reset) {
        stream_unbatch(s);
        s->io = sd_event_source_disable_unref(s->io);
        if (s->fd >= 0) {
                if (reset) {
                        struct linger l = { .l_onoff = 1, .l_linger = 0 };
                        (void) setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
                }
                s->fd = safe_close(s->fd);
        }
}

static MuxStream *stream_free(MuxStream *s) {
        if (!s)
                return NULL;
        if (s->wlen > 0 && !s->mux->dead)
                held_sub(s->mux, s->wlen);
        key_remove(s);
        retain_free(s);
        stream_release_message(s);
        msg_drop_queued(s);
        stream_close_fd(s, true);
        if (s->rbuf)
                pool_put(s->mux, s->rbuf, s->rcap);
        free(s->wbuf);
        free(s->authority);
        free(s->peer);
        free(s->method);
        http_head_free(s->head);
        http_head_free(s->trailers);
        free(s);
        return NULL;
}

/* A stream closed on both layers whose end may not have reached the peer: if the tunnel
 * connection is lost now, what it sent last goes again on the next (the peer's stream may
 * still be open, waiting for it). Kept, without socket or owner, until the peer acknowledges
 * the end; the oldest goes when a peer lets too many wait. */
static void stream_entomb(MuxStream *s) {
        Mux *m = s->mux;

        s->ended = true;
        /* Only what the peer may lack stays: the buffers go (a 256 KiB read buffer per kept
         * stream, counted nowhere, the outside review). */
        if (s->wlen == 0) {
                s->wbuf = mfree(s->wbuf);
                s->wcap = s->woff = 0;
        }
        if (s->rbuf && s->rkeep == 0 && s->rlen == 0) {
                pool_put(m, s->rbuf, s->rcap);
                s->rbuf = NULL;
                s->rcap = s->roff = 0;
        }
        LIST_PREPEND(m->ended, s);
        if (++m->n_ended > ENDED_MAX) {
                MuxStream *oldest = m->ended;
                while (oldest->next)
                        oldest = oldest->next;
                if (!m->ended_warned)
                        log_warning("The peer does not acknowledge the end of its streams: only the last %u are "
                                    "kept for a resumption.", ENDED_MAX);
                m->ended_warned = true;
                ended_free(oldest);
        }
}

static void ended_free(MuxStream *s) {
        Mux *m = s->mux;

        assert(s->ended);
        LIST_REMOVE(m->ended, s);
        m->n_ended--;
        stream_free(s);
}

/* Done with the stream on both layers: unlink, report, free (or keep for its end). */
static void stream_maybe_finish(MuxStream *s) {
        Mux *m;

        assert(s);
        m = s->mux;

        if (s->id > 0 || s->fd >= 0)
                return;
        if (s->message && s->ops && s->msg_held > 0 && s->close_error == NGHTTP2_NO_ERROR && m->cfg.h2_client &&
            !m->dead) {
                /* The owner (a public front) still passes on what it was handed, to a peer
                 * that may never read: the stream and its bytes count until it has
                 * (mux_stream_consume), or lets go of the stream. The tunnel client's owners
                 * write to configured upstreams; what they hold is released here. */
                s->finish_pending = true;
                return;
        }
        /* Nothing of the stream is left on either layer. */
        assert(!s->io);
        assert(s->batched == 0);
        assert(m->n_streams > 0);
        s->finish_pending = false;
        LIST_REMOVE(m->streams, s);
        m->n_streams--;
        if (s->ops) {
                const MuxStreamOps *ops = TAKE_PTR(s->ops);
                if (ops->closed)
                        CALL_OWNER(m, ops->closed(s, s->close_error != NGHTTP2_NO_ERROR, s->userdata));
        }
        if (s->message)
                s->userdata = NULL; /* the owner's, and gone now */
        if (m->cb->stream_closed && !s->reported)
                CALL_OWNER(m, m->cb->stream_closed(m, s, m->userdata));
        s->reported = true;
        s->userdata = NULL;
        if (s->key > 0 && s->end_sent && !s->end_acked && s->close_error == NGHTTP2_NO_ERROR && !s->aborted &&
            !m->dead)
                stream_entomb(s);
        else
                stream_free(s);
}

/* Local socket trouble: reset the stream on the wire and the socket at once. */
static void stream_abort(MuxStream *s, uint32_t h2_error) {
        Mux *m = s->mux;

        /* Closed on HTTP/2 already, there is no stream to reset: the peer, which keeps its side
         * until we acknowledge its end, hears that nothing more of it will be written (else a
         * visitor that resets such connections fills its list of kept streams: review). */
        if (s->key > 0 && s->id == -1 && s->end_recv && m->cfg.resumable && !m->dead) {
                char msg[64];
                int k = snprintf(msg, sizeof(msg), "ack %" PRIu64 ":%" PRIu64, s->key, s->recv);
                (void) ws_send(m, WS_OP_TEXT, NULL, 0, NULL, (const uint8_t *) msg, (size_t) k);
                s->recv_acked = s->recv;
        }
        s->aborted = true;
        held_sub(s->mux, s->wlen);
        s->wlen = 0;
        stream_release_message(s);
        msg_drop_queued(s);
        if (s->id > 0)
                (void) nghttp2_submit_rst_stream(s->mux->h2, NGHTTP2_FLAG_NONE, s->id, h2_error);
        stream_close_fd(s, true);
        /* The HTTP/2 close callback finishes the stream. */
}

/* Returns true when the stream was freed. */
static bool stream_try_shutdown(MuxStream *s) {
        if (s->wlen > 0 || s->batched > 0 || !s->remote_eof || s->fd < 0)
                return false;
        if (!s->wr_shut) {
                (void) shutdown(s->fd, SHUT_WR);
                s->wr_shut = true;
                stream_end_delivered(s);
        }
        /* Closed on HTTP/2 and drained: nothing more will ever cross this socket. */
        if (s->id < 0) {
                stream_close_fd(s, false);
                stream_maybe_finish(s);
                return true;
        }
        return false;
}

/* The stream has bytes (or its end) for nghttp2 again, after data_read_cb() deferred it. */
static void stream_resume_data(MuxStream *s) {
        if (s->deferred && s->id > 0) {
                s->deferred = false;
                (void) nghttp2_session_resume_data(s->mux->h2, s->id);
        }
}

/* Returns 1 when the stream was freed. */
static int stream_write(MuxStream *s) {
        Mux *m = s->mux;

        assert(s->fd >= 0);

        while (s->wlen > 0) {
                ssize_t n = send(s->fd, s->wbuf + s->woff, s->wlen, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                s->wready = false; /* EPOLLOUT comes when it has room */
                                break;
                        }
                        return -errno;
                }
                s->woff += (size_t) n;
                s->wlen -= (size_t) n;
                s->bytes_in += (size_t) n;
                m->bytes_in += (size_t) n;
                held_sub(m, (size_t) n);
                /* (A resumed stream starts with an empty buffer: what it holds came through
                 * this stream's window. One moved on closed has no window left.) */
                if (s->id > 0)
                        (void) nghttp2_session_consume_stream(m->h2, s->id, (size_t) n);
        }
        if (stream_ack_due(s))
                mux_send_acks(m, false);
        if (s->wlen == 0) {
                s->woff = 0;
                if (s->wcap <= STREAM_READ_FIRST) { /* as for rbuf: nothing held while idle */
                        s->wbuf = mfree(s->wbuf);
                        s->wcap = 0;
                }
        }
        return stream_try_shutdown(s) ? 1 : 0;
}

static int stream_read(MuxStream *s) {
        size_t want;
        ssize_t n;

        assert(s->fd >= 0);
        assert(!s->message);

        /* Buffers start small (most connections are idle or chatty) and grow to full size
         * the first time a read fills one: then it is a bulk transfer. */
        if (!s->rbuf) {
                s->rcap = s->grow ? STREAM_READ_SIZE : STREAM_READ_FIRST;
                s->grow = false;
                s->rbuf = malloc(s->rcap);
                if (!s->rbuf)
                        return -ENOMEM;
        } else if (s->rcap < STREAM_READ_SIZE && s->grow && s->rkeep > 0) {
                int r = retain_detach_rbuf(s, STREAM_READ_SIZE); /* the old one keeps sent bytes */
                if (r < 0)
                        return r;
                s->grow = false;
        } else if (s->rcap < STREAM_READ_SIZE && s->grow) {
                /* A fresh allocation, not realloc(): at this size glibc maps it on its own,
                 * which measured faster for bulk streams than a buffer grown in the heap. */
                uint8_t *t = pool_get(s->mux, STREAM_READ_SIZE);
                if (!t)
                        return -ENOMEM;
                memcpy(t, s->rbuf + s->roff, s->rlen);
                free(s->rbuf);
                s->rbuf = t;
                s->roff = 0;
                s->rcap = STREAM_READ_SIZE;
                s->grow = false;
        }
        if (s->rlen == 0 && s->rkeep == 0)
                s->roff = 0;
        if (s->roff + s->rlen >= s->rcap) {
                if (s->rkeep == 0 || s->rlen > 0)
                        return 0;
                /* Full, all sent and kept until acknowledged: a new buffer goes on. */
                int r = retain_detach_rbuf(s, s->rcap);
                if (r < 0)
                        return r;
        }
        want = s->rcap - s->roff - s->rlen;
        n = recv(s->fd, s->rbuf + s->roff + s->rlen, want, MSG_DONTWAIT);
        edge_input_read(&s->redge, n, want);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        if ((size_t) n == want && s->rcap < STREAM_READ_SIZE)
                s->grow = true; /* the socket had more: a bulk transfer */
        if (n == 0)
                s->read_eof = true;
        s->rlen += (size_t) n;
        stream_resume_data(s);
        return 0;
}

/* HTTP/2 field lines from an HttpHead: pseudo-header fields first, then the rest with
 * lower-case names; fields HTTP/2 forbids (RFC 9113 §8.2.2) are left out. */
typedef struct NvList {
        nghttp2_nv *nva;
        size_t n;
        char *names;
        char status[4];
} NvList;

static void nv_done(NvList *l) {
        free(l->nva);
        free(l->names);
}

static void nv_add(NvList *l, const char *name, size_t nl, const char *value) {
        l->nva[l->n++] = (nghttp2_nv) { (uint8_t *) name, (uint8_t *) value, nl, strlen(value), NGHTTP2_NV_FLAG_NONE };
}

static int nv_build(NvList *l, const HttpHead *h, unsigned status, const HttpHeader *hd, size_t n) {
        size_t total = 0, o = 0;

        *l = (NvList) {};
        for (size_t i = 0; i < n; i++)
                total += strlen(hd[i].name) + 1;
        l->nva = new0(nghttp2_nv, n + 6);
        l->names = malloc(total + 1);
        if (!l->nva || !l->names) {
                nv_done(l);
                return -ENOMEM;
        }
        if (h) {
                if (h->method)
                        nv_add(l, ":method", 7, h->method);
                if (h->protocol)
                        nv_add(l, ":protocol", 9, h->protocol);
                if (h->scheme)
                        nv_add(l, ":scheme", 7, h->scheme);
                if (h->authority)
                        nv_add(l, ":authority", 10, h->authority);
                if (h->url)
                        nv_add(l, ":path", 5, h->url);
        }
        if (status > 0) {
                snprintf(l->status, sizeof(l->status), "%03u", MIN(status, 999u));
                nv_add(l, ":status", 7, l->status);
        }
        for (size_t i = 0; i < n; i++) {
                char *lower = l->names + o;
                size_t nl = strlen(hd[i].name);
                for (size_t j = 0; j <= nl; j++)
                        lower[j] = (char) ascii_tolower(hd[i].name[j]);
                o += nl + 1;
                if (nl == 0 || streq(lower, "connection") || streq(lower, "keep-alive") ||
                    streq(lower, "proxy-connection") || streq(lower, "transfer-encoding") ||
                    streq(lower, "upgrade") || streq(lower, "host") ||
                    (streq(lower, "te") && !streq(hd[i].value, "trailers")))
                        continue;
                nv_add(l, lower, nl, hd[i].value);
        }
        return 0;
}

static void data_eof(MuxStream *s, uint32_t *data_flags) {
        NvList l;

        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (s->key > 0)
                s->end_sent = true; /* kept until acknowledged, as its bytes */
        if (!s->trailers || s->trailers->n_headers == 0)
                return;
        if (nv_build(&l, NULL, 0, s->trailers->headers, s->trailers->n_headers) < 0)
                return;
        if (l.n > 0 && nghttp2_submit_trailer(s->mux->h2, s->id, l.nva, l.n) == 0)
                *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nv_done(&l);
}

static ssize_t data_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                            uint32_t *data_flags, nghttp2_data_source *source, void *user_data) {
        MuxStream *s = source->ptr;
        size_t n;

        if (s->resuming) { /* exit server: until the client says where to go on from */
                s->deferred = true;
                return NGHTTP2_ERR_DEFERRED;
        }
        if (s->resend > 0) {
                size_t avail;
                (void) retain_at(s, s->ulen - s->resend, &avail);
                n = MIN(MIN(length, s->resend), avail);
                *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
                if (s->rlen == 0 && s->read_eof && n == s->resend)
                        data_eof(s, data_flags);
                return (ssize_t) n;
        }
        if (s->rlen == 0) {
                if (s->read_eof) {
                        data_eof(s, data_flags);
                        return 0;
                }
                s->deferred = true;
                return NGHTTP2_ERR_DEFERRED;
        }
        n = MIN(length, s->rlen);
        *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
        if (s->read_eof && n == s->rlen)
                data_eof(s, data_flags);
        return (ssize_t) n;
}

static int send_data_cb(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd, size_t length,
                        nghttp2_data_source *source, void *user_data) {
        Mux *m = user_data;
        MuxStream *s = source->ptr;
        int r;

        if (tls_conn_pending(m->conn) > OUT_HIGH_WATER)
                return NGHTTP2_ERR_WOULDBLOCK;
        if (s->resend > 0) { /* a resumed stream: what the peer lost goes again, from where it is kept */
                size_t avail;
                const uint8_t *p = retain_at(s, s->ulen - s->resend, &avail);
                assert(length <= avail);
                r = ws_send(m, WS_OP_BINARY, framehd, 9, NULL, p, length);
                if (r < 0)
                        return NGHTTP2_ERR_CALLBACK_FAILURE;
                s->resend -= length;
                m->resent += length;
                return 0;
        }
        /* A resumable stream keeps the bytes where they are until acknowledged: ws_send() must
         * not mask them in place (it masks a copy on its way into TLS). */
        if (s->key > 0)
                r = ws_send(m, WS_OP_BINARY, framehd, 9, NULL, s->rbuf + s->roff, length);
        else
                r = ws_send(m, WS_OP_BINARY, framehd, 9, s->rbuf + s->roff, NULL, length);
        /* A failed send: a resumable stream counts the bytes as sent (they go again if the peer
         * lacks them). */
        if (r < 0 && s->key == 0)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        s->roff += length;
        s->rlen -= length;
        if (s->key > 0)
                retain_sent(s, length);
        if (s->rlen == 0 && s->rkeep == 0) {
                s->roff = 0;
                if (s->rcap <= STREAM_READ_FIRST) {
                        /* A chatty or idle stream holds no buffer between messages: 10,000
                         * idle connections kept a page of each 16 KiB buffer resident. */
                        s->rbuf = mfree(s->rbuf);
                        s->rcap = 0;
                }
        }
        s->bytes_out += length;
        m->bytes_out += length;
        if (s->want_writable && s->rlen < MSG_LOW_WATER) {
                if (!m->cfg.h2_client || m->msg_queued - MIN(length, m->msg_queued) < MSG_SESSION_LOW) {
                        s->want_writable = false;
                        s->notify_writable = true;
                        m->any_writable = true;
                } else
                        m->msg_waiting = true; /* when the session's queue drains */
        }
        if (s->message) {
                msg_dequeued(m, length);
                if (s->ops && s->ops->sent)
                        CALL_OWNER(m, s->ops->sent(s, length, s->userdata));
        }
        if (r < 0)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        stream_rearm(s);
        return 0;
}

static ssize_t read_length_cb(nghttp2_session *session, uint8_t frame_type, int32_t stream_id,
                              int32_t session_remote_window_size, int32_t stream_remote_window_size,
                              uint32_t remote_max_frame_size, void *user_data) {
        int32_t w = MIN(session_remote_window_size, stream_remote_window_size);
        return MIN((ssize_t) w, (ssize_t) remote_max_frame_size);
}

/* Moves what it can between the socket and the stream's buffers: <0 on a socket error, 1 when
 * the stream was freed. */
static int stream_service(MuxStream *s) {
        int r;

        if (s->wlen > 0 && s->wready) {
                r = stream_write(s);
                if (r != 0)
                        return r;
        }
        if (s->redge.readable && stream_wants_read(s))
                return stream_read(s);
        return 0;
}

static int stream_handler(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        MuxStream *s = userdata;
        Mux *m = s->mux;
        int r;

        if (m->dead)
                return 0;
        s->rearmed = false;
        edge_input_event(&s->redge, revents);
        if (revents & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                s->wready = true;
        r = stream_service(s);
        if (r < 0) {
                log_debug_errno(r, "Stream %d: socket: %m", s->id);
                stream_abort(s, NGHTTP2_CONNECT_ERROR);
                if (s->id < 0) /* closed on HTTP/2 already: no callback will finish it */
                        stream_maybe_finish(s);
        }
        /* Send from the loop once the sockets that were ready with this one had their turn:
         * their frames share TLS records and send()s. */
        mux_kick(m);
        return 0;
}

static MuxStream *stream_new(Mux *m, int32_t id) {
        MuxStream *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        s->mux = m;
        s->id = id;
        s->fd = -1;
        s->created = now_usec();
        LIST_PREPEND(m->streams, s);
        m->n_streams++;
        m->total_streams++;
        return s;
}

static int stream_attach_fd(MuxStream *s, int fd) {
        int r;

        s->fd = fd;
        /* Adding an edge-triggered registration reports the socket's state at once. */
        r = sd_event_add_io(s->mux->event, &s->io, fd, STREAM_EVENTS, stream_handler, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s->io, "mux-stream");
        return 0;
}

/* A CONNECT stream with the fields nva (n) carrying the socket fd (taken over). */
static int open_connect(Mux *m, int fd, const nghttp2_nv *nva, size_t n, const char *authority, const char *peer,
                        void *userdata, MuxStream **ret) {
        nghttp2_data_provider prd = { .read_callback = data_read_cb };
        nghttp2_nv all[8];
        char key[24];
        MuxStream *s;
        int32_t id;
        int r;

        assert(n + 1 <= ELEMENTSOF(all));
        if (m->dead) {
                safe_close(fd);
                return -ENOTCONN;
        }
        if (m->cfg.max_streams > 0 && m->n_streams >= m->cfg.max_streams) {
                safe_close(fd);
                return -EBUSY;
        }
        s = stream_new(m, 0);
        if (!s) {
                safe_close(fd);
                return -ENOMEM;
        }
        s->userdata = userdata;
        s->peer = strdup(peer);
        s->authority = strdup(authority);
        prd.source.ptr = s;
        memcpy(all, nva, sizeof(nghttp2_nv) * n);
        if (m->cfg.resumable) { /* numbered, to be found again after a lost connection */
                key_insert(s, ++m->next_key);
                snprintf(key, sizeof(key), "%" PRIu64, s->key);
                all[n++] = (nghttp2_nv) { (uint8_t *) "x-inlets-stream", (uint8_t *) key, 15, strlen(key),
                                          NGHTTP2_NV_FLAG_NONE };
        }
        id = nghttp2_submit_request(m->h2, NULL, all, n, &prd, s);
        if (id < 0) {
                s->id = -1;
                safe_close(fd);
                stream_maybe_finish(s);
                return -ENOBUFS;
        }
        s->id = id;
        /* Bytes the public peer sends before the upstream answers travel at once. */
        s->reading = true;
        r = stream_attach_fd(s, fd);
        if (r < 0) {
                stream_abort(s, NGHTTP2_INTERNAL_ERROR);
                mux_pump(m);
                return r;
        }
        /* What the peer sent with its handshake is usually there already: read it now, so
         * that it leaves with the HEADERS frame; and send from the loop, after the caller's
         * other new connections, so that a burst of them shares TLS records and send()s. */
        s->redge.readable = true;
        r = stream_read(s);
        if (r < 0) {
                stream_abort(s, NGHTTP2_CONNECT_ERROR);
                mux_pump(m);
                return r;
        }
        mux_kick(m);
        if (ret)
                *ret = s;
        return 0;
}

int mux_open_stream(Mux *m, int fd, const char *authority, const char *peer, void *userdata, MuxStream **ret) {
        /* The contract comes first: nva[] below takes the strings' lengths. */
        assert(m);
        assert(!m->finished);
        assert(m->cfg.h2_client);
        assert(fd >= 0);
        assert(authority);
        assert(peer);

        const nghttp2_nv nva[] = {
                { (uint8_t *) ":method", (uint8_t *) "CONNECT", 7, 7, NGHTTP2_NV_FLAG_NONE },
                { (uint8_t *) ":authority", (uint8_t *) authority, 10, strlen(authority), NGHTTP2_NV_FLAG_NONE },
                { (uint8_t *) "x-forwarded-for", (uint8_t *) peer, 15, strlen(peer), NGHTTP2_NV_FLAG_NONE },
        };
        return open_connect(m, fd, nva, ELEMENTSOF(nva), authority, peer, userdata, ret);
}

int mux_open_forward(Mux *m, int fd, const char *target, uint32_t forward, void *userdata, MuxStream **ret) {
        char id[16];

        assert(m);
        assert(!m->finished);
        assert(m->cfg.h2_client);
        assert(fd >= 0);
        assert(target);
        assert(forward > 0 && forward < UINT32_MAX);

        MuxStream *s;
        int r;

        snprintf(id, sizeof(id), "%" PRIu32, forward);
        const nghttp2_nv nva[] = {
                { (uint8_t *) ":method", (uint8_t *) "CONNECT", 7, 7, NGHTTP2_NV_FLAG_NONE },
                { (uint8_t *) ":authority", (uint8_t *) target, 10, strlen(target), NGHTTP2_NV_FLAG_NONE },
                { (uint8_t *) "x-inlets-forward", (uint8_t *) id, 16, strlen(id), NGHTTP2_NV_FLAG_NONE },
        };
        r = open_connect(m, fd, nva, ELEMENTSOF(nva), target, "", userdata, &s);
        if (r < 0)
                return r;
        s->forward = forward; /* for the counts: not a public port's stream */
        if (ret)
                *ret = s;
        return 0;
}

uint32_t mux_stream_forward(MuxStream *s) {
        assert(s);
        return s->forward;
}

int mux_stream_accept(MuxStream *s, int fd) {
        nghttp2_nv nva[] = { { (uint8_t *) ":status", (uint8_t *) "200", 7, 3, NGHTTP2_NV_FLAG_NONE } };
        nghttp2_data_provider prd = { .source.ptr = s, .read_callback = data_read_cb };
        Mux *m;
        int r;

        assert(s);
        assert(fd >= 0);
        m = s->mux;
        /* A CONNECT stream of the tunnel client, answered once. */
        assert(!m->cfg.h2_client);
        assert(!s->message);
        assert(s->fd < 0);

        if (s->id < 0) { /* reset while we were dialling */
                safe_close(fd);
                stream_maybe_finish(s);
                return -ECANCELED;
        }
        if (s->aborted) {
                safe_close(fd);
                return -ECANCELED;
        }
        r = stream_attach_fd(s, fd);
        if (r < 0) {
                stream_close_fd(s, true);
                mux_stream_refuse(s, false);
                return r;
        }
        r = nghttp2_submit_response(m->h2, s->id, nva, ELEMENTSOF(nva), &prd);
        if (r < 0) {
                stream_abort(s, NGHTTP2_INTERNAL_ERROR);
                return -EIO;
        }
        s->responded = true;
        s->reading = true;
        /* Bytes that arrived while we were dialling; the socket's first edge does the rest. */
        s->wready = true;
        if (stream_write(s) < 0)
                stream_abort(s, NGHTTP2_CONNECT_ERROR);
        return 0;
}

void mux_stream_refuse(MuxStream *s, bool connect_error) {
        assert(s);
        assert(!s->message);

        stream_abort(s, connect_error ? NGHTTP2_CONNECT_ERROR : NGHTTP2_REFUSED_STREAM);
        if (s->id < 0)
                stream_maybe_finish(s);
        else
                mux_pump(s->mux);
}

/* ---- nghttp2 callbacks ---- */

static ssize_t send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags, void *user_data) {
        Mux *m = user_data;

        if (tls_conn_pending(m->conn) > OUT_HIGH_WATER)
                return NGHTTP2_ERR_WOULDBLOCK;
        if (ws_send(m, WS_OP_BINARY, NULL, 0, NULL, data, length) < 0)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        return (ssize_t) length;
}

static int data_chunk_cb(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                         size_t len, void *user_data) {
        Mux *m = user_data;
        MuxStream *s = nghttp2_session_get_stream_user_data(session, stream_id);

        if (s && s->key > 0)
                s->recv += len; /* acknowledged as it is written (stream_note_delivered()) */
        if (s && s->message && s->ops && !s->aborted) {
                /* The owner consumes the stream window as it passes the bytes on; until then
                 * they are held, like bytes waiting for a socket (the owner may be a public
                 * peer that does not read). */
                s->msg_held += len;
                held_add(m, len);
                CALL_OWNER(m, s->ops->data(s, data, len, s->userdata));
                return 0;
        }
        /* (A stream kept only for its end has no socket: nothing more belongs to it. One whose
         * upstream is still being dialled has none yet either, and keeps what comes.) */
        if (!s || s->aborted || s->wr_shut || s->message || (s->fd < 0 && s->reported)) {
                (void) nghttp2_session_consume_connection(session, len);
                (void) nghttp2_session_consume_stream(session, stream_id, len);
                return 0;
        }
        /* In a read batch, bulk chunks wait in their records for one writev() per stream at
         * its end (mux_flush_batch): a send() per 16 KiB record was most of the syscalls. */
        if (m->batching && s->fd >= 0 && s->wlen == 0 && (len >= CORK_MIN || s->batched > 0)) {
                if (m->n_batch == MUX_BATCH_MAX)
                        mux_flush_batch(m);
                if (s->fd >= 0 && s->wlen == 0 && m->n_batch < MUX_BATCH_MAX) {
                        m->batch[m->n_batch].s = s;
                        m->batch[m->n_batch].p = data;
                        m->batch[m->n_batch].n = len;
                        m->n_batch++;
                        s->batched += len;
                        return 0;
                }
                if (s->fd < 0 || s->aborted) { /* the flush found the socket gone */
                        (void) nghttp2_session_consume_connection(session, len);
                        (void) nghttp2_session_consume_stream(session, stream_id, len);
                        return 0;
                }
        }
        /* Before the upstream is connected (fd < 0) everything is held for it. Chunks come a
         * TLS record at a time; for a bulk transfer MSG_MORE lets the kernel build full
         * segments from them, and the end of the read batch pushes what is left
         * (mux_push_corked). A small chunk -- a chatty protocol's message -- goes at once:
         * corking it would only cost the push. */
        if (s->wlen == 0 && s->fd >= 0) {
                bool more = len >= CORK_MIN;
                ssize_t n = send(s->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL | (more ? MSG_MORE : 0));
                if (n > 0 && more && !s->corked) {
                        s->corked = true;
                        m->any_corked = true;
                }
                if ((n >= 0 && (size_t) n < len) || (n < 0 && errno == EAGAIN))
                        s->wready = false; /* full: EPOLLOUT comes when it has room */
                if (n < 0 && errno != EAGAIN && errno != EINTR) {
                        (void) nghttp2_session_consume_connection(session, len);
                        stream_abort(s, NGHTTP2_CONNECT_ERROR);
                        return 0;
                }
                if (n > 0) {
                        data += n;
                        len -= (size_t) n;
                        s->bytes_in += (size_t) n;
                        m->bytes_in += (size_t) n;
                        (void) nghttp2_session_consume_connection(session, (size_t) n);
                        (void) nghttp2_session_consume_stream(session, stream_id, (size_t) n);
                }
        }
        if (len > 0) {
                /* Bounded by the stream window: the peer cannot send more than we allow. */
                if (buffer_reserve(&s->wbuf, &s->woff, s->wlen, &s->wcap, len) < 0) {
                        (void) nghttp2_session_consume_connection(session, len);
                        stream_abort(s, NGHTTP2_INTERNAL_ERROR);
                        return 0;
                }
                memcpy(s->wbuf + s->woff + s->wlen, data, len);
                s->wlen += len;
                held_add(m, len);
        }
        stream_note_delivered(s);
        return 0;
}

static int begin_headers_cb(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
        Mux *m = user_data;
        MuxStream *s;

        if (frame->hd.type != NGHTTP2_HEADERS)
                return 0;
        if (m->cfg.h2_client) {
                /* A response head or trailers for a message stream: collect it whole. */
                s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
                if (s && s->message) {
                        http_head_free(s->head);
                        s->head = http_head_new(false);
                        if (!s->head)
                                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
                }
                return 0;
        }
        if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
                s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
                if (s && s->message) { /* trailers */
                        http_head_free(s->head);
                        s->head = http_head_new(true);
                        if (!s->head)
                                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
                }
                return 0;
        }
        s = stream_new(m, frame->hd.stream_id);
        if (!s)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        s->head = http_head_new(true);
        if (!s->head)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, s);
        return 0;
}

/* Collects one field line into s->head. */
static int head_collect(MuxStream *s, const uint8_t *name, size_t namelen, const uint8_t *value, size_t valuelen) {
        HttpHead *h = s->head;

        if ((namelen == 0 || name[0] != ':') &&
            (h->n_headers >= MSG_MAX_HEADERS || h->bytes + namelen + valuelen > MSG_MAX_HEADER_BYTES))
                return -E2BIG;
        return http_head_add_h2(h, (const char *) name, namelen, (const char *) value, valuelen);
}

static bool m_is_h2_client(const MuxStream *s) {
        return s->mux->cfg.h2_client;
}

static int header_cb(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data) {
        MuxStream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        char **dst = NULL;

        if (!s || frame->hd.type != NGHTTP2_HEADERS)
                return 0;
        if (s->head && head_collect(s, name, namelen, value, valuelen) < 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (namelen == 10 && memcmp(name, ":authority", 10) == 0)
                dst = &s->authority;
        else if (namelen == 7 && memcmp(name, ":method", 7) == 0)
                dst = &s->method;
        else if (namelen == 15 && memcmp(name, "x-forwarded-for", 15) == 0)
                dst = &s->peer;
        else if (namelen == 16 && memcmp(name, "x-inlets-forward", 16) == 0 && !m_is_h2_client(s)) {
                /* Only on a request the tunnel client receives: a client's response naming it
                 * must not turn a public stream into a forward one on the exit server. */
                uint64_t v = 0;
                bool ok = valuelen > 0 && valuelen <= 10 && value[0] != '0';
                for (size_t i = 0; ok && i < valuelen; i++) {
                        ok = value[i] >= '0' && value[i] <= '9';
                        v = v * 10 + (uint64_t) (value[i] - '0');
                }
                if (s->forward == 0)
                        s->forward = ok && v < UINT32_MAX ? (uint32_t) v : UINT32_MAX;
                return 0;
        } else if (namelen == 7 && memcmp(name, ":status", 7) == 0 && !s->message) {
                s->responded = valuelen == 3 && memcmp(value, "200", 3) == 0;
                return 0;
        } else if (s->mux->cfg.resumable && !s->message &&
                   ((namelen == 15 && memcmp(name, "x-inlets-stream", 15) == 0 && !m_is_h2_client(s)) ||
                    (namelen == 15 && memcmp(name, "x-inlets-resume", 15) == 0))) {
                /* A number: digits, no leading zero, below 2^64 (20 digits can overflow). */
                uint64_t v = 0;
                bool ok = valuelen > 0 && valuelen < 20 && (value[0] != '0' || valuelen == 1);
                for (size_t i = 0; ok && i < valuelen; i++) {
                        ok = value[i] >= '0' && value[i] <= '9';
                        v = v * 10 + (uint64_t) (value[i] - '0');
                }
                if (name[9] == 's') { /* x-inlets-stream: the first valid one counts */
                        if (s->key == 0 && ok && v > 0)
                                key_insert(s, v);
                } else if (ok && !s->has_peer_recv) {
                        s->peer_recv = v;
                        s->has_peer_recv = true;
                        if (!m_is_h2_client(s))
                                s->resuming = true;
                }
                return 0;
        }
        /* The first one counts; one longer than any address or port is no value at all (a cut
         * one could parse as another address or port). */
        if (dst && !*dst)
                *dst = valuelen > 255 ? strdup("") : strndup((const char *) value, valuelen);
        return 0;
}

/* HEADERS and DATA on a message stream: the response head (exit server), trailers, the end. */
static int message_frame_recv(Mux *m, MuxStream *s, const nghttp2_frame *frame) {
        bool end = (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
                   (frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
        _cleanup_(http_head_freep) HttpHead *trailers = NULL;

        if (frame->hd.type == NGHTTP2_HEADERS && m->cfg.h2_client && !s->responded) {
                HttpHead *h = TAKE_PTR(s->head);
                if (!h)
                        return 0;
                if (h->status < 200 && !end) { /* interim (1xx): the final one follows */
                        http_head_free(h);
                        return 0;
                }
                s->responded = true;
                if (s->ops && s->ops->head)
                        CALL_OWNER(m, s->ops->head(s, h, s->userdata));
                else
                        http_head_free(h);
        } else if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat != NGHTTP2_HCAT_REQUEST)
                trailers = TAKE_PTR(s->head);
        if (end && s->ops && s->ops->end)
                CALL_OWNER(m, s->ops->end(s, TAKE_PTR(trailers), s->userdata));
        return 0;
}

static int frame_recv_cb(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
        Mux *m = user_data;
        MuxStream *s;

        if (frame->hd.stream_id == 0)
                return 0;
        s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (!s)
                return 0;

        if (s->message)
                return message_frame_recv(m, s, frame);
        if (frame->hd.type == NGHTTP2_HEADERS) {
                if (m->cfg.h2_client) {
                        if (frame->headers.cat == NGHTTP2_HCAT_RESPONSE && !s->responded)
                                stream_abort(s, NGHTTP2_CANCEL);
                        else if (frame->headers.cat == NGHTTP2_HCAT_RESPONSE && s->resuming) {
                                /* The client took the stream back: from where it has our bytes. */
                                s->resuming = false;
                                if (!s->has_peer_recv || !retain_rewind(s, s->peer_recv)) {
                                        log_debug("Stream %d: the client's resume answer does not fit: reset.", s->id);
                                        stream_abort(s, NGHTTP2_PROTOCOL_ERROR);
                                        return 0;
                                }
                                stream_resume_data(s);
                        }
                } else if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
                        bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
                        bool plain_connect = s->method && streq(s->method, "CONNECT") && !s->head->protocol;

                        if (!plain_connect) {
                                if (!s->method || !m->cb->http_request) {
                                        stream_abort(s, NGHTTP2_REFUSED_STREAM);
                                        return 0;
                                }
                                s->message = true;
                                CALL_OWNER(m,
                                           m->cb->http_request(m, s, TAKE_PTR(s->head), end, m->userdata));
                                return message_frame_recv(m, s, frame);
                        }
                        s->head = http_head_free(s->head);
                        if (s->resuming) {
                                mux_claim(m, s);
                                return 0;
                        }
                        if (!s->authority || !m->cb->stream_request) {
                                stream_abort(s, NGHTTP2_REFUSED_STREAM);
                                return 0;
                        }
                        CALL_OWNER(m, m->cb->stream_request(m, s, s->authority, m->userdata));
                }
        }
        if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
            (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && s->id > 0) {
                stream_end_received(s);
                s->remote_eof = true;
                (void) stream_try_shutdown(s); /* id > 0: never frees here */
        }
        return 0;
}

/* Moves stream s of session from (dead) into session to: the socket, its buffers and its
 * counts; the HTTP/2 stream is the caller's to make. */
static void stream_move(Mux *from, Mux *to, MuxStream *s) {
        uint64_t key = s->key;

        key_remove(s);
        if (s->ended) { /* it carries only its end (and what the peer may lack of ours) */
                LIST_REMOVE(from->ended, s);
                from->n_ended--;
                s->ended = false;
        } else {
                LIST_REMOVE(from->streams, s);
                from->n_streams--;
                to->resumed++;
        }
        from->held -= MIN(s->wlen, from->held);
        from->retained -= MIN(s->ulen, from->retained);
        s->mux = to;
        if (key > 0)
                key_insert(s, key);
        LIST_PREPEND(to->streams, s);
        to->n_streams++;
        to->held += s->wlen; /* came through the old session's window: nothing to give back */
        to->retained += s->ulen;
        s->id = 0;
        s->deferred = false;
        s->rearmed = false;
        s->resend = 0;
        s->has_peer_recv = false;
        s->resuming = false;
        s->corked = false;
}

/* Tunnel client: the exit server asks to resume a stream of the lost session (placeholder p,
 * which goes): the old one takes p's HTTP/2 stream and answers with what it has received. */
static void mux_claim(Mux *m, MuxStream *p) {
        nghttp2_data_provider prd = { .read_callback = data_read_cb };
        Mux *old = m->predecessor;
        MuxStream *o = NULL;
        int32_t id = p->id;
        uint64_t peer_recv = p->peer_recv;
        char recv[24];

        if (old && p->key > 0)
                o = key_find(old, p->key);
        if (o && !stream_resumable(o) && !o->ended)
                o = NULL;
        if (!o || !p->has_peer_recv || !retain_covers(o, peer_recv)) {
                log_debug("Stream %d: nothing to resume as stream %" PRIu64 ": refused.", id, p->key);
                stream_abort(p, NGHTTP2_REFUSED_STREAM);
                return;
        }
        /* The placeholder goes; it holds nothing yet (the server sends only after our answer). */
        nghttp2_session_set_stream_user_data(m->h2, id, NULL);
        LIST_REMOVE(m->streams, p);
        m->n_streams--;
        m->total_streams--;
        stream_free(p);

        stream_move(old, m, o);
        o->id = id;
        nghttp2_session_set_stream_user_data(m->h2, id, o);
        (void) retain_rewind(o, peer_recv);
        snprintf(recv, sizeof(recv), "%" PRIu64, stream_drop_unwritten(o));
        const nghttp2_nv nva[] = {
                { (uint8_t *) ":status", (uint8_t *) "200", 7, 3, NGHTTP2_NV_FLAG_NONE },
                { (uint8_t *) "x-inlets-resume", (uint8_t *) recv, 15, strlen(recv), NGHTTP2_NV_FLAG_NONE },
        };
        prd.source.ptr = o;
        if (nghttp2_submit_response(m->h2, id, nva, ELEMENTSOF(nva), &prd) < 0) {
                stream_abort(o, NGHTTP2_INTERNAL_ERROR);
                return;
        }
        log_debug("Stream %d resumed as stream %" PRIu64 ": %zu bytes to send again.", id, o->key, o->resend);
        if (o->io)
                (void) sd_event_source_set_enabled(o->io, SD_EVENT_ON);
}

static int stream_close_cb(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data) {
        MuxStream *s = nghttp2_session_get_stream_user_data(session, stream_id);

        if (error_code != NGHTTP2_NO_ERROR)
                log_debug("Stream %d closed: %s", stream_id, nghttp2_http2_strerror(error_code));
        if (!s)
                return 0;
        nghttp2_session_set_stream_user_data(session, stream_id, NULL);
        s->id = -1;
        s->close_error = error_code;
        if (error_code != NGHTTP2_NO_ERROR)
                stream_close_fd(s, true);
        else if (s->fd >= 0) {
                /* Both sides ended cleanly: linger until what we hold is written. */
                s->remote_eof = true;
                if (stream_try_shutdown(s))
                        return 0;
        }
        stream_maybe_finish(s);
        return 0;
}

static int error_cb(nghttp2_session *session, int lib_error_code, const char *msg, size_t len, void *user_data) {
        log_debug("HTTP/2: %.*s", (int) len, msg);
        return 0;
}

/* ---- WebSocket input ---- */

static int ws_data_cb(void *userdata, uint8_t *p, size_t n) {
        Mux *m = userdata;
        ssize_t r;

        m->heard = true;
        r = nghttp2_session_mem_recv(m->h2, p, n);
        if (r < 0) {
                mux_fail(m, -EPROTO, "HTTP/2 error: %s", nghttp2_strerror((int) r));
                return -EPROTO;
        }
        return 0;
}

static int ws_control_cb(void *userdata, WsOpcode op, const uint8_t *p, size_t n) {
        Mux *m = userdata;

        m->heard = true;
        switch (op) {
        case WS_OP_PING:
                return ws_send(m, WS_OP_PONG, NULL, 0, NULL, p, n);
        case WS_OP_CLOSE: {
                int code = n >= 2 ? (p[0] << 8 | p[1]) : WS_CLOSE_NO_STATUS;
                ws_send_close(m, code == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL : code);
                (void) tls_conn_flush(m->conn);
                mux_fail(m, code == WS_CLOSE_NORMAL || code == WS_CLOSE_GOING_AWAY ? 0 : -ECONNRESET,
                         "peer closed the WebSocket (%d%s%.*s)", code, n > 2 ? ": " : "", (int) (n > 2 ? n - 2 : 0),
                         (const char *) p + 2);
                return -ECONNRESET;
        }
        default:
                return 0;
        }
}

static int ws_text_cb(void *userdata, const uint8_t *p, size_t n, bool fin) {
        Mux *m = userdata;

        m->heard = true;
        if (!fin) {
                memcpy(m->text + m->text_len, p, n); /* the parser bounds a message to WS_TEXT_MAX */
                m->text_len += n;
                return 0;
        }
        size_t len = m->text_len;
        m->text[len] = 0;
        m->text_len = 0;
        /* A NUL inside would cut the message short: such a message is not ours. */
        if (strlen(m->text) == len && m->cfg.resumable && startswith(m->text, "ack ")) {
                mux_handle_ack(m, m->text + 4);
                return 0;
        }
        if (strlen(m->text) == len && m->cb->control)
                CALL_OWNER(m, m->cb->control(m, m->text, m->userdata));
        return 0;
}

static const WsCallbacks mux_ws_callbacks = { .data = ws_data_cb, .control = ws_control_cb, .text = ws_text_cb };

/* Sends what MSG_MORE held back: setting TCP_NODELAY pushes pending frames. */
static void mux_push_corked(Mux *m) {
        int one = 1;

        if (!m->any_corked)
                return;
        m->any_corked = false;
        for (MuxStream *s = m->streams; s; s = s->next)
                if (s->corked) {
                        s->corked = false;
                        if (s->fd >= 0)
                                (void) setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                }
}

/* Writes what the batch holds, one writev() per stream in the order it came; what a socket
 * does not take is copied into the stream's buffer, to go on EPOLLOUT. */
static void mux_flush_batch(Mux *m) {
        /* n_batch stays until the end: a stream freed on the way (none should be, but its
         * owner's callbacks run) clears its own entries in stream_unbatch(). */
        unsigned n = m->n_batch;

        assert(n <= MUX_BATCH_MAX);

        for (unsigned i = 0; i < n && !m->dead; i++) {
                MuxStream *s = m->batch[i].s;
                struct iovec iov[MUX_BATCH_MAX];
                size_t total = 0, done, k = 0;
                ssize_t w;

                if (!s)
                        continue;
                for (unsigned j = i; j < n; j++)
                        if (m->batch[j].s == s) {
                                iov[k++] = (struct iovec) { (void *) m->batch[j].p, m->batch[j].n };
                                total += m->batch[j].n;
                                m->batch[j].s = NULL;
                        }
                s->batched = 0;
                do
                        w = writev(s->fd, iov, (int) k);
                while (w < 0 && errno == EINTR);
                if (w < 0 && errno != EAGAIN) {
                        (void) nghttp2_session_consume_connection(m->h2, total);
                        stream_abort(s, NGHTTP2_CONNECT_ERROR);
                        if (s->id < 0) /* closed on HTTP/2 already: no callback will finish it */
                                stream_maybe_finish(s);
                        continue;
                }
                done = w > 0 ? (size_t) w : 0;
                s->bytes_in += done;
                m->bytes_in += done;
                (void) nghttp2_session_consume_connection(m->h2, done);
                if (s->id > 0)
                        (void) nghttp2_session_consume_stream(m->h2, s->id, done);
                if (done < total) {
                        s->wready = false; /* full: EPOLLOUT comes when it has room */
                        if (buffer_reserve(&s->wbuf, &s->woff, s->wlen, &s->wcap, total - done) < 0) {
                                (void) nghttp2_session_consume_connection(m->h2, total - done);
                                stream_abort(s, NGHTTP2_INTERNAL_ERROR);
                                if (s->id < 0)
                                        stream_maybe_finish(s);
                                continue;
                        }
                        for (size_t j = 0, off = 0; j < k; off += iov[j].iov_len, j++) {
                                size_t from = MAX(off, done) - off;
                                if (from >= iov[j].iov_len)
                                        continue;
                                memcpy(s->wbuf + s->woff + s->wlen, (uint8_t *) iov[j].iov_base + from,
                                       iov[j].iov_len - from);
                                s->wlen += iov[j].iov_len - from;
                        }
                        held_add(m, total - done);
                        continue;
                }
                stream_note_delivered(s);
                (void) stream_try_shutdown(s); /* the END_STREAM came in the batch */
        }
        m->n_batch = 0;
}

static void mux_read(Mux *m) {
        const WsCallbacks wscb = mux_ws_callbacks;

        assert(!m->batching); /* not re-entered from a callback */
        assert(m->n_batch == 0);

        m->batching = true;
        tls_conn_hold(m->conn, true);
        while (!m->dead) {
                uint8_t *p;
                size_t n;
                int r = tls_conn_recv(m->conn, &p, &n);

                if (r == -EAGAIN)
                        break;
                if (r < 0) {
                        mux_fail(m, r, "%s", tls_conn_error(m->conn));
                        break;
                }
                if (r == 0) {
                        mux_fail(m, -ECONNRESET, "connection closed by peer");
                        break;
                }
                m->last_rx = now_usec();
                m->ping_outstanding = false;
                r = ws_parse(&m->ws, p, n, &wscb, m);
                if (r < 0 && !m->dead) {
                        ws_send_close(m, m->ws.close_code ?: WS_CLOSE_PROTOCOL_ERROR);
                        (void) tls_conn_flush(m->conn);
                        mux_fail(m, r, "WebSocket protocol error: %s", m->ws.error ?: "callback failed");
                }
                if (!tls_conn_can_hold(m->conn)) { /* the next record would overwrite these */
                        mux_flush_batch(m);
                        tls_conn_release(m->conn);
                }
                /* Acknowledge as it comes, not after a read that may last many MiB: the sender
                 * stops reading at RETAIN_STREAM_MAX kept. */
                if (m->any_ack && !m->dead)
                        mux_send_acks(m, false);
        }
        if (m->dead) {
                /* A resumable stream keeps what it received (it counted it): into its buffer. */
                for (unsigned i = 0; i < m->n_batch; i++) {
                        MuxStream *s = m->batch[i].s;
                        if (!s)
                                continue;
                        s->batched = 0;
                        if (s->key > 0 && buffer_reserve(&s->wbuf, &s->woff, s->wlen, &s->wcap, m->batch[i].n) >= 0) {
                                memcpy(s->wbuf + s->woff + s->wlen, m->batch[i].p, m->batch[i].n);
                                s->wlen += m->batch[i].n;
                                m->held += m->batch[i].n;
                        } else if (s->key > 0)
                                s->aborted = true; /* lost bytes: it cannot resume */
                }
                m->n_batch = 0;
        }
        mux_flush_batch(m);
        m->batching = false;
        tls_conn_hold(m->conn, false);
        tls_conn_release(m->conn);
        mux_push_corked(m);
        if (m->any_ack)
                mux_send_acks(m, false);
}

/* Message streams whose owners wait for room. */
static void mux_notify_writable(Mux *m) {
        while (m->any_writable && !m->dead) {
                MuxStream *s;
                m->any_writable = false;
                for (s = m->streams; s && !s->notify_writable; s = s->next)
                        ;
                if (!s)
                        break;
                m->any_writable = true;
                s->notify_writable = false;
                if (s->ops && s->ops->writable)
                        CALL_OWNER(m, s->ops->writable(s, s->userdata));
        }
}

/* Message streams that ended on HTTP/2 and whose owners have now consumed all (or let go). */
static void mux_finish_streams(Mux *m) {
        m->any_finish = false;
        for (MuxStream *s = m->streams, *next; s; s = next) {
                next = s->next;
                if (s->finish_pending && (s->msg_held == 0 || !s->ops))
                        stream_maybe_finish(s); /* owners' callbacks may not free other streams */
        }
}

static void mux_pump(Mux *m) {
        bool stranded = false;
        uint64_t out_before = 0;
        int r;

        if (m->dead)
                return;
        if (m->any_finish)
                mux_finish_streams(m);
        mux_notify_writable(m);
again:
        while (tls_conn_pending(m->conn) <= OUT_HIGH_WATER && nghttp2_session_want_write(m->h2)) {
                size_t before = tls_conn_pending(m->conn);
                r = nghttp2_session_send(m->h2);
                if (r < 0) {
                        mux_fail(m, -EPROTO, "HTTP/2 send failed: %s", nghttp2_strerror(r));
                        return;
                }
                r = tls_conn_flush(m->conn);
                if (r < 0 && r != -EAGAIN) {
                        mux_fail(m, r, "%s", tls_conn_error(m->conn));
                        return;
                }
                if (tls_conn_pending(m->conn) == before && before > 0)
                        break;
                if (!nghttp2_session_want_write(m->h2))
                        break;
                /* nghttp2 stopped on WOULDBLOCK or a deferred stream; the socket decides. */
                if (tls_conn_pending(m->conn) > 0)
                        break;
        }
        r = tls_conn_flush(m->conn);
        if (r < 0 && r != -EAGAIN) {
                mux_fail(m, r, "%s", tls_conn_error(m->conn));
                return;
        }
        /* The flush may just have emptied a buffer that was above the high-water mark when the
         * loop looked: then nghttp2 still has frames for us and nothing would wake us for them
         * (no output left to wait for; the streams' sockets may be paused on full buffers). */
        if (tls_conn_pending(m->conn) == 0 && nghttp2_session_want_write(m->h2)) {
                if (!stranded) {
                        stranded = true;
                        out_before = m->bytes_out;
                        goto again;
                }
                if (m->bytes_out != out_before)
                        mux_kick(m); /* still moving: once more from the loop, after other events */
        }
        if (!nghttp2_session_want_read(m->h2) && !nghttp2_session_want_write(m->h2) &&
            tls_conn_pending(m->conn) == 0) {
                /* Both sides are done: end as mux_shutdown() does (WebSocket close, close_notify),
                 * not by dropping the connection, which the peer would count as an error. */
                ws_send_close(m, WS_CLOSE_NORMAL);
                mux_fail(m, 0, "session ended (GOAWAY)");
                return;
        }
        (void) sd_event_source_set_io_events(m->io, EPOLLIN | (tls_conn_pending(m->conn) > 0 ? EPOLLOUT : 0));
        if (m->any_writable)
                mux_kick(m); /* owners waiting for room hear of it from the loop */
}

static int mux_io_handler(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Mux *m = userdata;

        if (m->draining) {
                mux_drain(m);
                return 0;
        }
        if (revents & EPOLLOUT) {
                int r = tls_conn_flush(m->conn);
                if (r < 0 && r != -EAGAIN) {
                        mux_fail(m, r, "%s", tls_conn_error(m->conn));
                        return 0;
                }
        }
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                mux_read(m);
        mux_pump(m);
        return 0;
}

static int mux_timer_handler(sd_event_source *src, uint64_t usec, void *userdata) {
        Mux *m = userdata;
        uint64_t idle = now_usec() - m->last_rx, k = m->cfg.keepalive_usec;

        if (m->draining) {
                mux_finish(m);
                return 0;
        }
        if (idle >= k) {
                mux_fail(m, -ETIMEDOUT, "no answer from the peer for %" PRIu64 " s", idle / USEC_PER_SEC);
                return 0;
        }
        mux_send_acks(m, true); /* what trickled in since: the sender may let it go */
        if (!m->pool_used)
                pool_drain(m); /* no bulk transfer kept buffers since the last tick */
        m->pool_used = false;
        if (idle >= k / 3 && !m->ping_outstanding) {
                (void) nghttp2_submit_ping(m->h2, NGHTTP2_FLAG_NONE, NULL);
                m->ping_outstanding = true;
                mux_pump(m);
        }
        (void) sd_event_source_set_time_relative(src, k / 6);
        (void) sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
        return 0;
}

static int mux_kick_handler(sd_event_source *src, void *userdata) {
        mux_pump(userdata);
        return 0;
}

static int mux_defer_handler(sd_event_source *src, void *userdata) {
        Mux *m = userdata;
        assert(m->dead);
        assert(!m->finished);
        m->defer = sd_event_source_disable_unref(m->defer);
        m->finished = true;
        m->cb->closed(m, m->error, m->reason, m->userdata);
        return 0;
}

static void mux_finish(Mux *m) {
        if (m->defer)
                return;
        (void) sd_event_source_set_enabled(m->io, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(m->timer, SD_EVENT_OFF);
        /* The owner hears of it from the loop, never from inside one of our frames. */
        if (sd_event_add_defer(m->event, &m->defer, mux_defer_handler, m) < 0)
                log_oom();
        else
                (void) sd_event_source_set_description(m->defer, "mux-closed");
}

/* After our close frame: discard what the peer still sends until it closes too (or a second
 * passes). Closing at once would make the kernel answer with RST, and the peer might never
 * read our close frame and its reason. */
static void mux_drain(Mux *m) {
        int fd = tls_conn_fd(m->conn);
        for (;;) {
                char buf[16384];
                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n > 0)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                mux_finish(m);
                return;
        }
}

static void mux_fail(Mux *m, int error, const char *format, ...) {
        va_list ap;

        if (m->dead)
                return;
        m->dead = true;
        m->error = error;
        va_start(ap, format);
        vsnprintf(m->reason, sizeof(m->reason), format, ap);
        va_end(ap);
        for (MuxStream *s = m->streams, *next; s; s = next) {
                next = s->next;
                if (s->io)
                        (void) sd_event_source_set_enabled(s->io, SD_EVENT_OFF);
                /* A stream kept for its end, moved to this session and lost with it before its
                 * end was acknowledged: kept again, for the next one (the review: a second cut). */
                if (s->reported && s->fd < 0 && s->key > 0 && s->end_sent && !s->end_acked && !s->aborted &&
                    s->batched == 0 && m->n_ended < ENDED_MAX) {
                        if (s->id > 0 && m->h2)
                                nghttp2_session_set_stream_user_data(m->h2, s->id, NULL);
                        LIST_REMOVE(m->streams, s);
                        m->n_streams--;
                        s->id = -1;
                        s->resend = 0;
                        s->resuming = false;
                        s->deferred = false;
                        s->ended = true;
                        LIST_PREPEND(m->ended, s);
                        m->n_ended++;
                        continue;
                }
                /* A lost connection of a resumable session: what can never resume (not answered
                 * yet, not numbered) closes now, with a reset, instead of waiting out the hold
                 * with the rest (the review: a visitor whose stream was still being dialled). */
                if (m->cfg.resumable && error < 0 && s->fd >= 0 && !s->message && (s->key == 0 || !s->responded)) {
                        s->aborted = true;
                        stream_close_fd(s, true);
                }
        }
        if (m->close_sent && tls_conn_flush(m->conn) >= 0) {
                m->draining = true;
                tls_conn_bye(m->conn);
                (void) shutdown(tls_conn_fd(m->conn), SHUT_WR);
                (void) sd_event_source_set_io_events(m->io, EPOLLIN);
                (void) sd_event_source_set_time_relative(m->timer, USEC_PER_SEC);
                (void) sd_event_source_set_enabled(m->timer, SD_EVENT_ONESHOT);
                return;
        }
        mux_finish(m);
}

void mux_shutdown(Mux *m, int ws_code) {
        assert(m);
        assert(!m->finished);

        if (m->dead)
                return;
        (void) nghttp2_session_terminate_session(m->h2, NGHTTP2_NO_ERROR);
        (void) nghttp2_session_send(m->h2);
        ws_send_close(m, ws_code);
        mux_fail(m, 0, "shut down");
}

/* The HTTP/2 session, with our SETTINGS queued. */
static int mux_h2_new(Mux *m) {
        nghttp2_session_callbacks *cbs;
        nghttp2_option *opt;
        uint32_t frame = (uint32_t) MIN((uint64_t) H2_MAX_FRAME, m->cfg.max_frame_size - 64);
        nghttp2_settings_entry iv[] = {
                { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, m->cfg.h2_client ? 0 : m->cfg.max_streams },
                { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_WINDOW },
                { NGHTTP2_SETTINGS_MAX_FRAME_SIZE, MAX(frame, 16384u) },
                { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
                /* Upgrades in HTTP mode travel as extended CONNECT (RFC 8441). */
                { NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1 },
        };
        int r;

        assert(m);
        assert(!m->h2);

        if (nghttp2_session_callbacks_new(&cbs) != 0)
                return -ENOMEM;
        nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
        nghttp2_session_callbacks_set_send_data_callback(cbs, send_data_cb);
        nghttp2_session_callbacks_set_data_source_read_length_callback(cbs, read_length_cb);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, data_chunk_cb);
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, begin_headers_cb);
        nghttp2_session_callbacks_set_on_header_callback(cbs, header_cb);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, frame_recv_cb);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, stream_close_cb);
        nghttp2_session_callbacks_set_error_callback2(cbs, error_cb);
        if (nghttp2_option_new(&opt) != 0) {
                nghttp2_session_callbacks_del(cbs);
                return -ENOMEM;
        }
        nghttp2_option_set_no_auto_window_update(opt, 1);
        if (!m->cfg.h2_client)
                nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
        r = m->cfg.h2_client ? nghttp2_session_client_new2(&m->h2, cbs, m, opt)
                             : nghttp2_session_server_new2(&m->h2, cbs, m, opt);
        nghttp2_session_callbacks_del(cbs);
        nghttp2_option_del(opt);
        if (r != 0)
                return -ENOMEM;
        if (nghttp2_submit_settings(m->h2, NGHTTP2_FLAG_NONE, iv, ELEMENTSOF(iv) - m->cfg.h2_client) != 0 ||
            nghttp2_session_set_local_window_size(m->h2, NGHTTP2_FLAG_NONE, 0, H2_WINDOW) != 0)
                return -ENOMEM;
        return 0;
}

/* The tunnel socket, the keepalive timer, and the kick that runs mux_pump() from the loop. */
static int mux_add_sources(Mux *m) {
        int r;

        assert(m);

        r = sd_event_add_io(m->event, &m->io, tls_conn_fd(m->conn), EPOLLIN, mux_io_handler, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(m->io, "mux-tunnel");
        r = sd_event_add_time_relative(m->event, &m->timer, CLOCK_MONOTONIC, m->cfg.keepalive_usec / 6, 0,
                                       mux_timer_handler, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(m->timer, "mux-keepalive");
        r = sd_event_add_defer(m->event, &m->kick, mux_kick_handler, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(m->kick, "mux-kick");
        (void) sd_event_source_set_enabled(m->kick, SD_EVENT_OFF);
        return 0;
}

int mux_new(sd_event *e, TlsConn *conn, const MuxConfig *cfg, const uint8_t *initial, size_t n_initial,
            const MuxCallbacks *cb, void *userdata, Mux **ret) {
        _cleanup_(mux_freep) Mux *m = NULL;
        int r;

        assert(e);
        assert(conn);
        assert(cfg);
        assert(initial || n_initial == 0);
        assert(cb);
        assert(cb->closed); /* the owner must hear of the end */
        assert(ret);

        m = calloc(1, sizeof(*m));
        if (!m) {
                tls_conn_free(conn);
                return -ENOMEM;
        }
        m->conn = conn;
        m->key_off = sizeof(m->key_pool); /* empty: filled at the first frame */
        m->event = sd_event_ref(e);
        m->cfg = *cfg;
        m->predecessor = TAKE_PTR(m->cfg.predecessor); /* before the first frames are read */
        assert(!m->predecessor || m->predecessor->dead);
        m->cb = cb;
        m->userdata = userdata;
        m->last_rx = now_usec();
        /* A client sends masked frames and expects unmasked ones; a server the reverse. */
        ws_parser_init(&m->ws, !cfg->ws_client, cfg->max_frame_size);
        m->ws.allow_text = true;

        r = mux_h2_new(m);
        if (r < 0)
                return r;
        r = mux_add_sources(m);
        if (r < 0)
                return r;

        if (n_initial > 0) {
                const WsCallbacks wscb = mux_ws_callbacks;
                _cleanup_free_ uint8_t *copy = malloc(n_initial);
                if (!copy)
                        return -ENOMEM;
                memcpy(copy, initial, n_initial);
                if (ws_parse(&m->ws, copy, n_initial, &wscb, m) < 0 && !m->dead)
                        mux_fail(m, -EPROTO, "WebSocket protocol error: %s", m->ws.error ?: "?");
        }
        /* Records may already sit in TLS buffers, where epoll cannot see them. */
        mux_read(m);
        mux_pump(m);
        *ret = TAKE_PTR(m);
        return 0;
}

Mux *mux_free(Mux *m) {
        if (!m)
                return NULL;
        /* Not from inside one of our calls into an owner: we would go on using m there. */
        assert(m->in_callback == 0);
        m->dead = true;
        while (m->ended)
                ended_free(m->ended);
        while (m->streams) {
                MuxStream *s = m->streams;
                m->streams = s->next;
                if (s->ops) { /* the owner must let go of it */
                        const MuxStreamOps *ops = TAKE_PTR(s->ops);
                        if (ops->closed)
                                CALL_OWNER(m, ops->closed(s, true, s->userdata));
                }
                stream_free(s);
        }
        pool_drain(m);
        sd_event_source_disable_unref(m->io);
        sd_event_source_disable_unref(m->kick);
        sd_event_source_disable_unref(m->timer);
        sd_event_source_disable_unref(m->defer);
        if (m->h2)
                nghttp2_session_del(m->h2);
        tls_conn_free(m->conn);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}

void mux_get_stats(Mux *m, MuxStats *ret) {
        unsigned kept = 0;

        assert(m);
        assert(ret);

        for (MuxStream *s = m->streams; s; s = s->next) /* streams kept for their end are not connections */
                kept += s->reported;
        *ret = (MuxStats) {
                .bytes_in = m->bytes_in,
                .bytes_out = m->bytes_out,
                .held = m->held,
                .active_streams = m->n_streams - kept,
                .total_streams = m->total_streams,
                .retained = m->retained,
                .resumed_streams = m->resumed,
                .resent_bytes = m->resent,
        };
}

unsigned mux_resumable_streams(Mux *m, unsigned *ret_ended) {
        unsigned n = 0;

        assert(m);
        assert(ret_ended);
        *ret_ended = 0;
        if (!m->cfg.resumable)
                return 0;
        *ret_ended = m->n_ended;
        for (MuxStream *s = m->streams; s; s = s->next)
                n += stream_resumable(s);
        return n;
}

/* Exit server: asks the client to resume stream s of a lost session on m. */
static bool adopt_one(Mux *m, Mux *old, MuxStream *s, void *userdata) {
        nghttp2_data_provider prd = { .source.ptr = s, .read_callback = data_read_cb };
        char key[24], recv[24], fwd[16];
        bool connection = !s->ended;
        nghttp2_nv nva[6];
        size_t k = 0;
        int32_t id;

        stream_move(old, m, s);
        s->userdata = userdata;
        s->resuming = true; /* data_read_cb() waits for the client's answer */
        snprintf(key, sizeof(key), "%" PRIu64, s->key);
        snprintf(recv, sizeof(recv), "%" PRIu64, stream_drop_unwritten(s));
        nva[k++] = (nghttp2_nv) { (uint8_t *) ":method", (uint8_t *) "CONNECT", 7, 7, NGHTTP2_NV_FLAG_NONE };
        nva[k++] = (nghttp2_nv) { (uint8_t *) ":authority", (uint8_t *) s->authority, 10, strlen(s->authority),
                                  NGHTTP2_NV_FLAG_NONE };
        if (s->forward > 0) {
                snprintf(fwd, sizeof(fwd), "%" PRIu32, s->forward);
                nva[k++] = (nghttp2_nv) { (uint8_t *) "x-inlets-forward", (uint8_t *) fwd, 16, strlen(fwd),
                                          NGHTTP2_NV_FLAG_NONE };
        } else
                nva[k++] = (nghttp2_nv) { (uint8_t *) "x-forwarded-for", (uint8_t *) s->peer, 15, strlen(s->peer),
                                          NGHTTP2_NV_FLAG_NONE };
        nva[k++] = (nghttp2_nv) { (uint8_t *) "x-inlets-stream", (uint8_t *) key, 15, strlen(key),
                                  NGHTTP2_NV_FLAG_NONE };
        nva[k++] = (nghttp2_nv) { (uint8_t *) "x-inlets-resume", (uint8_t *) recv, 15, strlen(recv),
                                  NGHTTP2_NV_FLAG_NONE };
        id = nghttp2_submit_request(m->h2, NULL, nva, k, &prd, s);
        if (id < 0) {
                s->id = -1;
                stream_close_fd(s, true);
                s->aborted = true;
                stream_maybe_finish(s);
                return false;
        }
        s->id = id;
        if (s->io)
                (void) sd_event_source_set_enabled(s->io, SD_EVENT_ON);
        return connection;
}

unsigned mux_adopt(Mux *m, Mux *old, void *userdata) {
        unsigned n = 0;

        assert(m);
        assert(old);
        assert(m->cfg.h2_client);
        assert(old->dead);

        if (!m->cfg.resumable || m->dead)
                return 0;
        m->next_key = MAX(m->next_key, old->next_key);
        for (MuxStream *s = old->streams, *next; s; s = next) {
                next = s->next;
                if (stream_resumable(s))
                        n += adopt_one(m, old, s, userdata);
        }
        /* Streams that ended as the connection was lost: the client may lack their end. */
        while (old->ended)
                (void) adopt_one(m, old, old->ended, userdata);
        mux_kick(m);
        return n;
}

void mux_set_predecessor(Mux *m, Mux *old) {
        assert(m);
        assert(!old || old->dead);
        m->predecessor = old;
}

void *mux_stream_userdata(MuxStream *s) {
        assert(s);
        return s->userdata;
}

void mux_stream_get(MuxStream *s, uint64_t *ret_in, uint64_t *ret_out, const char **ret_peer) {
        assert(s);

        if (ret_in)
                *ret_in = s->bytes_in;
        if (ret_out)
                *ret_out = s->bytes_out;
        if (ret_peer)
                *ret_peer = s->peer;
}

int mux_stream_id(MuxStream *s) {
        assert(s);
        return s->id;
}

void mux_stream_set_userdata(MuxStream *s, void *userdata) {
        assert(s);
        s->userdata = userdata;
}

const char *mux_stream_authority(MuxStream *s) {
        assert(s);
        return s->authority;
}

void mux_foreach_stream(Mux *m, void (*f)(const MuxStreamInfo *info, void *userdata), void *userdata) {
        assert(m);
        assert(f);

        for (MuxStream *s = m->streams, *next; s; s = next) {
                next = s->next; /* f may reset (and so free) s */
                if (s->reported) /* kept for its end: counted when it closed */
                        continue;
                MuxStreamInfo i = {
                        .id = s->id,
                        .authority = s->authority,
                        .peer = s->peer,
                        .bytes_in = s->bytes_in,
                        .bytes_out = s->bytes_out,
                        .created = s->created,
                        .userdata = s->userdata,
                        .stream = s,
                };
                f(&i, userdata);
        }
}

void mux_goaway(Mux *m) {
        assert(m);
        assert(!m->finished);

        if (m->dead)
                return;
        (void) nghttp2_submit_goaway(m->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(m->h2),
                                     NGHTTP2_NO_ERROR, NULL, 0);
        mux_pump(m);
}

void mux_abort(Mux *m, const char *reason) {
        assert(m);
        assert(!m->finished);
        assert(reason);

        if (m->dead)
                return;
        (void) nghttp2_session_terminate_session(m->h2, NGHTTP2_NO_ERROR);
        (void) nghttp2_session_send(m->h2);
        ws_send_close(m, WS_CLOSE_POLICY);
        mux_fail(m, -ECONNABORTED, "%s", reason);
}

int mux_send_control(Mux *m, const char *message) {
        size_t n;
        int r;

        assert(m);
        assert(!m->finished);
        assert(message);

        n = strlen(message);
        if (m->dead)
                return -ENOTCONN;
        if (n > WS_TEXT_MAX)
                return -E2BIG;
        r = ws_send(m, WS_OP_TEXT, NULL, 0, NULL, (const uint8_t *) message, n);
        if (r < 0)
                return r;
        mux_pump(m);
        return 0;
}

void mux_stream_reset(MuxStream *s) {
        Mux *m;

        assert(s);
        m = s->mux;

        s->ops = NULL;
        if (s->id < 0) { /* already closed on HTTP/2, still flushing: just drop it */
                stream_close_fd(s, true);
                stream_maybe_finish(s);
        } else
                stream_abort(s, NGHTTP2_CANCEL);
        /* Callers may be inside one of our callbacks: send from the loop. */
        mux_kick(m);
}

/* ---- message streams (HTTP mode) ---- */

int mux_request(Mux *m, const HttpHead *h, bool end_stream, const char *peer, const MuxStreamOps *ops,
                void *userdata, MuxStream **ret) {
        nghttp2_data_provider prd = { .read_callback = data_read_cb };
        NvList l;
        MuxStream *s;
        int32_t id;
        int r;

        assert(m);
        assert(!m->finished);
        assert(m->cfg.h2_client);
        assert(h);
        assert(peer);
        assert(ops);

        if (m->dead)
                return -ENOTCONN;
        if (m->cfg.max_streams > 0 && m->n_streams >= m->cfg.max_streams)
                return -EBUSY;
        r = nv_build(&l, h, 0, h->headers, h->n_headers);
        if (r < 0)
                return r;
        s = stream_new(m, 0);
        if (!s) {
                nv_done(&l);
                return -ENOMEM;
        }
        s->message = true;
        s->no_body = end_stream;
        s->userdata = userdata;
        s->peer = strdup(peer);
        s->authority = strdup(h->authority ?: "");
        s->method = strdup(h->method ?: "");
        prd.source.ptr = s;
        id = nghttp2_submit_request(m->h2, NULL, l.nva, l.n, end_stream ? NULL : &prd, s);
        nv_done(&l);
        if (id < 0) {
                s->id = -1;
                stream_maybe_finish(s);
                return id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? -EBUSY : -EINVAL;
        }
        s->id = id;
        s->ops = ops;
        mux_kick(m);
        if (ret)
                *ret = s;
        return 0;
}

void mux_stream_set_ops(MuxStream *s, const MuxStreamOps *ops, void *userdata) {
        assert(s);
        assert(s->message);

        s->ops = ops;
        s->userdata = userdata;
        if (!ops) {
                /* Nobody will consume what the stream handed out: it is not held any more. */
                stream_release_message(s);
                if (s->finish_pending) {
                        s->mux->any_finish = true;
                        mux_kick(s->mux);
                }
        }
}

int mux_respond(MuxStream *s, unsigned status, const HttpHeader *headers, size_t n_headers, bool end_stream) {
        nghttp2_data_provider prd = { .source.ptr = s, .read_callback = data_read_cb };
        NvList l;
        int r;

        assert(s);
        assert(s->message);
        assert(!s->mux->cfg.h2_client);
        assert(headers || n_headers == 0);

        if (s->id <= 0 || s->aborted || s->responded)
                return -EPIPE;
        r = nv_build(&l, NULL, status, headers, n_headers);
        if (r < 0)
                return r;
        r = nghttp2_submit_response(s->mux->h2, s->id, l.nva, l.n, end_stream ? NULL : &prd);
        nv_done(&l);
        if (r < 0)
                return -EINVAL;
        s->responded = true;
        s->no_body = end_stream;
        mux_kick(s->mux);
        return 0;
}

/* Whether the owner may still add to the body it sends. */
static bool msg_body_open(const MuxStream *s) {
        return s->id > 0 && !s->aborted && !s->read_eof && !s->no_body;
}

int mux_stream_write(MuxStream *s, const void *p, size_t n) {
        assert(s);
        assert(s->message);
        assert(p || n == 0);

        if (!msg_body_open(s))
                return -EPIPE;
        if (n == 0)
                return 0;
        if (buffer_reserve(&s->rbuf, &s->roff, s->rlen, &s->rcap, n) < 0)
                return -ENOMEM;
        memcpy(s->rbuf + s->roff + s->rlen, p, n);
        s->rlen += n;
        s->mux->msg_queued += n;
        stream_resume_data(s);
        mux_kick(s->mux);
        return msg_full(s);
}

bool mux_stream_full(MuxStream *s) {
        assert(s);
        assert(s->message);

        return msg_full(s);
}

int mux_stream_end(MuxStream *s, const HttpHeader *trailers, size_t n_trailers) {
        assert(s);
        assert(s->message);
        assert(trailers || n_trailers == 0);

        if (!msg_body_open(s))
                return -EPIPE;
        if (n_trailers > 0) {
                s->trailers = http_head_new(false);
                if (!s->trailers)
                        return -ENOMEM;
                for (size_t i = 0; i < n_trailers; i++)
                        if (http_head_add(s->trailers, trailers[i].name, strlen(trailers[i].name), trailers[i].value,
                                          strlen(trailers[i].value)) < 0)
                                return -ENOMEM;
        }
        s->read_eof = true;
        stream_resume_data(s);
        mux_kick(s->mux);
        return 0;
}

void mux_stream_consume(MuxStream *s, size_t n) {
        Mux *m;
        size_t k;

        assert(s);
        assert(s->message);
        m = s->mux;
        k = MIN(n, s->msg_held);

        s->bytes_in += n;
        m->bytes_in += n;
        s->msg_held -= k;
        if (m->dead)
                return;
        held_sub(m, k);
        if (s->id > 0) {
                (void) nghttp2_session_consume_stream(m->h2, s->id, n);
                mux_kick(m);
        } else if (s->finish_pending && s->msg_held == 0) {
                /* From the loop: the owner may be inside its own callback. */
                m->any_finish = true;
                mux_kick(m);
        } else if (k > 0)
                mux_kick(m); /* the connection window may have reopened */
}

/* ---- restarts: a held session's streams handed to the next process ---- */

#define HANDOVER_STREAMS_MAX 65536
#define HANDOVER_ULEN_MAX (RETAIN_STREAM_MAX + 2 * STREAM_READ_SIZE)
#define HANDOVER_WLEN_MAX ((size_t) 256 << 20)
#define HANDOVER_SESSION_MAX ((size_t) 1 << 30)

static const MuxCallbacks mux_loaded_callbacks = {};

bool mux_is_dead(Mux *m) {
        assert(m);
        return m->dead;
}

bool mux_heard(Mux *m) {
        assert(m);
        return m->heard;
}

void mux_sever(Mux *m) {
        struct linger l = { .l_onoff = 1, .l_linger = 0 };

        assert(m);
        if (m->dead)
                return;
        /* No GOAWAY, no close: to the peer this is a lost connection, which it resumes. */
        if (m->conn)
                (void) setsockopt(tls_conn_fd(m->conn), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        mux_fail(m, -ECONNRESET, "handed to the next process");
}

void mux_absorb(Mux *m, Mux *old) {
        assert(m);
        assert(old);
        assert(m->dead && old->dead);

        m->next_key = MAX(m->next_key, old->next_key);
        for (MuxStream *s = old->streams, *next; s; s = next) {
                bool closed = s->id == -1;

                next = s->next;
                if (!stream_resumable(s))
                        continue;
                stream_move(old, m, s);
                if (closed)
                        s->id = -1;
        }
        while (old->ended) {
                MuxStream *s = old->ended;

                stream_move(old, m, s); /* into m's streams: kept for its end there too */
                LIST_REMOVE(m->streams, s);
                m->n_streams--;
                s->id = -1;
                s->ended = true;
                LIST_PREPEND(m->ended, s);
                m->n_ended++;
        }
}

/* The streams a dead session would resume and those kept for their end,
 * within what mux_load() takes (the rest are reset, not handed over). */
static bool stream_saved(const MuxStream *s) {
        return (s->ended || stream_resumable(s)) && s->ulen <= HANDOVER_ULEN_MAX &&
               s->wlen <= HANDOVER_WLEN_MAX && s->rlen <= STREAM_READ_SIZE && handover_token_ok(s->authority, 255) &&
               (!s->peer || !*s->peer || handover_token_ok(s->peer, 255));
}

static int save_stream(MuxStream *s, FILE *f, int **fds, size_t *n_fds) {
        char flags[16];
        size_t k = 0, pos = 0;
        int fdi = -1;

        if (!s->ended) {
                /* Whoever closes it last -- PID 1 dropping what its store has no room for, or
                 * never passes on -- resets it: a connection lost on the way must not look
                 * complete (the review). The next process clears it (mux_load). */
                struct linger l = { .l_onoff = 1, .l_linger = 0 };
                int *t = realloc(*fds, sizeof(int) * (*n_fds + 1));
                if (!t)
                        return -ENOMEM;
                *fds = t;
                fdi = (int) *n_fds;
                t[(*n_fds)++] = s->fd;
                (void) setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        }
        if (s->read_eof)
                flags[k++] = 'R';
        if (s->remote_eof)
                flags[k++] = 'E';
        if (s->wr_shut)
                flags[k++] = 'W';
        if (s->end_sent)
                flags[k++] = 's';
        if (s->end_recv)
                flags[k++] = 'r';
        if (s->end_acked)
                flags[k++] = 'a';
        if (s->reading)
                flags[k++] = 'g';
        if (s->ended)
                flags[k++] = 'X';
        else if (s->id == -1)
                flags[k++] = 'D';
        flags[k++] = '-';
        flags[k] = 0;
        fprintf(f,
                "stream key=%" PRIu64 " fd=%d in=%" PRIu64 " out=%" PRIu64 " recv=%" PRIu64 " ubase=%" PRIu64
                " ulen=%zu wlen=%zu rlen=%zu fwd=%" PRIu32 " flags=%s authority=%s peer=%s\n",
                s->key, fdi, s->bytes_in, s->bytes_out, s->recv, s->ubase, s->ulen, s->wlen, s->rlen, s->forward,
                flags, s->authority ?: "-", s->peer && *s->peer ? s->peer : "-");
        while (pos < s->ulen) { /* what the peer may lack of ours, from where it is kept */
                size_t n;
                const uint8_t *p = retain_at(s, pos, &n);
                n = MIN(n, s->ulen - pos);
                fwrite(p, 1, n, f);
                pos += n;
        }
        if (s->wlen > 0)
                fwrite(s->wbuf + s->woff, 1, s->wlen, f);
        if (s->rlen > 0)
                fwrite(s->rbuf + s->roff, 1, s->rlen, f);
        return 0;
}

int mux_save(Mux *m, FILE *f, int **fds, size_t *n_fds) {
        MuxStream *lists[2] = { m->streams, m->ended };
        size_t total = 0, n = 0;

        assert(m);
        assert(m->dead);
        assert(f);
        assert(fds);
        assert(n_fds);

        fprintf(f, "mux next=%" PRIu64 "\n", m->next_key);
        for (size_t l = 0; l < ELEMENTSOF(lists); l++)
                for (MuxStream *s = lists[l]; s; s = s->next) {
                        size_t bytes = s->ulen + s->wlen + s->rlen;
                        int r;

                        if (!stream_saved(s) || total + bytes > HANDOVER_SESSION_MAX ||
                            ++n > HANDOVER_STREAMS_MAX + ENDED_MAX)
                                continue;
                        r = save_stream(s, f, fds, n_fds);
                        if (r < 0)
                                return r;
                        s->handed = true;
                        total += bytes;
                }
        fprintf(f, "end\n");
        return ferror(f) ? -EIO : 0;
}

void mux_forget_sockets(Mux *m) {
        assert(m);
        assert(m->dead);
        /* The handed-over ones close as they are: the next process has them (their last close
         * decides; save_stream() armed a reset for one that never arrives); the others are
         * reset, as any connection that ends abnormally. */
        for (MuxStream *s = m->streams; s; s = s->next) {
                stream_unbatch(s);
                stream_close_fd(s, !s->handed);
        }
}

static int load_stream(Mux *m, HandoverReader *r, const HandoverLine *l, int *fds, size_t n_fds, size_t *total) {
        uint64_t key, fdi = UINT64_MAX, ulen, wlen, rlen, fwd, in, out, recv, ubase;
        const char *flags, *authority, *peer, *v;
        const uint8_t *bytes;
        MuxStream *s;
        bool ended;
        int fd = -1;

        if (handover_u64(l, "key", UINT64_MAX / 2, &key) < 0 || key == 0 || key_find(m, key) ||
            handover_u64(l, "in", UINT64_MAX, &in) < 0 || handover_u64(l, "out", UINT64_MAX, &out) < 0 ||
            handover_u64(l, "recv", UINT64_MAX / 2, &recv) < 0 || handover_u64(l, "ubase", UINT64_MAX / 2, &ubase) < 0 ||
            handover_u64(l, "ulen", HANDOVER_ULEN_MAX, &ulen) < 0 ||
            handover_u64(l, "wlen", HANDOVER_WLEN_MAX, &wlen) < 0 ||
            handover_u64(l, "rlen", STREAM_READ_SIZE, &rlen) < 0 || handover_u64(l, "fwd", UINT32_MAX - 1, &fwd) < 0 ||
            handover_token(l, "flags", 15, &flags) < 0 || handover_token(l, "authority", 255, &authority) < 0 ||
            handover_token(l, "peer", 255, &peer) < 0 || strspn(flags, "REWsragXD-") != strlen(flags))
                return -EBADMSG;
        ended = strchr(flags, 'X');
        v = handover_get(l, "fd");
        if (ended ? !streq_ptr(v, "-1") : handover_u64(l, "fd", INT32_MAX, &fdi) < 0)
                return -EBADMSG;
        if ((!ended && m->n_streams >= HANDOVER_STREAMS_MAX) || (ended && m->n_ended >= ENDED_MAX))
                return -EBADMSG;
        *total += ulen + wlen + rlen;
        if (*total > HANDOVER_SESSION_MAX || handover_bytes(r, ulen + wlen + rlen, &bytes) < 0)
                return -EBADMSG;
        if (!ended && (fdi >= n_fds || fds[fdi] < 0)) { /* its socket did not arrive (or came twice) */
                log_warning("Handed-over connection %" PRIu64 " came without its socket (the fd store full?): "
                            "dropped.", key);
                return 0;
        }

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->mux = m;
        s->fd = -1;
        s->created = now_usec();
        s->authority = strdup(authority);
        s->peer = strdup(streq(peer, "-") ? "" : peer);
        if (!s->authority || !s->peer)
                goto oom;
        if (ulen > 0) {
                Kept *k = new0(Kept, 1);
                uint8_t *b = malloc(ulen);
                if (!k || !b) {
                        free(k);
                        free(b);
                        goto oom;
                }
                memcpy(b, bytes, ulen);
                *k = (Kept) { .buf = b, .cap = ulen, .len = ulen };
                s->kept = s->kept_tail = k;
        }
        if (wlen > 0) {
                s->wbuf = malloc(wlen);
                if (!s->wbuf)
                        goto oom;
                memcpy(s->wbuf, bytes + ulen, wlen);
                s->wcap = s->wlen = wlen;
        }
        if (rlen > 0) {
                s->rbuf = malloc(STREAM_READ_SIZE);
                if (!s->rbuf)
                        goto oom;
                memcpy(s->rbuf, bytes + ulen + wlen, rlen);
                s->rcap = STREAM_READ_SIZE;
                s->rlen = rlen;
        }
        s->ulen = ulen;
        s->ubase = ubase;
        s->recv = s->recv_acked = recv;
        s->bytes_in = in;
        s->bytes_out = out;
        s->forward = (uint32_t) fwd;
        s->read_eof = strchr(flags, 'R');
        s->remote_eof = strchr(flags, 'E');
        s->wr_shut = strchr(flags, 'W');
        s->end_sent = strchr(flags, 's');
        s->end_recv = strchr(flags, 'r');
        s->end_acked = strchr(flags, 'a');
        s->reading = strchr(flags, 'g');
        s->responded = true;
        s->recv_acked = stream_delivered(s); /* what it had written, as its last ack said at most */
        s->id = ended || strchr(flags, 'D') ? -1 : 0;
        key_insert(s, key);
        m->retained += ulen;
        if (ended) {
                s->ended = s->reported = true;
                LIST_PREPEND(m->ended, s);
                m->n_ended++;
                return 0;
        }
        LIST_PREPEND(m->streams, s);
        m->n_streams++;
        m->held += wlen;
        fd = fds[fdi];
        if (stream_attach_fd(s, fd) < 0) {
                s->fd = -1; /* the caller closes what it passed */
                return -ENOMEM;
        }
        fds[fdi] = -1; /* ours now */
        (void) setsockopt(fd, SOL_SOCKET, SO_LINGER, &(struct linger) {}, sizeof(struct linger));
        (void) sd_event_source_set_enabled(s->io, SD_EVENT_OFF); /* held: not read until adopted */
        return 0;
oom:
        retain_free(s);
        free(s->wbuf);
        free(s->rbuf);
        free(s->authority);
        free(s->peer);
        free(s);
        return -ENOMEM;
}

int mux_load(sd_event *e, const MuxConfig *cfg, HandoverReader *r, int *fds, size_t n_fds, Mux **ret) {
        _cleanup_(mux_freep) Mux *m = NULL;
        HandoverLine l;
        size_t total = 0;
        int k;

        assert(e);
        assert(cfg);
        assert(r);
        assert(ret);

        if (handover_next(r, &l) < 0 || !streq(l.kind, "mux"))
                return -EBADMSG;
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->event = sd_event_ref(e);
        m->cfg = *cfg;
        m->cfg.predecessor = NULL;
        m->cfg.resumable = true;
        m->cb = &mux_loaded_callbacks;
        m->dead = m->finished = true;
        m->error = -ECONNRESET;
        if (handover_u64(&l, "next", UINT64_MAX / 2, &m->next_key) < 0)
                return -EBADMSG;
        for (;;) {
                if (handover_next(r, &l) < 0)
                        return -EBADMSG;
                if (streq(l.kind, "end") && l.n == 0)
                        break;
                if (!streq(l.kind, "stream"))
                        return -EBADMSG;
                k = load_stream(m, r, &l, fds, n_fds, &total);
                if (k < 0)
                        return k;
        }
        *ret = TAKE_PTR(m);
        return 0;
}
