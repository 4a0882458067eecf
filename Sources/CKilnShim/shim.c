// See CKilnShim.h. The fast path of kiln_tls_address is two thread-local loads
// and a compare; everything that changes shared state takes one mutex.

#define _GNU_SOURCE
#include "CKilnShim.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

int kiln_memfd_create(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}

int kiln_punch_hole(int fd, int64_t offset, int64_t count) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, count);
}

static __thread uintptr_t cached_stack_top;

static void find_stack(void) {
    // A thread's stack never moves; finding it is slow for the main thread (glibc reads
    // /proc/self/maps), so each thread asks once.
    pthread_attr_t attributes;
    if (pthread_getattr_np(pthread_self(), &attributes) != 0) return;
    void *address = NULL;
    size_t size = 0;
    if (pthread_attr_getstack(&attributes, &address, &size) == 0) cached_stack_top = (uintptr_t)address + size;
    pthread_attr_destroy(&attributes);
}

int32_t kiln_thread_id(void) {
    return (int32_t)gettid();
}

uintptr_t kiln_stack_top(void) {
    if (cached_stack_top == 0) find_stack();
    return cached_stack_top;
}





// A dlsym that leaves the calling thread's dlerror state alone: glibc keeps
// that state per thread, and a successful dlsym clears a pending error, so the
// lookups run on a short-lived thread of their own.
struct lookup {
    void *const *handles;
    int count;
    const char *name;
    void *found;
};

static void *look_up(void *raw) {
    struct lookup *lookup = raw;
    for (int index = 0; index < lookup->count && !lookup->found; index++) {
        lookup->found = dlsym(lookup->handles[index], lookup->name);
    }
    if (!lookup->found) lookup->found = dlsym(RTLD_DEFAULT, lookup->name);
    return NULL;
}

void *kiln_dlsym_elsewhere(void *const *handles, int count, const char *name) {
    struct lookup lookup = { handles, count, name, NULL };
    pthread_t thread;
    if (pthread_create(&thread, NULL, look_up, &lookup) != 0) return NULL;
    pthread_join(thread, NULL);
    return lookup.found;
}
