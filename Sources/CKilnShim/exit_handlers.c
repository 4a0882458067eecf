// Exit handlers that a program registers: atexit, on_exit and __cxa_atexit,
// as generated code sees them (see "Exit handlers" in CKilnShim.h).
//
// A program's handler is a stub into its loader's code. If libc kept it, the
// loader could never be freed: libc would call into unmapped memory at exit.
// So Kiln keeps them instead, in one process-wide list: a loader that goes
// runs (and forgets) the handlers that point into its region first, as
// dlclose runs a library's, and whatever is left runs at process exit, in
// reverse order of registration, from one handler of Kiln's own given to
// on_exit (which also passes the exit status to on_exit handlers).

#define _GNU_SOURCE
#include "CKilnShim.h"

#include <pthread.h>
#include <stdlib.h>

enum kind { plain, with_status, with_argument };

struct handler {
    enum kind kind;
    void *function;
    void *argument;
    struct handler *next;  // newest first
};

static pthread_mutex_t handlers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct handler *handlers;
static pthread_once_t runner_once = PTHREAD_ONCE_INIT;

static void call(struct handler *handler, int status) {
    switch (handler->kind) {
    case plain: ((void (*)(void))handler->function)(); break;
    case with_status: ((void (*)(int, void *))handler->function)(status, handler->argument); break;
    case with_argument: ((void (*)(void *))handler->function)(handler->argument); break;
    }
}

// Takes the newest handler that `matches`, or NULL.
static struct handler *take(uintptr_t low, uintptr_t high) {
    pthread_mutex_lock(&handlers_lock);
    struct handler **link = &handlers;
    while (*link && !((uintptr_t)(*link)->function >= low && (uintptr_t)(*link)->function < high)) link = &(*link)->next;
    struct handler *found = *link;
    if (found) *link = found->next;
    pthread_mutex_unlock(&handlers_lock);
    return found;
}

static void run_at_exit(int status, void *unused) {
    (void)unused;
    struct handler *handler;
    // A handler may register more: each is taken from the list before it runs.
    while ((handler = take(0, UINTPTR_MAX))) {
        call(handler, status);
        free(handler);
    }
}

static void install_runner(void) {
    on_exit(run_at_exit, NULL);
}

static int add(enum kind kind, void *function, void *argument) {
    struct handler *handler = malloc(sizeof *handler);
    if (handler == NULL) return -1;
    pthread_once(&runner_once, install_runner);
    *handler = (struct handler){ kind, function, argument, NULL };
    pthread_mutex_lock(&handlers_lock);
    handler->next = handlers;
    handlers = handler;
    pthread_mutex_unlock(&handlers_lock);
    return 0;
}

static int kiln_atexit(void (*function)(void)) { return add(plain, (void *)function, NULL); }
static int kiln_on_exit(void (*function)(int, void *), void *argument) { return add(with_status, (void *)function, argument); }
static int kiln_cxa_atexit(void (*function)(void *), void *argument, void *dso) {
    (void)dso;
    return add(with_argument, (void *)function, argument);
}

const void *kiln_atexit_entry(void) { return (const void *)kiln_atexit; }
const void *kiln_on_exit_entry(void) { return (const void *)kiln_on_exit; }
const void *kiln_cxa_atexit_entry(void) { return (const void *)kiln_cxa_atexit; }

int kiln_run_exit_handlers_in(uintptr_t low, uintptr_t high) {
    int count = 0;
    struct handler *handler;
    while ((handler = take(low, high))) {
        call(handler, 0);
        free(handler);
        count++;
    }
    return count;
}
