/*
 * mech_mac.c - the MAC families: HMAC with the SHA-1, SHA-2 and SHA-3 hashes,
 * and AES-CMAC (full or general length).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <gcrypt.h>

#include "cy_err.h"
#include "crypto/family.h"
#include "wire.h"

/* HMAC (over a generic secret) and AES-CMAC. */
static CK_RV
mac_key(struct km_op *op, const struct km_object *key, bool priv)
{
	(void)priv;
	const struct attr *v = al_find(&key->sec, CKA_VALUE);
	if (v == NULL || v->len == 0)
		return CKR_KEY_HANDLE_INVALID;
	op->k = v->len;
	if (op->m->fam == MF_HMAC) {
		op->mac_len = gcry_md_get_algo_dlen(op->m->md);
		if (gcry_md_open(&op->md, op->m->md, GCRY_MD_FLAG_HMAC | GCRY_MD_FLAG_SECURE) != 0)
			return CKR_HOST_MEMORY;
		return gcry_md_setkey(op->md, v->val, v->len) ? CKR_KEY_SIZE_RANGE : CKR_OK;
	}
	if (v->len != 16 && v->len != 24 && v->len != 32)
		return CKR_KEY_SIZE_RANGE;
	op->mac_len = 16;
	if (gcry_mac_open(&op->mac, GCRY_MAC_CMAC_AES, GCRY_MAC_FLAG_SECURE, NULL) != 0)
		return CKR_HOST_MEMORY;
	return gcry_mac_setkey(op->mac, v->val, v->len) ? CKR_KEY_SIZE_RANGE : CKR_OK;
}

/* CKM_AES_CMAC_GENERAL takes the output length; the others nothing. */
static CK_RV
mac_params(struct km_op *op, const struct mech_param *p)
{
	if (op->m->fam != MF_AES_CMAC_GENERAL)
		return p->kind == MP_NONE ? CKR_OK : CKR_MECHANISM_PARAM_INVALID;
	if (p->kind != MP_ULONG || p->ulong_val == 0 || p->ulong_val > 16)
		return CKR_MECHANISM_PARAM_INVALID;
	op->mac_len = p->ulong_val;
	return CKR_OK;
}

static CK_RV
mac_update(struct km_op *op, const uint8_t *in, size_t n, uint8_t **out, size_t *outlen)
{
	(void)out;
	(void)outlen;
	if (op->mac)
		gcry_mac_write(op->mac, in, n);
	else
		gcry_md_write(op->md, in, n);
	return CKR_OK;
}

/* HMAC and CMAC: the MAC of everything written, truncated to mac_len. */
static CK_RV
mac_final(struct km_op *op, const uint8_t *sig, size_t siglen, uint8_t **out, size_t *outlen)
{
	uint8_t full[64];
	size_t n = sizeof(full);
	if (op->kind == OP_VERIFY && siglen != op->mac_len)
		return CKR_SIGNATURE_LEN_RANGE;
	if (op->mac) {
		if (gcry_mac_read(op->mac, full, &n) != 0)
			return CKR_FUNCTION_FAILED;
	} else {
		const uint8_t *d = gcry_md_read(op->md, 0);
		if (d == NULL)
			return CKR_FUNCTION_FAILED;
		n = gcry_md_get_algo_dlen(op->m->md);
		memcpy(full, d, n);
	}
	if (n < op->mac_len)
		return CKR_FUNCTION_FAILED;
	if (op->kind == OP_VERIFY) {
		uint8_t diff = 0;
		for (size_t i = 0; i < op->mac_len; i++)
			diff |= (uint8_t)(full[i] ^ sig[i]);
		wire_wipe(full, sizeof(full));
		return diff ? CKR_SIGNATURE_INVALID : CKR_OK;
	}
	CK_RV rv = cr_alloc_out(op->mac_len, out, outlen);
	if (rv == CKR_OK)
		memcpy(*out, full, op->mac_len);
	wire_wipe(full, sizeof(full));
	return rv;
}

const struct crypto_family cr_mac = {
	.key = mac_key,
	.params = mac_params,
	.update = mac_update,
	.final = mac_final,
};
