/* The comparison every C-side comparator of `kiln-bench callbacks` runs:
 * -1, 0 or 1 for two ints, without the overflow of x - y. Inline, so the
 * plain comparator and the libffi handler do the same work with no extra call. */

#ifndef COMPARE_H
#define COMPARE_H

static inline int compare_ints(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

#endif
