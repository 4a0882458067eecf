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

/// The highest address (exclusive) of the calling thread's stack, or 0 if unknown.
uintptr_t kiln_stack_top(void);

// Threads that run a loader's code.
//
// A thread is noted the first time it enters a loader's runtime (a call through
// an unbound TOC slot) and forgotten when it exits. Code is moved or freed only
// while no other living thread has entered the same loader, since a thread
// running generated code cannot be seen from another.

/// Notes that the calling thread entered the runtime of `loader` (any stable pointer).
void kiln_thread_entered(const void *loader);

/// Forgets `loader` (its loader is gone).
void kiln_loader_gone(const void *loader);

/// How many living threads other than the caller have entered `loader`'s runtime.
int kiln_other_threads_in(const void *loader);

/// What generated code gets for `pthread_create`: the same, but the new thread is
/// noted (for every loader) before it exists, so code cannot move under it before
/// its first runtime entry.
const void *kiln_pthread_create_entry(void);

/// What generated code gets for `atexit`, which glibc does not export from libc.so.
const void *kiln_atexit_entry(void);

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

/// The current size of the process-wide layout.
size_t kiln_tls_layout_size(void);

/// The address of byte `offset` of the calling thread's block: what generated
/// code gets by `mov edi, offset; call [rip + slot(kiln.tls.address)]`. An
/// ordinary SysV function: clobbers the caller-saved registers.
void *kiln_tls_address(int32_t offset);

/// `kiln_tls_address` as a plain pointer, for a slot.
const void *kiln_tls_address_entry(void);

#endif
