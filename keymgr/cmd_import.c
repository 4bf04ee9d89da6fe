/*
 * cmd_import.c - keymgr key import: a private key written by another tool
 * (a PKCS #12 file, or a PKCS #8 file and its certificate) becomes token
 * objects: the private key (sensitive, never extractable again), its
 * public key and its certificates. GnuTLS reads the files, here, so the
 * password never travels; the key's parts go to keymgrd once, in the
 * template of C_CreateObject, over the connection keymgr already trusts.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <gnutls/gnutls.h>
#include <gnutls/pkcs12.h>
#include <gnutls/x509.h>

#include "ckr.h"
#include "cli.h"
#include "curve.h"
#include "proto.h"

/* GnuTLS's curves, by the names coyeu knows them by. */
static const struct {
	gnutls_ecc_curve_t gc;
	const char *name;
} curves[] = {
	{ GNUTLS_ECC_CURVE_SECP256R1, "P-256" },
	{ GNUTLS_ECC_CURVE_SECP384R1, "P-384" },
	{ GNUTLS_ECC_CURVE_SECP521R1, "P-521" },
	{ GNUTLS_ECC_CURVE_ED25519, "Ed25519" },
	{ GNUTLS_ECC_CURVE_ED448, "Ed448" },
};

/* What the files held: the key, and its certificate first, then the rest
 * of the chain. */
struct loaded {
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t certs[16];
	unsigned ncerts;
};

static void
loaded_clear(struct loaded *l)
{
	if (l->key)
		gnutls_x509_privkey_deinit(l->key);
	for (unsigned i = 0; i < l->ncerts; i++)
		gnutls_x509_crt_deinit(l->certs[i]);
	memset(l, 0, sizeof(*l));
}

/* The password: a line of fd, else asked on the terminal. 0, or -1 when
 * there is none to ask (no terminal). */
static int
password(int fd, const char *file, char *out, size_t len)
{
	char prompt[600];
	snprintf(prompt, sizeof(prompt), "password of %.500s: ", file);
	return cli_read_pin(fd, prompt, out, len);
}

static bool
is_pem(const gnutls_datum_t *d)
{
	return d->size >= 11 && memmem(d->data, d->size, "-----BEGIN ", 11) != NULL;
}

/* A PKCS #12 file: its MAC checked with the password, the key and the
 * chain that certifies it. 0 or prints, 1. */
static int
load_p12(const char *path, int pwfd, struct loaded *l)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char pw[256] = "";
	gnutls_pkcs12_t p12 = NULL;
	int status = 1, g;
	if (cli_read_file(path, &buf, &len) != 0)
		return 1;
	gnutls_datum_t in = { buf, (unsigned)len };
	if (gnutls_pkcs12_init(&p12) < 0 ||
	    gnutls_pkcs12_import(p12, &in, is_pem(&in) ? GNUTLS_X509_FMT_PEM : GNUTLS_X509_FMT_DER, 0) < 0) {
		cli_fail("key import: %s: not a PKCS #12 file", path);
		goto out;
	}
	/* Without --password-fd an empty password is tried first (files
	 * exported without one), then the terminal asked. */
	if (pwfd >= 0 && password(pwfd, path, pw, sizeof(pw)) != 0) {
		cli_fail("key import: no password could be read from descriptor %d", pwfd);
		goto out;
	}
	g = gnutls_pkcs12_verify_mac(p12, pw);
	if (g < 0 && pwfd < 0) {
		if (password(-1, path, pw, sizeof(pw)) != 0) {
			cli_fail("key import: %s needs its password; give it with --password-fd N (no terminal to ask on)",
				 path);
			goto out;
		}
		g = gnutls_pkcs12_verify_mac(p12, pw);
	}
	if (g < 0 && g != GNUTLS_E_UNKNOWN_HASH_ALGORITHM) {
		cli_fail("key import: %s: wrong password (%s)", path, gnutls_strerror(g));
		goto out;
	}
	gnutls_x509_crt_t *chain = NULL;
	unsigned n = 0;
	g = gnutls_pkcs12_simple_parse(p12, pw, &l->key, &chain, &n, NULL, NULL, NULL,
				       GNUTLS_PKCS12_SP_INCLUDE_SELF_SIGNED);
	if (g < 0 || l->key == NULL) {
		cli_fail("key import: %s: no key and certificate that match in it (%s)", path,
			 g < 0 ? gnutls_strerror(g) : "no key");
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		if (l->ncerts < sizeof(l->certs) / sizeof(l->certs[0]))
			l->certs[l->ncerts++] = chain[i];
		else
			gnutls_x509_crt_deinit(chain[i]);
	}
	gnutls_free(chain);
	status = 0;
out:
	gnutls_memset(pw, 0, sizeof(pw));
	if (p12)
		gnutls_pkcs12_deinit(p12);
	free(buf);
	return status;
}

/* A private key (PKCS #8, plain or encrypted, or the older RSA/EC forms;
 * PEM or DER) and, when cert_path is given, its certificate and chain:
 * the one certifying the key goes first. 0 or prints, 1. */
static int
load_pkcs8(const char *key_path, const char *cert_path, int pwfd, struct loaded *l)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char pw[256];
	int status = 1, g;
	if (cli_read_file(key_path, &buf, &len) != 0)
		return 1;
	gnutls_datum_t in = { buf, (unsigned)len };
	gnutls_x509_crt_fmt_t fmt = is_pem(&in) ? GNUTLS_X509_FMT_PEM : GNUTLS_X509_FMT_DER;
	if (gnutls_x509_privkey_init(&l->key) < 0)
		goto out;
	g = pwfd >= 0 ? GNUTLS_E_DECRYPTION_FAILED : gnutls_x509_privkey_import2(l->key, &in, fmt, NULL, 0);
	if (g < 0) {
		if (password(pwfd, key_path, pw, sizeof(pw)) != 0) {
			if (pwfd >= 0)
				cli_fail("key import: no password could be read from descriptor %d", pwfd);
			else
				cli_fail("key import: %s: not a private key GnuTLS reads, or encrypted: give its "
					 "password with --password-fd N (%s)", key_path, gnutls_strerror(g));
			goto out;
		}
		g = gnutls_x509_privkey_import2(l->key, &in, fmt, pw, 0);
		gnutls_memset(pw, 0, sizeof(pw));
		if (g < 0) {
			cli_fail("key import: %s: wrong password, or not a private key (%s)", key_path, gnutls_strerror(g));
			goto out;
		}
	}
	status = 0;
	if (cert_path != NULL) {
		free(buf);
		buf = NULL;
		if (cli_read_file(cert_path, &buf, &len) != 0)
			return 1;
		gnutls_datum_t cin = { buf, (unsigned)len };
		gnutls_x509_crt_t *crts = NULL;
		unsigned n = 0;
		if (gnutls_x509_crt_list_import2(&crts, &n, &cin, is_pem(&cin) ? GNUTLS_X509_FMT_PEM : GNUTLS_X509_FMT_DER,
						 0) < 0 || n == 0) {
			free(buf);
			return cli_fail("key import: %s: no certificate in it", cert_path);
		}
		for (unsigned i = 0; i < n; i++) {
			if (l->ncerts < sizeof(l->certs) / sizeof(l->certs[0]))
				l->certs[l->ncerts++] = crts[i];
			else
				gnutls_x509_crt_deinit(crts[i]);
		}
		gnutls_free(crts);
	}
out:
	free(buf);
	return status;
}

/* Moves the certificate of l's key to the front: 0, or -1 when none of
 * them certifies it. */
static int
key_first(struct loaded *l)
{
	uint8_t want[32], got[32];
	size_t wn = sizeof(want);
	if (gnutls_x509_privkey_get_key_id(l->key, GNUTLS_KEYID_USE_SHA256, want, &wn) < 0)
		return -1;
	for (unsigned i = 0; i < l->ncerts; i++) {
		size_t gn = sizeof(got);
		if (gnutls_x509_crt_get_key_id(l->certs[i], GNUTLS_KEYID_USE_SHA256, got, &gn) == 0 && gn == wn &&
		    memcmp(got, want, wn) == 0) {
			gnutls_x509_crt_t t = l->certs[0];
			l->certs[0] = l->certs[i];
			l->certs[i] = t;
			return 0;
		}
	}
	return -1;
}

/* DER OCTET STRING of p (CKA_EC_POINT) into out (room for n + 3). */
static size_t
octet_string(const uint8_t *p, size_t n, uint8_t *out)
{
	size_t h = 0;
	out[h++] = 0x04;
	if (n < 128) {
		out[h++] = (uint8_t)n;
	} else {
		out[h++] = 0x81;
		out[h++] = (uint8_t)n;
	}
	memcpy(out + h, p, n);
	return h + n;
}

static void
tmpl_datum(struct cli_tmpl *t, CK_ATTRIBUTE_TYPE type, const gnutls_datum_t *d)
{
	tmpl_bytes(t, type, d->data, d->size);
}

/* A big-endian integer as GnuTLS exports it (a 0 byte in front when the
 * top bit is set) made unsigned, as PKCS #11 writes them. */
static void
strip_lz(gnutls_datum_t *d)
{
	unsigned z = 0;
	while (z + 1 < d->size && d->data[z] == 0)
		z++;
	memmove(d->data, d->data + z, d->size - z);
	d->size -= z;
}

/* The templates of the key's two objects; CKR_OK or why not. */
static CK_RV
key_templates(gnutls_x509_privkey_t key, struct cli_tmpl *priv, struct cli_tmpl *pub, const char **what)
{
	int alg = gnutls_x509_privkey_get_pk_algorithm2(key, NULL);
	gnutls_datum_t d[8];
	memset(d, 0, sizeof(d));
	CK_RV rv = CKR_OK;
	if (alg == GNUTLS_PK_RSA) {
		*what = "RSA";
		if (gnutls_x509_privkey_export_rsa_raw2(key, &d[0], &d[1], &d[2], &d[3], &d[4], &d[5], &d[6], &d[7]) < 0)
			return CKR_FUNCTION_FAILED;
		tmpl_ulong(priv, CKA_KEY_TYPE, CKK_RSA);
		tmpl_ulong(pub, CKA_KEY_TYPE, CKK_RSA);
		static const CK_ATTRIBUTE_TYPE parts[8] = { CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT,
			CKA_PRIME_1, CKA_PRIME_2, CKA_COEFFICIENT, CKA_EXPONENT_1, CKA_EXPONENT_2 };
		for (int i = 0; i < 8; i++) {
			strip_lz(&d[i]);
			tmpl_datum(priv, parts[i], &d[i]);
		}
		tmpl_datum(pub, CKA_MODULUS, &d[0]);
		tmpl_datum(pub, CKA_PUBLIC_EXPONENT, &d[1]);
		tmpl_bool(priv, CKA_DECRYPT, true);
		tmpl_bool(pub, CKA_ENCRYPT, true);
	} else if (alg == GNUTLS_PK_ECDSA || alg == GNUTLS_PK_EDDSA_ED25519 || alg == GNUTLS_PK_EDDSA_ED448) {
		gnutls_ecc_curve_t gc;
		const struct curve *c = NULL;
		if (gnutls_x509_privkey_export_ecc_raw(key, &gc, &d[0], &d[1], &d[2]) < 0)
			return CKR_FUNCTION_FAILED;
		if (alg == GNUTLS_PK_ECDSA)
			for (int i = 0; i < 3; i++)
				strip_lz(&d[i]);
		for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
			if (curves[i].gc == gc)
				c = curve_by_name(curves[i].name);
		*what = c ? c->name : gnutls_ecc_curve_get_name(gc);
		if (c == NULL || d[2].size > c->field_bytes || d[0].size > c->field_bytes ||
		    d[1].size > c->field_bytes) {
			rv = CKR_CURVE_NOT_SUPPORTED;
			goto out;
		}
		uint8_t value[66], point[2 * 66 + 1], der[2 * 66 + 4];
		size_t fb = c->field_bytes, plen;
		/* Fixed width: the scalar and each coordinate left-padded. */
		memset(value, 0, sizeof(value));
		memcpy(value + fb - d[2].size, d[2].data, d[2].size);
		if (c->key_type == CKK_EC) {
			memset(point, 0, sizeof(point));
			point[0] = 0x04;
			memcpy(point + 1 + fb - d[0].size, d[0].data, d[0].size);
			memcpy(point + 1 + 2 * fb - d[1].size, d[1].data, d[1].size);
			plen = 2 * fb + 1;
		} else {
			/* Edwards: the encoded point as GnuTLS gives it, no
			 * leading zeros to strip (little-endian). */
			if (d[0].size != fb) {
				rv = CKR_FUNCTION_FAILED;
				goto out;
			}
			memcpy(point, d[0].data, fb);
			plen = fb;
		}
		CK_KEY_TYPE kt = c->key_type;
		tmpl_ulong(priv, CKA_KEY_TYPE, kt);
		tmpl_ulong(pub, CKA_KEY_TYPE, kt);
		tmpl_bytes(priv, CKA_EC_PARAMS, c->der[0].p, c->der[0].len);
		tmpl_bytes(pub, CKA_EC_PARAMS, c->der[0].p, c->der[0].len);
		tmpl_bytes(priv, CKA_VALUE, value, fb);
		tmpl_bytes(pub, CKA_EC_POINT, der, octet_string(point, plen, der));
		/* Signature keys: nothing to decrypt or wrap with. */
		tmpl_bool(priv, CKA_DECRYPT, false);
		tmpl_bool(priv, CKA_UNWRAP, false);
		tmpl_bool(pub, CKA_ENCRYPT, false);
		tmpl_bool(pub, CKA_WRAP, false);
		gnutls_memset(value, 0, sizeof(value));
	} else {
		*what = gnutls_pk_get_name((gnutls_pk_algorithm_t)alg);
		return CKR_KEY_TYPE_INCONSISTENT;
	}
out:
	for (int i = 0; i < 8; i++) {
		if (d[i].data)
			gnutls_memset(d[i].data, 0, d[i].size);
		gnutls_free(d[i].data);
	}
	return rv;
}

/* C_CreateObject of t in session: the handle, or 0 after printing. */
static uint32_t
create(struct cy_conn *conn, uint32_t session, struct cli_tmpl *t, const char *what)
{
	struct wire_buf *b = client_begin(conn, MSG_CREATE_OBJECT);
	wire_put_u32(b, session);
	CK_RV rv = tmpl_put(t, b);
	if (rv != CKR_OK) {
		cli_fail("key import: %s: template: %s", what, ckr_name(rv));
		return 0;
	}
	uint32_t h = 0;
	if ((rv = cli_call(conn)) == CKR_OK && wire_get_u32(&conn->rep, &h) == 0 && h != 0)
		return h;
	if (rv != (CK_RV)-1)
		cli_fail("key import: keymgrd did not take the %s: %s", what, cli_explain(rv, NULL));
	return 0;
}

static void
destroy(struct cy_conn *conn, uint32_t session, uint32_t h)
{
	struct wire_buf *b = client_begin(conn, MSG_DESTROY_OBJECT);
	wire_put_u32(b, session);
	wire_put_u32(b, h);
	if (cli_call(conn) != CKR_OK)
		fprintf(stderr, "keymgr: key import: could not take back object %u; remove it by hand\n", h);
}

/* The certificates, through keymgrd's cert import (which pairs the first
 * with the key just created, by its public key). 0 or prints, 1. */
static int
import_certs(struct cy_conn *conn, uint32_t session, struct loaded *l, uint32_t *imported, uint32_t *dups)
{
	struct wire_buf *b = client_begin(conn, MSG_CERT_IMPORT);
	wire_put_u32(b, session);
	wire_put_u32(b, l->ncerts);
	for (unsigned i = 0; i < l->ncerts; i++) {
		gnutls_datum_t der = { NULL, 0 };
		if (gnutls_x509_crt_export2(l->certs[i], GNUTLS_X509_FMT_DER, &der) < 0)
			return cli_fail("key import: cannot encode certificate %u", i + 1);
		wire_put_bytes(b, der.data, der.size);
		gnutls_free(der.data);
	}
	CK_RV rv = cli_call(conn);
	uint32_t nokey = 0, bad = 0;
	if (rv != CKR_OK)
		return rv == (CK_RV)-1 ? 1 : cli_fail("key import: the certificates: %s", cli_explain(rv, NULL));
	wire_get_u32(&conn->rep, imported);
	wire_get_u32(&conn->rep, dups);
	wire_get_u32(&conn->rep, &nokey);
	wire_get_u32(&conn->rep, &bad);
	if (bad)
		return cli_fail("key import: certificate %u is not one keymgrd reads", bad);
	return 0;
}

static int
key_import(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "pin", required_argument, NULL, 'p' },
		{ "p12", required_argument, NULL, 'P' },
		{ "key", required_argument, NULL, 'k' },
		{ "cert", required_argument, NULL, 'c' },
		{ "password-fd", required_argument, NULL, 'f' },
		{ "label", required_argument, NULL, 'l' },
		{ "id", required_argument, NULL, 'i' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *token = NULL, *pin = NULL, *p12 = NULL, *keyf = NULL, *certf = NULL, *label = NULL, *idhex = NULL;
	int pwfd = -1, c;
	bool dry = false;
	while ((c = getopt_long(argc, argv, "t:p:", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 'p': pin = cli_pin_arg(optarg, "user PIN"); break;
		case 'P': p12 = optarg; break;
		case 'k': keyf = optarg; break;
		case 'c': certf = optarg; break;
		case 'l': label = optarg; break;
		case 'i': idhex = optarg; break;
		case 'n': dry = true; break;
		case 'f': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || end == optarg || v < 0 || v > 1024)
				return cli_usage("key import: --password-fd takes a file descriptor number");
			pwfd = (int)v;
			break;
		}
		default: return cli_usage("key import: bad option (see keymgr key import --help)");
		}
	}
	if (!token || optind != argc || (p12 == NULL) == (keyf == NULL) || (p12 && certf))
		return cli_usage("key import: --token and either --p12 FILE or --key FILE [--cert FILE] are required");
	uint8_t id[32];
	size_t idlen = 0;
	if (idhex && cli_parse_hex(idhex, id, sizeof(id), &idlen) != 0)
		return cli_usage("key import: --id must be 1 to 32 bytes in hex");

	struct loaded l;
	memset(&l, 0, sizeof(l));
	int status = p12 ? load_p12(p12, pwfd, &l) : load_pkcs8(keyf, certf, pwfd, &l);
	if (status == 0 && l.ncerts > 0 && key_first(&l) != 0)
		status = cli_fail("key import: no certificate given is for this key (their public keys differ)");
	if (status != 0) {
		loaded_clear(&l);
		return status;
	}
	/* The CKA_ID: given, else the SHA-1 key identifier of the public
	 * key (as p11tool and NSS choose theirs). */
	if (idlen == 0) {
		idlen = sizeof(id);
		if (gnutls_x509_privkey_get_key_id(l.key, GNUTLS_KEYID_USE_SHA1, id, &idlen) < 0)
			idlen = 0;
	}
	char cn[256] = "";
	size_t cnlen = sizeof(cn);
	if (label == NULL && l.ncerts > 0 &&
	    gnutls_x509_crt_get_dn_by_oid(l.certs[0], GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &cnlen) == 0)
		label = cn;
	if (label == NULL)
		label = p12 ? p12 : keyf;

	struct cli_tmpl priv, pub;
	tmpl_init(&priv);
	tmpl_init(&pub);
	const char *what = "?";
	CK_RV trv = key_templates(l.key, &priv, &pub, &what);
	if (trv != CKR_OK) {
		status = trv == CKR_CURVE_NOT_SUPPORTED || trv == CKR_KEY_TYPE_INCONSISTENT
			? cli_fail("key import: a %s key; coyeu takes RSA, P-256/384/521, Ed25519 and Ed448", what)
			: cli_fail("key import: cannot read the key's parts");
		goto out;
	}
	if (dry) {
		printf("dry run: a %s key labelled '%s' and %u certificate(s); nothing sent to keymgrd\n", what, label,
		       l.ncerts);
		goto out;
	}
	tmpl_ulong(&priv, CKA_CLASS, CKO_PRIVATE_KEY);
	tmpl_bool(&priv, CKA_TOKEN, true);
	tmpl_bool(&priv, CKA_PRIVATE, true);
	tmpl_bool(&priv, CKA_SENSITIVE, true);
	tmpl_bool(&priv, CKA_EXTRACTABLE, false);
	tmpl_bool(&priv, CKA_SIGN, true);
	tmpl_bytes(&priv, CKA_LABEL, label, strlen(label));
	tmpl_bytes(&priv, CKA_ID, id, idlen);
	tmpl_ulong(&pub, CKA_CLASS, CKO_PUBLIC_KEY);
	tmpl_bool(&pub, CKA_TOKEN, true);
	tmpl_bool(&pub, CKA_VERIFY, true);
	tmpl_bytes(&pub, CKA_LABEL, label, strlen(label));
	tmpl_bytes(&pub, CKA_ID, id, idlen);
	if (l.ncerts > 0) {
		gnutls_datum_t subj = { NULL, 0 };
		if (gnutls_x509_crt_get_raw_dn(l.certs[0], &subj) == 0) {
			tmpl_datum(&priv, CKA_SUBJECT, &subj);
			tmpl_datum(&pub, CKA_SUBJECT, &subj);
			gnutls_free(subj.data);
		}
	}

	struct cy_conn *conn = cli_connect();
	uint32_t session = 0, hpriv = 0, hpub = 0, certs = 0, dups = 0;
	if (conn == NULL || cli_open(conn, token, 0, true, pin, &session) != 0) {
		status = 1;
		goto close;
	}
	/* A key already holding that CKA_ID would be confused with this one. */
	struct cli_tmpl same;
	tmpl_init(&same);
	tmpl_bytes(&same, CKA_ID, id, idlen);
	uint32_t *found = NULL, nfound = 0;
	CK_RV frv = cli_find_all(conn, session, &same, &found, &nfound);
	tmpl_free(&same);
	free(found);
	if (frv != CKR_OK) {
		status = frv == (CK_RV)-1 ? 1 : cli_fail("key import: %s", cli_explain(frv, NULL));
		goto close;
	}
	if (nfound > 0) {
		status = cli_fail("key import: token '%s' already has objects with this CKA_ID; give another with --id",
				  token);
		goto close;
	}
	if ((hpriv = create(conn, session, &priv, "private key")) == 0 ||
	    (hpub = create(conn, session, &pub, "public key")) == 0 ||
	    (l.ncerts > 0 && import_certs(conn, session, &l, &certs, &dups) != 0)) {
		/* All or nothing: what was made goes again. */
		if (hpub)
			destroy(conn, session, hpub);
		if (hpriv)
			destroy(conn, session, hpriv);
		status = 1;
		goto close;
	}
	printf("imported %s key '%s' id ", what, label);
	for (size_t i = 0; i < idlen; i++)
		printf("%02x", id[i]);
	printf(" with %u certificate(s)", certs);
	if (dups)
		printf(" (%u more already on the token)", dups);
	printf("\n");
close:
	client_close(conn);
out:
	tmpl_free(&priv);
	tmpl_free(&pub);
	loaded_clear(&l);
	return status;
}

const struct cli_cmd cmd_key_import = {
	"key", "import",
	"--token LABEL [--pin PIN] (--p12 FILE | --key FILE [--cert FILE]) [--password-fd N] [--label KEY]"
	" [--id HEX] [--dry-run]",
	"Brings in a private key made elsewhere, with its certificates: from a PKCS #12\n"
	"file (.p12/.pfx), or from a private key file (PKCS #8, plain or encrypted, or\n"
	"the older RSA/EC forms; PEM or DER) and a certificate file (its chain may\n"
	"follow). The password is read from descriptor N (--password-fd), else asked\n"
	"on the terminal (a PKCS #12 file without one is read as it is). The key must\n"
	"match the certificate; it becomes a sensitive, non-extractable private key,\n"
	"its public key and certificates, with the certificate's CN as label and the\n"
	"key's SHA-1 identifier as CKA_ID unless --label/--id; all or nothing. RSA,\n"
	"P-256/384/521, Ed25519 and Ed448. The file stays where it is: delete it\n"
	"once the token holds the key.",
	key_import,
};
