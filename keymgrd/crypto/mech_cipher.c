/*
 * mech_cipher.c - the cipher families: AES ECB, CBC, CBC-PAD, CTR, GCM and key
 * wrap (RFC 3394, RFC 5649), 3DES ECB and CBC, and secret key generation.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <gcrypt.h>

#include "cy_err.h"
#include "crypto/family.h"
#include "wire.h"

/* A cipher step's output: in op->dst when it fits there (once), else
 * malloc'd. Frees what needs freeing on failure. */
static CK_RV
cipher_out(struct km_op *op, size_t n, uint8_t **out, size_t *outlen)
{
	uint8_t *dst = op->dst;
	op->dst = NULL;
	if (dst != NULL && n <= op->dst_cap) {
		*out = dst;
		*outlen = n;
		return CKR_OK;
	}
	return cr_alloc_out(n, out, outlen);
}

static void
cipher_out_drop(uint8_t **out, size_t n, const uint8_t *dst)
{
	wire_wipe(*out, n);
	if (*out != dst)
		free(*out);
	*out = NULL;
}

/*
 * AES key wrap over an ECB handle (so one code serves RFC 3394 and RFC
 * 5649, whose integrity value holds the length). wrap: W of n 64-bit
 * blocks in[] with initial value iv into out (8 * (n + 1) bytes).
 */
static int
kw_wrap(gcry_cipher_hd_t h, const uint8_t iv[8], const uint8_t *in, size_t n, uint8_t *out)
{
	uint8_t b[16];
	memcpy(b, iv, 8);
	memmove(out + 8, in, 8 * n);
	for (uint64_t j = 0; j < 6; j++) {
		for (size_t i = 1; i <= n; i++) {
			memcpy(b + 8, out + 8 * i, 8);
			if (gcry_cipher_encrypt(h, b, 16, NULL, 0) != 0)
				return -1;
			uint64_t t = n * j + i;
			for (int k = 7; k >= 0; k--, t >>= 8)
				b[k] ^= (uint8_t)t;
			memcpy(out + 8 * i, b + 8, 8);
		}
	}
	memcpy(out, b, 8);
	wire_wipe(b, sizeof(b));
	return 0;
}

/* W^-1: in is 8 * (n + 1) bytes; out gets the n plaintext blocks and a
 * the integrity value for the caller to check. */
static int
kw_unwrap(gcry_cipher_hd_t h, const uint8_t *in, size_t n, uint8_t *out, uint8_t a[8])
{
	uint8_t b[16];
	memcpy(b, in, 8);
	memmove(out, in + 8, 8 * n);
	for (uint64_t j = 6; j-- > 0;) {
		for (size_t i = n; i >= 1; i--) {
			uint64_t t = n * j + i;
			for (int k = 7; k >= 0; k--, t >>= 8)
				b[k] ^= (uint8_t)t;
			memcpy(b + 8, out + 8 * (i - 1), 8);
			if (gcry_cipher_decrypt(h, b, 16, NULL, 0) != 0)
				return -1;
			memcpy(out + 8 * (i - 1), b + 8, 8);
		}
	}
	memcpy(a, b, 8);
	wire_wipe(b, sizeof(b));
	return 0;
}

static const uint8_t kw_iv[8] = { 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6 };

/* The whole of op->buf wrapped (encrypt) or unwrapped (decrypt). */
static CK_RV
kw_step(struct km_op *op, uint8_t **out, size_t *outlen)
{
	bool enc = op->kind == OP_ENCRYPT, pad = op->m->fam == MF_AES_KWP;
	size_t n = op->len;
	uint8_t a[8];
	CK_RV rv;
	if (enc) {
		if (pad ? n == 0 || n > 0xffffffffu : n < 16 || n % 8)
			return CKR_DATA_LEN_RANGE;
		size_t padded = (n + 7) / 8 * 8;
		uint8_t iv[8] = { 0xa6, 0x59, 0x59, 0xa6 };
		wire_store_u32(iv + 4, (uint32_t)n);
		if ((rv = cr_alloc_out(padded + 8, out, outlen)) != CKR_OK)
			return rv;
		uint8_t *p = calloc(1, padded);
		if (p == NULL) {
			free(*out);
			return CKR_HOST_MEMORY;
		}
		memcpy(p, op->buf, n);
		int r;
		if (pad && padded == 8) {
			memcpy(*out, iv, 8);
			memcpy(*out + 8, p, 8);
			r = gcry_cipher_encrypt(op->ciph, *out, 16, NULL, 0) ? -1 : 0;
		} else {
			r = kw_wrap(op->ciph, pad ? iv : kw_iv, p, padded / 8, *out);
		}
		wire_wipe(p, padded);
		free(p);
		if (r != 0) {
			free(*out);
			*out = NULL;
			return CKR_FUNCTION_FAILED;
		}
		return CKR_OK;
	}
	if (n % 8 || n < (pad ? 16 : 24))
		return CKR_ENCRYPTED_DATA_LEN_RANGE;
	if ((rv = cr_alloc_out(n - 8, out, outlen)) != CKR_OK)
		return rv;
	int r;
	if (pad && n == 16) {
		uint8_t b[16];
		memcpy(b, op->buf, 16);
		r = gcry_cipher_decrypt(op->ciph, b, 16, NULL, 0) ? -1 : 0;
		memcpy(a, b, 8);
		memcpy(*out, b + 8, 8);
		wire_wipe(b, sizeof(b));
	} else {
		r = kw_unwrap(op->ciph, op->buf, n / 8 - 1, *out, a);
	}
	rv = r ? CKR_FUNCTION_FAILED : CKR_ENCRYPTED_DATA_INVALID;
	if (r == 0 && !pad && memcmp(a, kw_iv, 8) == 0)
		rv = CKR_OK;
	if (r == 0 && pad && a[0] == 0xa6 && a[1] == 0x59 && a[2] == 0x59 && a[3] == 0xa6) {
		/* The stated length must fit the last block, padded with zeros. */
		size_t mli = wire_load_u32(a + 4);
		bool ok = mli <= n - 8 && mli > n - 16;
		for (size_t i = mli; ok && i < n - 8; i++)
			ok = (*out)[i] == 0;
		if (ok) {
			*outlen = mli;
			rv = CKR_OK;
		}
	}
	if (rv != CKR_OK) {
		wire_wipe(*out, n - 8);
		free(*out);
		*out = NULL;
	}
	return rv;
}

/*
 * Block ciphers: processes as many whole blocks of src/len as the mode
 * allows now; final says the input is complete. src is the operation's
 * buffer (op->buf, what earlier parts left), whose processed part is then
 * dropped, or the caller's input when nothing is buffered (see
 * cipher_direct); *used says how much of src was consumed.
 */
static CK_RV
cipher_blocks(struct km_op *op, bool final, const uint8_t *src, size_t len, size_t *used,
	      uint8_t **out, size_t *outlen)
{
	enum mech_family f = op->m->fam;
	bool enc = op->kind == OP_ENCRYPT;
	size_t bs = op->blk, take, extra = 0;
	uint8_t last[16];
	bool pad = false;
	*used = 0;
	if (f == MF_AES_GCM && !enc) {
		/* The tag ends the input; nothing is released before it is checked. */
		take = 0;
		if (final) {
			if (len < op->tag_len)
				return CKR_ENCRYPTED_DATA_LEN_RANGE;
			take = len - op->tag_len;
		}
	} else if (f == MF_AES_GCM) {
		take = final ? len : len - len % bs;
		if (final)
			extra = op->tag_len;
	} else if (f == MF_AES_CTR) {
		take = len; /* a stream: every byte goes out at once */
	} else {
		take = len - len % bs;
		if (f == MF_CBC_PAD && !enc && !final && take == len && take > 0)
			take -= bs; /* the last block may hold the padding */
		if (final && len % bs) {
			if (f != MF_CBC_PAD || !enc)
				return enc ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
		}
		if (final && f == MF_CBC_PAD && enc) {
			/* The tail and the padding make one more block. */
			size_t tail = len % bs;
			uint8_t pv = (uint8_t)(bs - tail);
			memcpy(last, src + take, tail);
			memset(last + tail, pv, pv);
			pad = true;
			extra = bs;
		}
		if (final && f == MF_CBC_PAD && !enc && len == 0)
			return CKR_ENCRYPTED_DATA_LEN_RANGE;
	}
	/* Only an encryption writes straight to op->dst: a decryption's
	 * output is not released before it is checked. */
	uint8_t *dst = enc ? op->dst : NULL;
	if (!enc)
		op->dst = NULL;
	CK_RV rv = cipher_out(op, take + extra, out, outlen);
	if (rv != CKR_OK)
		return rv;
	gcry_error_t ge = 0;
	if (final && f == MF_AES_GCM)
		ge = gcry_cipher_final(op->ciph);
	if (ge == 0 && take)
		ge = enc ? gcry_cipher_encrypt(op->ciph, *out, take, src, take)
			 : gcry_cipher_decrypt(op->ciph, *out, take, src, take);
	if (ge == 0 && pad)
		ge = gcry_cipher_encrypt(op->ciph, *out + take, bs, last, bs);
	if (ge == 0 && final && f == MF_AES_GCM) {
		if (enc)
			ge = gcry_cipher_gettag(op->ciph, *out + take, op->tag_len);
		else if (gcry_cipher_checktag(op->ciph, src + take, op->tag_len) != 0)
			rv = CKR_ENCRYPTED_DATA_INVALID;
	}
	wire_wipe(last, sizeof(last));
	if (ge != 0)
		rv = CKR_FUNCTION_FAILED;
	if (rv == CKR_OK && final && f == MF_CBC_PAD && !enc) {
		uint8_t pv = (*out)[take - 1];
		bool bad = pv == 0 || pv > bs;
		for (size_t i = 0; !bad && i < pv; i++)
			bad = (*out)[take - 1 - i] != pv;
		if (bad)
			rv = CKR_ENCRYPTED_DATA_INVALID;
		else
			*outlen = take - pv;
	}
	if (rv != CKR_OK) {
		cipher_out_drop(out, take + extra, dst);
		return rv;
	}
	*used = final ? len : take;
	return CKR_OK;
}

/* A step over the operation's buffer. */
static CK_RV
cipher_step(struct km_op *op, bool final, uint8_t **out, size_t *outlen)
{
	enum mech_family f = op->m->fam;
	size_t used;
	if (f == MF_AES_KW || f == MF_AES_KWP) {
		/* Single-part: the input is collected until the end. */
		if (!final)
			return cr_alloc_out(0, out, outlen);
		CK_RV krv = kw_step(op, out, outlen);
		cr_buf_drop(op, op->len);
		return krv;
	}
	CK_RV rv = cipher_blocks(op, final, op->buf, op->len, &used, out, outlen);
	if (rv == CKR_OK)
		cr_buf_drop(op, used);
	return rv;
}

/*
 * A step straight from the caller's input when nothing is buffered (a
 * single-part call, or parts of whole blocks): the input is not copied
 * into the operation first; what is left over (a partial block, a GCM
 * ciphertext waiting for its tag) is kept as usual. Returns false when
 * the step must go through the buffer (key wrapping, something buffered).
 */
static bool
cipher_direct(struct km_op *op, bool final, const uint8_t *in, size_t inlen, CK_RV *rv,
	      uint8_t **out, size_t *outlen)
{
	enum mech_family f = op->m->fam;
	size_t used;
	if (op->len != 0 || f == MF_AES_KW || f == MF_AES_KWP || (f == MF_AES_GCM && op->kind != OP_ENCRYPT && !final))
		return false;
	uint8_t *dst = op->dst;
	*rv = cipher_blocks(op, final, in, inlen, &used, out, outlen);
	if (*rv == CKR_OK && used < inlen && cr_buf_add(op, in + used, inlen - used) != 0) {
		cipher_out_drop(out, *outlen, dst);
		*rv = CKR_HOST_MEMORY;
	}
	return true;
}

void
crypto_des_parity(uint8_t *k, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t b = k[i] & 0xfe, ones = 0;
		for (uint8_t t = b; t; t >>= 1)
			ones += t & 1;
		k[i] = b | !(ones & 1);
	}
}


/* Block and stream ciphers: AES in every mode here, 3DES in ECB and CBC. */
static CK_RV
cipher_key(struct km_op *op, const struct km_object *key, bool priv)
{
	(void)priv;
	const struct attr *v = al_find(&key->sec, CKA_VALUE);
	int algo, mode;
	if (v == NULL || v->len == 0)
		return CKR_KEY_HANDLE_INVALID;
	op->k = v->len;
	if (op->m->kt == CKK_DES3) {
		if (v->len != 24)
			return CKR_KEY_SIZE_RANGE;
		algo = GCRY_CIPHER_3DES;
	} else {
		switch (v->len) {
		case 16: algo = GCRY_CIPHER_AES128; break;
		case 24: algo = GCRY_CIPHER_AES192; break;
		case 32: algo = GCRY_CIPHER_AES256; break;
		default: return CKR_KEY_SIZE_RANGE;
		}
	}
	static const int modes[MF_COUNT] = {
		[MF_ECB] = GCRY_CIPHER_MODE_ECB, [MF_AES_KW] = GCRY_CIPHER_MODE_ECB, [MF_AES_KWP] = GCRY_CIPHER_MODE_ECB,
		[MF_AES_GCM] = GCRY_CIPHER_MODE_GCM, [MF_AES_CTR] = GCRY_CIPHER_MODE_CTR,
		[MF_CBC] = GCRY_CIPHER_MODE_CBC, [MF_CBC_PAD] = GCRY_CIPHER_MODE_CBC,
	};
	mode = modes[op->m->fam];
	op->blk = gcry_cipher_get_algo_blklen(algo);
	if (gcry_cipher_open(&op->ciph, algo, mode, GCRY_CIPHER_SECURE) != 0)
		return CKR_HOST_MEMORY;
	/* libgcrypt refuses 3DES keys with a weak part (an all-zero
	 * third, say) unless told to allow them, and then still answers
	 * GPG_ERR_WEAK_KEY with the key set; PKCS#11 tokens take them. */
	gcry_error_t ge = gcry_cipher_ctl(op->ciph, GCRYCTL_SET_ALLOW_WEAK_KEY, NULL, 1);
	if (ge == 0)
		ge = gcry_cipher_setkey(op->ciph, v->val, v->len);
	if (gpg_err_code(ge) == GPG_ERR_WEAK_KEY)
		ge = 0;
	return ge ? CKR_KEY_SIZE_RANGE : CKR_OK;
}

static CK_RV
cipher_params(struct km_op *op, const struct mech_param *p)
{
	switch (op->m->fam) {
	case MF_CBC:
	case MF_CBC_PAD:
		if (p->kind != MP_IV || p->iv_len != op->blk)
			return CKR_MECHANISM_PARAM_INVALID;
		return gcry_cipher_setiv(op->ciph, p->iv, op->blk) ? CKR_MECHANISM_PARAM_INVALID : CKR_OK;
	case MF_AES_CTR:
		/* The counter block is incremented as a whole; a counter field
		 * narrower than 128 bits is not wrapped separately. */
		if (p->kind != MP_CTR || p->counter_bits == 0 || p->counter_bits > 128)
			return CKR_MECHANISM_PARAM_INVALID;
		return gcry_cipher_setctr(op->ciph, p->cb, 16) ? CKR_MECHANISM_PARAM_INVALID : CKR_OK;
	case MF_AES_GCM:
		if (p->kind != MP_GCM || p->iv_len == 0 || p->iv_len > 256)
			return CKR_MECHANISM_PARAM_INVALID;
		if (p->tag_bits < 64 || p->tag_bits > 128 || p->tag_bits % 8)
			return CKR_MECHANISM_PARAM_INVALID;
		op->tag_len = p->tag_bits / 8;
		if (gcry_cipher_setiv(op->ciph, p->iv, p->iv_len) != 0)
			return CKR_MECHANISM_PARAM_INVALID;
		if (p->aad_len && gcry_cipher_authenticate(op->ciph, p->aad, p->aad_len) != 0)
			return CKR_MECHANISM_PARAM_INVALID;
		return CKR_OK;
	default:
		return p->kind == MP_NONE ? CKR_OK : CKR_MECHANISM_PARAM_INVALID;
	}
}

static CK_RV
cipher_update(struct km_op *op, const uint8_t *in, size_t n, uint8_t **out, size_t *outlen)
{
	CK_RV rv;
	if (cipher_direct(op, false, in, n, &rv, out, outlen))
		return rv;
	if (cr_buf_add(op, in, n) != 0)
		return CKR_HOST_MEMORY;
	return cipher_step(op, false, out, outlen);
}

static CK_RV
cipher_final(struct km_op *op, const uint8_t *sig, size_t siglen, uint8_t **out, size_t *outlen)
{
	(void)sig;
	(void)siglen;
	return cipher_step(op, true, out, outlen);
}

/* A new secret key of len random bytes (DES parity when des). */
static CK_RV
make_secret(struct km_object *key, size_t len, bool des)
{
	uint8_t *v = gcry_malloc_secure(len);
	if (v == NULL)
		return CKR_HOST_MEMORY;
	gcry_randomize(v, len, GCRY_VERY_STRONG_RANDOM);
	if (des)
		crypto_des_parity(v, len);
	int r = al_set(&key->sec, CKA_VALUE, v, len);
	CK_RV rv = r ? CKR_HOST_MEMORY : cr_secret_derived(key, v, len);
	wire_wipe(v, len);
	gcry_free(v);
	return rv;
}

static CK_RV
aes_keygen(const struct mech_row *m, struct km_object *key, struct km_object *unused)
{
	uint64_t len = 0;
	(void)m;
	(void)unused;
	if (al_ulong(&key->pub, CKA_VALUE_LEN, &len) != 0)
		return CKR_TEMPLATE_INCOMPLETE;
	if (len != 16 && len != 24 && len != 32)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	return make_secret(key, len, false);
}

static CK_RV
generic_keygen(const struct mech_row *m, struct km_object *key, struct km_object *unused)
{
	uint64_t len = 0;
	(void)unused;
	if (al_ulong(&key->pub, CKA_VALUE_LEN, &len) != 0)
		return CKR_TEMPLATE_INCOMPLETE;
	if (len < m->min_bits || len > m->max_bits)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	return make_secret(key, len, false);
}

static CK_RV
des3_keygen(const struct mech_row *m, struct km_object *key, struct km_object *unused)
{
	(void)m;
	(void)unused;
	return make_secret(key, 24, true);
}

/* PKCS#11: AES-ECB/CBC (and DES3-ECB/CBC) wrapping pads a key "on the
 * trailing end with up to block size minus one null bytes"; the padded
 * modes and key wrap take the key as it is. */
static size_t
cipher_wrap_len(const struct km_op *op, size_t n)
{
	if ((op->m->fam == MF_ECB || op->m->fam == MF_CBC) && op->blk != 0 && n % op->blk != 0)
		return n + op->blk - n % op->blk;
	return n;
}

const struct crypto_family cr_cipher = {
	.key = cipher_key,
	.params = cipher_params,
	.update = cipher_update,
	.final = cipher_final,
	.direct = cipher_direct,
	.wrap_len = cipher_wrap_len,
};

const struct crypto_family cr_aes_keygen = { .keygen = aes_keygen };
const struct crypto_family cr_generic_keygen = { .keygen = generic_keygen };
const struct crypto_family cr_des3_keygen = { .keygen = des3_keygen };
