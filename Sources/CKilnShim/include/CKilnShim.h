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
