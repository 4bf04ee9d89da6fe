/* testutil.c - see testutil.h. */
#include "config.h"

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gcrypt.h>

#include "log.h"
#include "crypto/seal.h"
#include "server/server.h"
#include "testutil.h"

void
tu_init_gcrypt(void)
{
	gcry_check_version(NULL);
	gcry_control(GCRYCTL_SUSPEND_SECMEM_WARN);
	gcry_control(GCRYCTL_INIT_SECMEM, 1024 * 1024, 0);
	gcry_control(GCRYCTL_AUTO_EXPAND_SECMEM, 4 * 1024 * 1024, 0);
	gcry_control(GCRYCTL_RESUME_SECMEM_WARN);
	gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
	log_init("test", true, false, getenv("TEST_DEBUG") ? LOG_DEBUG : LOG_ERR);
}

char *
tu_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *p = NULL;
	ck_assert_int_ge(asprintf(&p, "%s/coyeu-test.XXXXXX", base && *base ? base : "/tmp"), 0);
	ck_assert_ptr_nonnull(mkdtemp(p));
	return p;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(path);
}

void
tu_rmdir(char *dir)
{
	if (dir) {
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		free(dir);
	}
}

static void *
serve(void *arg)
{
	struct tu_daemon *d = arg;
	struct server_opts o;
	server_defaults(&o);
	o.socket_path = d->sock;
	o.socket_mode = 0600;
	o.socket_gid = (gid_t)-1;
	o.workers = 4;
	o.max_conns = 64;
	d->result = server_run(&d->ctx, &o, &d->stop);
	return NULL;
}

struct tu_daemon *
tu_daemon_open(bool run)
{
	struct tu_daemon *d = calloc(1, sizeof(*d));
	char path[PATH_MAX + 32];
	bool created;
	ck_assert_ptr_nonnull(d);
	d->dir = tu_tmpdir();
	snprintf(path, sizeof(path), "%s/master.key", d->dir);
	ck_assert_int_eq(seal_master_key(path, &d->master, &created), 0);
	snprintf(path, sizeof(path), "%s/keymgr.db", d->dir);
	ck_assert_int_eq(store_open(path, &d->st), 0);
	ck_assert_int_eq(ctx_init(&d->ctx, d->st, d->master), 0);
	/* Cheap PIN hashing keeps the suites fast; the cost is a parameter. */
	d->ctx.pin_cost.mem_kib = 64;
	d->ctx.pin_cost.passes = 1;
	d->ctx.max_pin_failures = 3;
	snprintf(d->sock, sizeof(d->sock), "%s/sock", d->dir);
	if (run) {
		ck_assert_int_eq(pthread_create(&d->thread, NULL, serve, d), 0);
		for (int i = 0; i < 200 && access(d->sock, F_OK) != 0; i++)
			usleep(10000);
		ck_assert_int_eq(access(d->sock, F_OK), 0);
	}
	return d;
}

void
tu_daemon_close(struct tu_daemon *d)
{
	if (d == NULL)
		return;
	if (d->thread) {
		d->stop = 1;
		server_wake();
		pthread_join(d->thread, NULL);
	}
	ctx_free(&d->ctx);
	store_close(d->st);
	seal_key_free(d->master);
	tu_rmdir(d->dir);
	free(d);
}
