/*
 * p11probe.c - a PKCS#11 application for the shell tests, doing just what
 * a test needs to see one call's result (pkcs11-tool says less):
 *
 *   p11probe MODULE slots              the number of slots with a token
 *   p11probe MODULE sign TOKEN PIN     logs in (PIN "-": not at all), signs
 *                                      with the first private key; prints
 *                                      "session S key K" then one line per
 *                                      call: "C_Login CKR_OK" ...
 *   p11probe MODULE use SESSION KEY    C_SignInit with numbers learnt from
 *                                      another process
 *   p11probe MODULE signs TOKEN PIN N STATS
 *                                      as sign, then N more signatures
 *                                      (C_SignInit, C_Sign; each checked
 *                                      with C_Verify by the public key);
 *                                      prints "turns T" with the round
 *                                      trips the delay proxy's STATS file
 *                                      counted during the N signatures,
 *                                      and "seconds S" they took
 *   p11probe MODULE messages TOKEN PIN N STATS
 *                                      as sign, then PKCS#11 3.0 message
 *                                      signing: "turns init I whole W parts
 *                                      P final F", the round trips of
 *                                      C_MessageSignInit, of N whole
 *                                      messages, of one message in three
 *                                      parts, and of C_MessageSignFinal;
 *                                      each signature checked by C_Verify
 *   p11probe MODULE loop TOKEN PIN SECS
 *                                      as sign, then a signature every 0.1 s
 *                                      for SECS seconds, never logging in
 *                                      again: "sig I CKR_..." each, then
 *                                      "ok K failed F"; exits 0 when the
 *                                      last one went through
 *   p11probe MODULE lazy TOKEN PIN STATS
 *                                      the codes of sessions opened and
 *                                      closed late and of searches answered
 *                                      from a login's list (a remote
 *                                      keymgrd: lazy.c, view.c), each line
 *                                      "ok ..." or "FAIL ..."; "turns T"
 *                                      for the opens and closes that cost
 *                                      none
 *
 * Exits 0 when every call it made returned CKR_OK (lazy: every check
 * held), else 1; 2 on misuse.
 */
#include "config.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ckr.h"
#include "cy_pkcs11.h"

static CK_FUNCTION_LIST_PTR f;
static CK_FUNCTION_LIST_3_0_PTR f3;
static int failed;

static CK_RV
said(const char *call, CK_RV rv)
{
	printf("%s %s\n", call, ckr_name(rv));
	failed |= rv != CKR_OK;
	return rv;
}

static int
find_token(const char *label, CK_SLOT_ID *slot)
{
	CK_SLOT_ID ids[64];
	CK_ULONG n = 64;
	if (said("C_GetSlotList", f->C_GetSlotList(CK_TRUE, ids, &n)) != CKR_OK)
		return -1;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		if (f->C_GetTokenInfo(ids[i], &ti) != CKR_OK)
			continue;
		size_t l = strlen(label);
		if (l <= 32 && memcmp(ti.label, label, l) == 0 && (l == 32 || ti.label[l] == ' ')) {
			*slot = ids[i];
			return 0;
		}
	}
	printf("no token %s\n", label);
	failed = 1;
	return -1;
}

/* The "turns" count of the delay proxy's stats file, or -1. */
static long
proxy_turns(const char *stats)
{
	FILE *fp = fopen(stats, "r");
	char line[64];
	long v = -1;
	while (fp != NULL && fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, "turns ", 6) == 0)
			v = strtol(line + 6, NULL, 10);
	if (fp != NULL)
		fclose(fp);
	return v;
}

/* Finds the first object of class in session s (0: none). */
static CK_OBJECT_HANDLE
first_of(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls)
{
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) } };
	CK_OBJECT_HANDLE o = 0;
	CK_ULONG n = 0;
	if (f->C_FindObjectsInit(s, t, 1) != CKR_OK)
		return 0;
	f->C_FindObjects(s, &o, 1, &n);
	f->C_FindObjectsFinal(s);
	return n ? o : 0;
}

static CK_SESSION_HANDLE last_session;

/* What is signed (raw ECDSA, which every token has): 32 bytes standing for
 * the digest of document i. */
static CK_BYTE_PTR
digest_of(int i)
{
	static CK_BYTE d[32];
	for (int k = 0; k < 32; k++)
		d[k] = (CK_BYTE)(i * 31 + k);
	return d;
}

static void
sign(const char *label, const char *pin)
{
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE s;
	if (find_token(label, &slot) != 0 ||
	    said("C_OpenSession", f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s)) != CKR_OK)
		return;
	if (strcmp(pin, "-") != 0 &&
	    said("C_Login", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)strlen(pin))) != CKR_OK)
		return;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) } };
	CK_OBJECT_HANDLE key = 0;
	CK_ULONG n = 0;
	if (said("C_FindObjectsInit", f->C_FindObjectsInit(s, t, 1)) != CKR_OK)
		return;
	said("C_FindObjects", f->C_FindObjects(s, &key, 1, &n));
	f->C_FindObjectsFinal(s);
	printf("session %lu key %lu\n", (unsigned long)s, (unsigned long)(n ? key : 0));
	fflush(stdout);
	if (n == 0) {
		printf("no private key\n");
		failed = 1;
		return;
	}
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	if (said("C_SignInit", f->C_SignInit(s, &m, key)) != CKR_OK)
		return;
	CK_BYTE sig[256];
	CK_ULONG sl = sizeof(sig);
	said("C_Sign", f->C_Sign(s, digest_of(0), 32, sig, &sl));
	last_session = s;
}

/* sign, then n more signatures in the running session, counting the
 * round trips they take; each is verified afterwards. */
static void
signs(const char *label, const char *pin, int n, const char *stats)
{
	sign(label, pin);
	if (failed || n < 1 || n > 1000)
		return;
	CK_SESSION_HANDLE s = last_session;
	CK_OBJECT_HANDLE key = first_of(s, CKO_PRIVATE_KEY), pub = first_of(s, CKO_PUBLIC_KEY);
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	CK_BYTE sig[1000][72];
	CK_ULONG sl[1000];
	long before = proxy_turns(stats);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n && !failed; i++) {
		sl[i] = sizeof(sig[i]);
		if (said("C_SignInit", f->C_SignInit(s, &m, key)) == CKR_OK)
			said("C_Sign", f->C_Sign(s, digest_of(i), 32, sig[i], &sl[i]));
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long after = proxy_turns(stats);
	for (int i = 0; i < n && !failed && pub != 0; i++) {
		if (said("C_VerifyInit", f->C_VerifyInit(s, &m, pub)) == CKR_OK)
			said("C_Verify", f->C_Verify(s, digest_of(i), 32, sig[i], sl[i]));
	}
	if (pub == 0) {
		printf("no public key\n");
		failed = 1;
	}
	printf("turns %ld\n", before < 0 || after < 0 ? -1 : after - before);
	printf("seconds %.3f\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

/* sign, then 3.0 message signing (raw ECDSA), its round trips counted. */
static void
messages(const char *label, const char *pin, int n, const char *stats)
{
	sign(label, pin);
	if (failed || n < 1 || n > 1000 || f3 == NULL) {
		failed = 1;
		return;
	}
	CK_SESSION_HANDLE s = last_session;
	CK_OBJECT_HANDLE key = first_of(s, CKO_PRIVATE_KEY), pub = first_of(s, CKO_PUBLIC_KEY);
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	CK_BYTE sig[1001][72];
	CK_ULONG sl[1001];
	long t0 = proxy_turns(stats);
	said("C_MessageSignInit", f3->C_MessageSignInit(s, &m, key));
	long t1 = proxy_turns(stats);
	for (int i = 0; i < n && !failed; i++) {
		sl[i] = sizeof(sig[i]);
		said("C_SignMessage", f3->C_SignMessage(s, NULL, 0, digest_of(i), 32, sig[i], &sl[i]));
	}
	long t2 = proxy_turns(stats);
	/* Message n in three parts: the init goes with the first, the last
	 * is an update and a final. */
	CK_BYTE_PTR d = digest_of(n);
	CK_BYTE whole[32];
	memcpy(whole, d, 32);
	sl[n] = sizeof(sig[n]);
	said("C_SignMessageBegin", f3->C_SignMessageBegin(s, NULL, 0));
	said("C_SignMessageNext", f3->C_SignMessageNext(s, NULL, 0, whole, 10, NULL, NULL));
	said("C_SignMessageNext", f3->C_SignMessageNext(s, NULL, 0, whole + 10, 10, NULL, NULL));
	said("C_SignMessageNext", f3->C_SignMessageNext(s, NULL, 0, whole + 20, 12, sig[n], &sl[n]));
	long t3 = proxy_turns(stats);
	said("C_MessageSignFinal", f3->C_MessageSignFinal(s));
	long t4 = proxy_turns(stats);
	for (int i = 0; i <= n && !failed && pub != 0; i++) {
		if (said("C_VerifyInit", f->C_VerifyInit(s, &m, pub)) == CKR_OK)
			said("C_Verify", f->C_Verify(s, digest_of(i), 32, sig[i], sl[i]));
	}
	if (pub == 0 || t0 < 0) {
		printf("no public key, or no proxy counts\n");
		failed = 1;
	}
	printf("turns init %ld whole %ld parts %ld final %ld\n", t1 - t0, t2 - t1, t3 - t2, t4 - t3);
}

/* sign, then a signature every 0.1 s for secs seconds on the same session
 * and login, whatever happens to the link. */
static void
loop(const char *label, const char *pin, double secs)
{
	sign(label, pin);
	if (failed)
		return;
	CK_SESSION_HANDLE s = last_session;
	CK_OBJECT_HANDLE key = first_of(s, CKO_PRIVATE_KEY);
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int ok = 0, bad = 0;
	CK_RV rv = CKR_OK;
	for (int i = 0;; i++) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 > secs)
			break;
		CK_BYTE sig[72];
		CK_ULONG sl = sizeof(sig);
		rv = f->C_SignInit(s, &m, key);
		if (rv == CKR_OK)
			rv = f->C_Sign(s, digest_of(i), 32, sig, &sl);
		printf("sig %d %s\n", i, ckr_name(rv));
		fflush(stdout);
		if (rv == CKR_OK)
			ok++;
		else
			bad++;
		usleep(100000);
	}
	printf("ok %d failed %d\n", ok, bad);
	failed = rv != CKR_OK;
}

static void
check(bool ok, const char *what, CK_RV rv)
{
	printf("%s %s (%s)\n", ok ? "ok" : "FAIL", what, ckr_name(rv));
	failed |= !ok;
}

/* The handles a search with template t finds in session s, into out. */
static CK_ULONG
search(CK_SESSION_HANDLE s, CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out, CK_ULONG max)
{
	CK_ULONG got = 0, all = 0;
	if (f->C_FindObjectsInit(s, t, n) != CKR_OK)
		return (CK_ULONG)-1;
	/* One at a time: the list is handed out in pieces. */
	while (all < max && f->C_FindObjects(s, out + all, 1, &got) == CKR_OK && got == 1)
		all++;
	if (f->C_FindObjectsFinal(s) != CKR_OK)
		return (CK_ULONG)-1;
	return all;
}

static void
lazy(const char *label, const char *pin, const char *stats)
{
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE s, more[1100];
	CK_RV rv;
	if (find_token(label, &slot) != 0)
		return;
	long t0 = proxy_turns(stats);
	/* Opened and closed with nothing between: keymgrd never hears of it. */
	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	check(rv == CKR_OK, "open", rv);
	rv = f->C_CloseSession(s);
	check(rv == CKR_OK, "close", rv);
	rv = f->C_CloseSession(s);
	check(rv == CKR_SESSION_HANDLE_INVALID, "close again", rv);
	/* As many as keymgrd allows (1024), then one too many: known here. */
	CK_ULONG n = 0;
	while (n < 1100 && (rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &more[n])) == CKR_OK)
		n++;
	check(n == 1024 && rv == CKR_SESSION_COUNT, "1024 sessions, then CKR_SESSION_COUNT", rv);
	printf("sessions %lu\n", (unsigned long)n);
	rv = f->C_CloseAllSessions(slot);
	check(rv == CKR_OK, "close all", rv);
	long t1 = proxy_turns(stats);
	printf("turns %ld\n", t0 < 0 || t1 < 0 ? -1 : t1 - t0);
	rv = f->C_CloseSession(more[0]);
	check(rv == CKR_SESSION_HANDLE_INVALID, "a session close-all ended", rv);

	/* Opened in keymgrd with its first request. */
	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	check(rv == CKR_OK, "open", rv);
	CK_SESSION_INFO si;
	rv = f->C_GetSessionInfo(s, &si);
	check(rv == CKR_OK && si.slotID == slot && si.state == CKS_RO_PUBLIC_SESSION, "session info", rv);
	rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)strlen(pin));
	check(rv == CKR_OK, "login", rv);
	/* A search the list answers and one only keymgrd can (CKA_SIGN):
	 * the same keys. */
	CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY, pub = CKO_PUBLIC_KEY;
	CK_BBOOL yes = CK_TRUE;
	CK_BYTE no_such_id[] = { 0xde, 0xad };
	CK_ATTRIBUTE by_class[] = { { CKA_CLASS, &priv, sizeof(priv) } };
	CK_ATTRIBUTE by_use[] = { { CKA_CLASS, &priv, sizeof(priv) }, { CKA_SIGN, &yes, sizeof(yes) } };
	CK_ATTRIBUTE by_pub[] = { { CKA_CLASS, &pub, sizeof(pub) }, { CKA_TOKEN, &yes, sizeof(yes) } };
	CK_ATTRIBUTE by_pub_use[] = { { CKA_CLASS, &pub, sizeof(pub) }, { CKA_VERIFY, &yes, sizeof(yes) } };
	CK_ATTRIBUTE by_id[] = { { CKA_ID, no_such_id, sizeof(no_such_id) } };
	CK_OBJECT_HANDLE a[64], b[64];
	CK_ULONG na = search(s, by_class, 1, a, 64), nb = search(s, by_use, 2, b, 64), keys = na;
	check(na != (CK_ULONG)-1 && na >= 1 && na == nb && memcmp(a, b, na * sizeof(a[0])) == 0,
	      "private keys: the list and keymgrd agree", CKR_OK);
	na = search(s, by_pub, 2, a, 64);
	nb = search(s, by_pub_use, 2, b, 64);
	check(na != (CK_ULONG)-1 && na >= 1 && na == nb && memcmp(a, b, na * sizeof(a[0])) == 0,
	      "public keys: the list and keymgrd agree", CKR_OK);
	keys += na;
	check(search(s, by_id, 1, a, 64) == 0, "no object with that CKA_ID", CKR_OK);
	/* The holder's token holds its key pair, nothing else. */
	CK_ULONG everything = search(s, NULL, 0, a, 64);
	check(everything == keys, "every object", CKR_OK);
	printf("objects %lu\n", (unsigned long)everything);
	/* The codes of a search held here are PKCS#11's. */
	rv = f->C_FindObjectsInit(s, by_class, 1);
	check(rv == CKR_OK, "find init", rv);
	rv = f->C_FindObjectsInit(s, by_class, 1);
	check(rv == CKR_OPERATION_ACTIVE, "find init again", rv);
	rv = f->C_FindObjectsFinal(s);
	check(rv == CKR_OK, "find final", rv);
	rv = f->C_FindObjectsFinal(s);
	check(rv == CKR_OPERATION_NOT_INITIALIZED, "find final again", rv);
	CK_ULONG got;
	rv = f->C_FindObjects(s, a, 1, &got);
	check(rv == CKR_OPERATION_NOT_INITIALIZED, "find without init", rv);
	rv = f->C_FindObjectsInit(s, by_class, 1);
	check(rv == CKR_OK, "find init", rv);
	rv = f->C_CloseSession(s);
	check(rv == CKR_OK, "close", rv);
	rv = f->C_FindObjects(s, a, 1, &got);
	check(rv == CKR_SESSION_HANDLE_INVALID, "find in a closed session", rv);
	rv = f->C_GetSessionInfo(s, &si);
	check(rv == CKR_SESSION_HANDLE_INVALID, "info of a closed session", rv);
	/* An object made here is found at once (the list went with it). */
	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
	check(rv == CKR_OK, "open read-write", rv);
	CK_ULONG before = search(s, NULL, 0, a, 64);
	CK_OBJECT_CLASS data = CKO_DATA;
	CK_BBOOL no = CK_FALSE;
	CK_ATTRIBUTE obj[] = { { CKA_CLASS, &data, sizeof(data) }, { CKA_TOKEN, &no, sizeof(no) } };
	CK_OBJECT_HANDLE o;
	rv = f->C_CreateObject(s, obj, 2, &o);
	check(rv == CKR_OK, "create a session object", rv);
	CK_ULONG after = search(s, NULL, 0, a, 64);
	check(after == before + 1, "it is found", CKR_OK);
	/* A session whose first request is an operation's init: its open
	 * goes first all the same. */
	CK_SESSION_HANDLE s2;
	CK_KEY_TYPE kt = 0;
	CK_ATTRIBUTE type = { CKA_KEY_TYPE, &kt, sizeof(kt) };
	na = search(s, by_pub, 2, a, 64);
	rv = na >= 1 ? f->C_GetAttributeValue(s, a[0], &type, 1) : CKR_GENERAL_ERROR;
	check(rv == CKR_OK, "a public key's type", rv);
	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s2);
	check(rv == CKR_OK, "open", rv);
	CK_MECHANISM vm = { kt == CKK_RSA ? CKM_RSA_PKCS : kt == CKK_EC_EDWARDS ? CKM_EDDSA : CKM_ECDSA, NULL, 0 };
	rv = f->C_VerifyInit(s2, &vm, a[0]);
	check(rv == CKR_OK, "verify init as a session's first request", rv);
	CK_BYTE digest[32] = { 1 }, sig[512] = { 0 };
	rv = f->C_Verify(s2, digest, kt == CKK_EC ? sizeof(digest) : 20, sig, kt == CKK_EC ? 64 : 256);
	check(rv == CKR_SIGNATURE_INVALID || rv == CKR_SIGNATURE_LEN_RANGE, "verify as a session's first request", rv);
	f->C_CloseSession(s2);
	f->C_CloseSession(s);
}

int
main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	CK_C_GetFunctionList get = h ? (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList") : NULL;
	if (get == NULL || get(&f) != CKR_OK) {
		fprintf(stderr, "p11probe: cannot load %s\n", argv[1]);
		return 2;
	}
	CK_RV (*get3)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS) =
		(CK_RV (*)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS))dlsym(h, "C_GetInterface");
	CK_INTERFACE_PTR i30 = NULL;
	if (get3 != NULL && get3(NULL, NULL, &i30, 0) == CKR_OK)
		f3 = i30->pFunctionList;
	if (said("C_Initialize", f->C_Initialize(NULL)) != CKR_OK)
		return 1;
	if (strcmp(argv[2], "slots") == 0 && argc == 3) {
		CK_ULONG n = 0;
		CK_RV rv = CKR_OK;
		/* How long it took, the first call of the process and the next,
		 * for the curious (on stderr: tests read stdout). */
		for (int i = 0; i < 2; i++) {
			struct timespec t0, t1;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			fprintf(stderr, "C_GetSlotList (%s call) took %.0f us\n", i ? "second" : "first",
				(double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3);
		}
		if (said("C_GetSlotList", rv) == CKR_OK)
			printf("slots %lu\n", (unsigned long)n);
	} else if (strcmp(argv[2], "sign") == 0 && argc == 5) {
		sign(argv[3], argv[4]);
	} else if (strcmp(argv[2], "loop") == 0 && argc == 6) {
		loop(argv[3], argv[4], atof(argv[5]));
	} else if (strcmp(argv[2], "signs") == 0 && argc == 7) {
		signs(argv[3], argv[4], atoi(argv[5]), argv[6]);
	} else if (strcmp(argv[2], "messages") == 0 && argc == 7) {
		messages(argv[3], argv[4], atoi(argv[5]), argv[6]);
	} else if (strcmp(argv[2], "lazy") == 0 && argc == 6) {
		lazy(argv[3], argv[4], argv[5]);
	} else if (strcmp(argv[2], "use") == 0 && argc == 5) {
		CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
		said("C_SignInit", f->C_SignInit(strtoul(argv[3], NULL, 10), &m, strtoul(argv[4], NULL, 10)));
	} else {
		return 2;
	}
	f->C_Finalize(NULL);
	return failed;
}
