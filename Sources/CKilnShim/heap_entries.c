// The managed heap's entries from generated code, and the thread's pointer to
// its allocation record (see "Managed heap" in CKilnShim.h).
//
// Generated code reads `thread_record` inline (fs-relative, at the offset
// `kiln_heap_record_offset` reports), so the variable uses the initial-exec
// TLS model: its offset from the thread pointer is the same in every thread.
// Until a thread's first slow-path entry attaches a real record, the pointer
// holds `empty_record`, whose cursor and limit are 0: every inline
// allocation fails its bounds check and takes the slow path.
//
// The entries are C so that they can note the caller's frame: the rbp of the
// generated code that called them and the return address into it, which is
// where the collector starts walking that thread's frames precisely. The
// frame stays noted while the handler runs (a collection happens inside it).

#include "CKilnShim.h"

#include <stddef.h>

static uint64_t empty_record[8];

static __thread __attribute__((tls_model("initial-exec"))) void *thread_record = empty_record;
static __thread uintptr_t entry_frame, entry_return;

static kiln_heap_allocate_handler allocate_handler;
static kiln_heap_collect_handler collect_handler;
static kiln_heap_check_handler check_handler;

void kiln_heap_install_handlers(kiln_heap_allocate_handler allocate, kiln_heap_collect_handler collect,
                                kiln_heap_check_handler check) {
    allocate_handler = allocate;
    collect_handler = collect;
    check_handler = check;
}

intptr_t kiln_heap_record_offset(void) {
    uintptr_t thread_pointer;
    __asm__("mov %%fs:0, %0" : "=r"(thread_pointer));
    return (intptr_t)((uintptr_t)&thread_record - thread_pointer);
}

void *kiln_heap_thread_record(void) { return thread_record; }
void kiln_heap_set_thread_record(void *record) { thread_record = record ? record : empty_record; }
void *kiln_heap_empty_record(void) { return empty_record; }

uintptr_t kiln_heap_entry_frame(void) { return entry_frame; }
uintptr_t kiln_heap_entry_return(void) { return entry_return; }

// `__builtin_frame_address(0)` makes the entry keep a frame pointer: its saved
// rbp is the caller's.
static uint64_t allocate_entry(uint64_t header) {
    uintptr_t saved_frame = entry_frame, saved_return = entry_return;
    entry_frame = *(uintptr_t *)__builtin_frame_address(0);
    entry_return = (uintptr_t)__builtin_return_address(0);
    uint64_t result = allocate_handler(thread_record, header, entry_frame, entry_return);
    entry_frame = saved_frame;
    entry_return = saved_return;
    return result;
}

static void collect_entry(void) {
    uintptr_t saved_frame = entry_frame, saved_return = entry_return;
    entry_frame = *(uintptr_t *)__builtin_frame_address(0);
    entry_return = (uintptr_t)__builtin_return_address(0);
    collect_handler(thread_record, entry_frame, entry_return);
    entry_frame = saved_frame;
    entry_return = saved_return;
}

// Never collects: no frame to note.
static uintptr_t check_entry(uint64_t object, int64_t index, uint32_t access) {
    return check_handler(thread_record, object, index, access, (uintptr_t)__builtin_return_address(0));
}

void *kiln_heap_allocate_entry(void) { return (void *)allocate_entry; }
void *kiln_heap_check_entry(void) { return (void *)check_entry; }
void *kiln_heap_collect_entry(void) { return (void *)collect_entry; }

static __thread uintptr_t thread_stack_top;

uintptr_t kiln_heap_thread_stack_top(void) { return thread_stack_top; }
void kiln_heap_set_thread_stack_top(uintptr_t top) { thread_stack_top = top; }
