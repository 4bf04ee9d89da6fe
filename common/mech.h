/*
 * mech.h - mechanism parameters in wire form.
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
 *   MP_RAW   the parameter bytes as given (mechanisms coyeu does not know)
 */
#ifndef CY_MECH_H
#define CY_MECH_H

#include <stdint.h>
#include "cy_pkcs11.h"
#include "wire.h"

enum mech_param_kind { MP_NONE, MP_IV, MP_GCM, MP_OAEP, MP_PSS, MP_RAW, MP_CTR, MP_ULONG, MP_ECDH };

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
};

enum mech_param_kind mech_param_kind(CK_MECHANISM_TYPE type);
/* Appends mechanism m (u32 type, bytes parameter) to b. Returns CKR_OK,
 * CKR_MECHANISM_PARAM_INVALID for a parameter of the wrong shape, or
 * CKR_MECHANISM_INVALID for a type that does not fit 32 bits. */
CK_RV mech_param_encode(const CK_MECHANISM *m, struct wire_buf *b);
/* Reads the parameter of a mechanism of type; pointers refer into p.
 * Returns 0 or CY_ERR_BAD_FORMAT. */
int mech_param_decode(CK_MECHANISM_TYPE type, const uint8_t *p, uint32_t n, struct mech_param *out);

/* The libgcrypt hash (GCRY_MD_*) of a CKM_SHA* digest mechanism, or 0. */
int mech_md_algo(CK_MECHANISM_TYPE type);

#endif
