/* kiln.h: Kiln's C embedding API.
 *
 * A host written in C (or anything that calls C) makes loaders, loads QBE IL text, IL files
 * or crate files (.kcrate) into them, looks functions up, calls them or keeps their stable
 * addresses, reloads and unloads crates, and reads why a call failed. Link with the shared
 * library SwiftPM builds (`swift build` gives .build/debug/libKilnC.so; see
 * examples/embed/host.c for a complete host and the gcc line that builds it).
 *
 * Handles. Loaders and crates are 64-bit handles, never pointers, and never reused in a
 * process: a handle that was freed or unloaded, a crate handle passed where a loader is
 * expected, or a made-up number is reported as KILN_ERROR_HANDLE, never a crash. Handle 0
 * is never valid.
 *
 * Errors. Every function that can fail returns a kiln_status. After each call,
 * kiln_last_error() on the same thread says why it failed ("" after a success): the text
 * is Kiln's, valid until that thread's next call into this API; copy it to keep it. Read
 * it after the call has returned, not among the same call's arguments (C leaves their
 * order of evaluation open).
 * Compile errors read `name:line:col: error: message`, one per line.
 *
 * Threads. Any thread may call any function; calls on one loader are serialised. A thread
 * that runs crate code and was not started by Kiln must accept the signal Kiln stops
 * threads with (threads from pthread_create do; threads of thread pools often block every
 * signal: see kiln_thread_accept_stops). While Kiln has every other thread stopped (to move
 * or replace code), a call from a thread it left running (one marked with
 * kiln_thread_exempt, or one that blocks that signal) is refused with KILN_ERROR_STATE, to
 * be made again once the stop is over, instead of reaching code that is being changed.
 *
 * Lifetimes. A function address from kiln_function is a callback stub: it never moves, it
 * reaches the crate's current version after every reload, and calling it after its
 * function was removed (by a reload or an unload) stops the program with a message naming
 * the function. It stays valid until its loader is freed or kiln_stub_free frees it.
 */
#ifndef KILN_H
#define KILN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A loader: one code heap with the crates loaded into it. 0 is never a loader. */
typedef uint64_t kiln_loader;
/** A crate loaded into a loader. 0 is never a crate. */
typedef uint64_t kiln_crate;

typedef enum kiln_status {
    KILN_OK = 0,
    /** A null pointer or an argument out of range (more than 6 call arguments...). */
    KILN_ERROR_ARGUMENT = 1,
    /** A handle that is not (or no longer) a loader or crate of the kind expected. */
    KILN_ERROR_HANDLE = 2,
    /** The input does not compile, or is not a usable crate file, or cannot be read. */
    KILN_ERROR_INPUT = 3,
    /** Loading, linking, reloading or unloading was refused; nothing changed. */
    KILN_ERROR_LINK = 4,
    /** No function of that name in the crate. */
    KILN_ERROR_NOT_FOUND = 5,
    /** Called on a thread Kiln left running while it has the other threads stopped. */
    KILN_ERROR_STATE = 6,
} kiln_status;

/** Kiln's version, e.g. "kiln 0.1.0 (crate file format 2)". Static storage. */
const char *kiln_version(void);

/** Why the calling thread's last call into this API failed; "" if it succeeded. */
const char *kiln_last_error(void);

/** Makes a loader (reserving its code heap) and stores its handle in *loader. */
kiln_status kiln_loader_create(kiln_loader *loader);

/** Frees a loader and every crate in it: exit handlers its programs registered run, its
 *  code and stubs are unmapped, its crate handles become invalid. No thread may still be
 *  running its code or hold its stubs for later calls. */
kiln_status kiln_loader_free(kiln_loader loader);

/** Opens a shared object (RTLD_NOW | RTLD_GLOBAL) whose symbols later loads may use. */
kiln_status kiln_loader_link(kiln_loader loader, const char *library);

/** Compiles `length` bytes of IL text as a crate called `name` (the name its errors and
 *  reloads use; unique in the loader) and loads it. */
kiln_status kiln_load_il(kiln_loader loader, const char *name, const char *text, size_t length, kiln_crate *crate);

/** Loads an IL file or a crate file (told apart by their contents); the crate's name is
 *  the path. */
kiln_status kiln_load_file(kiln_loader loader, const char *path, kiln_crate *crate);

/** The stable address (callback stub) of the crate's function `name` (without `$`), to
 *  cast to the function's C type and call, or hand to C code. */
kiln_status kiln_function(kiln_crate crate, const char *name, void **address);

/** Calls function `name` with `count` (at most 6) integer or pointer arguments and stores
 *  its integer result (the whole of %rax) in *result (which may be NULL). */
kiln_status kiln_call(kiln_crate crate, const char *name, const int64_t *arguments, size_t count, int64_t *result);

/** Calls the crate's exported main(argc, argv, envp) with the process's environment and
 *  stores its status in *status; C's output streams are flushed after it returns. */
kiln_status kiln_run_main(kiln_crate crate, int argc, const char *const *argv, int *status);

/** Replaces the crate with a new version compiled from IL text: new calls enter the new
 *  code, calls in progress finish in the old. All or nothing. */
kiln_status kiln_reload_il(kiln_crate crate, const char *text, size_t length);

/** Replaces the crate with the IL file or crate file at `path`; see kiln_reload_il. */
kiln_status kiln_reload_file(kiln_crate crate, const char *path);

/** Unloads the crate; its handle becomes invalid. Refused while other crates hold the
 *  addresses of its exports. */
kiln_status kiln_unload(kiln_crate crate);

/** Frees a stub obtained from kiln_function that crate code does not also hold. */
kiln_status kiln_stub_free(kiln_loader loader, void *stub);

/** Makes the crate's exported functions global symbols of the process, which shared
 *  objects opened from now on (with dlopen) resolve like any other; each leads to the
 *  function's current version, also after reloads, and exports a reload adds are made
 *  visible too. A name the process already defines keeps its first definition. */
kiln_status kiln_export_symbols(kiln_crate crate);

/** Lets Kiln stop the calling thread (it unblocks the signal used): call it on a thread
 *  whose signal mask was inherited blocked before it runs crate code. */
void kiln_thread_accept_stops(void);

/** Marks the calling thread as one that never runs crate code: Kiln leaves it running
 *  while it moves code, and refuses its calls into this API meanwhile. */
void kiln_thread_exempt(void);

#ifdef __cplusplus
}
#endif

#endif
