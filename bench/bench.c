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
 * BENCH_ONLY (crypto, scale, bulk or holders: that part alone; hmac, gcm or ed25519: one
 * coyeu row, to profile; store: coyeu's rows that depend on its store,
 * which bench/store.sh runs against SQLite and PostgreSQL).
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

int reps = 5;
double seconds = 0.5;
const char *bench_dir;

void
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


double
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

double
median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- results ---- */


static struct row rows[64];
static int nrows;

struct row *
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


struct tok coyeu = { .name = "coyeu" }, softhsm = { .name = "softhsm" };
CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

CK_FUNCTION_LIST_PTR
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

const CK_BYTE p256_oid[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
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

CK_BYTE message[64], digest32[32];

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

CK_BYTE *gcm_in, *gcm_out;

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


int
main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--cold") == 0)
		return cold_child(argv[2], argv[3]);
	if (argc >= 2 && strcmp(argv[1], "--holder") == 0)
		return holder_child(argc, argv);
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
	if (only && strcmp(only, "store") == 0) {
		make_keys(&coyeu);
		gcry_randomize(digest32, sizeof(digest32), GCRY_STRONG_RANDOM);
		add_row("ops/s", true, rate(&coyeu, 1, op_p256, NULL), NA, NA, "sign ECDSA P-256 (32-byte digest), 1 thread");
		scale_rows(max_objects, false);
		import_row();
		print_results();
		coyeu.f->C_Finalize(NULL);
		softhsm.f->C_Finalize(NULL);
		return 0;
	}
	if (!only || (strcmp(only, "scale") != 0 && strcmp(only, "bulk") != 0 && strcmp(only, "holders") != 0))
		crypto_rows();
	if (!only || strcmp(only, "scale") == 0)
		scale_rows(max_objects, true);
	if (!only || strcmp(only, "bulk") == 0)
		bulk_rows();
	if (!only || strcmp(only, "holders") == 0)
		holder_rows(getenv("BENCH_HOLDERS") ? atol(getenv("BENCH_HOLDERS")) : 5418);
	print_results();
	coyeu.f->C_Finalize(NULL);
	softhsm.f->C_Finalize(NULL);
	return 0;
}
