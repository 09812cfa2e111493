// SPDX-License-Identifier: LGPL-2.1-or-later
/* The worker thread; see worker.h. A mutex guards the queue and the finished list; an eventfd
 * wakes the loop, which takes the finished jobs and calls their done(). The thread blocks
 * every signal: they stay the loop's (signalfd). */

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

struct Worker {
        sd_event *event;
        char *description;
        int efd;
        sd_event_source *efd_source;
        pthread_t thread;
        bool started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        WorkerJob *queue, *queue_tail, *finished; /* under lock */
        WorkerJob *running;                       /* under lock */
        bool stop;
        bool orphaned; /* under lock: worker_free() left; the thread frees what is left */
};

static void worker_destroy(Worker *w) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
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

int worker_new(sd_event *e, const char *description, Worker **ret) {
        Worker *w;

        assert(e);
        assert(description);
        assert(ret);

        w = new0(Worker, 1);
        if (!w)
                return -ENOMEM;
        w->description = strdup(description);
        if (!w->description) {
                free(w);
                return -ENOMEM;
        }
        w->event = sd_event_ref(e);
        w->efd = -1;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        *ret = w;
        return 0;
}

Worker *worker_free(Worker *w) {
        WorkerJob *queue, *finished;
        sd_event_source *src;
        sd_event *e;
        pthread_t thread;
        bool orphan = false, started;
        int efd;

        if (!w)
                return NULL;
        pthread_mutex_lock(&w->lock);
        thread = w->thread;
        started = w->started;
        w->stop = true;
        pthread_cond_signal(&w->cond);
        if (w->running && w->running->drop)
                orphan = w->orphaned = true;
        /* Once unlocked, an orphaned thread may free w at any time: take what is the loop's now. */
        queue = TAKE_PTR(w->queue);
        finished = TAKE_PTR(w->finished);
        src = TAKE_PTR(w->efd_source);
        efd = TAKE_FD(w->efd);
        e = TAKE_PTR(w->event);
        pthread_mutex_unlock(&w->lock);
        if (orphan)
                (void) pthread_detach(thread);
        else if (started)
                pthread_join(thread, NULL);
        sd_event_source_disable_unref(src);
        safe_close(efd);
        sd_event_unref(e);
        drop_list(queue);
        drop_list(finished);
        if (!orphan)
                worker_destroy(w);
        return NULL;
}

static void *worker_main(void *userdata) {
        Worker *w = userdata;
        uint64_t one = 1;
        sigset_t all;

        sigfillset(&all);
        (void) pthread_sigmask(SIG_BLOCK, &all, NULL);
        pthread_mutex_lock(&w->lock);
        for (;;) {
                WorkerJob *j;

                while (!w->queue && !w->stop)
                        pthread_cond_wait(&w->cond, &w->lock);
                if (w->stop)
                        break;
                j = w->queue;
                w->queue = j->next;
                if (!w->queue)
                        w->queue_tail = NULL;
                w->running = j;
                pthread_mutex_unlock(&w->lock);

                j->run(j);

                pthread_mutex_lock(&w->lock);
                w->running = NULL;
                if (w->orphaned) {
                        pthread_mutex_unlock(&w->lock);
                        j->drop(j);
                        worker_destroy(w);
                        return NULL;
                }
                j->next = w->finished;
                w->finished = j;
                (void) write(w->efd, &one, sizeof(one));
        }
        pthread_mutex_unlock(&w->lock);
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

static int worker_start(Worker *w) {
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
        r = -pthread_create(&w->thread, NULL, worker_main, w);
        if (r < 0)
                return r;
        w->started = true;
        return 0;
}

int worker_submit(Worker *w, WorkerJob *j) {
        int r;

        assert(w);
        assert(j);
        assert(j->run);
        assert(j->done);

        if (!w->started) {
                r = worker_start(w);
                if (r < 0)
                        return log_error_errno(r, "Cannot start the %s thread: %m", w->description);
        }
        j->next = NULL;
        pthread_mutex_lock(&w->lock);
        if (w->queue_tail)
                w->queue_tail->next = j;
        else
                w->queue = j;
        w->queue_tail = j;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        return 0;
}
