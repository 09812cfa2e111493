// SPDX-License-Identifier: LGPL-2.1-or-later
/* RFC 6455 framing: see ws.h. The parser is a byte-level state machine for the header and
 * a bulk path for payload, so any split of the input gives the same result. */

#include <assert.h>
#include <gnutls/crypto.h>
#include <stdio.h>

#include "encoding.h"
#include "macro.h"
#include "ws.h"

void ws_parser_init(WsParser *p, bool expect_masked, uint64_t max_message) {
        assert(p);

        *p = (WsParser) {
                .expect_masked = expect_masked,
                .max_message = max_message,
                .hdr_need = 2,
        };
}

static int fail(WsParser *p, int code, const char *why) {
        p->close_code = code;
        p->error = why;
        return code == WS_CLOSE_TOO_BIG ? -EMSGSIZE : -EBADMSG;
}

void ws_mask_to(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[static 4], uint64_t offset) {
        uint8_t k[4];
        uint64_t k8;
        size_t i = 0;

        assert((dst && src) || len == 0);
        assert(key);

        for (size_t j = 0; j < 4; j++)
                k[j] = key[(offset + j) & 3];

        /* A word at a time: the byte loop costs several per cent of a core at 10 Gbit/s. One
         * pass from src to dst: a copy, then a mask, would be two. */
        memcpy(&k8, k, 4);
        memcpy((uint8_t *) &k8 + 4, k, 4);
        for (; i + 32 <= len; i += 32) {
                uint64_t w[4];
                memcpy(w, src + i, 32);
                w[0] ^= k8;
                w[1] ^= k8;
                w[2] ^= k8;
                w[3] ^= k8;
                memcpy(dst + i, w, 32);
        }
        for (; i + 8 <= len; i += 8) {
                uint64_t w;
                memcpy(&w, src + i, 8);
                w ^= k8;
                memcpy(dst + i, &w, 8);
        }
        for (; i < len; i++)
                dst[i] = src[i] ^ k[i & 3];
}

void ws_mask(uint8_t *buf, size_t len, const uint8_t key[static 4], uint64_t offset) {
        ws_mask_to(buf, buf, len, key, offset);
}

/* Header complete: validate it and set up the payload state. */
static int header_done(WsParser *p) {
        uint8_t b0 = p->hdr[0], b1 = p->hdr[1];
        uint64_t len = b1 & 0x7f;
        size_t o = 2;
        bool control;

        p->fin = b0 & 0x80;
        p->opcode = b0 & 0x0f;
        p->masked = b1 & 0x80;
        control = p->opcode & 0x08;

        if (len == 126) {
                len = (uint64_t) p->hdr[2] << 8 | p->hdr[3];
                if (len < 126)
                        return fail(p, WS_CLOSE_PROTOCOL_ERROR, "non-minimal length encoding");
                o = 4;
        } else if (len == 127) {
                len = 0;
                for (size_t i = 0; i < 8; i++)
                        len = len << 8 | p->hdr[2 + i];
                if (len >> 63)
                        return fail(p, WS_CLOSE_PROTOCOL_ERROR, "length with the high bit set");
                if (len <= 0xffff)
                        return fail(p, WS_CLOSE_PROTOCOL_ERROR, "non-minimal length encoding");
                o = 10;
        }
        if (p->masked)
                memcpy(p->key, p->hdr + o, 4);

        if (control) {
                if (!p->fin)
                        return fail(p, WS_CLOSE_PROTOCOL_ERROR, "fragmented control frame");
                if (len > WS_CONTROL_MAX)
                        return fail(p, WS_CLOSE_PROTOCOL_ERROR, "control frame longer than 125 bytes");
                p->ctrl_len = 0;
        } else if (p->opcode == WS_OP_CONTINUATION) {
                if (!p->in_message)
                        return fail(p, WS_CLOSE_PROTOCOL_ERROR, "continuation frame without a message");
        } else {
                if (p->in_message)
                        return fail(p, WS_CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one");
                p->message_len = 0;
                p->message_is_text = p->opcode == WS_OP_TEXT;
        }
        if (!control) {
                uint64_t max = p->message_is_text ? MIN(p->max_message, (uint64_t) WS_TEXT_MAX) : p->max_message;
                if (len > max || p->message_len + len > max)
                        return fail(p, WS_CLOSE_TOO_BIG, "message larger than the limit");
                p->message_len += len;
                p->in_message = !p->fin;
        }

        p->remaining = len;
        p->mask_offset = 0;
        p->in_payload = true;
        return 0;
}

static int frame_done(WsParser *p, const WsCallbacks *cb, void *userdata) {
        int r = 0;

        if ((p->opcode & 0x08) && cb->control)
                r = cb->control(userdata, p->opcode, p->ctrl, p->ctrl_len);
        else if (!(p->opcode & 0x08) && p->fin && p->message_is_text && cb->text)
                r = cb->text(userdata, NULL, 0, true);
        p->in_payload = false;
        p->hdr_len = 0;
        p->hdr_need = 2;
        return r;
}

int ws_parse(WsParser *p, uint8_t *buf, size_t len, const WsCallbacks *cb, void *userdata) {
        int r;

        assert(p);
        assert(buf || len == 0);
        assert(cb);

        if (p->close_code)
                return -EBADMSG; /* an earlier error is final */

        while (len > 0 || (p->in_payload && p->remaining == 0)) {
                if (!p->in_payload) {
                        /* Collect the header byte by byte: at most 14 bytes per frame. */
                        p->hdr[p->hdr_len++] = *buf++;
                        len--;
                        if (p->hdr_len == 2) {
                                uint8_t b0 = p->hdr[0], b1 = p->hdr[1], op = b0 & 0x0f;
                                size_t l7 = b1 & 0x7f;

                                if (b0 & 0x70)
                                        return fail(p, WS_CLOSE_PROTOCOL_ERROR, "reserved bits set");
                                if ((op > WS_OP_BINARY && op < WS_OP_CLOSE) || op > WS_OP_PONG)
                                        return fail(p, WS_CLOSE_PROTOCOL_ERROR, "unknown opcode");
                                if (op == WS_OP_TEXT && !p->allow_text)
                                        return fail(p, WS_CLOSE_UNSUPPORTED_DATA, "text frame (binary only)");
                                if (!!(b1 & 0x80) != p->expect_masked)
                                        return fail(p, WS_CLOSE_PROTOCOL_ERROR,
                                                    p->expect_masked ? "unmasked frame from a client"
                                                                     : "masked frame from a server");
                                p->hdr_need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
                        }
                        if (p->hdr_len == p->hdr_need) {
                                r = header_done(p);
                                if (r < 0)
                                        return r;
                        }
                        continue;
                }

                if (p->remaining > 0) {
                        size_t n = (size_t) MIN((uint64_t) len, p->remaining);

                        if (p->masked)
                                ws_mask(buf, n, p->key, p->mask_offset);
                        p->mask_offset += n;
                        p->remaining -= n;
                        if (p->opcode & 0x08) {
                                memcpy(p->ctrl + p->ctrl_len, buf, n);
                                p->ctrl_len += n;
                        } else if (p->message_is_text) {
                                if (cb->text) {
                                        r = cb->text(userdata, buf, n, false);
                                        if (r < 0)
                                                return r;
                                }
                        } else if (cb->data) {
                                r = cb->data(userdata, buf, n);
                                if (r < 0)
                                        return r;
                        }
                        buf += n;
                        len -= n;
                }
                if (p->remaining == 0) {
                        r = frame_done(p, cb, userdata);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

size_t ws_header_build(uint8_t buf[static WS_HEADER_MAX], WsOpcode op, uint64_t payload_len,
                       const uint8_t *mask) {
        size_t o = 2;

        assert(buf);

        buf[0] = 0x80 | (uint8_t) op;
        if (payload_len < 126)
                buf[1] = (uint8_t) payload_len;
        else if (payload_len <= 0xffff) {
                buf[1] = 126;
                buf[2] = (uint8_t) (payload_len >> 8);
                buf[3] = (uint8_t) payload_len;
                o = 4;
        } else {
                buf[1] = 127;
                for (size_t i = 0; i < 8; i++)
                        buf[2 + i] = (uint8_t) (payload_len >> (56 - 8 * i));
                o = 10;
        }
        if (mask) {
                buf[1] |= 0x80;
                memcpy(buf + o, mask, 4);
                o += 4;
        }
        return o;
}

char *ws_accept_key(const char *key) {
        _cleanup_free_ char *s = NULL;
        uint8_t digest[20];

        assert(key);

        if (asprintf(&s, "%s" WS_GUID, key) < 0)
                return NULL;
        if (gnutls_hash_fast(GNUTLS_DIG_SHA1, s, strlen(s), digest) < 0)
                return NULL;
        return base64mem(digest, sizeof(digest));
}
