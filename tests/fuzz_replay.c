/*
 * fuzz_replay.c - runs the fuzz harness over files (the seed corpus, or a
 * crash a fuzzer found) without libFuzzer, so "make check" keeps the
 * harness building and running with any compiler.
 */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(1 << 20);
	if (f == NULL || buf == NULL) {
		fprintf(stderr, "fuzz_replay: cannot read %s\n", path);
		free(buf);
		if (f)
			fclose(f);
		return 1;
	}
	size_t n = fread(buf, 1, 1 << 20, f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

int
main(int argc, char **argv)
{
	int bad = 0, count = 0;
	for (int i = 1; i < argc; i++) {
		struct stat sb;
		if (stat(argv[i], &sb) != 0) {
			fprintf(stderr, "fuzz_replay: %s: not found\n", argv[i]);
			return 1;
		}
		if (!S_ISDIR(sb.st_mode)) {
			bad |= run_file(argv[i]);
			count++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		struct dirent *e;
		while (d && (e = readdir(d)) != NULL) {
			char path[4096];
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			bad |= run_file(path);
			count++;
		}
		if (d)
			closedir(d);
	}
	printf("fuzz_replay: %d input(s) replayed\n", count);
	return bad || count == 0;
}
