/* The C side of `kiln-bench callbacks`: libc qsort calling a comparator
 * through a function pointer, the C comparator the other ways are measured
 * against, and a counting wrapper that says how many comparisons a sort makes.
 *
 * kiln-bench builds this file and ffi_comparator.c into one shared object
 * at run time (gcc -O2 -shared -fPIC ... -lffi) and finds these functions
 * with dlsym. Nothing here keeps state between calls except the counter. */

#include <stddef.h>
#include <stdlib.h>

#include "compare.h"

/* Sorts n ints with libc qsort; cmp is whatever the caller passes: a C
 * function, a Kiln callback stub, a Kiln entry address, an ffi closure. */
void sort_with(int *a, size_t n, int (*cmp)(const void *, const void *))
{
	qsort(a, n, sizeof *a, cmp);
}

/* The baseline comparator. */
int c_compare(const void *a, const void *b)
{
	return compare_ints(a, b);
}

static int (*counted)(const void *, const void *);
static unsigned long long comparisons;

static int counting_compare(const void *a, const void *b)
{
	comparisons++;
	return counted(a, b);
}

/* Sorts like sort_with and returns how many times cmp was called.
 * Not thread-safe (one counter); used outside the timed runs only. */
unsigned long long count_comparisons(int *a, size_t n, int (*cmp)(const void *, const void *))
{
	counted = cmp;
	comparisons = 0;
	qsort(a, n, sizeof *a, counting_compare);
	return comparisons;
}
