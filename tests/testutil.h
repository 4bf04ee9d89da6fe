/*
 * testutil.h - helpers shared by the Check suites: libgcrypt set-up, temp
 * directories, and a keymgrd running in a thread of the test process.
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <pthread.h>
#include <signal.h>
#include <limits.h>

#include "ctx.h"

/* Initialises libgcrypt as keymgrd does (call first in main). */
void tu_init_gcrypt(void);
/* A new empty directory under $TMPDIR (malloc'd path). */
char *tu_tmpdir(void);
/* rm -rf of a directory made by tu_tmpdir; frees the path. */
void tu_rmdir(char *dir);

/* A daemon: store, master key and state in dir, served on dir/sock. */
struct tu_daemon {
	char *dir;
	char sock[PATH_MAX];
	struct store *st;
	uint8_t *master;
	struct km_ctx ctx;
	pthread_t thread;
	volatile sig_atomic_t stop;
	int result;
};
/* Opens the state in a new temp dir (cheap PIN hashing); serve starts the
 * server thread too. */
struct tu_daemon *tu_daemon_open(bool serve);
void tu_daemon_close(struct tu_daemon *d);

#endif
