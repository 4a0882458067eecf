// See CKilnMallocGuard.h. Each function counts, when its thread asked for it,
// and hands over to glibc's own allocator (the __libc_ names). With
// KILN_MALLOC_GUARD_ABORT set, the first counted call prints a backtrace and
// aborts instead, to find the caller.

#define _GNU_SOURCE
#include "CKilnMallocGuard.h"

#include <execinfo.h>
#include <stdlib.h>
#include <unistd.h>

void *__libc_malloc(size_t size);
void *__libc_calloc(size_t count, size_t size);
void *__libc_realloc(void *pointer, size_t size);
void *__libc_memalign(size_t alignment, size_t size);
void __libc_free(void *pointer);

static __thread int forbidden;
static long violations;
static int aborts;

void kiln_malloc_guard_forbid(int on) { forbidden = on; }

long kiln_malloc_guard_violations(void) { return __atomic_load_n(&violations, __ATOMIC_RELAXED); }

static void note(void) {
    if (!forbidden) return;
    __atomic_add_fetch(&violations, 1, __ATOMIC_RELAXED);
    if (aborts) {
        forbidden = 0;
        static const char message[] = "malloc guard: allocation while forbidden\n";
        write(2, message, sizeof message - 1);
        void *frames[64];
        backtrace_symbols_fd(frames, backtrace(frames, 64), 2);
        abort();
    }
}

void *malloc(size_t size) { note(); return __libc_malloc(size); }
void *calloc(size_t count, size_t size) { note(); return __libc_calloc(count, size); }
void *realloc(void *pointer, size_t size) { note(); return __libc_realloc(pointer, size); }
void free(void *pointer) { if (pointer) note(); __libc_free(pointer); }
void *memalign(size_t alignment, size_t size) { note(); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { note(); return __libc_memalign(alignment, size); }
int posix_memalign(void **result, size_t alignment, size_t size) {
    note();
    void *pointer = __libc_memalign(alignment, size);
    if (!pointer) return 12;
    *result = pointer;
    return 0;
}

// backtrace() loads libgcc_s on first use, which allocates: do it before any guard is on.
__attribute__((constructor)) static void warm_up(void) {
    aborts = getenv("KILN_MALLOC_GUARD_ABORT") != NULL;
    void *frames[4];
    backtrace(frames, 4);
}
