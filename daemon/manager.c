// SPDX-License-Identifier: LGPL-2.1-or-later
/* The manager: event loop, signals, and the role object; see manager.h. */

#include <signal.h>

#include "client.h"
#include "log.h"
#include "manager.h"
#include "server.h"

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        if (m->stopping) {
                log_info("Second signal: exiting now.");
                return sd_event_exit(m->event, 0);
        }
        m->stopping = true;
        log_info("Received %s, shutting down.", strsignal((int) si->ssi_signo));
        if (m->server)
                server_stop(m->server);
        if (m->client)
                client_stop(m->client);
        /* What the sessions had queued (GOAWAY, close, close_notify) was flushed above. */
        return sd_event_exit(m->event, 0);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_notice("SIGHUP: live reload is not available in this version; restart to apply changes.");
        return 0;
}

int manager_new(Definition *def, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        sigset_t ss;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        r = sd_event_default(&m->event);
        if (r < 0)
                return r;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &ss, NULL) < 0)
                return -errno;
        (void) signal(SIGPIPE, SIG_IGN);
        r = sd_event_add_signal(m->event, &m->sigterm, SIGTERM, on_stop_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, &m->sigint, SIGINT, on_stop_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, &m->sighup, SIGHUP, on_sighup, m);
        if (r < 0)
                return r;
        m->def = def;
        *ret = TAKE_PTR(m);
        return 0;
}

int manager_start(Manager *m) {
        int r;

        switch (m->def->role) {
        case ROLE_SERVER:
                r = server_new(m, &m->server);
                if (r < 0)
                        return log_oom();
                return server_start(m->server);
        case ROLE_CLIENT:
                r = client_new(m, &m->client);
                if (r < 0)
                        return log_oom();
                return client_start(m->client);
        default:
                return log_error_errno(EOPNOTSUPP, "%s: Role=%s is not supported by this version yet.", m->def->path,
                                       role_to_string(m->def->role));
        }
}

int manager_run(Manager *m) {
        return sd_event_loop(m->event);
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        server_free(m->server);
        client_free(m->client);
        sd_event_source_disable_unref(m->sigterm);
        sd_event_source_disable_unref(m->sigint);
        sd_event_source_disable_unref(m->sighup);
        sd_event_unref(m->event);
        definition_free(m->def);
        free(m);
        return NULL;
}
