// SPDX-License-Identifier: LGPL-2.1-or-later
/* Worker threads for what must not run on the event loop: a call that blocks (getaddrinfo)
 * or burns CPU for a while (password hashes). Jobs wait in one queue and start in order, each on
 * the first idle thread (up to the Worker's maximum; with one, they run one at a time); each
 * job's done() comes back on the loop. */
#pragma once

#include <systemd/sd-event.h>

#include "macro.h"

typedef struct Worker Worker;
typedef struct WorkerJob WorkerJob;

/* Embedded in the caller's job, which owns it: the worker only holds pointers to queued and
 * finished jobs until it hands them back. run() runs on the worker thread and may touch only
 * what the job owns (copies made before submitting, results); done() runs on the loop after
 * it and may free the job. */
struct WorkerJob {
        void (*run)(WorkerJob *j);
        void (*done)(WorkerJob *j);
        /* Optional: frees a job the worker was freed before handing back. A job with it owns
         * nothing of the loop's, so worker_free() need not wait for it: it is dropped on the
         * thread when its run() returns (a lookup DNS never answers must not hold up exit). */
        void (*drop)(WorkerJob *j);
        WorkerJob *next;    /* the worker's: queued, then finished */
};

/* description names the threads' eventfd source ("password-checks"). Threads start when a job
 * finds none idle, max_threads at most. */
int worker_new(sd_event *e, const char *description, unsigned max_threads, Worker **ret);
/* Waits for the jobs running without a drop(); those with one are left to their threads, which
 * drop them when they return (a lookup DNS never answers must not hold up exit). Jobs queued or
 * finished get no done(): those with a drop() get that, the others their owner frees after
 * this. */
Worker *worker_free(Worker *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(Worker *, worker_free);
int worker_submit(Worker *w, WorkerJob *j);
