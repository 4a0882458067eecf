// A malloc that refuses to run while the world is stopped.
//
// Preloaded into `kiln` (LD_PRELOAD) by the tests: the runtime calls
// kiln_test_world_stopped(1) on the thread that stopped every other thread,
// and (0) before it resumes them (CKilnShim's world.c looks the hook up once).
// In between, a stopped thread may hold a malloc lock, so any allocation by
// that thread could deadlock the process; here it aborts with a message
// instead, so a test fails at once and says why.

#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <execinfo.h>

void *__libc_malloc(size_t size);
void *__libc_calloc(size_t count, size_t size);
void *__libc_realloc(void *pointer, size_t size);
void *__libc_memalign(size_t alignment, size_t size);
void __libc_free(void *pointer);

static __thread int stopped;
static long stops;

void kiln_test_world_stopped(int on) {
    stopped = on;
    if (on) __atomic_add_fetch(&stops, 1, __ATOMIC_RELAXED);
}

static void check(const char *what) {
    if (!stopped) return;
    static const char prefix[] = "allocation-guard: ";
    static const char suffix[] = " while the world is stopped\n";
    write(2, prefix, sizeof prefix - 1);
    write(2, what, strlen(what));
    write(2, suffix, sizeof suffix - 1);
    stopped = 0;
    void *frames[64];
    int count = backtrace(frames, 64);
    backtrace_symbols_fd(frames, count, 2);
    abort();
}

void *malloc(size_t size) { check("malloc"); return __libc_malloc(size); }
void *calloc(size_t count, size_t size) { check("calloc"); return __libc_calloc(count, size); }
void *realloc(void *pointer, size_t size) { check("realloc"); return __libc_realloc(pointer, size); }
void free(void *pointer) { if (pointer) check("free"); __libc_free(pointer); }
void *memalign(size_t alignment, size_t size) { check("memalign"); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { check("aligned_alloc"); return __libc_memalign(alignment, size); }
int posix_memalign(void **result, size_t alignment, size_t size) {
    check("posix_memalign");
    void *pointer = __libc_memalign(alignment, size);
    if (!pointer) return 12;
    *result = pointer;
    return 0;
}

// backtrace() loads libgcc_s on first use, which allocates: do it before any stop.
__attribute__((constructor)) static void warm_up(void) {
    void *frames[4];
    backtrace(frames, 4);
}

// Stops seen, printed at exit so a test knows the guard was active.
__attribute__((destructor)) static void report(void) {
    if (getenv("KILN_GUARD_REPORT")) {
        char text[64];
        int length = 0;
        long value = stops;
        char digits[24];
        int count = 0;
        do { digits[count++] = (char)('0' + value % 10); value /= 10; } while (value);
        const char *label = "allocation-guard: stops ";
        while (label[length]) { text[length] = label[length]; length++; }
        while (count) text[length++] = digits[--count];
        text[length++] = '\n';
        write(2, text, (size_t)length);
    }
}
