/* cmd_cert.c - keymgr cert import, keymgr inventory list/report. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "ckr.h"
#include "cli.h"
#include "duration.h"
#include "proto.h"
#include "report.h"

/* The certificates read so far: their DER in one wire buffer, and for
 * each the file it came from (for messages). */
struct batch {
	struct wire_buf der;
	uint32_t count;
	char **origin;
	size_t cap;
};

static int
batch_add(struct batch *b, const uint8_t *der, size_t len, const char *file)
{
	if (b->count == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 1024;
		char **no = realloc(b->origin, cap * sizeof(*no));
		if (no == NULL)
			return -1;
		b->origin = no;
		b->cap = cap;
	}
	if ((b->origin[b->count] = strdup(file)) == NULL || wire_put_bytes(&b->der, der, len) != 0)
		return -1;
	b->count++;
	return 0;
}

/* Reads the certificates of one file (DER, or PEM holding one or more). */
static int
read_file(struct batch *b, const char *path)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	if (cli_read_file(path, &buf, &len) != 0)
		return 1;
	int status = 0;
	if (len > 0 && buf[0] == 0x30) {
		/* DER: read here too, so a bad file is named before anything is sent. */
		gnutls_x509_crt_t crt = NULL;
		gnutls_datum_t in = { buf, (unsigned)len };
		int ok = gnutls_x509_crt_init(&crt) == 0 && gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_DER) == 0;
		if (crt != NULL)
			gnutls_x509_crt_deinit(crt);
		if (!ok)
			status = cli_fail("cert import: %s: not an X.509 certificate (DER)", path);
		else if (batch_add(b, buf, len, path) != 0)
			status = cli_fail("cert import: out of memory");
	} else {
		gnutls_x509_crt_t *crts = NULL;
		unsigned int n = 0;
		gnutls_datum_t in = { buf, (unsigned)len };
		if (gnutls_x509_crt_list_import2(&crts, &n, &in, GNUTLS_X509_FMT_PEM, 0) < 0 || n == 0) {
			status = cli_fail("cert import: %s: no certificate in it", path);
		} else {
			for (unsigned i = 0; i < n; i++) {
				gnutls_datum_t der = { NULL, 0 };
				if (status == 0 && (gnutls_x509_crt_export2(crts[i], GNUTLS_X509_FMT_DER, &der) < 0 ||
						    batch_add(b, der.data, der.size, path) != 0))
					status = cli_fail("cert import: %s: cannot read certificate %u", path, i + 1);
				gnutls_free(der.data);
				gnutls_x509_crt_deinit(crts[i]);
			}
			gnutls_free(crts);
		}
	}
	free(buf);
	return status;
}

/* Reads path (a file, or a directory's files, recursively); every file it
 * cannot read is named on stderr and counted in *bad. 0, or 1 when
 * something failed that no file is to blame for (memory). */
static int
read_path(struct batch *b, const char *path, struct cli_progress *pr, unsigned *bad)
{
	struct stat sb;
	if (stat(path, &sb) != 0) {
		cli_fail("cert import: %s: %s", path, strerror(errno));
		return ++*bad, 0;
	}
	if (!S_ISDIR(sb.st_mode))
		return read_file(b, path) != 0 ? (++*bad, 0) : 0;
	struct dirent **names;
	int n = scandir(path, &names, NULL, alphasort);
	if (n < 0) {
		cli_fail("cert import: %s: %s", path, strerror(errno));
		return ++*bad, 0;
	}
	for (int i = 0; i < n; i++) {
		char full[4096];
		if (names[i]->d_name[0] != '.') {
			snprintf(full, sizeof(full), "%s/%s", path, names[i]->d_name);
			uint32_t before = b->count;
			read_path(b, full, pr, bad);
			cli_progress_step(pr, b->count - before);
		}
		free(names[i]);
	}
	free(names);
	return 0;
}

static int
cert_import(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "pin", required_argument, NULL, 'p' },
		{ "skip-invalid", no_argument, NULL, 's' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *token = NULL, *pin = NULL;
	bool skip = false, dry = false;
	int c;
	while ((c = getopt_long(argc, argv, "t:p:", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 'p': pin = cli_pin_arg(optarg, "user PIN"); break;
		case 's': skip = true; break;
		case 'n': dry = true; break;
		default: return cli_usage("cert import: bad option (see keymgr cert import --help)");
		}
	}
	if (!token || optind == argc)
		return cli_usage("cert import: --token and at least one FILE or DIR are required");
	struct cli_progress pr;
	cli_progress_start(&pr, "cert import: reading", 0, false);
	struct batch b;
	memset(&b, 0, sizeof(b));
	wire_init(&b.der, WIRE_MAX_FRAME - 64);
	wire_put_u32(&b.der, 0);
	int status = 0;
	unsigned bad_files = 0;
	for (int i = optind; i < argc && status == 0; i++)
		status = read_path(&b, argv[i], &pr, &bad_files);
	cli_progress_end(&pr);
	if (status == 0 && wire_error(&b.der) != 0)
		status = cli_fail("cert import: more than one import can carry (16 MiB); import in parts");
	if (status == 0 && bad_files > 0 && !skip)
		status = cli_fail("cert import: %u file(s) could not be read (named above); nothing was imported "
				  "(--skip-invalid imports the others)", bad_files);
	else if (status == 0 && bad_files > 0)
		fprintf(stderr, "keymgr: cert import: skipping the %u file(s) named above\n", bad_files);
	if (status == 0 && b.count == 0)
		status = cli_fail("cert import: no certificate to import");
	if (status == 0 && dry) {
		printf("dry run: %u certificate(s) read, %u file(s) skipped; nothing sent to keymgrd\n", b.count,
		       bad_files);
		for (uint32_t i = 0; i < b.count; i++)
			free(b.origin[i]);
		free(b.origin);
		wire_free(&b.der);
		return 0;
	}
	struct cy_conn *conn = status == 0 ? cli_connect() : NULL;
	uint32_t session;
	if (status == 0 && conn == NULL)
		status = 1;
	if (status == 0 && cli_open(conn, token, 0, true, pin, &session) != 0)
		status = 1;
	if (status == 0) {
		wire_poke_u32(&b.der, 0, b.count);
		struct wire_buf *req = client_begin(conn, MSG_CERT_IMPORT);
		wire_put_u32(req, session);
		wire_put_raw(req, b.der.data, b.der.size); /* u32 count, then each certificate */
		/* One transaction in keymgrd: no steps to show, only that it runs. */
		if (pr.done > 0 && isatty(STDERR_FILENO))
			fprintf(stderr, "cert import: keymgrd imports %u certificates in one transaction...\n", b.count);
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		CK_RV rv = cli_call(conn);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (rv == CKR_OK) {
			uint32_t imported = 0, dups = 0, nokey = 0, bad = 0, activated = 0;
			wire_get_u32(&conn->rep, &imported);
			wire_get_u32(&conn->rep, &dups);
			wire_get_u32(&conn->rep, &nokey);
			wire_get_u32(&conn->rep, &bad);
			wire_get_u32(&conn->rep, &activated);
			if (bad) {
				status = cli_fail("cert import: certificate %u (from %s) is not a valid X.509 certificate;"
						  " nothing was imported", bad, b.origin[bad - 1]);
			} else {
				printf("imported %u certificate(s) in %.2f s; %u already on the token; %u without their key"
				       " on the token\n", imported,
				       (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, dups, nokey);
				if (activated)
					printf("activated %u new key version(s); the versions they replace are retired\n",
					       activated);
			}
		} else {
			if (rv != (CK_RV)-1)
				cli_fail("cert import: %s; nothing was imported", ckr_name(rv));
			status = 1;
		}
	}
	for (uint32_t i = 0; i < b.count; i++)
		free(b.origin[i]);
	free(b.origin);
	wire_free(&b.der);
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_cert_import = {
	"cert", "import", "--token LABEL [--pin PIN] [--skip-invalid] [--dry-run] FILE|DIR...",
	"Imports certificates (DER, or PEM files with one or more) onto the token, all\n"
	"or none: every file that cannot be read is named and nothing is imported, unless\n"
	"--skip-invalid (then the others are). --dry-run reads and checks, sends nothing.\n"
	"Each is paired with its key (same CKA_ID) when the token holds it; those\n"
	"already on the token and those without a key are counted. The certificate of\n"
	"a rotated key's new version activates it and retires the version before.",
	cert_import,
};


static void
hex(const uint8_t *p, uint32_t n, char *out, size_t outlen)
{
	out[0] = '\0';
	for (uint32_t i = 0; i < n && 2 * i + 2 < outlen; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

int
cli_inventory(const char *label, const char *agency, const char *status, uint64_t before, struct cli_inv_row **out,
	      uint32_t *n)
{
	struct cy_conn *conn = cli_connect();
	uint32_t slot = 0;
	int r = 1;
	CK_RV rv;
	if (conn == NULL)
		return 1;
	if (cli_find_token(conn, label, &slot) != 0)
		goto out;
	/* In pages, so keymgrd holds its lock for one page at a time. */
	size_t cap = 0;
	uint64_t after_na = 0, after_obj = 0;
	*out = NULL;
	*n = 0;
	for (;;) {
		struct wire_buf *b = client_begin(conn, MSG_INVENTORY_PAGE);
		wire_put_u32(b, slot);
		wire_put_str(b, agency);
		wire_put_str(b, status);
		wire_put_u64(b, before);
		wire_put_u64(b, after_na);
		wire_put_u64(b, after_obj);
		wire_put_u32(b, PROTO_MAX_LIST);
		if ((rv = cli_call(conn)) != CKR_OK) {
			if (rv != (CK_RV)-1)
				cli_fail("inventory: %s", ckr_name(rv));
			goto fail;
		}
		/* A record list, checked against the reply's signature already. */
		struct wire_buf v = conn->rep;
		uint32_t got = 0;
		wire_get_u32(&v, &got);
		if (*n + got > cap) {
			cap = 2 * (*n + got) + 16;
			struct cli_inv_row *nv = realloc(*out, cap * sizeof(**out));
			if (nv == NULL) {
				cli_fail("inventory: out of memory");
				goto fail;
			}
			*out = nv;
		}
		for (uint32_t i = 0; i < got; i++) {
			struct cli_inv_row *w = &(*out)[(*n)++];
			const uint8_t *k, *s;
			uint32_t kl, sl;
			memset(w, 0, sizeof(*w));
			wire_get_u64(&v, &w->object);
			wire_get_str_into(&v, w->holder, sizeof(w->holder));
			wire_get_str_into(&v, w->agency, sizeof(w->agency));
			wire_get_str_into(&v, w->unit, sizeof(w->unit));
			wire_get_u64(&v, &w->not_before);
			wire_get_u64(&v, &w->not_after);
			wire_get_bytes(&v, &k, &kl);
			wire_get_str_into(&v, w->status, sizeof(w->status));
			wire_get_u32(&v, &w->reason);
			wire_get_u64(&v, &w->revoked_at);
			wire_get_bytes(&v, &s, &sl);
			if (wire_error(&v) != 0) {
				cli_fail("inventory: malformed reply");
				goto fail;
			}
			hex(k, kl, w->keyid, sizeof(w->keyid));
			/* The serial without its DER INTEGER header. */
			hex(sl > 2 ? s + 2 : s, sl > 2 ? sl - 2 : 0, w->serial, sizeof(w->serial));
			after_na = w->not_after;
			after_obj = w->object;
		}
		if (got < PROTO_MAX_LIST)
			break;
	}
	r = 0;
	goto out;
fail:
	free(*out);
	*out = NULL;
	*n = 0;
out:
	client_close(conn);
	return r;
}

/* Prints s left-aligned in width columns, counting UTF-8 characters (so
 * Vietnamese names line up), and a space. */
static void
padded(const char *s, int width)
{
	int chars = 0;
	for (const char *p = s; *p; p++)
		chars += ((unsigned char)*p & 0xc0) != 0x80;
	fputs(s, stdout);
	for (; chars < width; chars++)
		putchar(' ');
	putchar(' ');
}

static void
day(uint64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	strftime(out, len, "%Y-%m-%d", gmtime_r(&tt, &tm));
}

/* Prints s as a CSV field (quoted, quotes doubled). */
static void
csv(const char *s, char end)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"')
			putchar('"');
		putchar(*s);
	}
	putchar('"');
	putchar(end);
}

/* --expiring: a duration ("30d", "12h", as everywhere else) or a plain
 * number of days, in seconds; 0 when malformed. */
static uint64_t
days(const char *s)
{
	char *end;
	unsigned long d = strtoul(s, &end, 10);
	if (end != s && *end == '\0')
		return d == 0 || d > 36500 ? 0 : (uint64_t)d * 86400;
	long long v = duration_parse(s);
	return v > 0 ? (uint64_t)v : 0;
}

static int
inventory_list(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "expiring", required_argument, NULL, 'e' },
		{ "agency", required_argument, NULL, 'a' },
		{ "status", required_argument, NULL, 's' },
		{ "csv", no_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *token = NULL, *agency = "", *status = "";
	uint64_t before = 0;
	int format = 0, c;
	while ((c = getopt_long(argc, argv, "t:e:a:s:cj", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 'e':
			if ((before = days(optarg)) == 0)
				return cli_fail("inventory list: --expiring wants a duration, e.g. 30d");
			before += (uint64_t)time(NULL);
			break;
		case 'a': agency = optarg; break;
		case 's':
			status = optarg;
			if (strcmp(status, "valid") && strcmp(status, "expired") && strcmp(status, "revoked") &&
			    strcmp(status, "superseded") && strcmp(status, "no-key"))
				return cli_fail("inventory list: --status is valid, expired, revoked, superseded or no-key");
			break;
		case 'c': format = 1; break;
		case 'j': format = 2; break;
		default: return cli_usage("inventory list: bad option (see keymgr inventory list --help)");
		}
	}
	if (optind != argc)
		return cli_usage("inventory list: unexpected argument '%s'", argv[optind]);
	if (token == NULL)
		return cli_usage("inventory list: --token is required");
	struct cli_inv_row *rows = NULL;
	uint32_t n = 0;
	if (cli_inventory(token, agency, status, before, &rows, &n) != 0)
		return 1;
	if (format == 1)
		printf("holder,agency,unit,serial,not_before,not_after,status,key_id,reason,revoked_at\n");
	/* Whole serials (what cert revoke --serial takes); names cut to fit. */
	static const struct cli_col cols[] = {
		{ "holder", "HOLDER", true, 0 }, { "agency", "AGENCY", true, 0 }, { "not_after", "NOT AFTER", false, 0 },
		{ "serial", "SERIAL", false, 0 }, { "status", "STATUS", false, 0 }, { "key_id", "KEY", false, 1 },
	};
	struct cli_table tab;
	cli_table_init(&tab, cols, sizeof(cols) / sizeof(cols[0]), format == 2);
	for (uint32_t i = 0; i < n; i++) {
		struct cli_inv_row *w = &rows[i];
		char nb[16], na[16], ra[16] = "";
		day(w->not_before, nb, sizeof(nb));
		day(w->not_after, na, sizeof(na));
		bool revoked = strcmp(w->status, "revoked") == 0;
		const char *why = revoked && cli_reason_name(w->reason) ? cli_reason_name(w->reason) : "";
		if (revoked)
			day(w->revoked_at, ra, sizeof(ra));
		if (format == 1) {
			csv(w->holder, ',');
			csv(w->agency, ',');
			csv(w->unit, ',');
			printf("%s,%s,%s,%s,%s,%s,%s\n", w->serial, nb, na, w->status, w->keyid, why, ra);
		} else {
			json_t *o = json_pack("{s:o, s:o, s:o, s:s, s:s, s:s, s:s, s:s}", "holder", cli_json_text(w->holder),
					      "agency", cli_json_text(w->agency), "unit", cli_json_text(w->unit), "serial",
					      w->serial, "not_before", nb, "not_after", na, "status", w->status, "key_id",
					      w->keyid);
			if (o != NULL && revoked) {
				json_object_set_new(o, "reason", json_string(why));
				json_object_set_new(o, "revoked_at", json_string(ra));
			}
			if (o == NULL) {
				json_decref(tab.rows);
				free(rows);
				return cli_fail("inventory list: out of memory");
			}
			cli_table_add(&tab, o);
		}
	}
	free(rows);
	if (format == 1) {
		json_decref(tab.rows);
		return 0;
	}
	return cli_table_print(&tab);
}

const struct cli_cmd cmd_inventory_list = {
	"inventory", "list", "--token LABEL [--expiring 30d] [--agency A] [--status S] [--csv|--json]",
	"Lists the certificates on a token, soonest to expire first: holder (CN),\n"
	"agency (O), expiry, the whole serial, status (valid; expired; revoked;\n"
	"superseded: its key version was retired when a renewal's certificate took\n"
	"over, so it is neither valid nor expiring; no-key selects those whose key is\n"
	"not on the token) and the key's CKA_ID. --expiring lists valid ones only.",
	inventory_list,
};

/* The labels of the keys due for rotation within within seconds on token
 * (none when the request is refused: *n 0). */
static void
report_due(const char *token, uint64_t within, struct report *r)
{
	struct cy_conn *conn = cli_connect();
	uint32_t session;
	if (conn == NULL || cli_open(conn, token, 0, false, NULL, &session) != 0) {
		client_close(conn);
		return;
	}
	struct wire_buf *b = client_begin(conn, MSG_ROTATE_DUE);
	wire_put_u32(b, session);
	wire_put_u64(b, within);
	uint32_t n = 0;
	if (cli_call(conn) == CKR_OK && wire_get_u32(&conn->rep, &n) == 0 && (r->due = calloc(n ? n : 1, sizeof(char *)))) {
		for (uint32_t i = 0; i < n; i++) {
			const uint8_t *p;
			uint32_t len;
			if (wire_get_bytes(&conn->rep, &p, &len) != 0 || (r->due[i] = calloc(1, len + 1)) == NULL)
				break;
			memcpy(r->due[i], p, len);
			r->ndue++;
		}
	}
	client_close(conn);
}

/* Tokens with a locked PIN, from keymgr status (-1 without the role). */
static int
report_lockouts(void)
{
	struct cy_conn *conn = cli_connect();
	if (conn == NULL)
		return -1;
	client_begin(conn, MSG_STATUS);
	int locked = -1;
	if (cli_call(conn) == CKR_OK) {
		struct wire_buf *b = &conn->rep;
		char *skip = NULL, *tokens = NULL;
		uint64_t q;
		uint32_t u, ylen;
		const uint8_t *y;
		int e = wire_get_str(b, &skip);
		free(skip);
		skip = NULL;
		e |= wire_get_u64(b, &q) | wire_get_u64(b, &q) | wire_get_str(b, &skip);
		free(skip);
		e |= wire_get_u32(b, &u);
		for (int k = 0; k < 5; k++)
			e |= wire_get_u64(b, &q);
		e |= wire_get_bytes(b, &y, &ylen) | wire_get_u32(b, &u) | wire_get_str(b, &tokens);
		if (e == 0) {
			locked = 0;
			/* Lines "label TAB user|so|user,so|- TAB due". */
			for (char *p = tokens; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
				char *tab = strchr(p, '\t');
				locked += tab != NULL && tab[1] != '-';
			}
		}
		free(tokens);
	}
	client_close(conn);
	return locked;
}

static int
inventory_report(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "within", required_argument, NULL, 'w' },
		{ "csv", no_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "html", required_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	const char *token = NULL, *html = NULL;
	uint64_t within = 30 * 86400;
	int format = 0, c;
	while ((c = getopt_long(argc, argv, "t:", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 'w':
			if ((within = days(optarg)) == 0)
				return cli_usage("inventory report: --within wants a duration, e.g. 30d");
			break;
		case 'c': format = 1; break;
		case 'j': format = 2; break;
		case 'H': html = optarg; break;
		default: return cli_usage("inventory report: bad option (see keymgr inventory report --help)");
		}
	}
	if (token == NULL || optind != argc)
		return cli_usage("inventory report: --token is required");
	struct cli_inv_row *rows = NULL;
	uint32_t n = 0;
	if (cli_inventory(token, "", "", 0, &rows, &n) != 0)
		return 1;
	struct report rep;
	memset(&rep, 0, sizeof(rep));
	rep.token = token;
	rep.now = (uint64_t)time(NULL);
	rep.within_days = (unsigned)(within / 86400);
	rep.total.agency = "TOTAL";
	rep.lockouts = -1;
	/* Counts per agency and status (agencies in order of first expiry). */
	struct report_agency *cs = rep.agencies = calloc(n ? n : 1, sizeof(*cs));
	rep.revoked = calloc(n ? n : 1, sizeof(*rep.revoked));
	if (cs == NULL || rep.revoked == NULL) {
		free(cs);
		free(rep.revoked);
		free(rows);
		return cli_fail("inventory report: out of memory");
	}
	size_t nc = 0;
	uint64_t now = rep.now, soon = now + within;
	time_t tnow = (time_t)now;
	struct tm tm;
	localtime_r(&tnow, &tm);
	int month0 = (tm.tm_year + 1900) * 12 + tm.tm_mon, year = tm.tm_year + 1900;
	for (int m = 0; m < 12; m++)
		snprintf(rep.month_names[m], sizeof(rep.month_names[m]), "%04d-%02d", (month0 + m) / 12, (month0 + m) % 12 + 1);
	for (uint32_t i = 0; i < n; i++) {
		size_t j;
		for (j = 0; j < nc && strcmp(cs[j].agency, rows[i].agency) != 0; j++)
			;
		if (j == nc)
			cs[nc++].agency = rows[i].agency;
		if (strcmp(rows[i].status, "revoked") == 0) {
			cs[j].revoked++;
			time_t ra = (time_t)rows[i].revoked_at;
			struct tm rt;
			localtime_r(&ra, &rt);
			if (rt.tm_year + 1900 == year) {
				struct report_revoked *v = &rep.revoked[rep.nrevoked++];
				v->holder = rows[i].holder;
				v->agency = rows[i].agency;
				strftime(v->date, sizeof(v->date), "%Y-%m-%d", &rt);
				v->reason = cli_reason_name(rows[i].reason) ? cli_reason_name(rows[i].reason) : "-";
			}
		} else if (strcmp(rows[i].status, "superseded") == 0) {
			cs[j].superseded++;
		} else if (strcmp(rows[i].status, "expired") == 0) {
			cs[j].expired++;
		} else {
			cs[j].valid++;
			cs[j].soon += rows[i].not_after < soon;
			time_t na = (time_t)rows[i].not_after;
			struct tm nt;
			localtime_r(&na, &nt);
			int m = (nt.tm_year + 1900) * 12 + nt.tm_mon - month0;
			if (m >= 0 && m < 12)
				rep.months[m]++;
		}
	}
	rep.nagencies = nc;
	for (size_t j = 0; j < nc; j++) {
		rep.total.valid += cs[j].valid;
		rep.total.expired += cs[j].expired;
		rep.total.revoked += cs[j].revoked;
		rep.total.superseded += cs[j].superseded;
		rep.total.soon += cs[j].soon;
	}
	const struct report_agency *total = &rep.total;
	int status = 0;
	unsigned wd = rep.within_days;
	if (html != NULL) {
		report_due(token, within, &rep);
		rep.lockouts = report_lockouts();
		status = report_html(html, &rep);
		if (status == 0)
			printf("wrote %s: %u certificates, %u keys due, %u revoked this year\n", html, n, rep.ndue,
			       rep.nrevoked);
	} else if (format == 1) {
		printf("agency,valid,expired,revoked,superseded,expiring_within_%ud\n", wd);
		for (size_t j = 0; j < nc; j++) {
			csv(cs[j].agency, ',');
			printf("%u,%u,%u,%u,%u\n", cs[j].valid, cs[j].expired, cs[j].revoked, cs[j].superseded, cs[j].soon);
		}
	} else if (format == 2) {
		json_t *ags = json_array(), *next = json_array();
		for (size_t j = 0; j < nc; j++)
			json_array_append_new(ags, json_pack("{s:o, s:i, s:i, s:i, s:i, s:i}", "agency",
							     cli_json_text(cs[j].agency), "valid", (int)cs[j].valid,
							     "expired", (int)cs[j].expired, "revoked", (int)cs[j].revoked,
							     "superseded", (int)cs[j].superseded, "expiring", (int)cs[j].soon));
		for (uint32_t i = 0, shown = 0; i < n && shown < 10; i++) {
			if (strcmp(rows[i].status, "valid") != 0)
				continue;
			char na[16];
			day(rows[i].not_after, na, sizeof(na));
			json_array_append_new(next, json_pack("{s:s, s:o, s:o, s:s}", "not_after", na, "holder",
							      cli_json_text(rows[i].holder), "agency",
							      cli_json_text(rows[i].agency), "serial", rows[i].serial));
			shown++;
		}
		status = cli_json_print(json_pack("{s:i, s:o, s:{s:i, s:i, s:i, s:i, s:i}, s:o}", "within_days", (int)wd,
						  "agencies", ags, "total", "valid", (int)total->valid, "expired",
						  (int)total->expired, "revoked", (int)total->revoked, "superseded",
						  (int)total->superseded, "expiring", (int)total->soon, "next", next),
				       true);
	} else {
		char head[32];
		snprintf(head, sizeof(head), "EXPIRE <%ud", wd);
		printf("%-50s %7s %7s %7s %10s %12s\n", "AGENCY", "VALID", "EXPIRED", "REVOKED", "SUPERSEDED", head);
		for (size_t j = 0; j <= nc; j++) {
			const struct report_agency *k = j < nc ? &cs[j] : total;
			padded(k->agency[0] ? k->agency : "(no O)", 50);
			printf("%7u %7u %7u %10u %12u\n", k->valid, k->expired, k->revoked, k->superseded, k->soon);
		}
		printf("\nnext to expire:\n");
		for (uint32_t i = 0, shown = 0; i < n && shown < 10; i++) {
			if (strcmp(rows[i].status, "valid") != 0)
				continue;
			char na[16];
			day(rows[i].not_after, na, sizeof(na));
			printf("  %s  ", na);
			padded(rows[i].holder, 30);
			printf("%s\n", rows[i].agency);
			shown++;
		}
	}
	for (uint32_t i = 0; i < rep.ndue; i++)
		free(rep.due[i]);
	free(rep.due);
	free(rep.revoked);
	free(cs);
	free(rows);
	return status;
}

const struct cli_cmd cmd_inventory_report = {
	"inventory", "report", "--token LABEL [--within 30d] [--csv|--json|--html FILE]",
	"Counts the token's certificates by agency and status (valid, expired, revoked,\n"
	"superseded), with the valid ones expiring within --within (30 days by default),\n"
	"and lists the ten valid ones that expire next. --html writes one self-contained\n"
	"page for the unit's leadership: those counts, expiries by month for the next 12\n"
	"months as a chart, keys due for rotation, revocations this year, PIN lockouts.",
	inventory_report,
};
