// Crash reports: one short report instead of a crash dump when a program's
// own code faults, and the same backtrace for the runtime's fatal errors.
//
// `kiln_crash_install` takes SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP and
// SIGABRT before the program runs, and gives the calling thread an alternate
// signal stack (so a stack overflow can still be reported); threads a
// program starts with pthread_create get one too (`kiln_pthread_create_entry`
// is what generated code calls). A program that installs its own handler
// replaces Kiln's: from then on the signal is its own. A fault in Kiln's own
// code (the executable that holds this file) is passed to the handler that
// was there before (Swift's crash dump), since it is a bug of Kiln's, not the
// program's.
//
// The backtrace comes from the C unwinder (libgcc's `_Unwind_Backtrace`),
// which reads C frames by their call-frame information; the loader
// registers one rule for its whole code region (`kiln_unwind_register`):
// generated code always keeps a frame pointer, so the caller's frame is at
// rbp + 16 there. The first frame of a signal interrupted in a prologue is
// corrected by reading the instruction bytes. Every step is checked against
// the stack the interrupted code ran on (from /proc/self/maps, read with
// plain system calls): a frame outside it, or below the one before, ends the
// walk, so a corrupt stack ends the report rather than the reporter.
//
// What is not async-signal-safe, and why it is done anyway: naming frames of
// generated code (the describer, Swift, may allocate), dladdr, the unwinder
// (its lookups take a lock) and flushing C stdio (fflush(NULL) takes each
// stream's lock). The process is ending either way; what matters is that the
// report cannot hang or be lost. So a watchdog (SIGALRM after a few
// seconds) writes what is ready and exits with the same status, and a fault
// inside the reporter does the same at once. The report is formatted first,
// then stdio is flushed (the program's output belongs before the report),
// then it is written with write(2), then `_exit(128 + signal)`.

#define _GNU_SOURCE
#include "CKilnShim.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#include <unwind.h>

void __register_frame(void *begin);
void __deregister_frame(void *begin);

enum { ALTERNATE_STACK_SIZE = 256 << 10, MAXIMUM_FRAMES = 4000000, STORED_FRAMES = 1024, PRINTED_LINES = 48, WATCHDOG_SECONDS = 5 };

static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT };
#define CRASH_SIGNAL_COUNT (int)(sizeof crash_signals / sizeof crash_signals[0])

static struct sigaction previous_actions[CRASH_SIGNAL_COUNT];
static _Atomic int installed;
static kiln_crash_describer installed_describer;
static void *installed_context;
static uintptr_t own_image_base;
static pthread_key_t alternate_stack_key;

// The report being made: one at a time per process (a second crashing thread waits).
static _Atomic int reporting_thread;
static int reporting_signal;
static char report[16384];
static size_t report_length;
// The frames walked, a run of the same address (recursion) stored once with its count.
static uintptr_t frames[STORED_FRAMES];
static uint64_t repeats[STORED_FRAMES];
static int frame_count;
static uint64_t frames_walked;

// MARK: Writing

static void write_all(const char *text, size_t length) {
    while (length > 0) {
        ssize_t written = write(2, text, length);
        if (written < 0 && errno == EINTR) continue;
        if (written <= 0) return;
        text += written;
        length -= (size_t)written;
    }
}

static void append(const char *text) {
    size_t length = strlen(text);
    if (length > sizeof report - 1 - report_length) length = sizeof report - 1 - report_length;
    memcpy(report + report_length, text, length);
    report_length += length;
}

static void append_hex(uintptr_t value) {
    char digits[19];
    int position = 18;
    digits[position] = 0;
    do {
        digits[--position] = "0123456789abcdef"[value & 15];
        value >>= 4;
    } while (value && position > 2);
    digits[--position] = 'x';
    digits[--position] = '0';
    append(digits + position);
}

static void append_decimal(uint64_t value) {
    char digits[21];
    int position = 20;
    digits[position] = 0;
    do {
        digits[--position] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    append(digits + position);
}

static const char *signal_name(int signal) {
    switch (signal) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGABRT: return "SIGABRT";
    default: return "signal";
    }
}

static const char *signal_meaning(int signal, int code) {
    switch (signal) {
    case SIGSEGV: return code == SEGV_ACCERR ? "access to protected memory" : "access to unmapped memory";
    case SIGBUS: return "bus error";
    case SIGFPE:
        switch (code) {
        case FPE_INTDIV: return "integer division by zero";
        case FPE_INTOVF: return "integer overflow in division";
        default: return "arithmetic exception";
        }
    case SIGILL: return "illegal instruction";
    case SIGTRAP: return "trap instruction";
    case SIGABRT: return "abort";
    default: return "fatal signal";
    }
}

// MARK: Stacks

// The readable mapping of /proc/self/maps that holds `address`: read with plain system
// calls into a buffer on the (alternate) stack.
static int find_mapping(uintptr_t address, uintptr_t *low, uintptr_t *high) {
    int descriptor = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (descriptor < 0) return 0;
    char buffer[4096];
    size_t filled = 0;
    int found = 0;
    for (;;) {
        ssize_t count = read(descriptor, buffer + filled, sizeof buffer - filled);
        if (count < 0 && errno == EINTR) continue;
        if (count <= 0) break;
        filled += (size_t)count;
        size_t start = 0;
        for (size_t index = 0; index < filled; index++) {
            if (buffer[index] != '\n') continue;
            const char *cursor = buffer + start;
            uintptr_t from = 0, to = 0;
            for (; *cursor != '-'; cursor++) from = from * 16 + (uintptr_t)(*cursor <= '9' ? *cursor - '0' : (*cursor | 32) - 'a' + 10);
            for (cursor++; *cursor != ' '; cursor++) to = to * 16 + (uintptr_t)(*cursor <= '9' ? *cursor - '0' : (*cursor | 32) - 'a' + 10);
            if (address >= from && address < to && cursor[1] == 'r') {
                *low = from;
                *high = to;
                found = 1;
                break;
            }
            start = index + 1;
        }
        if (found) break;
        memmove(buffer, buffer + start, filled - start);
        filled -= start;
        if (filled == sizeof buffer) filled = 0;  // a line longer than the buffer: skip it
    }
    close(descriptor);
    return found;
}

static void *make_alternate_stack(void) {
    void *memory = mmap(NULL, ALTERNATE_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (memory == MAP_FAILED) return NULL;
    stack_t stack = { .ss_sp = memory, .ss_size = ALTERNATE_STACK_SIZE, .ss_flags = 0 };
    if (sigaltstack(&stack, NULL) != 0) {
        munmap(memory, ALTERNATE_STACK_SIZE);
        return NULL;
    }
    return memory;
}

static void drop_alternate_stack(void *memory) {
    stack_t disable = { .ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE };
    sigaltstack(&disable, NULL);
    munmap(memory, ALTERNATE_STACK_SIZE);
}

void kiln_crash_prepare_thread(void) {
    if (!atomic_load(&installed)) return;
    stack_t current;
    if (sigaltstack(NULL, &current) == 0 && !(current.ss_flags & SS_DISABLE)) return;
    void *memory = make_alternate_stack();
    if (memory) pthread_setspecific(alternate_stack_key, memory);
}

// MARK: Walking

struct walk {
    int skipping;            // still in the reporter's own frames (before the signal frame)
    uintptr_t stack_low, stack_high;
    uintptr_t last_frame;
    const ucontext_t *context;
};

static int in_region(uintptr_t address);

static _Unwind_Reason_Code visit(struct _Unwind_Context *context, void *raw) {
    struct walk *walk = raw;
    int before = 0;
    uintptr_t ip = _Unwind_GetIPInfo(context, &before);
    if (walk->skipping) {
        // The signal frame is the first one whose ip is not a return address.
        if (!before) return _URC_NO_REASON;
        walk->skipping = 0;
    }
    if (ip == 0) return _URC_END_OF_STACK;
    uintptr_t frame = _Unwind_GetCFA(context);
    if (frame_count > 0 && walk->stack_high) {
        if (frame < walk->last_frame || frame > walk->stack_high) return _URC_END_OF_STACK;
    }
    walk->last_frame = frame;
    uintptr_t address = before ? ip : ip - 1;
    if (frame_count > 0 && frames[frame_count - 1] == address) {
        repeats[frame_count - 1]++;
    } else if (frame_count < STORED_FRAMES) {
        repeats[frame_count] = 0;
        frames[frame_count++] = address;
    }
    frames_walked++;
    if (frames_walked >= MAXIMUM_FRAMES) return _URC_END_OF_STACK;
    if (in_region(ip) && walk->stack_high) {
        // The rule for generated code reads [rbp] and [rbp + 8] next: only on this stack.
        uintptr_t rbp = _Unwind_GetGR(context, 6);
        if (rbp < walk->stack_low || rbp + 16 > walk->stack_high || (rbp & 7)) return _URC_END_OF_STACK;
    }
    return _URC_NO_REASON;
}

// The code ranges registered with the unwinder, for `in_region` (a few loaders at most
// matter; later ones are still unwound, only the prologue check skips them).
static struct { _Atomic uintptr_t low, high; } regions[64];

static int in_region(uintptr_t address) {
    for (int index = 0; index < 64; index++) {
        uintptr_t low = atomic_load(&regions[index].low);
        if (low && address >= low && address < atomic_load(&regions[index].high)) return 1;
    }
    return 0;
}

// A signal that interrupted generated code in its prologue (`push rbp; mov rbp, rsp`:
// a stack overflow faults right there) left rbp still the caller's: the unwinder's rule
// then skips the caller. Put its return address back as the second frame.
static void correct_prologue(const ucontext_t *context) {
    uintptr_t pc = (uintptr_t)context->uc_mcontext.gregs[REG_RIP];
    uintptr_t sp = (uintptr_t)context->uc_mcontext.gregs[REG_RSP];
    if (frame_count < 1 || !in_region(pc) || frames[0] != pc) return;
    const unsigned char *code = (const unsigned char *)pc;
    uintptr_t slot;
    if (code[0] == 0x55 && code[1] == 0x48 && code[2] == 0x89 && code[3] == 0xE5) slot = sp;
    else if (code[-1] == 0x55 && code[0] == 0x48 && code[1] == 0x89 && code[2] == 0xE5) slot = sp + 8;
    else return;
    uintptr_t low, high;
    if (!find_mapping(slot, &low, &high) || slot + 8 > high) return;
    uintptr_t caller = *(const uintptr_t *)slot - 1;
    if (frame_count > 1 && frames[1] == caller) {
        repeats[1]++;
        return;
    }
    if (frame_count == STORED_FRAMES) frame_count--;
    memmove(frames + 2, frames + 1, sizeof frames[0] * (size_t)(frame_count - 1));
    memmove(repeats + 2, repeats + 1, sizeof repeats[0] * (size_t)(frame_count - 1));
    frames[1] = caller;
    repeats[1] = 0;
    frame_count++;
}

static void walk_stack(const ucontext_t *context, uintptr_t sp) {
    struct walk walk = { .skipping = context != NULL, .context = context };
    if (!find_mapping(sp, &walk.stack_low, &walk.stack_high) && context) {
        find_mapping((uintptr_t)context->uc_mcontext.gregs[REG_RBP], &walk.stack_low, &walk.stack_high);
    }
    frame_count = 0;
    frames_walked = 0;
    _Unwind_Backtrace(visit, &walk);
    if (context && frame_count == 0) {
        // The unwinder found no way through the signal frame: the interrupted pc alone.
        repeats[0] = 0;
        frames[frame_count++] = (uintptr_t)context->uc_mcontext.gregs[REG_RIP];
        frames_walked = 1;
    }
    if (context) correct_prologue(context);
}

// MARK: Describing

static int in_own_image(uintptr_t address) {
    Dl_info information;
    return own_image_base && dladdr((void *)address, &information) && (uintptr_t)information.dli_fbase == own_image_base;
}

// Appends one frame's line; returns 0 when the frame is Kiln's own (not printed).
static int describe(int index, uintptr_t address, kiln_crash_describer describer, void *describer_context) {
    char line[512];
    int length = describer ? describer(describer_context, address, line, sizeof line - 1) : -1;
    if (length == 0) return 0;
    append("  #");
    append_decimal((uint64_t)index);
    append(" ");
    append_hex(address);
    append(" in ");
    if (length > 0) {
        line[length] = 0;
        append(line);
    } else {
        Dl_info information;
        if (dladdr((void *)address, &information) && information.dli_fname) {
            const char *file = strrchr(information.dli_fname, '/');
            append(information.dli_sname ? information.dli_sname : "??");
            append(" (");
            append(file ? file + 1 : information.dli_fname);
            append(")");
        } else {
            append("?? (no code is mapped there)");
        }
    }
    append("\n");
    return 1;
}

// The backtrace of the frames walked: leading frames of Kiln's own code are left out
// (the reporter, the runtime that found an error), and the report ends where the
// program's code was entered from Kiln's. A run of the same return address (recursion)
// is one line and a count.
static void append_backtrace(kiln_crash_describer describer, void *describer_context) {
    int index = 0;
    while (index < frame_count && in_own_image(frames[index])) index++;
    int printed = 0;
    uint64_t shown = 0;
    for (; index < frame_count; index++) {
        if (in_own_image(frames[index])) break;
        if (printed >= PRINTED_LINES) {
            append("  ... and more frames\n");
            break;
        }
        if (describe((int)shown, frames[index], describer, describer_context)) {
            printed++;
            shown += 1 + repeats[index];
            if (repeats[index]) {
                append("     (the frame above ");
                append_decimal(repeats[index]);
                append(repeats[index] == 1 ? " more time)\n" : " more times)\n");
            }
        }
    }
    if (frames_walked >= MAXIMUM_FRAMES) {
        append("  ... the walk stopped after ");
        append_decimal(frames_walked);
        append(" frames\n");
    }
}

// MARK: Ending

static void on_watchdog(int signal) {
    (void)signal;
    static const char note[] = "kiln: (the crash report could not finish: the program's state blocked it)\n";
    write_all(report, report_length);
    write_all(note, sizeof note - 1);
    _exit(128 + reporting_signal);
}

static void arm_watchdog(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_watchdog;
    action.sa_flags = SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGALRM, &action, NULL);
    sigset_t alarm_only;
    sigemptyset(&alarm_only);
    sigaddset(&alarm_only, SIGALRM);
    pthread_sigmask(SIG_UNBLOCK, &alarm_only, NULL);
    alarm(WATCHDOG_SECONDS);
}

static _Noreturn void finish(int status) {
    arm_watchdog();
    fflush(NULL);
    write_all(report, report_length);
    _exit(status);
}

// Claims the report for the calling thread; a second thread that crashes meanwhile waits
// for the first to end the process. A fault inside the reporter itself ends it at once.
static void claim_report(int signal) {
    int self = (int)gettid();
    int expected = 0;
    if (atomic_compare_exchange_strong(&reporting_thread, &expected, self)) {
        reporting_signal = signal;
        return;
    }
    if (expected == self) {
        static const char note[] = "kiln: (the crash report itself faulted)\n";
        write_all(report, report_length);
        write_all(note, sizeof note - 1);
        _exit(128 + reporting_signal);
    }
    for (;;) pause();
}

// MARK: The handler

static void pass_on(int index, int signal, siginfo_t *information, void *context) {
    struct sigaction *previous = &previous_actions[index];
    if ((previous->sa_flags & SA_SIGINFO) && previous->sa_sigaction) {
        previous->sa_sigaction(signal, information, context);
        return;
    }
    if (previous->sa_handler == SIG_IGN) return;
    if (previous->sa_handler != SIG_DFL) {
        previous->sa_handler(signal);
        return;
    }
    // The default action: put it back; a fault happens again on return, a sent signal
    // is sent again.
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    sigaction(signal, &fallback, NULL);
    if (information->si_code <= 0) raise(signal);
}

static void on_crash(int signal, siginfo_t *information, void *raw) {
    ucontext_t *context = raw;
    uintptr_t pc = (uintptr_t)context->uc_mcontext.gregs[REG_RIP];
    uintptr_t sp = (uintptr_t)context->uc_mcontext.gregs[REG_RSP];
    int index = 0;
    while (index < CRASH_SIGNAL_COUNT && crash_signals[index] != signal) index++;
    if (index < CRASH_SIGNAL_COUNT && in_own_image(pc) && information->si_code > 0) {
        // A fault in Kiln itself: what was there before reports it.
        pass_on(index, signal, information, raw);
        return;
    }
    // A fault in a proc's own code ends that proc, not the program (procs.c).
    if (index < CRASH_SIGNAL_COUNT && information->si_code > 0 &&
        kiln_proc_take_fault(raw, signal, (uintptr_t)information->si_addr)) {
        return;
    }
    claim_report(signal);
    uintptr_t address = (uintptr_t)information->si_addr;
    uintptr_t low = 0, high = 0;
    int overflow = 0;
    if (signal == SIGSEGV || signal == SIGBUS) {
        int mapped = find_mapping(sp, &low, &high) || find_mapping((uintptr_t)context->uc_mcontext.gregs[REG_RBP], &low, &high);
        overflow = (address + 65536 >= sp && address < sp + 65536)
                   || (mapped && address < low && address + (1 << 20) >= low);
    }
    report_length = 0;
    if (overflow) {
        append("kiln: stack overflow (");
        append(signal_name(signal));
        append(" at address ");
        append_hex(address);
        append(", stack pointer ");
        append_hex(sp);
        append(")\n");
    } else {
        append("kiln: the program crashed: ");
        append(signal_name(signal));
        append(" (");
        append(signal_meaning(signal, information->si_code));
        append(")");
        if (signal == SIGSEGV || signal == SIGBUS) {
            append(" at address ");
            append_hex(address);
        }
        append(", pc ");
        append_hex(pc);
        append("\n");
    }
    walk_stack(context, sp);
    append_backtrace(installed_describer, installed_context);
    finish(128 + signal);
}

// MARK: Entry points

int kiln_crash_install(kiln_crash_describer describer, void *context) {
    installed_describer = describer;
    installed_context = context;
    if (atomic_exchange(&installed, 1)) return 0;
    Dl_info information;
    if (dladdr((void *)kiln_crash_install, &information)) own_image_base = (uintptr_t)information.dli_fbase;
    pthread_key_create(&alternate_stack_key, drop_alternate_stack);
    // The first backtrace loads and sets up the unwinder (it allocates then): not in a handler.
    walk_stack(NULL, (uintptr_t)__builtin_frame_address(0));
    kiln_crash_prepare_thread();
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_crash;
    // SA_NODEFER: a fault inside the reporter reaches `claim_report`, which ends the process.
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    for (int index = 0; index < CRASH_SIGNAL_COUNT; index++) {
        if (sigaction(crash_signals[index], &action, &previous_actions[index]) != 0) return -1;
    }
    return 0;
}

void kiln_crash_report_error(const char *message, int status, kiln_crash_describer describer, void *context) {
    claim_report(0);
    reporting_signal = status - 128;
    report_length = 0;
    append("kiln: error: ");
    append(message);
    append("\n");
    walk_stack(NULL, (uintptr_t)__builtin_frame_address(0));
    append_backtrace(describer, context);
    finish(status);
}

// MARK: The unwinder's rule for generated code

// One CIE and one FDE (.eh_frame format) covering [low, high): the caller's frame is at
// rbp + 16, its return address at rbp + 8, its rbp at rbp + 0.
void *kiln_unwind_register(uintptr_t low, uintptr_t high) {
    static const unsigned char cie[] = {
        0x14, 0, 0, 0,  // length
        0, 0, 0, 0,     // CIE id
        1,              // version
        'z', 'R', 0,    // augmentation
        1,              // code alignment
        0x78,           // data alignment -8
        16,             // return address register
        1, 0x00,        // augmentation data: pointers are absolute
        0x0c, 7, 8,     // def_cfa rsp + 8
        0x90, 1,        // return address at cfa - 8
        0, 0,           // padding
    };
    static const unsigned char instructions[] = {
        0x0c, 6, 16,    // def_cfa rbp + 16
        0x86, 2,        // rbp at cfa - 16
        0x90, 1,        // return address at cfa - 8
        0,              // padding
    };
    size_t fde_length = 4 + 8 + 8 + 1 + sizeof instructions;
    size_t total = sizeof cie + 4 + fde_length + 4;
    unsigned char *bytes = calloc(1, total + 16);
    if (!bytes) return NULL;
    memcpy(bytes, cie, sizeof cie);
    unsigned char *fde = bytes + sizeof cie;
    uint32_t length = (uint32_t)fde_length;
    memcpy(fde, &length, 4);
    uint32_t pointer = (uint32_t)(fde + 4 - bytes);  // distance back to the CIE
    memcpy(fde + 4, &pointer, 4);
    uint64_t begin = low, range = high - low;
    memcpy(fde + 8, &begin, 8);
    memcpy(fde + 16, &range, 8);
    fde[24] = 0;  // no augmentation data
    memcpy(fde + 25, instructions, sizeof instructions);
    __register_frame(bytes);
    for (int index = 0; index < 64; index++) {
        uintptr_t empty = 0;
        if (atomic_compare_exchange_strong(&regions[index].low, &empty, low)) {
            atomic_store(&regions[index].high, high);
            break;
        }
    }
    return bytes;
}

void kiln_unwind_deregister(void *handle, uintptr_t low) {
    if (!handle) return;
    for (int index = 0; index < 64; index++) {
        uintptr_t expected = low;
        if (atomic_compare_exchange_strong(&regions[index].low, &expected, 0)) break;
    }
    __deregister_frame(handle);
    free(handle);
}

// MARK: Threads the program starts

struct thread_start {
    void *(*start)(void *);
    void *argument;
};

static void *start_with_alternate_stack(void *raw) {
    struct thread_start start = *(struct thread_start *)raw;
    free(raw);
    kiln_crash_prepare_thread();
    return start.start(start.argument);
}

static int create_thread(pthread_t *thread, const pthread_attr_t *attributes, void *(*start)(void *), void *argument) {
    if (!atomic_load(&installed)) return pthread_create(thread, attributes, start, argument);
    struct thread_start *boxed = malloc(sizeof *boxed);
    if (!boxed) return EAGAIN;
    boxed->start = start;
    boxed->argument = argument;
    int result = pthread_create(thread, attributes, start_with_alternate_stack, boxed);
    if (result != 0) free(boxed);
    return result;
}

const void *kiln_pthread_create_entry(void) {
    return (const void *)create_thread;
}
