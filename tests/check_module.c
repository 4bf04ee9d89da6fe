/*
 * check_module.c - coyeu-pkcs11.so against a keymgrd running in this
 * process: the module's client stubs go through a real socket into the
 * daemon's dispatcher. This suite: initialisation, slots, sessions, login,
 * objects, the key cache, the shared region, digests, fork and threads;
 * check_module_crypto and check_module_keys have the mechanisms.
 */
#include "config.h"

#include <check.h>
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
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
#include "module_fixture.h"

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
	ck_assert_uint_eq(f->C_GetFunctionStatus(1), CKR_FUNCTION_NOT_PARALLEL);
}
END_TEST

/* C_WaitForSlotEvent(CKF_DONT_BLOCK): nothing at first, then the slot that
 * appeared (a token made in the spare slot brings a new spare one), once. */
START_TEST(slot_events)
{
	CK_SLOT_ID ev = 99;
	ck_assert_uint_eq(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, NULL, NULL), CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &ev, NULL), CKR_NO_EVENT);
	ck_assert_uint_eq(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &ev, NULL), CKR_NO_EVENT);
	new_token_session(false);
	ck_assert_uint_eq(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &ev, NULL), CKR_OK);
	ck_assert_uint_eq(ev, 2);
	ck_assert_uint_eq(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &ev, NULL), CKR_NO_EVENT);
}
END_TEST

struct waiter {
	pthread_t t;
	CK_SLOT_ID slot;
	CK_RV rv;
};

static void *
blocking_wait(void *arg)
{
	struct waiter *w = arg;
	w->rv = f->C_WaitForSlotEvent(0, &w->slot, NULL);
	return NULL;
}

/* The blocking C_WaitForSlotEvent: returns the slot that appeared, and
 * C_Finalize ends a wait with CKR_CRYPTOKI_NOT_INITIALIZED. */
START_TEST(slot_events_blocking)
{
	CK_SLOT_ID ev = 99;
	ck_assert_uint_eq(f->C_WaitForSlotEvent(0, NULL, NULL), CKR_ARGUMENTS_BAD);
	/* Counted from here. */
	ck_assert_uint_eq(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &ev, NULL), CKR_NO_EVENT);
	struct waiter w = { .slot = 99, .rv = CKR_GENERAL_ERROR };
	ck_assert_int_eq(pthread_create(&w.t, NULL, blocking_wait, &w), 0);
	new_token_session(false);
	ck_assert_int_eq(pthread_join(w.t, NULL), 0);
	ck_assert_uint_eq(w.rv, CKR_OK);
	ck_assert_uint_eq(w.slot, 2);
	/* Nothing more comes: C_Finalize ends the wait (whether it began
	 * before or after, the answer is the same). */
	w.rv = CKR_GENERAL_ERROR;
	ck_assert_int_eq(pthread_create(&w.t, NULL, blocking_wait, &w), 0);
	usleep(300 * 1000);
	/* A child forked meanwhile has no waiter to wait for at its C_Finalize. */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(f->C_Initialize(NULL) == CKR_OK && f->C_Finalize(NULL) == CKR_OK ? 0 : 1);
	int status = -1;
	pid_t got = 0;
	for (int i = 0; i < 200 && got == 0; i++) { /* 20 s at most */
		if ((got = waitpid(pid, &status, WNOHANG)) == 0)
			usleep(100 * 1000);
	}
	if (got == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	ck_assert_msg(got == pid, "the forked child's C_Finalize did not return");
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_uint_eq(f->C_Finalize(NULL), CKR_OK);
	ck_assert_int_eq(pthread_join(w.t, NULL), 0);
	ck_assert_uint_eq(w.rv, CKR_CRYPTOKI_NOT_INITIALIZED);
	/* The module starts again as usual. */
	ck_assert_uint_eq(f->C_Initialize(NULL), CKR_OK);
	ck_assert_uint_eq(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &ev, NULL), CKR_NO_EVENT);
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
	ck_assert_uint_eq(get((CK_UTF8CHAR_PTR)"PKCS 11", &v240, &i240, 0), CKR_OK);
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
	/* A digest is no signature mechanism. */
	ck_assert_uint_eq(f3->C_MessageSignInit(h, &dm, 1), CKR_MECHANISM_INVALID);
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
		/* The same PIN hashed anew: not one the cache of verified PINs
		 * knows, so this check runs Argon2id. */
		pthread_mutex_lock(&d->ctx.lock);
		ck_assert_uint_eq(token_set_pin_locked(&d->ctx, token_find_locked(&d->ctx, (int64_t)slot), CKU_USER,
						       (const uint8_t *)USER, strlen(USER)), CKR_OK);
		pthread_mutex_unlock(&d->ctx.lock);
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
	wire_put_u32(b, 0); /* any handle */
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
	ck_assert_uint_eq(f->C_SeedRandom(h, r1, 4), CKR_OK); /* mixed into the pool */
}
END_TEST

/* ---- fork and threads ---- */

/* PKCS#11 2.40 5.1.7: a handle that is no session is CKR_SESSION_HANDLE_INVALID
 * in every digest function, not CKR_OPERATION_NOT_INITIALIZED; a session
 * without a digest in progress is CKR_OPERATION_NOT_INITIALIZED. */
/* A digest's state saved in one session goes on in another (SHA-256 of
 * "abc" from "a" saved and "bc" added); what cannot be saved says so. */
START_TEST(digest_operation_state)
{
	CK_SESSION_HANDLE h = new_token_session(false), h2;
	ck_assert_uint_eq(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h2), CKR_OK);
	CK_MECHANISM m = { CKM_SHA256, NULL, 0 };
	static const CK_BYTE want[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	CK_BYTE state[256], out[32];
	CK_ULONG n = 0, len = sizeof(out);
	ck_assert_uint_eq(f->C_GetOperationState(h, NULL, &n), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f->C_GetOperationState(0x7777, NULL, &n), CKR_SESSION_HANDLE_INVALID);
	ck_assert_uint_eq(f->C_DigestInit(h, &m), CKR_OK);
	ck_assert_uint_eq(f->C_DigestUpdate(h, (CK_BYTE_PTR)"a", 1), CKR_OK);
	ck_assert_uint_eq(f->C_GetOperationState(h, NULL, &n), CKR_OK);
	ck_assert_uint_le(n, sizeof(state));
	CK_ULONG small = 3;
	ck_assert_uint_eq(f->C_GetOperationState(h, state, &small), CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(f->C_GetOperationState(h, state, &n), CKR_OK);
	ck_assert_uint_eq(f->C_SetOperationState(h2, state, n, 5, 0), CKR_KEY_NOT_NEEDED);
	state[0] ^= 1;
	ck_assert_uint_eq(f->C_SetOperationState(h2, state, n, 0, 0), CKR_SAVED_STATE_INVALID);
	state[0] ^= 1;
	ck_assert_uint_eq(f->C_SetOperationState(h2, state, n - 1, 0, 0), CKR_SAVED_STATE_INVALID);
	ck_assert_uint_eq(f->C_SetOperationState(h2, state, n, 0, 0), CKR_OK);
	ck_assert_uint_eq(f->C_DigestUpdate(h2, (CK_BYTE_PTR)"bc", 2), CKR_OK);
	ck_assert_uint_eq(f->C_DigestFinal(h2, out, &len), CKR_OK);
	ck_assert_int_eq(memcmp(out, want, 32), 0);
	/* Past 64 KiB of data the state is not kept. */
	static CK_BYTE big[65537];
	ck_assert_uint_eq(f->C_DigestUpdate(h, big, sizeof(big)), CKR_OK);
	ck_assert_uint_eq(f->C_GetOperationState(h, NULL, &n), CKR_STATE_UNSAVEABLE);
}
END_TEST

START_TEST(digest_session_checked_first)
{
	CK_SESSION_HANDLE h = new_token_session(false), bad = h + 1000;
	CK_BYTE out[64];
	CK_ULONG n = sizeof(out);
	ck_assert_uint_eq(f->C_Digest(bad, (CK_BYTE_PTR)"abc", 3, out, &n), CKR_SESSION_HANDLE_INVALID);
	ck_assert_uint_eq(f->C_DigestUpdate(bad, (CK_BYTE_PTR)"abc", 3), CKR_SESSION_HANDLE_INVALID);
	ck_assert_uint_eq(f->C_DigestKey(bad, 1), CKR_SESSION_HANDLE_INVALID);
	ck_assert_uint_eq(f->C_DigestFinal(bad, out, &n), CKR_SESSION_HANDLE_INVALID);
	ck_assert_uint_eq(f->C_Digest(h, (CK_BYTE_PTR)"abc", 3, out, &n), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f->C_DigestUpdate(h, (CK_BYTE_PTR)"abc", 3), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f->C_DigestKey(h, 1), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f->C_DigestFinal(h, out, &n), CKR_OPERATION_NOT_INITIALIZED);
}
END_TEST

/* Issue 17 bugs 5 and 6: what the info structures claim is true, and
 * C_SeedRandom checks its arguments, then takes the seed. */
START_TEST(info_claims_true)
{
	CK_RV (*get)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS) =
		(CK_RV (*)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS))dlsym(lib, "C_GetInterface");
	CK_INTERFACE_PTR ifc = NULL;
	ck_assert_ptr_nonnull(get);
	/* A forked child must call C_Initialize again (the 2.x behaviour): not fork-safe. */
	ck_assert_uint_eq(get((CK_UTF8CHAR_PTR)"PKCS 11", NULL, &ifc, CKF_INTERFACE_FORK_SAFE), CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(get((CK_UTF8CHAR_PTR)"PKCS 11", NULL, &ifc, 0), CKR_OK);
	ck_assert_uint_eq(ifc->flags & CKF_INTERFACE_FORK_SAFE, 0);
	CK_MECHANISM_TYPE mechs[128];
	CK_ULONG n = 128;
	ck_assert_uint_eq(f->C_GetMechanismList(slot, mechs, &n), CKR_OK);
	ck_assert_uint_gt(n, 10);
	for (CK_ULONG i = 0; i < n; i++) {
		CK_MECHANISM_INFO mi;
		ck_assert_uint_eq(f->C_GetMechanismInfo(slot, mechs[i], &mi), CKR_OK);
		ck_assert_msg(!(mi.flags & CKF_HW), "mechanism 0x%lx claims CKF_HW", mechs[i]);
		if (mechs[i] == CKM_EDDSA || mechs[i] == CKM_EC_EDWARDS_KEY_PAIR_GEN ||
		    mechs[i] == CKM_EC_MONTGOMERY_KEY_PAIR_GEN)
			ck_assert_msg(!(mi.flags & (CKF_EC_F_P | CKF_EC_UNCOMPRESS)),
				      "mechanism 0x%lx claims X9.62 flags", mechs[i]);
	}
	CK_SESSION_HANDLE h = new_token_session(false);
	CK_BYTE seed[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	ck_assert_uint_eq(f->C_SeedRandom(h, NULL, 5), CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(f->C_SeedRandom(h + 1000, seed, sizeof(seed)), CKR_SESSION_HANDLE_INVALID);
	ck_assert_uint_eq(f->C_SeedRandom(h, seed, sizeof(seed)), CKR_OK);
	ck_assert_uint_eq(f->C_SeedRandom(h, NULL, 0), CKR_OK);
}
END_TEST

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
	tcase_add_test(tc, slot_events);
	tcase_add_test(tc, slot_events_blocking);
	tcase_add_test(tc, digest_operation_state);
	tcase_add_test(tc, interfaces_3_0);
	tcase_add_test(tc, slots_and_token_info);
	tcase_add_test(tc, login_rules);
	tcase_add_test(tc, objects_and_attributes);
	tcase_add_test(tc, private_key_attributes);
	tcase_add_test(tc, key_cache_follows_store);
	tcase_add_test(tc, pin_check_does_not_stall);
	tcase_add_test(tc, shared_region_rules);
	tcase_add_test(tc, digest_and_random);
	tcase_add_test(tc, digest_session_checked_first);
	tcase_add_test(tc, info_claims_true);
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
