// setjmp and longjmp across moving code: every call through a TOC between
// the two may compact the code heap (KILN_STRESS=compact), and the jmp_buf
// holds a return address into main, mangled where no scan can see it. Then a
// handler of the program's own catches SIGSEGV and leaves with siglongjmp.

#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static jmp_buf again;
static sigjmp_buf recovered;

static int descend(int n) {
    char text[16];
    snprintf(text, sizeof text, "%d", n);
    if (n == 0) longjmp(again, 7);
    return descend(n - 1) + (int)strlen(text);
}

static void on_fault(int signal) {
    (void)signal;
    siglongjmp(recovered, 3);
}

int main(void) {
    long total = 0;
    for (int round = 0; round < 300; round++) {
        int value = setjmp(again);
        if (value == 0) descend(round % 8);
        else total += value;
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_fault;
    sigaction(SIGSEGV, &action, 0);
    for (int round = 0; round < 100; round++) {
        if (sigsetjmp(recovered, 1) == 0) {
            int *nowhere = 0;
            nowhere[round] = round;
        } else {
            total += 1;
        }
    }
    printf("%ld\n", total);
    return 0;
}
