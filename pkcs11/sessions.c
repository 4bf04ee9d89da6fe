/*
 * sessions.c - session management: open, close, state, login and logout
 * (PKCS#11 2.40 section 5.6).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "module.h"

CK_RV
C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify,
	      CK_SESSION_HANDLE_PTR phSession)
{
	struct rpc r;
	uint32_t h = 0;
	(void)pApplication;
	(void)Notify; /* no callbacks: keymgrd never surrenders a session */
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (phSession == NULL)
		return CKR_ARGUMENTS_BAD;
	if (!fits_u32(slotID))
		return CKR_SLOT_ID_INVALID;
	if (!(flags & CKF_SERIAL_SESSION))
		return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
	if ((rv = rpc_begin(&r, MSG_OPEN_SESSION, CKR_TOKEN_NOT_PRESENT)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)slotID);
	wire_put_u32(r.req, (uint32_t)(flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION)));
	if ((rv = rpc_call(&r)) == CKR_OK) {
		wire_get_u32(r.rep, &h);
		if ((rv = rpc_check(&r)) == CKR_OK) {
			*phSession = h;
			slots_note_session(slotID, (flags & CKF_RW_SESSION) != 0);
		}
	}
	rpc_end(&r);
	return rv;
}

CK_RV
C_CloseSession(CK_SESSION_HANDLE hSession)
{
	struct rpc r;
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (!fits_u32(hSession))
		return CKR_SESSION_HANDLE_INVALID;
	digest_forget(hSession);
	defer_forget_session(hSession);
	slots_forget_snapshot(); /* its token's session count */
	if ((rv = rpc_begin(&r, MSG_CLOSE_SESSION, CKR_DEVICE_ERROR)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)hSession);
	return rpc_call_none(&r);
}

CK_RV
C_CloseAllSessions(CK_SLOT_ID slotID)
{
	struct rpc r;
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (!fits_u32(slotID))
		return CKR_SLOT_ID_INVALID;
	if ((rv = rpc_begin(&r, MSG_CLOSE_ALL, CKR_TOKEN_NOT_PRESENT)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)slotID);
	rv = rpc_call_none(&r);
	if (rv == CKR_OK) {
		digest_forget_all();
		defer_forget_all();
	}
	slots_forget_snapshot();
	return rv;
}

CK_RV
C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
	return rpc_session_info(hSession, pInfo);
}


CK_RV
C_GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pState, CK_ULONG_PTR pulLen)
{
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pulLen == NULL)
		return CKR_ARGUMENTS_BAD;
	return digest_get_state(hSession, pState, pulLen);
}

CK_RV
C_SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pState, CK_ULONG ulLen,
		    CK_OBJECT_HANDLE hEnc, CK_OBJECT_HANDLE hAuth)
{
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pState == NULL)
		return CKR_ARGUMENTS_BAD;
	if (hEnc != CK_INVALID_HANDLE || hAuth != CK_INVALID_HANDLE)
		return CKR_KEY_NOT_NEEDED; /* a digest's state needs no key */
	return digest_set_state(hSession, pState, ulLen);
}

CK_RV
C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
	struct rpc r;
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pPin == NULL && ulPinLen != 0)
		return CKR_ARGUMENTS_BAD;
	if (!fits_u32(hSession))
		return CKR_SESSION_HANDLE_INVALID;
	if (!fits_u32(userType))
		return CKR_USER_TYPE_INVALID;
	if (ulPinLen > 4096)
		return CKR_PIN_LEN_RANGE;
	/* The token's flags may change (a PIN count low, locked, to change). */
	slots_forget_snapshot();
	if ((rv = rpc_begin(&r, MSG_LOGIN, CKR_DEVICE_ERROR)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)hSession);
	wire_put_u32(r.req, (uint32_t)userType);
	wire_put_bytes(r.req, pPin, ulPinLen);
	return rpc_call_none(&r);
}

/*
 * A coyeu token has one user and one SO, so a user name selects nothing:
 * C_LoginUser is C_Login, whatever name is given (see docs/conformance.md).
 */
CK_RV
C_LoginUser(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen,
	    CK_UTF8CHAR_PTR pUsername, CK_ULONG ulUsernameLen)
{
	if (pUsername == NULL && ulUsernameLen != 0)
		return mod_bad_args();
	return C_Login(hSession, userType, pPin, ulPinLen);
}

CK_RV
C_SessionCancel(CK_SESSION_HANDLE hSession, CK_FLAGS flags)
{
	CK_RV rv = rpc_session_cancel(hSession, flags);
	/* Digests live here, not in keymgrd. */
	if (rv == CKR_OK && (flags & CKF_DIGEST))
		digest_forget(hSession);
	if (rv == CKR_OK && (flags & CKF_SIGN))
		defer_set_state(hSession, OP_SIGN, DEFER_NONE);
	if (rv == CKR_OK && (flags & CKF_VERIFY))
		defer_set_state(hSession, OP_VERIFY, DEFER_NONE);
	return rv;
}

CK_RV
C_Logout(CK_SESSION_HANDLE hSession)
{
	struct rpc r;
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (!fits_u32(hSession))
		return CKR_SESSION_HANDLE_INVALID;
	/* Private keys are out of sight now: nothing known of them holds. */
	defer_forget_keys();
	slots_forget_snapshot();
	if ((rv = rpc_begin(&r, MSG_LOGOUT, CKR_DEVICE_ERROR)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)hSession);
	return rpc_call_none(&r);
}

CK_RV
C_GetFunctionStatus(CK_SESSION_HANDLE hSession)
{
	(void)hSession;
	CK_RV rv = mod_ready();
	return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_PARALLEL;
}

CK_RV
C_CancelFunction(CK_SESSION_HANDLE hSession)
{
	(void)hSession;
	CK_RV rv = mod_ready();
	return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_PARALLEL;
}
