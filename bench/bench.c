/*
 * bench.c - the same workloads, in one run, against coyeu (coyeu-pkcs11.so
 * with a keymgrd that bench/run.sh started), SoftHSM2 (its token in a
 * temporary directory) and, for the cryptographic rows, libgcrypt called
 * directly: the floor, since keymgrd signs with libgcrypt.
 *
 * Each figure is the median of REPS repetitions. The table gives the ratios
 * coyeu/SoftHSM2 and coyeu/libgcrypt, oriented so that above 1 means coyeu
 * is better; the same rows go to bench-results.csv and bench-results.json.
 * Timings are reported, never judged: this is not a test.
 *
 * Environment (set by bench/run.sh): COYEU_MODULE, SOFTHSM_MODULE, KEYMGR,
 * KEYMGRD_PID, GEN_CERTS, AGENCIES, BENCH_DIR; BENCH_MAX_OBJECTS (default
 * 100000), BENCH_REPS (default 5), BENCH_SECONDS (per repetition, 0.5),
 * BENCH_ONLY (crypto, scale or bulk: that part alone; hmac, gcm or ed25519: one
 * coyeu row, to profile).
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

#include "cy_pkcs11.h"

#define NA (-1.0)

static int reps = 5;
static double seconds = 0.5;
static const char *bench_dir;

static void
die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

#define CK(call) do { CK_RV rv_ = (call); if (rv_ != CKR_OK) die("%s:%d: %s = 0x%lx", __FILE__, __LINE__, #call, (unsigned long)rv_); } while (0)

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- results ---- */

struct row {
	char name[96];
	const char *unit;
	bool higher_better; /* ops/s, MB/s; false for times */
	double coyeu, softhsm, gcrypt;
	char note[160];
};

static struct row rows[64];
static int nrows;

static struct row *
add_row(const char *unit, bool higher, double c, double s, double g, const char *fmt, ...)
{
	struct row *r = &rows[nrows++];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->name, sizeof(r->name), fmt, ap);
	va_end(ap);
	r->unit = unit;
	r->higher_better = higher;
	r->coyeu = c;
	r->softhsm = s;
	r->gcrypt = g;
	fprintf(stderr, "  %-44s coyeu %10.2f  softhsm %10.2f  libgcrypt %10.2f  %s\n", r->name, c, s, g, unit);
	return r;
}

/* Above 1: coyeu is better. */
static double
ratio(const struct row *r, double other)
{
	if (r->coyeu <= 0 || other <= 0)
		return NA;
	return r->higher_better ? r->coyeu / other : other / r->coyeu;
}

static void
fmt_val(double v, char *out, size_t len)
{
	if (v < 0)
		snprintf(out, len, "-");
	else if (v >= 100)
		snprintf(out, len, "%.0f", v);
	else if (v >= 1)
		snprintf(out, len, "%.2f", v);
	else
		snprintf(out, len, "%.3f", v);
}

static void
print_results(void)
{
	char path[4096];
	printf("\n| workload | unit | coyeu | SoftHSM2 | libgcrypt | coyeu/SoftHSM2 | coyeu/libgcrypt |\n");
	printf("|---|---|---:|---:|---:|---:|---:|\n");
	for (int i = 0; i < nrows; i++) {
		struct row *r = &rows[i];
		char c[32], s[32], g[32], rs[32], rg[32];
		fmt_val(r->coyeu, c, sizeof(c));
		fmt_val(r->softhsm, s, sizeof(s));
		fmt_val(r->gcrypt, g, sizeof(g));
		double a = ratio(r, r->softhsm), b = ratio(r, r->gcrypt);
		snprintf(rs, sizeof(rs), a < 0 ? "-" : "%.2f", a);
		snprintf(rg, sizeof(rg), b < 0 ? "-" : "%.2f", b);
		printf("| %s | %s | %s | %s | %s | %s | %s |\n", r->name, r->unit, c, s, g, rs, rg);
	}
	printf("\nRatios are oriented so that above 1 means coyeu is better (faster, or more\n"
	       "operations per second); '-' where a side does not have the workload.\n");
	for (int i = 0; i < nrows; i++)
		if (rows[i].note[0])
			printf("* %s: %s\n", rows[i].name, rows[i].note);
	snprintf(path, sizeof(path), "%s/bench-results.csv", bench_dir);
	FILE *f = fopen(path, "w");
	if (f) {
		fprintf(f, "workload,unit,coyeu,softhsm2,libgcrypt,coyeu_vs_softhsm2,coyeu_vs_libgcrypt\n");
		for (int i = 0; i < nrows; i++)
			fprintf(f, "\"%s\",%s,%.4f,%.4f,%.4f,%.4f,%.4f\n", rows[i].name, rows[i].unit, rows[i].coyeu,
				rows[i].softhsm, rows[i].gcrypt, ratio(&rows[i], rows[i].softhsm),
				ratio(&rows[i], rows[i].gcrypt));
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/bench-results.json", bench_dir);
	if ((f = fopen(path, "w")) != NULL) {
		fprintf(f, "[\n");
		for (int i = 0; i < nrows; i++)
			fprintf(f, "  {\"workload\":\"%s\",\"unit\":\"%s\",\"coyeu\":%.4f,\"softhsm2\":%.4f,\"libgcrypt\":%.4f,"
				   "\"coyeu_vs_softhsm2\":%.4f,\"coyeu_vs_libgcrypt\":%.4f}%s\n",
				rows[i].name, rows[i].unit, rows[i].coyeu, rows[i].softhsm, rows[i].gcrypt,
				ratio(&rows[i], rows[i].softhsm), ratio(&rows[i], rows[i].gcrypt), i + 1 < nrows ? "," : "");
		fprintf(f, "]\n");
		fclose(f);
	}
}

/* ---- tokens ---- */

struct tok {
	const char *name;
	void *lib;
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE rsa, p256, p256_pub, ed, hmac, aes;
};

static struct tok coyeu = { .name = "coyeu" }, softhsm = { .name = "softhsm" };
static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

static CK_FUNCTION_LIST_PTR
load(struct tok *t, const char *path)
{
	CK_C_GetFunctionList get;
	if ((t->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL)
		die("dlopen %s: %s", path, dlerror());
	if ((get = (CK_C_GetFunctionList)dlsym(t->lib, "C_GetFunctionList")) == NULL)
		die("%s: no C_GetFunctionList", path);
	CK(get(&t->f));
	return t->f;
}

static void
prepare(struct tok *t)
{
	CK_SLOT_ID slots[8];
	CK_ULONG n = 8;
	CK_UTF8CHAR label[32];
	CK_SESSION_HANDLE so;
	/* Threads use the library: it must lock. */
	CK_C_INITIALIZE_ARGS init = { NULL, NULL, NULL, NULL, CKF_OS_LOCKING_OK, NULL };
	CK(t->f->C_Initialize(getenv("BENCH_NOLOCK") ? NULL : &init));
	CK(t->f->C_GetSlotList(CK_TRUE, slots, &n));
	memset(label, ' ', sizeof(label));
	memcpy(label, "bench", 5);
	CK(t->f->C_InitToken(slots[0], (CK_UTF8CHAR_PTR)"12345678", 8, label));
	n = 8;
	CK(t->f->C_GetSlotList(CK_TRUE, slots, &n));
	t->slot = (CK_SLOT_ID)-1;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		if (t->f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && (ti.flags & CKF_TOKEN_INITIALIZED) &&
		    memcmp(ti.label, "bench ", 6) == 0)
			t->slot = slots[i];
	}
	if (t->slot == (CK_SLOT_ID)-1)
		die("%s: the new token is not in the slot list", t->name);
	CK(t->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &so));
	CK(t->f->C_Login(so, CKU_SO, (CK_UTF8CHAR_PTR)"12345678", 8));
	CK(t->f->C_InitPIN(so, (CK_UTF8CHAR_PTR)"1234", 4));
	CK(t->f->C_Logout(so));
	CK(t->f->C_CloseSession(so));
	CK(t->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &t->h));
	CK(t->f->C_Login(t->h, CKU_USER, (CK_UTF8CHAR_PTR)"1234", 4));
}

static const CK_BYTE p256_oid[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const CK_BYTE ed25519_oid[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };

static CK_RV
gen_pair(struct tok *t, CK_MECHANISM_TYPE mech, bool token, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	CK_MECHANISM m = { mech, NULL, 0 };
	CK_ULONG bits = 2048;
	CK_ATTRIBUTE pt[] = { { CKA_TOKEN, token ? &yes : &no, 1 }, { CKA_VERIFY, &yes, 1 },
			      { CKA_MODULUS_BITS, &bits, sizeof(bits) } };
	CK_ATTRIBUTE et[] = { { CKA_TOKEN, token ? &yes : &no, 1 }, { CKA_VERIFY, &yes, 1 },
			      { CKA_EC_PARAMS, (void *)(mech == CKM_EC_KEY_PAIR_GEN ? p256_oid : ed25519_oid),
				mech == CKM_EC_KEY_PAIR_GEN ? sizeof(p256_oid) : sizeof(ed25519_oid) } };
	CK_ATTRIBUTE vt[] = { { CKA_TOKEN, token ? &yes : &no, 1 }, { CKA_SIGN, &yes, 1 }, { CKA_PRIVATE, &yes, 1 },
			      { CKA_SENSITIVE, &yes, 1 } };
	return t->f->C_GenerateKeyPair(t->h, &m, mech == CKM_RSA_PKCS_KEY_PAIR_GEN ? pt : et, 3, vt, 4, pub, priv);
}

static CK_OBJECT_HANDLE
secret(struct tok *t, CK_KEY_TYPE kt, CK_ULONG len)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_BYTE v[32];
	CK_OBJECT_HANDLE k;
	gcry_randomize(v, len, GCRY_STRONG_RANDOM);
	CK_ATTRIBUTE a[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &kt, sizeof(kt) }, { CKA_VALUE, v, len },
			     { CKA_TOKEN, &yes, 1 }, { CKA_SIGN, &yes, 1 }, { CKA_VERIFY, &yes, 1 },
			     { CKA_ENCRYPT, &yes, 1 }, { CKA_DECRYPT, &yes, 1 } };
	CK(t->f->C_CreateObject(t->h, a, 8, &k));
	return k;
}

static void
make_keys(struct tok *t)
{
	CK_OBJECT_HANDLE pub;
	CK(gen_pair(t, CKM_RSA_PKCS_KEY_PAIR_GEN, true, &pub, &t->rsa));
	CK(gen_pair(t, CKM_EC_KEY_PAIR_GEN, true, &t->p256_pub, &t->p256));
	CK(gen_pair(t, CKM_EC_EDWARDS_KEY_PAIR_GEN, true, &pub, &t->ed));
	t->hmac = secret(t, CKK_GENERIC_SECRET, 32);
	t->aes = secret(t, CKK_AES, 32);
}

/* ---- rates ---- */

/* One operation on session h of t; returns CKR_OK. */
typedef CK_RV (*op_fn)(struct tok *t, CK_SESSION_HANDLE h, void *arg);

struct rate_job {
	struct tok *t;
	CK_SESSION_HANDLE h;
	op_fn op;
	void *arg;
	double until;
	long count;
};

static void *
rate_thread(void *p)
{
	struct rate_job *j = p;
	while (now() < j->until) {
		CK_RV rv = j->op(j->t, j->h, j->arg);
		if (rv != CKR_OK)
			die("%s: operation failed: 0x%lx", j->t->name, (unsigned long)rv);
		j->count++;
	}
	return NULL;
}

/* Median operations per second with nthreads threads, each its own session. */
static double
rate(struct tok *t, int nthreads, op_fn op, void *arg)
{
	double v[16];
	struct rate_job jobs[4];
	pthread_t th[4];
	for (int i = 0; i < nthreads; i++) {
		jobs[i] = (struct rate_job){ t, 0, op, arg, 0, 0 };
		CK(t->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &jobs[i].h));
	}
	for (int r = 0; r < reps; r++) {
		double start = now();
		for (int i = 0; i < nthreads; i++) {
			jobs[i].count = 0;
			jobs[i].until = start + seconds;
			if (pthread_create(&th[i], NULL, rate_thread, &jobs[i]) != 0)
				die("pthread_create");
		}
		long total = 0;
		for (int i = 0; i < nthreads; i++) {
			pthread_join(th[i], NULL);
			total += jobs[i].count;
		}
		v[r] = total / (now() - start);
	}
	for (int i = 0; i < nthreads; i++)
		t->f->C_CloseSession(jobs[i].h);
	return median(v, reps);
}

static CK_BYTE message[64], digest32[32];

static CK_RV
op_sign(struct tok *t, CK_SESSION_HANDLE h, CK_MECHANISM_TYPE mech, CK_OBJECT_HANDLE key, const CK_BYTE *in,
	CK_ULONG inlen)
{
	CK_MECHANISM m = { mech, NULL, 0 };
	CK_BYTE sig[512];
	CK_ULONG n = sizeof(sig);
	CK_RV rv = t->f->C_SignInit(h, &m, key);
	return rv != CKR_OK ? rv : t->f->C_Sign(h, (CK_BYTE_PTR)in, inlen, sig, &n);
}

static CK_RV op_rsa(struct tok *t, CK_SESSION_HANDLE h, void *a) { (void)a; return op_sign(t, h, CKM_SHA256_RSA_PKCS, t->rsa, message, sizeof(message)); }
static CK_RV op_p256(struct tok *t, CK_SESSION_HANDLE h, void *a) { (void)a; return op_sign(t, h, CKM_ECDSA, t->p256, digest32, 32); }
static CK_RV op_ed(struct tok *t, CK_SESSION_HANDLE h, void *a) { (void)a; return op_sign(t, h, CKM_EDDSA, t->ed, digest32, 32); }
static CK_RV op_hmac(struct tok *t, CK_SESSION_HANDLE h, void *a) { (void)a; return op_sign(t, h, CKM_SHA256_HMAC, t->hmac, message, 64); }

static CK_BYTE p256_sig[2][64];

static CK_RV
op_verify_p256(struct tok *t, CK_SESSION_HANDLE h, void *a)
{
	(void)a;
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	CK_RV rv = t->f->C_VerifyInit(h, &m, t->p256_pub);
	return rv != CKR_OK ? rv : t->f->C_Verify(h, digest32, 32, p256_sig[t == &softhsm], 64);
}

static CK_BYTE *gcm_in, *gcm_out;

static CK_RV
op_gcm(struct tok *t, CK_SESSION_HANDLE h, void *a)
{
	CK_ULONG len = *(CK_ULONG *)a, n = len + 16;
	CK_BYTE iv[12] = { 1, 2, 3 };
	CK_GCM_PARAMS p = { iv, 12, 96, NULL, 0, 128 };
	CK_MECHANISM m = { CKM_AES_GCM, &p, sizeof(p) };
	CK_RV rv = t->f->C_EncryptInit(h, &m, t->aes);
	return rv != CKR_OK ? rv : t->f->C_Encrypt(h, gcm_in, len, gcm_out, &n);
}

static CK_RV
op_keygen(struct tok *t, CK_SESSION_HANDLE h, void *a)
{
	CK_MECHANISM_TYPE mech = *(CK_MECHANISM_TYPE *)a;
	CK_OBJECT_HANDLE pub, priv;
	CK_SESSION_HANDLE keep = t->h;
	t->h = h;
	CK_RV rv = gen_pair(t, mech, false, &pub, &priv);
	t->h = keep;
	if (rv == CKR_OK) {
		t->f->C_DestroyObject(h, pub);
		t->f->C_DestroyObject(h, priv);
	}
	return rv;
}

/* ---- libgcrypt, the floor ---- */

static gcry_sexp_t g_rsa, g_p256, g_ed;
static gcry_mac_hd_t g_mac;
static gcry_cipher_hd_t g_gcm;

typedef int (*gop_fn)(void *arg);

static double
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
static double
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

static gcry_sexp_t
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

static int
g_op_rsa(void *a)
{
	(void)a;
	uint8_t h[32];
	gcry_sexp_t d;
	gcry_md_hash_buffer(GCRY_MD_SHA256, h, message, sizeof(message));
	gcry_sexp_build(&d, NULL, "(data(flags pkcs1)(hash sha256 %b))", 32, h);
	return g_sign(g_rsa, d);
}

static int
g_op_p256(void *a)
{
	(void)a;
	gcry_sexp_t d;
	gcry_sexp_build(&d, NULL, "(data(flags raw)(value %b))", 32, digest32);
	return g_sign(g_p256, d);
}

static int
g_op_ed(void *a)
{
	(void)a;
	gcry_sexp_t d;
	gcry_sexp_build(&d, NULL, "(data(flags eddsa)(hash-algo sha512)(value %b))", 32, digest32);
	return g_sign(g_ed, d);
}

static int
g_op_verify(void *a)
{
	gcry_sexp_t d, pub = a, sig = NULL;
	gcry_sexp_build(&d, NULL, "(data(flags raw)(value %b))", 32, digest32);
	int r = gcry_pk_sign(&sig, d, g_p256) || gcry_pk_verify(sig, d, pub) ? -1 : 0;
	gcry_sexp_release(sig);
	gcry_sexp_release(d);
	return r;
}

static int
g_op_hmac(void *a)
{
	(void)a;
	uint8_t out[32];
	size_t n = 32;
	gcry_mac_reset(g_mac);
	return gcry_mac_write(g_mac, message, 64) || gcry_mac_read(g_mac, out, &n) ? -1 : 0;
}

static int
g_op_gcm(void *a)
{
	size_t len = *(CK_ULONG *)a;
	uint8_t iv[12] = { 1, 2, 3 }, tag[16];
	gcry_cipher_reset(g_gcm);
	return gcry_cipher_setiv(g_gcm, iv, 12) || gcry_cipher_encrypt(g_gcm, gcm_out, len, gcm_in, len) ||
	       gcry_cipher_gettag(g_gcm, tag, 16) ? -1 : 0;
}

static int
g_op_keygen(void *a)
{
	gcry_sexp_t k = gkey(a);
	gcry_sexp_release(k);
	return 0;
}

/* A one-byte ping-pong over a UNIX socket between two processes: the
 * floor of any call that crosses to keymgrd, on this machine (us). */
static double
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

/* ---- the crypto rows ---- */

static void
crypto_rows(void)
{
	make_keys(&coyeu);
	make_keys(&softhsm);
	gcry_randomize(message, sizeof(message), GCRY_STRONG_RANDOM);
	gcry_randomize(digest32, sizeof(digest32), GCRY_STRONG_RANDOM);
	g_rsa = gkey("(genkey(rsa(nbits 4:2048)))");
	g_p256 = gkey("(genkey(ecc(curve \"NIST P-256\")))");
	g_ed = gkey("(genkey(ecc(curve Ed25519)(flags eddsa)))");
	uint8_t mk[32];
	gcry_randomize(mk, 32, GCRY_STRONG_RANDOM);
	if (gcry_mac_open(&g_mac, GCRY_MAC_HMAC_SHA256, 0, NULL) || gcry_mac_setkey(g_mac, mk, 32) ||
	    gcry_cipher_open(&g_gcm, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM, 0) || gcry_cipher_setkey(g_gcm, mk, 32))
		die("libgcrypt mac/cipher");
	fprintf(stderr, "crypto (%d x %.1f s each, median):\n", reps, seconds);
	const char *only = getenv("BENCH_ONLY");
	if (only != NULL && (!strcmp(only, "hmac") || !strcmp(only, "gcm") || !strcmp(only, "ed25519"))) {
		/* One coyeu row for a profiler to look at. */
		static CK_ULONG mib = 1 << 20;
		if (!strcmp(only, "hmac"))
			add_row("ops/s", true, rate(&coyeu, 1, op_hmac, NULL), NA, NA, "HMAC-SHA256, 64 bytes");
		else if (!strcmp(only, "ed25519"))
			add_row("ops/s", true, rate(&coyeu, 1, op_ed, NULL), NA, grate(g_op_ed, NULL), "sign Ed25519");
		else {
			gcm_in = calloc(1, mib);
			gcm_out = calloc(1, mib + 16);
			add_row("MB/s", true, rate(&coyeu, 1, op_gcm, &mib) * mib / 1e6, NA,
				grate(g_op_gcm, &mib) * mib / 1e6, "AES-256-GCM encrypt, 1 MiB");
			free(gcm_in);
			free(gcm_out);
		}
		return;
	}

	struct { const char *name; op_fn op; gop_fn gop; } sigs[] = {
		{ "sign RSA-2048 PKCS#1 SHA-256", op_rsa, g_op_rsa },
		{ "sign ECDSA P-256 (32-byte digest)", op_p256, g_op_p256 },
		{ "sign Ed25519", op_ed, g_op_ed },
	};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		double c1 = rate(&coyeu, 1, sigs[i].op, NULL), s1 = rate(&softhsm, 1, sigs[i].op, NULL);
		double g1 = grate(sigs[i].gop, NULL);
		add_row("ops/s", true, c1, s1, g1, "%s, 1 thread", sigs[i].name);
		double c2 = rate(&coyeu, 2, sigs[i].op, NULL), s2 = rate(&softhsm, 2, sigs[i].op, NULL);
		double g2 = grate2(sigs[i].gop, NULL);
		struct row *r = add_row("ops/s", true, c2, s2, g2, "%s, 2 threads", sigs[i].name);
		snprintf(r->note, sizeof(r->note), "2 threads / 1 thread: coyeu %.2fx, SoftHSM2 %.2fx, libgcrypt %.2fx",
			 c2 / c1, s2 / s1, g2 / g1);
	}
	/* A signature of each to verify. */
	struct tok *ts[2] = { &coyeu, &softhsm };
	for (int i = 0; i < 2; i++) {
		CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
		CK_ULONG n = 64;
		CK(ts[i]->f->C_SignInit(ts[i]->h, &m, ts[i]->p256));
		CK(ts[i]->f->C_Sign(ts[i]->h, digest32, 32, p256_sig[i], &n));
	}
	gcry_sexp_t q = gcry_sexp_find_token(g_p256, "q", 0), gpub;
	size_t ql;
	const char *qv = gcry_sexp_nth_data(q, 1, &ql);
	gcry_sexp_build(&gpub, NULL, "(public-key(ecc(curve \"NIST P-256\")(q %b)))", (int)ql, qv);
	gcry_sexp_release(q);
	struct row *vr = add_row("ops/s", true, rate(&coyeu, 1, op_verify_p256, NULL), rate(&softhsm, 1, op_verify_p256, NULL),
				 NA, "verify ECDSA P-256");
	double gsv = grate(g_op_verify, gpub), gs = grate(g_op_p256, NULL);
	/* g_op_verify signs and verifies; take the signing time out. */
	vr->gcrypt = 1.0 / (1.0 / gsv - 1.0 / gs);
	gcry_sexp_release(gpub);

	add_row("ops/s", true, rate(&coyeu, 1, op_hmac, NULL), rate(&softhsm, 1, op_hmac, NULL), grate(g_op_hmac, NULL),
		"HMAC-SHA256, 64 bytes");
	struct row *hr = &rows[nrows - 1];
	double rt = socket_round_trip();
	snprintf(hr->note, sizeof(hr->note),
		 "coyeu %.1f us per HMAC (C_SignInit + C_Sign: two calls); a bare UNIX socket round trip"
		 " between two processes takes %.1f us on this machine", 1e6 / hr->coyeu, rt);
	gcm_in = calloc(1, 1 << 20);
	gcm_out = calloc(1, (1 << 20) + 16);
	CK_ULONG sizes[2] = { 1024, 1 << 20 };
	for (int i = 0; i < 2; i++) {
		double c = rate(&coyeu, 1, op_gcm, &sizes[i]), s = rate(&softhsm, 1, op_gcm, &sizes[i]);
		double g = grate(g_op_gcm, &sizes[i]);
		double mb = sizes[i] / 1e6;
		add_row("MB/s", true, c * mb, s * mb, g * mb, "AES-256-GCM encrypt, %s", i ? "1 MiB" : "1 KiB");
	}
	CK_MECHANISM_TYPE gens[2] = { CKM_EC_KEY_PAIR_GEN, CKM_RSA_PKCS_KEY_PAIR_GEN };
	const char *gspec[2] = { "(genkey(ecc(curve \"NIST P-256\")))", "(genkey(rsa(nbits 4:2048)))" };
	double keep = seconds;
	for (int i = 0; i < 2; i++) {
		if (i == 1)
			seconds = keep * 4; /* RSA generation varies a lot: longer runs */
		add_row("ops/s", true, rate(&coyeu, 1, op_keygen, &gens[i]), rate(&softhsm, 1, op_keygen, &gens[i]),
			grate(g_op_keygen, (void *)gspec[i]), "generate %s key pair", i ? "RSA-2048" : "P-256");
	}
	seconds = keep;
	free(gcm_in);
	free(gcm_out);
}

/* ---- object scale ---- */

static gnutls_x509_privkey_t ca_key;
static gnutls_x509_crt_t ca_crt;

static void
make_ca(void)
{
	if (gnutls_x509_privkey_init(&ca_key) < 0 ||
	    gnutls_x509_privkey_generate(ca_key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0 ||
	    gnutls_x509_crt_init(&ca_crt) < 0 ||
	    gnutls_x509_crt_set_dn(ca_crt, "CN=Bench CA,O=coyeu,C=VN", NULL) < 0 ||
	    gnutls_x509_crt_set_key(ca_crt, ca_key) < 0 || gnutls_x509_crt_set_serial(ca_crt, "\x01", 1) < 0 ||
	    gnutls_x509_crt_set_version(ca_crt, 3) < 0 || gnutls_x509_crt_set_activation_time(ca_crt, time(NULL) - 60) < 0 ||
	    gnutls_x509_crt_set_expiration_time(ca_crt, time(NULL) + 3650L * 86400) < 0 ||
	    gnutls_x509_crt_set_basic_constraints(ca_crt, 1, -1) < 0 ||
	    gnutls_x509_crt_sign2(ca_crt, ca_crt, ca_key, GNUTLS_DIG_SHA256, 0) < 0)
		die("bench CA");
}

/* A certificate (DER, gnutls_free) for key (or a fresh throwaway one when
 * NULL) with serial n, expiring in days days. */
static gnutls_datum_t
make_cert(gnutls_pubkey_t key, long n, long days, const char *cn, gnutls_datum_t *subject)
{
	static gnutls_x509_privkey_t any;
	gnutls_x509_crt_t crt;
	gnutls_datum_t der = { NULL, 0 };
	uint8_t serial[8];
	char dn[256];
	if (any == NULL && (gnutls_x509_privkey_init(&any) < 0 ||
			    gnutls_x509_privkey_generate(any, GNUTLS_PK_ECDSA,
							 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0))
		die("throwaway key");
	for (int i = 0; i < 8; i++)
		serial[i] = (uint8_t)(n >> (8 * (7 - i)));
	serial[0] = 0x22;
	snprintf(dn, sizeof(dn), "CN=%s,O=Sở Nội vụ tỉnh Điện Biên,C=VN", cn);
	if (gnutls_x509_crt_init(&crt) < 0 || gnutls_x509_crt_set_dn(crt, dn, NULL) < 0 ||
	    (key ? gnutls_x509_crt_set_pubkey(crt, key) : gnutls_x509_crt_set_key(crt, any)) < 0 ||
	    gnutls_x509_crt_set_serial(crt, serial, 8) < 0 || gnutls_x509_crt_set_version(crt, 3) < 0 ||
	    gnutls_x509_crt_set_activation_time(crt, time(NULL) - 60) < 0 ||
	    gnutls_x509_crt_set_expiration_time(crt, time(NULL) + days * 86400) < 0 ||
	    gnutls_x509_crt_sign2(crt, ca_crt, ca_key, GNUTLS_DIG_SHA256, 0) < 0 ||
	    gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der) < 0 ||
	    (subject && gnutls_x509_crt_get_raw_dn(crt, subject) < 0))
		die("make_cert");
	if (subject) {
		gnutls_datum_t copy = { gnutls_malloc(subject->size), subject->size };
		memcpy(copy.data, subject->data, subject->size);
		*subject = copy;
	}
	gnutls_x509_crt_deinit(crt);
	return der;
}

static CK_RV
create_cert(struct tok *t, CK_SESSION_HANDLE h, const gnutls_datum_t *der, const gnutls_datum_t *subject,
	    const void *id, CK_ULONG idlen, CK_OBJECT_HANDLE *o)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ct = CKC_X_509;
	CK_ATTRIBUTE a[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_CERTIFICATE_TYPE, &ct, sizeof(ct) },
			     { CKA_TOKEN, &yes, 1 }, { CKA_VALUE, der->data, der->size },
			     { CKA_SUBJECT, subject->data, subject->size }, { CKA_ID, (void *)id, idlen } };
	return t->f->C_CreateObject(h, a, 6, o);
}

static long populated[2];

/* Brings t to n certificate objects: SoftHSM2 one C_CreateObject at a
 * time, coyeu through keymgr cert import (gen_certs files). */
static void
populate(struct tok *t, long n)
{
	long *have = &populated[t == &softhsm];
	if (*have >= n)
		return;
	double t0 = now();
	if (t == &coyeu) {
		char cmd[8192];
		long left = n - *have;
		/* Import in parts of at most 20,000 (a request carries 16 MiB). */
		while (left > 0) {
			long part = left > 20000 ? 20000 : left;
			snprintf(cmd, sizeof(cmd),
				 "rm -rf '%s/gen' && mkdir '%s/gen' && '%s' '%s/gen' %ld '%s' %ld >/dev/null && "
				 "'%s' cert import --token bench --pin 1234 '%s'/gen/agency-*.pem >/dev/null",
				 bench_dir, bench_dir, getenv("GEN_CERTS"), bench_dir, part, getenv("AGENCIES"),
				 (*have / 20000) % 200 + 1, getenv("KEYMGR"), bench_dir);
			if (system(cmd) != 0)
				die("populating coyeu: %s", cmd);
			*have += part;
			left -= part;
		}
	} else {
		gnutls_datum_t subject = { NULL, 0 };
		for (long i = *have; i < n; i++) {
			char cn[32], id[32];
			snprintf(cn, sizeof(cn), "Filler %ld", i);
			snprintf(id, sizeof(id), "fill-%ld", i);
			gnutls_datum_t der = make_cert(NULL, 1000000 + i, 365, cn, &subject);
			CK_OBJECT_HANDLE o;
			CK(create_cert(t, t->h, &der, &subject, id, strlen(id), &o));
			gnutls_free(der.data);
			gnutls_free(subject.data);
		}
		*have = n;
	}
	fprintf(stderr, "  %s: %ld certificate objects (%.1f s to add)\n", t->name, n, now() - t0);
}

static int probe_seq;

/* Median time of C_CreateObject of a certificate (ms); the probes stay. */
static double
create_time(struct tok *t, int count, char last_id[32])
{
	double v[256];
	gnutls_datum_t subject = { NULL, 0 };
	for (int i = 0; i < count; i++) {
		char cn[32];
		snprintf(cn, sizeof(cn), "Probe %d", probe_seq);
		snprintf(last_id, 32, "probe-%d", probe_seq);
		gnutls_datum_t der = make_cert(NULL, 5000000 + probe_seq, 365, cn, &subject);
		probe_seq++;
		CK_OBJECT_HANDLE o;
		double t0 = now();
		CK(create_cert(t, t->h, &der, &subject, last_id, strlen(last_id), &o));
		v[i] = (now() - t0) * 1e3;
		gnutls_free(der.data);
		gnutls_free(subject.data);
	}
	return median(v, count);
}

static CK_RV
find_id(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE h, const char *id, CK_ULONG *found)
{
	CK_ATTRIBUTE q[] = { { CKA_ID, (void *)id, strlen(id) } };
	CK_OBJECT_HANDLE o[4];
	CK_RV rv = f->C_FindObjectsInit(h, q, 1);
	if (rv == CKR_OK)
		rv = f->C_FindObjects(h, o, 4, found);
	if (rv == CKR_OK)
		rv = f->C_FindObjectsFinal(h);
	return rv;
}

/* Median time (us) of finding one object by CKA_ID. */
static double
find_time(struct tok *t, const char *id)
{
	double v[64];
	int n = 25;
	for (int i = 0; i < n; i++) {
		CK_ULONG found = 0;
		double t0 = now();
		CK(find_id(t->f, t->h, id, &found));
		v[i] = (now() - t0) * 1e6;
		if (found != 1)
			die("%s: find by CKA_ID found %lu objects", t->name, found);
	}
	return median(v, n);
}

/* Cold start, measured inside a new process (bench --cold MODULE ID): load
 * the module, C_Initialize, open a session, log in, find one object. */
static int
cold_child(const char *module, const char *id)
{
	double t0 = now(), ms = -1;
	void *lib = dlopen(module, RTLD_NOW | RTLD_LOCAL);
	CK_C_GetFunctionList get = lib ? (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList") : NULL;
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID slots[8];
	CK_ULONG ns = 8, found = 0;
	CK_SESSION_HANDLE h;
	if (get && get(&f) == CKR_OK && f->C_Initialize(NULL) == CKR_OK &&
	    f->C_GetSlotList(CK_TRUE, slots, &ns) == CKR_OK) {
		for (CK_ULONG i = 0; i < ns && ms < 0; i++) {
			CK_TOKEN_INFO ti;
			if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && memcmp(ti.label, "bench ", 6) == 0 &&
			    f->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL, NULL, &h) == CKR_OK &&
			    f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)"1234", 4) == CKR_OK &&
			    find_id(f, h, id, &found) == CKR_OK && found == 1)
				ms = (now() - t0) * 1e3;
		}
		f->C_Finalize(NULL);
	}
	printf("%.3f\n", ms);
	return ms < 0;
}

/* Median of reps cold starts, each in a fresh process (ms). */
static double
cold_start(const char *module, const char *id)
{
	double v[16];
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "/proc/%d/exe --cold '%s' '%s'", (int)getpid(), module, id);
	for (int r = 0; r < reps; r++) {
		FILE *p = popen(cmd, "r");
		double ms = -1;
		if (p == NULL || fscanf(p, "%lf", &ms) != 1 || pclose(p) != 0 || ms < 0)
			die("cold start of %s failed", module);
		v[r] = ms;
	}
	return median(v, reps);
}

static double
rss_mib(const char *pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%s/status", pid);
	FILE *f = fopen(path, "r");
	double kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = strtod(line + 6, NULL);
	if (f)
		fclose(f);
	return kb < 0 ? NA : kb / 1024;
}

static void
scale_rows(long max_objects)
{
	static const long sizes[] = { 500, 5418, 100000 };
	fprintf(stderr, "object scale:\n");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		long n = sizes[i] < max_objects ? sizes[i] : max_objects;
		if (i > 0 && n <= sizes[i - 1])
			break;
		/* SoftHSM2 needs minutes for 100,000 objects (its find is a scan
		 * of all of them): it runs the first two sizes only. */
		bool hsm = n <= 5418;
		char cid[32], sid[32];
		populate(&coyeu, n);
		if (hsm)
			populate(&softhsm, n);
		double cc = create_time(&coyeu, 50, cid), sc = hsm ? create_time(&softhsm, 20, sid) : NA;
		populated[0] += 50;
		if (hsm)
			populated[1] += 20;
		add_row("ms", false, cc, sc, NA, "create a certificate object, %ld objects", n);
		add_row("us", false, find_time(&coyeu, cid), hsm ? find_time(&softhsm, sid) : NA, NA,
			"find one by CKA_ID, %ld objects", n);
		add_row("ms", false, cold_start(getenv("COYEU_MODULE"), cid),
			hsm ? cold_start(getenv("SOFTHSM_MODULE"), sid) : NA, NA,
			"cold start (load, init, session, login, find), %ld objects", n);
		add_row("MiB", false, rss_mib(getenv("KEYMGRD_PID")), NA, NA, "keymgrd resident memory, %ld objects", n);
	}
}

/* ---- bulk: import and rotation ---- */

static double
run_timed(const char *cmd)
{
	double t0 = now();
	if (system(cmd) != 0)
		die("failed: %s", cmd);
	return now() - t0;
}

/* count P-256 keys labelled prefix-N with certificates expiring in days. */
static void
due_keys(const char *prefix, int count, long days)
{
	for (int i = 0; i < count; i++) {
		CK_OBJECT_HANDLE pub, priv;
		char label[64];
		CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
		snprintf(label, sizeof(label), "%s-%d", prefix, i);
		CK_ATTRIBUTE pt[] = { { CKA_TOKEN, &yes, 1 }, { CKA_VERIFY, &yes, 1 },
				      { CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid) },
				      { CKA_LABEL, label, strlen(label) }, { CKA_ID, label, strlen(label) } };
		CK_ATTRIBUTE vt[] = { { CKA_TOKEN, &yes, 1 }, { CKA_SIGN, &yes, 1 }, { CKA_PRIVATE, &yes, 1 },
				      { CKA_LABEL, label, strlen(label) }, { CKA_ID, label, strlen(label) } };
		CK(coyeu.f->C_GenerateKeyPair(coyeu.h, &m, pt, 5, vt, 5, &pub, &priv));
		CK_BYTE point[80];
		CK_ATTRIBUTE q[] = { { CKA_EC_POINT, point, sizeof(point) } };
		CK(coyeu.f->C_GetAttributeValue(coyeu.h, pub, q, 1));
		/* The point is a DER OCTET STRING of 65 bytes: 04 41 04 x y. */
		gnutls_datum_t x = { point + 3, 32 }, y = { point + 35, 32 }, subject = { NULL, 0 };
		gnutls_pubkey_t pk;
		if (gnutls_pubkey_init(&pk) < 0 || gnutls_pubkey_import_ecc_raw(pk, GNUTLS_ECC_CURVE_SECP256R1, &x, &y) < 0)
			die("pubkey");
		gnutls_datum_t der = make_cert(pk, 9000000 + i + (prefix[0] << 16), days, label, &subject);
		CK_OBJECT_HANDLE o;
		CK(create_cert(&coyeu, coyeu.h, &der, &subject, label, strlen(label), &o));
		gnutls_free(der.data);
		gnutls_free(subject.data);
		gnutls_pubkey_deinit(pk);
	}
}

static void
bulk_rows(void)
{
	char cmd[8192];
	fprintf(stderr, "bulk:\n");
	/* A token of its own, so the objects above do not count. */
	snprintf(cmd, sizeof(cmd),
		 "'%s' token init --label import --so-pin 87654321 --pin 1234 >/dev/null && rm -rf '%s/imp' && "
		 "mkdir '%s/imp' && '%s' '%s/imp' 5418 '%s' 250 >/dev/null",
		 getenv("KEYMGR"), bench_dir, bench_dir, getenv("GEN_CERTS"), bench_dir, getenv("AGENCIES"));
	if (system(cmd) != 0)
		die("%s", cmd);
	snprintf(cmd, sizeof(cmd), "'%s' cert import --token import --pin 1234 '%s'/imp/agency-*.pem >/dev/null",
		 getenv("KEYMGR"), bench_dir);
	add_row("s", false, run_timed(cmd), NA, NA, "keymgr cert import, 5,418 certificates");

	double t0 = now();
	due_keys("one", 200, 3);
	due_keys("two", 1000, 10);
	fprintf(stderr, "  1,200 P-256 keys with certificates made in %.1f s\n", now() - t0);
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p '%s/csr1' '%s/csr2' && '%s' key rotate --token bench --pin 1234 --due --within 4d --jobs 1 "
		 "--out '%s/csr1' >/dev/null",
		 bench_dir, bench_dir, getenv("KEYMGR"), bench_dir);
	double one = run_timed(cmd);
	snprintf(cmd, sizeof(cmd),
		 "'%s' key rotate --token bench --pin 1234 --due --within 30d --jobs 2 --out '%s/csr2' >/dev/null",
		 getenv("KEYMGR"), bench_dir);
	double two = run_timed(cmd);
	struct row *r = add_row("s", false, two, NA, NA, "keymgr key rotate --due, 1,000 P-256 keys, 2 jobs");
	snprintf(r->note, sizeof(r->note), "%.0f rotations/s with 2 jobs; 1 job: %.0f rotations/s (200 keys)",
		 1000 / two, 200 / one);
}

int
main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--cold") == 0)
		return cold_child(argv[2], argv[3]);
	const char *need[] = { "COYEU_MODULE", "SOFTHSM_MODULE", "KEYMGR", "KEYMGRD_PID", "GEN_CERTS", "AGENCIES",
			       "BENCH_DIR" };
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (getenv(need[i]) == NULL)
			die("%s is not set (run bench/run.sh, or make bench)", need[i]);
	bench_dir = getenv("BENCH_DIR");
	if (getenv("BENCH_REPS"))
		reps = atoi(getenv("BENCH_REPS"));
	if (reps < 1 || reps > 15)
		reps = 5;
	if (getenv("BENCH_SECONDS"))
		seconds = atof(getenv("BENCH_SECONDS"));
	if (seconds <= 0 || seconds > 10)
		seconds = 0.5;
	long max_objects = getenv("BENCH_MAX_OBJECTS") ? atol(getenv("BENCH_MAX_OBJECTS")) : 100000;
	if (!gcry_check_version(GCRYPT_VERSION))
		die("libgcrypt");
	gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
	load(&coyeu, getenv("COYEU_MODULE"));
	load(&softhsm, getenv("SOFTHSM_MODULE"));
	prepare(&coyeu);
	prepare(&softhsm);
	make_ca();
	/* BENCH_ONLY: one part, or one crypto row (for profiling). */
	const char *only = getenv("BENCH_ONLY");
	if (!only || (strcmp(only, "scale") != 0 && strcmp(only, "bulk") != 0))
		crypto_rows();
	if (!only || strcmp(only, "scale") == 0)
		scale_rows(max_objects);
	if (!only || strcmp(only, "bulk") == 0)
		bulk_rows();
	print_results();
	coyeu.f->C_Finalize(NULL);
	softhsm.f->C_Finalize(NULL);
	return 0;
}
