/* cmd_ca.c - CA mode: keymgr cert issue, keymgr crl generate. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "ckr.h"
#include "cli.h"

static int
ca_fail(const char *what, const char *ca, CK_RV rv)
{
	if (rv == (CK_RV)-1)
		return 1;
	if (rv == CKR_KEY_HANDLE_INVALID)
		return cli_fail("%s: no key labelled '%s'", what, ca);
	if (rv == CKR_KEY_FUNCTION_NOT_PERMITTED)
		return cli_fail("%s: '%s' is no CA here (an active key version with a CA:TRUE certificate)", what, ca);
	if (rv == CKR_SIGNATURE_INVALID)
		return cli_fail("%s: the request's signature does not verify", what);
	if (rv == CKR_ARGUMENTS_BAD)
		return cli_fail("%s: not a PKCS#10 request, or days out of range", what);
	return cli_fail("%s: %s", what, ckr_name(rv));
}

/* Parses --token/--pin/--ca/--days/--out (and --profile and --email when
 * profile is not NULL); the rest stays in argv. */
static int
ca_options(int argc, char **argv, const char *what, const char **token, const char **pin, const char **ca,
	   unsigned long *days, const char **out, const char **profile, const char **email)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "pin", required_argument, NULL, 'p' },
		{ "ca", required_argument, NULL, 'c' },
		{ "days", required_argument, NULL, 'd' },
		{ "out", required_argument, NULL, 'o' },
		{ "profile", required_argument, NULL, 'P' },
		{ "email", required_argument, NULL, 'E' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "t:p:c:d:o:", longs, NULL)) != -1) {
		switch (c) {
		case 'P':
		case 'E':
			if (profile == NULL)
				return cli_usage("%s: bad option --%s", what, c == 'P' ? "profile" : "email");
			*(c == 'P' ? profile : email) = optarg;
			break;
		case 't': *token = optarg; break;
		case 'p': *pin = cli_pin_arg(optarg, "user PIN"); break;
		case 'c': *ca = optarg; break;
		case 'd':
			*days = strtoul(optarg, NULL, 10);
			if (*days == 0 || *days > 36600)
				return cli_fail("%s: --days is 1 to 36600", what);
			break;
		case 'o': *out = optarg; break;
		default: return cli_usage("%s: bad option (see keymgr %s --help)", what, what);
		}
	}
	if (!*token || !*pin || !*ca)
		return cli_usage("%s: --token, --pin and --ca are required", what);
	return 0;
}

/* The serial of DER certificate der in hex, into out ("?" when unreadable). */
static void
serial_hex(const uint8_t *der, size_t len, char *out, size_t cap)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t d = { (uint8_t *)der, (unsigned)len };
	uint8_t serial[64];
	size_t sl = sizeof(serial);
	snprintf(out, cap, "?");
	if (gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER) >= 0 &&
	    gnutls_x509_crt_get_serial(crt, serial, &sl) >= 0 && 2 * sl < cap)
		for (size_t i = 0; i < sl; i++)
			snprintf(out + 2 * i, cap - 2 * i, "%02X", serial[i]);
	gnutls_x509_crt_deinit(crt);
}

/* Has the token's CA key ca sign request csr for days days with profile;
 * the certificate goes to out (PEM). 0 or 1 (said why). */
static int
issue(const char *what, const char *token, const char *pin, const char *ca, const uint8_t *csr, size_t len,
      unsigned long days, uint32_t profile, const char *email, const char *out)
{
	struct cy_conn *conn = cli_connect();
	uint32_t session;
	int status = 1;
	if (conn != NULL && cli_open(conn, token, 0, true, pin, &session) == 0) {
		struct wire_buf *b = client_begin(conn, MSG_CERT_ISSUE);
		wire_put_u32(b, session);
		wire_put_bytes(b, ca, strlen(ca));
		wire_put_bytes(b, csr, len);
		wire_put_u32(b, (uint32_t)days);
		wire_put_u32(b, profile);
		wire_put_str(b, email);
		CK_RV rv = cli_call(conn);
		if (rv == CKR_OK) {
			const uint8_t *der;
			uint32_t dl;
			wire_get_bytes(&conn->rep, &der, &dl);
			char hex[130];
			serial_hex(der, dl, hex, sizeof(hex));
			status = cli_write_pem(out, "CERTIFICATE", der, dl);
			if (status == 0 && strcmp(out, "-") != 0)
				printf("issued a certificate for %lu days, serial %s: %s\n", days, hex, out);
			else if (status == 0)
				fprintf(stderr, "keymgr: issued a certificate for %lu days, serial %s\n", days, hex);
		} else if (rv == CKR_TEMPLATE_INCOMPLETE) {
			cli_fail("%s: the %s profile needs an e-mail address: give --email ADDR, or put one in the request "
				 "(CKR_TEMPLATE_INCOMPLETE)", what, proto_profile_name(profile));
		} else if (rv == CKR_ARGUMENTS_BAD && email[0] != '\0') {
			cli_fail("%s: '%s' is not an e-mail address keymgrd takes (local@domain, ASCII), or the request "
				 "cannot be read (CKR_ARGUMENTS_BAD)", what, email);
		} else {
			ca_fail(what, ca, rv);
		}
	}
	client_close(conn);
	return status;
}

static int
cert_issue(int argc, char **argv)
{
	const char *token = NULL, *pin = NULL, *ca = NULL, *out = "-", *profile = "signing", *email = "";
	unsigned long days = 365;
	int bad = ca_options(argc, argv, "cert issue", &token, &pin, &ca, &days, &out, &profile, &email);
	if (bad != 0)
		return bad;
	if (optind + 1 != argc)
		return cli_usage("cert issue: one request file (PEM or DER) is required");
	uint32_t p = proto_profile_by_name(profile);
	if (p == PROFILE_COUNT)
		return cli_usage("cert issue: --profile is signing, tls-client or email");
	uint8_t *csr = NULL;
	size_t len = 0;
	if (cli_read_der(argv[optind], "CERTIFICATE REQUEST", &csr, &len) != 0)
		return 1;
	int status = issue("cert issue", token, pin, ca, csr, len, days, p, email, out);
	free(csr);
	return status;
}

const struct cli_cmd cmd_cert_issue = {
	"cert", "issue",
	"--token LABEL --pin PIN --ca KEY [--days 365] [--profile signing|tls-client|email] [--email ADDR] "
	"[--out FILE] REQUEST",
	"Signs a PKCS#10 request (PEM or DER) with the token's CA key KEY: a certificate\n"
	"with the request's subject and key, a random serial, CA:FALSE, valid for the\n"
	"given days, written as PEM to FILE (default stdout). Profile signing (the\n"
	"default: digitalSignature, nonRepudiation) is an official's signing\n"
	"certificate: import it with keymgr cert import to activate a rotated key;\n"
	"tls-client (digitalSignature, clientAuth) is a workstation's certificate\n"
	"for keymgrd's TLS listener (see keymgr workstation enroll); email\n"
	"(digitalSignature, nonRepudiation, keyEncipherment for RSA or keyAgreement\n"
	"for EC, emailProtection) signs and encrypts mail and needs an address.\n"
	"--email ADDR puts a SAN e-mail in (else the request's SAN e-mail or\n"
	"emailAddress, if it has one). With keymgrd's ca_url set, the certificate\n"
	"points to the CA's CRL (CRL distribution point) and certificate (AIA).\n"
	"The serial and subject go to the audit trail.",
	cert_issue,
};

static int
cert_revoke(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "pin", required_argument, NULL, 'p' },
		{ "ca", required_argument, NULL, 'c' },
		{ "serial", required_argument, NULL, 's' },
		{ "subject", required_argument, NULL, 'S' },
		{ "reason", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *what = "cert revoke", *token = NULL, *pin = NULL, *ca = NULL, *serial = NULL, *subject = NULL;
	const char *reason = "unspecified";
	int c;
	while ((c = getopt_long(argc, argv, "t:p:c:s:S:r:", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 'p': pin = cli_pin_arg(optarg, "user PIN"); break;
		case 'c': ca = optarg; break;
		case 's': serial = optarg; break;
		case 'S': subject = optarg; break;
		case 'r': reason = optarg; break;
		default: return cli_usage("%s: bad option (see keymgr %s --help)", what, what);
		}
	}
	if (optind != argc)
		return cli_usage("%s: unexpected argument '%s'", what, argv[optind]);
	if (!token || !pin || !ca || (serial == NULL) == (subject == NULL))
		return cli_usage("%s: --token, --pin, --ca and one of --serial and --subject are required", what);
	if (subject != NULL && cli_dn_check(what, subject) != 0)
		return 1;
	/* The serial as keymgr, certtool or openssl print it: hex, with or
	 * without colons. */
	char hex[130];
	uint8_t raw[64];
	size_t n = 0, k = 0;
	for (const char *p = serial ? serial : ""; *p; p++) {
		if (*p == ':' || *p == ' ')
			continue;
		/* Never cut: a serial cut short would name another one. */
		if (k + 2 >= sizeof(hex))
			return cli_fail("%s: --serial is longer than a certificate serial (at most 20 bytes)", what);
		hex[k++] = *p;
	}
	hex[k] = '\0';
	if (serial != NULL) {
		char even[131];
		snprintf(even, sizeof(even), "%s%s", k % 2 ? "0" : "", hex);
		if (k == 0 || cli_parse_hex(even, raw, sizeof(raw), &n) != 0)
			return cli_fail("%s: --serial must be hex (as keymgr cert issue printed it)", what);
	}
	uint32_t code = 0;
	if (cli_reason_code(what, reason, &code) != 0)
		return 1;
	struct cy_conn *conn = cli_connect();
	uint32_t session;
	int status = 1;
	if (conn != NULL && cli_open(conn, token, 0, true, pin, &session) == 0) {
		struct wire_buf *b = client_begin(conn, MSG_CERT_REVOKE);
		wire_put_u32(b, session);
		wire_put_bytes(b, ca, strlen(ca));
		wire_put_bytes(b, raw, n);
		wire_put_str(b, subject ? subject : "");
		wire_put_u32(b, code);
		CK_RV rv = cli_call(conn);
		uint32_t count = 0, crl = 0;
		if (rv == CKR_OK) {
			wire_get_u32(&conn->rep, &count);
			wire_get_u32(&conn->rep, &crl);
			if (count == 0) {
				cli_fail("%s: '%s' issued no valid certificate %s %s (already revoked, or not one it "
					 "issued: keymgr key revoke revokes a token's own)",
					 what, ca, serial ? "with serial" : "to", serial ? serial : subject);
			} else {
				printf("revoked %u certificate(s) issued by '%s', reason %s; %s\n", count, ca, reason,
				       crl ? "its CRL is written again (keymgrd's tls_crl refuses them at the next handshake)"
					   : "sign and publish its CRL with keymgr crl generate");
				status = 0;
			}
		} else if (rv == CKR_ARGUMENTS_BAD && subject != NULL) {
			cli_fail("%s: cannot read the subject '%s' (e.g. \"CN=...,O=...\"; a comma in a value is \\,)",
				 what, subject);
		} else {
			ca_fail(what, ca, rv);
		}
	}
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_cert_revoke = {
	"cert", "revoke", "--token LABEL --pin PIN --ca KEY (--serial HEX | --subject DN) [--reason R]",
	"Revokes a certificate the token's CA key KEY issued and that is not on the\n"
	"token (a workstation's TLS client certificate, one given out with keymgr cert\n"
	"issue): by its serial (as keymgr cert issue printed it), or every valid one\n"
	"issued to the subject DN. keymgrd then signs the CA's next CRL and writes it\n"
	"to its CRL directory, where a tls_crl naming it refuses the certificate at\n"
	"the next TLS handshake. R is an RFC 5280 reason (default unspecified).\n"
	"Certificates on a token are revoked with their key: keymgr key revoke.",
	cert_revoke,
};

static int
crl_generate(int argc, char **argv)
{
	const char *token = NULL, *pin = NULL, *ca = NULL, *out = "-";
	unsigned long days = 7;
	int bad = ca_options(argc, argv, "crl generate", &token, &pin, &ca, &days, &out, NULL, NULL);
	if (bad != 0)
		return bad;
	if (optind != argc)
		return cli_usage("crl generate: unexpected argument '%s'", argv[optind]);
	struct cy_conn *conn = cli_connect();
	uint32_t session;
	int status = 1;
	if (conn != NULL && cli_open(conn, token, 0, true, pin, &session) == 0) {
		struct wire_buf *b = client_begin(conn, MSG_CRL_GENERATE);
		wire_put_u32(b, session);
		wire_put_bytes(b, ca, strlen(ca));
		wire_put_u32(b, (uint32_t)days);
		CK_RV rv = cli_call(conn);
		if (rv == CKR_OK) {
			const uint8_t *der;
			uint32_t dl;
			wire_get_bytes(&conn->rep, &der, &dl);
			status = cli_write_pem(out, "X509 CRL", der, dl);
			if (status == 0 && strcmp(out, "-") != 0)
				printf("CRL signed by '%s', next update in %lu days: %s\n", ca, days, out);
		} else {
			ca_fail("crl generate", ca, rv);
		}
	}
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_crl_generate = {
	"crl", "generate", "--token LABEL --pin PIN --ca KEY [--days 7] [--out FILE]",
	"Signs a CRL with the token's CA key KEY listing every revoked certificate it\n"
	"issued (on the token, from the inventory, or to others, see keymgr cert\n"
	"revoke), with the next CRL number, thisUpdate now and\n"
	"nextUpdate in the given days; PEM to FILE (default stdout). keymgrd also\n"
	"writes a new one to its CRL directory after every revocation.",
	crl_generate,
};

static int
crl_export(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "ca", required_argument, NULL, 'c' },
		{ "der", no_argument, NULL, 'd' },
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *token = NULL, *ca = NULL, *out = "-";
	bool der = false;
	int c;
	while ((c = getopt_long(argc, argv, "t:c:do:", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 'c': ca = optarg; break;
		case 'd': der = true; break;
		case 'o': out = optarg; break;
		default: return cli_usage("crl export: bad option (see keymgr crl export --help)");
		}
	}
	if (optind != argc)
		return cli_usage("crl export: unexpected argument '%s'", argv[optind]);
	if (!token || !ca)
		return cli_usage("crl export: --token and --ca are required");
	struct cy_conn *conn = cli_connect();
	uint32_t session;
	int status = 1;
	if (conn != NULL && cli_open(conn, token, 0, false, NULL, &session) == 0) {
		struct wire_buf *b = client_begin(conn, MSG_CRL_CURRENT);
		wire_put_u32(b, session);
		wire_put_bytes(b, ca, strlen(ca));
		CK_RV rv = cli_call(conn);
		uint64_t number = 0;
		const uint8_t *crl = NULL;
		uint32_t n = 0;
		if (rv == CKR_OK && (wire_get_u64(&conn->rep, &number) != 0 || wire_get_bytes(&conn->rep, &crl, &n) != 0))
			rv = CKR_DEVICE_ERROR;
		if (rv == CKR_OK && n == 0) {
			cli_fail("crl export: '%s' has signed no CRL yet (keymgr crl generate signs one)", ca);
		} else if (rv == CKR_OK) {
			status = cli_write_pem(out, der ? NULL : "X509 CRL", crl, n);
			if (status == 0 && strcmp(out, "-") != 0)
				printf("CRL %llu of '%s': %s\n", (unsigned long long)number, ca, out);
		} else {
			ca_fail("crl export", ca, rv);
		}
	}
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_crl_export = {
	"crl", "export", "--token LABEL --ca KEY [--der] [--out FILE]",
	"Writes the CA key KEY's current CRL, the last one signed (by keymgr crl\n"
	"generate, a revocation, or ca init), PEM (or DER) to FILE (default stdout).\n"
	"Nothing is signed and no PIN is needed: a CRL is public. The CA's\n"
	"certificate comes out with keymgr cert export --token LABEL KEY.",
	crl_export,
};

static int
ca_init(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "pin", required_argument, NULL, 'p' },
		{ "label", required_argument, NULL, 'l' },
		{ "subject", required_argument, NULL, 's' },
		{ "days", required_argument, NULL, 'd' },
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *token = NULL, *pin = NULL, *label = NULL, *subject = NULL, *out = NULL;
	unsigned long days = 3650;
	int c;
	while ((c = getopt_long(argc, argv, "t:p:l:s:d:o:", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 'p': pin = cli_pin_arg(optarg, "user PIN"); break;
		case 'l': label = optarg; break;
		case 's': subject = optarg; break;
		case 'd':
			days = strtoul(optarg, NULL, 10);
			if (days == 0 || days > 36600)
				return cli_fail("ca init: --days is 1 to 36600");
			break;
		case 'o': out = optarg; break;
		default: return cli_usage("ca init: bad option (see keymgr ca init --help)");
		}
	}
	if (optind != argc || !token || !pin || !label || !subject)
		return cli_usage("ca init: --token, --pin, --label and --subject are required");
	if (cli_dn_check("ca init", subject) != 0)
		return 1;
	struct cy_conn *conn = cli_connect();
	uint32_t session;
	int status = 1;
	if (conn != NULL && cli_open(conn, token, 0, true, pin, &session) == 0) {
		struct wire_buf *b = client_begin(conn, MSG_CA_INIT);
		wire_put_u32(b, session);
		wire_put_bytes(b, label, strlen(label));
		wire_put_str(b, subject);
		wire_put_u32(b, (uint32_t)days);
		CK_RV rv = cli_call(conn);
		if (rv == CKR_OK) {
			const uint8_t *der;
			uint32_t dl;
			wire_get_bytes(&conn->rep, &der, &dl);
			status = out ? cli_write_pem(out, "CERTIFICATE", der, dl) : 0;
			if (status == 0)
				printf("'%s' is a CA: self-signed certificate for '%s', %lu days, on the token%s%s\n", label,
				       subject, days, out ? " and in " : "", out ? out : "");
		} else if (rv == CKR_ARGUMENTS_BAD) {
			cli_fail("ca init: cannot read the subject '%s' (e.g. \"CN=...,O=...,C=VN\")", subject);
		} else {
			ca_fail("ca init", label, rv);
		}
	}
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_ca_init = {
	"ca", "init", "--token LABEL --pin PIN --label KEY --subject DN [--days 3650] [--out FILE]",
	"Makes the key KEY (generated before with keymgr key generate) a CA: keymgrd\n"
	"signs a self-signed CA certificate (CA:TRUE, keyCertSign, cRLSign) for its\n"
	"active version and puts it on the token. From then on keymgr cert issue and\n"
	"keymgr crl generate sign with it.",
	ca_init,
};

/* The subject DN (RFC 4514) of the certificate in path into dn. 0 or prints, 1. */
static int
cert_subject(const char *path, char *dn, size_t len)
{
	uint8_t *der = NULL;
	size_t n = 0;
	if (cli_read_der(path, "CERTIFICATE", &der, &n) != 0)
		return 1;
	gnutls_x509_crt_t crt;
	gnutls_datum_t d = { der, (unsigned)n }, out = { NULL, 0 };
	int r = 1;
	if (gnutls_x509_crt_init(&crt) >= 0) {
		if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER) >= 0 &&
		    gnutls_x509_crt_get_dn3(crt, &out, 0) >= 0 && out.size < len) {
			memcpy(dn, out.data, out.size);
			dn[out.size] = '\0';
			r = 0;
		}
		gnutls_free(out.data);
		gnutls_x509_crt_deinit(crt);
	}
	free(der);
	return r != 0 ? cli_fail("%s: not a certificate whose subject can be read", path) : 0;
}

static int
workstation_enroll(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "csr", required_argument, NULL, 'r' },
		{ "cert", required_argument, NULL, 'C' },
		{ "token", required_argument, NULL, 't' },
		{ "pin", required_argument, NULL, 'p' },
		{ "ca", required_argument, NULL, 'c' },
		{ "days", required_argument, NULL, 'd' },
		{ "out", required_argument, NULL, 'o' },
		{ "holder", required_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	const char *csr = NULL, *cert = NULL, *token = NULL, *pin = NULL, *ca = NULL, *out = NULL, *holder = NULL;
	const char *what = "workstation enroll";
	unsigned long days = 730;
	int c;
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (c) {
		case 'r': csr = optarg; break;
		case 'C': cert = optarg; break;
		case 't': token = optarg; break;
		case 'p': pin = cli_pin_arg(optarg, "user PIN"); break;
		case 'c': ca = optarg; break;
		case 'd':
			days = strtoul(optarg, NULL, 10);
			if (days == 0 || days > 36600)
				return cli_fail("%s: --days is 1 to 36600", what);
			break;
		case 'o': out = optarg; break;
		case 'H': holder = optarg; break;
		default: return cli_usage("%s: bad option (see keymgr %s --help)", what, what);
		}
	}
	if (optind != argc || (csr == NULL) == (cert == NULL))
		return cli_usage("%s: --csr REQUEST (issued here) or --cert CERT (from another CA) is required", what);
	if (csr != NULL && (!token || !pin || !ca || !out || strcmp(out, "-") == 0))
		return cli_fail("%s: --csr needs --token, --pin and --ca (the CA) and --out FILE", what);
	if (csr != NULL) {
		uint8_t *req = NULL;
		size_t len = 0;
		if (cli_read_der(csr, "CERTIFICATE REQUEST", &req, &len) != 0)
			return 1;
		int st = issue(what, token, pin, ca, req, len, days, PROFILE_TLS_CLIENT, "", out);
		free(req);
		if (st != 0)
			return st;
		cert = out;
	}
	char dn[256];
	if (cert_subject(cert, dn, sizeof(dn)) != 0)
		return 1;
	printf("workstation certificate subject: %s\n", dn);
	if (holder != NULL) {
		struct cy_conn *conn = cli_connect();
		if (conn == NULL)
			return 1;
		CK_RV rv = cli_access_set(conn, true, 2, 0, dn, holder);
		client_close(conn);
		if (rv != CKR_OK)
			return rv == (CK_RV)-1 ? 1
			       : cli_fail("%s: access grant: %s", what,
					  rv == CKR_ARGUMENTS_BAD ? "no such holder" : ckr_name(rv));
		printf("certificate %s may use holder %s\n", dn, holder);
	}
	printf("on the workstation, coyeu.conf [client]: server = tls://HOST:PORT, tls_ca = the CA of keymgrd's\n"
	       "certificate, tls_cert = %s, tls_key = the key the request was made with\n", cert);
	return 0;
}

const struct cli_cmd cmd_workstation_enroll = {
	"workstation", "enroll",
	"(--csr REQUEST --token LABEL --pin PIN --ca KEY [--days 730] --out CERT | --cert CERT) [--holder ID]",
	"Enrolls a workstation for keymgrd's TLS listener (docs/remote.md). With --csr,\n"
	"the token's CA key KEY signs the workstation's request (made on the\n"
	"workstation, whose key never leaves it) as a TLS client certificate\n"
	"(digitalSignature, clientAuth) written to CERT; with --cert, CERT is one\n"
	"another CA issued (that CA must be keymgrd's tls_client_ca). With\n"
	"--holder, the certificate's subject may then use the holder's token (as\n"
	"keymgr access grant --cert). Administrators only; audited.",
	workstation_enroll,
};
