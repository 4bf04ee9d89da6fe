/*
 * module.c - coyeu-pkcs11.so: initialisation, the connection pool, and the
 * general, slot, token and session functions.
 *
 * Threads: each call borrows a connection from a small pool (its own
 * mutex, held only to pop or push), so calls from many threads run in
 * parallel on separate connections; the daemon keeps sessions and login
 * state per application, so every pooled connection sees the same ones.
 *
 * Fork: C_Initialize records the pid. In a child every call answers
 * CKR_CRYPTOKI_NOT_INITIALIZED until the child calls C_Initialize, which
 * drops the inherited connections without a word on them (they are the
 * parent's) and picks a new application id, so the child never shares
 * the parent's sessions or connections.
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <gcrypt.h>

#include "module.h"
#include "paths.h"

#define POOL_MAX 16

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

static struct {
	bool initialized;
	pid_t pid;
	uint8_t app_id[PROTO_APP_ID_LEN];
	char socket[PATH_MAX];
	struct cy_conn *idle[POOL_MAX];
	size_t nidle;
} mod;

CK_RV
mod_ready(void)
{
	if (!__atomic_load_n(&mod.initialized, __ATOMIC_ACQUIRE) || mod.pid != getpid())
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	return CKR_OK;
}

void
pad_field(unsigned char *dst, size_t n, const char *src)
{
	size_t len = strlen(src);
	memset(dst, ' ', n);
	memcpy(dst, src, len < n ? len : n);
}

/* ---- the pool ---- */

static struct cy_conn *
pool_get(void)
{
	struct cy_conn *c = NULL;
	pthread_mutex_lock(&pool_lock);
	while (mod.nidle > 0 && c == NULL) {
		c = mod.idle[--mod.nidle];
		if (client_is_stale(c)) {
			/* keymgrd went away (or restarted) since the last call. */
			client_close(c);
			c = NULL;
		}
	}
	pthread_mutex_unlock(&pool_lock);
	if (c == NULL && client_open(mod.socket, mod.app_id, &c) != 0)
		c = NULL;
	return c;
}

static void
pool_put(struct cy_conn *c)
{
	pthread_mutex_lock(&pool_lock);
	if (mod.nidle < POOL_MAX && mod.pid == getpid()) {
		mod.idle[mod.nidle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&pool_lock);
	client_close(c);
}

static void
pool_drop_all(void)
{
	pthread_mutex_lock(&pool_lock);
	for (size_t i = 0; i < mod.nidle; i++)
		client_close(mod.idle[i]);
	mod.nidle = 0;
	pthread_mutex_unlock(&pool_lock);
}

CK_RV
rpc_begin(struct rpc *r, uint32_t type, CK_RV down_rv)
{
	memset(r, 0, sizeof(*r));
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if ((r->c = pool_get()) == NULL)
		return down_rv;
	r->req = client_begin(r->c, type);
	r->rep = &r->c->rep;
	return CKR_OK;
}

CK_RV
rpc_call(struct rpc *r)
{
	uint32_t rv;
	if (wire_error(r->req) != 0) {
		/* Our own request did not fit; the connection is still fine. */
		return CKR_ARGUMENTS_BAD;
	}
	if (client_call(r->c, &rv) != 0) {
		r->broken = true;
		return CKR_DEVICE_ERROR;
	}
	return rv;
}

CK_RV
rpc_check(struct rpc *r)
{
	if (wire_error(r->rep) != 0) {
		r->broken = true;
		return CKR_DEVICE_ERROR;
	}
	return CKR_OK;
}

void
rpc_end(struct rpc *r)
{
	if (r->c == NULL)
		return;
	if (r->broken)
		client_close(r->c);
	else
		pool_put(r->c);
	r->c = NULL;
}

/* ---- general ---- */

static CK_RV
check_init_args(const CK_C_INITIALIZE_ARGS *a)
{
	if (a == NULL)
		return CKR_OK;
	if (a->pReserved != NULL)
		return CKR_ARGUMENTS_BAD;
	int fns = (a->CreateMutex != NULL) + (a->DestroyMutex != NULL) + (a->LockMutex != NULL) +
		  (a->UnlockMutex != NULL);
	if (fns != 0 && fns != 4)
		return CKR_ARGUMENTS_BAD;
	/* We lock with pthreads; an application that insists on its own
	 * mutex functions (no CKF_OS_LOCKING_OK) cannot be served. */
	if (fns == 4 && !(a->flags & CKF_OS_LOCKING_OK))
		return CKR_CANT_LOCK;
	return CKR_OK;
}

CK_RV
C_Initialize(CK_VOID_PTR pInitArgs)
{
	CK_RV rv = check_init_args(pInitArgs);
	if (rv != CKR_OK)
		return rv;
	pthread_mutex_lock(&init_lock);
	if (mod.initialized && mod.pid == getpid()) {
		pthread_mutex_unlock(&init_lock);
		return CKR_CRYPTOKI_ALREADY_INITIALIZED;
	}
	if (mod.initialized) {
		/* A forked child: the inherited sockets are the parent's, and
		 * the pool's lock may have been held by a thread that did not
		 * come along, so it starts afresh. */
		pthread_mutex_init(&pool_lock, NULL);
		pool_drop_all();
		digest_child_reset();
	}
	rv = CKR_OK;
	if (!digest_init_lib())
		rv = CKR_GENERAL_ERROR;
	else if (paths_client_socket(mod.socket, sizeof(mod.socket)) != 0)
		rv = CKR_GENERAL_ERROR;
	if (rv == CKR_OK) {
		gcry_create_nonce(mod.app_id, sizeof(mod.app_id));
		mod.pid = getpid();
		__atomic_store_n(&mod.initialized, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&init_lock);
	return rv;
}

CK_RV
C_Finalize(CK_VOID_PTR pReserved)
{
	if (pReserved != NULL)
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock(&init_lock);
	CK_RV rv = mod_ready();
	if (rv == CKR_OK) {
		__atomic_store_n(&mod.initialized, false, __ATOMIC_RELEASE);
		/* Closing our connections ends our sessions in keymgrd. */
		pool_drop_all();
		digest_forget_all();
	}
	pthread_mutex_unlock(&init_lock);
	return rv;
}

CK_RV
C_GetInfo(CK_INFO_PTR pInfo)
{
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pInfo == NULL)
		return CKR_ARGUMENTS_BAD;
	memset(pInfo, 0, sizeof(*pInfo));
	pInfo->cryptokiVersion.major = 2;
	pInfo->cryptokiVersion.minor = 40;
	pad_field(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), "coyeu");
	pad_field(pInfo->libraryDescription, sizeof(pInfo->libraryDescription), "coyeu PKCS#11 module");
	pInfo->libraryVersion.major = 0;
	pInfo->libraryVersion.minor = 1;
	return CKR_OK;
}

/* ---- slots and tokens ---- */

CK_RV
C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount)
{
	struct rpc r;
	uint32_t n = 0;
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pulCount == NULL)
		return CKR_ARGUMENTS_BAD;
	rv = rpc_begin(&r, MSG_SLOT_LIST, CKR_TOKEN_NOT_PRESENT);
	if (rv == CKR_TOKEN_NOT_PRESENT) {
		/* No daemon: no slots, as a reader with nothing plugged in. */
		*pulCount = 0;
		return CKR_OK;
	}
	if (rv != CKR_OK)
		return rv;
	wire_put_u8(r.req, tokenPresent != CK_FALSE);
	if ((rv = rpc_call(&r)) != CKR_OK)
		goto out;
	wire_get_u32(r.rep, &n);
	if ((rv = rpc_check(&r)) != CKR_OK)
		goto out;
	if (pSlotList == NULL) {
		*pulCount = n;
		goto out;
	}
	if (*pulCount < n) {
		*pulCount = n;
		rv = CKR_BUFFER_TOO_SMALL;
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t id = 0;
		wire_get_u32(r.rep, &id);
		pSlotList[i] = id;
	}
	*pulCount = n;
	rv = rpc_check(&r);
out:
	rpc_end(&r);
	return rv;
}

CK_RV
C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
	struct rpc r;
	char desc[65], manuf[33];
	uint32_t flags = 0;
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pInfo == NULL)
		return CKR_ARGUMENTS_BAD;
	if (!fits_u32(slotID))
		return CKR_SLOT_ID_INVALID;
	if ((rv = rpc_begin(&r, MSG_SLOT_INFO, CKR_SLOT_ID_INVALID)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)slotID);
	if ((rv = rpc_call(&r)) == CKR_OK) {
		wire_get_str_into(r.rep, desc, sizeof(desc));
		wire_get_str_into(r.rep, manuf, sizeof(manuf));
		wire_get_u32(r.rep, &flags);
		if ((rv = rpc_check(&r)) == CKR_OK) {
			memset(pInfo, 0, sizeof(*pInfo));
			pad_field(pInfo->slotDescription, sizeof(pInfo->slotDescription), desc);
			pad_field(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), manuf);
			pInfo->flags = flags;
			pInfo->firmwareVersion.minor = 1;
		}
	}
	rpc_end(&r);
	return rv;
}

CK_RV
C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
	struct rpc r;
	char label[33], manuf[33], model[17], serial[17];
	uint32_t v[7] = { 0 };
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pInfo == NULL)
		return CKR_ARGUMENTS_BAD;
	if (!fits_u32(slotID))
		return CKR_SLOT_ID_INVALID;
	if ((rv = rpc_begin(&r, MSG_TOKEN_INFO, CKR_TOKEN_NOT_PRESENT)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)slotID);
	if ((rv = rpc_call(&r)) == CKR_OK) {
		wire_get_str_into(r.rep, label, sizeof(label));
		wire_get_str_into(r.rep, manuf, sizeof(manuf));
		wire_get_str_into(r.rep, model, sizeof(model));
		wire_get_str_into(r.rep, serial, sizeof(serial));
		for (int i = 0; i < 7; i++)
			wire_get_u32(r.rep, &v[i]);
		if ((rv = rpc_check(&r)) == CKR_OK) {
			memset(pInfo, 0, sizeof(*pInfo));
			pad_field(pInfo->label, sizeof(pInfo->label), label);
			pad_field(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), manuf);
			pad_field(pInfo->model, sizeof(pInfo->model), model);
			pad_field(pInfo->serialNumber, sizeof(pInfo->serialNumber), serial);
			pInfo->flags = v[0];
			pInfo->ulSessionCount = v[1];
			pInfo->ulRwSessionCount = v[2];
			pInfo->ulMinPinLen = v[3];
			pInfo->ulMaxPinLen = v[4];
			pInfo->firmwareVersion.major = (CK_BYTE)v[5];
			pInfo->firmwareVersion.minor = (CK_BYTE)v[6];
			pInfo->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
			pInfo->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
			pInfo->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
			pInfo->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
			pInfo->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
			pInfo->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
			pad_field(pInfo->utcTime, sizeof(pInfo->utcTime), "");
		}
	}
	rpc_end(&r);
	return rv;
}

CK_RV
C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved)
{
	(void)flags; (void)pSlot; (void)pReserved;
	CK_RV rv = mod_ready();
	return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList, CK_ULONG_PTR pulCount)
{
	struct rpc r;
	uint32_t n = 0;
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pulCount == NULL)
		return CKR_ARGUMENTS_BAD;
	if (!fits_u32(slotID))
		return CKR_SLOT_ID_INVALID;
	if ((rv = rpc_begin(&r, MSG_MECH_LIST, CKR_TOKEN_NOT_PRESENT)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)slotID);
	if ((rv = rpc_call(&r)) != CKR_OK)
		goto out;
	wire_get_u32(r.rep, &n);
	if ((rv = rpc_check(&r)) != CKR_OK)
		goto out;
	if (pMechanismList != NULL && *pulCount < n)
		rv = CKR_BUFFER_TOO_SMALL;
	else if (pMechanismList != NULL)
		for (uint32_t i = 0; i < n; i++) {
			uint32_t m = 0;
			wire_get_u32(r.rep, &m);
			pMechanismList[i] = m;
		}
	*pulCount = n;
	if (rv == CKR_OK)
		rv = rpc_check(&r);
out:
	rpc_end(&r);
	return rv;
}

CK_RV
C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo)
{
	struct rpc r;
	uint32_t v[3] = { 0 };
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pInfo == NULL)
		return CKR_ARGUMENTS_BAD;
	if (!fits_u32(slotID))
		return CKR_SLOT_ID_INVALID;
	if (!fits_u32(type))
		return CKR_MECHANISM_INVALID;
	if ((rv = rpc_begin(&r, MSG_MECH_INFO, CKR_TOKEN_NOT_PRESENT)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)slotID);
	wire_put_u32(r.req, (uint32_t)type);
	if ((rv = rpc_call(&r)) == CKR_OK) {
		for (int i = 0; i < 3; i++)
			wire_get_u32(r.rep, &v[i]);
		if ((rv = rpc_check(&r)) == CKR_OK) {
			pInfo->ulMinKeySize = v[0];
			pInfo->ulMaxKeySize = v[1];
			pInfo->flags = v[2];
		}
	}
	rpc_end(&r);
	return rv;
}

/* A request whose reply has no fields; begin/call/end in one. */
static CK_RV
simple_call(struct rpc *r)
{
	CK_RV rv = rpc_call(r);
	rpc_end(r);
	return rv;
}

CK_RV
C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel)
{
	struct rpc r;
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pLabel == NULL || (pPin == NULL && ulPinLen != 0))
		return CKR_ARGUMENTS_BAD;
	if (!fits_u32(slotID))
		return CKR_SLOT_ID_INVALID;
	if (ulPinLen > 4096)
		return CKR_PIN_LEN_RANGE;
	/* The label is 32 blank-padded bytes; the daemon keeps it unpadded. */
	size_t ll = 32;
	while (ll > 0 && (pLabel[ll - 1] == ' ' || pLabel[ll - 1] == '\0'))
		ll--;
	for (size_t i = 0; i < ll; i++)
		if (pLabel[i] == '\0') {
			ll = i;
			break;
		}
	if ((rv = rpc_begin(&r, MSG_INIT_TOKEN, CKR_TOKEN_NOT_PRESENT)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)slotID);
	wire_put_bytes(r.req, pPin, ulPinLen);
	wire_put_bytes(r.req, pLabel, ll);
	return simple_call(&r);
}

CK_RV
C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
	struct rpc r;
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pPin == NULL && ulPinLen != 0)
		return CKR_ARGUMENTS_BAD;
	if (!fits_u32(hSession))
		return CKR_SESSION_HANDLE_INVALID;
	if (ulPinLen > 4096)
		return CKR_PIN_LEN_RANGE;
	if ((rv = rpc_begin(&r, MSG_INIT_PIN, CKR_DEVICE_ERROR)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)hSession);
	wire_put_bytes(r.req, pPin, ulPinLen);
	return simple_call(&r);
}

CK_RV
C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen,
	 CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen)
{
	struct rpc r;
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if ((pOldPin == NULL && ulOldLen) || (pNewPin == NULL && ulNewLen))
		return CKR_ARGUMENTS_BAD;
	if (!fits_u32(hSession))
		return CKR_SESSION_HANDLE_INVALID;
	if (ulOldLen > 4096 || ulNewLen > 4096)
		return CKR_PIN_LEN_RANGE;
	if ((rv = rpc_begin(&r, MSG_SET_PIN, CKR_DEVICE_ERROR)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)hSession);
	wire_put_bytes(r.req, pOldPin, ulOldLen);
	wire_put_bytes(r.req, pNewPin, ulNewLen);
	return simple_call(&r);
}

/* ---- sessions ---- */

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
		if ((rv = rpc_check(&r)) == CKR_OK)
			*phSession = h;
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
	if ((rv = rpc_begin(&r, MSG_CLOSE_SESSION, CKR_DEVICE_ERROR)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)hSession);
	return simple_call(&r);
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
	rv = simple_call(&r);
	if (rv == CKR_OK)
		digest_forget_all();
	return rv;
}

CK_RV
C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
	struct rpc r;
	uint32_t v[3] = { 0 };
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pInfo == NULL)
		return CKR_ARGUMENTS_BAD;
	if (!fits_u32(hSession))
		return CKR_SESSION_HANDLE_INVALID;
	if ((rv = rpc_begin(&r, MSG_SESSION_INFO, CKR_DEVICE_ERROR)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)hSession);
	if ((rv = rpc_call(&r)) == CKR_OK) {
		for (int i = 0; i < 3; i++)
			wire_get_u32(r.rep, &v[i]);
		if ((rv = rpc_check(&r)) == CKR_OK) {
			pInfo->slotID = v[0];
			pInfo->state = v[1];
			pInfo->flags = v[2];
			pInfo->ulDeviceError = 0;
		}
	}
	rpc_end(&r);
	return rv;
}

CK_RV
C_GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pState, CK_ULONG_PTR pulLen)
{
	(void)hSession; (void)pState; (void)pulLen;
	CK_RV rv = mod_ready();
	return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
C_SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pState, CK_ULONG ulLen,
		    CK_OBJECT_HANDLE hEnc, CK_OBJECT_HANDLE hAuth)
{
	(void)hSession; (void)pState; (void)ulLen; (void)hEnc; (void)hAuth;
	CK_RV rv = mod_ready();
	return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
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
	if ((rv = rpc_begin(&r, MSG_LOGIN, CKR_DEVICE_ERROR)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)hSession);
	wire_put_u32(r.req, (uint32_t)userType);
	wire_put_bytes(r.req, pPin, ulPinLen);
	return simple_call(&r);
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
	struct rpc r;
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (!fits_u32(hSession))
		return CKR_SESSION_HANDLE_INVALID;
	if ((rv = rpc_begin(&r, MSG_SESSION_CANCEL, CKR_DEVICE_ERROR)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)hSession);
	wire_put_u32(r.req, (uint32_t)flags);
	rv = simple_call(&r);
	/* Digests live here, not in keymgrd. */
	if (rv == CKR_OK && (flags & CKF_DIGEST))
		digest_forget(hSession);
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
	if ((rv = rpc_begin(&r, MSG_LOGOUT, CKR_DEVICE_ERROR)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)hSession);
	return simple_call(&r);
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

/* ---- the function list ---- */

/* The prototypes come from pkcs11.h (and cy_pkcs11.h for 3.0); the
 * version script exports only the entry points. */
#define ENTRY(name) name,
#define ENTRY_3_0(name, args) name,
static CK_FUNCTION_LIST function_list = {
	{ 2, 40 },
	CY_2_40_FUNCTIONS(ENTRY)
};

static CK_FUNCTION_LIST_3_0 function_list_3_0 = {
	{ 3, 0 },
	CY_2_40_FUNCTIONS(ENTRY)
	CY_3_0_FUNCTIONS(ENTRY_3_0)
};
#undef ENTRY
#undef ENTRY_3_0

static CK_INTERFACE interfaces[] = {
	{ (CK_CHAR *)"PKCS 11", &function_list_3_0, CKF_INTERFACE_FORK_SAFE },
	{ (CK_CHAR *)"PKCS 11", &function_list, CKF_INTERFACE_FORK_SAFE },
};
#define NINTERFACES (sizeof(interfaces) / sizeof(interfaces[0]))

CK_RV
C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount)
{
	if (pulCount == NULL)
		return CKR_ARGUMENTS_BAD;
	if (pInterfacesList == NULL) {
		*pulCount = NINTERFACES;
		return CKR_OK;
	}
	if (*pulCount < NINTERFACES) {
		*pulCount = NINTERFACES;
		return CKR_BUFFER_TOO_SMALL;
	}
	memcpy(pInterfacesList, interfaces, sizeof(interfaces));
	*pulCount = NINTERFACES;
	return CKR_OK;
}

CK_RV
C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion, CK_INTERFACE_PTR_PTR ppInterface,
	       CK_FLAGS flags)
{
	if (ppInterface == NULL)
		return CKR_ARGUMENTS_BAD;
	/* The first that matches: 3.0 unless a version says otherwise. */
	for (size_t i = 0; i < NINTERFACES; i++) {
		const CK_VERSION *v = interfaces[i].pFunctionList;
		if (pInterfaceName != NULL && strcmp((const char *)pInterfaceName,
						     (const char *)interfaces[i].pInterfaceName) != 0)
			continue;
		if (pVersion != NULL && (pVersion->major != v->major || pVersion->minor != v->minor))
			continue;
		if ((interfaces[i].flags & flags) != flags)
			continue;
		*ppInterface = &interfaces[i];
		return CKR_OK;
	}
	return CKR_ARGUMENTS_BAD;
}

CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
	if (ppFunctionList == NULL)
		return CKR_ARGUMENTS_BAD;
	*ppFunctionList = &function_list;
	return CKR_OK;
}
