/*
 * objects.c - object management (PKCS#11 2.40 section 5.7): create, copy,
 * destroy, attributes (searches: view.c). Each is one request to keymgrd;
 * templates travel through attrs.c.
 */
#include "config.h"

#include <string.h>

#include "mech.h"
#include "attr.h"
#include "module.h"




CK_RV
C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
	       CK_OBJECT_HANDLE_PTR phObject)
{
	struct rpc r;
	if (phObject == NULL || (pTemplate == NULL && ulCount))
		return mod_bad_args();
	CK_RV rv = rpc_begin_session(&r, MSG_CREATE_OBJECT, hSession);
	if (rv != CKR_OK)
		return rv;
	if ((rv = attr_put_template(r.req, pTemplate, ulCount, true)) != CKR_OK) {
		rpc_end(&r);
		return rv;
	}
	return rpc_call_u32(&r, phObject);
}

CK_RV
C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
	     CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phNewObject)
{
	struct rpc r;
	if (phNewObject == NULL || (pTemplate == NULL && ulCount))
		return mod_bad_args();
	CK_RV rv = rpc_begin_session(&r, MSG_COPY_OBJECT, hSession);
	if (rv != CKR_OK)
		return rv;
	if (!fits_u32(hObject)) {
		rpc_end(&r);
		return CKR_OBJECT_HANDLE_INVALID;
	}
	wire_put_u32(r.req, (uint32_t)hObject);
	if ((rv = attr_put_template(r.req, pTemplate, ulCount, true)) != CKR_OK) {
		rpc_end(&r);
		return rv;
	}
	return rpc_call_u32(&r, phNewObject);
}

CK_RV
C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
	struct rpc r;
	CK_RV rv = rpc_begin_session(&r, MSG_DESTROY_OBJECT, hSession);
	if (rv != CKR_OK)
		return rv;
	if (!fits_u32(hObject)) {
		rpc_end(&r);
		return CKR_OBJECT_HANDLE_INVALID;
	}
	wire_put_u32(r.req, (uint32_t)hObject);
	defer_forget_object(hObject);
	return rpc_call_none(&r);
}

CK_RV
C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize)
{
	struct rpc r;
	uint64_t size = 0;
	if (pulSize == NULL)
		return mod_bad_args();
	CK_RV rv = rpc_begin_session(&r, MSG_OBJECT_SIZE, hSession);
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
	/* Whether a private key needs its PIN for each use is asked before
	 * signing (pkcs11-tool, libp11): a key found with a summary that
	 * lets it start an operation does not (defer.c), so that is answered
	 * here, without a round trip. */
	if (mod_ready() == CKR_OK && ulCount == 1 && pTemplate != NULL &&
	    pTemplate[0].type == CKA_ALWAYS_AUTHENTICATE && defer_plain_private_key(hSession, hObject)) {
		if (pTemplate[0].pValue != NULL && pTemplate[0].ulValueLen < sizeof(CK_BBOOL)) {
			pTemplate[0].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			return CKR_BUFFER_TOO_SMALL;
		}
		if (pTemplate[0].pValue != NULL)
			*(CK_BBOOL *)pTemplate[0].pValue = CK_FALSE;
		pTemplate[0].ulValueLen = sizeof(CK_BBOOL);
		return CKR_OK;
	}
	return objects_get_attrs(hSession, hObject, pTemplate, ulCount);
}

CK_RV
objects_get_attrs(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE *pTemplate,
		  CK_ULONG ulCount)
{
	struct rpc r;
	if (pTemplate == NULL && ulCount)
		return mod_bad_args();
	if (ulCount > PROTO_MAX_LIST)
		return mod_bad_args();
	CK_RV rv = rpc_begin_session(&r, MSG_GET_ATTRS, hSession);
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
	CK_RV rv = rpc_begin_session(&r, MSG_SET_ATTRS, hSession);
	if (rv != CKR_OK)
		return rv;
	if (!fits_u32(hObject)) {
		rpc_end(&r);
		return CKR_OBJECT_HANDLE_INVALID;
	}
	wire_put_u32(r.req, (uint32_t)hObject);
	if ((rv = attr_put_template(r.req, pTemplate, ulCount, true)) != CKR_OK) {
		rpc_end(&r);
		return rv;
	}
	defer_forget_object(hObject);
	return rpc_call_none(&r);
}
