/*
 * check_module_keys.c - the module's key management: wrapping and
 * unwrapping (with templates), ECDH derivation, and every advertised
 * mechanism used once right and once wrong.
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

/* ---- secret keys derived from secret keys (issue 17) ---- */

/* A secret key that derives; its value readable unless sensitive. */
static CK_OBJECT_HANDLE
deriving_key(CK_SESSION_HANDLE h, CK_KEY_TYPE kt, const char *hexval, CK_BBOOL sensitive, CK_BBOOL extractable)
{
	CK_BYTE v[64];
	size_t n = strlen(hexval) / 2;
	unhex(hexval, v);
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
			     { CKA_VALUE, v, n }, { CKA_EXTRACTABLE, &extractable, 1 },
			     { CKA_SENSITIVE, &sensitive, 1 }, { CKA_DERIVE, &yes, 1 }, { CKA_ENCRYPT, &yes, 1 } };
	CK_OBJECT_HANDLE k;
	ck_assert_uint_eq(f->C_CreateObject(h, t, 7, &k), CKR_OK);
	return k;
}

/* Derives with mechanism type/param from base into a readable key of
 * type kt (0: no CKA_KEY_TYPE) and length len (0: no CKA_VALUE_LEN);
 * expects rv, and then (when want_hex) that value. Returns the key. */
static CK_OBJECT_HANDLE
derive_secret(CK_SESSION_HANDLE h, CK_MECHANISM_TYPE type, void *param, CK_ULONG plen, CK_OBJECT_HANDLE base,
	      CK_KEY_TYPE kt, CK_ULONG len, CK_RV rv, const char *want_hex)
{
	CK_MECHANISM m = { type, param, plen };
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE t[5] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_SENSITIVE, &no, 1 }, { CKA_EXTRACTABLE, &yes, 1 } };
	CK_ULONG n = 3;
	if (kt)
		t[n++] = (CK_ATTRIBUTE){ CKA_KEY_TYPE, &kt, sizeof(kt) };
	if (len)
		t[n++] = (CK_ATTRIBUTE){ CKA_VALUE_LEN, &len, sizeof(len) };
	CK_OBJECT_HANDLE k = 0;
	CK_RV got = f->C_DeriveKey(h, &m, base, t, n, &k);
	ck_assert_msg(got == rv, "mechanism 0x%lx: 0x%lx, not 0x%lx", type, got, rv);
	if (want_hex != NULL) {
		CK_BYTE v[128], want[128];
		CK_ULONG vn = sizeof(v);
		value_of(h, k, v, &vn);
		unhex(want_hex, want);
		ck_assert_msg(vn == strlen(want_hex) / 2 && memcmp(v, want, vn) == 0, "mechanism 0x%lx: wrong value",
			      type);
	}
	return k;
}

START_TEST(secret_derivations)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	CK_OBJECT_HANDLE a = deriving_key(h, CKK_GENERIC_SECRET, "00112233", no, yes);
	CK_OBJECT_HANDLE b = deriving_key(h, CKK_GENERIC_SECRET, "44556677", no, yes);
	/* Concatenation: no type and no length is a generic secret of both. */
	CK_OBJECT_HANDLE k = derive_secret(h, CKM_CONCATENATE_BASE_AND_KEY, &b, sizeof(b), a, 0, 0, CKR_OK,
					   "0011223344556677");
	CK_KEY_TYPE kt = 0;
	CK_ULONG vl = 0;
	CK_ATTRIBUTE ta[] = { { CKA_KEY_TYPE, &kt, sizeof(kt) }, { CKA_VALUE_LEN, &vl, sizeof(vl) } };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, k, ta, 2), CKR_OK);
	ck_assert_uint_eq(kt, CKK_GENERIC_SECRET);
	ck_assert_uint_eq(vl, 8);
	derive_secret(h, CKM_CONCATENATE_BASE_AND_KEY, &b, sizeof(b), a, CKK_GENERIC_SECRET, 6, CKR_OK, "001122334455");
	derive_secret(h, CKM_CONCATENATE_BASE_AND_KEY, &b, sizeof(b), a, CKK_GENERIC_SECRET, 9,
		      CKR_TEMPLATE_INCONSISTENT, NULL);
	CK_OBJECT_HANDLE none = 0x7777;
	derive_secret(h, CKM_CONCATENATE_BASE_AND_KEY, &none, sizeof(none), a, 0, 0, CKR_KEY_HANDLE_INVALID, NULL);
	CK_BYTE dd[] = { 0x88, 0x99 }, ff[] = { 0xff, 0xff, 0xff, 0xff, 0x00 };
	CK_KEY_DERIVATION_STRING_DATA sd = { dd, sizeof(dd) }, sx = { ff, sizeof(ff) };
	derive_secret(h, CKM_CONCATENATE_BASE_AND_DATA, &sd, sizeof(sd), a, 0, 0, CKR_OK, "001122338899");
	derive_secret(h, CKM_CONCATENATE_DATA_AND_BASE, &sd, sizeof(sd), a, 0, 0, CKR_OK, "889900112233");
	/* Without a length, no longer than a generic secret may be. */
	static CK_BYTE big[600];
	CK_KEY_DERIVATION_STRING_DATA sbig = { big, sizeof(big) };
	derive_secret(h, CKM_CONCATENATE_BASE_AND_DATA, &sbig, sizeof(sbig), a, 0, 0, CKR_KEY_SIZE_RANGE, NULL);
	/* XOR: as long as the shorter of key and data. */
	derive_secret(h, CKM_XOR_BASE_AND_DATA, &sx, sizeof(sx), a, 0, 0, CKR_OK, "ffeeddcc");
	/* 2.40 section 2.43.7's example: 16 bits from bit 21 of 329F84A9. */
	CK_OBJECT_HANDLE e = deriving_key(h, CKK_GENERIC_SECRET, "329f84a9", no, yes);
	CK_ULONG bit = 21;
	derive_secret(h, CKM_EXTRACT_KEY_FROM_KEY, &bit, sizeof(bit), e, CKK_GENERIC_SECRET, 2, CKR_OK, "9526");
	derive_secret(h, CKM_EXTRACT_KEY_FROM_KEY, &bit, sizeof(bit), e, 0, 0, CKR_TEMPLATE_INCOMPLETE, NULL);
	/* A hash of the key (SHA-256 of "abc"), at most as long as the hash. */
	CK_OBJECT_HANDLE abc = deriving_key(h, CKK_GENERIC_SECRET, "616263", no, yes);
	derive_secret(h, CKM_SHA256_KEY_DERIVATION, NULL, 0, abc, 0, 0, CKR_OK,
		      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	derive_secret(h, CKM_SHA256_KEY_DERIVATION, NULL, 0, abc, CKK_AES, 16, CKR_OK, "ba7816bf8f01cfea414140de5dae2223");
	derive_secret(h, CKM_SHA256_KEY_DERIVATION, NULL, 0, abc, CKK_GENERIC_SECRET, 40, CKR_TEMPLATE_INCONSISTENT, NULL);
	/* Data encrypted under an AES key: FIPS-197 appendix C.1. */
	CK_OBJECT_HANDLE aes = deriving_key(h, CKK_AES, "000102030405060708090a0b0c0d0e0f", no, yes);
	CK_BYTE pt[32];
	unhex("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", pt);
	CK_KEY_DERIVATION_STRING_DATA sp = { pt, 16 };
	derive_secret(h, CKM_AES_ECB_ENCRYPT_DATA, &sp, sizeof(sp), aes, CKK_AES, 0, CKR_TEMPLATE_INCOMPLETE, NULL);
	derive_secret(h, CKM_AES_ECB_ENCRYPT_DATA, &sp, sizeof(sp), aes, CKK_AES, 16, CKR_OK,
		      "69c4e0d86a7b0430d8cdb78070b4c55a");
	sp.string_data_len = 15;
	derive_secret(h, CKM_AES_ECB_ENCRYPT_DATA, &sp, sizeof(sp), aes, CKK_AES, 16, CKR_MECHANISM_PARAM_INVALID, NULL);
	derive_secret(h, CKM_AES_ECB_ENCRYPT_DATA, &sp, sizeof(sp), a, CKK_AES, 16, CKR_KEY_TYPE_INCONSISTENT, NULL);
	/* CBC: the same as C_Encrypt with CKM_AES_CBC and that IV. */
	CK_AES_CBC_ENCRYPT_DATA_PARAMS cp = { { 9, 8, 7 }, pt, 32 };
	CK_MECHANISM cbc = { CKM_AES_CBC, cp.iv, 16 };
	CK_BYTE ct[32];
	CK_ULONG cn = sizeof(ct);
	ck_assert_uint_eq(f->C_EncryptInit(h, &cbc, aes), CKR_OK);
	ck_assert_uint_eq(f->C_Encrypt(h, pt, 32, ct, &cn), CKR_OK);
	char hex[65];
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", ct[i]);
	derive_secret(h, CKM_AES_CBC_ENCRYPT_DATA, &cp, sizeof(cp), aes, CKK_AES, 32, CKR_OK, hex);
	/* DES3: the new key's parity is set. */
	CK_OBJECT_HANDLE des = deriving_key(h, CKK_DES3, "0123456789abcdeffedcba987654321089abcdef01234567", no, yes);
	CK_KEY_DERIVATION_STRING_DATA s24 = { pt, 24 };
	CK_OBJECT_HANDLE dk = derive_secret(h, CKM_DES3_ECB_ENCRYPT_DATA, &s24, sizeof(s24), des, CKK_DES3, 0, CKR_OK, NULL);
	CK_BYTE dv[64];
	CK_ULONG dn = sizeof(dv);
	value_of(h, dk, dv, &dn);
	ck_assert_uint_eq(dn, 24);
	for (int i = 0; i < 24; i++)
		ck_assert_msg(__builtin_parity(dv[i]) == 1, "byte %d of a derived DES3 key has even parity", i);
	/* HKDF, RFC 5869 test cases 1 and 3. */
	CK_OBJECT_HANDLE ikm = deriving_key(h, CKK_GENERIC_SECRET, "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", no, yes);
	CK_BYTE salt[13], info[10];
	unhex("000102030405060708090a0b0c", salt);
	unhex("f0f1f2f3f4f5f6f7f8f9", info);
	CK_HKDF_PARAMS hp = { 1, 1, CKM_SHA256, CKF_HKDF_SALT_DATA, salt, 13, 0, info, 10 };
	const char *okm1 = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865";
	const char *prk1 = "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5";
	derive_secret(h, CKM_HKDF_DERIVE, &hp, sizeof(hp), ikm, CKK_GENERIC_SECRET, 42, CKR_OK, okm1);
	hp.bExpand = 0;
	CK_OBJECT_HANDLE prk = derive_secret(h, CKM_HKDF_DERIVE, &hp, sizeof(hp), ikm, 0, 0, CKR_OK, prk1);
	CK_ATTRIBUTE dr[] = { { CKA_DERIVE, &yes, 1 } };
	ck_assert_uint_eq(f->C_SetAttributeValue(h, prk, dr, 1), CKR_OK);
	hp.bExpand = 1;
	hp.bExtract = 0;
	derive_secret(h, CKM_HKDF_DERIVE, &hp, sizeof(hp), prk, CKK_GENERIC_SECRET, 42, CKR_OK, okm1);
	derive_secret(h, CKM_HKDF_DERIVE, &hp, sizeof(hp), prk, 0, 0, CKR_TEMPLATE_INCOMPLETE, NULL);
	CK_OBJECT_HANDLE sk = deriving_key(h, CKK_GENERIC_SECRET, "000102030405060708090a0b0c", no, yes);
	CK_HKDF_PARAMS hk = { 1, 1, CKM_SHA256, CKF_HKDF_SALT_KEY, NULL, 0, sk, info, 10 };
	derive_secret(h, CKM_HKDF_DERIVE, &hk, sizeof(hk), ikm, CKK_GENERIC_SECRET, 42, CKR_OK, okm1);
	CK_HKDF_PARAMS h3 = { 1, 1, CKM_SHA256, CKF_HKDF_SALT_NULL, NULL, 0, 0, NULL, 0 };
	derive_secret(h, CKM_HKDF_DERIVE, &h3, sizeof(h3), ikm, CKK_GENERIC_SECRET, 42, CKR_OK,
		      "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
	h3.prfHashMechanism = CKM_MD5;
	derive_secret(h, CKM_HKDF_DERIVE, &h3, sizeof(h3), ikm, CKK_GENERIC_SECRET, 42, CKR_MECHANISM_PARAM_INVALID, NULL);
	h3.prfHashMechanism = CKM_SHA256;
	h3.bExtract = h3.bExpand = 0;
	derive_secret(h, CKM_HKDF_DERIVE, &h3, sizeof(h3), ikm, CKK_GENERIC_SECRET, 42, CKR_MECHANISM_PARAM_INVALID, NULL);
	h3.bExtract = h3.bExpand = 1;
	derive_secret(h, CKM_HKDF_DERIVE, &h3, sizeof(h3), aes, CKK_GENERIC_SECRET, 16, CKR_KEY_TYPE_INCONSISTENT, NULL);
	/* CKK_HKDF keys (3.0): made by CKM_HKDF_KEY_GEN or given; HKDF takes
	 * them as its input and its salt, HMAC does not. */
	CK_OBJECT_HANDLE hikm = deriving_key(h, CKK_HKDF, "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", no, yes);
	CK_OBJECT_HANDLE hsalt = deriving_key(h, CKK_HKDF, "000102030405060708090a0b0c", no, yes);
	hp.bExtract = 1;
	derive_secret(h, CKM_HKDF_DERIVE, &hp, sizeof(hp), hikm, CKK_HKDF, 42, CKR_OK, okm1);
	hk.hSaltKey = hsalt;
	derive_secret(h, CKM_HKDF_DERIVE, &hk, sizeof(hk), hikm, CKK_GENERIC_SECRET, 42, CKR_OK, okm1);
	CK_MECHANISM hgen = { CKM_HKDF_KEY_GEN, NULL, 0 }, hmac = { CKM_SHA256_HMAC, NULL, 0 };
	CK_ULONG l32 = 32, l0 = 0;
	CK_ATTRIBUTE gt[] = { { CKA_VALUE_LEN, &l32, sizeof(l32) }, { CKA_SIGN, &yes, 1 }, { CKA_DERIVE, &yes, 1 } };
	CK_OBJECT_HANDLE hg;
	ck_assert_uint_eq(f->C_GenerateKey(h, &hgen, gt, 3, &hg), CKR_OK);
	CK_KEY_TYPE hkt = 0;
	CK_ULONG hlen = 0;
	CK_ATTRIBUTE ga[] = { { CKA_KEY_TYPE, &hkt, sizeof(hkt) }, { CKA_VALUE_LEN, &hlen, sizeof(hlen) } };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, hg, ga, 2), CKR_OK);
	ck_assert_uint_eq(hkt, CKK_HKDF);
	ck_assert_uint_eq(hlen, 32);
	ck_assert_uint_eq(f->C_SignInit(h, &hmac, hg), CKR_KEY_TYPE_INCONSISTENT);
	derive_secret(h, CKM_HKDF_DERIVE, &h3, sizeof(h3), hg, CKK_AES, 16, CKR_OK, NULL);
	gt[0].pValue = &l0;
	ck_assert_uint_eq(f->C_GenerateKey(h, &hgen, gt, 3, &hg), CKR_ATTRIBUTE_VALUE_INVALID);
	ck_assert_uint_eq(f->C_GenerateKey(h, &hgen, gt + 1, 2, &hg), CKR_TEMPLATE_INCOMPLETE);
	/* CKM_HKDF_DATA: a data object holding the bytes. */
	CK_MECHANISM hdm = { CKM_HKDF_DATA, &hp, sizeof(hp) };
	CK_OBJECT_CLASS dcls = CKO_DATA, kcls = CKO_SECRET_KEY;
	CK_ULONG l42 = 42;
	CK_BYTE app[] = "hkdf";
	CK_ATTRIBUTE dt[] = { { CKA_VALUE_LEN, &l42, sizeof(l42) }, { CKA_CLASS, &dcls, sizeof(dcls) },
			      { CKA_APPLICATION, app, 4 } };
	CK_OBJECT_HANDLE data;
	ck_assert_uint_eq(f->C_DeriveKey(h, &hdm, hikm, dt, 3, &data), CKR_OK);
	CK_BYTE dval[64], want_okm[42];
	CK_OBJECT_CLASS got_cls = 0;
	CK_ATTRIBUTE da[] = { { CKA_CLASS, &got_cls, sizeof(got_cls) }, { CKA_VALUE, dval, sizeof(dval) } };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, data, da, 2), CKR_OK);
	ck_assert_uint_eq(got_cls, CKO_DATA);
	ck_assert_uint_eq(da[1].ulValueLen, 42);
	unhex(okm1, want_okm);
	ck_assert_mem_eq(dval, want_okm, 42);
	CK_ATTRIBUTE dl[] = { { CKA_VALUE_LEN, &hlen, sizeof(hlen) } };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, data, dl, 1), CKR_ATTRIBUTE_TYPE_INVALID);
	ck_assert_uint_eq(f->C_DeriveKey(h, &hdm, ikm, dt + 1, 2, &data), CKR_TEMPLATE_INCOMPLETE);
	dt[1].pValue = &kcls;
	ck_assert_uint_eq(f->C_DeriveKey(h, &hdm, ikm, dt, 3, &data), CKR_TEMPLATE_INCONSISTENT);
	dt[1].pValue = &dcls;
	CK_ATTRIBUTE dv2[] = { { CKA_VALUE_LEN, &l42, sizeof(l42) }, { CKA_VALUE, app, 4 } };
	ck_assert_uint_eq(f->C_DeriveKey(h, &hdm, ikm, dv2, 2, &data), CKR_TEMPLATE_INCONSISTENT);
	/* Not from a key whose value may not be read: the data would be the
	 * value of the key CKM_HKDF_DERIVE makes with the same parameter. */
	CK_OBJECT_HANDLE hidden = deriving_key(h, CKK_HKDF, "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", yes, yes);
	CK_OBJECT_HANDLE kept = deriving_key(h, CKK_HKDF, "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", no, no);
	ck_assert_uint_eq(f->C_DeriveKey(h, &hdm, hidden, dt, 3, &data), CKR_KEY_FUNCTION_NOT_PERMITTED);
	ck_assert_uint_eq(f->C_DeriveKey(h, &hdm, kept, dt, 3, &data), CKR_KEY_FUNCTION_NOT_PERMITTED);
	hk.hSaltKey = deriving_key(h, CKK_HKDF, "000102030405060708090a0b0c", yes, yes);
	CK_MECHANISM hdk = { CKM_HKDF_DATA, &hk, sizeof(hk) };
	ck_assert_uint_eq(f->C_DeriveKey(h, &hdk, hikm, dt, 3, &data), CKR_KEY_FUNCTION_NOT_PERMITTED);
	ck_assert_uint_eq(f->C_DeriveKey(h, &hdm, aes, dt, 3, &data), CKR_KEY_TYPE_INCONSISTENT);
	/* A key made from a sensitive key is sensitive, from one that may
	 * not leave unextractable, whatever the template says: else its
	 * value would show theirs (here, the very bytes). */
	CK_OBJECT_HANDLE secret = deriving_key(h, CKK_GENERIC_SECRET, "cafebabecafebabe", yes, yes);
	CK_OBJECT_HANDLE stuck = deriving_key(h, CKK_GENERIC_SECRET, "deadbeefdeadbeef", no, no);
	CK_KEY_DERIVATION_STRING_DATA empty = { NULL, 0 };
	CK_OBJECT_HANDLE c1 = derive_secret(h, CKM_CONCATENATE_BASE_AND_DATA, &empty, sizeof(empty), secret, 0, 0, CKR_OK, NULL);
	CK_BYTE v[64];
	CK_BBOOL sens = 0, extr = 1;
	CK_ATTRIBUTE rv[] = { { CKA_VALUE, v, sizeof(v) } };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, c1, rv, 1), CKR_ATTRIBUTE_SENSITIVE);
	CK_ATTRIBUTE fl[] = { { CKA_SENSITIVE, &sens, 1 }, { CKA_EXTRACTABLE, &extr, 1 } };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, c1, fl, 2), CKR_OK);
	ck_assert(sens);
	CK_OBJECT_HANDLE c2 = derive_secret(h, CKM_CONCATENATE_BASE_AND_KEY, &stuck, sizeof(stuck), a, 0, 0, CKR_OK, NULL);
	ck_assert_uint_eq(f->C_GetAttributeValue(h, c2, fl, 2), CKR_OK);
	ck_assert(!extr);
	CK_MECHANISM wrap = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
	CK_BYTE w[64];
	CK_ULONG wn = sizeof(w);
	ck_assert_uint_eq(f->C_WrapKey(h, &wrap, aes, c2, w, &wn), CKR_KEY_UNEXTRACTABLE);
	/* No CKA_DERIVE, no derivation. */
	CK_ATTRIBUTE nd[] = { { CKA_DERIVE, &no, 1 } };
	ck_assert_uint_eq(f->C_SetAttributeValue(h, a, nd, 1), CKR_OK);
	derive_secret(h, CKM_CONCATENATE_BASE_AND_DATA, &sd, sizeof(sd), a, 0, 0, CKR_KEY_FUNCTION_NOT_PERMITTED, NULL);
}
END_TEST

/* CKA_PUBLIC_KEY_INFO (3.0): the DER SubjectPublicKeyInfo on both halves
 * of a pair, the same on each; one given must be the key's. */
static void
spki_of(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_BYTE *out, CK_ULONG *n)
{
	CK_ATTRIBUTE a = { CKA_PUBLIC_KEY_INFO, out, *n };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, o, &a, 1), CKR_OK);
	*n = a.ulValueLen;
}

START_TEST(public_key_info)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	static const CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	static const CK_BYTE ed[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
	static const CK_BYTE bp256[] = { 0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07 };
	CK_BYTE a[600], b[600], pt[80], mod[256];
	CK_ULONG an, bn;
	CK_OBJECT_HANDLE pub, priv;
	/* EC: the point at the end (after the BIT STRING's 0 byte). */
	CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE ept[] = { { CKA_EC_PARAMS, (void *)p256, sizeof(p256) }, { CKA_VERIFY, &yes, 1 } };
	CK_ATTRIBUTE evt[] = { { CKA_SIGN, &yes, 1 } };
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &m, ept, 2, evt, 1, &pub, &priv), CKR_OK);
	an = bn = sizeof(a);
	spki_of(h, pub, a, &an);
	spki_of(h, priv, b, &bn);
	CK_ATTRIBUTE q = { CKA_EC_POINT, pt, sizeof(pt) };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, pub, &q, 1), CKR_OK);
	ck_assert_uint_eq(q.ulValueLen, 67);
	ck_assert_uint_eq(an, 91);
	ck_assert_uint_eq(a[0], 0x30);
	ck_assert_mem_eq(a + an - 65, pt + 2, 65);
	ck_assert_uint_eq(bn, an);
	ck_assert_mem_eq(a, b, an);
	/* A public key made from the same attributes gets the same; a wrong
	 * one given is refused, the right one taken. */
	CK_OBJECT_CLASS pc = CKO_PUBLIC_KEY;
	CK_KEY_TYPE ec = CKK_EC;
	CK_ATTRIBUTE ct[] = { { CKA_CLASS, &pc, sizeof(pc) }, { CKA_KEY_TYPE, &ec, sizeof(ec) },
			      { CKA_EC_PARAMS, (void *)p256, sizeof(p256) }, { CKA_EC_POINT, pt, 67 },
			      { CKA_PUBLIC_KEY_INFO, a, an } };
	CK_OBJECT_HANDLE made;
	ck_assert_uint_eq(f->C_CreateObject(h, ct, 5, &made), CKR_OK);
	a[an - 1] ^= 1;
	ck_assert_uint_eq(f->C_CreateObject(h, ct, 5, &made), CKR_ATTRIBUTE_VALUE_INVALID);
	a[an - 1] ^= 1;
	ck_assert_uint_eq(f->C_CreateObject(h, ct, 4, &made), CKR_OK);
	bn = sizeof(b);
	spki_of(h, made, b, &bn);
	ck_assert_uint_eq(bn, an);
	ck_assert_mem_eq(a, b, an);
	/* Ed25519: the 32-byte key at the end. */
	m.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
	ept[0] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)ed, sizeof(ed) };
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &m, ept, 2, evt, 1, &pub, &priv), CKR_OK);
	an = bn = sizeof(a);
	spki_of(h, pub, a, &an);
	spki_of(h, priv, b, &bn);
	q.ulValueLen = sizeof(pt);
	ck_assert_uint_eq(f->C_GetAttributeValue(h, pub, &q, 1), CKR_OK);
	ck_assert_uint_eq(an, 44);
	ck_assert_mem_eq(a + an - 32, pt + q.ulValueLen - 32, 32);
	ck_assert_uint_eq(bn, an);
	ck_assert_mem_eq(a, b, an);
	/* RSA: the modulus inside. */
	gen_rsa(h, 2048, &pub, &priv);
	an = bn = sizeof(a);
	spki_of(h, pub, a, &an);
	spki_of(h, priv, b, &bn);
	CK_ATTRIBUTE mn = { CKA_MODULUS, mod, sizeof(mod) };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, pub, &mn, 1), CKR_OK);
	ck_assert_uint_eq(mn.ulValueLen, 256);
	ck_assert_ptr_nonnull(memmem(a, an, mod, 256));
	ck_assert_uint_eq(bn, an);
	ck_assert_mem_eq(a, b, an);
	/* Brainpool: GnuTLS 3.7 does not know the curves, so it stays empty. */
	m.mechanism = CKM_EC_KEY_PAIR_GEN;
	ept[0] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)bp256, sizeof(bp256) };
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &m, ept, 2, evt, 1, &pub, &priv), CKR_OK);
	an = sizeof(a);
	spki_of(h, pub, a, &an);
	ck_assert_uint_eq(an, 0);
	/* X25519 and X448 too: GnuTLS 3.7 writes no SubjectPublicKeyInfo of them. */
	static const CK_BYTE x[] = { 0x06, 0x03, 0x2b, 0x65, 0x6e };
	m.mechanism = CKM_EC_MONTGOMERY_KEY_PAIR_GEN;
	ept[0] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)x, sizeof(x) };
	CK_ATTRIBUTE xvt[] = { { CKA_DERIVE, &yes, 1 } };
	ept[1] = (CK_ATTRIBUTE){ CKA_DERIVE, &yes, 1 };
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &m, ept, 1, xvt, 1, &pub, &priv), CKR_OK);
	an = bn = sizeof(a);
	spki_of(h, pub, a, &an);
	spki_of(h, priv, b, &bn);
	ck_assert_uint_eq(an, 0);
	ck_assert_uint_eq(bn, 0);
}
END_TEST

/* ---- every advertised mechanism, once right and once wrong ---- */

enum keykind { K_NONE, K_RSA, K_EC, K_ED, K_X, K_AES, K_DES3, K_GEN, K_HKDF };
enum pkind { P_NONE, P_PSS, P_OAEP, P_IV16, P_IV8, P_CTR, P_GCM, P_CMACGEN, P_ECDH, P_DATA, P_CBC16, P_CBC8, P_KEYH, P_HKDF };

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
	{ CKM_CONCATENATE_BASE_AND_KEY, K_GEN, P_KEYH, 0, 0 },
	{ CKM_CONCATENATE_BASE_AND_DATA, K_GEN, P_DATA, 0, 0 },
	{ CKM_CONCATENATE_DATA_AND_BASE, K_GEN, P_DATA, 0, 0 },
	{ CKM_XOR_BASE_AND_DATA, K_GEN, P_DATA, 0, 0 },
	{ CKM_EXTRACT_KEY_FROM_KEY, K_GEN, P_CMACGEN, 0, 0 },
	{ CKM_AES_ECB_ENCRYPT_DATA, K_AES, P_DATA, 0, 0 },
	{ CKM_AES_CBC_ENCRYPT_DATA, K_AES, P_CBC16, 0, 0 },
	{ CKM_DES3_ECB_ENCRYPT_DATA, K_DES3, P_DATA, 0, 0 },
	{ CKM_DES3_CBC_ENCRYPT_DATA, K_DES3, P_CBC8, 0, 0 },
	{ CKM_SHA1_KEY_DERIVATION, K_GEN, P_NONE, 0, 0 },
	{ CKM_SHA224_KEY_DERIVATION, K_GEN, P_NONE, 0, 0 },
	{ CKM_SHA256_KEY_DERIVATION, K_GEN, P_NONE, 0, 0 },
	{ CKM_SHA384_KEY_DERIVATION, K_GEN, P_NONE, 0, 0 },
	{ CKM_SHA512_KEY_DERIVATION, K_GEN, P_NONE, 0, 0 },
	{ CKM_HKDF_DERIVE, K_GEN, P_HKDF, 0, 0 },
	{ CKM_HKDF_DATA, K_HKDF, P_HKDF, 0, 0 },
	{ CKM_HKDF_KEY_GEN, K_NONE, P_NONE, 0, 0 },
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
	CK_OBJECT_HANDLE pub[9], priv[9];
	CK_BYTE ecpoint[80];
	CK_ULONG ecpoint_len;
	CK_BYTE data[32]; /* what derivations mix in */
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
	/* A readable CKK_HKDF key: CKM_HKDF_DATA takes no other. */
	CK_ATTRIBUTE ht[] = { { CKA_VALUE_LEN, &len, sizeof(len) }, { CKA_DERIVE, &yes, 1 },
			      { CKA_SENSITIVE, &no, 1 }, { CKA_EXTRACTABLE, &yes, 1 } };
	m.mechanism = CKM_HKDF_KEY_GEN;
	ck_assert_uint_eq(f->C_GenerateKey(h, &m, ht, 4, &k->priv[K_HKDF]), CKR_OK);
	k->pub[K_HKDF] = k->priv[K_HKDF];
}

/* The mechanism with a good parameter for case c (storage in *buf). */
static void
good_mech(const struct mech_case *c, struct keyset *k, CK_MECHANISM *m, union {
	CK_RSA_PKCS_PSS_PARAMS pss; CK_RSA_PKCS_OAEP_PARAMS oaep; CK_BYTE iv[16];
	CK_AES_CTR_PARAMS ctr; CK_GCM_PARAMS gcm; CK_ULONG ul; CK_ECDH1_DERIVE_PARAMS ecdh;
	CK_KEY_DERIVATION_STRING_DATA sd; CK_AES_CBC_ENCRYPT_DATA_PARAMS acbc; CK_DES_CBC_ENCRYPT_DATA_PARAMS dcbc;
	CK_OBJECT_HANDLE oh; CK_HKDF_PARAMS hkdf; } *buf)
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
	case P_DATA: buf->sd = (CK_KEY_DERIVATION_STRING_DATA){ k->data, 32 }; m->ulParameterLen = sizeof(buf->sd); break;
	case P_CBC16: memcpy(buf->acbc.iv, iv, 16); buf->acbc.data_params = k->data; buf->acbc.length = 32;
		m->ulParameterLen = sizeof(buf->acbc); break;
	case P_CBC8: memcpy(buf->dcbc.iv, iv, 8); buf->dcbc.data_params = k->data; buf->dcbc.length = 32;
		m->ulParameterLen = sizeof(buf->dcbc); break;
	case P_KEYH: buf->oh = k->priv[K_GEN]; m->ulParameterLen = sizeof(buf->oh); break;
	case P_HKDF: buf->hkdf = (CK_HKDF_PARAMS){ 1, 1, CKM_SHA256, CKF_HKDF_SALT_DATA, k->data, 13, 0, k->data, 10 };
		m->ulParameterLen = sizeof(buf->hkdf); break;
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
		CK_ATTRIBUTE t[] = { { CKA_VALUE_LEN, &vlen, sizeof(vlen) }, { CKA_CLASS, &cls, sizeof(cls) },
				     { CKA_KEY_TYPE, &kt, sizeof(kt) } };
		CK_OBJECT_HANDLE derived;
		/* CKM_HKDF_DATA makes a data object: the length alone. */
		return f->C_DeriveKey(h, m, k->priv[c->key], t, c->type == CKM_HKDF_DATA ? 1 : 3, &derived);
	}
	if (mi.flags & CKF_SIGN) {
		if ((rv = f->C_SignInit(h, m, k->priv[c->key])) != CKR_OK ||
		    (rv = f->C_Sign(h, data, dlen, out, &olen)) != CKR_OK ||
		    (rv = f->C_VerifyInit(h, m, k->pub[c->key])) != CKR_OK ||
		    (rv = f->C_Verify(h, data, dlen, out, olen)) != CKR_OK)
			return rv;
		if (!(mi.flags & CKF_MESSAGE_SIGN))
			return CKR_OK;
		/* As 3.0 messages: each verifies what the other signed. */
		CK_FUNCTION_LIST_3_0_PTR f3 = list_3_0();
		if ((rv = f3->C_MessageVerifyInit(h, m, k->pub[c->key])) != CKR_OK ||
		    (rv = f3->C_VerifyMessage(h, NULL, 0, data, dlen, out, olen)) != CKR_OK ||
		    (rv = f3->C_MessageVerifyFinal(h)) != CKR_OK || (rv = f3->C_MessageSignInit(h, m, k->priv[c->key])) != CKR_OK)
			return rv;
		blen = sizeof(back);
		if ((rv = f3->C_SignMessage(h, NULL, 0, data, dlen, back, &blen)) != CKR_OK ||
		    (rv = f3->C_MessageSignFinal(h)) != CKR_OK || (rv = f->C_VerifyInit(h, m, k->pub[c->key])) != CKR_OK)
			return rv;
		return f->C_Verify(h, data, dlen, back, blen);
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

/* ---- PKCS#11 3.0 message-based encryption (AES-GCM) ---- */


/* One message through f3, its IV in iv (12 bytes, changed when generated). */
static CK_RV
gcm_message(CK_FUNCTION_LIST_3_0_PTR f3, CK_SESSION_HANDLE h, bool enc, CK_BYTE *iv, CK_ULONG fixed,
	    CK_GENERATOR_FUNCTION gen, CK_BYTE *tag, const CK_BYTE *aad, CK_ULONG aadlen, const CK_BYTE *in,
	    CK_ULONG inlen, CK_BYTE *out, CK_ULONG *outlen)
{
	CK_GCM_MESSAGE_PARAMS p = { iv, 12, fixed, gen, tag, 128 };
	return enc ? f3->C_EncryptMessage(h, &p, sizeof(p), (CK_BYTE_PTR)aad, aadlen, (CK_BYTE_PTR)in, inlen, out, outlen)
		   : f3->C_DecryptMessage(h, &p, sizeof(p), (CK_BYTE_PTR)aad, aadlen, (CK_BYTE_PTR)in, inlen, out, outlen);
}

START_TEST(message_gcm)
{
	CK_FUNCTION_LIST_3_0_PTR f3 = list_3_0();
	CK_SESSION_HANDLE h = new_token_session(true);
	/* The GCM paper's test case 4 (McGrew and Viega; NIST's gcmEncryptExtIV128). */
	CK_OBJECT_HANDLE k = secret_key(h, CKK_AES, "feffe9928665731c6d6a8f9467308308");
	CK_BYTE pt[60], aad[20], ct[60], want_ct[60], want_tag[16], iv[12], tag[16], back[64];
	unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24"
	      "49a6b525b16aedf5aa0de657ba637b39", pt);
	unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad);
	unhex("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5a"
	      "ac84aa051ba30b396a0aac973d58e091", want_ct);
	unhex("5bc94fbc3221a5db94fae95ae7121a47", want_tag);
	CK_MECHANISM gcm = { CKM_AES_GCM, NULL, 0 }, cbc = { CKM_AES_CBC, NULL, 0 };
	CK_MECHANISM_INFO mi;
	ck_assert_uint_eq(f->C_GetMechanismInfo(slot, CKM_AES_GCM, &mi), CKR_OK);
	ck_assert_uint_eq(mi.flags & (CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT | CKF_MULTI_MESSAGE),
			  CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT | CKF_MULTI_MESSAGE);
	CK_ULONG n = sizeof(ct);
	unhex("cafebabefacedbaddecaf888", iv);
	/* Before an init; on no session; the init's own checks. */
	ck_assert_uint_eq(gcm_message(f3, h, true, iv, 0, CKG_NO_GENERATE, tag, aad, 20, pt, 60, ct, &n),
			  CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(gcm_message(f3, 0x7777, true, iv, 0, CKG_NO_GENERATE, tag, aad, 20, pt, 60, ct, &n),
			  CKR_SESSION_HANDLE_INVALID);
	ck_assert_uint_eq(f3->C_MessageEncryptFinal(h), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f3->C_MessageEncryptInit(h, NULL, k), CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(f3->C_MessageEncryptInit(h, &cbc, k), CKR_MECHANISM_INVALID);
	ck_assert_uint_eq(f3->C_MessageEncryptInit(h, &gcm, 0x7777), CKR_KEY_HANDLE_INVALID);
	CK_GCM_MESSAGE_PARAMS stray = { iv, 12, 0, CKG_NO_GENERATE, tag, 128 };
	CK_MECHANISM gcm_p = { CKM_AES_GCM, &stray, sizeof(stray) };
	ck_assert_uint_eq(f3->C_MessageEncryptInit(h, &gcm_p, k), CKR_MECHANISM_PARAM_INVALID);
	ck_assert_uint_eq(f3->C_MessageEncryptInit(h, &gcm, k), CKR_OK);
	ck_assert_uint_eq(f3->C_MessageEncryptInit(h, &gcm, k), CKR_OPERATION_ACTIVE);
	/* A C_EncryptInit operation goes on beside it. */
	CK_MECHANISM ecb = { CKM_AES_ECB, NULL, 0 };
	ck_assert_uint_eq(f->C_EncryptInit(h, &ecb, k), CKR_OK);
	/* The two-call convention, then the known answer. */
	n = 0;
	ck_assert_uint_eq(gcm_message(f3, h, true, iv, 0, CKG_NO_GENERATE, tag, aad, 20, pt, 60, NULL, &n), CKR_OK);
	ck_assert_uint_eq(n, 60);
	n = 10;
	ck_assert_uint_eq(gcm_message(f3, h, true, iv, 0, CKG_NO_GENERATE, tag, aad, 20, pt, 60, ct, &n),
			  CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(n, 60);
	ck_assert_uint_eq(gcm_message(f3, h, true, iv, 0, CKG_NO_GENERATE, tag, aad, 20, pt, 60, ct, &n), CKR_OK);
	ck_assert_uint_eq(n, 60);
	ck_assert_mem_eq(ct, want_ct, 60);
	ck_assert_mem_eq(tag, want_tag, 16);
	CK_BYTE block[16] = { 0 }, eblock[16];
	n = sizeof(eblock);
	ck_assert_uint_eq(f->C_Encrypt(h, block, 16, eblock, &n), CKR_OK);
	/* Bad parameters: each message's own, the operation goes on. */
	n = sizeof(ct);
	ck_assert_uint_eq(f3->C_EncryptMessage(h, NULL, 0, aad, 20, pt, 60, ct, &n), CKR_ARGUMENTS_BAD);
	CK_GCM_MESSAGE_PARAMS bad = { iv, 12, 0, CKG_NO_GENERATE, tag, 0 };
	ck_assert_uint_eq(f3->C_EncryptMessage(h, &bad, sizeof(bad), aad, 20, pt, 60, ct, &n),
			  CKR_MECHANISM_PARAM_INVALID);
	bad.ulTagBits = 128;
	bad.ivGenerator = 9;
	ck_assert_uint_eq(f3->C_EncryptMessage(h, &bad, sizeof(bad), aad, 20, pt, 60, ct, &n),
			  CKR_MECHANISM_PARAM_INVALID);
	ck_assert_uint_eq(f3->C_EncryptMessage(h, &bad, sizeof(bad) - 1, aad, 20, pt, 60, ct, &n),
			  CKR_MECHANISM_PARAM_INVALID);
	ck_assert_uint_eq(gcm_message(f3, h, true, iv, 96, CKG_GENERATE_COUNTER, tag, aad, 20, pt, 60, ct, &n),
			  CKR_MECHANISM_PARAM_INVALID);
	ck_assert_uint_eq(gcm_message(f3, h, true, iv, 0, CKG_NO_GENERATE, tag, NULL, 20, pt, 60, ct, &n),
			  CKR_ARGUMENTS_BAD);
	/* A counter after 94 fixed bits: 4 IVs, then none. */
	CK_BYTE ivs[4][12], tags[4][16], cts[4][60];
	for (int i = 0; i < 4; i++) {
		unhex("cafebabefacedbaddecaf888", ivs[i]);
		n = 60;
		ck_assert_uint_eq(gcm_message(f3, h, true, ivs[i], 94, CKG_GENERATE_COUNTER, tags[i], aad, 20, pt, 60,
					      cts[i], &n), CKR_OK);
		ck_assert_mem_eq(ivs[i], "\xca\xfe\xba\xbe\xfa\xce\xdb\xad\xde\xca\xf8", 11);
		ck_assert_uint_eq(ivs[i][11], 0x88 | i);
	}
	unhex("cafebabefacedbaddecaf888", iv);
	ck_assert_uint_eq(gcm_message(f3, h, true, iv, 94, CKG_GENERATE_COUNTER, tag, aad, 20, pt, 60, ct, &n),
			  CKR_MECHANISM_PARAM_INVALID);
	/* The counter of IV 0x...88 is 0: the known answer again. */
	ck_assert_mem_eq(cts[0], want_ct, 60);
	ck_assert_mem_eq(tags[0], want_tag, 16);
	/* Random: the 4 fixed bits kept, the rest new each time. */
	CK_BYTE r1[12], r2[12];
	memset(r1, 0xa5, 12);
	memset(r2, 0xa5, 12);
	ck_assert_uint_eq(gcm_message(f3, h, true, r1, 4, CKG_GENERATE_RANDOM, tag, NULL, 0, pt, 60, ct, &n), CKR_OK);
	ck_assert_uint_eq(gcm_message(f3, h, true, r2, 4, CKG_GENERATE, tag, NULL, 0, pt, 60, ct, &n), CKR_OK);
	ck_assert_uint_eq(r1[0] >> 4, 0xa);
	ck_assert_uint_eq(r2[0] >> 4, 0xa);
	ck_assert(memcmp(r1, r2, 12) != 0);
	ck_assert_uint_eq(f3->C_MessageEncryptFinal(h), CKR_OK);
	ck_assert_uint_eq(gcm_message(f3, h, true, iv, 0, CKG_NO_GENERATE, tag, aad, 20, pt, 60, ct, &n),
			  CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f3->C_MessageEncryptFinal(h), CKR_OPERATION_NOT_INITIALIZED);
	/* Decryption: each counter's message back, a changed tag refused. */
	ck_assert_uint_eq(f3->C_MessageDecryptInit(h, &gcm, k), CKR_OK);
	for (int i = 0; i < 4; i++) {
		n = sizeof(back);
		ck_assert_uint_eq(gcm_message(f3, h, false, ivs[i], 0, CKG_NO_GENERATE, tags[i], aad, 20, cts[i], 60,
					      back, &n), CKR_OK);
		ck_assert_uint_eq(n, 60);
		ck_assert_mem_eq(back, pt, 60);
	}
	tags[1][0] ^= 1;
	n = sizeof(back);
	ck_assert_uint_eq(gcm_message(f3, h, false, ivs[1], 0, CKG_NO_GENERATE, tags[1], aad, 20, cts[1], 60, back, &n),
			  CKR_ENCRYPTED_DATA_INVALID);
	n = sizeof(back);
	ck_assert_uint_eq(gcm_message(f3, h, false, ivs[2], 0, CKG_NO_GENERATE, tags[2], aad, 19, cts[2], 60, back, &n),
			  CKR_ENCRYPTED_DATA_INVALID);
	n = sizeof(back);
	ck_assert_uint_eq(gcm_message(f3, h, false, ivs[3], 0, CKG_NO_GENERATE, tags[3], aad, 20, cts[3], 60, back, &n),
			  CKR_OK);
	ck_assert_mem_eq(back, pt, 60);
	/* A message past the shared region's threshold (64 KiB) both ways. */
	size_t big = 100000;
	CK_BYTE *bp = malloc(big), *bc = malloc(big), *bb = malloc(big), btag[16], biv[12];
	ck_assert(bp != NULL && bc != NULL && bb != NULL);
	for (size_t i = 0; i < big; i++)
		bp[i] = (CK_BYTE)(i * 7);
	ck_assert_uint_eq(f3->C_MessageEncryptInit(h, &gcm, k), CKR_OK);
	memset(biv, 0, sizeof(biv));
	n = big;
	ck_assert_uint_eq(gcm_message(f3, h, true, biv, 0, CKG_GENERATE_RANDOM, btag, aad, 20, bp, big, bc, &n), CKR_OK);
	ck_assert_uint_eq(n, big);
	n = big;
	ck_assert_uint_eq(gcm_message(f3, h, false, biv, 0, CKG_NO_GENERATE, btag, aad, 20, bc, big, bb, &n), CKR_OK);
	ck_assert_uint_eq(n, big);
	ck_assert_mem_eq(bb, bp, big);
	ck_assert_uint_eq(f3->C_MessageEncryptFinal(h), CKR_OK);
	free(bp);
	free(bc);
	free(bb);
	/* C_SessionCancel ends it. */
	ck_assert_uint_eq(f3->C_SessionCancel(h, CKF_MESSAGE_DECRYPT), CKR_OK);
	ck_assert_uint_eq(f3->C_MessageDecryptFinal(h), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f3->C_MessageDecryptInit(h, &gcm, k), CKR_OK);
	/* Messages in parts: the known answer again, in three parts each way. */
	CK_ULONG cuts[] = { 0, 17, 40, 60 }, got = 0;
	CK_GCM_MESSAGE_PARAMS mp = { iv, 12, 0, CKG_NO_GENERATE, tag, 128 };
	unhex("cafebabefacedbaddecaf888", iv);
	memset(tag, 0, 16);
	memset(ct, 0, 60);
	ck_assert_uint_eq(f3->C_MessageEncryptInit(h, &gcm, k), CKR_OK);
	ck_assert_uint_eq(f3->C_EncryptMessageNext(h, &mp, sizeof(mp), pt, 10, ct, &n, 0), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f3->C_EncryptMessageBegin(h, &mp, sizeof(mp), aad, 20), CKR_OK);
	ck_assert_uint_eq(f3->C_EncryptMessageBegin(h, &mp, sizeof(mp), aad, 20), CKR_OPERATION_ACTIVE);
	n = 60;
	ck_assert_uint_eq(f3->C_EncryptMessage(h, &mp, sizeof(mp), aad, 20, pt, 60, ct, &n), CKR_OPERATION_ACTIVE);
	for (int i = 0; i < 3; i++) {
		CK_FLAGS fl = i == 2 ? CKF_END_OF_MESSAGE : 0;
		CK_ULONG len = cuts[i + 1] - cuts[i];
		n = 0;
		ck_assert_uint_eq(f3->C_EncryptMessageNext(h, &mp, sizeof(mp), pt + cuts[i], len, NULL, &n, fl), CKR_OK);
		if (i == 2)
			ck_assert_uint_eq(n, 60 - got);
		n = sizeof(ct) - got;
		ck_assert_uint_eq(f3->C_EncryptMessageNext(h, &mp, sizeof(mp), pt + cuts[i], len, ct + got, &n, fl),
				  CKR_OK);
		got += n;
	}
	ck_assert_uint_eq(got, 60);
	ck_assert_mem_eq(ct, want_ct, 60);
	ck_assert_mem_eq(tag, want_tag, 16);
	/* The message over, the operation goes on: a one-shot message now. */
	n = 60;
	ck_assert_uint_eq(f3->C_EncryptMessage(h, &mp, sizeof(mp), aad, 20, pt, 60, ct, &n), CKR_OK);
	ck_assert_uint_eq(f3->C_EncryptMessageNext(h, &mp, sizeof(mp), pt, 10, ct, &n, 0), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f3->C_MessageEncryptFinal(h), CKR_OK);
	got = 0;
	ck_assert_uint_eq(f3->C_DecryptMessageBegin(h, &mp, sizeof(mp), aad, 20), CKR_OK);
	for (int i = 0; i < 3; i++) {
		CK_FLAGS fl = i == 2 ? CKF_END_OF_MESSAGE : 0;
		n = sizeof(back) - got;
		ck_assert_uint_eq(f3->C_DecryptMessageNext(h, &mp, sizeof(mp), want_ct + cuts[i], cuts[i + 1] - cuts[i],
							   back + got, &n, fl), CKR_OK);
		got += n;
	}
	ck_assert_uint_eq(got, 60);
	ck_assert_mem_eq(back, pt, 60);
	/* A changed tag: the last part refused, the message over, the next one good. */
	tag[5] ^= 0x40;
	ck_assert_uint_eq(f3->C_DecryptMessageBegin(h, &mp, sizeof(mp), aad, 20), CKR_OK);
	n = sizeof(back);
	ck_assert_uint_eq(f3->C_DecryptMessageNext(h, &mp, sizeof(mp), want_ct, 30, back, &n, 0), CKR_OK);
	n = sizeof(back);
	ck_assert_uint_eq(f3->C_DecryptMessageNext(h, &mp, sizeof(mp), want_ct + 30, 30, back, &n, CKF_END_OF_MESSAGE),
			  CKR_ENCRYPTED_DATA_INVALID);
	n = sizeof(back);
	ck_assert_uint_eq(f3->C_DecryptMessageNext(h, &mp, sizeof(mp), want_ct + 30, 30, back, &n, CKF_END_OF_MESSAGE),
			  CKR_OPERATION_NOT_INITIALIZED);
	tag[5] ^= 0x40;
	n = sizeof(back);
	ck_assert_uint_eq(f3->C_DecryptMessage(h, &mp, sizeof(mp), aad, 20, want_ct, 60, back, &n), CKR_OK);
	ck_assert_mem_eq(back, pt, 60);
	/* A part with a bad parameter ends the message too. */
	ck_assert_uint_eq(f3->C_DecryptMessageBegin(h, &mp, sizeof(mp), aad, 20), CKR_OK);
	n = sizeof(back);
	ck_assert_uint_eq(f3->C_DecryptMessageNext(h, &mp, sizeof(mp), want_ct, 30, back, &n, 0), CKR_OK);
	mp.ulTagBits = 96;
	ck_assert_uint_eq(f3->C_DecryptMessageNext(h, &mp, sizeof(mp), want_ct + 30, 30, back, &n, CKF_END_OF_MESSAGE),
			  CKR_MECHANISM_PARAM_INVALID);
	mp.ulTagBits = 128;
	ck_assert_uint_eq(f3->C_DecryptMessageNext(h, &mp, sizeof(mp), want_ct + 30, 30, back, &n, CKF_END_OF_MESSAGE),
			  CKR_OPERATION_NOT_INITIALIZED);
	n = sizeof(back);
	ck_assert_uint_eq(f3->C_DecryptMessage(h, &mp, sizeof(mp), aad, 20, want_ct, 60, back, &n), CKR_OK);
	/* A message in parts left going: C_MessageDecryptFinal ends it. */
	ck_assert_uint_eq(f3->C_DecryptMessageBegin(h, &mp, sizeof(mp), aad, 20), CKR_OK);
	n = sizeof(back);
	ck_assert_uint_eq(f3->C_DecryptMessageNext(h, &mp, sizeof(mp), want_ct, 30, back, &n, 0), CKR_OK);
	ck_assert_uint_eq(f3->C_MessageDecryptFinal(h), CKR_OK);
	ck_assert_uint_eq(f3->C_MessageDecryptInit(h, &gcm, k), CKR_OK);
	ck_assert_uint_eq(f3->C_DecryptMessageBegin(h, &mp, sizeof(mp), aad, 20), CKR_OK);
	n = sizeof(back);
	ck_assert_uint_eq(f3->C_DecryptMessageNext(h, &mp, sizeof(mp), want_ct, 60, back, &n, CKF_END_OF_MESSAGE), CKR_OK);
	ck_assert_uint_eq(n, 60);
	ck_assert_mem_eq(back, pt, 60);
	/* Closing the session ends it too. */
	ck_assert_uint_eq(f->C_CloseSession(h), CKR_OK);
	ck_assert_uint_eq(f3->C_MessageDecryptFinal(h), CKR_SESSION_HANDLE_INVALID);
}
END_TEST

/* ---- PKCS#11 3.0 message-based signing ---- */

START_TEST(message_sign)
{
	CK_FUNCTION_LIST_3_0_PTR f3 = list_3_0();
	CK_SESSION_HANDLE h = new_token_session(true);
	/* RFC 4231 test case 2: HMAC-SHA-256 of this under the key "Jefe". */
	CK_OBJECT_HANDLE k = secret_key(h, CKK_GENERIC_SECRET, "4a656665");
	CK_BYTE_PTR msg = (CK_BYTE_PTR) "what do ya want for nothing?";
	CK_ULONG len = 28, n;
	CK_BYTE want[32], bad[32], sig[64], junk[3] = { 1, 2, 3 };
	unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want);
	memcpy(bad, want, 32);
	bad[5] ^= 1;
	CK_MECHANISM hmac = { CKM_SHA256_HMAC, NULL, 0 }, gcm = { CKM_AES_GCM, NULL, 0 };
	CK_MECHANISM hmac_p = { CKM_SHA256_HMAC, junk, sizeof(junk) };
	CK_MECHANISM_INFO mi;
	CK_FLAGS msg_flags = CKF_MESSAGE_SIGN | CKF_MESSAGE_VERIFY | CKF_MULTI_MESSAGE;
	ck_assert_uint_eq(f->C_GetMechanismInfo(slot, CKM_SHA256_HMAC, &mi), CKR_OK);
	ck_assert_uint_eq(mi.flags & msg_flags, msg_flags);
	ck_assert_uint_eq(f->C_GetMechanismInfo(slot, CKM_AES_GCM, &mi), CKR_OK);
	ck_assert_uint_eq(mi.flags & (CKF_MESSAGE_SIGN | CKF_MESSAGE_VERIFY), 0);
	/* Before an init; on no session; the init's own checks. */
	n = sizeof(sig);
	ck_assert_uint_eq(f3->C_SignMessage(h, NULL, 0, msg, len, sig, &n), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f3->C_SignMessage(0x7777, NULL, 0, msg, len, sig, &n), CKR_SESSION_HANDLE_INVALID);
	ck_assert_uint_eq(f3->C_VerifyMessage(h, NULL, 0, msg, len, want, 32), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f3->C_SignMessageBegin(h, NULL, 0), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f3->C_MessageSignFinal(h), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f3->C_MessageSignInit(h, NULL, k), CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(f3->C_MessageSignInit(h, &gcm, k), CKR_MECHANISM_INVALID);
	ck_assert_uint_eq(f3->C_MessageSignInit(0x7777, &hmac, k), CKR_SESSION_HANDLE_INVALID);
	ck_assert_uint_eq(f3->C_MessageSignInit(h, &hmac, 0x7777), CKR_KEY_HANDLE_INVALID);
	ck_assert_uint_eq(f3->C_MessageSignInit(h, &hmac_p, k), CKR_MECHANISM_PARAM_INVALID);
	CK_OBJECT_HANDLE aes = secret_key(h, CKK_AES, "000102030405060708090a0b0c0d0e0f");
	ck_assert_uint_eq(f3->C_MessageSignInit(h, &hmac, aes), CKR_KEY_TYPE_INCONSISTENT);
	ck_assert_uint_eq(f3->C_MessageSignInit(h, &hmac, k), CKR_OK);
	ck_assert_uint_eq(f3->C_MessageSignInit(h, &hmac, k), CKR_OPERATION_ACTIVE);
	/* A C_SignInit operation goes on beside it. */
	ck_assert_uint_eq(f->C_SignInit(h, &hmac, k), CKR_OK);
	/* The two-call convention, then the known answer; the operation stays. */
	n = 0;
	ck_assert_uint_eq(f3->C_SignMessage(h, NULL, 0, msg, len, NULL, &n), CKR_OK);
	ck_assert_uint_eq(n, 32);
	ck_assert_uint_eq(f3->C_SignMessageBegin(h, NULL, 0), CKR_OPERATION_ACTIVE);
	n = 8;
	ck_assert_uint_eq(f3->C_SignMessage(h, NULL, 0, msg, len, sig, &n), CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(n, 32);
	n = sizeof(sig);
	ck_assert_uint_eq(f3->C_SignMessage(h, NULL, 0, msg, len, sig, &n), CKR_OK);
	ck_assert_uint_eq(n, 32);
	ck_assert_mem_eq(sig, want, 32);
	memset(sig, 0, sizeof(sig));
	n = sizeof(sig);
	ck_assert_uint_eq(f3->C_SignMessage(h, NULL, 0, msg, len, sig, &n), CKR_OK);
	ck_assert_mem_eq(sig, want, 32);
	memset(sig, 0, sizeof(sig));
	n = sizeof(sig);
	ck_assert_uint_eq(f->C_Sign(h, msg, len, sig, &n), CKR_OK);
	ck_assert_mem_eq(sig, want, 32);
	/* A message's parameter: signature mechanisms define none. */
	n = sizeof(sig);
	ck_assert_uint_eq(f3->C_SignMessage(h, junk, 3, msg, len, sig, &n), CKR_MECHANISM_PARAM_INVALID);
	ck_assert_uint_eq(f3->C_SignMessage(h, NULL, 3, msg, len, sig, &n), CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(f3->C_SignMessage(h, NULL, 0, NULL, len, sig, &n), CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(f3->C_SignMessage(h, NULL, 0, msg, len, sig, NULL), CKR_ARGUMENTS_BAD);
	/* In three parts, the two-call convention on the last. */
	ck_assert_uint_eq(f3->C_SignMessageNext(h, NULL, 0, msg, 4, NULL, NULL), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f3->C_SignMessageBegin(h, junk, 3), CKR_MECHANISM_PARAM_INVALID);
	ck_assert_uint_eq(f3->C_SignMessageBegin(h, NULL, 0), CKR_OK);
	ck_assert_uint_eq(f3->C_SignMessageBegin(h, NULL, 0), CKR_OPERATION_ACTIVE);
	n = sizeof(sig);
	ck_assert_uint_eq(f3->C_SignMessage(h, NULL, 0, msg, len, sig, &n), CKR_OPERATION_ACTIVE);
	ck_assert_uint_eq(f3->C_SignMessageNext(h, NULL, 0, msg, 4, NULL, NULL), CKR_OK);
	ck_assert_uint_eq(f3->C_SignMessageNext(h, NULL, 0, msg + 4, 10, NULL, NULL), CKR_OK);
	n = 0;
	ck_assert_uint_eq(f3->C_SignMessageNext(h, NULL, 0, msg + 14, len - 14, NULL, &n), CKR_OK);
	ck_assert_uint_eq(n, 32);
	ck_assert_uint_eq(f3->C_SignMessageNext(h, NULL, 0, msg + 14, len - 14, NULL, NULL), CKR_OPERATION_ACTIVE);
	memset(sig, 0, sizeof(sig));
	n = sizeof(sig);
	ck_assert_uint_eq(f3->C_SignMessageNext(h, NULL, 0, msg + 14, len - 14, sig, &n), CKR_OK);
	ck_assert_uint_eq(n, 32);
	ck_assert_mem_eq(sig, want, 32);
	/* In one part; in one part and an empty last one. */
	memset(sig, 0, sizeof(sig));
	ck_assert_uint_eq(f3->C_SignMessageBegin(h, NULL, 0), CKR_OK);
	n = sizeof(sig);
	ck_assert_uint_eq(f3->C_SignMessageNext(h, NULL, 0, msg, len, sig, &n), CKR_OK);
	ck_assert_mem_eq(sig, want, 32);
	memset(sig, 0, sizeof(sig));
	ck_assert_uint_eq(f3->C_SignMessageBegin(h, NULL, 0), CKR_OK);
	ck_assert_uint_eq(f3->C_SignMessageNext(h, NULL, 0, msg, len, NULL, NULL), CKR_OK);
	n = sizeof(sig);
	ck_assert_uint_eq(f3->C_SignMessageNext(h, NULL, 0, NULL, 0, sig, &n), CKR_OK);
	ck_assert_mem_eq(sig, want, 32);
	/* A bad part ends the message, not the operation. */
	ck_assert_uint_eq(f3->C_SignMessageBegin(h, NULL, 0), CKR_OK);
	ck_assert_uint_eq(f3->C_SignMessageNext(h, NULL, 0, msg, 4, NULL, NULL), CKR_OK);
	ck_assert_uint_eq(f3->C_SignMessageNext(h, junk, 3, msg + 4, 4, NULL, NULL), CKR_MECHANISM_PARAM_INVALID);
	ck_assert_uint_eq(f3->C_SignMessageNext(h, NULL, 0, msg + 4, 4, NULL, NULL), CKR_OPERATION_NOT_INITIALIZED);
	memset(sig, 0, sizeof(sig));
	n = sizeof(sig);
	ck_assert_uint_eq(f3->C_SignMessage(h, NULL, 0, msg, len, sig, &n), CKR_OK);
	ck_assert_mem_eq(sig, want, 32);
	/* The final ends it, a signature left waiting with it. */
	n = 0;
	ck_assert_uint_eq(f3->C_SignMessage(h, NULL, 0, msg, len, NULL, &n), CKR_OK);
	ck_assert_uint_eq(f3->C_MessageSignFinal(h), CKR_OK);
	n = sizeof(sig);
	ck_assert_uint_eq(f3->C_SignMessage(h, NULL, 0, msg, len, sig, &n), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f3->C_MessageSignFinal(h), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f3->C_MessageSignInit(h, &hmac, k), CKR_OK);
	memset(sig, 0, sizeof(sig));
	n = sizeof(sig);
	ck_assert_uint_eq(f3->C_SignMessage(h, NULL, 0, msg, len, sig, &n), CKR_OK);
	ck_assert_mem_eq(sig, want, 32);
	/* Verifying: a failure ends the message, not the operation. */
	ck_assert_uint_eq(f3->C_MessageVerifyInit(h, &hmac, k), CKR_OK);
	ck_assert_uint_eq(f3->C_VerifyMessage(h, NULL, 0, msg, len, want, 32), CKR_OK);
	ck_assert_uint_eq(f3->C_VerifyMessage(h, NULL, 0, msg, len, bad, 32), CKR_SIGNATURE_INVALID);
	ck_assert_uint_eq(f3->C_VerifyMessage(h, NULL, 0, msg, len - 1, want, 32), CKR_SIGNATURE_INVALID);
	ck_assert_uint_eq(f3->C_VerifyMessage(h, NULL, 0, msg, len, want, 31), CKR_SIGNATURE_LEN_RANGE);
	ck_assert_uint_eq(f3->C_VerifyMessage(h, NULL, 0, msg, len, NULL, 32), CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(f3->C_VerifyMessage(h, junk, 3, msg, len, want, 32), CKR_MECHANISM_PARAM_INVALID);
	ck_assert_uint_eq(f3->C_VerifyMessage(h, NULL, 0, msg, len, want, 32), CKR_OK);
	ck_assert_uint_eq(f3->C_VerifyMessageBegin(h, NULL, 0), CKR_OK);
	ck_assert_uint_eq(f3->C_VerifyMessageNext(h, NULL, 0, msg, 9, NULL, 0), CKR_OK);
	ck_assert_uint_eq(f3->C_VerifyMessageNext(h, NULL, 0, msg + 9, len - 9, want, 32), CKR_OK);
	ck_assert_uint_eq(f3->C_VerifyMessageBegin(h, NULL, 0), CKR_OK);
	ck_assert_uint_eq(f3->C_VerifyMessageNext(h, NULL, 0, msg, 9, NULL, 0), CKR_OK);
	ck_assert_uint_eq(f3->C_VerifyMessageNext(h, NULL, 0, msg + 9, len - 9, bad, 32), CKR_SIGNATURE_INVALID);
	ck_assert_uint_eq(f3->C_VerifyMessageNext(h, NULL, 0, msg, 9, NULL, 0), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f3->C_VerifyMessageBegin(h, NULL, 0), CKR_OK);
	ck_assert_uint_eq(f3->C_VerifyMessageNext(h, NULL, 0, msg, len, want, 32), CKR_OK);
	/* C_SessionCancel ends it. */
	ck_assert_uint_eq(f3->C_VerifyMessageBegin(h, NULL, 0), CKR_OK);
	ck_assert_uint_eq(f3->C_VerifyMessageNext(h, NULL, 0, msg, 9, NULL, 0), CKR_OK);
	ck_assert_uint_eq(f3->C_SessionCancel(h, CKF_MESSAGE_VERIFY), CKR_OK);
	ck_assert_uint_eq(f3->C_VerifyMessage(h, NULL, 0, msg, len, want, 32), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f3->C_MessageVerifyFinal(h), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f3->C_MessageVerifyInit(h, &hmac, k), CKR_OK);
	ck_assert_uint_eq(f3->C_VerifyMessage(h, NULL, 0, msg, len, want, 32), CKR_OK);
	/* RSA-PSS: the mechanism's parameter at the init; a message past the
	 * shared region's threshold (64 KiB). */
	CK_OBJECT_HANDLE pub, priv;
	gen_rsa(h, 2048, &pub, &priv);
	CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
	CK_MECHANISM pm = { CKM_SHA256_RSA_PKCS_PSS, &pss, sizeof(pss) };
	size_t big = 100000;
	CK_BYTE *bp = malloc(big), rsig[256];
	ck_assert_ptr_nonnull(bp);
	for (size_t i = 0; i < big; i++)
		bp[i] = (CK_BYTE)(i * 7);
	ck_assert_uint_eq(f3->C_MessageSignFinal(h), CKR_OK);
	ck_assert_uint_eq(f3->C_MessageSignInit(h, &pm, pub), CKR_KEY_TYPE_INCONSISTENT);
	ck_assert_uint_eq(f3->C_MessageSignInit(h, &pm, priv), CKR_OK);
	n = sizeof(rsig);
	ck_assert_uint_eq(f3->C_SignMessage(h, NULL, 0, bp, big, rsig, &n), CKR_OK);
	ck_assert_uint_eq(n, 256);
	ck_assert_uint_eq(f->C_VerifyInit(h, &pm, pub), CKR_OK);
	ck_assert_uint_eq(f->C_Verify(h, bp, big, rsig, n), CKR_OK);
	ck_assert_uint_eq(f3->C_MessageVerifyFinal(h), CKR_OK);
	ck_assert_uint_eq(f3->C_MessageVerifyInit(h, &pm, pub), CKR_OK);
	ck_assert_uint_eq(f3->C_VerifyMessage(h, NULL, 0, bp, big, rsig, n), CKR_OK);
	bp[7] ^= 1;
	ck_assert_uint_eq(f3->C_VerifyMessage(h, NULL, 0, bp, big, rsig, n), CKR_SIGNATURE_INVALID);
	free(bp);
	/* Closing the session ends them. */
	ck_assert_uint_eq(f->C_CloseSession(h), CKR_OK);
	n = sizeof(sig);
	ck_assert_uint_eq(f3->C_SignMessage(h, NULL, 0, msg, len, sig, &n), CKR_SESSION_HANDLE_INVALID);
	ck_assert_uint_eq(f3->C_MessageVerifyFinal(h), CKR_SESSION_HANDLE_INVALID);
}
END_TEST

START_TEST(every_mechanism)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	CK_MECHANISM_TYPE list[128];
	CK_ULONG n = 128;
	struct keyset k;
	memset(&k, 0, sizeof(k));
	memset(k.data, 0x3c, sizeof(k.data));
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
			CK_KEY_DERIVATION_STRING_DATA sd; CK_AES_CBC_ENCRYPT_DATA_PARAMS acbc;
			CK_DES_CBC_ENCRYPT_DATA_PARAMS dcbc; CK_OBJECT_HANDLE oh; CK_HKDF_PARAMS hkdf;
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

/* Issue 17 bug 3: AES-ECB/AES-CBC wrapping of a key that is not a multiple
 * of the block size pads it "on the trailing end with up to block size
 * minus one null bytes"; unwrapping truncates "according to CKA_KEY_TYPE
 * and, if present, CKA_VALUE_LEN". */
START_TEST(ecb_cbc_wrap_pads_and_truncates)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	CK_OBJECT_HANDLE kek = open_secret(h, CKK_AES, "000102030405060708090a0b0c0d0e0f");
	CK_OBJECT_HANDLE des3 = open_secret(h, CKK_DES3, "0123456789abcdeffedcba987654321089abcdef01234567");
	CK_OBJECT_HANDLE gen = open_secret(h, CKK_GENERIC_SECRET, "00112233445566778899aabbccddeeff00112233");
	CK_BYTE iv[16] = { 7 };
	CK_MECHANISM mechs[2] = { { CKM_AES_ECB, NULL, 0 }, { CKM_AES_CBC, iv, sizeof(iv) } };
	for (int i = 0; i < 2; i++) {
		CK_BYTE w[64], v[64];
		CK_ULONG wn = sizeof(w);
		ck_assert_uint_eq(f->C_WrapKey(h, &mechs[i], kek, des3, w, &wn), CKR_OK);
		ck_assert_uint_eq(wn, 32); /* 24 bytes and 8 zeros */
		CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
		CK_KEY_TYPE kt = CKK_DES3;
		CK_ATTRIBUTE ut[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
				      { CKA_EXTRACTABLE, &yes, 1 }, { CKA_SENSITIVE, &no, 1 } };
		CK_OBJECT_HANDLE u;
		ck_assert_uint_eq(f->C_UnwrapKey(h, &mechs[i], kek, w, wn, ut, 4, &u), CKR_OK);
		CK_ATTRIBUTE va = { CKA_VALUE, v, sizeof(v) };
		ck_assert_uint_eq(f->C_GetAttributeValue(h, u, &va, 1), CKR_OK);
		ck_assert_uint_eq(va.ulValueLen, 24);
		CK_BYTE want[24];
		unhex("0123456789abcdeffedcba987654321089abcdef01234567", want);
		ck_assert_int_eq(memcmp(v, want, 24), 0);
		/* A 20-byte generic secret: 32 bytes wrapped, CKA_VALUE_LEN 20 back. */
		wn = sizeof(w);
		ck_assert_uint_eq(f->C_WrapKey(h, &mechs[i], kek, gen, w, &wn), CKR_OK);
		ck_assert_uint_eq(wn, 32);
		CK_KEY_TYPE gk = CKK_GENERIC_SECRET;
		CK_ULONG len = 20;
		CK_ATTRIBUTE gt[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &gk, sizeof(gk) },
				      { CKA_VALUE_LEN, &len, sizeof(len) }, { CKA_EXTRACTABLE, &yes, 1 },
				      { CKA_SENSITIVE, &no, 1 } };
		ck_assert_uint_eq(f->C_UnwrapKey(h, &mechs[i], kek, w, wn, gt, 5, &u), CKR_OK);
		va.ulValueLen = sizeof(v);
		ck_assert_uint_eq(f->C_GetAttributeValue(h, u, &va, 1), CKR_OK);
		ck_assert_uint_eq(va.ulValueLen, 20);
		unhex("00112233445566778899aabbccddeeff00112233", want);
		ck_assert_int_eq(memcmp(v, want, 20), 0);
		/* More than the wrapped value holds is refused. */
		len = 40;
		ck_assert_uint_eq(f->C_UnwrapKey(h, &mechs[i], kek, w, wn, gt, 5, &u), CKR_TEMPLATE_INCONSISTENT);
	}
}
END_TEST

/* ECDH on the Brainpool curves: two generated parties agree. */
START_TEST(ecdh_brainpool)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	static const CK_BYTE oids[3][11] = {
		{ 0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07 },
		{ 0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0b },
		{ 0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0d },
	};
	static const CK_ULONG zlen[3] = { 32, 48, 64 };
	CK_MECHANISM g = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	for (int i = 0; i < 3; i++) {
		CK_OBJECT_HANDLE pub[2], priv[2];
		CK_BYTE pt[2][140], z[2][64];
		CK_ULONG n[2], zn[2];
		for (int j = 0; j < 2; j++) {
			CK_ATTRIBUTE gp[] = { { CKA_EC_PARAMS, (void *)oids[i], sizeof(oids[i]) } };
			CK_ATTRIBUTE gv[] = { { CKA_DERIVE, &yes, 1 } };
			ck_assert_uint_eq(f->C_GenerateKeyPair(h, &g, gp, 1, gv, 1, &pub[j], &priv[j]), CKR_OK);
			CK_ATTRIBUTE a = { CKA_EC_POINT, pt[j], sizeof(pt[j]) };
			ck_assert_uint_eq(f->C_GetAttributeValue(h, pub[j], &a, 1), CKR_OK);
			n[j] = a.ulValueLen;
		}
		for (int j = 0; j < 2; j++) {
			CK_OBJECT_HANDLE k = derive(h, priv[j], CKD_NULL, pt[1 - j], n[1 - j], zlen[i], CKR_OK);
			zn[j] = sizeof(z[j]);
			value_of(h, k, z[j], &zn[j]);
			ck_assert_uint_eq(zn[j], zlen[i]);
		}
		ck_assert_int_eq(memcmp(z[0], z[1], zlen[i]), 0);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("module-keys");
	TCase *tc = tcase_create("/module-keys");
	tcase_add_checked_fixture(tc, setup_init, teardown);
	tcase_add_test(tc, wrap_unwrap);
	tcase_add_test(tc, wrap_templates);
	tcase_add_test(tc, ecb_cbc_wrap_pads_and_truncates);
	tcase_add_test(tc, ecdh_derive);
	tcase_add_test(tc, secret_derivations);
	tcase_add_test(tc, ecdh_brainpool);
	tcase_add_test(tc, message_gcm);
	tcase_add_test(tc, message_sign);
	tcase_add_test(tc, public_key_info);
	tcase_add_test(tc, every_mechanism);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
