/*
 * gen_certs - makes a test certificate inventory with GnuTLS: a provincial
 * CA and COUNT certificates spread over the agencies of AGENCIES (one per
 * line, # comments), with expiry dates from 30 days ago to two years ahead.
 * Writes OUTDIR/ca.pem, one PEM bundle per agency (OUTDIR/agency-N.pem),
 * and OUTDIR/expected.tsv: "agency <TAB> valid <TAB> expired <TAB> expiring
 * within 30 days" per agency, for the test to compare with keymgr.
 *
 *   gen_certs OUTDIR COUNT AGENCIES
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#define MAX_AGENCIES 128

static void
die(const char *what, int rc)
{
	fprintf(stderr, "gen_certs: %s: %s\n", what, rc < 0 ? gnutls_strerror(rc) : "failed");
	exit(1);
}

static void
check(int rc, const char *what)
{
	if (rc < 0)
		die(what, rc);
}

/* RFC 4514 escaping of an attribute value for a DN string. */
static void
escape_dn(const char *in, char *out, size_t len)
{
	size_t o = 0;
	for (; *in && o + 3 < len; in++) {
		if (strchr(",+\"\\<>;=#", *in))
			out[o++] = '\\';
		out[o++] = *in;
	}
	out[o] = '\0';
}

static void
write_pem(FILE *f, gnutls_x509_crt_t crt)
{
	gnutls_datum_t out;
	check(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out), "export");
	fwrite(out.data, 1, out.size, f);
	gnutls_free(out.data);
}

int
main(int argc, char **argv)
{
	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: gen_certs OUTDIR COUNT AGENCIES [BATCH]\n");
		return 2;
	}
	/* Batches (0 to 255) have their own serials, so they are no duplicates. */
	unsigned batch = argc == 5 ? (unsigned)strtoul(argv[4], NULL, 10) & 0xff : 0;
	const char *dir = argv[1];
	long count = strtol(argv[2], NULL, 10);
	char *agencies[MAX_AGENCIES];
	int na = 0;
	char line[512], path[4096];
	FILE *in = fopen(argv[3], "r");
	if (in == NULL || count <= 0)
		die("arguments", 0);
	while (na < MAX_AGENCIES && fgets(line, sizeof(line), in)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] && line[0] != '#')
			agencies[na++] = strdup(line);
	}
	fclose(in);
	if (na == 0)
		die("no agencies", 0);
	check(gnutls_global_init(), "init");

	gnutls_x509_privkey_t ca_key, holder_key;
	gnutls_x509_crt_t ca;
	time_t now = time(NULL);
	check(gnutls_x509_privkey_init(&ca_key), "key");
	check(gnutls_x509_privkey_generate(ca_key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0), "ca key");
	check(gnutls_x509_privkey_init(&holder_key), "key");
	check(gnutls_x509_privkey_generate(holder_key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0), "holder key");
	check(gnutls_x509_crt_init(&ca), "ca");
	check(gnutls_x509_crt_set_dn(ca, "CN=CA Tỉnh Điện Biên,O=Ban Cơ yếu,ST=Điện Biên,C=VN", NULL), "ca dn");
	check(gnutls_x509_crt_set_key(ca, ca_key), "ca set key");
	check(gnutls_x509_crt_set_serial(ca, "\x01", 1), "ca serial");
	check(gnutls_x509_crt_set_activation_time(ca, now - 86400 * 400), "ca time");
	check(gnutls_x509_crt_set_expiration_time(ca, now + 86400 * 3650), "ca time");
	check(gnutls_x509_crt_set_basic_constraints(ca, 1, -1), "ca bc");
	check(gnutls_x509_crt_set_key_usage(ca, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN), "ca ku");
	check(gnutls_x509_crt_set_version(ca, 3), "ca version");
	check(gnutls_x509_crt_sign2(ca, ca, ca_key, GNUTLS_DIG_SHA256, 0), "ca sign");
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		die(path, 0);
	write_pem(f, ca);
	fclose(f);

	FILE *out[MAX_AGENCIES];
	long valid[MAX_AGENCIES] = { 0 }, expired[MAX_AGENCIES] = { 0 }, soon[MAX_AGENCIES] = { 0 };
	for (int a = 0; a < na; a++) {
		snprintf(path, sizeof(path), "%s/agency-%02d.pem", dir, a);
		if ((out[a] = fopen(path, "w")) == NULL)
			die(path, 0);
	}
	static const char *const given[] = { "Nguyễn Văn", "Trần Thị", "Lò Văn", "Quàng Thị", "Lường Văn",
					     "Cà Thị", "Phạm Văn", "Lê Thị" };
	for (long i = 0; i < count; i++) {
		int a = (int)(i % na);
		/* Whole days from -30 to 700, at noon, so no certificate sits
		 * on a boundary of the checks. */
		long d = (i * 7919) % 731 - 30;
		time_t not_after = now + d * 86400 + 43200;
		gnutls_x509_crt_t crt;
		char dn[1024], cn[128];
		unsigned char serial[8];
		snprintf(cn, sizeof(cn), "%s %ld", given[i % 8], i + 1);
		char org[512];
		escape_dn(agencies[a], org, sizeof(org));
		snprintf(dn, sizeof(dn), "CN=%s,OU=Văn thư,O=%s,ST=Điện Biên,C=VN", cn, org);
		for (int b = 0; b < 8; b++)
			serial[b] = (unsigned char)((i + 1000) >> (8 * (7 - b)));
		serial[0] = 0x11;
		serial[1] = (unsigned char)batch;
		check(gnutls_x509_crt_init(&crt), "crt");
		check(gnutls_x509_crt_set_dn(crt, dn, NULL), "dn");
		check(gnutls_x509_crt_set_key(crt, holder_key), "set key");
		check(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)), "serial");
		check(gnutls_x509_crt_set_activation_time(crt, not_after - 365 * 86400), "time");
		check(gnutls_x509_crt_set_expiration_time(crt, not_after), "time");
		check(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_NON_REPUDIATION), "ku");
		check(gnutls_x509_crt_set_version(crt, 3), "version");
		check(gnutls_x509_crt_sign2(crt, ca, ca_key, GNUTLS_DIG_SHA256, 0), "sign");
		write_pem(out[a], crt);
		gnutls_x509_crt_deinit(crt);
		if (d < 0)
			expired[a]++;
		else {
			valid[a]++;
			soon[a] += d < 30;
		}
	}
	snprintf(path, sizeof(path), "%s/expected.tsv", dir);
	if ((f = fopen(path, "w")) == NULL)
		die(path, 0);
	for (int a = 0; a < na; a++) {
		fclose(out[a]);
		fprintf(f, "%s\t%ld\t%ld\t%ld\n", agencies[a], valid[a], expired[a], soon[a]);
		free(agencies[a]);
	}
	fclose(f);
	gnutls_x509_crt_deinit(ca);
	gnutls_x509_privkey_deinit(ca_key);
	gnutls_x509_privkey_deinit(holder_key);
	gnutls_global_deinit();
	return 0;
}
