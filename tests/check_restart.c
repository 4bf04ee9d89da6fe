/*
 * check_restart.c - a real keymgrd process dies under an application that
 * holds sessions; the application gets error codes, not a crash, and
 * works again once keymgrd is back. Also: SIGTERM stops keymgrd cleanly.
 */
#include "config.h"

#include <check.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cy_pkcs11.h"
#include "testutil.h"

static CK_FUNCTION_LIST_PTR f;
static char *dir;
static char sock[PATH_MAX];
static pid_t daemon_pid;

static void
start_daemon(void)
{
	char data[PATH_MAX + 8];
	const char *bin = getenv("KEYMGRD");
	ck_assert_msg(bin != NULL, "KEYMGRD is not set");
	snprintf(data, sizeof(data), "%s/data", dir);
	/* A killed daemon leaves its socket file; wait for the new one. */
	unlink(sock);
	daemon_pid = fork();
	ck_assert_int_ge(daemon_pid, 0);
	if (daemon_pid == 0) {
		execl(bin, bin, "--foreground", "--data-dir", data, "--socket", sock,
		      "--config", "/dev/null", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && access(sock, F_OK) != 0; i++)
		usleep(10000);
	ck_assert_msg(access(sock, F_OK) == 0, "keymgrd did not start");
}

static int
stop_daemon(int sig)
{
	int status = -1;
	kill(daemon_pid, sig);
	for (int i = 0; i < 1000; i++) {
		if (waitpid(daemon_pid, &status, WNOHANG) == daemon_pid)
			break;
		usleep(10000);
	}
	daemon_pid = 0;
	return status;
}

static void
setup(void)
{
	tu_init_gcrypt();
	dir = tu_tmpdir();
	snprintf(sock, sizeof(sock), "%s/run/keymgrd.sock", dir);
	setenv("COYEU_SOCKET", sock, 1);
	void *lib = dlopen(getenv("COYEU_MODULE"), RTLD_NOW | RTLD_LOCAL);
	ck_assert_msg(lib != NULL, "dlopen: %s", dlerror());
	CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	ck_assert_uint_eq(get(&f), CKR_OK);
	start_daemon();
	ck_assert_uint_eq(f->C_Initialize(NULL), CKR_OK);
}

static void
teardown(void)
{
	if (f)
		f->C_Finalize(NULL);
	if (daemon_pid > 0)
		stop_daemon(SIGKILL);
	tu_rmdir(dir);
}

static CK_BBOOL yes = CK_TRUE;

static CK_SESSION_HANDLE
login_session(void)
{
	CK_SESSION_HANDLE h;
	ck_assert_uint_eq(f->C_OpenSession(1, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h), CKR_OK);
	ck_assert_uint_eq(f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)"1234", 4), CKR_OK);
	return h;
}

static CK_RV
sign_with(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE key)
{
	CK_MECHANISM m = { CKM_ECDSA_SHA256, NULL, 0 };
	CK_BYTE sig[128];
	CK_ULONG n = sizeof(sig);
	CK_RV rv = f->C_SignInit(h, &m, key);
	return rv != CKR_OK ? rv : f->C_Sign(h, (CK_BYTE_PTR)"doc", 3, sig, &n);
}

static CK_OBJECT_HANDLE
find_key(CK_SESSION_HANDLE h)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_LABEL, "signer", 6 } };
	CK_OBJECT_HANDLE o = 0;
	CK_ULONG n = 0;
	ck_assert_uint_eq(f->C_FindObjectsInit(h, t, 2), CKR_OK);
	ck_assert_uint_eq(f->C_FindObjects(h, &o, 1, &n), CKR_OK);
	ck_assert_uint_eq(f->C_FindObjectsFinal(h), CKR_OK);
	ck_assert_uint_eq(n, 1);
	return o;
}

static void
make_token_and_key(void)
{
	CK_UTF8CHAR label[32];
	CK_SESSION_HANDLE h;
	memset(label, ' ', sizeof(label));
	ck_assert_uint_eq(f->C_InitToken(1, (CK_UTF8CHAR_PTR)"12345678", 8, label), CKR_OK);
	ck_assert_uint_eq(f->C_OpenSession(1, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h), CKR_OK);
	ck_assert_uint_eq(f->C_Login(h, CKU_SO, (CK_UTF8CHAR_PTR)"12345678", 8), CKR_OK);
	ck_assert_uint_eq(f->C_InitPIN(h, (CK_UTF8CHAR_PTR)"1234", 4), CKR_OK);
	ck_assert_uint_eq(f->C_CloseSession(h), CKR_OK);
	h = login_session();
	static const CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pt[] = { { CKA_EC_PARAMS, (void *)p256, sizeof(p256) }, { CKA_TOKEN, &yes, 1 } };
	CK_ATTRIBUTE vt[] = { { CKA_SIGN, &yes, 1 }, { CKA_TOKEN, &yes, 1 }, { CKA_LABEL, "signer", 6 } };
	CK_OBJECT_HANDLE pub, priv;
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &m, pt, 2, vt, 3, &pub, &priv), CKR_OK);
	ck_assert_uint_eq(f->C_CloseSession(h), CKR_OK);
}

START_TEST(killed_and_restarted)
{
	make_token_and_key();
	CK_SESSION_HANDLE h = login_session();
	CK_OBJECT_HANDLE key = find_key(h);
	ck_assert_uint_eq(sign_with(h, key), CKR_OK);

	stop_daemon(SIGKILL);
	CK_SESSION_INFO info;
	CK_ULONG n = 5;
	ck_assert_uint_eq(f->C_GetSessionInfo(h, &info), CKR_DEVICE_ERROR);
	ck_assert_uint_eq(sign_with(h, key), CKR_DEVICE_ERROR);
	ck_assert_uint_eq(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
	ck_assert_uint_eq(n, 0);
	CK_SESSION_HANDLE h2;
	ck_assert_uint_eq(f->C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h2), CKR_TOKEN_NOT_PRESENT);

	start_daemon();
	/* The session comes back with its login: the module opens it again
	 * with its next request, keymgrd takes the login from the store
	 * (kept session_grace: docs/ha.md); the token key survived. */
	ck_assert_uint_eq(f->C_GetSessionInfo(h, &info), CKR_OK);
	ck_assert_uint_eq(info.state, CKS_RW_USER_FUNCTIONS);
	ck_assert_uint_eq(sign_with(h, key), CKR_OK);
	ck_assert_uint_eq(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(f->C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h2), CKR_OK);
	ck_assert_uint_eq(f->C_Login(h2, CKU_USER, (CK_UTF8CHAR_PTR)"1234", 4), CKR_USER_ALREADY_LOGGED_IN);
	ck_assert_uint_eq(sign_with(h2, find_key(h2)), CKR_OK);
	/* A logout ends it in the store too: after the next restart, the
	 * sessions come back without it. */
	ck_assert_uint_eq(f->C_Logout(h2), CKR_OK);
	stop_daemon(SIGKILL);
	start_daemon();
	ck_assert_uint_eq(f->C_GetSessionInfo(h, &info), CKR_OK);
	ck_assert_uint_eq(info.state, CKS_RW_PUBLIC_SESSION);
	ck_assert_uint_eq(sign_with(h, key), CKR_KEY_HANDLE_INVALID);
}
END_TEST

START_TEST(sigterm_is_clean)
{
	make_token_and_key();
	CK_SESSION_HANDLE h = login_session();
	int status = stop_daemon(SIGTERM);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_ne(access(sock, F_OK), 0); /* socket removed */
	CK_SESSION_INFO info;
	ck_assert_uint_eq(f->C_GetSessionInfo(h, &info), CKR_DEVICE_ERROR);
	/* Stopped, keymgrd did not end its applications' logins: they go on
	 * when it is back (or on another keymgrd of the store). */
	start_daemon();
	ck_assert_uint_eq(f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)"1234", 4), CKR_USER_ALREADY_LOGGED_IN);
	ck_assert_uint_eq(sign_with(h, find_key(h)), CKR_OK);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("restart");
	TCase *tc = tcase_create("/restart");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, killed_and_restarted);
	tcase_add_test(tc, sigterm_is_clean);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
