// A C library that runs threads of its own: each calls the function it was
// given in a loop until told to stop, and checks every result. The threads
// come from libc's pthread_create, so Kiln never sees them start; while they
// run, Kiln moves, rewrites and frees the code they call.
//
// Built as a shared object by the tests (gcc -shared -fPIC) and linked with
// `kiln run --link` or `Loader(linkLibraries:)`.

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

enum { most = 16 };

static long (*work)(long);
static pthread_t threads[most];
static int count;
static atomic_int stopping;
static atomic_long calls, errors;

static int blocking;

static void *run(void *argument) {
    if (blocking) {
        // Like many libraries' workers: every signal blocked, for the main thread to handle.
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, 0);
    }
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

/// The same with every signal blocked in the threads (they cannot be stopped).
int workers_start_blocking(long (*function)(long), int n) {
    blocking = 1;
    int status = workers_start(function, n);
    blocking = 0;
    return status;
}

/// A thread that blocks every signal and waits in read() on a pipe nobody writes to until
/// `workers_stop`: it cannot be stopped, but it is quiet in the kernel.
static int quiet_pipe[2] = { -1, -1 };
static pthread_t quiet_thread;

static void *wait_quietly(void *unused) {
    (void)unused;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, 0);
    char byte;
    while (read(quiet_pipe[0], &byte, 1) < 0) {}
    return 0;
}

int workers_start_quiet(void) {
    if (pipe(quiet_pipe) != 0) return -1;
    return pthread_create(&quiet_thread, 0, wait_quietly, 0) == 0 ? 0 : -1;
}

/// Threads that come and go: each calls the function once and exits, `rounds` times, and
/// checks the result.
static long (*churned)(long);
static void *once(void *argument) {
    long x = (long)argument;
    if (churned(x) != x * x + 1) atomic_fetch_add(&errors, 1);
    atomic_fetch_add(&calls, 1);
    return 0;
}

long workers_churn(long (*function)(long), long rounds) {
    churned = function;
    for (long round = 0; round < rounds; round++) {
        pthread_t thread;
        if (pthread_create(&thread, 0, once, (void *)(round % 1000)) != 0) return -1;
        pthread_join(thread, 0);
    }
    return atomic_load(&errors);
}

/// Calls made so far by all threads.
long workers_calls(void) { return atomic_load(&calls); }

/// Stops and joins the threads; the number of wrong results.
long workers_stop(void) {
    atomic_store(&stopping, 1);
    for (int index = 0; index < count; index++) pthread_join(threads[index], 0);
    count = 0;
    if (quiet_pipe[1] >= 0) {
        (void)write(quiet_pipe[1], "x", 1);
        pthread_join(quiet_thread, 0);
        close(quiet_pipe[0]);
        close(quiet_pipe[1]);
        quiet_pipe[0] = quiet_pipe[1] = -1;
    }
    return atomic_load(&errors);
}
