// A program that hands one of its functions to a C library whose own threads
// call it continuously (workers.c), while the program's thread enters Kiln's
// runtime again and again (under KILN_STRESS=compact, every call through a
// TOC compacts the code heap), sleeping 200 µs between rounds.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int workers_start(long (*function)(long), int n);
int workers_start_blocking(long (*function)(long), int n);
int workers_start_quiet(void);
long workers_churn(long (*function)(long), long rounds);
long workers_calls(void);
long workers_stop(void);

long square_plus_one(long x) { return x * x + 1; }

/// Arguments: the rounds of runtime entries (default 2000), the worker calls to wait for
/// (default 100000), the number of workers (default 4), and how they run: "plain",
/// "blocking" (every signal blocked: they cannot be stopped), "quiet" (plain workers plus
/// a thread that blocks every signal and waits in read()) or "churn" (threads that each
/// make one call and exit, one after another, on a thread of their own... here the main one,
/// between the rounds).
int main(int argc, char **argv) {
    long wanted_rounds = argc > 1 ? atol(argv[1]) : 2000;
    long wanted_calls = argc > 2 ? atol(argv[2]) : 100000;
    int workers = argc > 3 ? atoi(argv[3]) : 4;
    const char *mode = argc > 4 ? argv[4] : "plain";
    if (strcmp(mode, "churn") == 0) {
        long errors = 0;
        for (long round = 0; round < wanted_rounds; round++) {
            errors = workers_churn(square_plus_one, 5);
            usleep(100);
        }
        printf("%ld wrong results\n", errors);
        return errors != 0;
    }
    if (strcmp(mode, "quiet") == 0 && workers_start_quiet() != 0) {
        puts("cannot start the quiet thread");
        return 2;
    }
    int started = strcmp(mode, "blocking") == 0 ? workers_start_blocking(square_plus_one, workers)
                                                : workers_start(square_plus_one, workers);
    if (started != 0) {
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
