// The few things Kiln's loader needs that Swift cannot reach by itself.
//
// memfd_create and fallocate's flags are not imported into Swift on this platform, and a `__thread`
// variable (the per-thread block behind QBE's `thread` data) cannot be
// declared in Swift at all. Everything else stays in Swift.

#ifndef CKILNSHIM_H
#define CKILNSHIM_H

#include <stddef.h>
#include <stdint.h>

/// memfd_create(name, MFD_CLOEXEC): an anonymous file to map twice. -1 and errno on failure.
int kiln_memfd_create(const char *name);

/// fallocate(PUNCH_HOLE | KEEP_SIZE): frees a range of a file's pages. 0, or -1 and errno.
int kiln_punch_hole(int fd, int64_t offset, int64_t count);

/// The calling thread's kernel id (gettid, which Swift does not import).
int32_t kiln_thread_id(void);

/// The highest address (exclusive) of the calling thread's stack, or 0 if unknown.
uintptr_t kiln_stack_top(void);

// The world: stopping every other thread of the process.
//
// Before code (or, later, managed data) moves, is rewritten in place or is
// freed, the runtime stops every other thread of the process, whoever started
// it: a reserved real-time signal (SIGRTMAX-3, or KILN_SUSPEND_SIGNAL) makes
// each thread publish its registers and wait in the handler until resumed.
// A thread that blocks the signal (libdispatch's workers do, and so do the
// threads they start) cannot be stopped. If it is blocked in the kernel, /proc
// gives its rsp and rip and it is reported QUIET: it runs nothing until the
// kernel wakes it, and the caller decides whether that is enough (see
// `kiln_world_still_quiet`). Otherwise it is UNRESPONSIVE: it keeps running
// and the caller must treat it as able to reach any code. Threads that exit
// meanwhile are reported EXITED.
// One stop at a time, process-wide. Between `kiln_world_stop` and
// `kiln_world_resume` the caller must not allocate, print or take a lock a
// stopped thread may hold (malloc's, stdio's, the Swift runtime's).

#define KILN_REGISTER_COUNT 17
enum {
    KILN_REGISTER_RAX, KILN_REGISTER_RBX, KILN_REGISTER_RCX, KILN_REGISTER_RDX,
    KILN_REGISTER_RSI, KILN_REGISTER_RDI, KILN_REGISTER_RBP, KILN_REGISTER_RSP,
    KILN_REGISTER_R8, KILN_REGISTER_R9, KILN_REGISTER_R10, KILN_REGISTER_R11,
    KILN_REGISTER_R12, KILN_REGISTER_R13, KILN_REGISTER_R14, KILN_REGISTER_R15,
    KILN_REGISTER_RIP,
};

enum { KILN_THREAD_STOPPED = 1, KILN_THREAD_UNRESPONSIVE = 2, KILN_THREAD_EXITED = 3, KILN_THREAD_QUIET = 4 };

/// One thread of a stopped world.
struct kiln_stopped_thread {
    int32_t tid;
    /// KILN_THREAD_STOPPED (registers and stack are valid), _QUIET (only rsp, rip and
    /// the stack are valid), _UNRESPONSIVE or _EXITED.
    int32_t state;
    /// The general registers and rip at the moment the thread stopped (KILN_REGISTER_*).
    uintptr_t registers[KILN_REGISTER_COUNT];
    /// The readable mapping that holds the thread's stack pointer (0, 0 when unknown).
    uintptr_t stack_low, stack_high;
};

/// Stops every other thread of the process except exempt ones, waiting at most
/// `timeout_ms` for each to answer. Returns the number of threads in the table
/// (`kiln_world_thread`), or -1 when it could not stop them (nothing is stopped then).
/// The world stays stopped until `kiln_world_resume`.
int kiln_world_stop(int timeout_ms);

/// Thread `index` (0 ..< the count `kiln_world_stop` returned) of the stopped world.
const struct kiln_stopped_thread *kiln_world_thread(int index);

/// Whether QUIET thread `index` has not run since the stop found it quiet (its
/// context-switch count is unchanged and it is still in the kernel).
int kiln_world_still_quiet(int index);

/// Resumes every thread `kiln_world_stop` stopped and waits until each has left
/// the signal handler.
void kiln_world_resume(void);

/// Marks the calling thread as one that never runs generated code (a file
/// watcher): it is never stopped. Undone when the thread exits.
void kiln_world_exempt_current_thread(void);

/// Waits until no stop is in progress (what a gated stub's thread does).
void kiln_world_wait(void);

/// Unblocks the suspension signal in the calling thread, so stops can stop it
/// (threads started by a thread that blocks it inherit the block).
void kiln_world_accept_stops(void);

/// The address where a signal handler returns (glibc's sigreturn trampoline), or 0:
/// on a stack, it starts the frame of a signal in progress.
uintptr_t kiln_world_signal_restorer(void);

/// The offset, from the restorer's word on a stack, of the saved general registers of
/// the interrupted code (gregs[REG_*] of its ucontext).
size_t kiln_world_sigframe_registers_offset(void);

/// The signal used to stop threads.
int kiln_world_signal(void);

/// Whether another thread is stopping the world or holds it stopped (between the start of
/// `kiln_world_stop` and the end of `kiln_world_resume`) and the calling thread is one that
/// stops leave running (exempt, or blocking the signal). Allocates nothing.
int kiln_world_is_left_running_in_a_stop(void);

/// Whether the suspension handler is still the one the runtime installed (a
/// program may have replaced it; then no thread answers).
int kiln_world_handler_is_installed(void);

/// How many times, in all, a thread did not answer a stop.
uint64_t kiln_world_unresponsive_total(void);

/// dlsym of `name` in each of `handles`, then in the global scope, done on a
/// thread of its own so that the caller's dlerror state (a pending error a
/// program has yet to read) is left as it was. NULL when nothing defines it.
void *kiln_dlsym_elsewhere(void *const *handles, int count, const char *name);

// Exit handlers.
//
// Generated code that calls atexit, on_exit or __cxa_atexit reaches these
// instead (glibc does not even export atexit from libc.so). The handlers are
// kept by Kiln, not libc, so that a loader can be freed: its own handlers run
// when it goes (`kiln_run_exit_handlers_in`), the rest at process exit.

/// What generated code gets for `atexit`, `on_exit` and `__cxa_atexit`.
const void *kiln_atexit_entry(void);
const void *kiln_on_exit_entry(void);
const void *kiln_cxa_atexit_entry(void);

/// Runs, newest first, and forgets every handler whose function lies in
/// [low, high) (a loader's region); returns how many ran.
int kiln_run_exit_handlers_in(uintptr_t low, uintptr_t high);

// Thread-local data.
//
// Every thread-local data object of every loaded module gets a fixed offset
// in one process-wide layout (`kiln_tls_register`). Each thread has its own
// block holding that layout, created on the thread's first access and
// initialised from the registered templates. A block never moves: it is a
// fixed-capacity reservation (KILN_TLS_CAPACITY bytes of address space, pages
// touched only as used), so addresses of thread data stay valid for the life
// of the thread even when later modules add thread data. A thread's block is
// unmapped when the thread exits (not the main thread's).

/// Address space reserved per thread for thread-local data.
#define KILN_TLS_CAPACITY ((size_t)16 << 20)

/// Appends a template of `size` bytes at `alignment` (a power of two, at most
/// 4096) to the process-wide layout and returns its offset, or -1 when the
/// layout would exceed KILN_TLS_CAPACITY. Thread-safe.
int64_t kiln_tls_register(const void *bytes, size_t size, size_t alignment);

/// Gives a range back to the layout (no code that uses it is left): a later
/// registration may reuse it. Thread-safe.
void kiln_tls_unregister(int64_t offset, size_t size);

/// Bytes of the layout given back and not reused yet.
size_t kiln_tls_free_bytes(void);

/// The current size of the process-wide layout.
size_t kiln_tls_layout_size(void);

/// The address of byte `offset` of the calling thread's block: what generated
/// code gets by `mov edi, offset; call [rip + slot(kiln.tls.address)]`. An
/// ordinary SysV function: clobbers the caller-saved registers.
void *kiln_tls_address(int32_t offset);

/// `kiln_tls_address` as a plain pointer, for a slot.
const void *kiln_tls_address_entry(void);


// MARK: Procs
//
// Every function of generated code starts with `lea r10, [rsp - frame];
// cmp r10, [kiln_stack_limit]; jb grow`: a thread whose stack is not a
// proc's runs above every proc segment (the segments are reserved low in the
// address space), so the check passes there; on a proc the limit is the
// bottom of the running segment plus a reserve, and the grow path links a
// new segment. `kiln_procs` is what the proc routines (Procs/ProcRoutines.swift)
// read and write: the scheduler's stack, where C code runs while a proc is
// on a segment, the running proc, and save areas used while a routine is
// on its way between stacks.

/// The lowest stack pointer a function may reach; 0 when no proc runs.
extern uintptr_t kiln_stack_limit;

struct kiln_proc_globals {
    uintptr_t scheduler_rsp;   // the scheduler's saved stack pointer while a proc runs
    uintptr_t native_rsp;      // the top of the stack C calls from a proc run on
    uintptr_t current;         // the running proc's saved-rsp word, 0 in the scheduler
    uintptr_t region_low;      // the reserved range of proc segments
    uintptr_t region_high;
    uintptr_t saved_rsp;       // a routine's stack pointer on the segment it left
    uintptr_t preempt;         // set by the ticker: the running proc should give the thread up
    uintptr_t switches;        // counted by the scheduler: the ticker sees a proc that runs long
    uintptr_t gprs[8];         // argument registers or results kept across a runtime call
    uint8_t xmms[8][16] __attribute__((aligned(16)));
};
extern struct kiln_proc_globals kiln_procs;

/// The two globals above, for Swift (which does not touch C globals directly).
struct kiln_proc_globals *kiln_procs_address(void);
uintptr_t *kiln_stack_limit_address(void);

/// Starts (or stops, with 0) a thread that every `interval_us` microseconds asks the
/// running proc to give the thread up when it has run since the last tick: it sets
/// `preempt` and the stack limit to the top of the address space, so the proc's next
/// function call takes the grow routine, which parks it.
void kiln_proc_ticker(long interval_us);

/// Where a fault in a proc's code goes (0: nowhere; the crash report runs).
void kiln_proc_set_fault_routine(uintptr_t routine);
/// Called by the crash handler with its `ucontext_t`: when the fault is on a proc's
/// segment, points the context at the fault routine on the C stack (rdi the signal, rsi
/// the address, rdx the pc, rcx the frame) and returns 1; the handler then returns.
int kiln_proc_take_fault(void *context, int signal, uintptr_t address);


/// What a proc service's entry returns to its trampoline: the service's result,
/// and whether to park the proc and call the entry again once it runs.
struct kiln_service_result {
    uint64_t value;
    uint64_t park;
};

// Crash reports (crash.c).
//
// A fault in a program's own code prints one short report (the signal, the
// address, a backtrace naming crates, functions and IL lines, and C symbols)
// and ends the process with 128 + the signal; the runtime's fatal errors
// print the same backtrace.

/// Names the frame at `address` (a pc, or a return address minus one) of generated
/// code: writes at most `capacity` bytes to `buffer` and returns how many, 0 for a
/// frame of the runtime's own routines (left out), -1 when the address is not
/// generated code. Runs inside a signal handler: see crash.c for what it may do.
typedef int (*kiln_crash_describer)(void *context, uintptr_t address, char *buffer, int capacity);

/// Installs the handlers of the crash signals (the previous ones are kept for
/// faults in Kiln's own code), gives the calling thread an alternate signal
/// stack, and names frames with `describer`. Call it again to change the
/// describer. 0, or -1 when a handler could not be installed.
int kiln_crash_install(kiln_crash_describer describer, void *context);

/// Gives the calling thread an alternate signal stack (once crash reports are
/// installed), so that its stack overflow can be reported. Freed when it exits.
void kiln_crash_prepare_thread(void);

/// Flushes C stdio, prints `kiln: error: message` and the backtrace of the
/// calling thread to standard error, and ends the process with `status`.
_Noreturn void kiln_crash_report_error(const char *message, int status, kiln_crash_describer describer, void *context);

/// Tells the C unwinder how to leave frames of generated code in [low, high)
/// (the caller's frame at rbp + 16). Returns a handle for `kiln_unwind_deregister`.
void *kiln_unwind_register(uintptr_t low, uintptr_t high);
void kiln_unwind_deregister(void *handle, uintptr_t low);

/// What generated code gets for `pthread_create`: the same, and the new thread
/// gets an alternate signal stack when crash reports are installed.
const void *kiln_pthread_create_entry(void);

/// Every thread's block and how many of its bytes are initialised, for the managed heap's
/// collector, which calls it with the world stopped: it only tries the layout's lock (a
/// stopped thread may hold it) and allocates nothing. Returns 1 with `*count` entries
/// filled; 0 when the lock is busy, or when more than `capacity` blocks exist (then
/// `*count` is how many, to size the arrays for the next try).
int kiln_tls_try_snapshot(unsigned char **blocks, size_t *initialised, size_t capacity, size_t *count);

// Managed heap (heap_entries.c, KilnLoader's ManagedRuntime.swift).
//
// Each thread has a pointer to its allocation record that generated code
// reads inline at fs:[kiln_heap_record_offset()]; until the thread's first
// slow-path entry it points at an empty record whose cursor and limit are 0.
// The entries note the calling generated frame (its rbp and the return
// address into it) for the precise stack walk, then call the handlers.

/// The allocation handler: the thread's record pointer, the header word, the caller's
/// frame and return address; returns the new reference (never 0: failures end the program).
typedef uint64_t (*kiln_heap_allocate_handler)(void *record, uint64_t header, uintptr_t frame, uintptr_t return_address);
/// The `$kiln.collect` handler.
typedef void (*kiln_heap_collect_handler)(void *record, uintptr_t frame, uintptr_t return_address);

/// The checked access handler (`kiln run --checked`): the address of a field, byte or header,
/// never 0 (a wrong access ends the program).
typedef uintptr_t (*kiln_heap_check_handler)(void *record, uint64_t object, int64_t index, uint32_t access,
                                             uintptr_t return_address);

void kiln_heap_install_handlers(kiln_heap_allocate_handler allocate, kiln_heap_collect_handler collect,
                                kiln_heap_check_handler check);
/// The offset of the calling thread's record pointer from its thread pointer (fs:0); the
/// same in every thread.
intptr_t kiln_heap_record_offset(void);
void *kiln_heap_thread_record(void);
/// Sets the calling thread's record pointer (NULL: back to the empty record).
void kiln_heap_set_thread_record(void *record);
void *kiln_heap_empty_record(void);
/// The generated frame (rbp) and return address noted by the entry the calling thread is
/// in, or 0 outside the entries.
uintptr_t kiln_heap_entry_frame(void);
uintptr_t kiln_heap_entry_return(void);
/// The entries' addresses, for slots: `uint64_t allocate(uint64_t header)` and `void collect(void)`.
void *kiln_heap_allocate_entry(void);
void *kiln_heap_collect_entry(void);
/// `uintptr_t check(uint64_t object, int64_t index, uint32_t access)`.
void *kiln_heap_check_entry(void);
/// The calling thread's stack top as noted by the runtime (0 until noted).
uintptr_t kiln_heap_thread_stack_top(void);
void kiln_heap_set_thread_stack_top(uintptr_t top);

// GDB's JIT interface (gdb_jit.c): in-memory object files a debugger loads.

/// Adds the object file of `size` bytes at `object` (which must stay until it is
/// unregistered) to the list GDB reads, and tells GDB. Returns the entry's handle.
void *kiln_gdb_register(const void *object, uint64_t size);

/// Takes an entry off the list, tells GDB, and frees the entry (not the object).
void kiln_gdb_unregister(void *handle);

/// How many objects are on GDB's list.
int kiln_gdb_object_count(void);

/// Whether a debugger (any tracer) is attached to the process now.
int kiln_is_traced(void);

#endif
