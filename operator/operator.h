// SPDX-License-Identifier: LGPL-2.1-or-later
/* inlets-operator: Services of type LoadBalancer get a public IP through an inletsd exit
 * server: a cloud host of their own, or a shared one an ExitServer resource names.
 * Level-triggered: watches fill caches (Services, Tunnels, ExitServers), every
 * change queues the Service's key, and reconcile() makes the world match, one step at a time,
 * from whatever state it finds (so restarts, resyncs and conflicts never make a second host). */
#pragma once

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "cloudapi.h"
#include "kube.h"

#define TUNNEL_GROUP "inlets.inlets.dev"
#define TUNNEL_VERSION "v1alpha1"
#define TUNNEL_FINALIZER "inlets.inlets.dev/host-cleanup"
/* A Service annotated with it uses that ExitServer (of its namespace) instead of a cloud host. */
#define EXIT_SERVER_ANNOTATION "operator.inlets.dev/exit-server"

typedef struct Options {
        CloudFlags cloud;                 /* --provider, --access-token-file, --region, ... */
        const char *client_image, *package_url, *kubeconfig, *context;
        json_object *client_resources;    /* the client containers' resources (requests, limits) */
        bool annotated_only;
        uint16_t control_port;
        uint64_t poll_usec, resync_usec, watch_timeout_usec;
} Options;

typedef struct CacheEntry CacheEntry;
typedef struct WorkItem WorkItem;

typedef struct Operator {
        Options opt;
        Kube *kube;
        const CloudProvider *provider;    /* NULL: no cloud; shared exit servers only */
        CloudApi cloud;
        sd_event *event;
        sd_event_source *work_timer, *resync_timer;
        CacheEntry *services, *tunnels, *exit_servers; /* keyed "namespace/name" */
        WorkItem *work;                   /* keyed by the Service: "namespace/name" */
} Operator;

/* Adds the work and resync timers and the three watches to o->event. */
int operator_start(Operator *o);
void operator_enqueue(Operator *o, const char *key, uint64_t delay_usec);
void operator_on_service(const char *type, json_object *obj, void *userdata);
void operator_on_tunnel(const char *type, json_object *obj, void *userdata);
void operator_on_exit_server(const char *type, json_object *obj, void *userdata);
/* One step for the Service at key; <0 means "try again later". */
int operator_reconcile(Operator *o, const char *key);
void operator_resync(Operator *o);
void operator_done(Operator *o);
