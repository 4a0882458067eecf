// A malloc that counts the allocations a thread makes while it says it must
// not allocate. Linked into the test executable only, where its malloc family
// stands in for the C library's (the executable's definitions win), so the
// managed heap's tests can prove that a collection, which runs while other
// threads are stopped, never calls malloc or free.

#ifndef CKILNMALLOCGUARD_H
#define CKILNMALLOCGUARD_H

/// From now on (1) or no longer (0), count the calling thread's allocations and frees.
void kiln_malloc_guard_forbid(int on);

/// Allocations and frees counted so far, on every thread.
long kiln_malloc_guard_violations(void);

#endif
