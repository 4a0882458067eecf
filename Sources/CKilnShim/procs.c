// The words generated code and the proc routines share with the runtime
// (see "Procs" in CKilnShim.h). Plain globals: procs run on one thread of
// the process, and the routines embed these addresses as constants.

#define _GNU_SOURCE
#include "CKilnShim.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <ucontext.h>

uintptr_t kiln_stack_limit;
struct kiln_proc_globals kiln_procs;
uintptr_t kiln_proc_fault_routine;

struct kiln_proc_globals *kiln_procs_address(void) { return &kiln_procs; }
uintptr_t *kiln_stack_limit_address(void) { return &kiln_stack_limit; }
void kiln_proc_set_fault_routine(uintptr_t routine) { kiln_proc_fault_routine = routine; }

int kiln_proc_take_fault(void *raw, int signal, uintptr_t address) {
    ucontext_t *context = raw;
    greg_t *registers = context->uc_mcontext.gregs;
    uintptr_t sp = (uintptr_t)registers[REG_RSP];
    if (!kiln_proc_fault_routine || !kiln_procs.current || sp < kiln_procs.region_low || sp >= kiln_procs.region_high) {
        return 0;
    }
    // Resume on the C stack in the fault routine, which ends the proc and parks it for good.
    registers[REG_RDI] = signal;
    registers[REG_RSI] = (greg_t)address;
    registers[REG_RDX] = registers[REG_RIP];
    registers[REG_RCX] = registers[REG_RBP];
    registers[REG_RSP] = (greg_t)((kiln_procs.native_rsp - 64) & ~(uintptr_t)15);
    registers[REG_RIP] = (greg_t)kiln_proc_fault_routine;
    return 1;
}

static pthread_t ticker;
static _Atomic long ticker_interval;
static _Atomic int ticker_running;

static void *tick(void *unused) {
    (void)unused;
    // The runtime's stops must not wait for this thread: it runs no Kiln code.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    uintptr_t seen = (uintptr_t)-1;
    long interval;
    while ((interval = atomic_load(&ticker_interval)) > 0) {
        struct timespec pause = {interval / 1000000, (interval % 1000000) * 1000};
        nanosleep(&pause, NULL);
        uintptr_t switches = __atomic_load_n(&kiln_procs.switches, __ATOMIC_RELAXED);
        if (__atomic_load_n(&kiln_procs.current, __ATOMIC_RELAXED) != 0 && switches == seen) {
            __atomic_store_n(&kiln_procs.preempt, 1, __ATOMIC_RELAXED);
            __atomic_store_n(&kiln_stack_limit, UINTPTR_MAX, __ATOMIC_RELAXED);
        }
        seen = switches;
    }
    return NULL;
}

void kiln_proc_ticker(long interval_us) {
    if (interval_us > 0) {
        atomic_store(&ticker_interval, interval_us);
        if (!atomic_exchange(&ticker_running, 1)) pthread_create(&ticker, NULL, tick, NULL);
    } else if (atomic_exchange(&ticker_running, 0)) {
        atomic_store(&ticker_interval, 0);
        pthread_join(ticker, NULL);
    }
}
