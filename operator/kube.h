// SPDX-License-Identifier: LGPL-2.1-or-later
/* A Kubernetes API client: credentials from the pod's service account (in-cluster) or a
 * kubeconfig; blocking JSON calls (libcurl, short timeouts); and LIST-then-WATCH streams on
 * sd-event through a curl multi handle, resuming from the last resourceVersion, following
 * bookmarks, and re-listing when the server says 410 Gone. */
#pragma once

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef struct Kube Kube;
typedef struct KubeWatch KubeWatch;

#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

int kube_new_in_cluster(const char *sa_dir, Kube **ret, char **ret_error);
int kube_new_from_kubeconfig(const char *path, const char *context, Kube **ret, char **ret_error);
Kube *kube_free(Kube *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(Kube *, kube_free);
const char *kube_server(Kube *k);
/* How long one watch request lasts before the server ends it and it is resumed (default 290 s). */
void kube_set_watch_timeout(Kube *k, unsigned sec);

/* One request. Returns the HTTP status (answers of every status parse into *ret_json when
 * JSON), or <0 when none came (*ret_error says why). content_type NULL: application/json. */
long kube_call(Kube *k, const char *method, const char *path, json_object *body, const char *content_type,
               json_object **ret_json, char **ret_error);
/* The "message" of a Status answer, or a generic text. */
const char *kube_status_message(json_object *status);

/* type: "RELIST" (object NULL: forget what you had; ADDED events for everything follow),
 * "ADDED", "MODIFIED", "DELETED". */
typedef void (*KubeEventFunc)(const char *type, json_object *object, void *userdata);

/* Lists path (e.g. "/api/v1/services") and then watches it for as long as k lives. */
int kube_watch(Kube *k, sd_event *event, const char *path, KubeEventFunc f, void *userdata);
