/*
 * check_module_crypto.c - the module's signatures, ciphers and MACs against
 * known answers and libgcrypt: RSA, ECDSA, Ed25519, HMAC, CMAC, AES, 3DES,
 * recover and context-specific login, large buffers.
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
	/* secp256k1: not offered. */
	static const CK_BYTE unknown[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a };
	CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pt[] = { { CKA_EC_PARAMS, (void *)unknown, sizeof(unknown) } };
	CK_OBJECT_HANDLE a, b;
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &m, pt, 1, NULL, 0, &a, &b), CKR_CURVE_NOT_SUPPORTED);
}
END_TEST

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
	/* The key wants the PIN again for each operation: not for 3.0
	 * messages, each of which would need its own login. */
	ck_assert_uint_eq(list_3_0()->C_MessageSignInit(h, &m, priv), CKR_KEY_FUNCTION_NOT_PERMITTED);
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
	/* More than a request may carry (half a frame): the length error
	 * ends the operation, as every error but CKR_BUFFER_TOO_SMALL does. */
	size_t huge = 8u * 1024 * 1024 + 1;
	CK_BYTE *big = calloc(1, huge);
	ck_assert_ptr_nonnull(big);
	n = sizeof(mac);
	ck_assert_uint_eq(f->C_SignInit(h, &hm, mk), CKR_OK);
	ck_assert_uint_eq(f->C_Sign(h, big, huge, mac, &n), CKR_DATA_LEN_RANGE);
	ck_assert_uint_eq(f->C_Sign(h, msg, 16, mac, &n), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(f->C_SignInit(h, &hm, mk), CKR_OK);
	ck_assert_uint_eq(f->C_SignUpdate(h, big, huge), CKR_DATA_LEN_RANGE);
	ck_assert_uint_eq(f->C_SignFinal(h, mac, &n), CKR_OPERATION_NOT_INITIALIZED);
	pn = CAP;
	ck_assert_uint_eq(f->C_DecryptInit(h, &gm, k), CKR_OK);
	ck_assert_uint_eq(f->C_Decrypt(h, big, huge, pt, &pn), CKR_ENCRYPTED_DATA_LEN_RANGE);
	ck_assert_uint_eq(f->C_Decrypt(h, ct, 32, pt, &pn), CKR_OPERATION_NOT_INITIALIZED);
	free(big);
	free(msg);
	free(want);
	free(ct);
	free(pt);
}
END_TEST

/* Issue 17 bug 4: a valid 3DES key whose second and third parts are a
 * weak DES key (all zeros, a common test vector) is a key PKCS#11 tokens
 * take. It must be created and must encrypt as libgcrypt does with weak
 * keys allowed, not fail with CKR_FUNCTION_FAILED. */
START_TEST(des3_weak_key)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	static const char *hexkey = "0123456789abcdef" "0000000000000000" "0000000000000000";
	CK_OBJECT_HANDLE k = secret_key(h, CKK_DES3, hexkey);
	CK_BYTE key[24], in[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, out[16], want[8];
	CK_ULONG n = sizeof(out);
	unhex(hexkey, key);
	gcry_cipher_hd_t g;
	ck_assert_int_eq(gcry_cipher_open(&g, GCRY_CIPHER_3DES, GCRY_CIPHER_MODE_ECB, 0), 0);
	ck_assert_int_eq(gcry_cipher_ctl(g, GCRYCTL_SET_ALLOW_WEAK_KEY, NULL, 1), 0);
	gcry_error_t ge = gcry_cipher_setkey(g, key, 24); /* set, but answered "weak" */
	ck_assert(ge == 0 || gpg_err_code(ge) == GPG_ERR_WEAK_KEY);
	ck_assert_int_eq(gcry_cipher_encrypt(g, want, 8, in, 8), 0);
	gcry_cipher_close(g);
	CK_MECHANISM m = { CKM_DES3_ECB, NULL, 0 };
	ck_assert_uint_eq(f->C_EncryptInit(h, &m, k), CKR_OK);
	ck_assert_uint_eq(f->C_Encrypt(h, in, 8, out, &n), CKR_OK);
	ck_assert_uint_eq(n, 8);
	ck_assert_int_eq(memcmp(out, want, 8), 0);
	/* CKA_CHECK_VALUE was computed with the same key. */
	CK_BYTE cv[3];
	CK_ATTRIBUTE a = { CKA_CHECK_VALUE, cv, sizeof(cv) };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, k, &a, 1), CKR_OK);
	ck_assert_uint_eq(a.ulValueLen, 3);
}
END_TEST

/* Issue 17 bug 2: CK_EDDSA_PARAMS is read field by field, so the padding
 * an application leaves uninitialised (after the CK_BBOOL) does not
 * matter; prehash and contexts are refused with the right code. */
START_TEST(eddsa_params_by_field)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	static const CK_BYTE oid[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
	CK_MECHANISM g = { CKM_EC_EDWARDS_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE gp[] = { { CKA_EC_PARAMS, (void *)oid, sizeof(oid) }, { CKA_VERIFY, &yes, 1 } };
	CK_ATTRIBUTE gv[] = { { CKA_SIGN, &yes, 1 } };
	CK_OBJECT_HANDLE pub, priv;
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &g, gp, 2, gv, 1, &pub, &priv), CKR_OK);
	CK_EDDSA_PARAMS p;
	memset(&p, 0xaa, sizeof(p)); /* padding as an application may leave it */
	p.phFlag = CK_FALSE;
	p.ulContextDataLen = 0;
	p.pContextData = NULL;
	CK_MECHANISM m = { CKM_EDDSA, &p, sizeof(p) };
	CK_BYTE sig[64];
	CK_ULONG n = sizeof(sig);
	ck_assert_uint_eq(f->C_SignInit(h, &m, priv), CKR_OK);
	ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)"abc", 3, sig, &n), CKR_OK);
	ck_assert_uint_eq(f->C_VerifyInit(h, &m, pub), CKR_OK);
	ck_assert_uint_eq(f->C_Verify(h, (CK_BYTE_PTR)"abc", 3, sig, n), CKR_OK);
	p.phFlag = CK_TRUE;
	ck_assert_uint_eq(f->C_SignInit(h, &m, priv), CKR_MECHANISM_PARAM_INVALID);
	p.phFlag = CK_FALSE;
	p.pContextData = (CK_BYTE_PTR)"ctx";
	p.ulContextDataLen = 3;
	ck_assert_uint_eq(f->C_SignInit(h, &m, priv), CKR_MECHANISM_PARAM_INVALID);
	p.pContextData = NULL; /* a length without data */
	ck_assert_uint_eq(f->C_SignInit(h, &m, priv), CKR_MECHANISM_PARAM_INVALID);
	CK_MECHANISM shortp = { CKM_EDDSA, &p, 3 };
	ck_assert_uint_eq(f->C_SignInit(h, &shortp, priv), CKR_MECHANISM_PARAM_INVALID);
}
END_TEST

/* Issue 17 bug 7: a one-shot call "cannot be used to terminate a
 * multi-part operation", nor may a part follow a one-shot call that asked
 * only for the length: CKR_OPERATION_ACTIVE, and the operation goes on. */
START_TEST(one_shot_after_multi_part)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	CK_OBJECT_HANDLE k = secret_key(h, CKK_GENERIC_SECRET, "000102030405060708090a0b0c0d0e0f");
	CK_MECHANISM m = { CKM_SHA256_HMAC, NULL, 0 };
	CK_BYTE mac[32], mac2[32];
	CK_ULONG n = sizeof(mac);
	ck_assert_uint_eq(f->C_SignInit(h, &m, k), CKR_OK);
	ck_assert_uint_eq(f->C_SignUpdate(h, (CK_BYTE_PTR)"ab", 2), CKR_OK);
	ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)"c", 1, mac, &n), CKR_OPERATION_ACTIVE);
	ck_assert_uint_eq(f->C_SignUpdate(h, (CK_BYTE_PTR)"c", 1), CKR_OK);
	ck_assert_uint_eq(f->C_SignFinal(h, mac, &n), CKR_OK);
	/* The same MAC in one call; a length query first, then no part. */
	ck_assert_uint_eq(f->C_SignInit(h, &m, k), CKR_OK);
	n = 0;
	ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)"abc", 3, NULL, &n), CKR_OK);
	ck_assert_uint_eq(n, 32);
	ck_assert_uint_eq(f->C_SignUpdate(h, (CK_BYTE_PTR)"x", 1), CKR_OPERATION_ACTIVE);
	ck_assert_uint_eq(f->C_SignFinal(h, mac2, &n), CKR_OPERATION_ACTIVE);
	ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)"abc", 3, mac2, &n), CKR_OK);
	ck_assert_int_eq(memcmp(mac, mac2, 32), 0);
	/* Verify and encrypt alike. */
	ck_assert_uint_eq(f->C_VerifyInit(h, &m, k), CKR_OK);
	ck_assert_uint_eq(f->C_VerifyUpdate(h, (CK_BYTE_PTR)"abc", 3), CKR_OK);
	ck_assert_uint_eq(f->C_Verify(h, (CK_BYTE_PTR)"abc", 3, mac, 32), CKR_OPERATION_ACTIVE);
	ck_assert_uint_eq(f->C_VerifyFinal(h, mac, 32), CKR_OK);
	CK_OBJECT_HANDLE aes = secret_key(h, CKK_AES, "2b7e151628aed2a6abf7158809cf4f3c");
	CK_BYTE iv[16] = { 0 }, in[32] = { 0 }, out[64];
	CK_MECHANISM cbc = { CKM_AES_CBC, iv, sizeof(iv) };
	n = sizeof(out);
	ck_assert_uint_eq(f->C_EncryptInit(h, &cbc, aes), CKR_OK);
	ck_assert_uint_eq(f->C_EncryptUpdate(h, in, 16, out, &n), CKR_OK);
	n = sizeof(out);
	ck_assert_uint_eq(f->C_Encrypt(h, in, 16, out, &n), CKR_OPERATION_ACTIVE);
	n = sizeof(out);
	ck_assert_uint_eq(f->C_EncryptFinal(h, out, &n), CKR_OK);
	/* Digests, computed in the module, follow the same rule. */
	CK_MECHANISM dm = { CKM_SHA256, NULL, 0 };
	n = sizeof(out);
	ck_assert_uint_eq(f->C_DigestInit(h, &dm), CKR_OK);
	ck_assert_uint_eq(f->C_DigestUpdate(h, (CK_BYTE_PTR)"abc", 3), CKR_OK);
	ck_assert_uint_eq(f->C_Digest(h, (CK_BYTE_PTR)"abc", 3, out, &n), CKR_OPERATION_ACTIVE);
	ck_assert_uint_eq(f->C_DigestFinal(h, out, &n), CKR_OK);
	ck_assert_uint_eq(f->C_DigestInit(h, &dm), CKR_OK);
	ck_assert_uint_eq(f->C_Digest(h, (CK_BYTE_PTR)"abc", 3, NULL, &n), CKR_OK);
	ck_assert_uint_eq(f->C_DigestUpdate(h, (CK_BYTE_PTR)"abc", 3), CKR_OPERATION_ACTIVE);
	n = sizeof(out);
	ck_assert_uint_eq(f->C_DigestFinal(h, out, &n), CKR_OPERATION_ACTIVE);
	n = sizeof(out);
	ck_assert_uint_eq(f->C_Digest(h, (CK_BYTE_PTR)"abc", 3, out, &n), CKR_OK);
}
END_TEST

/* Brainpool curves (RFC 5639) for the EC mechanisms: generated pairs sign
 * and verify with ECDSA, by OID. */
START_TEST(brainpool_curves)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	static const CK_BYTE oids[3][11] = {
		{ 0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07 },
		{ 0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0b },
		{ 0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0d },
	};
	static const CK_ULONG sig_len[3] = { 64, 96, 128 };
	CK_MECHANISM g = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	for (int i = 0; i < 3; i++) {
		CK_ATTRIBUTE pt[] = { { CKA_EC_PARAMS, (void *)oids[i], sizeof(oids[i]) }, { CKA_VERIFY, &yes, 1 } };
		CK_ATTRIBUTE vt[] = { { CKA_SIGN, &yes, 1 } };
		CK_OBJECT_HANDLE pub, priv;
		ck_assert_uint_eq(f->C_GenerateKeyPair(h, &g, pt, 2, vt, 1, &pub, &priv), CKR_OK);
		sign_verify(h, CKM_ECDSA_SHA256, pub, priv, (const CK_BYTE *)"brainpool", 9, false);
		CK_MECHANISM m = { CKM_ECDSA_SHA384, NULL, 0 };
		CK_BYTE sig[160];
		CK_ULONG n = sizeof(sig);
		ck_assert_uint_eq(f->C_SignInit(h, &m, priv), CKR_OK);
		ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)"x", 1, sig, &n), CKR_OK);
		ck_assert_uint_eq(n, sig_len[i]);
	}
}
END_TEST

/* The dual-function updates (PKCS#11 2.40 section 5.12): the same results
 * as the two operations run apart. */
START_TEST(dual_function_updates)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	CK_OBJECT_HANDLE aes = secret_key(h, CKK_AES, "2b7e151628aed2a6abf7158809cf4f3c");
	CK_OBJECT_HANDLE mk = secret_key(h, CKK_GENERIC_SECRET, "000102030405060708090a0b0c0d0e0f");
	CK_BYTE iv[16] = { 3 }, in[48], ct[64], ct2[64], pt[64], d1[32], d2[32], m1[32], m2[32];
	for (int i = 0; i < 48; i++)
		in[i] = (CK_BYTE)i;
	CK_MECHANISM cbc = { CKM_AES_CBC, iv, sizeof(iv) }, sha = { CKM_SHA256, NULL, 0 };
	CK_MECHANISM hm = { CKM_SHA256_HMAC, NULL, 0 };
	CK_ULONG n, total = 0;
	/* The reference: encrypt, digest and MAC apart. */
	n = sizeof(ct);
	ck_assert_uint_eq(f->C_EncryptInit(h, &cbc, aes), CKR_OK);
	ck_assert_uint_eq(f->C_Encrypt(h, in, 48, ct, &n), CKR_OK);
	ck_assert_uint_eq(n, 48);
	n = 32;
	ck_assert_uint_eq(f->C_DigestInit(h, &sha), CKR_OK);
	ck_assert_uint_eq(f->C_Digest(h, in, 48, d1, &n), CKR_OK);
	n = 32;
	ck_assert_uint_eq(f->C_SignInit(h, &hm, mk), CKR_OK);
	ck_assert_uint_eq(f->C_Sign(h, in, 48, m1, &n), CKR_OK);
	/* Digest and encrypt, in two parts; a length query digests nothing. */
	ck_assert_uint_eq(f->C_EncryptInit(h, &cbc, aes), CKR_OK);
	ck_assert_uint_eq(f->C_DigestInit(h, &sha), CKR_OK);
	n = 0;
	ck_assert_uint_eq(f->C_DigestEncryptUpdate(h, in, 32, NULL, &n), CKR_OK);
	ck_assert_uint_eq(n, 32);
	ck_assert_uint_eq(f->C_DigestEncryptUpdate(h, in, 32, ct2, &n), CKR_OK);
	total = n;
	n = sizeof(ct2) - total;
	ck_assert_uint_eq(f->C_DigestEncryptUpdate(h, in + 32, 16, ct2 + total, &n), CKR_OK);
	total += n;
	n = sizeof(ct2) - total;
	ck_assert_uint_eq(f->C_EncryptFinal(h, ct2 + total, &n), CKR_OK);
	total += n;
	ck_assert_uint_eq(total, 48);
	ck_assert_int_eq(memcmp(ct, ct2, 48), 0);
	n = 32;
	ck_assert_uint_eq(f->C_DigestFinal(h, d2, &n), CKR_OK);
	ck_assert_int_eq(memcmp(d1, d2, 32), 0);
	/* Decrypt and digest: the digest is of the plaintext. */
	ck_assert_uint_eq(f->C_DecryptInit(h, &cbc, aes), CKR_OK);
	ck_assert_uint_eq(f->C_DigestInit(h, &sha), CKR_OK);
	n = sizeof(pt);
	ck_assert_uint_eq(f->C_DecryptDigestUpdate(h, ct, 48, pt, &n), CKR_OK);
	ck_assert_uint_eq(n, 48);
	ck_assert_int_eq(memcmp(pt, in, 48), 0);
	n = 0;
	ck_assert_uint_eq(f->C_DecryptFinal(h, pt, &n), CKR_OK);
	n = 32;
	ck_assert_uint_eq(f->C_DigestFinal(h, d2, &n), CKR_OK);
	ck_assert_int_eq(memcmp(d1, d2, 32), 0);
	/* Sign and encrypt; decrypt and verify. */
	ck_assert_uint_eq(f->C_EncryptInit(h, &cbc, aes), CKR_OK);
	ck_assert_uint_eq(f->C_SignInit(h, &hm, mk), CKR_OK);
	n = sizeof(ct2);
	ck_assert_uint_eq(f->C_SignEncryptUpdate(h, in, 48, ct2, &n), CKR_OK);
	ck_assert_int_eq(memcmp(ct, ct2, 48), 0);
	n = 32;
	ck_assert_uint_eq(f->C_SignFinal(h, m2, &n), CKR_OK);
	ck_assert_int_eq(memcmp(m1, m2, 32), 0);
	n = 0;
	ck_assert_uint_eq(f->C_EncryptFinal(h, ct2, &n), CKR_OK);
	ck_assert_uint_eq(f->C_DecryptInit(h, &cbc, aes), CKR_OK);
	ck_assert_uint_eq(f->C_VerifyInit(h, &hm, mk), CKR_OK);
	n = sizeof(pt);
	ck_assert_uint_eq(f->C_DecryptVerifyUpdate(h, ct, 48, pt, &n), CKR_OK);
	ck_assert_uint_eq(f->C_VerifyFinal(h, m1, 32), CKR_OK);
	/* Without the second operation: CKR_OPERATION_NOT_INITIALIZED, and
	 * the first is left as it was. */
	ck_assert_uint_eq(f->C_EncryptInit(h, &cbc, aes), CKR_OK);
	n = sizeof(ct2);
	ck_assert_uint_eq(f->C_DigestEncryptUpdate(h, in, 16, ct2, &n), CKR_OPERATION_NOT_INITIALIZED);
	n = sizeof(ct2);
	ck_assert_uint_eq(f->C_Encrypt(h, in, 48, ct2, &n), CKR_OK);
	ck_assert_int_eq(memcmp(ct, ct2, 48), 0);
}
END_TEST

/* The handle of the first object of class found in session h: what makes
 * keymgrd sum a key up for the module (pkcs11/defer.c). */
static CK_OBJECT_HANDLE
find_first(CK_SESSION_HANDLE h, CK_OBJECT_CLASS cls)
{
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) } };
	CK_OBJECT_HANDLE o = 0;
	CK_ULONG n = 0;
	ck_assert_uint_eq(f->C_FindObjectsInit(h, t, 1), CKR_OK);
	ck_assert_uint_eq(f->C_FindObjects(h, &o, 1, &n), CKR_OK);
	ck_assert_uint_eq(f->C_FindObjectsFinal(h), CKR_OK);
	ck_assert_uint_eq(n, 1);
	return o;
}

/* Inits the module keeps and sends with the first step keep every code
 * PKCS#11 gives: twice is CKR_OPERATION_ACTIVE, a length query and a too
 * small buffer leave the operation going, a multi-part one in progress
 * makes the next init CKR_OPERATION_ACTIVE, a bad argument ends it, and what
 * the module cannot predict (the wrong key class, a usage set off) still
 * comes from keymgrd's own init. */
START_TEST(kept_inits_keep_codes)
{
	CK_SESSION_HANDLE h = new_token_session(true);
	CK_OBJECT_HANDLE pub0, priv0;
	gen_rsa(h, 2048, &pub0, &priv0);
	CK_OBJECT_HANDLE priv = find_first(h, CKO_PRIVATE_KEY), pub = find_first(h, CKO_PUBLIC_KEY);
	ck_assert_uint_eq(priv, priv0);
	/* Answered from the summary (pkcs11/objects.c) as keymgrd would. */
	CK_BBOOL aa = CK_TRUE;
	CK_ATTRIBUTE at = { CKA_ALWAYS_AUTHENTICATE, &aa, sizeof(aa) };
	ck_assert_uint_eq(f->C_GetAttributeValue(h, priv, &at, 1), CKR_OK);
	ck_assert_uint_eq(at.ulValueLen, 1);
	ck_assert_uint_eq(aa, CK_FALSE);
	at.ulValueLen = 0;
	ck_assert_uint_eq(f->C_GetAttributeValue(h, priv, &at, 1), CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(at.ulValueLen, CK_UNAVAILABLE_INFORMATION);
	at.pValue = NULL;
	ck_assert_uint_eq(f->C_GetAttributeValue(h, priv, &at, 1), CKR_OK);
	ck_assert_uint_eq(at.ulValueLen, 1);
	CK_MECHANISM m = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	static const CK_BYTE msg[] = "kept inits";
	CK_BYTE sig[512];
	CK_ULONG slen = 0;
	ck_assert_uint_eq(f->C_SignInit(h, &m, priv), CKR_OK);
	ck_assert_uint_eq(f->C_SignInit(h, &m, priv), CKR_OPERATION_ACTIVE);
	ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)msg, sizeof(msg), NULL, &slen), CKR_OK);
	ck_assert_uint_eq(slen, 256);
	slen = 10;
	ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)msg, sizeof(msg), sig, &slen), CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(f->C_SignInit(h, &m, priv), CKR_OPERATION_ACTIVE);
	slen = sizeof(sig);
	ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)msg, sizeof(msg), sig, &slen), CKR_OK);
	ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)msg, sizeof(msg), sig, &slen), CKR_OPERATION_NOT_INITIALIZED);
	/* It verifies, by a kept verify init too. */
	ck_assert_uint_eq(f->C_VerifyInit(h, &m, pub), CKR_OK);
	ck_assert_uint_eq(f->C_Verify(h, (CK_BYTE_PTR)msg, sizeof(msg), sig, slen), CKR_OK);
	ck_assert_uint_eq(f->C_VerifyInit(h, &m, pub), CKR_OK);
	sig[0] ^= 1;
	ck_assert_uint_eq(f->C_Verify(h, (CK_BYTE_PTR)msg, sizeof(msg), sig, slen), CKR_SIGNATURE_INVALID);

	/* Multi-part: an init while a part went is keymgrd's to refuse. */
	ck_assert_uint_eq(f->C_SignInit(h, &m, priv), CKR_OK);
	ck_assert_uint_eq(f->C_SignUpdate(h, (CK_BYTE_PTR)msg, 4), CKR_OK);
	ck_assert_uint_eq(f->C_SignInit(h, &m, priv), CKR_OPERATION_ACTIVE);
	slen = sizeof(sig);
	ck_assert_uint_eq(f->C_SignFinal(h, sig, &slen), CKR_OK);
	/* A bad argument ends a kept init as it ends any operation. */
	ck_assert_uint_eq(f->C_SignInit(h, &m, priv), CKR_OK);
	ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)msg, sizeof(msg), sig, NULL), CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(f->C_Sign(h, (CK_BYTE_PTR)msg, sizeof(msg), sig, &slen), CKR_OPERATION_NOT_INITIALIZED);

	/* 3.0 message signing keeps its init the same way: none sent at
	 * C_MessageSignInit, each message's with it. */
	CK_FUNCTION_LIST_3_0_PTR f3 = list_3_0();
	ck_assert_uint_eq(f3->C_MessageSignInit(h, &m, priv), CKR_OK);
	slen = 0;
	ck_assert_uint_eq(f3->C_SignMessage(h, NULL, 0, (CK_BYTE_PTR)msg, sizeof(msg), NULL, &slen), CKR_OK);
	ck_assert_uint_eq(slen, 256);
	ck_assert_uint_eq(f3->C_SignMessage(h, NULL, 0, (CK_BYTE_PTR)msg, sizeof(msg), sig, &slen), CKR_OK);
	ck_assert_uint_eq(f3->C_MessageSignFinal(h), CKR_OK);
	ck_assert_uint_eq(f3->C_MessageVerifyInit(h, &m, pub), CKR_OK);
	ck_assert_uint_eq(f3->C_VerifyMessage(h, NULL, 0, (CK_BYTE_PTR)msg, sizeof(msg), sig, slen), CKR_OK);
	ck_assert_uint_eq(f3->C_MessageVerifyFinal(h), CKR_OK);
	/* A key with allowed mechanisms is not summed up as able to: its
	 * init goes to keymgrd, which refuses the mechanism there. */
	CK_OBJECT_HANDLE pub2, priv2;
	CK_MECHANISM g = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_ULONG bits = 2048;
	CK_MECHANISM_TYPE only = CKM_SHA384_RSA_PKCS;
	CK_ATTRIBUTE gp[] = { { CKA_MODULUS_BITS, &bits, sizeof(bits) }, { CKA_VERIFY, &yes, 1 } };
	CK_ATTRIBUTE gv[] = { { CKA_SIGN, &yes, 1 }, { CKA_ALLOWED_MECHANISMS, &only, sizeof(only) },
			      { CKA_LABEL, "narrow", 6 } };
	ck_assert_uint_eq(f->C_GenerateKeyPair(h, &g, gp, 2, gv, 3, &pub2, &priv2), CKR_OK);
	CK_OBJECT_CLASS pc = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE ft[] = { { CKA_CLASS, &pc, sizeof(pc) }, { CKA_LABEL, "narrow", 6 } };
	CK_OBJECT_HANDLE found = 0;
	CK_ULONG nf = 0;
	ck_assert_uint_eq(f->C_FindObjectsInit(h, ft, 2), CKR_OK);
	ck_assert_uint_eq(f->C_FindObjects(h, &found, 1, &nf), CKR_OK);
	ck_assert_uint_eq(f->C_FindObjectsFinal(h), CKR_OK);
	ck_assert_uint_eq(found, priv2);
	ck_assert_uint_eq(f3->C_MessageSignInit(h, &m, priv2), CKR_MECHANISM_INVALID);
	CK_MECHANISM m384 = { CKM_SHA384_RSA_PKCS, NULL, 0 };
	ck_assert_uint_eq(f3->C_MessageSignInit(h, &m384, priv2), CKR_OK);
	slen = sizeof(sig);
	ck_assert_uint_eq(f3->C_SignMessage(h, NULL, 0, (CK_BYTE_PTR)msg, sizeof(msg), sig, &slen), CKR_OK);
	ck_assert_uint_eq(f3->C_MessageSignFinal(h), CKR_OK);

	/* What the module cannot tell goes to keymgrd. */
	ck_assert_uint_eq(f->C_SignInit(h, &m, pub), CKR_KEY_TYPE_INCONSISTENT);
	CK_ATTRIBUTE off[] = { { CKA_SIGN, &no, sizeof(no) } };
	ck_assert_uint_eq(f->C_SetAttributeValue(h, priv, off, 1), CKR_OK);
	ck_assert_uint_eq(f->C_SignInit(h, &m, priv), CKR_KEY_FUNCTION_NOT_PERMITTED);
	ck_assert_uint_eq(f->C_CloseSession(h), CKR_OK);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("module-crypto");
	TCase *tc = tcase_create("/module-crypto");
	tcase_add_checked_fixture(tc, setup_init, teardown);
	tcase_add_test(tc, rsa_sign_verify_encrypt);
	tcase_add_test(tc, kept_inits_keep_codes);
	tcase_add_test(tc, ec_sign_verify);
	tcase_add_test(tc, brainpool_curves);
	tcase_add_test(tc, ed25519_rfc8032);
	tcase_add_test(tc, eddsa_params_by_field);
	tcase_add_test(tc, mac_vectors);
	tcase_add_test(tc, ctr_and_des3);
	tcase_add_test(tc, des3_weak_key);
	tcase_add_test(tc, one_shot_after_multi_part);
	tcase_add_test(tc, dual_function_updates);
	tcase_add_test(tc, recover_auth_digest_key);
	tcase_add_test(tc, aes_gcm_cbc);
	tcase_add_test(tc, large_data);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

