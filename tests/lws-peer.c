// SPDX-License-Identifier: LGPL-2.1-or-later
/* An independent WebSocket client built on libwebsockets (and its OpenSSL), used to check
 * inletsd's server side: lws-peer PORT CAFILE TOKEN MODE, with MODE one of
 *   ok        handshake, HTTP/2 preface, ping/pong, fragmented SETTINGS acked, clean close
 *   badtoken  the upgrade must fail (401)
 *   oversize  a message over the server's limit must be closed with 1009
 * Exit 0 when everything expected happened; the last line says what was seen. */

#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const unsigned char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
static const unsigned char settings[9] = { 0, 0, 0, 4, 0, 0, 0, 0, 0 };
static const unsigned char settings_ack[9] = { 0, 0, 0, 4, 1, 0, 0, 0, 0 };

static struct {
        const char *mode, *token;
        int established, got_preface, got_pong, got_ack, step, peer_close_code, conn_error, done;
        char error[256];
        unsigned char rx[65536];
        size_t rx_len;
} st;

static int write_frame(struct lws *wsi, const unsigned char *p, size_t n, enum lws_write_protocol wp) {
        static unsigned char buf[LWS_PRE + 4 * 1024 * 1024];
        if (n > sizeof(buf) - LWS_PRE)
                return -1;
        memcpy(buf + LWS_PRE, p, n);
        return lws_write(wsi, buf + LWS_PRE, n, wp) < (int) n ? -1 : 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
        switch (reason) {
        case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
                unsigned char **p = in, *end = *p + len;
                char auth[512];
                snprintf(auth, sizeof(auth), "Bearer %s", st.token);
                if (lws_add_http_header_by_name(wsi, (const unsigned char *) "authorization:",
                                                (const unsigned char *) auth, (int) strlen(auth), p, end) ||
                    lws_add_http_header_by_name(wsi, (const unsigned char *) "x-inlets-ports:",
                                                (const unsigned char *) "39999", 5, p, end) ||
                    lws_add_http_header_by_name(wsi, (const unsigned char *) "x-inlets-client-id:",
                                                (const unsigned char *) "lws", 3, p, end))
                        return -1;
                break;
        }
        case LWS_CALLBACK_CLIENT_ESTABLISHED:
                st.established = 1;
                lws_callback_on_writable(wsi);
                break;
        case LWS_CALLBACK_CLIENT_RECEIVE:
                if (st.rx_len + len <= sizeof(st.rx)) {
                        memcpy(st.rx + st.rx_len, in, len);
                        st.rx_len += len;
                }
                if (st.rx_len >= sizeof(preface) - 1 && memcmp(st.rx, preface, sizeof(preface) - 1) == 0)
                        st.got_preface = 1;
                if (!st.got_ack && st.step >= 4 && memmem(st.rx, st.rx_len, settings_ack, 9)) {
                        st.got_ack = 1;
                        lws_callback_on_writable(wsi);
                }
                break;
        case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
                st.got_pong = 1;
                lws_callback_on_writable(wsi);
                break;
        case LWS_CALLBACK_CLIENT_WRITEABLE:
                if (strcmp(st.mode, "oversize") == 0) {
                        static unsigned char big[3 * 1024 * 1024];
                        if (st.step++ == 0 && write_frame(wsi, big, sizeof(big), LWS_WRITE_BINARY) < 0)
                                return -1;
                        break;
                }
                switch (st.step) {
                case 0: /* ping, then wait for the pong */
                        st.step = 1;
                        return write_frame(wsi, (const unsigned char *) "hi", 2, LWS_WRITE_PING);
                case 1:
                        if (!st.got_pong)
                                break;
                        st.step = 2;
                        if (write_frame(wsi, settings, 2, LWS_WRITE_BINARY | LWS_WRITE_NO_FIN) < 0)
                                return -1;
                        lws_callback_on_writable(wsi);
                        break;
                case 2:
                        st.step = 3;
                        if (write_frame(wsi, settings + 2, 3, LWS_WRITE_CONTINUATION | LWS_WRITE_NO_FIN) < 0)
                                return -1;
                        lws_callback_on_writable(wsi);
                        break;
                case 3:
                        st.step = 4;
                        if (write_frame(wsi, settings + 5, 4, LWS_WRITE_CONTINUATION) < 0)
                                return -1;
                        break;
                case 4:
                        if (!st.got_ack)
                                break;
                        st.step = 5;
                        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *) "bye", 3);
                        return -1;
                }
                break;
        case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
                if (len >= 2)
                        st.peer_close_code = ((unsigned char *) in)[0] << 8 | ((unsigned char *) in)[1];
                break;
        case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
                st.conn_error = 1;
                snprintf(st.error, sizeof(st.error), "%.*s", in ? (int) len : 4, in ? (const char *) in : "none");
                st.done = 1;
                break;
        case LWS_CALLBACK_CLIENT_CLOSED:
                st.done = 1;
                break;
        default:
                break;
        }
        return 0;
}

int main(int argc, char *argv[]) {
        static const struct lws_protocols protocols[] = { { "inlets", callback, 0, 65536, 0, NULL, 0 },
                                                          { NULL, NULL, 0, 0, 0, NULL, 0 } };
        struct lws_context_creation_info info;
        struct lws_client_connect_info ci;
        struct lws_context *ctx;
        time_t start = time(NULL);
        int ok;

        if (argc != 5) {
                fprintf(stderr, "usage: lws-peer PORT CAFILE TOKEN ok|badtoken|oversize\n");
                return 2;
        }
        st.mode = argv[4];
        st.token = argv[3];
        lws_set_log_level(LLL_ERR, NULL);

        memset(&info, 0, sizeof(info));
        info.port = CONTEXT_PORT_NO_LISTEN;
        info.protocols = protocols;
        info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.client_ssl_ca_filepath = argv[2];
        ctx = lws_create_context(&info);
        if (!ctx)
                return 2;

        memset(&ci, 0, sizeof(ci));
        ci.context = ctx;
        ci.address = "127.0.0.1";
        ci.port = atoi(argv[1]);
        ci.path = "/connect";
        ci.host = "127.0.0.1";
        ci.origin = "127.0.0.1";
        ci.ssl_connection = LCCSCF_USE_SSL;
        ci.local_protocol_name = "inlets";
        if (!lws_client_connect_via_info(&ci))
                st.done = st.conn_error = 1;

        while (!st.done && time(NULL) - start < 10)
                lws_service(ctx, 100);
        lws_context_destroy(ctx);

        printf("lws-peer %s: established=%d preface=%d pong=%d settings_ack=%d peer_close=%d error='%s'\n", st.mode,
               st.established, st.got_preface, st.got_pong, st.got_ack, st.peer_close_code, st.error);
        if (strcmp(st.mode, "ok") == 0)
                ok = st.established && st.got_preface && st.got_pong && st.got_ack && st.step == 5;
        else if (strcmp(st.mode, "badtoken") == 0)
                ok = !st.established && st.conn_error;
        else
                ok = st.established && st.peer_close_code == 1009;
        return ok ? 0 : 1;
}
