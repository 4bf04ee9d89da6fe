/*
 * objects.c - object functions and key generation of coyeu-pkcs11.so.
 * Each is one request to keymgrd; templates travel through attrs.c.
 */
#include "config.h"

#include <string.h>

#include "mech.h"
#include "module.h"

/* Begins a session request after the common argument checks. */
static CK_RV
begin_session(struct rpc *r, uint32_t type, CK_SESSION_HANDLE h)
{
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (!fits_u32(h))
		return CKR_SESSION_HANDLE_INVALID;
	if ((rv = rpc_begin(r, type, CKR_DEVICE_ERROR)) != CKR_OK)
		return rv;
	wire_put_u32(r->req, (uint32_t)h);
	return CKR_OK;
}

/* Sends r and reads one u32 reply field into *out. */
static CK_RV
call_u32(struct rpc *r, CK_ULONG *out)
{
	uint32_t v = 0;
	CK_RV rv = rpc_call(r);
	if (rv == CKR_OK) {
		wire_get_u32(r->rep, &v);
		if ((rv = rpc_check(r)) == CKR_OK)
			*out = v;
	}
	rpc_end(r);
	return rv;
}

static CK_RV
call_none(struct rpc *r)
{
	CK_RV rv = rpc_call(r);
	rpc_end(r);
	return rv;
}

CK_RV
C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
	       CK_OBJECT_HANDLE_PTR phObject)
{
	struct rpc r;
	if (phObject == NULL || (pTemplate == NULL && ulCount))
		return mod_bad_args();
	CK_RV rv = begin_session(&r, MSG_CREATE_OBJECT, hSession);
	if (rv != CKR_OK)
		return rv;
	if ((rv = attrs_put_template(r.req, pTemplate, ulCount, true)) != CKR_OK) {
		rpc_end(&r);
		return rv;
	}
	return call_u32(&r, phObject);
}

CK_RV
C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
	     CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phNewObject)
{
	struct rpc r;
	if (phNewObject == NULL || (pTemplate == NULL && ulCount))
		return mod_bad_args();
	CK_RV rv = begin_session(&r, MSG_COPY_OBJECT, hSession);
	if (rv != CKR_OK)
		return rv;
	if (!fits_u32(hObject)) {
		rpc_end(&r);
		return CKR_OBJECT_HANDLE_INVALID;
	}
	wire_put_u32(r.req, (uint32_t)hObject);
	if ((rv = attrs_put_template(r.req, pTemplate, ulCount, true)) != CKR_OK) {
		rpc_end(&r);
		return rv;
	}
	return call_u32(&r, phNewObject);
}

CK_RV
C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
	struct rpc r;
	CK_RV rv = begin_session(&r, MSG_DESTROY_OBJECT, hSession);
	if (rv != CKR_OK)
		return rv;
	if (!fits_u32(hObject)) {
		rpc_end(&r);
		return CKR_OBJECT_HANDLE_INVALID;
	}
	wire_put_u32(r.req, (uint32_t)hObject);
	return call_none(&r);
}

CK_RV
C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize)
{
	struct rpc r;
	uint64_t size = 0;
	if (pulSize == NULL)
		return mod_bad_args();
	CK_RV rv = begin_session(&r, MSG_OBJECT_SIZE, hSession);
	if (rv != CKR_OK)
		return rv;
	if (!fits_u32(hObject)) {
		rpc_end(&r);
		return CKR_OBJECT_HANDLE_INVALID;
	}
	wire_put_u32(r.req, (uint32_t)hObject);
	if ((rv = rpc_call(&r)) == CKR_OK) {
		wire_get_u64(r.rep, &size);
		if ((rv = rpc_check(&r)) == CKR_OK)
			*pulSize = (CK_ULONG)size;
	}
	rpc_end(&r);
	return rv;
}

CK_RV
C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
		    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	struct rpc r;
	if (pTemplate == NULL && ulCount)
		return mod_bad_args();
	if (ulCount > PROTO_MAX_LIST)
		return mod_bad_args();
	CK_RV rv = begin_session(&r, MSG_GET_ATTRS, hSession);
	if (rv != CKR_OK)
		return rv;
	if (!fits_u32(hObject)) {
		rpc_end(&r);
		return CKR_OBJECT_HANDLE_INVALID;
	}
	wire_put_u32(r.req, (uint32_t)hObject);
	wire_put_u32(r.req, (uint32_t)ulCount);
	for (CK_ULONG i = 0; i < ulCount; i++) {
		if (!fits_u32(pTemplate[i].type)) {
			/* Cannot exist on the token: ask for a type that
			 * cannot either, and get TYPE_INVALID for it. */
			wire_put_u32(r.req, 0xffffffffu);
			continue;
		}
		wire_put_u32(r.req, (uint32_t)pTemplate[i].type);
	}
	if ((rv = rpc_call(&r)) == CKR_OK) {
		rv = attrs_read_results(r.rep, pTemplate, ulCount);
		if (rv == CKR_DEVICE_ERROR)
			r.broken = true;
	}
	rpc_end(&r);
	return rv;
}

CK_RV
C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
		    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	struct rpc r;
	if (pTemplate == NULL && ulCount)
		return mod_bad_args();
	CK_RV rv = begin_session(&r, MSG_SET_ATTRS, hSession);
	if (rv != CKR_OK)
		return rv;
	if (!fits_u32(hObject)) {
		rpc_end(&r);
		return CKR_OBJECT_HANDLE_INVALID;
	}
	wire_put_u32(r.req, (uint32_t)hObject);
	if ((rv = attrs_put_template(r.req, pTemplate, ulCount, true)) != CKR_OK) {
		rpc_end(&r);
		return rv;
	}
	return call_none(&r);
}

CK_RV
C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	struct rpc r;
	if (pTemplate == NULL && ulCount)
		return mod_bad_args();
	CK_RV rv = begin_session(&r, MSG_FIND_INIT, hSession);
	if (rv != CKR_OK)
		return rv;
	if ((rv = attrs_put_template(r.req, pTemplate, ulCount, true)) != CKR_OK) {
		rpc_end(&r);
		/* A type or value no object can have matches nothing. */
		return rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_ATTRIBUTE_TYPE_INVALID
		       ? CKR_ATTRIBUTE_VALUE_INVALID : rv;
	}
	return call_none(&r);
}

CK_RV
C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject, CK_ULONG ulMaxObjectCount,
	      CK_ULONG_PTR pulObjectCount)
{
	struct rpc r;
	uint32_t n = 0;
	if (phObject == NULL || pulObjectCount == NULL)
		return mod_bad_args();
	CK_RV rv = begin_session(&r, MSG_FIND, hSession);
	if (rv != CKR_OK)
		return rv;
	wire_put_u32(r.req, ulMaxObjectCount > PROTO_MAX_LIST ? PROTO_MAX_LIST : (uint32_t)ulMaxObjectCount);
	if ((rv = rpc_call(&r)) == CKR_OK) {
		wire_get_u32(r.rep, &n);
		if (n > ulMaxObjectCount) {
			r.broken = true;
			rv = CKR_DEVICE_ERROR;
		} else {
			for (uint32_t i = 0; i < n; i++) {
				uint32_t h = 0;
				wire_get_u32(r.rep, &h);
				phObject[i] = h;
			}
			if ((rv = rpc_check(&r)) == CKR_OK)
				*pulObjectCount = n;
		}
	}
	rpc_end(&r);
	return rv;
}

CK_RV
C_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
	struct rpc r;
	CK_RV rv = begin_session(&r, MSG_FIND_FINAL, hSession);
	if (rv != CKR_OK)
		return rv;
	return call_none(&r);
}

CK_RV
C_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pTemplate,
	      CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey)
{
	struct rpc r;
	if (pMechanism == NULL || phKey == NULL || (pTemplate == NULL && ulCount))
		return mod_bad_args();
	CK_RV rv = begin_session(&r, MSG_GENERATE_KEY, hSession);
	if (rv != CKR_OK)
		return rv;
	if ((rv = mech_param_encode(pMechanism, r.req)) != CKR_OK ||
	    (rv = attrs_put_template(r.req, pTemplate, ulCount, true)) != CKR_OK) {
		rpc_end(&r);
		return rv;
	}
	return call_u32(&r, phKey);
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
	CK_RV rv = begin_session(&r, MSG_GENERATE_KEY_PAIR, hSession);
	if (rv != CKR_OK)
		return rv;
	if ((rv = mech_param_encode(pMechanism, r.req)) != CKR_OK ||
	    (rv = attrs_put_template(r.req, pPublicKeyTemplate, ulPublicKeyAttributeCount, true)) != CKR_OK ||
	    (rv = attrs_put_template(r.req, pPrivateKeyTemplate, ulPrivateKeyAttributeCount, true)) != CKR_OK) {
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
	CK_RV rv = begin_session(&r, MSG_WRAP_KEY, hSession);
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
	CK_RV rv = begin_session(&r, MSG_UNWRAP_KEY, hSession);
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
	if ((rv = attrs_put_template(r.req, pTemplate, ulAttributeCount, true)) != CKR_OK) {
		rpc_end(&r);
		return rv;
	}
	return call_u32(&r, phKey);
}

CK_RV
C_DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hBaseKey,
	    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
	struct rpc r;
	if (pMechanism == NULL || phKey == NULL || (pTemplate == NULL && ulAttributeCount))
		return mod_bad_args();
	CK_RV rv = begin_session(&r, MSG_DERIVE_KEY, hSession);
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
	if ((rv = attrs_put_template(r.req, pTemplate, ulAttributeCount, true)) != CKR_OK) {
		rpc_end(&r);
		return rv;
	}
	return call_u32(&r, phKey);
}
