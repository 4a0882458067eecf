// See CKilnShim.h. The fast path of kiln_tls_address is two thread-local loads
// and a compare; everything that changes shared state takes one mutex.

#define _GNU_SOURCE
#include "CKilnShim.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>

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

uintptr_t kiln_stack_top(void) {
    if (cached_stack_top == 0) find_stack();
    return cached_stack_top;
}



// glibc's atexit lives in libc_nonshared.a, not in libc.so, so dlsym cannot find it;
// this one is linked into Kiln and registers the handler the same way.
static int kiln_atexit(void (*handler)(void)) {
    return atexit(handler);
}

const void *kiln_atexit_entry(void) {
    return (const void *)kiln_atexit;
}

static pthread_mutex_t layout_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *templates;  // layout_size bytes, guarded by layout_lock
static size_t layout_size;        // guarded by layout_lock
static pthread_key_t block_key;   // destructor unmaps a thread's block
static pthread_once_t block_key_once = PTHREAD_ONCE_INIT;

static __thread unsigned char *thread_block;
static __thread size_t thread_initialised;  // bytes of thread_block copied from templates

static void free_block(void *block) {
    munmap(block, KILN_TLS_CAPACITY);
    thread_block = NULL;
    thread_initialised = 0;
}

static void make_block_key(void) {
    pthread_key_create(&block_key, free_block);
}

int64_t kiln_tls_register(const void *bytes, size_t size, size_t alignment) {
    if (alignment == 0) alignment = 1;
    if (alignment > 4096 || (alignment & (alignment - 1)) != 0) return -1;
    pthread_mutex_lock(&layout_lock);
    size_t offset = (layout_size + alignment - 1) & ~(alignment - 1);
    size_t end = offset + size;
    if (end > KILN_TLS_CAPACITY || end < offset) {
        pthread_mutex_unlock(&layout_lock);
        return -1;
    }
    unsigned char *grown = realloc(templates, end ? end : 1);
    if (grown == NULL) {
        pthread_mutex_unlock(&layout_lock);
        return -1;
    }
    templates = grown;
    memset(templates + layout_size, 0, offset - layout_size);
    if (size) memcpy(templates + offset, bytes, size);
    layout_size = end;
    pthread_mutex_unlock(&layout_lock);
    return (int64_t)offset;
}

size_t kiln_tls_layout_size(void) {
    pthread_mutex_lock(&layout_lock);
    size_t size = layout_size;
    pthread_mutex_unlock(&layout_lock);
    return size;
}

// Creates the calling thread's block if needed and copies the templates
// registered since its last visit.
static __attribute__((noinline)) void *slow_address(int32_t offset) {
    if (thread_block == NULL) {
        void *block = mmap(NULL, KILN_TLS_CAPACITY, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (block == MAP_FAILED) abort();
        pthread_once(&block_key_once, make_block_key);
        pthread_setspecific(block_key, block);
        thread_block = block;
    }
    pthread_mutex_lock(&layout_lock);
    if (layout_size > thread_initialised) {
        memcpy(thread_block + thread_initialised, templates + thread_initialised,
               layout_size - thread_initialised);
        thread_initialised = layout_size;
    }
    pthread_mutex_unlock(&layout_lock);
    return thread_block + offset;
}

void *kiln_tls_address(int32_t offset) {
    if (__builtin_expect((uint32_t)offset < thread_initialised, 1))
        return thread_block + offset;
    return slow_address(offset);
}

const void *kiln_tls_address_entry(void) {
    return (const void *)kiln_tls_address;
}
