// GDB's JIT interface: the two symbols a debugger looks for by name.
//
// GDB puts a breakpoint in `__jit_debug_register_code`; each time it is
// called, GDB reads `__jit_debug_descriptor` and loads (or drops) the
// in-memory object file of `relevant_entry`. The objects are made by
// KilnLoader's GdbJit.swift; this file only keeps the list, under a mutex.

#include "CKilnShim.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { JIT_NOACTION = 0, JIT_REGISTER_FN = 1, JIT_UNREGISTER_FN = 2 };

struct jit_code_entry {
    struct jit_code_entry *next_entry;
    struct jit_code_entry *prev_entry;
    const char *symfile_addr;
    uint64_t symfile_size;
};

struct jit_descriptor {
    uint32_t version;
    uint32_t action_flag;
    struct jit_code_entry *relevant_entry;
    struct jit_code_entry *first_entry;
};

// Both must keep these names and stay in the executable's symbol table.
__attribute__((used, noinline)) void __jit_debug_register_code(void) {
    __asm__ volatile("" ::: "memory");
}

__attribute__((used)) struct jit_descriptor __jit_debug_descriptor = { 1, JIT_NOACTION, NULL, NULL };

static pthread_mutex_t entries_lock = PTHREAD_MUTEX_INITIALIZER;

void *kiln_gdb_register(const void *object, uint64_t size) {
    struct jit_code_entry *entry = calloc(1, sizeof *entry);
    if (!entry) return NULL;
    entry->symfile_addr = object;
    entry->symfile_size = size;
    pthread_mutex_lock(&entries_lock);
    entry->next_entry = __jit_debug_descriptor.first_entry;
    if (entry->next_entry) entry->next_entry->prev_entry = entry;
    __jit_debug_descriptor.first_entry = entry;
    __jit_debug_descriptor.relevant_entry = entry;
    __jit_debug_descriptor.action_flag = JIT_REGISTER_FN;
    __jit_debug_register_code();
    __jit_debug_descriptor.action_flag = JIT_NOACTION;
    pthread_mutex_unlock(&entries_lock);
    return entry;
}

void kiln_gdb_unregister(void *handle) {
    struct jit_code_entry *entry = handle;
    if (!entry) return;
    pthread_mutex_lock(&entries_lock);
    if (entry->prev_entry) entry->prev_entry->next_entry = entry->next_entry;
    else __jit_debug_descriptor.first_entry = entry->next_entry;
    if (entry->next_entry) entry->next_entry->prev_entry = entry->prev_entry;
    __jit_debug_descriptor.relevant_entry = entry;
    __jit_debug_descriptor.action_flag = JIT_UNREGISTER_FN;
    __jit_debug_register_code();
    __jit_debug_descriptor.action_flag = JIT_NOACTION;
    pthread_mutex_unlock(&entries_lock);
    free(entry);
}

int kiln_gdb_object_count(void) {
    pthread_mutex_lock(&entries_lock);
    int count = 0;
    for (struct jit_code_entry *entry = __jit_debug_descriptor.first_entry; entry; entry = entry->next_entry) count++;
    pthread_mutex_unlock(&entries_lock);
    return count;
}

int kiln_is_traced(void) {
    FILE *status = fopen("/proc/self/status", "re");
    if (!status) return 0;
    char line[256];
    int traced = 0;
    while (fgets(line, sizeof line, status)) {
        if (strncmp(line, "TracerPid:", 10) == 0) {
            traced = atoi(line + 10) != 0;
            break;
        }
    }
    fclose(status);
    return traced;
}
