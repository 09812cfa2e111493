// SPDX-License-Identifier: LGPL-2.1-or-later
/* Worker threads; see worker.h. One queue for all the threads of a Worker (any idle thread takes
 * the next job), a finished list, and an eventfd that wakes the loop, which takes the finished
 * jobs and calls their done(). A mutex guards them. Threads start when a job finds none idle,
 * up to the Worker's maximum, and block every signal: those stay the loop's (signalfd).
 *
 * worker_free() waits only for jobs without drop(): it joins the threads idle then (so each ends
 * cleanly, its thread-local state freed), leaves those running a job with drop() to end on
 * their own after dropping it, and the last one out frees the Worker. */

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "socket-util.h"
#include "worker.h"

typedef struct WorkerThread {
        Worker *worker;
        pthread_t id;
        bool started;
        bool running_drop;        /* under lock: in the run() of a job with drop() */
} WorkerThread;

struct Worker {
        sd_event *event;
        WorkerThread *slots;      /* max_threads of them */
        char *description;
        unsigned max_threads;
        int efd;
        sd_event_source *efd_source;
        pthread_mutex_t lock;
        pthread_cond_t cond;      /* a job queued, or stop */
        pthread_cond_t idle;      /* a job without drop() finished (worker_free() waits) */
        /* under lock: */
        WorkerJob *queue, *queue_tail, *finished;
        unsigned threads;         /* started and not ended */
        unsigned waiting;         /* of them, waiting for a job */
        unsigned running_kept;    /* jobs without drop() running */
        bool stop;                /* worker_free() was called */
};

static void worker_destroy(Worker *w) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        pthread_cond_destroy(&w->idle);
        free(w->slots);
        free(w->description);
        free(w);
}

static void drop_list(WorkerJob *j) {
        while (j) {
                WorkerJob *next = j->next;
                if (j->drop)
                        j->drop(j);
                j = next;
        }
}

int worker_new(sd_event *e, const char *description, unsigned max_threads, Worker **ret) {
        Worker *w;

        assert(e);
        assert(description);
        assert(max_threads > 0);
        assert(ret);

        w = new0(Worker, 1);
        if (!w)
                return -ENOMEM;
        w->description = strdup(description);
        w->slots = new0(WorkerThread, max_threads);
        if (!w->description || !w->slots) {
                free(w->description);
                free(w->slots);
                free(w);
                return -ENOMEM;
        }
        for (unsigned i = 0; i < max_threads; i++)
                w->slots[i].worker = w;
        w->event = sd_event_ref(e);
        w->max_threads = max_threads;
        w->efd = -1;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        pthread_cond_init(&w->idle, NULL);
        *ret = w;
        return 0;
}

Worker *worker_free(Worker *w) {
        WorkerJob *queue, *finished;
        sd_event_source *src;
        sd_event *e;
        pthread_t join[8];
        unsigned n_join = 0;
        bool last;
        int efd;

        if (!w)
                return NULL;
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_broadcast(&w->cond);
        /* A job without drop() uses what its owner frees after this: wait for it. */
        while (w->running_kept > 0)
                pthread_cond_wait(&w->idle, &w->lock);
        queue = TAKE_PTR(w->queue);
        w->queue_tail = NULL;
        finished = TAKE_PTR(w->finished);
        src = TAKE_PTR(w->efd_source);
        efd = TAKE_FD(w->efd);
        e = TAKE_PTR(w->event);
        /* Threads idle now end at once and are joined; those in a job with drop() are not
         * waited for. Whichever thread ends last frees w (when one is left now): nothing below
         * touches w. */
        for (unsigned i = 0; i < w->max_threads; i++) {
                WorkerThread *t = &w->slots[i];
                if (!t->started)
                        continue;
                if (t->running_drop || n_join == ELEMENTSOF(join))
                        (void) pthread_detach(t->id);
                else
                        join[n_join++] = t->id;
                t->started = false;
        }
        last = w->threads == 0;
        pthread_mutex_unlock(&w->lock);
        for (unsigned i = 0; i < n_join; i++)
                (void) pthread_join(join[i], NULL);
        /* Once unlocked, the last thread to end may free w at any time. */
        sd_event_source_disable_unref(src);
        safe_close(efd);
        sd_event_unref(e);
        drop_list(queue);
        drop_list(finished);
        if (last)
                worker_destroy(w);
        return NULL;
}

static void *worker_main(void *userdata) {
        WorkerThread *t = userdata;
        Worker *w = t->worker;
        uint64_t one = 1;
        sigset_t all;
        bool last;

        sigfillset(&all);
        (void) pthread_sigmask(SIG_BLOCK, &all, NULL);
        pthread_mutex_lock(&w->lock);
        for (;;) {
                WorkerJob *j;
                bool kept;

                w->waiting++;
                while (!w->queue && !w->stop)
                        pthread_cond_wait(&w->cond, &w->lock);
                w->waiting--;
                if (w->stop)
                        break;
                j = w->queue;
                w->queue = j->next;
                if (!w->queue)
                        w->queue_tail = NULL;
                kept = !j->drop;
                if (kept)
                        w->running_kept++;
                t->running_drop = !kept;
                pthread_mutex_unlock(&w->lock);

                j->run(j);

                pthread_mutex_lock(&w->lock);
                t->running_drop = false;
                if (w->stop && !kept) {
                        /* Nobody takes it back any more: its own drop() frees it. */
                        pthread_mutex_unlock(&w->lock);
                        j->drop(j);
                        pthread_mutex_lock(&w->lock);
                        continue;
                }
                j->next = w->finished;
                w->finished = j;
                if (kept && --w->running_kept == 0)
                        pthread_cond_signal(&w->idle);
                if (!w->stop)
                        (void) write(w->efd, &one, sizeof(one));
        }
        last = --w->threads == 0 && w->stop && !w->event; /* worker_free() is done with w */
        pthread_mutex_unlock(&w->lock);
        if (last)
                worker_destroy(w);
        return NULL;
}

static int on_finished(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Worker *w = userdata;
        WorkerJob *list = NULL;
        uint64_t n;

        (void) read(fd, &n, sizeof(n));
        pthread_mutex_lock(&w->lock);
        /* In the order they finished (the list is newest first). */
        while (w->finished) {
                WorkerJob *j = w->finished;
                w->finished = j->next;
                j->next = list;
                list = j;
        }
        pthread_mutex_unlock(&w->lock);
        while (list) {
                WorkerJob *j = list;
                list = j->next;
                j->next = NULL;
                j->done(j); /* may free j */
        }
        return 0;
}

/* The eventfd and its source, once. */
static int worker_setup(Worker *w) {
        int r;

        if (w->efd < 0) {
                w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (w->efd < 0)
                        return -errno;
        }
        if (!w->efd_source) {
                r = sd_event_add_io(w->event, &w->efd_source, w->efd, EPOLLIN, on_finished, w);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(w->efd_source, w->description);
        }
        return 0;
}

int worker_submit(Worker *w, WorkerJob *j) {
        int r = 0;

        assert(w);
        assert(j);
        assert(j->run);
        assert(j->done);

        r = worker_setup(w);
        if (r < 0)
                return log_error_errno(r, "Cannot start the %s thread: %m", w->description);
        j->next = NULL;
        pthread_mutex_lock(&w->lock);
        if (w->queue_tail)
                w->queue_tail->next = j;
        else
                w->queue = j;
        w->queue_tail = j;
        /* Every thread busy (or none yet): one more, up to the maximum. Threads end only at
         * worker_free(), so the next slot is free. (Started under the lock: it waits for it.) */
        if (w->waiting == 0 && w->threads < w->max_threads) {
                WorkerThread *t = &w->slots[w->threads];
                r = -pthread_create(&t->id, NULL, worker_main, t);
                if (r >= 0) {
                        t->started = true;
                        w->threads++;
                } else if (w->threads == 0) {
                        /* No thread to run it: take it back out. */
                        WorkerJob **p = &w->queue;
                        while (*p && *p != j)
                                p = &(*p)->next;
                        if (*p)
                                *p = j->next;
                        w->queue_tail = NULL;
                        for (WorkerJob *q = w->queue; q; q = q->next)
                                w->queue_tail = q;
                } else
                        r = 0; /* the threads there take it */
        }
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        if (r < 0)
                return log_error_errno(r, "Cannot start the %s thread: %m", w->description);
        return 0;
}
