/*
 * family.h - inside keymgrd/crypto/: an operation in progress, and what
 * each mechanism family does with one.
 *
 * The mechanism table (common/mech.c) gives every mechanism a family; the
 * driver (crypto.c) looks the family's operations up in one table and
 * calls them, so no code outside the family's own file chooses by family.
 * A new family is a file defining a struct crypto_family and a row in
 * crypto.c's families[]. Not for use outside keymgrd/crypto/.
 */
#ifndef KM_CRYPTO_FAMILY_H
#define KM_CRYPTO_FAMILY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <gcrypt.h>

#include "crypto/crypto.h"
#include "curve.h"
#include "mech.h"

struct crypto_family;

struct km_op {
	enum proto_op kind;
	const struct mech_row *m;
	const struct crypto_family *f;
	gcry_sexp_t key;
	const struct curve *curve;
	size_t k;               /* RSA modulus bytes, EC order bytes, AES key bytes */
	gcry_md_hd_t md;        /* hash-and-sign digest, or the HMAC */
	gcry_mac_hd_t mac;      /* CMAC */
	size_t mac_len;         /* HMAC/CMAC output length */
	gcry_cipher_hd_t ciph;
	size_t blk;             /* cipher block size */
	int pss_md;             /* PSS/OAEP hash */
	uint32_t salt_len;
	uint8_t *label; uint32_t label_len;
	uint32_t tag_len;
	uint8_t *buf; size_t len, cap; /* accumulated input (raw mechanisms, AES tail) */
	uint8_t *dst; size_t dst_cap;   /* where the next encryption output may go */
};

/* The operations of one family; NULL where the family has none. */
struct crypto_family {
	/* Opens key for op (an S-expression, or a cipher or MAC handle);
	 * priv: op uses the private half. */
	CK_RV (*key)(struct km_op *op, const struct km_object *key, bool priv);
	/* Checks the mechanism parameter and keeps what op needs of it. */
	CK_RV (*params)(struct km_op *op, const struct mech_param *p);
	/* One part of a multi-part operation (*out: what it releases). */
	CK_RV (*update)(struct km_op *op, const uint8_t *in, size_t n, uint8_t **out, size_t *outlen);
	/* The end: the signature, the last output, or the verdict on sig. */
	CK_RV (*final)(struct km_op *op, const uint8_t *sig, size_t siglen, uint8_t **out, size_t *outlen);
	/* A step straight from the caller's input, when the family can take
	 * one (false: go through update/final). */
	bool (*direct)(struct km_op *op, bool final, const uint8_t *in, size_t inlen, CK_RV *rv, uint8_t **out,
		       size_t *outlen);
	/* How long a key value of n bytes becomes when the mechanism wraps
	 * it (ECB and CBC pad with zeros to the block), or NULL: as it is. */
	size_t (*wrap_len)(const struct km_op *op, size_t n);
	/* Generates a key: a secret one into a (b NULL), or a pair a/b
	 * (public, private) from their templates. */
	CK_RV (*keygen)(const struct mech_row *m, struct km_object *a, struct km_object *b);
	/* Derives a new key's value from base (and other), as crypto_derive
	 * says; checks base's class and type, then calls cr_derive_allowed. */
	CK_RV (*derive)(const struct mech_row *m, const struct mech_param *p, const struct km_object *base,
			const struct km_object *other, size_t want, uint8_t **out, size_t *outlen);
};

/* The families, by file. */
extern const struct crypto_family cr_rsa, cr_rsa_keygen;                 /* mech_rsa.c */
extern const struct crypto_family cr_ecdsa, cr_eddsa, cr_ec_keygen, cr_x_keygen, cr_ecdh; /* mech_ec.c */
extern const struct crypto_family cr_kdf;                                /* mech_kdf.c */
extern const struct crypto_family cr_cipher, cr_aes_keygen, cr_des3_keygen, cr_generic_keygen; /* mech_cipher.c */
extern const struct crypto_family cr_mac;                                /* mech_mac.c */

/* ---- shared by the family files (crypto.c, keys.c, keycache.c) ---- */

/* Appends n bytes to op->buf (bounded by the largest frame). 0 or -1. */
int cr_buf_add(struct km_op *op, const uint8_t *p, size_t n);
/* Drops the first n bytes of op->buf. */
void cr_buf_drop(struct km_op *op, size_t n);
/* Collects input for a single-part mechanism, refusing more than max. */
CK_RV cr_collect(struct km_op *op, const uint8_t *in, size_t n, size_t max);
/* Whether key's CKA_ALLOWED_MECHANISMS (when it has one) lists type. */
bool cr_mech_allowed(const struct km_object *key, CK_MECHANISM_TYPE type);
/* What every derivation asks of its base key once its class and type are
 * right: CKA_DERIVE (CKR_KEY_FUNCTION_NOT_PERMITTED) and the allowed
 * mechanisms (CKR_MECHANISM_INVALID). */
CK_RV cr_derive_allowed(const struct km_object *base, CK_MECHANISM_TYPE type);
/* *out = malloc(n) (at least 1 byte), *outlen = n. */
CK_RV cr_alloc_out(size_t n, uint8_t **out, size_t *outlen);

/* The attribute t of o, public or secret. */
const struct attr *cr_key_attr(const struct km_object *o, CK_ATTRIBUTE_TYPE t);
/* An MPI from an attribute; NULL when absent. */
gcry_mpi_t cr_attr_mpi(const struct km_object *o, CK_ATTRIBUTE_TYPE t);
/* Sets attribute t of l to the unsigned big-endian bytes of m. */
int cr_set_mpi(struct attrlist *l, CK_ATTRIBUTE_TYPE t, gcry_mpi_t m);
/* m as exactly len big-endian bytes into out; -1 when it does not fit. */
int cr_mpi_fixed(gcry_mpi_t m, uint8_t *out, size_t len);
/* The second element of the first sub-list named tok, as an MPI. */
gcry_mpi_t cr_sexp_mpi(gcry_sexp_t s, const char *tok);
/* The curve a CKA_EC_PARAMS names, or NULL. */
const struct curve *cr_key_curve(const struct attr *a);
/* The size of a public point of c; the raw point inside a CKA_EC_POINT
 * (NULL when malformed); a point as a DER OCTET STRING into out. */
size_t cr_point_len(const struct curve *c);
const uint8_t *cr_ec_point_raw(const struct attr *a, const struct curve *c, size_t *len);
size_t cr_ec_point_der(const uint8_t *pt, size_t len, uint8_t *out);
/* The modulus size of an RSA key in bytes (0 when it has none). */
size_t cr_rsa_bytes(const struct km_object *o);
/* CKA_CHECK_VALUE and CKA_VALUE_LEN of a secret key from its value. */
CK_RV cr_secret_derived(struct km_object *key, const uint8_t *v, size_t len);

/* Key S-expressions: RSA private, EC of either half
 * (both in keys.c), and a private key of either through the cache of parsed
 * keys (keycache.c; *cv gets the curve of an EC key when cv is set). */
CK_RV cr_rsa_private(const struct km_object *o, gcry_sexp_t *out);
CK_RV cr_key_ec(const struct km_object *o, bool priv, gcry_sexp_t *out, const struct curve **cv);
CK_RV cr_private_key(const struct km_object *o, gcry_sexp_t *out, const struct curve **cv);

#endif
