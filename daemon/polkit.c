// SPDX-License-Identifier: LGPL-2.1-or-later
/* polkit CheckAuthorization, asynchronously, as systemd's bus-polkit.c does it: the first
 * dispatch of a call starts the query and parks the call; polkit's answer re-queues the call
 * with sd_bus_enqueue_for_read(), and the second dispatch finds the verdict. root passes
 * without asking; on the user bus the bus itself admits only our own user. */

#include <assert.h>

#include "log.h"
#include "macro.h"
#include "polkit.h"
#include "time-util.h"

struct PolkitQuery {
        Manager *manager;
        PolkitQuery *next;
        sd_bus_message *request;
        sd_bus_slot *slot;
        char *action;
        bool done;
        int result;   /* 1 authorized, -EACCES denied, -EBADR interactive authorization needed */
        char *error;  /* polkit's own failure */
};

static PolkitQuery *query_free(PolkitQuery *q) {
        if (!q)
                return NULL;
        sd_bus_slot_unref(q->slot);
        sd_bus_message_unref(q->request);
        free(q->action);
        free(q->error);
        free(q);
        return NULL;
}

static void query_unlink(Manager *m, PolkitQuery *q) {
        for (PolkitQuery **p = &m->polkit_queries; *p; p = &(*p)->next)
                if (*p == q) {
                        *p = q->next;
                        return;
                }
}

void polkit_queries_free(Manager *m) {
        assert(m);

        while (m->polkit_queries) {
                PolkitQuery *q = m->polkit_queries;
                m->polkit_queries = q->next;
                query_free(q);
        }
}

static int on_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PolkitQuery *q = userdata;
        const sd_bus_error *e;
        int authorized = 0, challenge = 0, r;

        assert(reply);
        assert(q);
        assert(!q->done);

        q->slot = sd_bus_slot_unref(q->slot);
        q->done = true;
        e = sd_bus_message_get_error(reply);
        if (e) {
                q->result = -EACCES;
                q->error = strdup(e->message ?: e->name);
        } else {
                r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
                if (r >= 0)
                        r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
                q->result = r < 0 ? -EACCES : authorized ? 1 : challenge ? -EBADR : -EACCES;
        }
        /* Dispatch the parked call again; this time polkit_verify() has the answer. */
        r = sd_bus_enqueue_for_read(sd_bus_message_get_bus(q->request), q->request);
        if (r < 0) {
                log_error_errno(r, "Failed to requeue a method call after polkit answered: %m");
                query_unlink(q->manager, q);
                query_free(q);
        }
        return 0;
}

int polkit_verify(Manager *m, sd_bus_message *call, const char *action, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *req = NULL;
        PolkitQuery *q;
        const char *sender;
        uid_t uid;
        int r;

        assert(m);
        assert(call);
        assert(action);
        assert(error);

        for (q = m->polkit_queries; q; q = q->next)
                if (q->request == call && streq(q->action, action)) {
                        if (!q->done)
                                return 0; /* still waiting */
                        r = q->result;
                        query_unlink(m, q);
                        if (r == -EBADR)
                                sd_bus_error_setf(error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                                  "Interactive authentication required for %s.", action);
                        else if (r < 0)
                                sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED, "Not authorized for %s%s%s.",
                                                  action, q->error ? ": " : "", q->error ?: "");
                        query_free(q);
                        return r < 0 ? -EACCES : 1;
                }

        if (m->bus_mode == BUS_USER)
                return 1;
        r = sd_bus_query_sender_creds(call, SD_BUS_CREDS_EUID, &creds);
        if (r >= 0)
                r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                return r;
        if (uid == 0)
                return 1;

        sender = sd_bus_message_get_sender(call);
        if (!sender)
                return -EBADMSG;
        r = sd_bus_message_new_method_call(m->bus, &req, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r >= 0)
                r = sd_bus_message_append(req, "(sa{sv})sa{ss}us", "system-bus-name", 1, "name", "s", sender, action,
                                          0, (uint32_t) (sd_bus_message_get_allow_interactive_authorization(call) ? 1 : 0),
                                          "");
        if (r < 0)
                return r;
        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->manager = m;
        q->request = sd_bus_message_ref(call);
        q->action = strdup(action);
        if (!q->action) {
                query_free(q);
                return -ENOMEM;
        }
        /* Interactive authentication can take a human a while. */
        r = sd_bus_call_async(m->bus, &q->slot, req, on_polkit_reply, q, 5 * 60 * USEC_PER_SEC);
        if (r < 0) {
                query_free(q);
                return r;
        }
        (void) sd_bus_slot_set_description(q->slot, "polkit-check");
        q->next = m->polkit_queries;
        m->polkit_queries = q;
        return 0;
}
