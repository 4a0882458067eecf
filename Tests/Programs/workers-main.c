// A program that hands one of its functions to a C library whose own threads
// call it continuously (workers.c), while the program's thread enters Kiln's
// runtime again and again (under KILN_STRESS=compact, every call through a
// TOC compacts the code heap), sleeping 200 µs between rounds.

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int workers_start(long (*function)(long), int n);
long workers_calls(void);
long workers_stop(void);

long square_plus_one(long x) { return x * x + 1; }

/// Arguments: the rounds of runtime entries (default 2000), the worker calls to wait for
/// (default 100000) and the number of workers (default 4).
int main(int argc, char **argv) {
    long wanted_rounds = argc > 1 ? atol(argv[1]) : 2000;
    long wanted_calls = argc > 2 ? atol(argv[2]) : 100000;
    int workers = argc > 3 ? atoi(argv[3]) : 4;
    if (workers_start(square_plus_one, workers) != 0) {
        puts("cannot start the workers");
        return 2;
    }
    long rounds = 0;
    while (workers_calls() < wanted_calls || rounds < wanted_rounds) {
        usleep(200);
        rounds++;
    }
    long errors = workers_stop();
    printf("%ld wrong results\n", errors);
    return errors != 0;
}
