// Stopping the world: every other thread of the process is brought to a
// known state, examined and resumed. See "The world" in CKilnShim.h.
//
// How a stop goes:
//   1. the controller takes `world_lock` (one stop at a time, process-wide),
//      raises `stopping` and a new `epoch`;
//   2. it lists /proc/self/task with raw getdents64 (no malloc), adds a slot
//      for every thread it has not seen yet (not itself, not exempt) and
//      sends it the suspension signal with tgkill;
//   3. each signalled thread's handler finds its slot by tid, copies its
//      registers out of the ucontext, moves the slot from REQUESTED to
//      STOPPED and waits on a futex until the controller releases the epoch;
//   4. the controller waits until every slot it requested has stopped, has
//      exited (tgkill(tid, 0) says ESRCH) or has timed out (UNRESPONSIVE:
//      it blocks the signal); then it lists the tasks again, since a thread
//      that was still running may have started another one, and repeats
//      until a listing finds nobody new;
//   5. stack bounds of stopped threads come from a cache keyed by tid, or
//      from one streaming pass over /proc/self/maps.
// Resuming lowers `stopping` and releases the epoch; a stopped thread that
// has not yet left its handler reads nothing more of the table.
//
// Between stop and resume the controller must not allocate: a stopped
// thread may hold a malloc arena lock. Nothing here calls malloc while the
// world is stopped; the slot table grows only while it is not (a stop that
// finds more threads than the table holds resumes them, grows the table and
// starts again). Old tables are never freed, because a late handler (a
// thread that unblocked the signal after it timed out) may still read one.

#define _GNU_SOURCE
#include "CKilnShim.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000  // the kernel's flag; glibc sets it on every handler it installs
#endif

enum { REQUESTED = 1, STOPPED = 2, UNRESPONSIVE = 3, EXITED = 4, BLOCKING = 5 };

struct slot {
    pid_t tid;
    _Atomic int state;
    uint64_t switches;    // context switches when found quiet (see kiln_world_still_quiet)
    struct kiln_stopped_thread thread;
};

static pthread_mutex_t world_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t world_once = PTHREAD_ONCE_INIT;
static int suspend_signal;
static int installed;                     // the handler was installed
static void (*allocation_hook)(int);      // a test's malloc guard, if one is loaded

// Read by handlers on any thread.
static struct slot *_Atomic table;
static _Atomic int slot_count;
static _Atomic int stopping;
static _Atomic pid_t controller;          // the thread holding world_lock, or 0
static _Atomic uint32_t epoch;
static _Atomic uint32_t released_epoch;
static _Atomic uint32_t stopped_count;

// Only the controller (holding world_lock) touches these.
static int capacity;
static uint64_t stops, unresponsive_total;

// Threads that never run generated code and are never stopped (a file watcher).
static pthread_mutex_t exempt_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t *exempt;
static int exempt_count, exempt_capacity;
static pthread_key_t exempt_key;

// Stack ranges already found, by tid (replaced round robin).
enum { STACK_CACHE = 512 };
static struct { pid_t tid; uintptr_t low, high; } stack_cache[STACK_CACHE];
static int stack_cache_next;
// Threads that answered a stop before: signalled without asking /proc first.
enum { ANSWERING_CACHE = 256 };
static pid_t answering[ANSWERING_CACHE];
static int answering_next;

static pid_t current_tid(void) { return (pid_t)syscall(SYS_gettid); }

static long futex(_Atomic uint32_t *word, int operation, uint32_t value, const struct timespec *timeout) {
    return syscall(SYS_futex, (uint32_t *)word, operation | FUTEX_PRIVATE_FLAG, value, timeout, NULL, 0);
}

static int send_signal(pid_t tid, int signal) {
    return (int)syscall(SYS_tgkill, getpid(), tid, signal);
}

// --- The handler -----------------------------------------------------------

static void copy_registers(struct kiln_stopped_thread *thread, const ucontext_t *context) {
    const greg_t *g = context->uc_mcontext.gregs;
    static const int order[KILN_REGISTER_COUNT] = {
        REG_RAX, REG_RBX, REG_RCX, REG_RDX, REG_RSI, REG_RDI, REG_RBP, REG_RSP,
        REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15, REG_RIP,
    };
    for (int index = 0; index < KILN_REGISTER_COUNT; index++) thread->registers[index] = (uintptr_t)g[order[index]];
}

static void on_suspend(int signal, siginfo_t *information, void *raw) {
    (void)signal;
    int saved = errno;
    // Only the runtime's own tgkill counts, and only while a stop is in progress.
    if (information->si_code != SI_TKILL || information->si_pid != getpid() || !atomic_load(&stopping)) {
        errno = saved;
        return;
    }
    uint32_t mine = atomic_load(&epoch);
    pid_t tid = current_tid();
    struct slot *slots = atomic_load(&table);
    int count = atomic_load(&slot_count);
    struct slot *slot = NULL;
    for (int index = 0; index < count && slot == NULL; index++) {
        if (slots[index].tid == tid) slot = &slots[index];
    }
    int expected = REQUESTED;
    if (slot == NULL || !atomic_compare_exchange_strong(&slot->state, &expected, STOPPED)) {
        errno = saved;
        return;
    }
    copy_registers(&slot->thread, raw);
    slot->thread.state = KILN_THREAD_STOPPED;
    atomic_fetch_add(&stopped_count, 1);
    futex(&stopped_count, FUTEX_WAKE, INT_MAX, NULL);
    // Wait until this stop's epoch, or a later one, is released: on a busy machine the
    // controller may release this stop and begin and release the next before this thread
    // looks again, and released_epoch would never equal `mine` again.
    uint32_t seen;
    while ((int32_t)((seen = atomic_load(&released_epoch)) - mine) < 0) futex(&released_epoch, FUTEX_WAIT, seen, NULL);
    errno = saved;
}

static void forget_exempt(void *unused) {
    (void)unused;
    pid_t tid = current_tid();
    pthread_mutex_lock(&exempt_lock);
    for (int index = 0; index < exempt_count; index++) {
        if (exempt[index] == tid) {
            exempt[index] = exempt[--exempt_count];
            break;
        }
    }
    pthread_mutex_unlock(&exempt_lock);
}

static void initialise(void) {
    const char *chosen = getenv("KILN_SUSPEND_SIGNAL");
    suspend_signal = chosen ? atoi(chosen) : SIGRTMAX - 3;
    if (suspend_signal < SIGRTMIN || suspend_signal > SIGRTMAX) suspend_signal = SIGRTMAX - 3;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_suspend;
    // Every catchable signal waits while a thread is stopped: a program's own handler
    // must not run generated code in a thread the runtime believes is stopped.
    sigfillset(&action.sa_mask);
    action.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    installed = sigaction(suspend_signal, &action, NULL) == 0;
    pthread_key_create(&exempt_key, forget_exempt);
    allocation_hook = (void (*)(int))dlsym(RTLD_DEFAULT, "kiln_test_world_stopped");
    capacity = 64;
    atomic_store(&table, calloc((size_t)capacity, sizeof(struct slot)));
}

int kiln_world_signal(void) {
    pthread_once(&world_once, initialise);
    return suspend_signal;
}

void kiln_world_exempt_current_thread(void) {
    pthread_once(&world_once, initialise);
    pid_t tid = current_tid();
    pthread_mutex_lock(&exempt_lock);
    if (exempt_count == exempt_capacity) {
        int grown = exempt_capacity ? 2 * exempt_capacity : 8;
        pid_t *bigger = realloc(exempt, (size_t)grown * sizeof *bigger);
        if (bigger == NULL) {
            pthread_mutex_unlock(&exempt_lock);
            return;  // stays a thread that is stopped like any other: safe
        }
        exempt = bigger;
        exempt_capacity = grown;
    }
    exempt[exempt_count++] = tid;
    pthread_mutex_unlock(&exempt_lock);
    pthread_setspecific(exempt_key, (void *)1);
}

// --- Stopping ---------------------------------------------------------------

static int is_exempt(pid_t tid) {
    for (int index = 0; index < exempt_count; index++) {
        if (exempt[index] == tid) return 1;
    }
    return 0;
}

static int find_slot(pid_t tid) {
    struct slot *slots = atomic_load(&table);
    int count = atomic_load(&slot_count);
    for (int index = 0; index < count; index++) {
        if (slots[index].tid == tid) return index;
    }
    return -1;
}

static int was_answering(pid_t tid) {
    for (int index = 0; index < ANSWERING_CACHE; index++) {
        if (answering[index] == tid) return 1;
    }
    return 0;
}

static void remember_answering(pid_t tid) {
    if (was_answering(tid)) return;
    answering[answering_next] = tid;
    answering_next = (answering_next + 1) % ANSWERING_CACHE;
}

// "/proc/self/task/<tid>/<leaf>" into `path`.
static void task_path(char *path, pid_t tid, const char *leaf) {
    int length = 0;
    const char *prefix = "/proc/self/task/";
    while (prefix[length]) { path[length] = prefix[length]; length++; }
    char digits[16];
    int count = 0;
    for (pid_t value = tid; value > 0; value /= 10) digits[count++] = (char)('0' + value % 10);
    while (count) path[length++] = digits[--count];
    path[length++] = '/';
    for (int index = 0; leaf[index]; index++) path[length++] = leaf[index];
    path[length] = 0;
}

// Reads a small /proc file into `buffer` (NUL-terminated); the length, or -1.
static ssize_t read_proc(const char *path, char *buffer, size_t size) {
    int descriptor = open(path, O_RDONLY | O_CLOEXEC);
    if (descriptor < 0) return -1;
    ssize_t length = read(descriptor, buffer, size - 1);
    close(descriptor);
    if (length < 0) return -1;
    buffer[length] = 0;
    return length;
}

static unsigned long long field_after(const char *text, const char *label, int base) {
    const char *at = strstr(text, label);
    return at ? strtoull(at + strlen(label), NULL, base) : 0;
}

// What /proc says of a thread: whether it blocks the suspension signal (it would not
// answer), whether it is a zombie (an exited leader: it never answers either), and how
// many times it has been switched out (unchanged means it has not run meanwhile).
static void read_status(pid_t tid, int *blocks, int *zombie, uint64_t *switches) {
    *blocks = 0;
    *zombie = 0;
    *switches = 0;
    char path[64], buffer[4096];
    task_path(path, tid, "status");
    if (read_proc(path, buffer, sizeof buffer) <= 0) return;
    const char *state = strstr(buffer, "State:");
    if (state) {
        state += 6;
        while (*state == ' ' || *state == '\t') state++;
        *zombie = *state == 'Z' || *state == 'X';
    }
    *blocks = (int)((field_after(buffer, "SigBlk:", 16) >> (suspend_signal - 1)) & 1);
    *switches = field_after(buffer, "\nvoluntary_ctxt_switches:", 10)
        + field_after(buffer, "nonvoluntary_ctxt_switches:", 10);
}

// A thread that does not answer may still be quiet: blocked in the kernel, where it
// cannot run anything. /proc/<tid>/syscall then gives its user rsp and rip.
static int find_quiet(struct slot *slot) {
    char path[64], buffer[512];
    task_path(path, slot->tid, "syscall");
    if (read_proc(path, buffer, sizeof buffer) <= 0 || buffer[0] == 'r') return 0;  // "running"
    // "nr a1 a2 a3 a4 a5 a6 sp pc", or "-1 sp pc" when blocked outside a system call.
    uintptr_t numbers[9];
    int count = 0;
    char *cursor = buffer;
    while (count < 9 && *cursor) {
        while (*cursor == ' ') cursor++;
        if (!*cursor || *cursor == '\n') break;
        numbers[count++] = (uintptr_t)strtoull(cursor, &cursor, 0);
    }
    if (count != 9 && count != 3) return 0;
    int blocks, zombie;
    uint64_t switches;
    read_status(slot->tid, &blocks, &zombie, &switches);
    if (zombie) return 0;
    slot->switches = switches;
    slot->thread.registers[KILN_REGISTER_RSP] = numbers[count - 2];
    slot->thread.registers[KILN_REGISTER_RIP] = numbers[count - 1];
    return 1;
}

int kiln_world_still_quiet(int index) {
    if (index < 0 || index >= atomic_load(&slot_count)) return 0;
    struct slot *slot = &atomic_load(&table)[index];
    if (slot->thread.state != KILN_THREAD_QUIET) return 0;
    char path[64], buffer[512];
    task_path(path, slot->tid, "syscall");
    if (read_proc(path, buffer, sizeof buffer) <= 0 || buffer[0] == 'r') return 0;
    int blocks, zombie;
    uint64_t switches;
    read_status(slot->tid, &blocks, &zombie, &switches);
    return switches == slot->switches;
}

// Adds and signals every thread not yet in the table. Returns how many were new, or -1
// when the table is full (the caller resumes, grows it and starts again).
static int signal_new_threads(pid_t self) {
    int directory = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (directory < 0) return 0;
    char buffer[4096];
    int added = 0;
    for (;;) {
        long size = syscall(SYS_getdents64, directory, buffer, sizeof buffer);
        if (size <= 0) break;
        for (long offset = 0; offset < size;) {
            struct { uint64_t inode; int64_t next; unsigned short length; unsigned char type; char name[]; } *entry =
                (void *)(buffer + offset);
            offset += entry->length;
            if (entry->name[0] < '0' || entry->name[0] > '9') continue;
            pid_t tid = (pid_t)atoi(entry->name);
            if (tid == self || is_exempt(tid) || find_slot(tid) >= 0) continue;
            int index = atomic_load(&slot_count);
            if (index == capacity) {
                close(directory);
                return -1;
            }
            struct slot *slot = &atomic_load(&table)[index];
            memset(&slot->thread, 0, sizeof slot->thread);
            slot->tid = tid;
            slot->thread.tid = tid;
            atomic_store(&slot->state, REQUESTED);
            atomic_store(&slot_count, index + 1);
            added++;
            if (!was_answering(tid)) {
                // Ask /proc first: a thread that blocks the signal would only time out.
                int blocks, zombie;
                uint64_t switches;
                read_status(tid, &blocks, &zombie, &switches);
                if (blocks || zombie) {
                    atomic_store(&slot->state, zombie ? EXITED : BLOCKING);
                    continue;
                }
            }
            if (send_signal(tid, suspend_signal) != 0) {
                atomic_store(&slot->state, errno == ESRCH ? EXITED : UNRESPONSIVE);
            }
        }
    }
    close(directory);
    return added;
}

static uint64_t now_ns(void) {
    struct timespec time;
    clock_gettime(CLOCK_MONOTONIC, &time);
    return (uint64_t)time.tv_sec * 1000000000u + (uint64_t)time.tv_nsec;
}

// Waits until every REQUESTED slot has stopped, exited or timed out. At `deadline`, a
// thread that blocks the signal will never answer (BLOCKING); one that does not is only
// waiting for a processor, so it gets until `limit` before it counts as UNRESPONSIVE.
static void wait_for_requested(uint64_t deadline, uint64_t limit) {
    struct slot *slots = atomic_load(&table);
    int asked = 0;
    for (;;) {
        int waiting = 0;
        int count = atomic_load(&slot_count);
        for (int index = 0; index < count; index++) {
            if (atomic_load(&slots[index].state) != REQUESTED) continue;
            if (send_signal(slots[index].tid, 0) != 0 && errno == ESRCH) {
                int expected = REQUESTED;
                atomic_compare_exchange_strong(&slots[index].state, &expected, EXITED);
                continue;
            }
            waiting++;
        }
        if (waiting == 0) return;
        uint64_t now = now_ns();
        if (now >= deadline && !asked) {
            asked = 1;
            for (int index = 0; index < count; index++) {
                if (atomic_load(&slots[index].state) != REQUESTED) continue;
                int blocks, zombie, expected = REQUESTED;
                uint64_t switches;
                read_status(slots[index].tid, &blocks, &zombie, &switches);
                if (blocks || zombie) {
                    atomic_compare_exchange_strong(&slots[index].state, &expected, zombie ? EXITED : BLOCKING);
                }
            }
            continue;
        }
        if (now >= limit) {
            for (int index = 0; index < count; index++) {
                int expected = REQUESTED;
                atomic_compare_exchange_strong(&slots[index].state, &expected, UNRESPONSIVE);
            }
            return;
        }
        uint32_t seen = atomic_load(&stopped_count);
        uint64_t until = now < deadline ? deadline : limit;
        uint64_t slice = until - now < 1000000 ? until - now : 1000000;
        struct timespec timeout = { 0, (long)slice };
        futex(&stopped_count, FUTEX_WAIT, seen, &timeout);
    }
}

static int cached_stack(pid_t tid, uintptr_t sp, uintptr_t *low, uintptr_t *high) {
    for (int index = 0; index < STACK_CACHE; index++) {
        if (stack_cache[index].tid == tid && sp >= stack_cache[index].low && sp < stack_cache[index].high) {
            *low = stack_cache[index].low;
            *high = stack_cache[index].high;
            return 1;
        }
    }
    return 0;
}

static void remember_stack(pid_t tid, uintptr_t low, uintptr_t high) {
    for (int index = 0; index < STACK_CACHE; index++) {
        if (stack_cache[index].tid == tid) {
            stack_cache[index].low = low;
            stack_cache[index].high = high;
            return;
        }
    }
    stack_cache[stack_cache_next].tid = tid;
    stack_cache[stack_cache_next].low = low;
    stack_cache[stack_cache_next].high = high;
    stack_cache_next = (stack_cache_next + 1) % STACK_CACHE;
}

static uintptr_t parse_hex(const char **cursor) {
    uintptr_t value = 0;
    for (;;) {
        char c = **cursor;
        int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (digit < 0) return value;
        value = value * 16 + (uintptr_t)digit;
        (*cursor)++;
    }
}

// One pass over /proc/self/maps: every stopped thread without bounds gets the readable
// mapping that holds its stack pointer.
static void find_stacks_in_maps(void) {
    int descriptor = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (descriptor < 0) return;
    struct slot *slots = atomic_load(&table);
    int count = atomic_load(&slot_count);
    char buffer[8192];
    size_t kept = 0;
    for (;;) {
        ssize_t size = read(descriptor, buffer + kept, sizeof buffer - kept - 1);
        if (size <= 0) break;
        size_t end = kept + (size_t)size;
        buffer[end] = 0;
        size_t line = 0;
        for (size_t index = 0; index < end; index++) {
            if (buffer[index] != '\n') continue;
            const char *cursor = buffer + line;
            uintptr_t low = parse_hex(&cursor);
            cursor++;
            uintptr_t high = parse_hex(&cursor);
            int readable = cursor[1] == 'r';
            for (int slot = 0; slot < count && readable; slot++) {
                struct kiln_stopped_thread *thread = &slots[slot].thread;
                if (thread->state != KILN_THREAD_STOPPED && thread->state != KILN_THREAD_QUIET) continue;
                if (thread->stack_high != 0) continue;
                uintptr_t sp = thread->registers[KILN_REGISTER_RSP];
                if (sp >= low && sp < high) {
                    thread->stack_low = low;
                    thread->stack_high = high;
                    remember_stack(thread->tid, low, high);
                }
            }
            line = index + 1;
        }
        kept = end - line;
        memmove(buffer, buffer + line, kept);
        if (kept >= sizeof buffer - 1) kept = 0;  // a line longer than the buffer: skip it
    }
    close(descriptor);
}

// Lets the stopped threads go. It does not wait for them to leave the handler: on a
// busy machine a woken thread may wait milliseconds for a processor, and one that has
// not left yet touches nothing but its own registers (it never reads the table again),
// so the next stop may begin at once; its signal waits until the handler returns.
static void release_stopped(void) {
    atomic_store(&stopping, 0);
    atomic_store(&released_epoch, atomic_load(&epoch));
    futex(&released_epoch, FUTEX_WAKE, INT_MAX, NULL);
}

int kiln_world_stop(int timeout_ms) {
    pthread_once(&world_once, initialise);
    pthread_mutex_lock(&world_lock);
    pid_t self = current_tid();
    atomic_store(&controller, self);
    for (;;) {
        pthread_mutex_lock(&exempt_lock);
        atomic_store(&slot_count, 0);
        atomic_store(&stopped_count, 0);
        atomic_fetch_add(&epoch, 1);
        atomic_store(&stopping, 1);
        uint64_t wait = (uint64_t)(timeout_ms > 0 ? timeout_ms : 1) * 1000000u;
        uint64_t deadline = now_ns() + wait, limit = deadline + 20 * wait;
        int overflow = 0;
        for (int round = 0;; round++) {
            int added = signal_new_threads(self);
            if (added < 0) {
                overflow = 1;
                break;
            }
            if (added == 0 && round > 0) break;
            wait_for_requested(deadline, limit);
        }
        pthread_mutex_unlock(&exempt_lock);
        if (!overflow) break;
        release_stopped();
        // Nothing is stopped now: the table may grow.
        int grown = 2 * capacity;
        struct slot *bigger = calloc((size_t)grown, sizeof(struct slot));
        if (bigger == NULL) {
            atomic_store(&controller, 0);
            pthread_mutex_unlock(&world_lock);
            return -1;
        }
        atomic_store(&table, bigger);  // the old table is kept: a late handler may read it
        capacity = grown;
    }
    struct slot *slots = atomic_load(&table);
    int count = atomic_load(&slot_count);
    int missing = 0;
    for (int index = 0; index < count; index++) {
        struct kiln_stopped_thread *thread = &slots[index].thread;
        int state = atomic_load(&slots[index].state);
        if (state == STOPPED) {
            thread->state = KILN_THREAD_STOPPED;
            remember_answering(thread->tid);
        } else if (state == BLOCKING && find_quiet(&slots[index])) {
            thread->state = KILN_THREAD_QUIET;
        } else if (state == BLOCKING || state == UNRESPONSIVE) {
            thread->state = KILN_THREAD_UNRESPONSIVE;
            unresponsive_total++;
            continue;
        } else {
            thread->state = KILN_THREAD_EXITED;
            continue;
        }
        uintptr_t sp = thread->registers[KILN_REGISTER_RSP];
        if (!cached_stack(thread->tid, sp, &thread->stack_low, &thread->stack_high)) missing++;
    }
    if (missing) find_stacks_in_maps();
    stops++;
    if (allocation_hook) allocation_hook(1);
    return count;
}

const struct kiln_stopped_thread *kiln_world_thread(int index) {
    if (index < 0 || index >= atomic_load(&slot_count)) return NULL;
    return &atomic_load(&table)[index].thread;
}

void kiln_world_resume(void) {
    if (allocation_hook) allocation_hook(0);
    release_stopped();
    atomic_store(&controller, 0);
    pthread_mutex_unlock(&world_lock);
}

int kiln_world_is_left_running_in_a_stop(void) {
    pid_t holder = atomic_load(&controller);
    if (holder == 0 || holder == current_tid()) return 0;
    // A thread that stops reach is about to be stopped, or would wait at the runtime's
    // lock: only exempt threads and threads that block the signal run on through a stop.
    if (pthread_getspecific(exempt_key) != NULL) return 1;  // the key exists: a stop began
    sigset_t blocked;
    if (pthread_sigmask(SIG_BLOCK, NULL, &blocked) != 0) return 0;
    return suspend_signal != 0 && sigismember(&blocked, suspend_signal) == 1;
}

void kiln_world_wait(void) {
    for (;;) {
        uint32_t seen = atomic_load(&released_epoch);
        if (!atomic_load(&stopping)) return;
        futex(&released_epoch, FUTEX_WAIT, seen, NULL);
    }
}

void kiln_world_accept_stops(void) {
    pthread_once(&world_once, initialise);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, suspend_signal);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

uintptr_t kiln_world_signal_restorer(void) {
    pthread_once(&world_once, initialise);
    struct sigaction current;
    if (sigaction(suspend_signal, NULL, &current) != 0 || !(current.sa_flags & SA_RESTORER)) return 0;
    return (uintptr_t)current.sa_restorer;
}

size_t kiln_world_sigframe_registers_offset(void) {
    // The kernel's frame for a handler: the restorer's address (where the handler returns),
    // then the ucontext whose registers sigreturn restores.
    return sizeof(void *) + offsetof(ucontext_t, uc_mcontext.gregs);
}

int kiln_world_handler_is_installed(void) {
    pthread_once(&world_once, initialise);
    struct sigaction current;
    if (!installed || sigaction(suspend_signal, NULL, &current) != 0) return 0;
    return (current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_suspend;
}

uint64_t kiln_world_unresponsive_total(void) {
    pthread_mutex_lock(&world_lock);
    uint64_t total = unresponsive_total;
    pthread_mutex_unlock(&world_lock);
    return total;
}
