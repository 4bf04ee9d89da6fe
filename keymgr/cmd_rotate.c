/*
 * cmd_rotate.c - key versions: keymgr key rotate (one key, or every key
 * the policy finds due, on all CPU cores), keymgr key show.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckr.h"
#include "cli.h"
#include "duration.h"
#include "paths.h"

static void
hex(const uint8_t *p, size_t n, char *out, size_t outlen)
{
	out[0] = '\0';
	for (size_t i = 0; i < n && 2 * i + 2 < outlen; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

/* ---- keymgr key rotate ---- */

struct cli_blob {
	uint8_t v[256];
	uint32_t len;
};

struct rotate_job {
	const char *token, *pin, *outdir;
	const struct cli_blob *keys;
	uint32_t nkeys, next, done, failed;
	pthread_mutex_t lock;
	struct cli_progress progress;
};

/* Rotates one key on an open session and writes its request. 0 or 1. */
static int
rotate_one(struct cy_conn *conn, uint32_t session, const uint8_t *label, uint32_t len, const char *outdir,
	   pthread_mutex_t *print_lock)
{
	struct wire_buf *b = client_begin(conn, MSG_KEY_ROTATE);
	wire_put_u32(b, session);
	wire_put_bytes(b, label, len);
	CK_RV rv = cli_call(conn);
	int status = 1;
	if (print_lock)
		pthread_mutex_lock(print_lock);
	if (rv == CKR_OK) {
		uint32_t version = 0, idlen = 0, csrlen = 0, again = 0;
		const uint8_t *id = NULL, *csr = NULL;
		char name[256], path[4400], idhex[80];
		wire_get_u32(&conn->rep, &version);
		wire_get_bytes(&conn->rep, &id, &idlen);
		wire_get_bytes(&conn->rep, &csr, &csrlen);
		wire_get_u32(&conn->rep, &again);
		paths_file_name(label, len, name, sizeof(name));
		snprintf(path, sizeof(path), "%s/%s-v%u.csr", outdir, name, version);
		hex(id, idlen, idhex, sizeof(idhex));
		if (cli_write_pem(path, "CERTIFICATE REQUEST", csr, csrlen) == 0) {
			printf("%s '%.*s' to version %u (id %s, pre-active); request in %s\n",
			       again ? "already rotated" : "rotated", (int)len, (const char *)label, version, idhex, path);
			status = 0;
		}
	} else if (rv == CKR_TEMPLATE_INCOMPLETE) {
		cli_fail("key rotate: '%.*s' has no certificate to take the subject from", (int)len,
			 (const char *)label);
	} else if (rv == CKR_KEY_HANDLE_INVALID) {
		cli_fail("key rotate: no key labelled '%.*s'", (int)len, (const char *)label);
	} else if (rv == CKR_KEY_FUNCTION_NOT_PERMITTED) {
		cli_fail("key rotate: '%.*s' has no active version", (int)len, (const char *)label);
	} else if (rv != (CK_RV)-1) {
		cli_fail("key rotate: '%.*s': %s", (int)len, (const char *)label, ckr_name(rv));
	}
	fflush(stdout);
	if (print_lock)
		pthread_mutex_unlock(print_lock);
	return status;
}

/* One worker of --due: its own connection and login, keys taken in turn. */
static void *
rotate_worker(void *arg)
{
	struct rotate_job *j = arg;
	uint32_t session;
	struct cy_conn *conn = cli_connect();
	bool ok = conn != NULL && cli_open(conn, j->token, 0, true, j->pin, &session) == 0;
	for (;;) {
		pthread_mutex_lock(&j->lock);
		uint32_t i = j->next < j->nkeys ? j->next++ : UINT32_MAX;
		pthread_mutex_unlock(&j->lock);
		if (i == UINT32_MAX)
			break;
		int r = ok ? rotate_one(conn, session, j->keys[i].v, j->keys[i].len, j->outdir, &j->lock) : 1;
		pthread_mutex_lock(&j->lock);
		j->done += r == 0;
		j->failed += r != 0;
		cli_progress_step(&j->progress, 1);
		pthread_mutex_unlock(&j->lock);
	}
	client_close(conn);
	return NULL;
}

static int
rotate_due(struct cy_conn *conn, uint32_t session, const char *token, const char *pin, long long within,
	   const char *outdir, long jobs, bool dry)
{
	struct wire_buf *b = client_begin(conn, MSG_ROTATE_DUE);
	wire_put_u32(b, session);
	wire_put_u64(b, (uint64_t)within);
	CK_RV rv = cli_call(conn);
	if (rv != CKR_OK)
		return rv == (CK_RV)-1 ? 1 : cli_fail("key rotate --due: %s", ckr_name(rv));
	uint32_t n = 0;
	/* A record list, checked against the reply's signature already. */
	struct wire_buf v = conn->rep;
	wire_get_u32(&v, &n);
	struct cli_blob *keys = calloc(n ? n : 1, sizeof(*keys));
	if (keys == NULL)
		return cli_fail("key rotate --due: out of memory");
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *l;
		if (wire_get_bytes(&v, &l, &keys[i].len) != 0 || keys[i].len > sizeof(keys[i].v)) {
			free(keys);
			return cli_fail("key rotate --due: malformed reply");
		}
		memcpy(keys[i].v, l, keys[i].len);
	}
	printf("%u key(s) due for rotation\n", n);
	if (dry) {
		for (uint32_t i = 0; i < n; i++)
			printf("  %.*s\n", (int)keys[i].len, (const char *)keys[i].v);
		printf("dry run: nothing rotated\n");
		free(keys);
		return 0;
	}
	fflush(stdout);
	struct rotate_job j = { token, pin, outdir, keys, n, 0, 0, 0, PTHREAD_MUTEX_INITIALIZER, { 0 } };
	cli_progress_start(&j.progress, "key rotate --due", n, true);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* One connection per worker: keymgrd generates on as many cores. */
	pthread_t th[64];
	long started = 0;
	if (jobs > (long)n)
		jobs = n ? (long)n : 1;
	for (long i = 0; i < jobs && i < 64; i++)
		if (pthread_create(&th[started], NULL, rotate_worker, &j) == 0)
			started++;
	if (started == 0)
		rotate_worker(&j);
	for (long i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	cli_progress_end(&j.progress);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("rotated %u key(s) in %.2f s with %ld worker(s); %u failed\n", j.done,
	       (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, started ? started : 1, j.failed);
	free(keys);
	return j.failed ? 1 : 0;
}

static int
key_rotate(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "pin", required_argument, NULL, 'p' },
		{ "label", required_argument, NULL, 'l' },
		{ "due", no_argument, NULL, 'd' },
		{ "within", required_argument, NULL, 'w' },
		{ "out", required_argument, NULL, 'o' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *token = NULL, *pin = NULL, *label = NULL, *outdir = ".";
	bool due = false, dry = false;
	long long within = 30 * 86400;
	long jobs = sysconf(_SC_NPROCESSORS_ONLN);
	int c;
	while ((c = getopt_long(argc, argv, "t:p:l:dw:o:j:", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 'p': pin = cli_pin_arg(optarg, "user PIN"); break;
		case 'l': label = optarg; break;
		case 'd': due = true; break;
		case 'n': dry = true; break;
		case 'w':
			if ((within = duration_parse(optarg)) < 0)
				return cli_fail("key rotate: --within wants a duration such as 30d");
			break;
		case 'o': outdir = optarg; break;
		case 'j':
			jobs = strtol(optarg, NULL, 10);
			if (jobs < 1 || jobs > 64)
				return cli_fail("key rotate: --jobs is 1 to 64");
			break;
		default: return cli_usage("key rotate: bad option (see keymgr key rotate --help)");
		}
	}
	if (optind < argc && label == NULL && !due)
		label = argv[optind++];
	if (optind != argc)
		return cli_usage("key rotate: unexpected argument '%s'", argv[optind]);
	if (!token || (!label == !due))
		return cli_usage("key rotate: --token and either a key label or --due are required");
	if (dry && !due)
		return cli_usage("key rotate: --dry-run goes with --due (it lists the keys that would be rotated)");
	struct stat sb;
	if (stat(outdir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return cli_fail("key rotate: --out %s is not a directory", outdir);
	if (jobs < 1)
		jobs = 1;
	struct cy_conn *conn = cli_connect();
	uint32_t session;
	int status = 1;
	if (conn == NULL)
		return 1;
	if (cli_open(conn, token, 0, true, pin, &session) == 0)
		status = due ? rotate_due(conn, session, token, pin, within, outdir, jobs, dry)
			     : rotate_one(conn, session, (const uint8_t *)label, (uint32_t)strlen(label), outdir, NULL);
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_key_rotate = {
	"key", "rotate",
	"--token LABEL [--pin PIN] (KEY | --label KEY | --due [--within 30d] [--dry-run]) [--out DIR] [--jobs N]",
	"Makes a new version of a key, pre-active, and writes a PKCS#10 request for it\n"
	"(the subject of the current version's certificate, signed by the new key inside\n"
	"keymgrd) to DIR/KEY-vN.csr. Importing the certificate issued for it activates\n"
	"the new version and retires the old one. While a new version waits for its\n"
	"certificate, rotating again writes its request again (nothing new is made).\n"
	"--due rotates every key whose\n"
	"certificate expires within the period (default 30 days), N at a time (default:\n"
	"one per CPU core); with --dry-run it lists them and rotates none.",
	key_rotate,
};

/* ---- keymgr key show ---- */

struct version {
	uint64_t cls, type, state, number, since, reason;
	char id[130], end[9];
};

static const char *
state_name(uint64_t s)
{
	static const char *const names[] = { "-", "pre-active", "active", "retired", "revoked", "destroyed" };
	return s < sizeof(names) / sizeof(names[0]) ? names[s] : "-";
}

static const char *
type_name(uint64_t t)
{
	switch (t) {
	case CKK_RSA: return "rsa";
	case CKK_EC: return "ec";
	case CKK_EC_EDWARDS: return "eddsa";
	case CKK_EC_MONTGOMERY: return "ecdh";
	case CKK_AES: return "aes";
	}
	return "-";
}

/* The attributes of object h that key show prints. */
static CK_RV
read_version(struct cy_conn *conn, uint32_t session, uint32_t h, struct version *v)
{
	static const uint32_t want[] = { CKA_CLASS, CKA_KEY_TYPE, CKA_ID, CKA_COYEU_KEY_STATE, CKA_COYEU_KEY_VERSION,
					 CKA_COYEU_STATE_SINCE, CKA_COYEU_REVOCATION_REASON, CKA_END_DATE };
	const uint32_t nw = sizeof(want) / sizeof(want[0]);
	struct wire_buf *b = client_begin(conn, MSG_GET_ATTRS);
	wire_put_u32(b, session);
	wire_put_u32(b, h);
	wire_put_u32(b, nw);
	for (uint32_t j = 0; j < nw; j++)
		wire_put_u32(b, want[j]);
	CK_RV rv = cli_call(conn);
	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE)
		return rv;
	memset(v, 0, sizeof(*v));
	v->number = 1;
	uint32_t cnt = 0;
	wire_get_u32(&conn->rep, &cnt);
	for (uint32_t j = 0; j < cnt; j++) {
		uint32_t type = 0, arv = 0, len = 0;
		const uint8_t *p = NULL;
		wire_get_u32(&conn->rep, &type);
		wire_get_u32(&conn->rep, &arv);
		wire_get_bytes(&conn->rep, &p, &len);
		if (arv != CKR_OK)
			continue;
		uint64_t x = len == 8 ? wire_load_u64(p) : 0;
		if (type == CKA_CLASS) v->cls = x;
		else if (type == CKA_KEY_TYPE) v->type = x;
		else if (type == CKA_COYEU_KEY_STATE) v->state = x;
		else if (type == CKA_COYEU_KEY_VERSION) v->number = x;
		else if (type == CKA_COYEU_STATE_SINCE) v->since = x;
		else if (type == CKA_COYEU_REVOCATION_REASON) v->reason = x;
		else if (type == CKA_ID) hex(p, len, v->id, sizeof(v->id));
		else if (type == CKA_END_DATE && len == 8) { memcpy(v->end, p, 8); v->end[8] = '\0'; }
	}
	return wire_error(&conn->rep) ? CKR_DEVICE_ERROR : CKR_OK;
}

static int
by_number(const void *a, const void *b)
{
	const struct version *x = a, *y = b;
	return x->number < y->number ? 1 : x->number > y->number ? -1 : 0;
}

static void
when(uint64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (t == 0)
		snprintf(out, len, "-");
	else
		strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
}

static int
key_show(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "pin", required_argument, NULL, 'p' },
		{ "label", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *token = NULL, *pin = NULL, *label = NULL;
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "t:p:l:j", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 'p': pin = cli_pin_arg(optarg, "user PIN"); break;
		case 'l': label = optarg; break;
		case 'j': json = true; break;
		default: return cli_usage("key show: bad option (see keymgr key show --help)");
		}
	}
	if (optind < argc && label == NULL)
		label = argv[optind++];
	if (optind != argc)
		return cli_usage("key show: unexpected argument '%s'", argv[optind]);
	if (!token || !label)
		return cli_usage("key show: --token and a key label are required");
	struct cy_conn *conn = cli_connect();
	uint32_t session, n = 0, nv = 0;
	struct version *vs = NULL;
	struct cli_inv_row *rows = NULL;
	uint32_t nrows = 0;
	int status = 1;
	if (conn == NULL)
		return 1;
	if (cli_open(conn, token, 0, false, pin, &session) != 0)
		goto out;
	struct cli_tmpl t;
	tmpl_init(&t);
	tmpl_bytes(&t, CKA_LABEL, label, strlen(label));
	uint32_t *handles = NULL;
	CK_RV rv = cli_find_all(conn, session, &t, &handles, &n);
	tmpl_free(&t);
	if (rv != CKR_OK) {
		if (rv != (CK_RV)-1)
			cli_fail("key show: %s", ckr_name(rv));
		goto out;
	}
	vs = calloc(n ? n : 1, sizeof(*vs));
	if (vs == NULL) {
		free(handles);
		cli_fail("key show: out of memory");
		goto out;
	}
	/* The private keys' versions; without the user's login (an
	 * administrator on a holder's token) the public keys carry the same. */
	uint32_t npub = 0;
	for (uint32_t i = 0; i < n && rv == CKR_OK; i++) {
		struct version v;
		if ((rv = read_version(conn, session, handles[i], &v)) != CKR_OK)
			break;
		if (v.cls == CKO_PRIVATE_KEY) {
			if (npub) { /* the first private one: drop the public ones */
				nv = 0;
				npub = 0;
			}
			vs[nv++] = v;
		} else if (v.cls == CKO_PUBLIC_KEY && nv == npub) {
			vs[nv++] = v;
			npub++;
		}
	}
	free(handles);
	if (rv != CKR_OK) {
		if (rv != (CK_RV)-1)
			cli_fail("key show: %s", ckr_name(rv));
		goto out;
	}
	if (nv == 0) {
		cli_fail("key show: no key labelled '%s' on '%s'", label, token);
		goto out;
	}
	qsort(vs, nv, sizeof(*vs), by_number);
	if (cli_inventory(token, "", "", 0, &rows, &nrows) != 0)
		goto out;
	json_t *versions = json ? json_array() : NULL;
	if (!json) {
		printf("key '%s' on token '%s': %u version(s)\n", label, token, nv);
		printf("%-4s %-10s %-6s %-21s %-32s %s\n", "VER", "STATE", "TYPE", "SINCE", "ID", "CERTIFICATES");
	}
	for (uint32_t i = 0; i < nv; i++) {
		struct version *v = &vs[i];
		char since[32];
		when(v->since, since, sizeof(since));
		const char *why = v->state == 4 && cli_reason_name((uint32_t)v->reason) ? cli_reason_name((uint32_t)v->reason) : "";
		json_t *certs = json_array(), *jv = NULL;
		if (json) {
			jv = json_pack("{s:I, s:s, s:s, s:s, s:s}", "version", (json_int_t)v->number, "state",
				       state_name(v->state), "type", type_name(v->type), "since", since, "id", v->id);
			if (jv != NULL && *why)
				json_object_set_new(jv, "reason", json_string(why));
		} else
			printf("%-4llu %-10s %-6s %-21s %-32s", (unsigned long long)v->number, state_name(v->state),
			       type_name(v->type), since, v->id);
		uint32_t shown = 0;
		for (uint32_t k = 0; k < nrows; k++) {
			if (strcmp(rows[k].keyid, v->id) != 0)
				continue;
			char na[16];
			time_t tt = (time_t)rows[k].not_after;
			struct tm tm;
			strftime(na, sizeof(na), "%Y-%m-%d", gmtime_r(&tt, &tm));
			if (json)
				json_array_append_new(certs, json_pack("{s:s, s:s, s:s}", "serial", rows[k].serial,
								       "not_after", na, "status", rows[k].status));
			else
				printf("%s serial %s until %s (%s)", shown ? ";" : "", rows[k].serial, na, rows[k].status);
			shown++;
		}
		if (json && jv != NULL) {
			json_object_set_new(jv, "certificates", certs);
			json_array_append_new(versions, jv);
		} else {
			json_decref(certs);
			if (!json)
				printf("%s%s%s\n", shown ? "" : " none", *why ? ", revoked: " : "", why);
		}
	}
	status = json ? cli_json_print(json_pack("{s:o, s:o}", "label", cli_json_text(label), "versions", versions),
				       false)
		      : 0;
out:
	free(rows);
	free(vs);
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_key_show = {
	"key", "show", "--token LABEL [--pin PIN] (KEY | --label KEY) [--json]",
	"Shows every version of a key, newest first: number, state (pre-active, active,\n"
	"retired, revoked with its reason, destroyed), since when, key type, CKA_ID, and\n"
	"the certificates of each version from the inventory.",
	key_show,
};

/* ---- keymgr key csr ---- */

/* One request for key label on token, subject dn ("" for the one of its
 * certificate), written as PEM to out: 0, or 1 after saying why. */
static int
csr_one(struct cy_conn *conn, const char *token, const char *pin, const char *label, const char *dn, const char *out)
{
	uint32_t session;
	if (cli_open(conn, token, 0, true, pin, &session) != 0)
		return 1;
	struct wire_buf *b = client_begin(conn, MSG_KEY_CSR);
	wire_put_u32(b, session);
	wire_put_bytes(b, label, strlen(label));
	wire_put_str(b, dn);
	CK_RV rv = cli_call(conn);
	int status = 1;
	if (rv == CKR_OK) {
		const uint8_t *der;
		uint32_t dl;
		wire_get_bytes(&conn->rep, &der, &dl);
		status = cli_write_pem(out, "CERTIFICATE REQUEST", der, dl);
	} else if (rv == CKR_TEMPLATE_INCOMPLETE) {
		cli_fail("key csr: '%s' on '%s' has no certificate yet: give a subject", label, token);
	} else if (rv == CKR_FUNCTION_FAILED) {
		cli_fail("key csr: cannot build the request for '%s' on '%s'", label, token);
	} else if (rv != (CK_RV)-1) {
		cli_fail("key csr: '%s' on '%s': %s", label, token, ckr_name(rv));
	}
	/* One session per request: a batch of hundreds stays under the limit. */
	b = client_begin(conn, MSG_CLOSE_SESSION);
	wire_put_u32(b, session);
	cli_call(conn);
	return status;
}

static const char *const dn_part[] = { "cn", "ou", "o", "l", "st", "c" };
static const char *const dn_type[] = { "CN", "OU", "O", "L", "ST", "C" };

/*
 * --batch FILE: a CSV with a header line naming its columns, token and key
 * and the subject's parts (cn, ou, o, l, st, c; any of them, any order),
 * or subject (a whole DN); one request per row, to DIR/TOKEN-KEY.csr. Every
 * row is checked before the first request. 0, or 1 when a row failed.
 */
static int
csr_batch(const char *path, const char *pin, const char *dir)
{
	uint8_t *buf;
	size_t len;
	if (cli_read_file(path, &buf, &len) != 0)
		return 1;
	char *text = realloc(buf, len + 1);
	if (text == NULL) {
		free(buf);
		return cli_fail("key csr: out of memory");
	}
	text[len] = '\0';
	enum { MAXF = 16 };
	int col_token = -1, col_key = -1, col_subject = -1, col_part[6] = { -1, -1, -1, -1, -1, -1 };
	struct row { char *token, *key; char dn[2048]; size_t line; } *rows = NULL;
	size_t nrows = 0, line_no = 0;
	int status = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line && status == 0; line = strtok_r(NULL, "\n", &save)) {
		line_no++;
		line[strcspn(line, "\r")] = '\0';
		if (*line == '\0')
			continue;
		char *f[MAXF];
		int nf = cli_csv_split(line, f, MAXF);
		if (nf < 0 || nf > MAXF) {
			status = cli_fail("key csr: %s:%zu: %s", path, line_no, nf < 0 ? "a quote is not closed" : "too many columns");
			break;
		}
		if (col_token < 0 && col_key < 0) { /* the header */
			for (int i = 0; i < nf; i++) {
				if (strcmp(f[i], "token") == 0)
					col_token = i;
				else if (strcmp(f[i], "key") == 0)
					col_key = i;
				else if (strcmp(f[i], "subject") == 0)
					col_subject = i;
				else {
					int k = 0;
					while (k < 6 && strcmp(f[i], dn_part[k]) != 0)
						k++;
					if (k == 6) {
						status = cli_fail("key csr: %s:%zu: unknown column '%s' (token, key, subject, cn, ou, o, "
								  "l, st, c)", path, line_no, f[i]);
						break;
					}
					col_part[k] = i;
				}
			}
			if (status == 0 && (col_token < 0 || col_key < 0))
				status = cli_fail("key csr: %s: the first line names the columns, token and key among them", path);
			continue;
		}
		struct row *nr = realloc(rows, (nrows + 1) * sizeof(*rows));
		if (nr == NULL) {
			status = cli_fail("key csr: out of memory");
			break;
		}
		rows = nr;
		struct row *r = &rows[nrows++];
		memset(r, 0, sizeof(*r));
		r->line = line_no;
		r->token = col_token < nf ? f[col_token] : "";
		r->key = col_key < nf ? f[col_key] : "";
		if (!*r->token || !*r->key) {
			status = cli_fail("key csr: %s:%zu: no token or key", path, line_no);
			break;
		}
		if (col_subject >= 0 && col_subject < nf && *f[col_subject])
			snprintf(r->dn, sizeof(r->dn), "%s", f[col_subject]);
		for (int k = 0; k < 6 && status == 0; k++)
			if (col_part[k] >= 0 && col_part[k] < nf && *f[col_part[k]] &&
			    cli_dn_append(r->dn, sizeof(r->dn), dn_type[k], f[col_part[k]]) != 0)
				status = cli_fail("key csr: %s:%zu: the subject is too long", path, line_no);
		char what[64];
		snprintf(what, sizeof(what), "key csr: %s:%zu", path, r->line);
		if (status == 0 && *r->dn && cli_dn_check(what, r->dn) != 0)
			status = 1;
	}
	if (status == 0 && nrows == 0)
		status = cli_fail("key csr: %s has no rows", path);
	struct cy_conn *conn = status == 0 ? cli_connect() : NULL;
	if (status == 0 && conn == NULL)
		status = 1;
	size_t made = 0, failed = 0;
	struct cli_progress pr;
	cli_progress_start(&pr, "key csr --batch", nrows, true);
	for (size_t i = 0; status == 0 && i < nrows; i++) {
		char name[160], file[4352];
		char t[64], k[64];
		paths_file_name((const uint8_t *)rows[i].token, strlen(rows[i].token), t, sizeof(t));
		paths_file_name((const uint8_t *)rows[i].key, strlen(rows[i].key), k, sizeof(k));
		snprintf(name, sizeof(name), "%s-%s.csr", t, k);
		snprintf(file, sizeof(file), "%s/%s", dir, name);
		if (csr_one(conn, rows[i].token, pin, rows[i].key, rows[i].dn, file) == 0)
			made++;
		else
			failed++;
		cli_progress_step(&pr, 1);
	}
	cli_progress_end(&pr);
	if (status == 0)
		printf("wrote %zu request(s) to %s; %zu failed\n", made, dir, failed);
	client_close(conn);
	free(rows);
	free(text);
	return status != 0 || failed > 0;
}

static int
key_csr(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "pin", required_argument, NULL, 'p' },
		{ "label", required_argument, NULL, 'l' },
		{ "subject", required_argument, NULL, 's' },
		{ "out", required_argument, NULL, 'o' },
		{ "batch", required_argument, NULL, 'b' },
		/* The subject in parts, most specific first (RFC 4514 order). */
		{ "cn", required_argument, NULL, 1 },
		{ "ou", required_argument, NULL, 2 },
		{ "o", required_argument, NULL, 3 },
		{ "l", required_argument, NULL, 4 },
		{ "st", required_argument, NULL, 5 },
		{ "c", required_argument, NULL, 6 },
		{ NULL, 0, NULL, 0 },
	};
	const char *token = NULL, *pin = NULL, *label = NULL, *subject = "", *out = NULL, *part[7] = { NULL };
	const char *batch = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "t:p:l:s:o:", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 'p': pin = cli_pin_arg(optarg, "user PIN"); break;
		case 'l': label = optarg; break;
		case 's': subject = optarg; break;
		case 'o': out = optarg; break;
		case 'b': batch = optarg; break;
		case 1: case 2: case 3: case 4: case 5: case 6: part[c] = optarg; break;
		default: return cli_usage("key csr: bad option (see keymgr key csr --help)");
		}
	}
	if (batch != NULL) {
		if (optind != argc || token || label || *subject || part[1] || part[2] || part[3] || part[4] || part[5] ||
		    part[6] || out == NULL)
			return cli_fail("key csr: --batch FILE takes --out DIR (and --pin), the rest comes from FILE");
		return csr_batch(batch, pin, out);
	}
	if (optind < argc && label == NULL)
		label = argv[optind++];
	if (optind != argc || !token || !label)
		return cli_usage("key csr: --token and a key label are required");
	char dn[2048] = "";
	bool parts = false;
	for (int i = 1; i <= 6; i++) {
		if (part[i] == NULL)
			continue;
		if (cli_dn_append(dn, sizeof(dn), dn_type[i - 1], part[i]) != 0)
			return cli_fail("key csr: the subject is too long");
		parts = true;
	}
	if (parts && *subject)
		return cli_fail("key csr: give --subject or its parts (--cn, --ou, --o, --l, --st, --c), not both");
	if (parts)
		subject = dn;
	if (*subject && cli_dn_check("key csr", subject) != 0)
		return 1;
	struct cy_conn *conn = cli_connect();
	int status = conn != NULL ? csr_one(conn, token, pin, label, subject, out ? out : "-") : 1;
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_key_csr = {
	"key", "csr", "--token LABEL [--pin PIN] (KEY | --label KEY)\n"
	"       [--subject DN | --cn CN [--ou OU] [--o O] [--l L] [--st ST] [--c C]] [--out FILE]\n"
	"       keymgr key csr --batch FILE.csv --out DIR [--pin PIN]",
	"Writes a PKCS#10 request for the active version of a key, signed inside\n"
	"keymgrd, with the subject DN (RFC 4514, e.g. \"CN=Nguyễn Văn A,O=Sở Tài chính,C=VN\";\n"
	"a comma inside a value is written \\,) or its parts given apart, which need no\n"
	"escaping (--o \"Sở Văn hóa, Thể thao và Du lịch\"), or that of the version's\n"
	"certificate; PEM to FILE (default stdout). For a first certificate; renewals go\n"
	"through keymgr key rotate. --batch: one request per row of a CSV whose first line\n"
	"names its columns (token, key, and subject or cn, ou, o, l, st, c), written to\n"
	"DIR/TOKEN-KEY.csr; every row is checked before the first request.",
	key_csr,
};
