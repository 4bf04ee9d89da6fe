/*
 * cmd_export.c - keymgr cert export and keymgr key pubkey: what a token
 * holds that others need (a certificate with its chain, a CA's certificate,
 * a public key), taken out as PEM (or DER). Public objects only: no login
 * is needed, and nothing secret ever leaves.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>

#include "ckr.h"
#include "cli.h"
#include "proto.h"
#include "wire.h"

/* One attribute of object h (its value malloc'd): 0, or 1 when it has none. */
static int
get_attr(struct cy_conn *conn, uint32_t session, uint32_t h, uint32_t type, uint8_t **val, size_t *len)
{
	struct wire_buf *b = client_begin(conn, MSG_GET_ATTRS);
	wire_put_u32(b, session);
	wire_put_u32(b, h);
	wire_put_u32(b, 1);
	wire_put_u32(b, type);
	CK_RV rv = cli_call(conn);
	uint32_t cnt = 0, t = 0, arv = 0, n = 0;
	const uint8_t *p = NULL;
	*val = NULL;
	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE)
		return 1;
	if (wire_get_u32(&conn->rep, &cnt) != 0 || cnt != 1 || wire_get_u32(&conn->rep, &t) != 0 ||
	    wire_get_u32(&conn->rep, &arv) != 0 || wire_get_bytes(&conn->rep, &p, &n) != 0 || arv != CKR_OK || n == 0)
		return 1;
	if ((*val = malloc(n)) == NULL)
		return 1;
	memcpy(*val, p, n);
	*len = n;
	return 0;
}

/* The token's certificates, parsed. */
struct certs {
	gnutls_x509_crt_t *crt;
	char **label;
	uint8_t (*id)[64];
	size_t *id_len;
	size_t n;
};

static void
certs_free(struct certs *c)
{
	for (size_t i = 0; i < c->n; i++) {
		gnutls_x509_crt_deinit(c->crt[i]);
		free(c->label[i]);
	}
	free(c->crt);
	free(c->label);
	free(c->id);
	free(c->id_len);
}

static int
read_certs(struct cy_conn *conn, uint32_t session, struct certs *out)
{
	struct cli_tmpl t;
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_CLASS, CKO_CERTIFICATE);
	uint32_t *h = NULL, n = 0;
	CK_RV rv = cli_find_all(conn, session, &t, &h, &n);
	tmpl_free(&t);
	memset(out, 0, sizeof(*out));
	if (rv != CKR_OK) {
		if (rv != (CK_RV)-1)
			cli_fail("cert export: %s", ckr_name(rv));
		return 1;
	}
	out->crt = calloc(n ? n : 1, sizeof(*out->crt));
	out->label = calloc(n ? n : 1, sizeof(*out->label));
	out->id = calloc(n ? n : 1, sizeof(*out->id));
	out->id_len = calloc(n ? n : 1, sizeof(*out->id_len));
	if (out->crt == NULL || out->label == NULL || out->id == NULL || out->id_len == NULL) {
		free(h);
		return cli_fail("cert export: out of memory");
	}
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *der = NULL, *label = NULL;
		size_t dl = 0, ll = 0;
		if (get_attr(conn, session, h[i], CKA_VALUE, &der, &dl) != 0)
			continue;
		gnutls_datum_t d = { der, (unsigned)dl };
		gnutls_x509_crt_t crt;
		if (gnutls_x509_crt_init(&crt) == 0 && gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER) == 0) {
			out->crt[out->n] = crt;
			if (get_attr(conn, session, h[i], CKA_LABEL, &label, &ll) == 0) {
				out->label[out->n] = calloc(1, ll + 1);
				if (out->label[out->n])
					memcpy(out->label[out->n], label, ll);
			}
			uint8_t *id = NULL;
			size_t il = 0;
			if (get_attr(conn, session, h[i], CKA_ID, &id, &il) == 0 && il <= sizeof(out->id[0])) {
				memcpy(out->id[out->n], id, il);
				out->id_len[out->n] = il;
			}
			free(id);
			out->n++;
		}
		free(label);
		free(der);
	}
	free(h);
	return 0;
}

/* The CKA_IDs of the versions of key label (its public keys). */
static int
key_ids(struct cy_conn *conn, uint32_t session, const char *label, uint8_t (**ids)[64], size_t **lens, size_t *n)
{
	struct cli_tmpl t;
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_CLASS, CKO_PUBLIC_KEY);
	tmpl_bytes(&t, CKA_LABEL, label, strlen(label));
	uint32_t *h = NULL, nh = 0;
	CK_RV rv = cli_find_all(conn, session, &t, &h, &nh);
	tmpl_free(&t);
	*ids = calloc(nh ? nh : 1, sizeof(**ids));
	*lens = calloc(nh ? nh : 1, sizeof(**lens));
	*n = 0;
	if (rv != CKR_OK || *ids == NULL || *lens == NULL) {
		free(h);
		return 1;
	}
	for (uint32_t i = 0; i < nh; i++) {
		uint8_t *id = NULL;
		size_t il = 0;
		if (get_attr(conn, session, h[i], CKA_ID, &id, &il) == 0 && il <= sizeof((*ids)[0])) {
			memcpy((*ids)[*n], id, il);
			(*lens)[(*n)++] = il;
		}
		free(id);
	}
	free(h);
	return 0;
}

static bool
serial_is(gnutls_x509_crt_t crt, const char *want)
{
	uint8_t s[64];
	size_t len = sizeof(s);
	char hexs[130] = "";
	if (gnutls_x509_crt_get_serial(crt, s, &len) < 0)
		return false;
	size_t off = 0;
	while (off + 1 < len && s[off] == 0)
		off++; /* a leading 00 that keeps the INTEGER positive */
	for (size_t i = off; i < len; i++)
		sprintf(hexs + 2 * (i - off), "%02x", s[i]);
	/* As the inventory prints it, any case, colons allowed. */
	char w[130];
	size_t k = 0;
	for (const char *p = want; *p && k + 1 < sizeof(w); p++)
		if (*p != ':')
			w[k++] = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
	w[k] = '\0';
	while (w[0] == '0' && w[1] && strlen(w) > strlen(hexs))
		memmove(w, w + 1, strlen(w));
	return strcmp(w, hexs) == 0;
}

static int
put_cert(FILE *f, gnutls_x509_crt_t crt, bool der)
{
	gnutls_datum_t out = { NULL, 0 };
	if (gnutls_x509_crt_export2(crt, der ? GNUTLS_X509_FMT_DER : GNUTLS_X509_FMT_PEM, &out) < 0)
		return -1;
	size_t w = fwrite(out.data, 1, out.size, f);
	gnutls_free(out.data);
	return w == out.size ? 0 : -1;
}

static int
cert_export(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "label", required_argument, NULL, 'l' },
		{ "serial", required_argument, NULL, 's' },
		{ "chain", no_argument, NULL, 'c' },
		{ "der", no_argument, NULL, 'd' },
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *token = NULL, *label = NULL, *serial = NULL, *out = "-";
	bool chain = false, der = false;
	int c;
	while ((c = getopt_long(argc, argv, "t:l:s:o:", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 'l': label = optarg; break;
		case 's': serial = optarg; break;
		case 'c': chain = true; break;
		case 'd': der = true; break;
		case 'o': out = optarg; break;
		default: return cli_usage("cert export: bad option (see keymgr cert export --help)");
		}
	}
	if (optind < argc && label == NULL && serial == NULL)
		label = argv[optind++];
	if (optind != argc || token == NULL || (label == NULL) == (serial == NULL))
		return cli_usage("cert export: --token and one of --label and --serial are required");
	if (der && chain)
		return cli_usage("cert export: a chain is PEM (one DER file holds one certificate)");
	struct cy_conn *conn = cli_connect();
	uint32_t session;
	struct certs cs = { 0 };
	int status = 1;
	if (conn == NULL || cli_open(conn, token, 0, false, NULL, &session) != 0 || read_certs(conn, session, &cs) != 0)
		goto out;
	/* A key's certificates are those of its versions' CKA_IDs (or labelled
	 * as it); the latest that matches: a renewal's, not the one it
	 * superseded. */
	uint8_t (*ids)[64] = NULL;
	size_t *lens = NULL, nids = 0;
	if (label != NULL && key_ids(conn, session, label, &ids, &lens, &nids) != 0) {
		free(ids);
		free(lens);
		cli_fail("cert export: cannot read the key '%s'", label);
		goto out;
	}
	gnutls_x509_crt_t pick = NULL;
	time_t newest = 0, latest = 0;
	for (size_t i = 0; i < cs.n; i++) {
		bool match = serial ? serial_is(cs.crt[i], serial) : cs.label[i] && strcmp(cs.label[i], label) == 0;
		for (size_t k = 0; !match && k < nids; k++)
			match = cs.id_len[i] == lens[k] && lens[k] > 0 && memcmp(cs.id[i], ids[k], lens[k]) == 0;
		/* The one that ends last (a renewal's), of those the one begun last:
		 * two issued in the same second differ by their end. */
		time_t nb = gnutls_x509_crt_get_activation_time(cs.crt[i]);
		time_t na = gnutls_x509_crt_get_expiration_time(cs.crt[i]);
		if (match && (pick == NULL || na > latest || (na == latest && nb > newest))) {
			pick = cs.crt[i];
			newest = nb;
			latest = na;
		}
	}
	free(ids);
	free(lens);
	if (pick == NULL) {
		cli_fail("cert export: no certificate %s '%s' on token '%s'", serial ? "with serial" : "of the key",
			 serial ? serial : label, token);
		goto out;
	}
	FILE *f = strcmp(out, "-") == 0 ? stdout : fopen(out, "w");
	if (f == NULL) {
		cli_fail("cert export: %s: cannot write it", out);
		goto out;
	}
	int bad = put_cert(f, pick, der);
	size_t depth = 0;
	/* Up the chain with what the token holds, to a self-signed one. */
	for (gnutls_x509_crt_t at = pick; chain && !bad && depth < 8; depth++) {
		if (gnutls_x509_crt_check_issuer(at, at))
			break;
		gnutls_x509_crt_t up = NULL;
		for (size_t i = 0; i < cs.n && up == NULL; i++)
			if (cs.crt[i] != at && gnutls_x509_crt_check_issuer(at, cs.crt[i]))
				up = cs.crt[i];
		if (up == NULL)
			break;
		bad = put_cert(f, up, false);
		at = up;
	}
	if ((f != stdout ? fclose(f) : fflush(f)) != 0 || bad)
		cli_fail("cert export: %s: write error", out);
	else
		status = 0;
	if (status == 0 && f != stdout)
		fprintf(stderr, "wrote the certificate%s to %s\n", chain && depth ? " and its chain" : "", out);
out:
	certs_free(&cs);
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_cert_export = {
	"cert", "export", "--token LABEL (KEY | --label KEY | --serial HEX) [--chain] [--der] [--out FILE]",
	"Writes a certificate from the token, PEM (or DER) to FILE (default stdout): the\n"
	"newest one labelled KEY (a key's certificate), or the one with the serial the\n"
	"inventory shows. --chain adds its issuers that the token holds, up to a\n"
	"self-signed one (a CA token: the CA certificate itself). No PIN: certificates\n"
	"are public.",
	cert_export,
};

/* The SubjectPublicKeyInfo of public key object h: CKA_PUBLIC_KEY_INFO
 * when the token has it, else built by GnuTLS from the key's own
 * attributes (RSA modulus and exponent; EC parameters and point; EdDSA's).
 * 0 with *der (gnutls_free), or 1. */
static int
spki_of(struct cy_conn *conn, uint32_t session, uint32_t h, gnutls_datum_t *der)
{
	uint8_t *a = NULL, *b = NULL, *kt = NULL;
	size_t al = 0, bl = 0, ktl = 0;
	if (get_attr(conn, session, h, CKA_PUBLIC_KEY_INFO, &a, &al) == 0) {
		der->data = gnutls_malloc(al);
		if (der->data == NULL) {
			free(a);
			return 1;
		}
		memcpy(der->data, a, al);
		der->size = (unsigned)al;
		free(a);
		return 0;
	}
	if (get_attr(conn, session, h, CKA_KEY_TYPE, &kt, &ktl) != 0 || ktl != 8) {
		free(kt);
		return 1;
	}
	uint64_t type = wire_load_u64(kt);
	free(kt);
	gnutls_pubkey_t pk = NULL;
	int e = gnutls_pubkey_init(&pk);
	if (e == 0 && type == CKK_RSA && get_attr(conn, session, h, CKA_MODULUS, &a, &al) == 0 &&
	    get_attr(conn, session, h, CKA_PUBLIC_EXPONENT, &b, &bl) == 0) {
		gnutls_datum_t m = { a, (unsigned)al }, x = { b, (unsigned)bl };
		e = gnutls_pubkey_import_rsa_raw(pk, &m, &x);
	} else if (e == 0 && (type == CKK_EC || type == CKK_EC_EDWARDS) &&
		   get_attr(conn, session, h, CKA_EC_PARAMS, &a, &al) == 0 && get_attr(conn, session, h, CKA_EC_POINT, &b, &bl) == 0) {
		gnutls_datum_t par = { a, (unsigned)al }, pt = { b, (unsigned)bl };
		if (type == CKK_EC) {
			e = gnutls_pubkey_import_ecc_x962(pk, &par, &pt);
		} else {
			/* Ed25519 (1.3.101.112) or Ed448 (.113); the point raw or in
			 * an OCTET STRING. */
			static const uint8_t ed25519[] = { 6, 3, 0x2b, 0x65, 0x70 }, ed448[] = { 6, 3, 0x2b, 0x65, 0x71 };
			gnutls_ecc_curve_t curve = al == 5 && !memcmp(a, ed25519, 5) ? GNUTLS_ECC_CURVE_ED25519
						   : al == 5 && !memcmp(a, ed448, 5)   ? GNUTLS_ECC_CURVE_ED448
										       : GNUTLS_ECC_CURVE_INVALID;
			gnutls_datum_t x = pt;
			if (bl > 2 && b[0] == 0x04 && b[1] == bl - 2)
				x = (gnutls_datum_t){ b + 2, (unsigned)(bl - 2) };
			e = curve == GNUTLS_ECC_CURVE_INVALID ? GNUTLS_E_ECC_UNSUPPORTED_CURVE
							      : gnutls_pubkey_import_ecc_raw(pk, curve, &x, NULL);
		}
	} else if (e == 0) {
		e = GNUTLS_E_UNIMPLEMENTED_FEATURE;
	}
	free(a);
	free(b);
	if (e == 0)
		e = gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, der);
	gnutls_pubkey_deinit(pk);
	return e == 0 ? 0 : 1;
}

static int
key_pubkey(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "label", required_argument, NULL, 'l' },
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *token = NULL, *label = NULL, *out = "-";
	int c;
	while ((c = getopt_long(argc, argv, "t:l:o:", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 'l': label = optarg; break;
		case 'o': out = optarg; break;
		default: return cli_usage("key pubkey: bad option (see keymgr key pubkey --help)");
		}
	}
	if (optind < argc && label == NULL)
		label = argv[optind++];
	if (optind != argc || token == NULL || label == NULL)
		return cli_usage("key pubkey: --token and a key label are required");
	struct cy_conn *conn = cli_connect();
	uint32_t session;
	int status = 1;
	uint32_t *h = NULL, n = 0;
	if (conn == NULL || cli_open(conn, token, 0, false, NULL, &session) != 0)
		goto out;
	struct cli_tmpl t;
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_CLASS, CKO_PUBLIC_KEY);
	tmpl_bytes(&t, CKA_LABEL, label, strlen(label));
	CK_RV rv = cli_find_all(conn, session, &t, &h, &n);
	tmpl_free(&t);
	if (rv != CKR_OK) {
		if (rv != (CK_RV)-1)
			cli_fail("key pubkey: %s", ckr_name(rv));
		goto out;
	}
	/* The active version's: of several, the one whose key is newest
	 * (the highest CKA_COYEU_KEY_VERSION). */
	gnutls_datum_t best = { NULL, 0 };
	uint64_t best_v = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *ver = NULL;
		size_t vl = 0;
		uint64_t v = get_attr(conn, session, h[i], CKA_COYEU_KEY_VERSION, &ver, &vl) == 0 && vl == 8 ?
				     wire_load_u64(ver) : 1;
		free(ver);
		gnutls_datum_t spki = { NULL, 0 };
		if ((best.data != NULL && v <= best_v) || spki_of(conn, session, h[i], &spki) != 0)
			continue;
		gnutls_free(best.data);
		best = spki;
		best_v = v;
	}
	if (best.data == NULL)
		cli_fail("key pubkey: no public key labelled '%s' on token '%s' (or of a type keymgr cannot write)", label,
			 token);
	else
		status = cli_write_pem(out, "PUBLIC KEY", best.data, best.size);
	gnutls_free(best.data);
out:
	free(h);
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_key_pubkey = {
	"key", "pubkey", "--token LABEL (KEY | --label KEY) [--out FILE]",
	"Writes the public key of a key's newest version (SubjectPublicKeyInfo, PEM) to\n"
	"FILE (default stdout), as openssl pkey -pubin reads it. No PIN.",
	key_pubkey,
};
