// A C library that runs threads of its own: each calls the function it was
// given in a loop until told to stop, and checks every result. The threads
// come from libc's pthread_create, so Kiln never sees them start; while they
// run, Kiln moves, rewrites and frees the code they call.
//
// Built as a shared object by the tests (gcc -shared -fPIC) and linked with
// `kiln run --link` or `Loader(linkLibraries:)`.

#include <pthread.h>
#include <stdatomic.h>

enum { most = 16 };

static long (*work)(long);
static pthread_t threads[most];
static int count;
static atomic_int stopping;
static atomic_long calls, errors;

static void *run(void *argument) {
    long x = (long)argument;
    while (!atomic_load(&stopping)) {
        if (work(x) != x * x + 1) atomic_fetch_add(&errors, 1);
        atomic_fetch_add(&calls, 1);
        x = (x + 7) % 1000;
    }
    return 0;
}

/// Starts `n` threads that call `function(x)` and expect x * x + 1. 0, or -1.
int workers_start(long (*function)(long), int n) {
    if (n > most) return -1;
    work = function;
    atomic_store(&stopping, 0);
    for (count = 0; count < n; count++) {
        if (pthread_create(&threads[count], 0, run, (void *)(long)count) != 0) return -1;
    }
    return 0;
}

/// Calls made so far by all threads.
long workers_calls(void) { return atomic_load(&calls); }

/// Stops and joins the threads; the number of wrong results.
long workers_stop(void) {
    atomic_store(&stopping, 1);
    for (int index = 0; index < count; index++) pthread_join(threads[index], 0);
    count = 0;
    return atomic_load(&errors);
}
