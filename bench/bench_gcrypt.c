/*
 * bench_gcrypt.c - the floor: the same operations through libgcrypt alone,
 * and a bare socket round trip.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <gcrypt.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "bench.h"

/* ---- libgcrypt, the floor ---- */

gcry_sexp_t g_rsa, g_p256, g_ed;
gcry_mac_hd_t g_mac;
gcry_cipher_hd_t g_gcm;


double
grate(gop_fn op, void *arg)
{
	double v[16];
	for (int r = 0; r < reps; r++) {
		double start = now(), until = start + seconds;
		long count = 0;
		while (now() < until) {
			if (op(arg) != 0)
				die("libgcrypt operation failed");
			count++;
		}
		v[r] = count / (now() - start);
	}
	return median(v, reps);
}

struct grate_job {
	gop_fn op;
	void *arg;
	double until;
	long count;
};

static void *
grate_thread(void *p)
{
	struct grate_job *j = p;
	while (now() < j->until) {
		if (j->op(j->arg) != 0)
			die("libgcrypt operation failed");
		j->count++;
	}
	return NULL;
}

/* The floor with two threads: what this machine's two cores give
 * libgcrypt itself. */
double
grate2(gop_fn op, void *arg)
{
	double v[16];
	for (int r = 0; r < reps; r++) {
		struct grate_job j[2] = { { op, arg, now() + seconds, 0 }, { op, arg, 0, 0 } };
		j[1].until = j[0].until;
		pthread_t th[2];
		double start = now();
		for (int i = 0; i < 2; i++)
			if (pthread_create(&th[i], NULL, grate_thread, &j[i]) != 0)
				die("pthread_create");
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		v[r] = (j[0].count + j[1].count) / (now() - start);
	}
	return median(v, reps);
}

gcry_sexp_t
gkey(const char *spec)
{
	gcry_sexp_t parms, key, priv;
	if (gcry_sexp_build(&parms, NULL, spec) || gcry_pk_genkey(&key, parms))
		die("gcry_pk_genkey %s", spec);
	priv = gcry_sexp_find_token(key, "private-key", 0);
	gcry_sexp_release(parms);
	gcry_sexp_release(key);
	return priv;
}

/* As keymgrd does per signature: hash, build the data, sign. */
static int
g_sign(gcry_sexp_t key, gcry_sexp_t data)
{
	gcry_sexp_t sig;
	int r = gcry_pk_sign(&sig, data, key) ? -1 : 0;
	gcry_sexp_release(sig);
	gcry_sexp_release(data);
	return r;
}

int
g_op_rsa(void *a)
{
	(void)a;
	uint8_t h[32];
	gcry_sexp_t d;
	gcry_md_hash_buffer(GCRY_MD_SHA256, h, message, sizeof(message));
	gcry_sexp_build(&d, NULL, "(data(flags pkcs1)(hash sha256 %b))", 32, h);
	return g_sign(g_rsa, d);
}

int
g_op_p256(void *a)
{
	(void)a;
	gcry_sexp_t d;
	gcry_sexp_build(&d, NULL, "(data(flags raw)(value %b))", 32, digest32);
	return g_sign(g_p256, d);
}

int
g_op_ed(void *a)
{
	(void)a;
	gcry_sexp_t d;
	gcry_sexp_build(&d, NULL, "(data(flags eddsa)(hash-algo sha512)(value %b))", 32, digest32);
	return g_sign(g_ed, d);
}

int
g_op_verify(void *a)
{
	gcry_sexp_t d, pub = a, sig = NULL;
	gcry_sexp_build(&d, NULL, "(data(flags raw)(value %b))", 32, digest32);
	int r = gcry_pk_sign(&sig, d, g_p256) || gcry_pk_verify(sig, d, pub) ? -1 : 0;
	gcry_sexp_release(sig);
	gcry_sexp_release(d);
	return r;
}

int
g_op_hmac(void *a)
{
	(void)a;
	uint8_t out[32];
	size_t n = 32;
	gcry_mac_reset(g_mac);
	return gcry_mac_write(g_mac, message, 64) || gcry_mac_read(g_mac, out, &n) ? -1 : 0;
}

int
g_op_gcm(void *a)
{
	size_t len = *(CK_ULONG *)a;
	uint8_t iv[12] = { 1, 2, 3 }, tag[16];
	gcry_cipher_reset(g_gcm);
	return gcry_cipher_setiv(g_gcm, iv, 12) || gcry_cipher_encrypt(g_gcm, gcm_out, len, gcm_in, len) ||
	       gcry_cipher_gettag(g_gcm, tag, 16) ? -1 : 0;
}

int
g_op_keygen(void *a)
{
	gcry_sexp_t k = gkey(a);
	gcry_sexp_release(k);
	return 0;
}

/* A one-byte ping-pong over a UNIX socket between two processes: the
 * floor of any call that crosses to keymgrd, on this machine (us). */
double
socket_round_trip(void)
{
	double v[16];
	for (int r = 0; r < reps; r++) {
		int sv[2], n = 20000;
		char b = 0;
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
			die("socketpair");
		pid_t pid = fork();
		if (pid == 0) {
			for (int i = 0; i < n; i++)
				if (read(sv[1], &b, 1) != 1 || write(sv[1], &b, 1) != 1)
					break;
			_exit(0);
		}
		double t0 = now();
		for (int i = 0; i < n; i++)
			if (write(sv[0], &b, 1) != 1 || read(sv[0], &b, 1) != 1)
				die("ping-pong");
		v[r] = (now() - t0) / n * 1e6;
		close(sv[0]);
		close(sv[1]);
		waitpid(pid, NULL, 0);
	}
	return median(v, reps);
}

