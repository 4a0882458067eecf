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



// Threads that have entered a loader's runtime, process-wide, each with the
// loaders it entered; an entry goes away when its thread exits, a loader's
// token when the loader goes.

struct kiln_thread {
    const void **loaders;  // the loaders the thread entered (count of them)
    int count, capacity;
    int every_loader;      // started by generated code: may run any loader's code
    struct kiln_thread *next, *previous;
};

static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kiln_thread *threads;       // guarded by threads_lock
static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;
static __thread struct kiln_thread *this_thread;

static void forget_thread(void *entry) {
    struct kiln_thread *thread = entry;
    pthread_mutex_lock(&threads_lock);
    if (thread->previous) thread->previous->next = thread->next; else threads = thread->next;
    if (thread->next) thread->next->previous = thread->previous;
    pthread_mutex_unlock(&threads_lock);
    if (this_thread == thread) this_thread = NULL;
    free(thread->loaders);
    free(thread);
}

static void make_thread_key(void) {
    pthread_key_create(&thread_key, forget_thread);
}

/// Links a new entry into the list (threads_lock not held).
static void link_thread(struct kiln_thread *thread) {
    pthread_once(&thread_key_once, make_thread_key);
    pthread_mutex_lock(&threads_lock);
    thread->next = threads;
    if (threads) threads->previous = thread;
    threads = thread;
    pthread_mutex_unlock(&threads_lock);
}

void kiln_thread_entered(const void *loader) {
    if (this_thread == NULL) {
        struct kiln_thread *thread = calloc(1, sizeof *thread);
        if (thread == NULL) return;
        link_thread(thread);
        pthread_setspecific(thread_key, thread);
        this_thread = thread;
    }
    pthread_mutex_lock(&threads_lock);
    struct kiln_thread *thread = this_thread;
    int known = 0;
    for (int index = 0; index < thread->count && !known; index++) known = thread->loaders[index] == loader;
    if (!known) {
        if (thread->count == thread->capacity) {
            int capacity = thread->capacity ? 2 * thread->capacity : 4;
            const void **grown = realloc(thread->loaders, capacity * sizeof *grown);
            if (grown == NULL) {
                thread->every_loader = 1;  // cannot say which: count it everywhere
                pthread_mutex_unlock(&threads_lock);
                return;
            }
            thread->loaders = grown;
            thread->capacity = capacity;
        }
        thread->loaders[thread->count++] = loader;
    }
    pthread_mutex_unlock(&threads_lock);
}

void kiln_loader_gone(const void *loader) {
    pthread_mutex_lock(&threads_lock);
    for (struct kiln_thread *thread = threads; thread; thread = thread->next) {
        for (int index = 0; index < thread->count; index++) {
            if (thread->loaders[index] == loader) {
                thread->loaders[index] = thread->loaders[--thread->count];
                break;
            }
        }
    }
    pthread_mutex_unlock(&threads_lock);
}

struct thread_start {
    void *(*start)(void *);
    void *argument;
    struct kiln_thread *entry;
};

static void *start_thread(void *raw) {
    struct thread_start start = *(struct thread_start *)raw;
    free(raw);
    this_thread = start.entry;
    pthread_setspecific(thread_key, start.entry);
    return start.start(start.argument);
}

int kiln_pthread_create(pthread_t *thread, const pthread_attr_t *attributes, void *(*start)(void *), void *argument) {
    // The new thread is noted before it exists, for every loader (it may run any code),
    // so no compaction can start between its creation and its first runtime entry.
    struct kiln_thread *entry = calloc(1, sizeof *entry);
    struct thread_start *box = malloc(sizeof *box);
    if (entry == NULL || box == NULL) {
        free(entry);
        free(box);
        return EAGAIN;
    }
    entry->every_loader = 1;
    *box = (struct thread_start){ start, argument, entry };
    link_thread(entry);
    int status = pthread_create(thread, attributes, start_thread, box);
    if (status != 0) {
        forget_thread(entry);
        free(box);
    }
    return status;
}

// glibc's atexit lives in libc_nonshared.a, not in libc.so, so dlsym cannot find it;
// this one is linked into Kiln and registers the handler the same way.
static int kiln_atexit(void (*handler)(void)) {
    return atexit(handler);
}

const void *kiln_atexit_entry(void) {
    return (const void *)kiln_atexit;
}

const void *kiln_pthread_create_entry(void) {
    return (const void *)kiln_pthread_create;
}

int kiln_other_threads_in(const void *loader) {
    int count = 0;
    pthread_mutex_lock(&threads_lock);
    for (struct kiln_thread *thread = threads; thread; thread = thread->next) {
        if (thread == this_thread) continue;
        int found = thread->every_loader;
        for (int index = 0; !found && index < thread->count; index++) found = thread->loaders[index] == loader;
        count += found;
    }
    pthread_mutex_unlock(&threads_lock);
    return count;
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
