/*
 * check_module.c - coyeu-pkcs11.so against a keymgrd running in this
 * process: the module's client stubs go through a real socket into the
 * daemon's dispatcher. Each test gets a fresh daemon and a fresh module
 * (Check forks per test).
 */
#include "config.h"

#include <check.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <gcrypt.h>

#include "client.h"
#include "frame.h"
#include "cy_err.h"
#include "crypto/pin.h"
#include "testutil.h"

static struct tu_daemon *d;
static void *lib;
static CK_FUNCTION_LIST_PTR f;
static CK_SLOT_ID slot = 1;
static const char *SO = "12345678", *USER = "1234";

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

static void
load_module(void)
{
	const char *path = getenv("COYEU_MODULE");
	ck_assert_msg(path != NULL, "COYEU_MODULE is not set");
	lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	ck_assert_msg(lib != NULL, "dlopen: %s", dlerror());
	CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	ck_assert_ptr_nonnull(get);
	ck_assert_uint_eq(get(&f), CKR_OK);
	ck_assert_uint_eq(f->version.major, 2);
	/* Only the entry point is exported. */
	ck_assert_ptr_null(dlsym(lib, "C_Initialize"));
	ck_assert_ptr_null(dlsym(lib, "wire_put_u32"));
}

static void
setup(void)
{
	tu_init_gcrypt();
	d = tu_daemon_open(true);
	setenv("COYEU_SOCKET", d->sock, 1);
	load_module();
}

static void
setup_init(void)
{
	setup();
	ck_assert_uint_eq(f->C_Initialize(NULL), CKR_OK);
}

static void
teardown(void)
{
	if (f)
		f->C_Finalize(NULL);
	tu_daemon_close(d);
	d = NULL;
}

static CK_SESSION_HANDLE
new_token_session(bool login)
{
	CK_SESSION_HANDLE h;
	CK_UTF8CHAR label[32];
	memset(label, ' ', sizeof(label));
	memcpy(label, "test token", 10);
	ck_assert_uint_eq(f->C_InitToken(slot, (CK_UTF8CHAR_PTR)SO, strlen(SO), label), CKR_OK);
	ck_assert_uint_eq(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h), CKR_OK);
	ck_assert_uint_eq(f->C_Login(h, CKU_SO, (CK_UTF8CHAR_PTR)SO, strlen(SO)), CKR_OK);
	ck_assert_uint_eq(f->C_InitPIN(h, (CK_UTF8CHAR_PTR)USER, strlen(USER)), CKR_OK);
	ck_assert_uint_eq(f->C_Logout(h), CKR_OK);
	if (login)
		ck_assert_uint_eq(f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)USER, strlen(USER)), CKR_OK);
	return h;
}

/* ---- initialisation ---- */

static CK_RV dummy_create(CK_VOID_PTR_PTR m) { (void)m; return CKR_OK; }
static CK_RV dummy_m(CK_VOID_PTR m) { (void)m; return CKR_OK; }

START_TEST(initialize_rules)
{
	CK_INFO info;
	CK_C_INITIALIZE_ARGS a;
	ck_assert_uint_eq(f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	memset(&a, 0, sizeof(a));
	a.pReserved = &a;
	ck_assert_uint_eq(f->C_Initialize(&a), CKR_ARGUMENTS_BAD);
	memset(&a, 0, sizeof(a));
	a.CreateMutex = dummy_create;
	ck_assert_uint_eq(f->C_Initialize(&a), CKR_ARGUMENTS_BAD);
	a.DestroyMutex = dummy_m;
	a.LockMutex = dummy_m;
	a.UnlockMutex = dummy_m;
	ck_assert_uint_eq(f->C_Initialize(&a), CKR_CANT_LOCK);
	a.flags = CKF_OS_LOCKING_OK;
	ck_assert_uint_eq(f->C_Initialize(&a), CKR_OK);
	ck_assert_uint_eq(f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
	ck_assert_uint_eq(f->C_GetInfo(&info), CKR_OK);
	ck_assert_uint_eq(info.cryptokiVersion.major, 2);
	ck_assert_uint_eq(info.cryptokiVersion.minor, 40);
	ck_assert_int_eq(memcmp(info.manufacturerID, "coyeu   ", 8), 0);
	ck_assert_uint_eq(f->C_Finalize(&a), CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(f->C_Finalize(NULL), CKR_OK);
	ck_assert_uint_eq(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
	f = NULL;
}
END_TEST

START_TEST(no_daemon)
{
	CK_ULONG n = 99;
	CK_SESSION_HANDLE h;
	CK_TOKEN_INFO ti;
	setenv("COYEU_SOCKET", "/nonexistent/coyeu.sock", 1);
	ck_assert_uint_eq(f->C_Initialize(NULL), CKR_OK);
	ck_assert_uint_eq(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(f->C_GetTokenInfo(1, &ti), CKR_TOKEN_NOT_PRESENT);
	ck_assert_uint_eq(f->C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_TOKEN_NOT_PRESENT);
	ck_assert_uint_eq(f->C_Login(5, CKU_USER, (CK_UTF8CHAR_PTR)"1234", 4), CKR_DEVICE_ERROR);
}
END_TEST

START_TEST(unsupported_functions)
{
	CK_ULONG n = 0;
	ck_assert_uint_eq(f->C_GetOperationState(1, NULL, &n), CKR_FUNCTION_NOT_SUPPORTED);
	ck_assert_uint_eq(f->C_GetFunctionStatus(1), CKR_FUNCTION_NOT_PARALLEL);
	ck_assert_uint_eq(f->C_WaitForSlotEvent(0, NULL, NULL), CKR_FUNCTION_NOT_SUPPORTED);
}
END_TEST

START_TEST(interfaces_3_0)
{
	CK_RV (*list)(CK_INTERFACE_PTR, CK_ULONG_PTR) =
		(CK_RV (*)(CK_INTERFACE_PTR, CK_ULONG_PTR))dlsym(lib, "C_GetInterfaceList");
	CK_RV (*get)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS) =
		(CK_RV (*)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS))dlsym(lib, "C_GetInterface");
	ck_assert_ptr_nonnull(list);
	ck_assert_ptr_nonnull(get);
	CK_INTERFACE ifs[4];
	CK_ULONG n = 0;
	ck_assert_uint_eq(list(NULL, &n), CKR_OK);
	ck_assert_uint_eq(n, 2);
	n = 1;
	ck_assert_uint_eq(list(ifs, &n), CKR_BUFFER_TOO_SMALL);
	n = 4;
	ck_assert_uint_eq(list(ifs, &n), CKR_OK);
	ck_assert_str_eq((char *)ifs[0].pInterfaceName, "PKCS 11");
	CK_INTERFACE_PTR i30 = NULL, i240 = NULL;
	ck_assert_uint_eq(get(NULL, NULL, &i30, 0), CKR_OK);
	CK_FUNCTION_LIST_3_0_PTR f3 = i30->pFunctionList;
	ck_assert_uint_eq(f3->version.major, 3);
	CK_VERSION v240 = { 2, 40 };
	ck_assert_uint_eq(get((CK_UTF8CHAR_PTR)"PKCS 11", &v240, &i240, CKF_INTERFACE_FORK_SAFE), CKR_OK);
	ck_assert_ptr_eq(i240->pFunctionList, f);
	ck_assert_uint_eq(get((CK_UTF8CHAR_PTR)"Vendor", NULL, &i240, 0), CKR_ARGUMENTS_BAD);
	/* The 3.0 list shares the 2.40 functions and adds its own. */
	ck_assert_ptr_eq(f3->C_Sign, f->C_Sign);
	CK_SESSION_HANDLE h;
	CK_UTF8CHAR label[32];
	memset(label, ' ', sizeof(label));
	ck_assert_uint_eq(f3->C_InitToken(1, (CK_UTF8CHAR_PTR)SO, 8, label), CKR_OK);
	ck_assert_uint_eq(f3->C_OpenSession(1, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h), CKR_OK);
	ck_assert_uint_eq(f3->C_LoginUser(h, CKU_SO, (CK_UTF8CHAR_PTR)SO, 8, NULL, 0), CKR_OK);
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) } };
	ck_assert_uint_eq(f3->C_FindObjectsInit(h, t, 1), CKR_OK);
	ck_assert_uint_eq(f3->C_FindObjectsInit(h, t, 1), CKR_OPERATION_ACTIVE);
	ck_assert_uint_eq(f3->C_SessionCancel(h, CKF_FIND_OBJECTS), CKR_OK);
	ck_assert_uint_eq(f3->C_FindObjectsInit(h, t, 1), CKR_OK);
	CK_MECHANISM dm = { CKM_SHA256, NULL, 0 };
	ck_assert_uint_eq(f3->C_DigestInit(h, &dm), CKR_OK);
	ck_assert_uint_eq(f3->C_SessionCancel(h, CKF_DIGEST), CKR_OK);
	ck_assert_uint_eq(f3->C_DigestInit(h, &dm), CKR_OK);
	ck_assert_uint_eq(f3->C_SessionCancel(0x7777, CKF_SIGN), CKR_SESSION_HANDLE_INVALID);
	ck_assert_uint_eq(f3->C_MessageSignInit(h, &dm, 1), CKR_FUNCTION_NOT_SUPPORTED);
}
END_TEST

/* ---- slots, tokens, sessions, login ---- */

START_TEST(slots_and_token_info)
{
	CK_SLOT_ID slots[4];
	CK_ULONG n = 0;
	CK_TOKEN_INFO ti;
	CK_SLOT_INFO si;
	ck_assert_uint_eq(f->C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK);
	ck_assert_uint_eq(n, 1); /* one empty slot to initialise */
	ck_assert_uint_eq(f->C_GetTokenInfo(1, &ti), CKR_OK);
	ck_assert_uint_eq(ti.flags & CKF_TOKEN_INITIALIZED, 0);
	new_token_session(false);
	n = 1;
	ck_assert_uint_eq(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	ck_assert_uint_eq(slots[0], 1);
	ck_assert_uint_eq(slots[1], 2);
	ck_assert_uint_eq(f->C_GetSlotInfo(1, &si), CKR_OK);
	ck_assert(si.flags & CKF_TOKEN_PRESENT);
	ck_assert_uint_eq(f->C_GetSlotInfo(77, &si), CKR_SLOT_ID_INVALID);
	ck_assert_uint_eq(f->C_GetTokenInfo(1, &ti), CKR_OK);
	ck_assert_int_eq(memcmp(ti.label, "test token                      ", 32), 0);
	ck_assert(ti.flags & CKF_TOKEN_INITIALIZED);
	ck_assert(ti.flags & CKF_USER_PIN_INITIALIZED);
	ck_assert(ti.flags & CKF_LOGIN_REQUIRED);
	ck_assert_uint_eq(ti.ulSessionCount, 1);
	ck_assert_uint_eq(ti.ulRwSessionCount, 1);
	CK_MECHANISM_INFO mi;
	ck_assert_uint_eq(f->C_GetMechanismInfo(1, CKM_RSA_PKCS_KEY_PAIR_GEN, &mi), CKR_OK);
	ck_assert_uint_eq(mi.ulMaxKeySize, 4096);
	ck_assert_uint_eq(f->C_GetMechanismInfo(1, CKM_MD5, &mi), CKR_MECHANISM_INVALID);
	CK_ULONG nm = 0;
	ck_assert_uint_eq(f->C_GetMechanismList(1, NULL, &nm), CKR_OK);
	ck_assert_uint_gt(nm, 20);
}
END_TEST

START_TEST(login_rules)
{
	CK_SESSION_HANDLE rw = new_token_session(false), ro;
	CK_SESSION_INFO info;
	CK_TOKEN_INFO ti;
	ck_assert_uint_eq(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
	ck_assert_uint_eq(f->C_OpenSession(slot, 0, NULL, NULL, &ro), CKR_SESSION_PARALLEL_NOT_SUPPORTED);
	ck_assert_uint_eq(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
	/* SO with a read-only session open: refused. */
	ck_assert_uint_eq(f->C_Login(rw, CKU_SO, (CK_UTF8CHAR_PTR)SO, strlen(SO)), CKR_SESSION_READ_ONLY_EXISTS);
	ck_assert_uint_eq(f->C_Login(rw, CKU_USER, (CK_UTF8CHAR_PTR)"0000", 4), CKR_PIN_INCORRECT);
	ck_assert_uint_eq(f->C_GetTokenInfo(slot, &ti), CKR_OK);
	ck_assert(ti.flags & CKF_USER_PIN_COUNT_LOW);
	ck_assert_uint_eq(f->C_Login(rw, 7, (CK_UTF8CHAR_PTR)USER, 4), CKR_USER_TYPE_INVALID);
	ck_assert_uint_eq(f->C_Logout(rw), CKR_USER_NOT_LOGGED_IN);
	ck_assert_uint_eq(f->C_Login(rw, CKU_USER, (CK_UTF8CHAR_PTR)USER, strlen(USER)), CKR_OK);
	ck_assert_uint_eq(f->C_GetTokenInfo(slot, &ti), CKR_OK);
	ck_assert_uint_eq(ti.flags & CKF_USER_PIN_COUNT_LOW, 0);
	/* The login is the application's: every session sees it. */
	ck_assert_uint_eq(f->C_GetSessionInfo(ro, &info), CKR_OK);
	ck_assert_uint_eq(info.state, CKS_RO_USER_FUNCTIONS);
	ck_assert_uint_eq(f->C_GetSessionInfo(rw, &info), CKR_OK);
	ck_assert_uint_eq(info.state, CKS_RW_USER_FUNCTIONS);
	ck_assert_uint_eq(f->C_Login(ro, CKU_USER, (CK_UTF8CHAR_PTR)USER, 4), CKR_USER_ALREADY_LOGGED_IN);
	ck_assert_uint_eq(f->C_Login(ro, CKU_SO, (CK_UTF8CHAR_PTR)SO, 8), CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
	/* Read-only sessions cannot change PINs; read-write ones can. */
	ck_assert_uint_eq(f->C_SetPIN(ro, (CK_UTF8CHAR_PTR)USER, 4, (CK_UTF8CHAR_PTR)"4321", 4), CKR_SESSION_READ_ONLY);
	ck_assert_uint_eq(f->C_SetPIN(rw, (CK_UTF8CHAR_PTR)"9999", 4, (CK_UTF8CHAR_PTR)"4321", 4), CKR_PIN_INCORRECT);
	ck_assert_uint_eq(f->C_SetPIN(rw, (CK_UTF8CHAR_PTR)USER, 4, (CK_UTF8CHAR_PTR)"43", 2), CKR_PIN_LEN_RANGE);
	ck_assert_uint_eq(f->C_SetPIN(rw, (CK_UTF8CHAR_PTR)USER, 4, (CK_UTF8CHAR_PTR)"4321", 4), CKR_OK);
	/* Closing every session logs the application out. */
	ck_assert_uint_eq(f->C_CloseAllSessions(slot), CKR_OK);
	ck_assert_uint_eq(f->C_GetSessionInfo(rw, &info), CKR_SESSION_HANDLE_INVALID);
	ck_assert_uint_eq(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
	ck_assert_uint_eq(f->C_GetSessionInfo(ro, &info), CKR_OK);
	ck_assert_uint_eq(info.state, CKS_RO_PUBLIC_SESSION);
	ck_assert_uint_eq(f->C_Login(ro, CKU_USER, (CK_UTF8CHAR_PTR)"4321", 4), CKR_OK);
	/* Re-initialising needs no session open. */
	CK_UTF8CHAR label[32];
	memset(label, ' ', 32);
	ck_assert_uint_eq(f->C_InitToken(slot, (CK_UTF8CHAR_PTR)SO, 8, label), CKR_SESSION_EXISTS);
}
END_TEST

/* ---- objects ---- */

static CK_OBJECT_HANDLE
make_data(CK_SESSION_HANDLE h, bool token, bool priv, const char *label)
{
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_BBOOL tok = token, pr = priv;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_TOKEN, &tok, sizeof(tok) },
		{ CKA_PRIVATE, &pr, sizeof(pr) },
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_VALUE, "payload", 7 },
	};
	CK_OBJECT_HANDLE o = 0;
	ck_assert_uint_eq(f->C_CreateObject(h, t, 5, &o), CKR_OK);
	return o;
}

static CK_ULONG
count_found(CK_SESSION_HANDLE h, CK_ATTRIBUTE *t, CK_ULONG n)
{
	CK_OBJECT_HANDLE found[64];
	CK_ULONG cnt = 0, total = 0;
	ck_assert_uint_eq(f->C_FindObjectsInit(h, t, n), CKR_OK);
	do {
		ck_assert_uint_eq(f->C_FindObjects(h, found, 3, &cnt), CKR_OK);
		total += cnt;
	} while (cnt > 0);
	ck_assert_uint_eq(f->C_FindObjectsFinal(h), CKR_OK);
	return total;
}

START_TEST(objects_and_attributes)
{
	CK_SESSION_HANDLE h = new_token_session(true), pub;
	CK_OBJECT_HANDLE a = make_data(h, true, false, "public-data");
	make_data(h, true, true, "private-data");
	make_data(h, false, false, "session-data");
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_ATTRIBUTE q[] = { { CKA_CLASS, &cls, sizeof(cls) } };
	ck_assert_uint_eq(count_found(h, q, 1), 3);
	CK_ATTRIBUTE byl[] = { { CKA_LABEL, "public-data", 11 } };
	ck_assert_uint_eq(count_found(h, byl, 1), 1);
	ck_assert_uint_eq(f->C_FindObjectsInit(h, q, 1), CKR_OK);
	ck_assert_uint_eq(f->C_FindObjectsInit(h, q, 1), CKR_OPERATION_ACTIVE);
	ck_assert_uint_eq(f->C_FindObjectsFinal(h), CKR_OK);

	/* The two-call convention, attribute by attribute. */
	char buf[64];
	CK_ATTRIBUTE g[] = {
		{ CKA_LABEL, NULL, 0 },
		{ CKA_VALUE, buf, 3 },
		{ CKA_MODULUS, buf, sizeof(buf) },
	};
	ck_assert_uint_eq(f->C_GetAttributeValue(h, a, g, 3), CKR_ATTRIBUTE_TYPE_INVALID);
	ck_assert_uint_eq(g[0].ulValueLen, 11);
	ck_assert_uint_eq(g[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	ck_assert_uint_eq(g[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	g[1].ulValueLen = 3;
	ck_assert_uint_eq(f->C_GetAttributeValue(h, a, &g[1], 1), CKR_BUFFER_TOO_SMALL);
	g[1].ulValueLen = sizeof(buf);
	ck_assert_uint_eq(f->C_GetAttributeValue(h, a, &g[1], 1), CKR_OK);
	ck_assert_uint_eq(g[1].ulValueLen, 7);
	ck_assert_int_eq(memcmp(buf, "payload", 7), 0);
	CK_BBOOL tok = CK_FALSE;
	CK_ATTRIBUTE gt[] = { { CKA_TOKEN, &tok, sizeof(tok) } };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, a, gt, 1), CKR_OK);
	ck_assert_uint_eq(tok, CK_TRUE);

	/* Set, copy, size, destroy. */
	CK_ATTRIBUTE s[] = { { CKA_LABEL, "renamed", 7 } };
	ck_assert_uint_eq(f->C_SetAttributeValue(h, a, s, 1), CKR_OK);
	CK_ATTRIBUTE byl2[] = { { CKA_LABEL, "renamed", 7 } };
	ck_assert_uint_eq(count_found(h, byl2, 1), 1);
	/* The class cannot change (restating it, as copy templates do, is fine). */
	CK_OBJECT_CLASS other = CKO_CERTIFICATE;
	CK_ATTRIBUTE same[] = { { CKA_CLASS, &cls, sizeof(cls) } };
	CK_ATTRIBUTE bad[] = { { CKA_CLASS, &other, sizeof(other) } };
	ck_assert_uint_eq(f->C_SetAttributeValue(h, a, same, 1), CKR_OK);
	ck_assert_uint_eq(f->C_SetAttributeValue(h, a, bad, 1), CKR_ATTRIBUTE_READ_ONLY);
	CK_ATTRIBUTE badlen[] = { { CKA_TOKEN, &tok, 4 } };
	ck_assert_uint_eq(f->C_SetAttributeValue(h, a, badlen, 1), CKR_ATTRIBUTE_VALUE_INVALID);
	CK_OBJECT_HANDLE c;
	CK_ATTRIBUTE ct[] = { { CKA_TOKEN, &no, sizeof(no) } };
	ck_assert_uint_eq(f->C_CopyObject(h, a, ct, 1, &c), CKR_OK);
	ck_assert_uint_eq(count_found(h, byl2, 1), 2);
	CK_ULONG size = 0;
	ck_assert_uint_eq(f->C_GetObjectSize(h, c, &size), CKR_OK);
	ck_assert_uint_gt(size, 7);
	/* A certificate object must hold an X.509 certificate. */
	CK_OBJECT_CLASS cc = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ct509 = CKC_X_509;
	CK_ATTRIBUTE bogus[] = { { CKA_CLASS, &cc, sizeof(cc) }, { CKA_CERTIFICATE_TYPE, &ct509, sizeof(ct509) },
				 { CKA_SUBJECT, "x", 1 }, { CKA_VALUE, "not a certificate", 17 } };
	CK_OBJECT_HANDLE bc;
	ck_assert_uint_eq(f->C_CreateObject(h, bogus, 4, &bc), CKR_ATTRIBUTE_VALUE_INVALID);
	/* CKA_UNIQUE_ID (3.0): set by the token, new for a copy, read-only. */
	char u1[40], u2[40];
	CK_ATTRIBUTE ua[] = { { CKA_UNIQUE_ID, u1, sizeof(u1) } }, uc[] = { { CKA_UNIQUE_ID, u2, sizeof(u2) } };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, a, ua, 1), CKR_OK);
	ck_assert_uint_eq(f->C_GetAttributeValue(h, c, uc, 1), CKR_OK);
	ck_assert_uint_eq(ua[0].ulValueLen, 32);
	ck_assert_int_ne(memcmp(u1, u2, 32), 0);
	CK_ATTRIBUTE setu[] = { { CKA_UNIQUE_ID, "x", 1 } };
	ck_assert_uint_eq(f->C_SetAttributeValue(h, c, setu, 1), CKR_ATTRIBUTE_READ_ONLY);
	CK_ATTRIBUTE mku[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_UNIQUE_ID, "x", 1 } };
	CK_OBJECT_HANDLE nu;
	ck_assert_uint_eq(f->C_CreateObject(h, mku, 2, &nu), CKR_ATTRIBUTE_READ_ONLY);
	ck_assert_uint_eq(f->C_DestroyObject(h, c), CKR_OK);
	ck_assert_uint_eq(f->C_DestroyObject(h, c), CKR_OBJECT_HANDLE_INVALID);

	/* Private objects are invisible before login; session objects belong
	 * to the application that made them. */
	ck_assert_uint_eq(f->C_Logout(h), CKR_OK);
	ck_assert_uint_eq(count_found(h, q, 1), 2);
	ck_assert_uint_eq(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &pub), CKR_OK);
	ck_assert_uint_eq(count_found(pub, q, 1), 2);
	/* Closing the session that made a session object destroys it. */
	ck_assert_uint_eq(f->C_CloseSession(h), CKR_OK);
	ck_assert_uint_eq(count_found(pub, q, 1), 1);
	/* A public session may not write token objects in a read-only session. */
	CK_ATTRIBUTE tt[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_TOKEN, &yes, 1 } };
	CK_OBJECT_HANDLE x;
	ck_assert_uint_eq(f->C_CreateObject(pub, tt, 2, &x), CKR_SESSION_READ_ONLY);
}
END_TEST

START_TEST(private_key_attributes)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	static const CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	CK_ATTRIBUTE pt[] = { { CKA_EC_PARAMS, (void *)p256, sizeof(p256) }, { CKA_TOKEN, &yes, 1 } };
	CK_ATTRIBUTE vt[] = { { CKA_TOKEN, &yes, 1 }, { CKA_SIGN, &yes, 1 }, { CKA_SENSITIVE, &yes, 1 } };
	CK_OBJECT_HANDLE pub, priv;
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &m, pt, 2, vt, 3, &pub, &priv), CKR_OK);
	CK_BYTE buf[256];
	CK_BBOOL local = 0, as = 0, ne = 0;
	CK_ATTRIBUTE g[] = {
		{ CKA_VALUE, buf, sizeof(buf) },
		{ CKA_LOCAL, &local, 1 },
		{ CKA_ALWAYS_SENSITIVE, &as, 1 },
		{ CKA_NEVER_EXTRACTABLE, &ne, 1 },
	};
	ck_assert_uint_eq(f->C_GetAttributeValue(h, priv, g, 4), CKR_ATTRIBUTE_SENSITIVE);
	ck_assert_uint_eq(g[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	ck_assert(local && as && ne);
	CK_ATTRIBUTE pg[] = { { CKA_EC_POINT, buf, sizeof(buf) } };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, pub, pg, 1), CKR_OK);
	ck_assert_uint_eq(pg[0].ulValueLen, 67); /* 04 41 04 X Y */
	ck_assert_uint_eq(buf[0], 0x04);
	ck_assert_uint_eq(buf[2], 0x04);
	/* Sensitive cannot be turned off. */
	CK_ATTRIBUTE off[] = { { CKA_SENSITIVE, &no, 1 } };
	ck_assert_uint_eq(f->C_SetAttributeValue(h, priv, off, 1), CKR_ATTRIBUTE_READ_ONLY);
	/* Logged out, the private key is gone from view. */
	ck_assert_uint_eq(f->C_Logout(h), CKR_OK);
	ck_assert_uint_eq(f->C_GetAttributeValue(h, priv, g + 1, 1), CKR_OBJECT_HANDLE_INVALID);
	CK_MECHANISM sm = { CKM_ECDSA, NULL, 0 };
	ck_assert_uint_eq(f->C_SignInit(h, &sm, priv), CKR_KEY_HANDLE_INVALID);
}
END_TEST

/* ---- crypto ---- */

static void
gen_rsa(CK_SESSION_HANDLE h, CK_ULONG bits, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	CK_MECHANISM m = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pt[] = {
		{ CKA_MODULUS_BITS, &bits, sizeof(bits) },
		{ CKA_VERIFY, &yes, 1 }, { CKA_ENCRYPT, &yes, 1 },
	};
	CK_ATTRIBUTE vt[] = { { CKA_SIGN, &yes, 1 }, { CKA_DECRYPT, &yes, 1 } };
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &m, pt, 3, vt, 2, pub, priv), CKR_OK);
}

static void
sign_verify(CK_SESSION_HANDLE h, CK_MECHANISM_TYPE type, CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv,
	    const CK_BYTE *data, CK_ULONG len, bool multipart)
{
	CK_MECHANISM m = { type, NULL, 0 };
	CK_BYTE sig[1024];
	CK_ULONG slen = 0;
	ck_assert_uint_eq(f->C_SignInit(h, &m, priv), CKR_OK);
	if (multipart) {
		ck_assert_uint_eq(f->C_SignUpdate(h, (CK_BYTE_PTR)data, len / 2), CKR_OK);
		ck_assert_uint_eq(f->C_SignUpdate(h, (CK_BYTE_PTR)data + len / 2, len - len / 2), CKR_OK);
		ck_assert_uint_eq(f->C_SignFinal(h, NULL, &slen), CKR_OK);
		ck_assert_uint_gt(slen, 0);
		ck_assert_uint_eq(f->C_SignFinal(h, sig, &slen), CKR_OK);
	} else {
		ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)data, len, NULL, &slen), CKR_OK);
		CK_ULONG want = slen;
		slen = 4;
		ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)data, len, sig, &slen), CKR_BUFFER_TOO_SMALL);
		ck_assert_uint_eq(slen, want);
		slen = sizeof(sig);
		ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)data, len, sig, &slen), CKR_OK);
		ck_assert_uint_eq(slen, want);
		/* The operation is over. */
		ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)data, len, sig, &slen), CKR_OPERATION_NOT_INITIALIZED);
		/* Bad arguments end it too. */
		ck_assert_uint_eq(f->C_SignInit(h, &m, priv), CKR_OK);
		ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)data, len, sig, NULL), CKR_ARGUMENTS_BAD);
		ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)data, len, sig, &slen), CKR_OPERATION_NOT_INITIALIZED);
	}
	ck_assert_uint_eq(f->C_VerifyInit(h, &m, pub), CKR_OK);
	ck_assert_uint_eq(f->C_Verify(h, (CK_BYTE_PTR)data, len, sig, slen), CKR_OK);
	sig[slen / 2] ^= 0x40;
	ck_assert_uint_eq(f->C_VerifyInit(h, &m, pub), CKR_OK);
	ck_assert_uint_eq(f->C_Verify(h, (CK_BYTE_PTR)data, len, sig, slen), CKR_SIGNATURE_INVALID);
	ck_assert_uint_eq(f->C_VerifyInit(h, &m, pub), CKR_OK);
	ck_assert_uint_eq(f->C_Verify(h, (CK_BYTE_PTR)data, len, sig, slen - 1), CKR_SIGNATURE_LEN_RANGE);
}

START_TEST(rsa_sign_verify_encrypt)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	CK_OBJECT_HANDLE pub, priv;
	gen_rsa(h, 2048, &pub, &priv);
	static const CK_BYTE msg[] = "the document to sign, province of Dien Bien";
	CK_BYTE digest[32];
	gcry_md_hash_buffer(GCRY_MD_SHA256, digest, msg, sizeof(msg));
	sign_verify(h, CKM_RSA_PKCS, pub, priv, digest, sizeof(digest), false);
	sign_verify(h, CKM_SHA256_RSA_PKCS, pub, priv, msg, sizeof(msg), false);
	sign_verify(h, CKM_SHA384_RSA_PKCS, pub, priv, msg, sizeof(msg), true);
	sign_verify(h, CKM_SHA512_RSA_PKCS, pub, priv, msg, sizeof(msg), false);

	/* A key cannot do what its flags forbid, nor the wrong class. */
	CK_MECHANISM m = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	ck_assert_uint_eq(f->C_SignInit(h, &m, pub), CKR_KEY_TYPE_INCONSISTENT);
	ck_assert_uint_eq(f->C_SignInit(h, &m, priv), CKR_OK);
	ck_assert_uint_eq(f->C_SignInit(h, &m, priv), CKR_OPERATION_ACTIVE);
	CK_BYTE sig[512];
	CK_ULONG slen = sizeof(sig);
	ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)msg, 1, sig, &slen), CKR_OK);

	/* OAEP with SHA-256 and a label. */
	CK_RSA_PKCS_OAEP_PARAMS op = { CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, "lbl", 3 };
	CK_MECHANISM om = { CKM_RSA_PKCS_OAEP, &op, sizeof(op) };
	CK_BYTE ct[256], pt[256];
	CK_ULONG clen = 0, plen = 0;
	ck_assert_uint_eq(f->C_EncryptInit(h, &om, pub), CKR_OK);
	ck_assert_uint_eq(f->C_Encrypt(h, (CK_BYTE_PTR)msg, 20, NULL, &clen), CKR_OK);
	ck_assert_uint_eq(clen, 256);
	ck_assert_uint_eq(f->C_Encrypt(h, (CK_BYTE_PTR)msg, 20, ct, &clen), CKR_OK);
	ck_assert_uint_eq(f->C_DecryptInit(h, &om, priv), CKR_OK);
	ck_assert_uint_eq(f->C_Decrypt(h, ct, clen, NULL, &plen), CKR_OK);
	ck_assert_uint_ge(plen, 20);
	plen = 5;
	ck_assert_uint_eq(f->C_Decrypt(h, ct, clen, pt, &plen), CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(plen, 20);
	ck_assert_uint_eq(f->C_Decrypt(h, ct, clen, pt, &plen), CKR_OK);
	ck_assert_uint_eq(plen, 20);
	ck_assert_int_eq(memcmp(pt, msg, 20), 0);
	/* A wrong label or a changed byte does not decrypt. */
	op.ulSourceDataLen = 2;
	ck_assert_uint_eq(f->C_DecryptInit(h, &om, priv), CKR_OK);
	plen = sizeof(pt);
	ck_assert_uint_eq(f->C_Decrypt(h, ct, clen, pt, &plen), CKR_ENCRYPTED_DATA_INVALID);
	ck_assert_uint_eq(f->C_DecryptInit(h, &om, priv), CKR_OK);
	plen = sizeof(pt);
	ck_assert_uint_eq(f->C_Decrypt(h, ct, 100, pt, &plen), CKR_ENCRYPTED_DATA_LEN_RANGE);
	/* An MGF that does not match the hash is refused up front. */
	op.mgf = CKG_MGF1_SHA1;
	ck_assert_uint_eq(f->C_EncryptInit(h, &om, pub), CKR_MECHANISM_PARAM_INVALID);
	CK_MECHANISM short_param = { CKM_RSA_PKCS_OAEP, &op, 3 };
	ck_assert_uint_eq(f->C_EncryptInit(h, &short_param, pub), CKR_MECHANISM_PARAM_INVALID);
}
END_TEST

START_TEST(ec_sign_verify)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	static const CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	static const CK_BYTE p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
	static const CK_BYTE msg[] = "a message";
	const CK_BYTE *curves[] = { p256, p384 };
	CK_ULONG lens[] = { sizeof(p256), sizeof(p384) };
	for (int i = 0; i < 2; i++) {
		CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
		CK_ATTRIBUTE pt[] = { { CKA_EC_PARAMS, (void *)curves[i], lens[i] }, { CKA_VERIFY, &yes, 1 } };
		CK_ATTRIBUTE vt[] = { { CKA_SIGN, &yes, 1 } };
		CK_OBJECT_HANDLE pub, priv;
		ck_assert_uint_eq(f->C_GenerateKeyPair(h, &m, pt, 2, vt, 1, &pub, &priv), CKR_OK);
		CK_BYTE digest[48];
		gcry_md_hash_buffer(i ? GCRY_MD_SHA384 : GCRY_MD_SHA256, digest, msg, sizeof(msg));
		sign_verify(h, CKM_ECDSA, pub, priv, digest, i ? 48 : 32, false);
		sign_verify(h, CKM_ECDSA_SHA256, pub, priv, msg, sizeof(msg), false);
		sign_verify(h, CKM_ECDSA_SHA384, pub, priv, msg, sizeof(msg), true);
	}
	/* The named-curve PrintableString form is accepted too. */
	static const CK_BYTE printable[] = { 0x13, 0x0a, 'p', 'r', 'i', 'm', 'e', '2', '5', '6', 'v', '1' };
	CK_MECHANISM pm = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE ppt[] = { { CKA_EC_PARAMS, (void *)printable, sizeof(printable) }, { CKA_VERIFY, &yes, 1 } };
	CK_ATTRIBUTE pvt[] = { { CKA_SIGN, &yes, 1 } };
	CK_OBJECT_HANDLE ppub, ppriv;
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &pm, ppt, 2, pvt, 1, &ppub, &ppriv), CKR_OK);
	sign_verify(h, CKM_ECDSA_SHA256, ppub, ppriv, msg, sizeof(msg), false);
	/* brainpoolP256r1: not offered. */
	static const CK_BYTE unknown[] = { 0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07 };
	CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pt[] = { { CKA_EC_PARAMS, (void *)unknown, sizeof(unknown) } };
	CK_OBJECT_HANDLE a, b;
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &m, pt, 1, NULL, 0, &a, &b), CKR_CURVE_NOT_SUPPORTED);
}
END_TEST

static void
unhex(const char *h, CK_BYTE *out)
{
	for (size_t i = 0; h[2 * i]; i++)
		sscanf(h + 2 * i, "%2hhx", &out[i]);
}

START_TEST(ed25519_rfc8032)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	/* RFC 8032 section 7.1, TEST 1 (empty message). */
	CK_BYTE seed[32], pubk[34] = { 0x04, 0x20 }, want[64], sig[64];
	unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed);
	unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", pubk + 2);
	unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b", want);
	static const CK_BYTE printable[] = { 0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd', 's', '2', '5', '5', '1', '9' };
	static const CK_BYTE oid[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
	CK_OBJECT_CLASS pc = CKO_PRIVATE_KEY, uc = CKO_PUBLIC_KEY;
	CK_KEY_TYPE kt = CKK_EC_EDWARDS;
	CK_ATTRIBUTE vt[] = { { CKA_CLASS, &pc, sizeof(pc) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
			      { CKA_EC_PARAMS, (void *)printable, sizeof(printable) },
			      { CKA_VALUE, seed, 32 }, { CKA_SIGN, &yes, 1 } };
	CK_ATTRIBUTE pt[] = { { CKA_CLASS, &uc, sizeof(uc) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
			      { CKA_EC_PARAMS, (void *)oid, sizeof(oid) },
			      { CKA_EC_POINT, pubk, sizeof(pubk) }, { CKA_VERIFY, &yes, 1 } };
	CK_OBJECT_HANDLE priv, pub;
	ck_assert_uint_eq(f->C_CreateObject(h, vt, 5, &priv), CKR_OK);
	ck_assert_uint_eq(f->C_CreateObject(h, pt, 5, &pub), CKR_OK);
	CK_MECHANISM m = { CKM_EDDSA, NULL, 0 };
	CK_ULONG n = sizeof(sig);
	ck_assert_uint_eq(f->C_SignInit(h, &m, priv), CKR_OK);
	ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)"", 0, sig, &n), CKR_OK);
	ck_assert_uint_eq(n, 64);
	ck_assert_int_eq(memcmp(sig, want, 64), 0);
	ck_assert_uint_eq(f->C_VerifyInit(h, &m, pub), CKR_OK);
	ck_assert_uint_eq(f->C_Verify(h, (CK_BYTE_PTR)"", 0, sig, 64), CKR_OK);
	ck_assert_uint_eq(f->C_VerifyInit(h, &m, pub), CKR_OK);
	ck_assert_uint_eq(f->C_Verify(h, (CK_BYTE_PTR)"x", 1, sig, 64), CKR_SIGNATURE_INVALID);
	/* Prehashed or with a context: not offered. */
	CK_BYTE ph[32] = { 1 };
	CK_MECHANISM bad = { CKM_EDDSA, ph, sizeof(ph) };
	ck_assert_uint_eq(f->C_SignInit(h, &bad, priv), CKR_MECHANISM_PARAM_INVALID);
	/* A generated pair signs and verifies, in parts too. */
	CK_MECHANISM g = { CKM_EC_EDWARDS_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE gp[] = { { CKA_EC_PARAMS, (void *)oid, sizeof(oid) }, { CKA_VERIFY, &yes, 1 } };
	CK_ATTRIBUTE gv[] = { { CKA_SIGN, &yes, 1 } };
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &g, gp, 2, gv, 1, &pub, &priv), CKR_OK);
	sign_verify(h, CKM_EDDSA, pub, priv, (const CK_BYTE *)"message to sign", 15, false);
	sign_verify(h, CKM_EDDSA, pub, priv, (const CK_BYTE *)"message to sign", 15, true);
	/* Ed448: 57-byte keys, 114-byte signatures. */
	static const CK_BYTE ed448[] = { 0x13, 0x0a, 'e', 'd', 'w', 'a', 'r', 'd', 's', '4', '4', '8' };
	CK_ATTRIBUTE gp448[] = { { CKA_EC_PARAMS, (void *)ed448, sizeof(ed448) }, { CKA_VERIFY, &yes, 1 } };
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &g, gp448, 2, gv, 1, &pub, &priv), CKR_OK);
	CK_BYTE s448[128];
	CK_ULONG n448 = sizeof(s448);
	ck_assert_uint_eq(f->C_SignInit(h, &m, priv), CKR_OK);
	ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)"x", 1, s448, &n448), CKR_OK);
	ck_assert_uint_eq(n448, 114);
	sign_verify(h, CKM_EDDSA, pub, priv, (const CK_BYTE *)"message to sign", 15, false);
	/* The Weierstrass mechanism refuses an Edwards curve and vice versa. */
	CK_MECHANISM wg = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &wg, gp, 2, gv, 1, &pub, &priv), CKR_CURVE_NOT_SUPPORTED);
}
END_TEST

static CK_OBJECT_HANDLE
secret_key(CK_SESSION_HANDLE h, CK_KEY_TYPE kt, const char *hexval)
{
	CK_BYTE v[64];
	size_t n = strlen(hexval) / 2;
	unhex(hexval, v);
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
			     { CKA_VALUE, v, n }, { CKA_SIGN, &yes, 1 }, { CKA_VERIFY, &yes, 1 },
			     { CKA_ENCRYPT, &yes, 1 }, { CKA_DECRYPT, &yes, 1 } };
	CK_OBJECT_HANDLE k;
	ck_assert_uint_eq(f->C_CreateObject(h, t, 7, &k), CKR_OK);
	return k;
}

static void
expect_sign(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE k, const char *msg, size_t len,
	    const char *want_hex)
{
	CK_BYTE want[64], out[64];
	CK_ULONG n = sizeof(out);
	unhex(want_hex, want);
	ck_assert_uint_eq(f->C_SignInit(h, m, k), CKR_OK);
	ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)msg, len, out, &n), CKR_OK);
	ck_assert_uint_eq(n, strlen(want_hex) / 2);
	ck_assert_int_eq(memcmp(out, want, n), 0);
	ck_assert_uint_eq(f->C_VerifyInit(h, m, k), CKR_OK);
	ck_assert_uint_eq(f->C_Verify(h, (CK_BYTE_PTR)msg, len, out, n), CKR_OK);
}

START_TEST(mac_vectors)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	/* RFC 4231 test case 2. */
	CK_OBJECT_HANDLE jefe = secret_key(h, CKK_GENERIC_SECRET, "4a656665");
	CK_MECHANISM hm = { CKM_SHA256_HMAC, NULL, 0 };
	expect_sign(h, &hm, jefe, "what do ya want for nothing?", 28,
		    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	sign_verify(h, CKM_SHA256_HMAC, jefe, jefe, (const CK_BYTE *)"data", 4, true);
	sign_verify(h, CKM_SHA3_256_HMAC, jefe, jefe, (const CK_BYTE *)"data", 4, false);
	sign_verify(h, CKM_SHA_1_HMAC, jefe, jefe, (const CK_BYTE *)"data", 4, false);
	CK_MECHANISM withparam = { CKM_SHA256_HMAC, &hm, 4 };
	ck_assert_uint_eq(f->C_SignInit(h, &withparam, jefe), CKR_MECHANISM_PARAM_INVALID);

	/* RFC 4493 example 2, and the general form cut to 8 bytes. */
	CK_OBJECT_HANDLE aes = secret_key(h, CKK_AES, "2b7e151628aed2a6abf7158809cf4f3c");
	CK_BYTE msg[16];
	unhex("6bc1bee22e409f96e93d7e117393172a", msg);
	CK_MECHANISM cm = { CKM_AES_CMAC, NULL, 0 };
	expect_sign(h, &cm, aes, (const char *)msg, 16, "070a16b46b4d4144f79bdd9dd04a287c");
	CK_ULONG eight = 8, seventeen = 17;
	CK_MECHANISM cg = { CKM_AES_CMAC_GENERAL, &eight, sizeof(eight) };
	expect_sign(h, &cg, aes, (const char *)msg, 16, "070a16b46b4d4144");
	CK_MECHANISM cbad = { CKM_AES_CMAC_GENERAL, &seventeen, sizeof(seventeen) };
	ck_assert_uint_eq(f->C_SignInit(h, &cbad, aes), CKR_MECHANISM_PARAM_INVALID);
	sign_verify(h, CKM_AES_CMAC, aes, aes, (const CK_BYTE *)"a longer message in two parts", 29, true);
	/* An HMAC mechanism wants a generic secret, not an AES key. */
	ck_assert_uint_eq(f->C_SignInit(h, &hm, aes), CKR_KEY_TYPE_INCONSISTENT);

	/* CKA_CHECK_VALUE: AES-128 of a zero block under the zero key. */
	CK_OBJECT_HANDLE zero = secret_key(h, CKK_AES, "00000000000000000000000000000000");
	CK_BYTE kcv[3];
	CK_ATTRIBUTE g[] = { { CKA_CHECK_VALUE, kcv, 3 } };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, zero, g, 1), CKR_OK);
	ck_assert_int_eq(memcmp(kcv, "\x66\xe9\x4b", 3), 0);

	/* SHA3-256("abc"). */
	CK_MECHANISM dm = { CKM_SHA3_256, NULL, 0 };
	CK_BYTE dg[32], want[32];
	CK_ULONG dn = sizeof(dg);
	unhex("3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532", want);
	ck_assert_uint_eq(f->C_DigestInit(h, &dm), CKR_OK);
	ck_assert_uint_eq(f->C_Digest(h, (CK_BYTE_PTR)"abc", 3, dg, &dn), CKR_OK);
	ck_assert_int_eq(memcmp(dg, want, 32), 0);
}
END_TEST

START_TEST(ctr_and_des3)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	/* NIST SP 800-38A F.5.1, first block, fed in pieces of 5 and 11. */
	CK_OBJECT_HANDLE aes = secret_key(h, CKK_AES, "2b7e151628aed2a6abf7158809cf4f3c");
	CK_AES_CTR_PARAMS cp = { 128, { 0 } };
	unhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", cp.cb);
	CK_MECHANISM m = { CKM_AES_CTR, &cp, sizeof(cp) };
	CK_BYTE pt[16], ct[16], want[16], back[16];
	unhex("6bc1bee22e409f96e93d7e117393172a", pt);
	unhex("874d6191b620e3261bef6864990db6ce", want);
	CK_ULONG n1 = sizeof(ct), n2 = sizeof(ct) - 5, n3 = 16;
	ck_assert_uint_eq(f->C_EncryptInit(h, &m, aes), CKR_OK);
	ck_assert_uint_eq(f->C_EncryptUpdate(h, pt, 5, ct, &n1), CKR_OK);
	ck_assert_uint_eq(n1, 5);
	ck_assert_uint_eq(f->C_EncryptUpdate(h, pt + 5, 11, ct + 5, &n2), CKR_OK);
	ck_assert_uint_eq(n2, 11);
	ck_assert_uint_eq(f->C_EncryptFinal(h, ct + 16, &n3), CKR_OK);
	ck_assert_uint_eq(n3, 0);
	ck_assert_int_eq(memcmp(ct, want, 16), 0);
	CK_ULONG bn = sizeof(back);
	ck_assert_uint_eq(f->C_DecryptInit(h, &m, aes), CKR_OK);
	ck_assert_uint_eq(f->C_Decrypt(h, ct, 16, back, &bn), CKR_OK);
	ck_assert_int_eq(memcmp(back, pt, 16), 0);
	cp.ulCounterBits = 0;
	ck_assert_uint_eq(f->C_EncryptInit(h, &m, aes), CKR_MECHANISM_PARAM_INVALID);
	CK_MECHANISM shortp = { CKM_AES_CTR, &cp, 8 };
	ck_assert_uint_eq(f->C_EncryptInit(h, &shortp, aes), CKR_MECHANISM_PARAM_INVALID);

	/* Triple DES: generated (no CKA_VALUE_LEN), CBC with padding. */
	CK_MECHANISM g = { CKM_DES3_KEY_GEN, NULL, 0 };
	CK_ATTRIBUTE t[] = { { CKA_ENCRYPT, &yes, 1 }, { CKA_DECRYPT, &yes, 1 } };
	CK_OBJECT_HANDLE des;
	ck_assert_uint_eq(f->C_GenerateKey(h, &g, t, 2, &des), CKR_OK);
	CK_ULONG vl = 24;
	CK_ATTRIBUTE tl[] = { { CKA_VALUE_LEN, &vl, sizeof(vl) } };
	CK_OBJECT_HANDLE bad;
	ck_assert_uint_ne(f->C_GenerateKey(h, &g, tl, 1, &bad), CKR_OK);
	CK_BYTE iv[8] = { 7 };
	CK_MECHANISM dm = { CKM_DES3_CBC_PAD, iv, sizeof(iv) };
	CK_BYTE dct[32], dpt[32];
	CK_ULONG dn = sizeof(dct), pn = sizeof(dpt);
	ck_assert_uint_eq(f->C_EncryptInit(h, &dm, des), CKR_OK);
	ck_assert_uint_eq(f->C_Encrypt(h, (CK_BYTE_PTR)"seventeen bytes!!", 17, dct, &dn), CKR_OK);
	ck_assert_uint_eq(dn, 24);
	ck_assert_uint_eq(f->C_DecryptInit(h, &dm, des), CKR_OK);
	ck_assert_uint_eq(f->C_Decrypt(h, dct, dn, dpt, &pn), CKR_OK);
	ck_assert_uint_eq(pn, 17);
	ck_assert_int_eq(memcmp(dpt, "seventeen bytes!!", 17), 0);
	CK_MECHANISM ecb = { CKM_DES3_ECB, NULL, 0 };
	dn = sizeof(dct);
	ck_assert_uint_eq(f->C_EncryptInit(h, &ecb, des), CKR_OK);
	ck_assert_uint_eq(f->C_Encrypt(h, (CK_BYTE_PTR)"odd", 3, dct, &dn), CKR_DATA_LEN_RANGE);
	CK_MECHANISM sixteen_iv = { CKM_DES3_CBC, pt, 16 };
	ck_assert_uint_eq(f->C_EncryptInit(h, &sixteen_iv, des), CKR_MECHANISM_PARAM_INVALID);
	/* Single DES is not offered. */
	CK_MECHANISM single = { CKM_DES_CBC, iv, sizeof(iv) };
	ck_assert_uint_eq(f->C_EncryptInit(h, &single, des), CKR_MECHANISM_INVALID);
	CK_MECHANISM_INFO mi;
	ck_assert_uint_eq(f->C_GetMechanismInfo(slot, CKM_DES_KEY_GEN, &mi), CKR_MECHANISM_INVALID);
}
END_TEST

START_TEST(recover_auth_digest_key)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	CK_OBJECT_HANDLE pub, priv;
	CK_ULONG bits = 1024;
	CK_MECHANISM g = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pt[] = { { CKA_MODULUS_BITS, &bits, sizeof(bits) }, { CKA_VERIFY_RECOVER, &yes, 1 },
			      { CKA_VERIFY, &yes, 1 } };
	CK_ATTRIBUTE vt[] = { { CKA_SIGN_RECOVER, &yes, 1 }, { CKA_SIGN, &yes, 1 },
			      { CKA_ALWAYS_AUTHENTICATE, &yes, 1 } };
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &g, pt, 3, vt, 3, &pub, &priv), CKR_OK);
	CK_MECHANISM m = { CKM_RSA_PKCS, NULL, 0 };
	CK_BYTE sig[128], rec[128];
	CK_ULONG sn = sizeof(sig), rn = sizeof(rec);
	/* The key wants the PIN again for each operation. */
	ck_assert_uint_eq(f->C_SignRecoverInit(h, &m, priv), CKR_OK);
	ck_assert_uint_eq(f->C_SignRecover(h, (CK_BYTE_PTR)"recover me", 10, sig, &sn), CKR_USER_NOT_LOGGED_IN);
	ck_assert_uint_eq(f->C_Login(h, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR)"0000", 4), CKR_PIN_INCORRECT);
	ck_assert_uint_eq(f->C_Login(h, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR)USER, 4), CKR_OK);
	ck_assert_uint_eq(f->C_SignRecover(h, (CK_BYTE_PTR)"recover me", 10, sig, &sn), CKR_OK);
	ck_assert_uint_eq(sn, 128);
	ck_assert_uint_eq(f->C_Login(h, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR)USER, 4), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f->C_VerifyRecoverInit(h, &m, pub), CKR_OK);
	ck_assert_uint_eq(f->C_VerifyRecover(h, sig, sn, NULL, &rn), CKR_OK);
	rn = sizeof(rec);
	ck_assert_uint_eq(f->C_VerifyRecover(h, sig, sn, rec, &rn), CKR_OK);
	ck_assert_uint_eq(rn, 10);
	ck_assert_int_eq(memcmp(rec, "recover me", 10), 0);
	sig[5] ^= 1;
	ck_assert_uint_eq(f->C_VerifyRecoverInit(h, &m, pub), CKR_OK);
	rn = sizeof(rec);
	ck_assert_uint_eq(f->C_VerifyRecover(h, sig, sn, rec, &rn), CKR_SIGNATURE_INVALID);
	CK_MECHANISM hashed = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	ck_assert_uint_eq(f->C_SignRecoverInit(h, &hashed, priv), CKR_MECHANISM_INVALID);
	/* The SO does not use the user's keys. */
	ck_assert_uint_eq(f->C_Logout(h), CKR_OK);
	ck_assert_uint_eq(f->C_Login(h, CKU_SO, (CK_UTF8CHAR_PTR)SO, 8), CKR_OK);
	ck_assert_uint_eq(f->C_SignInit(h, &m, priv), CKR_KEY_HANDLE_INVALID);
	ck_assert_uint_eq(f->C_Logout(h), CKR_OK);
	ck_assert_uint_eq(f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)USER, 4), CKR_OK);

	/* C_DigestKey: an extractable secret is digested, a sensitive one is not. */
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_ATTRIBUTE ot[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
			      { CKA_VALUE, "abc", 3 }, { CKA_SENSITIVE, &no, 1 }, { CKA_EXTRACTABLE, &yes, 1 } };
	CK_OBJECT_HANDLE open_key, closed_key;
	ck_assert_uint_eq(f->C_CreateObject(h, ot, 5, &open_key), CKR_OK);
	ck_assert_uint_eq(f->C_CreateObject(h, ot, 3, &closed_key), CKR_OK);
	CK_MECHANISM dm = { CKM_SHA256, NULL, 0 };
	CK_BYTE dg[32], want[32];
	CK_ULONG dn = sizeof(dg);
	unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want);
	ck_assert_uint_eq(f->C_DigestInit(h, &dm), CKR_OK);
	ck_assert_uint_eq(f->C_DigestKey(h, open_key), CKR_OK);
	ck_assert_uint_eq(f->C_DigestFinal(h, dg, &dn), CKR_OK);
	ck_assert_int_eq(memcmp(dg, want, 32), 0);
	ck_assert_uint_eq(f->C_DigestInit(h, &dm), CKR_OK);
	ck_assert_uint_eq(f->C_DigestKey(h, closed_key), CKR_KEY_INDIGESTIBLE);
	ck_assert_uint_eq(f->C_DigestFinal(h, dg, &dn), CKR_OPERATION_NOT_INITIALIZED);
}
END_TEST

/* A secret key that may be wrapped and read back. */
static CK_OBJECT_HANDLE
open_secret(CK_SESSION_HANDLE h, CK_KEY_TYPE kt, const char *hexval)
{
	CK_BYTE v[64];
	size_t n = strlen(hexval) / 2;
	unhex(hexval, v);
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
			     { CKA_VALUE, v, n }, { CKA_EXTRACTABLE, &yes, 1 }, { CKA_SENSITIVE, &no, 1 },
			     { CKA_WRAP, &yes, 1 }, { CKA_UNWRAP, &yes, 1 } };
	CK_OBJECT_HANDLE k;
	ck_assert_uint_eq(f->C_CreateObject(h, t, 7, &k), CKR_OK);
	return k;
}

static void
expect_wrap(CK_SESSION_HANDLE h, CK_MECHANISM_TYPE mt, CK_OBJECT_HANDLE kek, CK_OBJECT_HANDLE key,
	    CK_KEY_TYPE kt, const char *want_hex, const char *value_hex)
{
	CK_MECHANISM m = { mt, NULL, 0 };
	CK_BYTE w[64], want[64], v[64], got[64];
	CK_ULONG wn = 0;
	unhex(want_hex, want);
	unhex(value_hex, v);
	ck_assert_uint_eq(f->C_WrapKey(h, &m, kek, key, NULL, &wn), CKR_OK);
	ck_assert_uint_eq(wn, strlen(want_hex) / 2);
	wn = 4;
	ck_assert_uint_eq(f->C_WrapKey(h, &m, kek, key, w, &wn), CKR_BUFFER_TOO_SMALL);
	wn = sizeof(w);
	ck_assert_uint_eq(f->C_WrapKey(h, &m, kek, key, w, &wn), CKR_OK);
	ck_assert_int_eq(memcmp(w, want, wn), 0);
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
			     { CKA_EXTRACTABLE, &yes, 1 }, { CKA_SENSITIVE, &no, 1 } };
	CK_OBJECT_HANDLE u;
	ck_assert_uint_eq(f->C_UnwrapKey(h, &m, kek, w, wn, t, 4, &u), CKR_OK);
	CK_BBOOL local = 1, as = 1;
	CK_ATTRIBUTE g[] = { { CKA_VALUE, got, sizeof(got) }, { CKA_LOCAL, &local, 1 },
			     { CKA_ALWAYS_SENSITIVE, &as, 1 } };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, u, g, 3), CKR_OK);
	ck_assert_uint_eq(g[0].ulValueLen, strlen(value_hex) / 2);
	ck_assert_int_eq(memcmp(got, v, g[0].ulValueLen), 0);
	ck_assert(!local && !as);
	w[wn - 1] ^= 1;
	ck_assert_uint_eq(f->C_UnwrapKey(h, &m, kek, w, wn, t, 4, &u), CKR_WRAPPED_KEY_INVALID);
	ck_assert_uint_eq(f->C_UnwrapKey(h, &m, kek, w, 12, t, 4, &u), CKR_WRAPPED_KEY_LEN_RANGE);
}

START_TEST(wrap_unwrap)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	/* RFC 3394 section 4.1. */
	CK_OBJECT_HANDLE kek = open_secret(h, CKK_AES, "000102030405060708090a0b0c0d0e0f");
	CK_OBJECT_HANDLE key = open_secret(h, CKK_AES, "00112233445566778899aabbccddeeff");
	expect_wrap(h, CKM_AES_KEY_WRAP, kek, key, CKK_AES,
		    "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5", "00112233445566778899aabbccddeeff");
	/* RFC 5649 section 6, both examples. */
	CK_OBJECT_HANDLE kek192 = open_secret(h, CKK_AES, "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");
	CK_OBJECT_HANDLE k20 = open_secret(h, CKK_GENERIC_SECRET, "c37b7e6492584340bed12207808941155068f738");
	CK_OBJECT_HANDLE k7 = open_secret(h, CKK_GENERIC_SECRET, "466f7250617369");
	expect_wrap(h, CKM_AES_KEY_WRAP_KWP, kek192, k20, CKK_GENERIC_SECRET,
		    "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
		    "c37b7e6492584340bed12207808941155068f738");
	expect_wrap(h, CKM_AES_KEY_WRAP_PAD, kek192, k7, CKK_GENERIC_SECRET,
		    "afbeb0f07dfbf5419200f2ccb50bb24f", "466f7250617369");

	/* The rules around the keys. */
	CK_MECHANISM kw = { CKM_AES_KEY_WRAP, NULL, 0 };
	CK_BYTE w[4096];
	CK_ULONG wn = sizeof(w);
	CK_OBJECT_HANDLE sealed = secret_key(h, CKK_AES, "00112233445566778899aabbccddeeff");
	ck_assert_uint_eq(f->C_WrapKey(h, &kw, kek, sealed, w, &wn), CKR_KEY_UNEXTRACTABLE);
	CK_OBJECT_HANDLE nowrap = open_secret(h, CKK_AES, "000102030405060708090a0b0c0d0e0f");
	CK_ATTRIBUTE off[] = { { CKA_WRAP, &no, 1 } };
	ck_assert_uint_eq(f->C_SetAttributeValue(h, nowrap, off, 1), CKR_OK);
	ck_assert_uint_eq(f->C_WrapKey(h, &kw, nowrap, key, w, &wn), CKR_KEY_FUNCTION_NOT_PERMITTED);
	ck_assert_uint_eq(f->C_WrapKey(h, &kw, 0x7777, key, w, &wn), CKR_WRAPPING_KEY_HANDLE_INVALID);
	ck_assert_uint_eq(f->C_WrapKey(h, &kw, kek, 0x7777, w, &wn), CKR_KEY_HANDLE_INVALID);
	ck_assert_uint_eq(f->C_WrapKey(h, &kw, kek, k7, w, &wn), CKR_KEY_SIZE_RANGE);
	CK_ATTRIBUTE trusted[] = { { CKA_WRAP_WITH_TRUSTED, &yes, 1 } };
	ck_assert_uint_eq(f->C_SetAttributeValue(h, key, trusted, 1), CKR_OK);
	ck_assert_uint_eq(f->C_WrapKey(h, &kw, kek, key, w, &wn), CKR_KEY_NOT_WRAPPABLE);

	/* RSA-OAEP carries an AES key to the holder of the private key. */
	CK_OBJECT_HANDLE pub, priv;
	CK_ULONG bits = 2048;
	CK_MECHANISM g = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pt[] = { { CKA_MODULUS_BITS, &bits, sizeof(bits) }, { CKA_WRAP, &yes, 1 } };
	CK_ATTRIBUTE vt[] = { { CKA_UNWRAP, &yes, 1 } };
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &g, pt, 2, vt, 1, &pub, &priv), CKR_OK);
	CK_RSA_PKCS_OAEP_PARAMS op = { CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0 };
	CK_MECHANISM om = { CKM_RSA_PKCS_OAEP, &op, sizeof(op) };
	wn = sizeof(w);
	ck_assert_uint_eq(f->C_WrapKey(h, &om, pub, k20, w, &wn), CKR_OK);
	ck_assert_uint_eq(wn, 256);
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE gk = CKK_GENERIC_SECRET;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &gk, sizeof(gk) } };
	CK_OBJECT_HANDLE u;
	ck_assert_uint_eq(f->C_UnwrapKey(h, &om, priv, w, wn, t, 2, &u), CKR_OK);
	CK_BYTE kcv1[3], kcv2[3];
	CK_ATTRIBUTE c1[] = { { CKA_CHECK_VALUE, kcv1, 3 } }, c2[] = { { CKA_CHECK_VALUE, kcv2, 3 } };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, u, c1, 1), CKR_OK);
	ck_assert_uint_eq(f->C_GetAttributeValue(h, k20, c2, 1), CKR_OK);
	ck_assert_int_eq(memcmp(kcv1, kcv2, 3), 0);
	ck_assert_uint_eq(f->C_UnwrapKey(h, &om, pub, w, wn, t, 2, &u), CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT);
	ck_assert_uint_eq(f->C_UnwrapKey(h, &om, priv, w, wn, t, 1, &u), CKR_TEMPLATE_INCOMPLETE);
	/* An unextractable private key does not leave. */
	wn = sizeof(w);
	ck_assert_uint_eq(f->C_WrapKey(h, &kw, kek, priv, w, &wn), CKR_KEY_UNEXTRACTABLE);

	/* Extractable RSA and EC private keys travel as PKCS #8 under AES-KWP
	 * and sign again once unwrapped. */
	CK_MECHANISM kwp = { CKM_AES_KEY_WRAP_KWP, NULL, 0 };
	static const CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	struct { CK_MECHANISM_TYPE gen, sig; CK_KEY_TYPE kt; } pairs[] = {
		{ CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_SHA256_RSA_PKCS, CKK_RSA },
		{ CKM_EC_KEY_PAIR_GEN, CKM_ECDSA_SHA256, CKK_EC },
	};
	for (int i = 0; i < 2; i++) {
		CK_MECHANISM gm = { pairs[i].gen, NULL, 0 };
		CK_ATTRIBUTE gpt[] = { i ? (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)p256, sizeof(p256) }
					 : (CK_ATTRIBUTE){ CKA_MODULUS_BITS, &bits, sizeof(bits) },
				       { CKA_VERIFY, &yes, 1 } };
		CK_ATTRIBUTE gvt[] = { { CKA_SIGN, &yes, 1 }, { CKA_EXTRACTABLE, &yes, 1 } };
		CK_OBJECT_HANDLE xpub, xpriv, back;
		ck_assert_uint_eq(f->C_GenerateKeyPair(h, &gm, gpt, 2, gvt, 2, &xpub, &xpriv), CKR_OK);
		wn = sizeof(w);
		ck_assert_uint_eq(f->C_WrapKey(h, &kwp, kek, xpriv, w, &wn), CKR_OK);
		CK_OBJECT_CLASS pc = CKO_PRIVATE_KEY;
		CK_ATTRIBUTE ut[] = { { CKA_CLASS, &pc, sizeof(pc) }, { CKA_KEY_TYPE, &pairs[i].kt, sizeof(CK_KEY_TYPE) },
				      { CKA_SIGN, &yes, 1 } };
		ck_assert_uint_eq(f->C_UnwrapKey(h, &kwp, kek, w, wn, ut, 3, &back), CKR_OK);
		sign_verify(h, pairs[i].sig, xpub, back, (const CK_BYTE *)"after the trip", 14, false);
		CK_KEY_TYPE other = i ? CKK_RSA : CKK_EC;
		CK_ATTRIBUTE wrongt[] = { { CKA_CLASS, &pc, sizeof(pc) }, { CKA_KEY_TYPE, &other, sizeof(other) } };
		ck_assert_uint_eq(f->C_UnwrapKey(h, &kwp, kek, w, wn, wrongt, 2, &back), CKR_TEMPLATE_INCONSISTENT);
	}
	/* Ed25519 and Ed448 travel as RFC 8410 PKCS #8; X25519 cannot (GnuTLS
	 * 3.7 has no raw X25519 import). */
	static const CK_BYTE ed25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 }, ed448[] = { 0x06, 0x03, 0x2b, 0x65, 0x71 };
	static const CK_BYTE x25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x6e };
	const CK_BYTE *eds[] = { ed25519, ed448 };
	CK_MECHANISM em = { CKM_EC_EDWARDS_KEY_PAIR_GEN, NULL, 0 };
	for (int i = 0; i < 2; i++) {
		CK_ATTRIBUTE ept[] = { { CKA_EC_PARAMS, (void *)eds[i], sizeof(ed25519) }, { CKA_VERIFY, &yes, 1 } };
		CK_ATTRIBUTE evt[] = { { CKA_EXTRACTABLE, &yes, 1 }, { CKA_SIGN, &yes, 1 } };
		CK_OBJECT_HANDLE epub, epriv, back;
		ck_assert_uint_eq(f->C_GenerateKeyPair(h, &em, ept, 2, evt, 2, &epub, &epriv), CKR_OK);
		wn = sizeof(w);
		ck_assert_uint_eq(f->C_WrapKey(h, &kwp, kek, epriv, w, &wn), CKR_OK);
		CK_OBJECT_CLASS pc = CKO_PRIVATE_KEY;
		CK_KEY_TYPE ek = CKK_EC_EDWARDS;
		CK_ATTRIBUTE ut[] = { { CKA_CLASS, &pc, sizeof(pc) }, { CKA_KEY_TYPE, &ek, sizeof(ek) },
				      { CKA_SIGN, &yes, 1 } };
		ck_assert_uint_eq(f->C_UnwrapKey(h, &kwp, kek, w, wn, ut, 3, &back), CKR_OK);
		sign_verify(h, CKM_EDDSA, epub, back, (const CK_BYTE *)"after the trip", 14, false);
		CK_BYTE params[16];
		CK_ATTRIBUTE pa[] = { { CKA_EC_PARAMS, params, sizeof(params) } };
		ck_assert_uint_eq(f->C_GetAttributeValue(h, back, pa, 1), CKR_OK);
		ck_assert_uint_eq(pa[0].ulValueLen, sizeof(ed25519));
		ck_assert_int_eq(memcmp(params, eds[i], sizeof(ed25519)), 0);
	}
	CK_MECHANISM xm = { CKM_EC_MONTGOMERY_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE xpt[] = { { CKA_EC_PARAMS, (void *)x25519, sizeof(x25519) } };
	CK_ATTRIBUTE xvt[] = { { CKA_EXTRACTABLE, &yes, 1 } };
	CK_OBJECT_HANDLE mpub, mpriv;
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &xm, xpt, 1, xvt, 1, &mpub, &mpriv), CKR_OK);
	wn = sizeof(w);
	ck_assert_uint_eq(f->C_WrapKey(h, &kwp, kek, mpriv, w, &wn), CKR_KEY_NOT_WRAPPABLE);
}
END_TEST

/* CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE and CKA_DERIVE_TEMPLATE
 * (PKCS#11 2.40 4.9/4.10, 3.0 4.7): carried, read back element by element,
 * and applied. */
START_TEST(wrap_templates)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	CK_OBJECT_CLASS sc = CKO_SECRET_KEY;
	CK_KEY_TYPE gk = CKK_GENERIC_SECRET, ak = CKK_AES;
	CK_BYTE v[16];
	memset(v, 0x42, sizeof(v));
	/* The wrapping key only wraps generic secrets; what it unwraps is
	 * unextractable. */
	CK_ATTRIBUTE wt[] = { { CKA_CLASS, &sc, sizeof(sc) }, { CKA_KEY_TYPE, &gk, sizeof(gk) } };
	CK_ATTRIBUTE ut[] = { { CKA_EXTRACTABLE, &no, 1 } };
	CK_ATTRIBUTE kt[] = { { CKA_CLASS, &sc, sizeof(sc) }, { CKA_KEY_TYPE, &ak, sizeof(ak) },
			      { CKA_VALUE, v, 16 }, { CKA_WRAP, &yes, 1 }, { CKA_UNWRAP, &yes, 1 },
			      { CKA_WRAP_TEMPLATE, wt, sizeof(wt) }, { CKA_UNWRAP_TEMPLATE, ut, sizeof(ut) } };
	CK_OBJECT_HANDLE kek;
	ck_assert_uint_eq(f->C_CreateObject(h, kt, 7, &kek), CKR_OK);

	/* Read back: the size, then each element's length, then the values. */
	CK_ATTRIBUTE q[] = { { CKA_WRAP_TEMPLATE, NULL, 0 } };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, kek, q, 1), CKR_OK);
	ck_assert_uint_eq(q[0].ulValueLen, 2 * sizeof(CK_ATTRIBUTE));
	CK_ATTRIBUTE back[2] = { { 0, NULL, 0 }, { 0, NULL, 0 } };
	q[0].pValue = back;
	ck_assert_uint_eq(f->C_GetAttributeValue(h, kek, q, 1), CKR_OK);
	ck_assert_uint_eq(back[0].type, CKA_CLASS);
	ck_assert_uint_eq(back[0].ulValueLen, sizeof(CK_OBJECT_CLASS));
	ck_assert_uint_eq(back[1].type, CKA_KEY_TYPE);
	CK_OBJECT_CLASS gc = 0;
	CK_KEY_TYPE gt = 0;
	back[0].pValue = &gc;
	back[1].pValue = &gt;
	back[1].ulValueLen = 1; /* too small */
	ck_assert_uint_eq(f->C_GetAttributeValue(h, kek, q, 1), CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(gc, CKO_SECRET_KEY);
	ck_assert_uint_eq(back[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	back[1].ulValueLen = sizeof(gt);
	ck_assert_uint_eq(f->C_GetAttributeValue(h, kek, q, 1), CKR_OK);
	ck_assert_uint_eq(gt, CKK_GENERIC_SECRET);
	q[0].ulValueLen = sizeof(CK_ATTRIBUTE); /* room for one of two */
	ck_assert_uint_eq(f->C_GetAttributeValue(h, kek, q, 1), CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(q[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	/* Not modifiable after creation. */
	CK_ATTRIBUTE change[] = { { CKA_WRAP_TEMPLATE, ut, sizeof(ut) } };
	ck_assert_uint_eq(f->C_SetAttributeValue(h, kek, change, 1), CKR_ATTRIBUTE_READ_ONLY);

	/* Malformed arrays: a length that is no whole number of attributes,
	 * a template inside a template, a bad element value. */
	CK_OBJECT_HANDLE bad;
	kt[5].ulValueLen = sizeof(wt) - 1;
	ck_assert_uint_eq(f->C_CreateObject(h, kt, 7, &bad), CKR_ATTRIBUTE_VALUE_INVALID);
	CK_ATTRIBUTE nest[] = { { CKA_WRAP_TEMPLATE, wt, sizeof(wt) } };
	kt[5].pValue = nest;
	kt[5].ulValueLen = sizeof(nest);
	ck_assert_uint_eq(f->C_CreateObject(h, kt, 7, &bad), CKR_ATTRIBUTE_VALUE_INVALID);
	CK_ATTRIBUTE badbool[] = { { CKA_EXTRACTABLE, v, 2 } };
	kt[5].pValue = badbool;
	kt[5].ulValueLen = sizeof(badbool);
	ck_assert_uint_eq(f->C_CreateObject(h, kt, 7, &bad), CKR_ATTRIBUTE_VALUE_INVALID);

	/* Wrap: a generic secret matches the template, an AES key does not. */
	CK_OBJECT_HANDLE gen = open_secret(h, CKK_GENERIC_SECRET, "00112233445566778899aabbccddeeff");
	CK_OBJECT_HANDLE aes = open_secret(h, CKK_AES, "00112233445566778899aabbccddeeff");
	CK_MECHANISM kw = { CKM_AES_KEY_WRAP, NULL, 0 };
	CK_BYTE w[64];
	CK_ULONG wn = sizeof(w);
	ck_assert_uint_eq(f->C_WrapKey(h, &kw, kek, aes, w, &wn), CKR_KEY_NOT_WRAPPABLE);
	wn = sizeof(w);
	ck_assert_uint_eq(f->C_WrapKey(h, &kw, kek, gen, w, &wn), CKR_OK);

	/* Unwrap: the template's CKA_EXTRACTABLE = false is applied; asking
	 * for the opposite is inconsistent. */
	CK_ATTRIBUTE nt[] = { { CKA_CLASS, &sc, sizeof(sc) }, { CKA_KEY_TYPE, &gk, sizeof(gk) },
			      { CKA_EXTRACTABLE, &yes, 1 } };
	CK_OBJECT_HANDLE u;
	ck_assert_uint_eq(f->C_UnwrapKey(h, &kw, kek, w, wn, nt, 3, &u), CKR_TEMPLATE_INCONSISTENT);
	ck_assert_uint_eq(f->C_UnwrapKey(h, &kw, kek, w, wn, nt, 2, &u), CKR_OK);
	CK_BBOOL ex = CK_TRUE;
	CK_ATTRIBUTE ea[] = { { CKA_EXTRACTABLE, &ex, 1 } };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, u, ea, 1), CKR_OK);
	ck_assert_uint_eq(ex, CK_FALSE);
	nt[2].pValue = &no;
	ck_assert_uint_eq(f->C_UnwrapKey(h, &kw, kek, w, wn, nt, 3, &u), CKR_OK);

	/* Derive: an X25519 key whose derived keys are never sensitive-free. */
	static const CK_BYTE x25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x6e };
	CK_ATTRIBUTE dt[] = { { CKA_SENSITIVE, &yes, 1 } };
	CK_MECHANISM g = { CKM_EC_MONTGOMERY_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pt[] = { { CKA_EC_PARAMS, (void *)x25519, sizeof(x25519) } };
	CK_ATTRIBUTE vt[] = { { CKA_DERIVE, &yes, 1 }, { CKA_DERIVE_TEMPLATE, dt, sizeof(dt) } };
	CK_OBJECT_HANDLE pub, priv;
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &g, pt, 1, vt, 2, &pub, &priv), CKR_OK);
	CK_BYTE point[64];
	CK_ATTRIBUTE pa[] = { { CKA_EC_POINT, point, sizeof(point) } };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, pub, pa, 1), CKR_OK);
	CK_ECDH1_DERIVE_PARAMS ep = { CKD_NULL, 0, NULL, pa[0].ulValueLen, point };
	CK_MECHANISM dm = { CKM_ECDH1_DERIVE, &ep, sizeof(ep) };
	CK_ULONG len = 32;
	CK_ATTRIBUTE st[] = { { CKA_CLASS, &sc, sizeof(sc) }, { CKA_KEY_TYPE, &gk, sizeof(gk) },
			      { CKA_VALUE_LEN, &len, sizeof(len) }, { CKA_SENSITIVE, &no, 1 } };
	CK_OBJECT_HANDLE dk;
	ck_assert_uint_eq(f->C_DeriveKey(h, &dm, priv, st, 4, &dk), CKR_TEMPLATE_INCONSISTENT);
	ck_assert_uint_eq(f->C_DeriveKey(h, &dm, priv, st, 3, &dk), CKR_OK);
	CK_BBOOL sens = CK_FALSE;
	CK_ATTRIBUTE sa[] = { { CKA_SENSITIVE, &sens, 1 } };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, dk, sa, 1), CKR_OK);
	ck_assert_uint_eq(sens, CK_TRUE);
}
END_TEST

static CK_OBJECT_HANDLE
derive(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE base, CK_ULONG kdf, const CK_BYTE *peer, CK_ULONG plen,
       CK_ULONG len, CK_RV want)
{
	CK_ECDH1_DERIVE_PARAMS ep = { kdf, kdf == CKD_NULL ? 0 : 4, kdf == CKD_NULL ? NULL : (CK_BYTE_PTR)"info",
				      plen, (CK_BYTE_PTR)peer };
	CK_MECHANISM m = { CKM_ECDH1_DERIVE, &ep, sizeof(ep) };
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
			     { CKA_VALUE_LEN, &len, sizeof(len) }, { CKA_SENSITIVE, &no, 1 },
			     { CKA_EXTRACTABLE, &yes, 1 } };
	CK_OBJECT_HANDLE k = 0;
	ck_assert_uint_eq(f->C_DeriveKey(h, &m, base, t, 5, &k), want);
	return k;
}

static void
value_of(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE k, CK_BYTE *v, CK_ULONG *n)
{
	CK_ATTRIBUTE g[] = { { CKA_VALUE, v, *n } };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, k, g, 1), CKR_OK);
	*n = g[0].ulValueLen;
}

START_TEST(ecdh_derive)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	/* RFC 7748 section 6.1: Alice's key with Bob's public key. */
	CK_BYTE a[32], bob[32], want[32], got[64];
	unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a);
	unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", bob);
	unhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", want);
	static const CK_BYTE x25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x6e };
	CK_OBJECT_CLASS pc = CKO_PRIVATE_KEY;
	CK_KEY_TYPE mk = CKK_EC_MONTGOMERY;
	CK_ATTRIBUTE at[] = { { CKA_CLASS, &pc, sizeof(pc) }, { CKA_KEY_TYPE, &mk, sizeof(mk) },
			      { CKA_EC_PARAMS, (void *)x25519, sizeof(x25519) }, { CKA_VALUE, a, 32 },
			      { CKA_DERIVE, &yes, 1 } };
	CK_OBJECT_HANDLE alice;
	ck_assert_uint_eq(f->C_CreateObject(h, at, 5, &alice), CKR_OK);
	CK_OBJECT_HANDLE k = derive(h, alice, CKD_NULL, bob, 32, 32, CKR_OK);
	CK_ULONG n = sizeof(got);
	value_of(h, k, got, &n);
	ck_assert_uint_eq(n, 32);
	ck_assert_int_eq(memcmp(got, want, 32), 0);
	/* A small-order peer point gives an all-zero secret: refused. */
	CK_BYTE zero[32] = { 0 };
	derive(h, alice, CKD_NULL, zero, 32, 32, CKR_MECHANISM_PARAM_INVALID);

	/* X25519 and P-256 pairs agree with themselves both ways. */
	static const CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	static const CK_BYTE x448[] = { 0x06, 0x03, 0x2b, 0x65, 0x6f };
	struct { CK_MECHANISM_TYPE gen; const CK_BYTE *params; CK_ULONG plen; } kinds[] = {
		{ CKM_EC_MONTGOMERY_KEY_PAIR_GEN, x25519, sizeof(x25519) },
		{ CKM_EC_KEY_PAIR_GEN, p256, sizeof(p256) },
		{ CKM_EC_MONTGOMERY_KEY_PAIR_GEN, x448, sizeof(x448) },
	};
	for (int i = 0; i < 3; i++) {
		CK_MECHANISM g = { kinds[i].gen, NULL, 0 };
		CK_ATTRIBUTE pt[] = { { CKA_EC_PARAMS, (void *)kinds[i].params, kinds[i].plen } };
		CK_ATTRIBUTE vt[] = { { CKA_DERIVE, &yes, 1 } };
		CK_OBJECT_HANDLE pub1, priv1, pub2, priv2;
		ck_assert_uint_eq(f->C_GenerateKeyPair(h, &g, pt, 1, vt, 1, &pub1, &priv1), CKR_OK);
		ck_assert_uint_eq(f->C_GenerateKeyPair(h, &g, pt, 1, vt, 1, &pub2, &priv2), CKR_OK);
		CK_BYTE pt1[80], pt2[80], v1[64], v2[64];
		memset(pt1, 0, sizeof(pt1));
		memset(pt2, 0, sizeof(pt2));
		CK_ATTRIBUTE q1[] = { { CKA_EC_POINT, pt1, sizeof(pt1) } }, q2[] = { { CKA_EC_POINT, pt2, sizeof(pt2) } };
		ck_assert_uint_eq(f->C_GetAttributeValue(h, pub1, q1, 1), CKR_OK);
		ck_assert_uint_eq(f->C_GetAttributeValue(h, pub2, q2, 1), CKR_OK);
		CK_OBJECT_HANDLE k1 = derive(h, priv1, CKD_SHA256_KDF, pt2, q2[0].ulValueLen, 40, CKR_OK);
		CK_OBJECT_HANDLE k2 = derive(h, priv2, CKD_SHA256_KDF, pt1, q1[0].ulValueLen, 40, CKR_OK);
		CK_ULONG n1 = sizeof(v1), n2 = sizeof(v2);
		value_of(h, k1, v1, &n1);
		value_of(h, k2, v2, &n2);
		ck_assert_uint_eq(n1, 40);
		ck_assert_int_eq(memcmp(v1, v2, 40), 0);
		/* Raw point bytes (without the DER wrapper) are accepted too. */
		derive(h, priv1, CKD_NULL, pt2 + 2, q2[0].ulValueLen - 2, 16, CKR_OK);
		/* Bad public data, a KDF with no hash, a key that may not derive. */
		pt2[q2[0].ulValueLen - 1] ^= 1;
		if (i == 1)
			derive(h, priv1, CKD_NULL, pt2, q2[0].ulValueLen, 16, CKR_MECHANISM_PARAM_INVALID);
		derive(h, priv1, 0x77, pt1, q1[0].ulValueLen, 16, CKR_MECHANISM_PARAM_INVALID);
		derive(h, pub1, CKD_NULL, pt1, q1[0].ulValueLen, 16, CKR_KEY_TYPE_INCONSISTENT);
	}
	CK_ATTRIBUTE noderive[] = { { CKA_DERIVE, &no, 1 } };
	ck_assert_uint_eq(f->C_SetAttributeValue(h, alice, noderive, 1), CKR_OK);
	derive(h, alice, CKD_NULL, bob, 32, 32, CKR_KEY_FUNCTION_NOT_PERMITTED);
}
END_TEST

/* ---- every advertised mechanism, once right and once wrong ---- */

enum keykind { K_NONE, K_RSA, K_EC, K_ED, K_X, K_AES, K_DES3, K_GEN };
enum pkind { P_NONE, P_PSS, P_OAEP, P_IV16, P_IV8, P_CTR, P_GCM, P_CMACGEN, P_ECDH };

static const struct mech_case {
	CK_MECHANISM_TYPE type;
	enum keykind key;
	enum pkind param;
	CK_MECHANISM_TYPE hash; /* PSS/OAEP hash */
	CK_ULONG data_len;      /* input for sign or encrypt (0: a message) */
} cases[] = {
	{ CKM_RSA_PKCS_KEY_PAIR_GEN, K_NONE, P_NONE, 0, 0 },
	{ CKM_RSA_PKCS, K_RSA, P_NONE, 0, 32 },
	{ CKM_RSA_X_509, K_RSA, P_NONE, 0, 100 },
	{ CKM_SHA1_RSA_PKCS, K_RSA, P_NONE, 0, 0 },
	{ CKM_SHA224_RSA_PKCS, K_RSA, P_NONE, 0, 0 },
	{ CKM_SHA256_RSA_PKCS, K_RSA, P_NONE, 0, 0 },
	{ CKM_SHA384_RSA_PKCS, K_RSA, P_NONE, 0, 0 },
	{ CKM_SHA512_RSA_PKCS, K_RSA, P_NONE, 0, 0 },
	{ CKM_RSA_PKCS_PSS, K_RSA, P_PSS, CKM_SHA256, 32 },
	{ CKM_SHA1_RSA_PKCS_PSS, K_RSA, P_PSS, CKM_SHA_1, 0 },
	{ CKM_SHA224_RSA_PKCS_PSS, K_RSA, P_PSS, CKM_SHA224, 0 },
	{ CKM_SHA256_RSA_PKCS_PSS, K_RSA, P_PSS, CKM_SHA256, 0 },
	{ CKM_SHA384_RSA_PKCS_PSS, K_RSA, P_PSS, CKM_SHA384, 0 },
	{ CKM_SHA512_RSA_PKCS_PSS, K_RSA, P_PSS, CKM_SHA512, 0 },
	{ CKM_RSA_PKCS_OAEP, K_RSA, P_OAEP, CKM_SHA_1, 32 },
	{ CKM_EC_KEY_PAIR_GEN, K_NONE, P_NONE, 0, 0 },
	{ CKM_ECDSA, K_EC, P_NONE, 0, 32 },
	{ CKM_ECDSA_SHA1, K_EC, P_NONE, 0, 0 },
	{ CKM_ECDSA_SHA224, K_EC, P_NONE, 0, 0 },
	{ CKM_ECDSA_SHA256, K_EC, P_NONE, 0, 0 },
	{ CKM_ECDSA_SHA384, K_EC, P_NONE, 0, 0 },
	{ CKM_ECDSA_SHA512, K_EC, P_NONE, 0, 0 },
	{ CKM_ECDH1_DERIVE, K_EC, P_ECDH, 0, 0 },
	{ CKM_ECDH1_COFACTOR_DERIVE, K_EC, P_ECDH, 0, 0 },
	{ CKM_EC_MONTGOMERY_KEY_PAIR_GEN, K_NONE, P_NONE, 0, 0 },
	{ CKM_EC_EDWARDS_KEY_PAIR_GEN, K_NONE, P_NONE, 0, 0 },
	{ CKM_EDDSA, K_ED, P_NONE, 0, 0 },
	{ CKM_AES_KEY_GEN, K_NONE, P_NONE, 0, 0 },
	{ CKM_AES_ECB, K_AES, P_NONE, 0, 32 },
	{ CKM_AES_CBC, K_AES, P_IV16, 0, 32 },
	{ CKM_AES_CBC_PAD, K_AES, P_IV16, 0, 20 },
	{ CKM_AES_CTR, K_AES, P_CTR, 0, 20 },
	{ CKM_AES_GCM, K_AES, P_GCM, 0, 20 },
	{ CKM_AES_CMAC, K_AES, P_NONE, 0, 0 },
	{ CKM_AES_CMAC_GENERAL, K_AES, P_CMACGEN, 0, 0 },
	{ CKM_AES_KEY_WRAP, K_AES, P_NONE, 0, 32 },
	{ CKM_AES_KEY_WRAP_PAD, K_AES, P_NONE, 0, 20 },
	{ CKM_AES_KEY_WRAP_KWP, K_AES, P_NONE, 0, 20 },
	{ CKM_DES3_KEY_GEN, K_NONE, P_NONE, 0, 0 },
	{ CKM_DES3_ECB, K_DES3, P_NONE, 0, 16 },
	{ CKM_DES3_CBC, K_DES3, P_IV8, 0, 16 },
	{ CKM_DES3_CBC_PAD, K_DES3, P_IV8, 0, 20 },
	{ CKM_GENERIC_SECRET_KEY_GEN, K_NONE, P_NONE, 0, 0 },
	{ CKM_SHA_1_HMAC, K_GEN, P_NONE, 0, 0 },
	{ CKM_SHA224_HMAC, K_GEN, P_NONE, 0, 0 },
	{ CKM_SHA256_HMAC, K_GEN, P_NONE, 0, 0 },
	{ CKM_SHA384_HMAC, K_GEN, P_NONE, 0, 0 },
	{ CKM_SHA512_HMAC, K_GEN, P_NONE, 0, 0 },
	{ CKM_SHA3_224_HMAC, K_GEN, P_NONE, 0, 0 },
	{ CKM_SHA3_256_HMAC, K_GEN, P_NONE, 0, 0 },
	{ CKM_SHA3_384_HMAC, K_GEN, P_NONE, 0, 0 },
	{ CKM_SHA3_512_HMAC, K_GEN, P_NONE, 0, 0 },
	{ CKM_SHA_1, K_NONE, P_NONE, 0, 0 },
	{ CKM_SHA224, K_NONE, P_NONE, 0, 0 },
	{ CKM_SHA256, K_NONE, P_NONE, 0, 0 },
	{ CKM_SHA384, K_NONE, P_NONE, 0, 0 },
	{ CKM_SHA512, K_NONE, P_NONE, 0, 0 },
	{ CKM_SHA3_224, K_NONE, P_NONE, 0, 0 },
	{ CKM_SHA3_256, K_NONE, P_NONE, 0, 0 },
	{ CKM_SHA3_384, K_NONE, P_NONE, 0, 0 },
	{ CKM_SHA3_512, K_NONE, P_NONE, 0, 0 },
};

struct keyset {
	CK_OBJECT_HANDLE pub[8], priv[8];
	CK_BYTE ecpoint[80];
	CK_ULONG ecpoint_len;
};

static CK_MECHANISM_TYPE
mgf_of(CK_MECHANISM_TYPE hash)
{
	switch (hash) {
	case CKM_SHA_1: return CKG_MGF1_SHA1;
	case CKM_SHA224: return CKG_MGF1_SHA224;
	case CKM_SHA256: return CKG_MGF1_SHA256;
	case CKM_SHA384: return CKG_MGF1_SHA384;
	default: return CKG_MGF1_SHA512;
	}
}

static void
make_keys(CK_SESSION_HANDLE h, struct keyset *k)
{
	static const CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	static const CK_BYTE ed[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
	CK_ATTRIBUTE all[] = { { CKA_SIGN, &yes, 1 }, { CKA_VERIFY, &yes, 1 }, { CKA_ENCRYPT, &yes, 1 },
			       { CKA_DECRYPT, &yes, 1 }, { CKA_DERIVE, &yes, 1 }, { CKA_WRAP, &yes, 1 },
			       { CKA_UNWRAP, &yes, 1 } };
	gen_rsa(h, 2048, &k->pub[K_RSA], &k->priv[K_RSA]);
	CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE ept[] = { { CKA_EC_PARAMS, (void *)p256, sizeof(p256) }, { CKA_VERIFY, &yes, 1 } };
	CK_ATTRIBUTE evt[] = { { CKA_SIGN, &yes, 1 }, { CKA_DERIVE, &yes, 1 } };
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &m, ept, 2, evt, 2, &k->pub[K_EC], &k->priv[K_EC]), CKR_OK);
	CK_ATTRIBUTE q[] = { { CKA_EC_POINT, k->ecpoint, sizeof(k->ecpoint) } };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, k->pub[K_EC], q, 1), CKR_OK);
	k->ecpoint_len = q[0].ulValueLen;
	m.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
	CK_ATTRIBUTE dpt[] = { { CKA_EC_PARAMS, (void *)ed, sizeof(ed) }, { CKA_VERIFY, &yes, 1 } };
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &m, dpt, 2, evt, 1, &k->pub[K_ED], &k->priv[K_ED]), CKR_OK);
	CK_ULONG len = 32;
	CK_ATTRIBUTE st[8];
	memcpy(st, all, sizeof(all));
	st[7] = (CK_ATTRIBUTE){ CKA_VALUE_LEN, &len, sizeof(len) };
	m.mechanism = CKM_AES_KEY_GEN;
	ck_assert_uint_eq(f->C_GenerateKey(h, &m, st, 8, &k->priv[K_AES]), CKR_OK);
	m.mechanism = CKM_GENERIC_SECRET_KEY_GEN;
	ck_assert_uint_eq(f->C_GenerateKey(h, &m, st, 8, &k->priv[K_GEN]), CKR_OK);
	m.mechanism = CKM_DES3_KEY_GEN;
	ck_assert_uint_eq(f->C_GenerateKey(h, &m, st, 7, &k->priv[K_DES3]), CKR_OK);
	k->pub[K_AES] = k->priv[K_AES];
	k->pub[K_GEN] = k->priv[K_GEN];
	k->pub[K_DES3] = k->priv[K_DES3];
}

/* The mechanism with a good parameter for case c (storage in *buf). */
static void
good_mech(const struct mech_case *c, struct keyset *k, CK_MECHANISM *m, union {
	CK_RSA_PKCS_PSS_PARAMS pss; CK_RSA_PKCS_OAEP_PARAMS oaep; CK_BYTE iv[16];
	CK_AES_CTR_PARAMS ctr; CK_GCM_PARAMS gcm; CK_ULONG ul; CK_ECDH1_DERIVE_PARAMS ecdh; } *buf)
{
	static CK_BYTE iv[16] = { 1, 2, 3 };
	m->mechanism = c->type;
	m->pParameter = buf;
	switch (c->param) {
	case P_NONE: m->pParameter = NULL; m->ulParameterLen = 0; break;
	case P_PSS: buf->pss = (CK_RSA_PKCS_PSS_PARAMS){ c->hash, mgf_of(c->hash), 20 }; m->ulParameterLen = sizeof(buf->pss); break;
	case P_OAEP: buf->oaep = (CK_RSA_PKCS_OAEP_PARAMS){ c->hash, mgf_of(c->hash), CKZ_DATA_SPECIFIED, NULL, 0 };
		m->ulParameterLen = sizeof(buf->oaep); break;
	case P_IV16: memcpy(buf->iv, iv, 16); m->ulParameterLen = 16; break;
	case P_IV8: memcpy(buf->iv, iv, 8); m->ulParameterLen = 8; break;
	case P_CTR: buf->ctr.ulCounterBits = 32; memcpy(buf->ctr.cb, iv, 16); m->ulParameterLen = sizeof(buf->ctr); break;
	case P_GCM: buf->gcm = (CK_GCM_PARAMS){ iv, 12, 96, NULL, 0, 128 }; m->ulParameterLen = sizeof(buf->gcm); break;
	case P_CMACGEN: buf->ul = 12; m->ulParameterLen = sizeof(buf->ul); break;
	case P_ECDH: buf->ecdh = (CK_ECDH1_DERIVE_PARAMS){ CKD_NULL, 0, NULL, k->ecpoint_len, k->ecpoint };
		m->ulParameterLen = sizeof(buf->ecdh); break;
	}
}

/* Uses mechanism m of case c once; returns the first failing CK_RV. */
static CK_RV
use(CK_SESSION_HANDLE h, const struct mech_case *c, struct keyset *k, CK_MECHANISM *m)
{
	CK_MECHANISM_INFO mi;
	CK_BYTE data[256], out[512], back[512];
	CK_ULONG dlen = c->data_len ? c->data_len : 27, olen = sizeof(out), blen = sizeof(back);
	CK_RV rv;
	memset(data, 0x5a, sizeof(data));
	data[0] = 0; /* raw RSA input below the modulus */
	if (c->param == P_PSS && c->data_len == 0)
		dlen = 27;
	ck_assert_uint_eq(f->C_GetMechanismInfo(slot, c->type, &mi), CKR_OK);
	if (mi.flags & CKF_DIGEST) {
		if ((rv = f->C_DigestInit(h, m)) != CKR_OK)
			return rv;
		return f->C_Digest(h, data, dlen, out, &olen);
	}
	if (mi.flags & (CKF_GENERATE | CKF_GENERATE_KEY_PAIR)) {
		static const CK_BYTE p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
		static const CK_BYTE ed[] = { 0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd', 's', '2', '5', '5', '1', '9' };
		static const CK_BYTE x[] = { 0x06, 0x03, 0x2b, 0x65, 0x6e };
		CK_ULONG bits = 1024, vlen = 16;
		CK_OBJECT_HANDLE a, b;
		CK_ATTRIBUTE t[1];
		CK_ULONG n = 1;
		switch (c->type) {
		case CKM_RSA_PKCS_KEY_PAIR_GEN: t[0] = (CK_ATTRIBUTE){ CKA_MODULUS_BITS, &bits, sizeof(bits) }; break;
		case CKM_EC_KEY_PAIR_GEN: t[0] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)p384, sizeof(p384) }; break;
		case CKM_EC_EDWARDS_KEY_PAIR_GEN: t[0] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)ed, sizeof(ed) }; break;
		case CKM_EC_MONTGOMERY_KEY_PAIR_GEN: t[0] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)x, sizeof(x) }; break;
		case CKM_DES3_KEY_GEN: n = 0; break;
		default: t[0] = (CK_ATTRIBUTE){ CKA_VALUE_LEN, &vlen, sizeof(vlen) }; break;
		}
		if (mi.flags & CKF_GENERATE_KEY_PAIR)
			return f->C_GenerateKeyPair(h, m, t, n, NULL, 0, &a, &b);
		return f->C_GenerateKey(h, m, t, n, &a);
	}
	if (mi.flags & CKF_DERIVE) {
		CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
		CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
		CK_ULONG vlen = 16;
		CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
				     { CKA_VALUE_LEN, &vlen, sizeof(vlen) } };
		CK_OBJECT_HANDLE derived;
		return f->C_DeriveKey(h, m, k->priv[c->key], t, 3, &derived);
	}
	if (mi.flags & CKF_SIGN) {
		if ((rv = f->C_SignInit(h, m, k->priv[c->key])) != CKR_OK ||
		    (rv = f->C_Sign(h, data, dlen, out, &olen)) != CKR_OK ||
		    (rv = f->C_VerifyInit(h, m, k->pub[c->key])) != CKR_OK)
			return rv;
		return f->C_Verify(h, data, dlen, out, olen);
	}
	if ((rv = f->C_EncryptInit(h, m, k->pub[c->key])) != CKR_OK ||
	    (rv = f->C_Encrypt(h, data, dlen, out, &olen)) != CKR_OK ||
	    (rv = f->C_DecryptInit(h, m, k->priv[c->key])) != CKR_OK ||
	    (rv = f->C_Decrypt(h, out, olen, back, &blen)) != CKR_OK)
		return rv;
	/* Raw RSA gives back the whole block, the data at its end. */
	if (blen < dlen || memcmp(back + blen - dlen, data, dlen) != 0)
		return CKR_GENERAL_ERROR;
	return CKR_OK;
}

START_TEST(every_mechanism)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	CK_MECHANISM_TYPE list[128];
	CK_ULONG n = 128;
	struct keyset k;
	memset(&k, 0, sizeof(k));
	make_keys(h, &k);
	ck_assert_uint_eq(f->C_GetMechanismList(slot, list, &n), CKR_OK);
	for (CK_ULONG i = 0; i < n; i++) {
		const struct mech_case *c = NULL;
		for (size_t j = 0; j < sizeof(cases) / sizeof(cases[0]); j++)
			if (cases[j].type == list[i])
				c = &cases[j];
		ck_assert_msg(c != NULL, "mechanism 0x%lx has no test case", list[i]);
		union {
			CK_RSA_PKCS_PSS_PARAMS pss; CK_RSA_PKCS_OAEP_PARAMS oaep; CK_BYTE iv[16];
			CK_AES_CTR_PARAMS ctr; CK_GCM_PARAMS gcm; CK_ULONG ul; CK_ECDH1_DERIVE_PARAMS ecdh;
		} buf;
		CK_MECHANISM m;
		good_mech(c, &k, &m, (void *)&buf);
		CK_RV rv = use(h, c, &k, &m);
		ck_assert_msg(rv == CKR_OK, "mechanism 0x%lx: 0x%lx", list[i], rv);
		/* The same with a parameter of the wrong size. */
		CK_BYTE junk[3] = { 1, 2, 3 };
		CK_MECHANISM bad = { list[i], junk, sizeof(junk) };
		rv = use(h, c, &k, &bad);
		ck_assert_msg(rv == CKR_MECHANISM_PARAM_INVALID, "mechanism 0x%lx, bad parameter: 0x%lx", list[i], rv);
	}
	ck_assert_uint_eq(n, sizeof(cases) / sizeof(cases[0]));
}
END_TEST

START_TEST(aes_gcm_cbc)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	CK_MECHANISM gm = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_ULONG len = 32;
	CK_ATTRIBUTE t[] = { { CKA_VALUE_LEN, &len, sizeof(len) }, { CKA_ENCRYPT, &yes, 1 },
			     { CKA_DECRYPT, &yes, 1 } };
	CK_OBJECT_HANDLE k;
	ck_assert_uint_eq(f->C_GenerateKey(h, &gm, t, 3, &k), CKR_OK);
	len = 17;
	CK_OBJECT_HANDLE bad;
	ck_assert_uint_eq(f->C_GenerateKey(h, &gm, t, 3, &bad), CKR_ATTRIBUTE_VALUE_INVALID);

	static const CK_BYTE msg[] = "forty-one bytes of plaintext for the test";
	CK_BYTE iv[12] = { 1, 2, 3 }, ct[128], pt[128];
	CK_GCM_PARAMS gp = { iv, sizeof(iv), 96, (CK_BYTE_PTR)"aad", 3, 128 };
	CK_MECHANISM m = { CKM_AES_GCM, &gp, sizeof(gp) };
	CK_ULONG clen = sizeof(ct), plen = sizeof(pt);
	ck_assert_uint_eq(f->C_EncryptInit(h, &m, k), CKR_OK);
	ck_assert_uint_eq(f->C_Encrypt(h, (CK_BYTE_PTR)msg, 41, ct, &clen), CKR_OK);
	ck_assert_uint_eq(clen, 41 + 16);
	ck_assert_uint_eq(f->C_DecryptInit(h, &m, k), CKR_OK);
	ck_assert_uint_eq(f->C_Decrypt(h, ct, clen, pt, &plen), CKR_OK);
	ck_assert_uint_eq(plen, 41);
	ck_assert_int_eq(memcmp(pt, msg, 41), 0);
	ct[3] ^= 1;
	ck_assert_uint_eq(f->C_DecryptInit(h, &m, k), CKR_OK);
	plen = sizeof(pt);
	ck_assert_uint_eq(f->C_Decrypt(h, ct, clen, pt, &plen), CKR_ENCRYPTED_DATA_INVALID);

	/* CBC with padding, in pieces: what comes out joins up to the input. */
	CK_BYTE civ[16] = { 9 };
	CK_MECHANISM cm = { CKM_AES_CBC_PAD, civ, sizeof(civ) };
	CK_ULONG total = 0, n;
	ck_assert_uint_eq(f->C_EncryptInit(h, &cm, k), CKR_OK);
	for (int i = 0; i < 41; i += 10) {
		n = sizeof(ct) - total;
		ck_assert_uint_eq(f->C_EncryptUpdate(h, (CK_BYTE_PTR)msg + i, i + 10 > 41 ? 1 : 10, ct + total, &n), CKR_OK);
		total += n;
	}
	n = 0;
	ck_assert_uint_eq(f->C_EncryptFinal(h, NULL, &n), CKR_OK);
	ck_assert_uint_eq(total + n, 48);
	ck_assert_uint_eq(f->C_EncryptFinal(h, ct + total, &n), CKR_OK);
	total += n;
	ck_assert_uint_eq(total, 48);
	ck_assert_uint_eq(f->C_DecryptInit(h, &cm, k), CKR_OK);
	plen = sizeof(pt);
	ck_assert_uint_eq(f->C_Decrypt(h, ct, total, pt, &plen), CKR_OK);
	ck_assert_uint_eq(plen, 41);
	ck_assert_int_eq(memcmp(pt, msg, 41), 0);
	ck_assert_uint_eq(f->C_DecryptInit(h, &cm, k), CKR_OK);
	plen = sizeof(pt);
	ck_assert_uint_eq(f->C_Decrypt(h, ct, 47, pt, &plen), CKR_ENCRYPTED_DATA_LEN_RANGE);
	CK_MECHANISM badiv = { CKM_AES_CBC_PAD, civ, 8 };
	ck_assert_uint_eq(f->C_EncryptInit(h, &badiv, k), CKR_MECHANISM_PARAM_INVALID);
}
END_TEST

/* keymgrd keeps token keys unsealed between operations; any change to the
 * store is seen by the next operation. */
START_TEST(key_cache_follows_store)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_BYTE v[32] = { 1, 2, 3 }, mac[32];
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
			     { CKA_VALUE, v, sizeof(v) }, { CKA_SIGN, &yes, 1 }, { CKA_TOKEN, &yes, 1 },
			     { CKA_PRIVATE, &yes, 1 } };
	CK_OBJECT_HANDLE k, k2;
	ck_assert_uint_eq(f->C_CreateObject(h, t, 6, &k), CKR_OK);
	CK_MECHANISM m = { CKM_SHA256_HMAC, NULL, 0 };
	for (int i = 0; i < 3; i++) {
		CK_ULONG n = sizeof(mac);
		ck_assert_uint_eq(f->C_SignInit(h, &m, k), CKR_OK);
		ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)"abc", 3, mac, &n), CKR_OK);
	}
	/* A change of the key itself. */
	CK_ATTRIBUTE off = { CKA_SIGN, &no, 1 };
	ck_assert_uint_eq(f->C_SetAttributeValue(h, k, &off, 1), CKR_OK);
	ck_assert_uint_eq(f->C_SignInit(h, &m, k), CKR_KEY_FUNCTION_NOT_PERMITTED);
	/* Logged out, a private key is not there at all. */
	ck_assert_uint_eq(f->C_CreateObject(h, t, 6, &k2), CKR_OK);
	CK_ULONG n = sizeof(mac);
	ck_assert_uint_eq(f->C_SignInit(h, &m, k2), CKR_OK);
	ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)"abc", 3, mac, &n), CKR_OK);
	ck_assert_uint_eq(f->C_Logout(h), CKR_OK);
	ck_assert_uint_eq(f->C_SignInit(h, &m, k2), CKR_KEY_HANDLE_INVALID);
	ck_assert_uint_eq(f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)USER, strlen(USER)), CKR_OK);
	n = sizeof(mac);
	ck_assert_uint_eq(f->C_SignInit(h, &m, k2), CKR_OK);
	ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)"abc", 3, mac, &n), CKR_OK);
	/* Destroyed. */
	ck_assert_uint_eq(f->C_DestroyObject(h, k2), CKR_OK);
	ck_assert_uint_eq(f->C_SignInit(h, &m, k2), CKR_KEY_HANDLE_INVALID);
}
END_TEST

/* A PIN check (Argon2id at its real cost) does not hold up other
 * applications: signatures go on during another application's unlocks. */
static volatile int signing_stop;
static volatile long signed_during;

static void *
hmac_signer(void *arg)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)arg;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_BYTE v[32] = { 9 }, mac[32];
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
			     { CKA_VALUE, v, sizeof(v) }, { CKA_SIGN, &yes, 1 } };
	CK_OBJECT_HANDLE k;
	CK_MECHANISM m = { CKM_SHA256_HMAC, NULL, 0 };
	if (f->C_CreateObject(h, t, 4, &k) != CKR_OK)
		return (void *)1;
	while (!signing_stop) {
		CK_ULONG n = sizeof(mac);
		if (f->C_SignInit(h, &m, k) != CKR_OK || f->C_Sign(h, (CK_BYTE_PTR)"x", 1, mac, &n) != CKR_OK)
			return (void *)1;
		__atomic_add_fetch(&signed_during, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

START_TEST(pin_check_does_not_stall)
{
	/* Argon2id at three times its default passes: a check long enough
	 * (60 ms and more) for the signer to show whether it was held up,
	 * even on a busy machine. */
	d->ctx.pin_cost = pin_cost_default;
	d->ctx.pin_cost.passes *= 3;
	CK_SESSION_HANDLE h = new_token_session(true);
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, hmac_signer, &h), 0);
	uint8_t app[PROTO_APP_ID_LEN] = { 7 };
	struct cy_conn *c;
	ck_assert_int_eq(client_open(d->sock, app, &c), 0);
	long most = 0;
	for (int i = 0; i < 5; i++) {
		uint32_t rv;
		long before = __atomic_load_n(&signed_during, __ATOMIC_RELAXED);
		struct wire_buf *b = client_begin(c, MSG_UNLOCK);
		wire_put_u32(b, (uint32_t)slot);
		wire_put_bytes(b, USER, strlen(USER));
		wire_put_u32(b, 60);
		ck_assert_int_eq(client_call(c, &rv), 0);
		ck_assert_uint_eq(rv, CKR_OK);
		long during = __atomic_load_n(&signed_during, __ATOMIC_RELAXED) - before;
		if (during > most)
			most = during;
	}
	signing_stop = 1;
	void *err;
	pthread_join(th, &err);
	ck_assert_ptr_null(err);
	client_close(c);
	/* Held under keymgrd's lock, an unlock lets one or two through. */
	ck_assert_msg(most >= 5, "only %ld signatures during a PIN check", most);
}
END_TEST

/* ---- large inputs: the shared region ---- */

static CK_OBJECT_HANDLE
aes_key_of(CK_SESSION_HANDLE h, const CK_BYTE *value, CK_ULONG len)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
			     { CKA_VALUE, (CK_VOID_PTR)value, len }, { CKA_ENCRYPT, &yes, 1 },
			     { CKA_DECRYPT, &yes, 1 } };
	CK_OBJECT_HANDLE k;
	ck_assert_uint_eq(f->C_CreateObject(h, t, 5, &k), CKR_OK);
	return k;
}

/* libgcrypt's answer: mode over in (n bytes, a multiple of the block
 * size unless GCM), with the GCM tag appended. */
static void
gcrypt_encrypt(int mode, const CK_BYTE *key, const CK_BYTE *iv, size_t ivlen, const CK_BYTE *in, size_t n,
	       CK_BYTE *out)
{
	gcry_cipher_hd_t c;
	ck_assert_int_eq(gcry_cipher_open(&c, GCRY_CIPHER_AES256, mode, 0), 0);
	ck_assert_int_eq(gcry_cipher_setkey(c, key, 32), 0);
	ck_assert_int_eq(gcry_cipher_setiv(c, iv, ivlen), 0);
	if (mode == GCRY_CIPHER_MODE_GCM) {
		ck_assert_int_eq(gcry_cipher_authenticate(c, "aad", 3), 0);
		ck_assert_int_eq(gcry_cipher_final(c), 0);
	}
	ck_assert_int_eq(gcry_cipher_encrypt(c, out, n, in, n), 0);
	if (mode == GCRY_CIPHER_MODE_GCM)
		ck_assert_int_eq(gcry_cipher_gettag(c, out + n, 16), 0);
	gcry_cipher_close(c);
}

START_TEST(large_data)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	enum { N = (1 << 20) + 5, CAP = 3 << 20 };
	CK_BYTE key[32], iv[16] = { 7 };
	CK_BYTE *msg = malloc(N), *want = malloc(N + 32), *ct = malloc(CAP), *pt = malloc(CAP);
	gcry_randomize(key, sizeof(key), GCRY_STRONG_RANDOM);
	gcry_randomize(msg, N, GCRY_STRONG_RANDOM);
	CK_OBJECT_HANDLE k = aes_key_of(h, key, sizeof(key));

	/* GCM in one call, against libgcrypt; the two-call convention. */
	CK_GCM_PARAMS gp = { iv, 12, 96, (CK_BYTE_PTR)"aad", 3, 128 };
	CK_MECHANISM gm = { CKM_AES_GCM, &gp, sizeof(gp) };
	gcrypt_encrypt(GCRY_CIPHER_MODE_GCM, key, iv, 12, msg, N, want);
	CK_ULONG n = 0;
	ck_assert_uint_eq(f->C_EncryptInit(h, &gm, k), CKR_OK);
	ck_assert_uint_eq(f->C_Encrypt(h, msg, N, NULL, &n), CKR_OK);
	ck_assert_uint_eq(n, N + 16);
	n = N + 15;
	ck_assert_uint_eq(f->C_Encrypt(h, msg, N, ct, &n), CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(n, N + 16);
	n = CAP; /* far more room than needed */
	ck_assert_uint_eq(f->C_Encrypt(h, msg, N, ct, &n), CKR_OK);
	ck_assert_uint_eq(n, N + 16);
	ck_assert_int_eq(memcmp(ct, want, N + 16), 0);
	ck_assert_uint_eq(f->C_Encrypt(h, msg, N, ct, &n), CKR_OPERATION_NOT_INITIALIZED);

	CK_ULONG pn = CAP;
	ck_assert_uint_eq(f->C_DecryptInit(h, &gm, k), CKR_OK);
	ck_assert_uint_eq(f->C_Decrypt(h, ct, N + 16, pt, &pn), CKR_OK);
	ck_assert_uint_eq(pn, N);
	ck_assert_int_eq(memcmp(pt, msg, N), 0);
	/* A changed byte: nothing comes out. */
	ct[N / 2] ^= 0x40;
	memset(pt, 0xaa, N);
	pn = CAP;
	ck_assert_uint_eq(f->C_DecryptInit(h, &gm, k), CKR_OK);
	ck_assert_uint_eq(f->C_Decrypt(h, ct, N + 16, pt, &pn), CKR_ENCRYPTED_DATA_INVALID);
	for (size_t i = 0; i < N; i += 4099)
		ck_assert_uint_eq(pt[i], 0xaa);
	ct[N / 2] ^= 0x40;

	/* GCM in large parts: the ciphertext waits for its tag, then all of it. */
	ck_assert_uint_eq(f->C_DecryptInit(h, &gm, k), CKR_OK);
	CK_ULONG done = 0;
	for (CK_ULONG off = 0; off < N + 16; off += 400000) {
		CK_ULONG part = N + 16 - off < 400000 ? N + 16 - off : 400000;
		pn = CAP - done;
		ck_assert_uint_eq(f->C_DecryptUpdate(h, ct + off, part, pt + done, &pn), CKR_OK);
		ck_assert_uint_eq(pn, 0);
	}
	pn = CAP;
	ck_assert_uint_eq(f->C_DecryptFinal(h, pt, &pn), CKR_OK);
	ck_assert_uint_eq(pn, N);
	ck_assert_int_eq(memcmp(pt, msg, N), 0);

	/* CBC with padding in uneven large parts, against libgcrypt. */
	CK_MECHANISM cm = { CKM_AES_CBC_PAD, iv, 16 };
	size_t whole = N - N % 16;
	memcpy(pt, msg, N);
	memset(pt + N, 16 - N % 16, 16 - N % 16);
	gcrypt_encrypt(GCRY_CIPHER_MODE_CBC, key, iv, 16, pt, whole + 16, want);
	ck_assert_uint_eq(f->C_EncryptInit(h, &cm, k), CKR_OK);
	done = 0;
	static const CK_ULONG parts[] = { 70001, 300000, 3, 200000 };
	CK_ULONG off = 0;
	for (int i = 0; off < N; i = (i + 1) % 4) {
		CK_ULONG part = N - off < parts[i] ? N - off : parts[i];
		n = CAP - done;
		ck_assert_uint_eq(f->C_EncryptUpdate(h, msg + off, part, ct + done, &n), CKR_OK);
		done += n;
		off += part;
	}
	n = CAP - done;
	ck_assert_uint_eq(f->C_EncryptFinal(h, ct + done, &n), CKR_OK);
	done += n;
	ck_assert_uint_eq(done, whole + 16);
	ck_assert_int_eq(memcmp(ct, want, done), 0);
	pn = CAP;
	ck_assert_uint_eq(f->C_DecryptInit(h, &cm, k), CKR_OK);
	ck_assert_uint_eq(f->C_Decrypt(h, ct, done, pt, &pn), CKR_OK);
	ck_assert_uint_eq(pn, N);
	ck_assert_int_eq(memcmp(pt, msg, N), 0);
	pn = CAP;
	ck_assert_uint_eq(f->C_DecryptInit(h, &cm, k), CKR_OK);
	ck_assert_uint_eq(f->C_Decrypt(h, ct, done - 1, pt, &pn), CKR_ENCRYPTED_DATA_LEN_RANGE);

	/* HMAC over a large input, against libgcrypt. */
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE gkt = CKK_GENERIC_SECRET;
	CK_ATTRIBUTE mt[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &gkt, sizeof(gkt) },
			      { CKA_VALUE, key, 32 }, { CKA_SIGN, &yes, 1 }, { CKA_VERIFY, &yes, 1 } };
	CK_OBJECT_HANDLE mk;
	ck_assert_uint_eq(f->C_CreateObject(h, mt, 5, &mk), CKR_OK);
	CK_MECHANISM hm = { CKM_SHA256_HMAC, NULL, 0 };
	CK_BYTE mac[32], gmac[32];
	size_t gl = sizeof(gmac);
	gcry_mac_hd_t gh;
	ck_assert_int_eq(gcry_mac_open(&gh, GCRY_MAC_HMAC_SHA256, 0, NULL), 0);
	ck_assert_int_eq(gcry_mac_setkey(gh, key, 32), 0);
	ck_assert_int_eq(gcry_mac_write(gh, msg, N), 0);
	ck_assert_int_eq(gcry_mac_read(gh, gmac, &gl), 0);
	gcry_mac_close(gh);
	n = sizeof(mac);
	ck_assert_uint_eq(f->C_SignInit(h, &hm, mk), CKR_OK);
	ck_assert_uint_eq(f->C_Sign(h, msg, N, mac, &n), CKR_OK);
	ck_assert_uint_eq(n, 32);
	ck_assert_int_eq(memcmp(mac, gmac, 32), 0);
	ck_assert_uint_eq(f->C_VerifyInit(h, &hm, mk), CKR_OK);
	ck_assert_uint_eq(f->C_Verify(h, msg, N, mac, 32), CKR_OK);
	mac[0] ^= 1;
	ck_assert_uint_eq(f->C_VerifyInit(h, &hm, mk), CKR_OK);
	ck_assert_uint_eq(f->C_Verify(h, msg, N, mac, 32), CKR_SIGNATURE_INVALID);
	free(msg);
	free(want);
	free(ct);
	free(pt);
}
END_TEST

/* Sends SHM_ATTACH announcing size with fd (-1: none); returns the rv. */
static uint32_t
attach(struct cy_conn *c, uint64_t size, int fd)
{
	uint32_t type, rv;
	struct wire_buf *b = client_begin(c, MSG_SHM_ATTACH);
	wire_put_u64(b, size);
	ck_assert_int_eq(frame_send(c->t, b, fd), 0);
	ck_assert_int_eq(frame_recv(c->t, &c->rep, WIRE_MAX_FRAME, -1, NULL), 0);
	ck_assert_int_eq(wire_get_u32(&c->rep, &type), 0);
	ck_assert_uint_eq(type, MSG_SHM_ATTACH | PROTO_REPLY);
	ck_assert_int_eq(wire_get_u32(&c->rep, &rv), 0);
	return rv;
}

static int
memfd_of(size_t size, unsigned seals)
{
	int fd = memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	if (seals)
		ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

/* keymgrd maps only a memfd that cannot shrink, of the size announced, and
 * a step's offsets must stay inside it; none of this closes the connection. */
START_TEST(shared_region_rules)
{
	uint8_t app[PROTO_APP_ID_LEN] = { 1 };
	struct cy_conn *c;
	uint32_t rv;
	ck_assert_int_eq(client_open(d->sock, app, &c), 0);
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_uint_eq(attach(c, 4096, -1), CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(attach(c, 4096, p[0]), CKR_ARGUMENTS_BAD);
	int fd = memfd_of(1 << 20, 0);
	ck_assert_uint_eq(attach(c, 1 << 20, fd), CKR_ARGUMENTS_BAD); /* could shrink */
	close(fd);
	fd = memfd_of(1 << 20, F_SEAL_SHRINK);
	ck_assert_uint_eq(attach(c, 2 << 20, fd), CKR_ARGUMENTS_BAD); /* not that size */
	ck_assert_uint_eq(attach(c, 1 << 20, fd), CKR_OK);
	/* It may still grow; keymgrd uses what it mapped. */
	ck_assert_int_eq(ftruncate(fd, 2 << 20), 0);
	close(fd);
	close(p[0]);
	close(p[1]);
	/* A session of this connection's own, so that the offsets are what
	 * is refused (an unknown session would be refused first). */
	new_token_session(false);
	struct wire_buf *b = client_begin(c, MSG_OPEN_SESSION);
	wire_put_u32(b, (uint32_t)slot);
	wire_put_u32(b, CKF_SERIAL_SESSION);
	ck_assert_int_eq(client_call(c, &rv), 0);
	ck_assert_uint_eq(rv, CKR_OK);
	uint32_t sh = 0;
	ck_assert_int_eq(wire_get_u32(&c->rep, &sh), 0);
	b = client_begin(c, MSG_OP_SHM);
	wire_put_u32(b, sh);
	wire_put_u32(b, OP_ENCRYPT);
	wire_put_u32(b, MSG_OP_RUN);
	wire_put_u64(b, (1 << 20) - 10);
	wire_put_u64(b, 11); /* one byte past the end */
	wire_put_bytes(b, NULL, 0);
	wire_put_u64(b, 0);
	wire_put_u32(b, 100);
	wire_put_u8(b, 0);
	ck_assert_int_eq(client_call(c, &rv), 0);
	ck_assert_uint_eq(rv, CKR_ARGUMENTS_BAD);
	/* The connection still works, and the module's own path does too. */
	ck_assert_int_eq(client_shm(c, 3 << 20), 0);
	ck_assert_uint_ge(c->shm_size, 3 << 20);
	client_close(c);
}
END_TEST

START_TEST(digest_and_random)
{
	CK_SESSION_HANDLE h = new_token_session(false);
	CK_MECHANISM m = { CKM_SHA256, NULL, 0 };
	static const CK_BYTE want[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	CK_BYTE out[64];
	CK_ULONG n = 0;
	ck_assert_uint_eq(f->C_DigestInit(h, &m), CKR_OK);
	ck_assert_uint_eq(f->C_DigestInit(h, &m), CKR_OPERATION_ACTIVE);
	ck_assert_uint_eq(f->C_Digest(h, (CK_BYTE_PTR)"abc", 3, NULL, &n), CKR_OK);
	ck_assert_uint_eq(n, 32);
	n = 10;
	ck_assert_uint_eq(f->C_Digest(h, (CK_BYTE_PTR)"abc", 3, out, &n), CKR_BUFFER_TOO_SMALL);
	n = sizeof(out);
	ck_assert_uint_eq(f->C_Digest(h, (CK_BYTE_PTR)"abc", 3, out, &n), CKR_OK);
	ck_assert_int_eq(memcmp(out, want, 32), 0);
	ck_assert_uint_eq(f->C_DigestInit(h, &m), CKR_OK);
	ck_assert_uint_eq(f->C_DigestUpdate(h, (CK_BYTE_PTR)"a", 1), CKR_OK);
	ck_assert_uint_eq(f->C_DigestUpdate(h, (CK_BYTE_PTR)"bc", 2), CKR_OK);
	n = sizeof(out);
	ck_assert_uint_eq(f->C_DigestFinal(h, out, &n), CKR_OK);
	ck_assert_int_eq(memcmp(out, want, 32), 0);
	ck_assert_uint_eq(f->C_DigestUpdate(h, (CK_BYTE_PTR)"a", 1), CKR_OPERATION_NOT_INITIALIZED);
	CK_MECHANISM md5 = { CKM_MD5, NULL, 0 };
	ck_assert_uint_eq(f->C_DigestInit(h, &md5), CKR_MECHANISM_INVALID);
	CK_BYTE r1[32] = { 0 }, r2[32] = { 0 };
	ck_assert_uint_eq(f->C_GenerateRandom(h, r1, 32), CKR_OK);
	ck_assert_uint_eq(f->C_GenerateRandom(h, r2, 32), CKR_OK);
	ck_assert_int_ne(memcmp(r1, r2, 32), 0);
	ck_assert_uint_eq(f->C_GenerateRandom(0x7777, r1, 32), CKR_SESSION_HANDLE_INVALID);
	ck_assert_uint_eq(f->C_SeedRandom(h, r1, 4), CKR_RANDOM_SEED_NOT_SUPPORTED);
}
END_TEST

/* ---- fork and threads ---- */

START_TEST(fork_child_must_initialize)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		CK_SESSION_INFO info;
		CK_SESSION_HANDLE c;
		int bad = 0;
		bad |= f->C_GetSessionInfo(h, &info) != CKR_CRYPTOKI_NOT_INITIALIZED;
		bad |= f->C_Initialize(NULL) != CKR_OK;
		/* The parent's session and login are not the child's. */
		bad |= f->C_GetSessionInfo(h, &info) != CKR_SESSION_HANDLE_INVALID;
		bad |= f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &c) != CKR_OK;
		bad |= f->C_GetSessionInfo(c, &info) != CKR_OK || info.state != CKS_RO_PUBLIC_SESSION;
		f->C_Finalize(NULL);
		_exit(bad);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	CK_SESSION_INFO info;
	ck_assert_uint_eq(f->C_GetSessionInfo(h, &info), CKR_OK);
	ck_assert_uint_eq(info.state, CKS_RW_USER_FUNCTIONS);
}
END_TEST

struct signer {
	CK_OBJECT_HANDLE priv;
	volatile int *stop;
	int signed_count;
	int errors;
};

static void *
sign_loop(void *arg)
{
	struct signer *s = arg;
	CK_SESSION_HANDLE h;
	if (f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h) != CKR_OK) {
		s->errors++;
		return NULL;
	}
	while (!*s->stop) {
		CK_MECHANISM m = { CKM_ECDSA_SHA256, NULL, 0 };
		CK_BYTE sig[128];
		CK_ULONG n = sizeof(sig);
		if (f->C_SignInit(h, &m, s->priv) != CKR_OK || f->C_Sign(h, (CK_BYTE_PTR)"x", 1, sig, &n) != CKR_OK)
			s->errors++;
		else
			s->signed_count++;
	}
	f->C_CloseSession(h);
	return NULL;
}

START_TEST(threads_and_slow_keygen)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	static const CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pt[] = { { CKA_EC_PARAMS, (void *)p256, sizeof(p256) } };
	CK_ATTRIBUTE vt[] = { { CKA_SIGN, &yes, 1 }, { CKA_TOKEN, &yes, 1 } };
	CK_OBJECT_HANDLE pub, priv;
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &m, pt, 1, vt, 2, &pub, &priv), CKR_OK);
	volatile int stop = 0;
	struct signer s[3];
	pthread_t th[3];
	for (int i = 0; i < 3; i++) {
		s[i] = (struct signer){ priv, &stop, 0, 0 };
		ck_assert_int_eq(pthread_create(&th[i], NULL, sign_loop, &s[i]), 0);
	}
	/* While RSA-4096 is generated on this thread, the signers go on. */
	int before = s[0].signed_count + s[1].signed_count + s[2].signed_count;
	CK_OBJECT_HANDLE rpub, rpriv;
	gen_rsa(h, 4096, &rpub, &rpriv);
	int during = s[0].signed_count + s[1].signed_count + s[2].signed_count - before;
	stop = 1;
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(s[i].errors, 0);
		ck_assert_int_gt(s[i].signed_count, 0);
	}
	ck_assert_msg(during > 0, "no signature completed while RSA-4096 was generated");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("module");
	TCase *raw = tcase_create("/module/init");
	tcase_add_checked_fixture(raw, setup, teardown);
	tcase_add_test(raw, initialize_rules);
	tcase_add_test(raw, no_daemon);
	suite_add_tcase(s, raw);
	TCase *tc = tcase_create("/module");
	tcase_add_checked_fixture(tc, setup_init, teardown);
	tcase_add_test(tc, unsupported_functions);
	tcase_add_test(tc, interfaces_3_0);
	tcase_add_test(tc, slots_and_token_info);
	tcase_add_test(tc, login_rules);
	tcase_add_test(tc, objects_and_attributes);
	tcase_add_test(tc, private_key_attributes);
	tcase_add_test(tc, rsa_sign_verify_encrypt);
	tcase_add_test(tc, ec_sign_verify);
	tcase_add_test(tc, ed25519_rfc8032);
	tcase_add_test(tc, aes_gcm_cbc);
	tcase_add_test(tc, large_data);
	tcase_add_test(tc, key_cache_follows_store);
	tcase_add_test(tc, pin_check_does_not_stall);
	tcase_add_test(tc, shared_region_rules);
	tcase_add_test(tc, mac_vectors);
	tcase_add_test(tc, ctr_and_des3);
	tcase_add_test(tc, recover_auth_digest_key);
	tcase_add_test(tc, wrap_unwrap);
	tcase_add_test(tc, wrap_templates);
	tcase_add_test(tc, ecdh_derive);
	tcase_add_test(tc, every_mechanism);
	tcase_add_test(tc, digest_and_random);
	tcase_add_test(tc, fork_child_must_initialize);
	tcase_add_test(tc, threads_and_slow_keygen);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
