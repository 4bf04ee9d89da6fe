/*
 * mech.h - the mechanism table, and mechanism parameters in wire form.
 *
 * The module turns a CK_MECHANISM's parameter structure into fixed-width
 * fields (mech_param_encode); the daemon reads them back (mech_param_decode).
 * Wire forms by kind:
 *   MP_NONE  no bytes
 *   MP_IV    the IV bytes
 *   MP_GCM   bytes IV, bytes AAD, u32 tag bits
 *   MP_OAEP  u32 hash, u32 MGF, u32 source, bytes source data (label)
 *   MP_PSS   u32 hash, u32 MGF, u32 salt length
 *   MP_CTR   u32 counter bits, 16 bytes counter block
 *   MP_ULONG u32 (a CK_MAC_GENERAL_PARAMS length)
 *   MP_ECDH  u32 KDF, bytes shared data, bytes public data
 *   MP_EDDSA nothing (no CK_EDDSA_PARAMS), or b phFlag, bytes context
 *   MP_DATA  bytes data (CK_KEY_DERIVATION_STRING_DATA)
 *   MP_CBC_DATA bytes IV (16 for AES, 8 for DES3), bytes data
 *            (CK_AES_CBC_ENCRYPT_DATA_PARAMS, CK_DES_CBC_ENCRYPT_DATA_PARAMS)
 *   MP_KEY   u32 a key's handle (CONCATENATE_BASE_AND_KEY)
 *   MP_HKDF  b extract, b expand, u32 PRF hash, u32 salt type, bytes salt,
 *            u32 salt key handle, bytes info (CK_HKDF_PARAMS)
 *   MP_RAW   the parameter bytes as given (mechanisms coyeu does not know)
 */
#ifndef CY_MECH_H
#define CY_MECH_H

#include <stdbool.h>
#include <stdint.h>
#include "cy_pkcs11.h"
#include "wire.h"

enum mech_param_kind {
	MP_NONE, MP_IV, MP_GCM, MP_OAEP, MP_PSS, MP_RAW, MP_CTR, MP_ULONG, MP_ECDH, MP_EDDSA,
	MP_DATA, MP_CBC_DATA, MP_KEY, MP_HKDF
};

struct mech_param {
	enum mech_param_kind kind;
	const uint8_t *iv;    uint32_t iv_len;
	const uint8_t *aad;   uint32_t aad_len;
	uint32_t tag_bits;
	uint32_t hash, mgf, source;
	const uint8_t *label; uint32_t label_len;
	uint32_t salt_len;
	uint32_t counter_bits; const uint8_t *cb; /* 16 bytes */
	uint32_t ulong_val;
	uint32_t kdf;
	const uint8_t *shared; uint32_t shared_len;
	const uint8_t *public_data; uint32_t public_len;
	bool has_eddsa; bool ph_flag; const uint8_t *context; uint32_t context_len; /* MP_EDDSA */
	const uint8_t *data; uint32_t data_len; /* MP_DATA, MP_CBC_DATA (iv: the IV), MP_HKDF (info) */
	uint32_t handle;                        /* MP_KEY, MP_HKDF (the salt key) */
	bool extract, expand; uint32_t prf, salt_type; /* MP_HKDF (salt: label) */
};

/* What a mechanism is for, as keymgrd implements it: each family has one
 * set of operations (keymgrd/crypto/family.h). */
enum mech_family {
	MF_DIGEST,
	MF_KEYGEN_RSA, MF_KEYGEN_EC, MF_KEYGEN_ED, MF_KEYGEN_X,
	MF_KEYGEN_AES, MF_KEYGEN_DES3, MF_KEYGEN_GENERIC,
	MF_RSA_PKCS, MF_RSA_X509, MF_RSA_PKCS_HASH, MF_RSA_PSS, MF_RSA_PSS_HASH, MF_RSA_OAEP,
	MF_ECDSA, MF_ECDSA_HASH, MF_EDDSA, MF_ECDH,
	MF_ECB, MF_CBC, MF_CBC_PAD, MF_AES_GCM, MF_AES_CTR, /* AES, and DES3 for the first three */
	MF_HMAC, MF_AES_CMAC, MF_AES_CMAC_GENERAL,
	MF_AES_KW, MF_AES_KWP,
	/* Secret keys from secret keys (C_DeriveKey), keymgrd/crypto/mech_kdf.c. */
	MF_KDF_CONCAT_KEY, MF_KDF_CONCAT_BASE_DATA, MF_KDF_CONCAT_DATA_BASE, MF_KDF_XOR, MF_KDF_EXTRACT,
	MF_KDF_ENC_ECB, MF_KDF_ENC_CBC, MF_KDF_HASH, MF_KDF_HKDF,
	MF_KDF_HKDF_DATA, /* HKDF into a data object */
	MF_COUNT
};

/* One row of the mechanism table (mech.c). */
struct mech_row {
	CK_MECHANISM_TYPE type;
	enum mech_param_kind param;
	enum mech_family fam;
	CK_KEY_TYPE kt;             /* the key type it takes or makes; 0 for digests */
	int md;                     /* GCRY_MD_* of hash families, HMAC and digests */
	CK_ULONG min_bits, max_bits; /* bytes for generic secrets and HMAC */
	CK_FLAGS flags;             /* as C_GetMechanismInfo reports them */
};

/* Every row (*n of them, static). */
const struct mech_row *mech_rows(size_t *n);
/* The row of type, or NULL. */
const struct mech_row *mech_find(CK_MECHANISM_TYPE type);

enum mech_param_kind mech_param_kind(CK_MECHANISM_TYPE type);
/* Appends mechanism m (u32 type, bytes parameter) to b. Returns CKR_OK,
 * CKR_MECHANISM_PARAM_INVALID for a parameter of the wrong shape, or
 * CKR_MECHANISM_INVALID for a type that does not fit 32 bits. */
CK_RV mech_param_encode(const CK_MECHANISM *m, struct wire_buf *b);
/* Reads the parameter of a mechanism of type; pointers refer into p.
 * Returns 0 or CY_ERR_BAD_FORMAT. */
int mech_param_decode(CK_MECHANISM_TYPE type, const uint8_t *p, uint32_t n, struct mech_param *out);

/* Whether m derives a secret key from a secret key (the MF_KDF_
 * families): such a key inherits its base's sensitivity. */
static inline bool
mech_secret_derive(const struct mech_row *m)
{
	return m != NULL && m->fam >= MF_KDF_CONCAT_KEY && m->fam <= MF_KDF_HKDF;
}

/* Whether m derives a data object (CKM_HKDF_DATA) rather than a key. */
static inline bool
mech_derives_data(const struct mech_row *m)
{
	return m != NULL && m->fam == MF_KDF_HKDF_DATA;
}

/* Whether kt is a secret key type coyeu has (AES, DES3, generic, HKDF). */
bool mech_secret_kt(CK_KEY_TYPE kt);

/* The libgcrypt hash (GCRY_MD_*) of a CKM_SHA* digest mechanism, or 0. */
int mech_md_algo(CK_MECHANISM_TYPE type);

#endif
