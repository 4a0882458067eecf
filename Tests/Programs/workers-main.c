// A program that hands one of its functions to a C library whose own threads
// call it continuously (workers.c), while the program's thread enters Kiln's
// runtime again and again (under KILN_STRESS=compact, every call through a
// TOC compacts the code heap).

#include <sched.h>
#include <stdio.h>

int workers_start(long (*function)(long), int n);
long workers_calls(void);
long workers_stop(void);

long square_plus_one(long x) { return x * x + 1; }

int main(void) {
    if (workers_start(square_plus_one, 4) != 0) {
        puts("cannot start the workers");
        return 2;
    }
    long rounds = 0;
    while (workers_calls() < 100000 || rounds < 2000) {
        sched_yield();
        rounds++;
    }
    long errors = workers_stop();
    printf("%ld wrong results\n", errors);
    return errors != 0;
}
