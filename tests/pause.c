/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pod sandbox's process for tests/kubelet.py (what registry.k8s.io/pause is; no registry
 * is reachable here): holds the pod's namespaces, reaps orphans, ends on SIGINT or SIGTERM. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) {
        (void) sig;
        _exit(0);
}

static void reap(int sig) {
        (void) sig;
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
}

int main(void) {
        signal(SIGINT, stop);
        signal(SIGTERM, stop);
        signal(SIGCHLD, reap);
        for (;;)
                pause();
}
