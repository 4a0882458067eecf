// Thread-local data: one process-wide layout of templates, one block per
// thread (see "Thread-local data" in CKilnShim.h).
//
// The fast path of kiln_tls_address is two thread-local loads and a compare.
// Everything that changes shared state takes `layout_lock`, which is never
// taken while the world is stopped by a thread that needs it.
//
// Offsets are reused: a range given back (`kiln_tls_unregister`, when no code
// that uses it is left) becomes a hole that later registrations fill first.
// A thread whose block already holds bytes of a reused range gets the new
// template copied in, so it reads the new initial value as a new thread
// would; threads that have not reached that range copy it when they do.

#define _GNU_SOURCE
#include "CKilnShim.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct hole {
    size_t offset, size;
};

// A thread with a block, so a reused range can be refreshed in it.
struct block_owner {
    unsigned char *block;
    size_t *initialised;  // the owner's `thread_initialised`
    struct block_owner *next, *previous;
};

static pthread_mutex_t layout_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *templates;       // layout_size bytes
static size_t layout_size;
static struct hole *holes;             // sorted by offset, never adjacent
static int hole_count, hole_capacity;
static struct block_owner *owners;
static pthread_key_t block_key;        // destructor unmaps a thread's block
static pthread_once_t block_key_once = PTHREAD_ONCE_INIT;

static __thread unsigned char *thread_block;
static __thread size_t thread_initialised;  // bytes of thread_block copied from templates

static void free_block(void *raw) {
    struct block_owner *owner = raw;
    pthread_mutex_lock(&layout_lock);
    if (owner->previous) owner->previous->next = owner->next; else owners = owner->next;
    if (owner->next) owner->next->previous = owner->previous;
    pthread_mutex_unlock(&layout_lock);
    munmap(owner->block, KILN_TLS_CAPACITY);
    free(owner);
    thread_block = NULL;
    thread_initialised = 0;
}

static void make_block_key(void) {
    pthread_key_create(&block_key, free_block);
}

// Takes `size` bytes at `alignment` from a hole (first fit); the offset, or -1.
static int64_t take_hole(size_t size, size_t alignment) {
    for (int index = 0; index < hole_count; index++) {
        size_t start = (holes[index].offset + alignment - 1) & ~(alignment - 1);
        size_t end = holes[index].offset + holes[index].size;
        if (start > end || end - start < size) continue;
        struct hole before = { holes[index].offset, start - holes[index].offset };
        struct hole after = { start + size, end - start - size };
        if (before.size && after.size) {
            if (hole_count == hole_capacity) return -1;  // no room to split: append instead
            memmove(&holes[index + 2], &holes[index + 1], (size_t)(hole_count - index - 1) * sizeof *holes);
            holes[index] = before;
            holes[index + 1] = after;
            hole_count++;
        } else if (before.size) {
            holes[index] = before;
        } else if (after.size) {
            holes[index] = after;
        } else {
            memmove(&holes[index], &holes[index + 1], (size_t)(hole_count - index - 1) * sizeof *holes);
            hole_count--;
        }
        return (int64_t)start;
    }
    return -1;
}

int64_t kiln_tls_register(const void *bytes, size_t size, size_t alignment) {
    if (alignment == 0) alignment = 1;
    if (alignment > 4096 || (alignment & (alignment - 1)) != 0) return -1;
    pthread_mutex_lock(&layout_lock);
    // Room for one more hole first, so a split never fails halfway.
    if (hole_count + 1 >= hole_capacity) {
        int capacity = hole_capacity ? 2 * hole_capacity : 16;
        struct hole *grown = realloc(holes, (size_t)capacity * sizeof *grown);
        if (grown) {
            holes = grown;
            hole_capacity = capacity;
        }
    }
    int64_t reused = size ? take_hole(size, alignment) : -1;
    size_t offset;
    if (reused >= 0) {
        offset = (size_t)reused;
        memcpy(templates + offset, bytes, size);
        for (struct block_owner *owner = owners; owner; owner = owner->next) {
            if (*owner->initialised <= offset) continue;
            size_t copied = *owner->initialised - offset < size ? *owner->initialised - offset : size;
            memcpy(owner->block + offset, bytes, copied);
        }
    } else {
        offset = (layout_size + alignment - 1) & ~(alignment - 1);
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
    }
    pthread_mutex_unlock(&layout_lock);
    return (int64_t)offset;
}

void kiln_tls_unregister(int64_t offset, size_t size) {
    if (size == 0 || offset < 0) return;
    pthread_mutex_lock(&layout_lock);
    size_t start = (size_t)offset, end = start + size;
    int index = 0;
    while (index < hole_count && holes[index].offset < start) index++;
    int joins_previous = index > 0 && holes[index - 1].offset + holes[index - 1].size == start;
    int joins_next = index < hole_count && holes[index].offset == end;
    if (joins_previous && joins_next) {
        holes[index - 1].size += size + holes[index].size;
        memmove(&holes[index], &holes[index + 1], (size_t)(hole_count - index - 1) * sizeof *holes);
        hole_count--;
    } else if (joins_previous) {
        holes[index - 1].size += size;
    } else if (joins_next) {
        holes[index].offset = start;
        holes[index].size += size;
    } else if (hole_count < hole_capacity) {
        memmove(&holes[index + 1], &holes[index], (size_t)(hole_count - index) * sizeof *holes);
        holes[index] = (struct hole){ start, size };
        hole_count++;
    }
    // (With no room for a new hole the range is simply not reused: never wrong.)
    pthread_mutex_unlock(&layout_lock);
}

size_t kiln_tls_layout_size(void) {
    pthread_mutex_lock(&layout_lock);
    size_t size = layout_size;
    pthread_mutex_unlock(&layout_lock);
    return size;
}

size_t kiln_tls_free_bytes(void) {
    pthread_mutex_lock(&layout_lock);
    size_t free_bytes = 0;
    for (int index = 0; index < hole_count; index++) free_bytes += holes[index].size;
    pthread_mutex_unlock(&layout_lock);
    return free_bytes;
}

// Creates the calling thread's block if needed and copies the templates
// registered since its last visit.
static __attribute__((noinline)) void *slow_address(int32_t offset) {
    if (thread_block == NULL) {
        void *block = mmap(NULL, KILN_TLS_CAPACITY, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        struct block_owner *owner = calloc(1, sizeof *owner);
        if (block == MAP_FAILED || owner == NULL) abort();
        owner->block = block;
        owner->initialised = &thread_initialised;
        pthread_once(&block_key_once, make_block_key);
        pthread_setspecific(block_key, owner);
        pthread_mutex_lock(&layout_lock);
        owner->next = owners;
        if (owners) owners->previous = owner;
        owners = owner;
        pthread_mutex_unlock(&layout_lock);
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

int kiln_tls_try_snapshot(unsigned char **blocks, size_t *initialised, size_t capacity, size_t *count) {
    if (pthread_mutex_trylock(&layout_lock) != 0) return 0;
    size_t found = 0;
    int complete = 1;
    for (struct block_owner *owner = owners; owner; owner = owner->next) {
        if (found == capacity) { complete = 0; found++; continue; }
        blocks[found] = owner->block;
        initialised[found] = *owner->initialised;
        found++;
    }
    pthread_mutex_unlock(&layout_lock);
    *count = found;
    return complete;
}
