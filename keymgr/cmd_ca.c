/* cmd_ca.c - CA mode: keymgr cert issue, keymgr crl generate. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Parses --token/--pin/--ca/--days/--out; the rest stays in argv. */
static int
ca_options(int argc, char **argv, const char *what, const char **token, const char **pin, const char **ca,
	   unsigned long *days, const char **out)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "pin", required_argument, NULL, 'p' },
		{ "ca", required_argument, NULL, 'c' },
		{ "days", required_argument, NULL, 'd' },
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "t:p:c:d:o:", longs, NULL)) != -1) {
		switch (c) {
		case 't': *token = optarg; break;
		case 'p': *pin = cli_pin_arg(optarg, "user PIN"); break;
		case 'c': *ca = optarg; break;
		case 'd':
			*days = strtoul(optarg, NULL, 10);
			if (*days == 0 || *days > 36600)
				return cli_fail("%s: --days is 1 to 36600", what);
			break;
		case 'o': *out = optarg; break;
		default: return cli_fail("%s: bad option (see keymgr %s --help)", what, what);
		}
	}
	if (!*token || !*pin || !*ca)
		return cli_fail("%s: --token, --pin and --ca are required", what);
	return 0;
}

static int
cert_issue(int argc, char **argv)
{
	const char *token = NULL, *pin = NULL, *ca = NULL, *out = "-";
	unsigned long days = 365;
	if (ca_options(argc, argv, "cert issue", &token, &pin, &ca, &days, &out) != 0)
		return 1;
	if (optind + 1 != argc)
		return cli_fail("cert issue: one request file (PEM or DER) is required");
	uint8_t *csr = NULL;
	size_t len = 0;
	if (cli_read_der(argv[optind], "CERTIFICATE REQUEST", &csr, &len) != 0)
		return 1;
	struct cy_conn *conn = cli_connect();
	uint32_t session;
	int status = 1;
	if (conn != NULL && cli_open(conn, token, 0, true, pin, &session) == 0) {
		struct wire_buf *b = client_begin(conn, MSG_CERT_ISSUE);
		wire_put_u32(b, session);
		wire_put_bytes(b, ca, strlen(ca));
		wire_put_bytes(b, csr, len);
		wire_put_u32(b, (uint32_t)days);
		CK_RV rv = cli_call(conn);
		if (rv == CKR_OK) {
			const uint8_t *der;
			uint32_t dl;
			wire_get_bytes(&conn->rep, &der, &dl);
			status = cli_write_pem(out, "CERTIFICATE", der, dl);
			if (status == 0 && strcmp(out, "-") != 0)
				printf("issued a certificate for %lu days: %s\n", days, out);
		} else {
			ca_fail("cert issue", ca, rv);
		}
	}
	free(csr);
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_cert_issue = {
	"cert", "issue", "--token LABEL --pin PIN --ca KEY [--days 365] [--out FILE] REQUEST",
	"Signs a PKCS#10 request (PEM or DER) with the token's CA key KEY: a certificate\n"
	"with the request's subject and key, a random serial, CA:FALSE, valid for the\n"
	"given days, written as PEM to FILE (default stdout). Import it with\n"
	"keymgr cert import to activate a rotated key.",
	cert_issue,
};

static int
crl_generate(int argc, char **argv)
{
	const char *token = NULL, *pin = NULL, *ca = NULL, *out = "-";
	unsigned long days = 7;
	if (ca_options(argc, argv, "crl generate", &token, &pin, &ca, &days, &out) != 0)
		return 1;
	if (optind != argc)
		return cli_fail("crl generate: unexpected argument '%s'", argv[optind]);
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
	"issued (from the inventory), with the next CRL number, thisUpdate now and\n"
	"nextUpdate in the given days; PEM to FILE (default stdout). keymgrd also\n"
	"writes a new one to its CRL directory after every revocation.",
	crl_generate,
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
		default: return cli_fail("ca init: bad option (see keymgr ca init --help)");
		}
	}
	if (optind != argc || !token || !pin || !label || !subject)
		return cli_fail("ca init: --token, --pin, --label and --subject are required");
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
