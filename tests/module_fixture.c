/*
 * module_fixture.c - what the check_module* suites share: a keymgrd in a
 * thread of the test process, the module loaded with dlopen, and the
 * helpers several suites use.
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
#include "module_fixture.h"

struct tu_daemon *d;
void *lib;
CK_FUNCTION_LIST_PTR f;
CK_SLOT_ID slot = 1;
const char *SO = "12345678", *USER = "1234";

CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

void
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

void
setup(void)
{
	tu_init_gcrypt();
	d = tu_daemon_open(true);
	setenv("COYEU_SOCKET", d->sock, 1);
	load_module();
}

void
setup_init(void)
{
	setup();
	ck_assert_uint_eq(f->C_Initialize(NULL), CKR_OK);
}

void
teardown(void)
{
	if (f)
		f->C_Finalize(NULL);
	tu_daemon_close(d);
	d = NULL;
}

CK_SESSION_HANDLE
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

/* The module's PKCS#11 3.0 function list. */
CK_FUNCTION_LIST_3_0_PTR
list_3_0(void)
{
	CK_RV (*get)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS) =
		(CK_RV (*)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS))dlsym(lib, "C_GetInterface");
	CK_INTERFACE_PTR i30 = NULL;
	ck_assert_ptr_nonnull(get);
	ck_assert_uint_eq(get(NULL, NULL, &i30, 0), CKR_OK);
	return i30->pFunctionList;
}

/* ---- crypto ---- */

void
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

void
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

void
unhex(const char *h, CK_BYTE *out)
{
	for (size_t i = 0; h[2 * i]; i++)
		sscanf(h + 2 * i, "%2hhx", &out[i]);
}

CK_OBJECT_HANDLE
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
