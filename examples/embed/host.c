/* A C host embedding Kiln through kiln.h: loads IL, calls it directly and through
 * kiln_call, hands it a C callback, reloads it (the address it kept follows), shows how
 * misuse is reported, unloads and frees. With a path argument it also loads that IL or
 * crate file and runs its main.
 *
 * Build (from the repository, after `swift build`):
 *   gcc -o host examples/embed/host.c -I Sources/KilnC/include \
 *       -L .build/debug -lKilnC -Wl,-rpath,$PWD/.build/debug
 */
#include <stdio.h>
#include <string.h>

#include "kiln.h"

/* A check that prints the reason and stops the host when a call fails. */
#define CHECK(call)                                                               \
    do {                                                                          \
        kiln_status status_ = (call);                                             \
        if (status_ != KILN_OK) {                                                 \
            fprintf(stderr, "%s failed (%d): %s\n", #call, status_, kiln_last_error()); \
            return 1;                                                             \
        }                                                                         \
    } while (0)

static const char version1[] =
    "export function l $scale(l %x) {\n"
    "@start\n"
    "\t%y =l mul %x, 10\n"
    "\tret %y\n"
    "}\n"
    "export function l $apply(l %f, l %x) {\n"
    "@start\n"
    "\t%y =l call %f(l %x)\n"
    "\t%z =l call $scale(l %y)\n"
    "\tret %z\n"
    "}\n";

static const char version2[] =
    "export function l $scale(l %x) {\n"
    "@start\n"
    "\t%y =l mul %x, 100\n"
    "\tret %y\n"
    "}\n"
    "export function l $apply(l %f, l %x) {\n"
    "@start\n"
    "\t%y =l call %f(l %x)\n"
    "\t%z =l call $scale(l %y)\n"
    "\tret %z\n"
    "}\n";

static const char broken[] = "export function l $scale(l %x) {\n@start\n\tret %nothing\n}\n";

/* Prints a failed call's status and reason (read after the call, before the next one). */
static void report(const char *what, kiln_status status) {
    printf("%s: %d: %s\n", what, status, kiln_last_error());
}

/* Called back by the crate. */
static long add_one(long x) { return x + 1; }

int main(int argc, char **argv) {
    printf("%s\n", kiln_version());
    kiln_loader loader;
    kiln_crate crate;
    CHECK(kiln_loader_create(&loader));
    CHECK(kiln_load_il(loader, "scale.ssa", version1, strlen(version1), &crate));

    /* A stable address to call as a C function, and a call by name. */
    long (*scale)(long);
    CHECK(kiln_function(crate, "scale", (void **)&scale));
    int64_t arguments[2] = {(int64_t)(intptr_t)add_one, 4}, result = 0;
    CHECK(kiln_call(crate, "apply", arguments, 2, &result));
    printf("v1: scale(7) = %ld, apply(add_one, 4) = %lld\n", scale(7), (long long)result);

    /* A reload: the address kept above reaches the new version. */
    CHECK(kiln_reload_il(crate, version2, strlen(version2)));
    CHECK(kiln_call(crate, "apply", arguments, 2, &result));
    printf("v2: scale(7) = %ld, apply(add_one, 4) = %lld\n", scale(7), (long long)result);

    /* Failures change nothing and say why. */
    report("broken reload", kiln_reload_il(crate, broken, strlen(broken)));
    printf("after it: scale(7) = %ld\n", scale(7));
    void *missing;
    report("no such function", kiln_function(crate, "nothing", &missing));
    report("null name", kiln_function(crate, NULL, &missing));
    report("crate as loader", kiln_load_il(crate, "x", "", 0, &crate));
    report("too many arguments", kiln_call(crate, "scale", arguments, 7, &result));
    report("made-up handle", kiln_unload(987654321));

    if (argc > 1) {
        kiln_crate program;
        CHECK(kiln_load_file(loader, argv[1], &program));
        const char *program_arguments[] = {argv[1], "from", "host"};
        int status = -1;
        CHECK(kiln_run_main(program, 3, program_arguments, &status));
        printf("main returned %d\n", status);
    }

    CHECK(kiln_unload(crate));
    report("stale crate", kiln_call(crate, "scale", arguments, 1, &result));
    CHECK(kiln_loader_free(loader));
    report("stale loader", kiln_loader_free(loader));
    CHECK(kiln_loader_create(&loader));
    printf("last error after a success: \"%s\"\n", kiln_last_error());
    CHECK(kiln_loader_free(loader));
    return 0;
}
