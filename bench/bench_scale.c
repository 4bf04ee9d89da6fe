/*
 * bench_scale.c - objects at scale (create, find, cold start, RSS) and bulk
 * work (certificate import, rotation) through keymgr.
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

/* ---- object scale ---- */

static gnutls_x509_privkey_t ca_key;
static gnutls_x509_crt_t ca_crt;

void
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

gnutls_datum_t
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

CK_RV
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
int
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

/* GnuTLS's p11tool listing every object with a login (it opens a session
 * and logs in again for each object): seconds, median of up to 3 runs. */
static double
p11tool_list_all(const char *module)
{
	double v[3];
	char cmd[8192];
	int n = reps < 3 ? reps : 3;
	snprintf(cmd, sizeof(cmd),
		 "GNUTLS_PIN=1234 p11tool --provider '%s' --batch --login --list-all 'pkcs11:token=bench'"
		 " >/dev/null 2>&1", module);
	for (int r = 0; r < n; r++) {
		double t0 = now();
		if (system(cmd) != 0)
			die("p11tool --list-all with %s failed", module);
		v[r] = now() - t0;
	}
	return median(v, n);
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

void
scale_rows(long max_objects, bool with_softhsm)
{
	static const long sizes[] = { 500, 5418, 100000 };
	fprintf(stderr, "object scale:\n");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		long n = sizes[i] < max_objects ? sizes[i] : max_objects;
		if (i > 0 && n <= sizes[i - 1])
			break;
		/* SoftHSM2 needs minutes for 100,000 objects (its find is a scan
		 * of all of them): it runs the first two sizes only. */
		bool hsm = with_softhsm && n <= 5418;
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
		if (i == 0 && with_softhsm)
			add_row("s", false, p11tool_list_all(getenv("COYEU_MODULE")),
				p11tool_list_all(getenv("SOFTHSM_MODULE")), NA, "p11tool --login --list-all, %ld objects", n);
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

void
import_row(void)
{
	char cmd[8192];
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
}

void
bulk_rows(void)
{
	char cmd[8192];
	fprintf(stderr, "bulk:\n");
	import_row();
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

