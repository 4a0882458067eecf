/* libc qsort of ints with a comparator in the compiled program: calls from C back in. */
#include <stdio.h>
#include <stdlib.h>

static int compare(const void *a, const void *b) {
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 2000000;
	int *v = malloc(sizeof(int) * n);
	unsigned seed = 12345;
	for (int i = 0; i < n; i++) {
		seed = seed * 1103515245 + 12345;
		v[i] = (int)(seed >> 1);
	}
	qsort(v, n, sizeof(int), compare);
	long check = 0;
	for (int i = 0; i < n; i += n / 100)
		check += v[i] % 1000;
	printf("sorted %d, check %ld\n", n, check);
	free(v);
	return 0;
}
