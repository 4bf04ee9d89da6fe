/*
 * crypto.h - every key operation of keymgrd, over libgcrypt.
 *
 * One table lists the mechanisms coyeu offers (key types, sizes, PKCS#11
 * flags, and how each runs). Key generation fills the key material into the
 * objects obj_build made; operations (sign, verify, encrypt, decrypt) are
 * a struct km_op created from a key and driven by update/final calls. The
 * functions return CK_RV because their callers answer a PKCS#11 caller.
 *
 * Keys are turned into libgcrypt S-expressions only for the duration of an
 * operation; values that came from secure memory stay in secure memory.
 */
#ifndef KM_CRYPTO_H
#define KM_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cy_pkcs11.h"
#include "mech.h"
#include "model/object.h"
#include "proto.h"


/* The mechanism list (*n entries, static). */
const struct mech_row *crypto_mechs(size_t *n);
/* The entry for type, or NULL. */
const struct mech_row *crypto_mech(CK_MECHANISM_TYPE type);

/*
 * Key generation. The objects come from obj_build(OM_GENERATE); these add
 * the key material and the attributes derived from it (modulus, EC point,
 * CKA_KEY_GEN_MECHANISM...). Slow for large RSA keys: call without locks.
 */
CK_RV crypto_generate_key_pair(CK_MECHANISM_TYPE mech, struct km_object *pub, struct km_object *priv);
CK_RV crypto_generate_key(CK_MECHANISM_TYPE mech, struct km_object *key);
/* Checks the key material of an object given to C_CreateObject and adds
 * the attributes derived from it (CKA_MODULUS_BITS, CKA_VALUE_LEN). */
CK_RV crypto_complete_new_key(struct km_object *o);
/* The mechanism that generates keys of type kt for a generate request. */
bool crypto_keygen_mech(CK_MECHANISM_TYPE mech, bool pair, CK_KEY_TYPE *kt);

struct km_op;

/* Private keys stay parsed between operations (a cache found by the
 * material's hash); this wipes them all, when keys are destroyed or
 * revoked and when keymgrd stops. */
void crypto_forget_keys(void);

/*
 * Starts operation kind with mechanism type/param on key. Checks that the
 * key's class, type, size and usage flags (CKA_SIGN...) allow it. Returns
 * CKR_OK and *out (free with crypto_op_free) or the CK_RV.
 */
CK_RV crypto_op_init(enum proto_op kind, CK_MECHANISM_TYPE type, const struct mech_param *param,
		     const struct km_object *key, struct km_op **out);
void crypto_op_free(struct km_op *op);
enum proto_op crypto_op_kind(const struct km_op *op);

/*
 * The three steps. Output (when the operation has any) is malloc'd into
 * *out / *outlen, which the caller frees; for verify, sig is the signature
 * and a mismatch is CKR_SIGNATURE_INVALID. Any error ends the operation
 * (the caller frees it); so does success of run and final.
 */
/*
 * Lets the next step of an encryption write its output to dst (cap bytes)
 * instead of a malloc'd buffer, when it fits: *out is then dst, not to be
 * freed. Used for the shared region; a decryption never writes there
 * before its output is checked.
 */
void crypto_op_output_to(struct km_op *op, uint8_t *dst, size_t cap);
CK_RV crypto_op_run(struct km_op *op, const uint8_t *in, size_t inlen,
		    const uint8_t *sig, size_t siglen, uint8_t **out, size_t *outlen);
CK_RV crypto_op_update(struct km_op *op, const uint8_t *in, size_t inlen,
		       uint8_t **out, size_t *outlen);
CK_RV crypto_op_final(struct km_op *op, const uint8_t *sig, size_t siglen,
		      uint8_t **out, size_t *outlen);

/*
 * C_WrapKey / C_UnwrapKey: checks the (un)wrapping key (class, type,
 * CKA_WRAP / CKA_UNWRAP) and encrypts or decrypts in[] with it. *out is
 * malloc'd; the caller wipes and frees it. Errors are the wrapping ones
 * (CKR_WRAPPING_KEY_TYPE_INCONSISTENT, CKR_WRAPPED_KEY_INVALID...).
 */
CK_RV crypto_wrap(CK_MECHANISM_TYPE type, const struct mech_param *p, const struct km_object *wk,
		  const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen);
/* crypto_unwrap: kt is the new key's type; where the mechanism pads what
 * it wraps (ECB, CBC), a DES3 key is truncated to its 24 bytes (the caller
 * truncates to CKA_VALUE_LEN). */
CK_RV crypto_unwrap(CK_MECHANISM_TYPE type, const struct mech_param *p, const struct km_object *uk,
		    const uint8_t *in, size_t inlen, CK_KEY_TYPE kt, uint8_t **out, size_t *outlen);

/*
 * C_DeriveKey: checks the base key (class, type, CKA_DERIVE, allowed
 * mechanisms) and derives a new key's value: ECDH (P-curves and X25519)
 * with the peer's public data and a KDF, or from a secret key
 * (concatenation, XOR, extraction, encryption of data, a hash, HKDF).
 * other is the second key a mechanism parameter names (CONCATENATE_BASE_
 * AND_KEY, an HKDF salt key), or NULL. want is the key length (0: what the
 * mechanism gives). *out is malloc'd; the caller wipes and frees it.
 */
/* DES keys carry odd parity in the low bit of every byte: sets it. */
void crypto_des_parity(uint8_t *k, size_t n);

CK_RV crypto_derive(CK_MECHANISM_TYPE type, const struct mech_param *p, const struct km_object *base,
		    const struct km_object *other, size_t want, uint8_t **out, size_t *outlen);


#endif
