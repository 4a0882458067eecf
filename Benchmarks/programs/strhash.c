/* FNV-1a hashing of many generated strings into an open-addressing table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long hash(const char *s) {
	unsigned long h = 14695981039346656037UL;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211UL;
	return h;
}

int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 500000;
	int size = 1 << 22;
	unsigned long *table = calloc(size, sizeof(unsigned long));
	char buffer[32];
	long collisions = 0;
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < n; i++) {
			int k = i, len = 0;
			do {
				buffer[len++] = 'a' + k % 26;
				k /= 26;
			} while (k);
			buffer[len++] = '0' + round;
			buffer[len] = 0;
			unsigned long h = hash(buffer);
			unsigned long slot = h & (size - 1);
			while (table[slot] && table[slot] != h) {
				slot = (slot + 1) & (size - 1);
				collisions++;
			}
			table[slot] = h;
		}
	}
	printf("%ld collisions\n", collisions);
	free(table);
	return 0;
}
