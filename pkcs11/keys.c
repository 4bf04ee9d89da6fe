/*
 * keys.c - key management (PKCS#11 2.40 section 5.13): generating,
 * wrapping, unwrapping and deriving keys, each one request to keymgrd.
 */
#include "config.h"

#include <string.h>

#include "mech.h"
#include "attr.h"
#include "module.h"

CK_RV
C_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pTemplate,
	      CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey)
{
	struct rpc r;
	if (pMechanism == NULL || phKey == NULL || (pTemplate == NULL && ulCount))
		return mod_bad_args();
	CK_RV rv = rpc_begin_session(&r, MSG_GENERATE_KEY, hSession);
	if (rv != CKR_OK)
		return rv;
	if ((rv = mech_param_encode(pMechanism, r.req)) != CKR_OK ||
	    (rv = attr_put_template(r.req, pTemplate, ulCount, true)) != CKR_OK) {
		rpc_end(&r);
		return rv;
	}
	return rpc_call_u32(&r, phKey);
}

CK_RV
C_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		  CK_ATTRIBUTE_PTR pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount,
		  CK_ATTRIBUTE_PTR pPrivateKeyTemplate, CK_ULONG ulPrivateKeyAttributeCount,
		  CK_OBJECT_HANDLE_PTR phPublicKey, CK_OBJECT_HANDLE_PTR phPrivateKey)
{
	struct rpc r;
	uint32_t pub = 0, priv = 0;
	if (pMechanism == NULL || phPublicKey == NULL || phPrivateKey == NULL ||
	    (pPublicKeyTemplate == NULL && ulPublicKeyAttributeCount) ||
	    (pPrivateKeyTemplate == NULL && ulPrivateKeyAttributeCount))
		return mod_bad_args();
	CK_RV rv = rpc_begin_session(&r, MSG_GENERATE_KEY_PAIR, hSession);
	if (rv != CKR_OK)
		return rv;
	if ((rv = mech_param_encode(pMechanism, r.req)) != CKR_OK ||
	    (rv = attr_put_template(r.req, pPublicKeyTemplate, ulPublicKeyAttributeCount, true)) != CKR_OK ||
	    (rv = attr_put_template(r.req, pPrivateKeyTemplate, ulPrivateKeyAttributeCount, true)) != CKR_OK) {
		rpc_end(&r);
		return rv;
	}
	if ((rv = rpc_call(&r)) == CKR_OK) {
		wire_get_u32(r.rep, &pub);
		wire_get_u32(r.rep, &priv);
		if ((rv = rpc_check(&r)) == CKR_OK) {
			*phPublicKey = pub;
			*phPrivateKey = priv;
		}
	}
	rpc_end(&r);
	return rv;
}

CK_RV
C_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hWrappingKey,
	  CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen)
{
	struct rpc r;
	uint32_t need = 0, n = 0;
	const uint8_t *p = NULL;
	if (pMechanism == NULL || pulWrappedKeyLen == NULL)
		return mod_bad_args();
	CK_RV rv = rpc_begin_session(&r, MSG_WRAP_KEY, hSession);
	if (rv != CKR_OK)
		return rv;
	if (!fits_u32(hWrappingKey) || !fits_u32(hKey)) {
		rpc_end(&r);
		return fits_u32(hKey) ? CKR_WRAPPING_KEY_HANDLE_INVALID : CKR_KEY_HANDLE_INVALID;
	}
	if ((rv = mech_param_encode(pMechanism, r.req)) != CKR_OK) {
		rpc_end(&r);
		return rv;
	}
	CK_ULONG cap = *pulWrappedKeyLen;
	wire_put_u32(r.req, (uint32_t)hWrappingKey);
	wire_put_u32(r.req, (uint32_t)hKey);
	wire_put_u32(r.req, cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap);
	wire_put_u8(r.req, pWrappedKey == NULL);
	rv = rpc_call(&r);
	if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL) {
		wire_get_u32(r.rep, &need);
		wire_get_bytes(r.rep, &p, &n);
		CK_RV crv = rpc_check(&r);
		if (crv != CKR_OK) {
			rv = crv;
		} else if (rv == CKR_OK && pWrappedKey != NULL) {
			if (n != need || n > cap) {
				r.broken = true;
				rv = CKR_DEVICE_ERROR;
			} else {
				memcpy(pWrappedKey, p, n);
				*pulWrappedKeyLen = n;
			}
		} else {
			*pulWrappedKeyLen = need;
		}
	}
	rpc_end(&r);
	return rv;
}

CK_RV
C_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hUnwrappingKey,
	    CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate,
	    CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
	struct rpc r;
	if (pMechanism == NULL || phKey == NULL || (pWrappedKey == NULL && ulWrappedKeyLen) ||
	    (pTemplate == NULL && ulAttributeCount))
		return mod_bad_args();
	if (ulWrappedKeyLen > WIRE_MAX_FRAME / 2)
		return mod_ready() ? mod_ready() : CKR_WRAPPED_KEY_LEN_RANGE;
	CK_RV rv = rpc_begin_session(&r, MSG_UNWRAP_KEY, hSession);
	if (rv != CKR_OK)
		return rv;
	if (!fits_u32(hUnwrappingKey)) {
		rpc_end(&r);
		return CKR_UNWRAPPING_KEY_HANDLE_INVALID;
	}
	if ((rv = mech_param_encode(pMechanism, r.req)) != CKR_OK) {
		rpc_end(&r);
		return rv;
	}
	wire_put_u32(r.req, (uint32_t)hUnwrappingKey);
	wire_put_bytes(r.req, pWrappedKey, ulWrappedKeyLen);
	if ((rv = attr_put_template(r.req, pTemplate, ulAttributeCount, true)) != CKR_OK) {
		rpc_end(&r);
		return rv;
	}
	return rpc_call_u32(&r, phKey);
}

CK_RV
C_DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hBaseKey,
	    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
	struct rpc r;
	if (pMechanism == NULL || phKey == NULL || (pTemplate == NULL && ulAttributeCount))
		return mod_bad_args();
	CK_RV rv = rpc_begin_session(&r, MSG_DERIVE_KEY, hSession);
	if (rv != CKR_OK)
		return rv;
	if (!fits_u32(hBaseKey)) {
		rpc_end(&r);
		return CKR_KEY_HANDLE_INVALID;
	}
	if ((rv = mech_param_encode(pMechanism, r.req)) != CKR_OK) {
		rpc_end(&r);
		return rv;
	}
	wire_put_u32(r.req, (uint32_t)hBaseKey);
	if ((rv = attr_put_template(r.req, pTemplate, ulAttributeCount, true)) != CKR_OK) {
		rpc_end(&r);
		return rv;
	}
	return rpc_call_u32(&r, phKey);
}
