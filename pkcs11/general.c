/*
 * general.c - C_Initialize, C_Finalize, C_GetInfo and the function lists
 * and interfaces (PKCS#11 2.40 section 5.4, 3.0 section 5.4).
 */
#include "config.h"

#include <stdlib.h>
#include <pthread.h>
#include <string.h>

#include "module.h"

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



/*
 * Fork: C_Initialize records the pid. In a child every call answers
 * CKR_CRYPTOKI_NOT_INITIALIZED until the child calls C_Initialize, which
 * drops the inherited connections without a word on them (they are the
 * parent's) and picks a new application id, so the child never shares
 * the parent's sessions or connections.
 */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

CK_RV
C_Initialize(CK_VOID_PTR pInitArgs)
{
	CK_RV rv = check_init_args(pInitArgs);
	if (rv != CKR_OK)
		return rv;
	pthread_mutex_lock(&init_lock);
	enum mod_state st = mod_state();
	if (st == MOD_HERE) {
		rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
	} else {
		if (st == MOD_PARENT) {
			rpc_child_reset();
			digest_child_reset();
			defer_child_reset();
			message_child_reset();
			slots_child_reset();
			lazy_child_reset();
			view_child_reset();
			slots_forget_snapshot();
		}
		rv = digest_init_lib() ? rpc_start() : CKR_GENERAL_ERROR;
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
		slots_cancel_waits();
		rpc_stop();
		digest_forget_all();
		defer_forget_all();
		message_forget(0);
		view_forget_all();
		lazy_reset();
		slots_forget_events();
		slots_forget_snapshot();
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
	{ (CK_CHAR *)"PKCS 11", &function_list_3_0, 0 },
	{ (CK_CHAR *)"PKCS 11", &function_list, 0 },
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
