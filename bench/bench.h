/*
 * bench.h - what the parts of the benchmark share (bench.c: the results
 * table, the two tokens, rates and the cryptographic rows; bench_gcrypt.c:
 * libgcrypt alone, the floor; bench_scale.c: objects at scale, bulk
 * import and rotation).
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <gcrypt.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "cy_pkcs11.h"

#define NA (-1.0)
/* A PKCS#11 call that must succeed; anything else ends the run. */
#define CK(call) do { CK_RV rv_ = (call); if (rv_ != CKR_OK) die("%s:%d: %s = 0x%lx", __FILE__, __LINE__, #call, (unsigned long)rv_); } while (0)

/* One libgcrypt operation (bench_gcrypt.c); 0 on success. */
typedef int (*gop_fn)(void *arg);

struct row {
	char name[96];
	const char *unit;
	bool higher_better; /* ops/s, MB/s; false for times */
	double coyeu, softhsm, gcrypt;
	char note[160];
};

struct tok {
	const char *name;
	void *lib;
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE rsa, p256, p256_pub, ed, hmac, aes;
};

extern int reps;
extern double seconds;
extern const char *bench_dir;
extern struct tok coyeu, softhsm;
extern CK_BBOOL yes, no;
extern const CK_BYTE p256_oid[10]; /* DER OID of P-256 */
extern CK_BYTE message[64], digest32[32];
extern CK_BYTE *gcm_in, *gcm_out;
extern gcry_sexp_t g_rsa, g_p256, g_ed;
extern gcry_mac_hd_t g_mac;
extern gcry_cipher_hd_t g_gcm;

void die(const char *fmt, ...);
double now(void);
double median(double *v, int n);
struct row *add_row(const char *unit, bool higher, double c, double s, double g, const char *fmt, ...);
CK_FUNCTION_LIST_PTR load(struct tok *t, const char *path);
double grate(gop_fn op, void *arg);
double grate2(gop_fn op, void *arg);
gcry_sexp_t gkey(const char *spec);
int g_op_rsa(void *a);
int g_op_p256(void *a);
int g_op_ed(void *a);
int g_op_verify(void *a);
int g_op_hmac(void *a);
int g_op_gcm(void *a);
int g_op_keygen(void *a);
double socket_round_trip(void);
void make_ca(void);
/* A certificate (DER, gnutls_free) signed by the bench CA for key (or a
 * throwaway one when NULL) with serial n, expiring in days days; its raw
 * subject into *subject when not NULL (gnutls_free). */
gnutls_datum_t make_cert(gnutls_pubkey_t key, long n, long days, const char *cn, gnutls_datum_t *subject);
/* C_CreateObject of that certificate on t's token, with CKA_ID id. */
CK_RV create_cert(struct tok *t, CK_SESSION_HANDLE h, const gnutls_datum_t *der, const gnutls_datum_t *subject,
		  const void *id, CK_ULONG idlen, CK_OBJECT_HANDLE *o);
int cold_child(const char *module, const char *id);
/* Objects at 500, 5,418 and 100,000 (at most max_objects): create, find,
 * cold start; SoftHSM2 beside coyeu when with_softhsm. */
void scale_rows(long max_objects, bool with_softhsm);
/* keymgr cert import of 5,418 certificates. */
void import_row(void);
void bulk_rows(void);
/* bench_holders.c: a keymgrd of its own with n holder tokens. */
void holder_rows(long n);
int holder_child(int argc, char **argv);

#endif
