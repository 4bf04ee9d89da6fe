/*
 * sessions.c - session management: open, close, state, login and logout
 * (PKCS#11 2.40 section 5.6).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "module.h"

/* Whether C_OpenSession may answer for keymgrd (lazy.c): everything it
 * would check is known here and says yes. */
static bool
may_open_lazily(CK_SLOT_ID slot, CK_FLAGS flags)
{
	CK_FLAGS tf;
	uint32_t max = rpc_max_sessions();
	if (!rpc_remote() || max == 0 || lazy_count() >= max || !slots_token_flags(slot, &tf))
		return false;
	if (!(tf & CKF_TOKEN_INITIALIZED) || ((flags & CKF_RW_SESSION) && (tf & CKF_WRITE_PROTECTED)))
		return false;
	return (flags & CKF_RW_SESSION) || !lazy_so_seen();
}

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
	uint32_t want = rpc_new_handle(), fl = (uint32_t)(flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION));
	bool rw = (flags & CKF_RW_SESSION) != 0;
	/* Remote, every session of the application is known here (some not
	 * yet opened in keymgrd): its limit is applied here, as keymgrd would. */
	uint32_t max = rpc_max_sessions();
	if (rpc_remote() && max != 0 && lazy_count() >= max)
		return CKR_SESSION_COUNT;
	if (may_open_lazily(slotID, flags)) {
		/* Opened in keymgrd with the session's first request. */
		if ((rv = lazy_add(want, (uint32_t)slotID, fl, true)) == CKR_OK) {
			*phSession = want;
			slots_note_session(slotID, rw, 1);
		}
		return rv;
	}
	if ((rv = lazy_add(want, (uint32_t)slotID, fl, false)) != CKR_OK)
		return rv;
	if ((rv = rpc_begin(&r, MSG_OPEN_SESSION, CKR_TOKEN_NOT_PRESENT)) != CKR_OK) {
		lazy_forget(want);
		return rv;
	}
	wire_put_u32(r.req, (uint32_t)slotID);
	wire_put_u32(r.req, fl);
	wire_put_u32(r.req, want);
	if ((rv = rpc_call(&r)) == CKR_OK) {
		wire_get_u32(r.rep, &h);
		if ((rv = rpc_check(&r)) == CKR_OK && h != want)
			rv = CKR_DEVICE_ERROR; /* a keymgrd that chose its own */
		if (rv == CKR_OK) {
			*phSession = h;
			slots_note_session(slotID, rw, 1);
		}
	}
	if (rv != CKR_OK)
		lazy_forget(want);
	rpc_end(&r);
	return rv;
}

/* Forgets what the module keeps of session h. */
static void
forget_session(CK_SESSION_HANDLE h)
{
	digest_forget(h);
	defer_forget_session(h);
	message_forget(h);
	view_forget_session(h);
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
	forget_session(hSession);
	CK_SLOT_ID slot;
	CK_FLAGS fl;
	/* (Its token's session count; a handle not known here is no
	 * session of this application's.) */
	if (lazy_session_of((uint32_t)hSession, &slot, &fl))
		slots_note_session(slot, (fl & CKF_RW_SESSION) != 0, -1);
	/* Remote: sent with the next request, or never (BYE at C_Finalize). */
	switch (lazy_close((uint32_t)hSession, rpc_remote())) {
	case LAZY_UNKNOWN:
		return CKR_SESSION_HANDLE_INVALID;
	case LAZY_DROPPED:
	case LAZY_KEPT:
		return CKR_OK;
	case LAZY_SEND:
		break;
	}
	if ((rv = rpc_begin_session(&r, MSG_CLOSE_SESSION, hSession)) != CKR_OK)
		return rv;
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
		uint32_t *hs;
		size_t n;
		lazy_close_slot(slotID, &hs, &n);
		for (size_t i = 0; i < n; i++)
			forget_session(hs[i]);
		if (hs == NULL) {
			digest_forget_all();
			defer_forget_all();
			message_forget(0);
			view_forget_all();
		}
		free(hs);
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
	view_forget();
	if ((rv = rpc_begin_session(&r, MSG_LOGIN, hSession)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)userType);
	wire_put_bytes(r.req, pPin, ulPinLen);
	CK_SLOT_ID slot;
	if ((rv = rpc_call(&r)) == CKR_OK) {
		if (userType == CKU_SO)
			lazy_note_so();
		/* What a search would find now (view.c), when remote. */
		if (rpc_remote() && userType == CKU_USER && lazy_slot_of((uint32_t)hSession, &slot))
			view_take(slot, r.rep);
	}
	rpc_end(&r);
	return rv;
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
	if (rv == CKR_OK && (flags & CKF_FIND_OBJECTS))
		view_end_search(hSession);
	if (rv == CKR_OK)
		message_cancel(hSession, flags);
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
	/* Private keys are out of sight now: nothing known of them holds
	 * (rpc_begin_session forgets the lists of objects too). */
	defer_forget_keys();
	slots_forget_snapshot();
	if ((rv = rpc_begin_session(&r, MSG_LOGOUT, hSession)) != CKR_OK)
		return rv;
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
