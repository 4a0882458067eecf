/* Mandelbrot set: floating-point inner loop, counts points inside. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
	int size = argc > 1 ? atoi(argv[1]) : 1600;
	long inside = 0;
	for (int y = 0; y < size; y++) {
		double ci = 2.0 * y / size - 1.0;
		for (int x = 0; x < size; x++) {
			double cr = 2.0 * x / size - 1.5;
			double zr = 0, zi = 0;
			int i = 0;
			while (i < 50 && zr * zr + zi * zi <= 4.0) {
				double t = zr * zr - zi * zi + cr;
				zi = 2.0 * zr * zi + ci;
				zr = t;
				i++;
			}
			inside += i == 50;
		}
	}
	printf("%ld points inside\n", inside);
	return 0;
}
