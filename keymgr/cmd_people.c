/*
 * cmd_people.c - keymgr holder add|import|list|reset-pin, keymgr account
 * add|list|remove, keymgr access grant|revoke|list: the people who use and
 * run the unit (see docs/admin-guide.md).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <gcrypt.h>

#include "ckr.h"
#include "cli.h"
#include "people.h"

/* ---- one-time PINs ---- */

/* A random one-time PIN of 8 digits. */
static void
new_pin(char out[9])
{
	for (int i = 0; i < 8; i++) {
		uint8_t b;
		do
			gcry_randomize(&b, 1, GCRY_STRONG_RANDOM);
		while (b >= 250); /* no bias: 250 = 25 * 10 */
		out[i] = (char)('0' + b % 10);
	}
	out[8] = '\0';
}

static FILE *
create_private(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		cli_fail("%s: %s%s", path, strerror(errno), errno == EEXIST ? " (PINs are never written over a file)" : "");
		return NULL;
	}
	FILE *f = fdopen(fd, "w");
	if (f == NULL)
		close(fd);
	return f;
}

int
pin_out_open(struct pin_out *po, const char *path, const char *letters)
{
	memset(po, 0, sizeof(*po));
	if (path && (po->f = create_private(path)) == NULL)
		return 1;
	if (path)
		fprintf(po->f, "id,name,pin\n");
	if (letters && (po->letters = create_private(letters)) == NULL)
		return 1;
	return 0;
}

/* A CSV field, quoted when it needs to be. */
static void
csv_field(FILE *f, const char *s)
{
	if (strpbrk(s, ",\"\n") == NULL) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void
pin_out_put(struct pin_out *po, const char *id, const char *name, const char *agency, const char *pin)
{
	if (po->f) {
		csv_field(po->f, id);
		fputc(',', po->f);
		csv_field(po->f, name);
		fprintf(po->f, ",%s\n", pin);
	} else if (po->letters == NULL) {
		printf("holder %s (%s): one-time PIN %s\n", id, name, pin);
	}
	if (po->letters)
		fprintf(po->letters,
			"%s\n%s\n\nYour coyeu signing token: %s\nYour one-time PIN: %s\n\n"
			"You will be asked to choose a new PIN the first time you use it.\n"
			"Keep this letter private; destroy it once you have changed the PIN.\n\f",
			name, agency, id, pin);
}

int
pin_out_close(struct pin_out *po)
{
	int bad = 0;
	if (po->f && fclose(po->f) != 0)
		bad = cli_fail("writing the PIN file failed");
	if (po->letters && fclose(po->letters) != 0)
		bad = cli_fail("writing the PIN letters failed");
	return bad;
}

/* ---- holders ---- */

int
holder_add_one(struct cy_conn *c, const struct holder_row *h, const char *key, struct pin_out *po,
	pthread_mutex_t *po_lock)
{
	char pin[9];
	new_pin(pin);
	struct wire_buf *b = client_begin(c, MSG_HOLDER_ADD);
	wire_put_str(b, h->id);
	wire_put_str(b, h->name);
	wire_put_str(b, h->agency);
	wire_put_str(b, h->unit ? h->unit : "");
	wire_put_bytes(b, pin, strlen(pin));
	CK_RV rv = cli_call(c);
	if (rv != CKR_OK) {
		wire_wipe(pin, sizeof(pin));
		if (rv == (CK_RV)-1)
			return 1;
		if (rv == CKR_ATTRIBUTE_VALUE_INVALID)
			return cli_fail("holder %s has a token already (or another token is labelled %s)", h->id, h->id);
		if (rv == CKR_ARGUMENTS_BAD)
			return cli_fail("holder %s: the id must be 1 to 32 letters, digits or .-_@; name and agency "
					"are required", h->id);
		return cli_fail("holder %s: %s", h->id, ckr_name(rv));
	}
	uint32_t slot = 0, session = 0;
	wire_get_u32(&c->rep, &slot);
	if (key != NULL) {
		b = client_begin(c, MSG_OPEN_SESSION);
		wire_put_u32(b, slot);
		wire_put_u32(b, CKF_SERIAL_SESSION | CKF_RW_SESSION);
		wire_put_u32(b, 0); /* any handle */
		uint8_t id[16];
		gcry_create_nonce(id, sizeof(id));
		if ((rv = cli_call(c)) != CKR_OK) {
			wire_wipe(pin, sizeof(pin));
			return rv == (CK_RV)-1 ? 1 : cli_fail("holder %s: open session: %s", h->id, ckr_name(rv));
		}
		wire_get_u32(&c->rep, &session);
		int r = cli_generate_key(c, session, key, "signing", id, sizeof(id));
		wire_put_u32(client_begin(c, MSG_CLOSE_SESSION), session);
		cli_call(c);
		if (r != 0) {
			wire_wipe(pin, sizeof(pin));
			return cli_fail("holder %s: its token exists (slot %u) but has no key", h->id, slot);
		}
	}
	if (po_lock)
		pthread_mutex_lock(po_lock);
	pin_out_put(po, h->id, h->name, h->agency, pin);
	if (po_lock)
		pthread_mutex_unlock(po_lock);
	wire_wipe(pin, sizeof(pin));
	return 0;
}

/* holder import: workers with a connection each take the rows in turn. */
struct import_job {
	const struct holder_row *rows;
	size_t nrows, next, done;
	const char *key;
	struct pin_out *po;
	pthread_mutex_t lock;
	bool failed;
	unsigned failed_line;
	struct cli_progress progress;
};

static void *
import_worker(void *arg)
{
	struct import_job *j = arg;
	struct cy_conn *conn = cli_connect();
	for (;;) {
		pthread_mutex_lock(&j->lock);
		size_t i = !j->failed && conn != NULL && j->next < j->nrows ? j->next++ : SIZE_MAX;
		if (conn == NULL && !j->failed)
			j->failed = true;
		pthread_mutex_unlock(&j->lock);
		if (i == SIZE_MAX)
			break;
		int r = holder_add_one(conn, &j->rows[i], j->key, j->po, &j->lock);
		pthread_mutex_lock(&j->lock);
		if (r != 0 && (!j->failed || j->rows[i].line < j->failed_line)) {
			j->failed = true;
			j->failed_line = j->rows[i].line;
		}
		if (r == 0) {
			j->done++;
			cli_progress_step(&j->progress, 1);
		}
		pthread_mutex_unlock(&j->lock);
	}
	client_close(conn);
	return NULL;
}

static int
holder_add(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "id", required_argument, NULL, 'i' },
		{ "name", required_argument, NULL, 'n' },
		{ "agency", required_argument, NULL, 'a' },
		{ "unit", required_argument, NULL, 'u' },
		{ "key", required_argument, NULL, 'k' },
		{ "pin-out", required_argument, NULL, 'o' },
		{ "pin-letters", required_argument, NULL, 'L' },
		{ NULL, 0, NULL, 0 },
	};
	struct holder_row h = { 0 };
	const char *key = NULL, *out = NULL, *letters = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "i:n:a:u:k:o:L:", longs, NULL)) != -1) {
		switch (c) {
		case 'i': h.id = optarg; break;
		case 'n': h.name = optarg; break;
		case 'a': h.agency = optarg; break;
		case 'u': h.unit = optarg; break;
		case 'k': key = optarg; break;
		case 'o': out = optarg; break;
		case 'L': letters = optarg; break;
		default: return cli_usage("holder add: bad option (see keymgr holder add --help)");
		}
	}
	if (optind != argc)
		return cli_usage("holder add: unexpected argument '%s'", argv[optind]);
	if (!h.id || !h.name || !h.agency)
		return cli_usage("holder add: --id, --name and --agency are required");
	struct pin_out po;
	if (pin_out_open(&po, out, letters) != 0)
		return 1;
	struct cy_conn *conn = cli_connect();
	int status = conn == NULL ? 1 : holder_add_one(conn, &h, key, &po, NULL);
	client_close(conn);
	if (pin_out_close(&po) != 0)
		status = 1;
	if (status == 0 && out)
		printf("holder %s added; one-time PIN in %s\n", h.id, out);
	return status;
}

const struct cli_cmd cmd_holder_add = {
	"holder", "add", "--id ID --name NAME --agency AGENCY [--unit UNIT] [--key TYPE] [--pin-out FILE] [--pin-letters FILE]",
	"Gives an official (a holder) a token of their own, labelled with their ID\n"
	"(a staff number: 1 to 32 letters, digits or .-_@), with a random one-time\n"
	"PIN that must be changed at first use; with --key, their first key (TYPE as\n"
	"in keymgr key generate), labelled 'signing'. The PIN goes to --pin-out (a new\n"
	"file, mode 0600; CSV id,name,pin), to --pin-letters (a letter to print), or\n"
	"else to standard output. Administrators only.",
	holder_add,
};

int
holders_read_csv(const char *path, char **bufp, struct holder_row **out, size_t *count)
{
	uint8_t *text;
	size_t len;
	if (cli_read_file(path, &text, &len) != 0)
		return 1;
	char *buf = realloc(text, len + 1);
	if (buf == NULL) {
		free(text);
		return cli_fail("out of memory");
	}
	buf[len] = '\0';
	/* Every row is read and checked before anything is created. */
	struct holder_row *rows = NULL;
	size_t nrows = 0, cap = 0;
	int status = 0;
	unsigned lineno = 0;
	for (char *line = buf, *next; line && *line && status == 0; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		size_t l = strlen(line);
		if (l && line[l - 1] == '\r')
			line[--l] = '\0';
		if (l == 0 || line[0] == '#' || (lineno == 1 && strncmp(line, "id,", 3) == 0))
			continue;
		char *f[5];
		int nf = cli_csv_split(line, f, 4);
		if (nf < 3 || nf > 4) {
			status = cli_fail("%s:%u: want id,name,agency[,unit] (quote a field that holds a comma)", path, lineno);
			break;
		}
		if (nrows == cap) {
			cap = cap ? 2 * cap : 256;
			struct holder_row *nv = realloc(rows, cap * sizeof(*rows));
			if (nv == NULL) {
				status = cli_fail("out of memory");
				break;
			}
			rows = nv;
		}
		rows[nrows] = (struct holder_row){ f[0], f[1], f[2], nf == 4 ? f[3] : "", lineno };
		for (size_t i = 0; i < nrows && status == 0; i++)
			if (strcmp(rows[i].id, f[0]) == 0)
				status = cli_fail("%s:%u: holder %s is on line %u too", path, lineno, f[0], rows[i].line);
		if (status == 0 && (f[0][0] == '\0' || strlen(f[0]) > 32 || f[1][0] == '\0' || f[2][0] == '\0'))
			status = cli_fail("%s:%u: the id (1 to 32 bytes), name and agency are required", path, lineno);
		nrows++;
	}
	if (status == 0 && nrows == 0)
		status = cli_fail("%s: no holders in it", path);
	if (status != 0) {
		free(rows);
		free(buf);
		return status;
	}
	*bufp = buf;
	*out = rows;
	*count = nrows;
	return 0;
}

static int
holder_import(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "pin-out", required_argument, NULL, 'o' },
		{ "pin-letters", required_argument, NULL, 'L' },
		{ "jobs", required_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *key = NULL, *out = NULL, *letters = NULL;
	long jobs = 2;
	char *end;
	int c;
	while ((c = getopt_long(argc, argv, "k:o:L:j:", longs, NULL)) != -1) {
		switch (c) {
		case 'k': key = optarg; break;
		case 'o': out = optarg; break;
		case 'L': letters = optarg; break;
		case 'j':
			jobs = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end || jobs < 1 || jobs > 16)
				return cli_fail("holder import: --jobs takes 1 to 16");
			break;
		default: return cli_usage("holder import: bad option (see keymgr holder import --help)");
		}
	}
	if (optind + 1 != argc)
		return cli_usage("holder import: one CSV file is required");
	if (out == NULL && letters == NULL)
		return cli_usage("holder import: --pin-out FILE or --pin-letters FILE is required (the one-time PINs)");
	const char *path = argv[optind];
	char *buf = NULL;
	struct holder_row *rows = NULL;
	size_t nrows = 0;
	int status = holders_read_csv(path, &buf, &rows, &nrows);
	struct pin_out po = { 0 };
	bool po_open = false;
	if (status == 0 && pin_out_open(&po, out, letters) != 0)
		status = 1;
	po_open = status == 0;
	/* Each job its own connection: one holder's PIN is hashed while
	 * another's token is written. */
	struct import_job job = { .rows = rows, .nrows = nrows, .key = key, .po = &po };
	cli_progress_start(&job.progress, "holder import", nrows, false);
	pthread_mutex_init(&job.lock, NULL);
	pthread_t th[16];
	long started = 0;
	if (status == 0) {
		if ((size_t)jobs > nrows)
			jobs = (long)nrows;
		for (; started < jobs; started++)
			if (pthread_create(&th[started], NULL, import_worker, &job) != 0)
				break;
		if (started == 0)
			status = cli_fail("holder import: cannot start a job");
		for (long i = 0; i < started; i++)
			pthread_join(th[i], NULL);
		cli_progress_end(&job.progress);
		if (job.failed)
			status = job.failed_line ? cli_fail("%s:%u: stopped; %zu holders were added (their PINs are in the file)",
							    path, job.failed_line, job.done)
						 : cli_fail("holder import: stopped; %zu holders were added", job.done);
	}
	pthread_mutex_destroy(&job.lock);
	size_t done = job.done;
	if (po_open && pin_out_close(&po) != 0)
		status = 1;
	if (status == 0)
		printf("%zu holders added\n", done);
	free(rows);
	free(buf);
	return status;
}

const struct cli_cmd cmd_holder_import = {
	"holder", "import", "FILE.csv (--pin-out FILE | --pin-letters FILE) [--key TYPE] [--jobs N]",
	"Adds every holder of a CSV file (id,name,agency[,unit]; a first line 'id,...'\n"
	"is a header; a field with a comma is quoted) as keymgr holder add does. The\n"
	"whole file is checked before anything is created; the one-time PINs go to\n"
	"--pin-out (CSV, a new file of mode 0600) and/or --pin-letters (one letter\n"
	"per holder, to print). --jobs N connections work at once (default 2).\n"
	"Shows progress on a terminal. Administrators only.",
	holder_import,
};

static int
holder_list(int argc, char **argv)
{
	bool json = argc == 2 && strcmp(argv[1], "--json") == 0;
	if (argc > 2 || (argc == 2 && !json))
		return cli_usage("holder list: the only option is --json");
	struct cy_conn *conn = cli_connect();
	if (conn == NULL)
		return 1;
	client_begin(conn, MSG_HOLDER_LIST);
	CK_RV rv = cli_call(conn);
	int status = 0;
	if (rv != CKR_OK) {
		status = rv == (CK_RV)-1 ? 1 : cli_fail("holder list: %s", ckr_name(rv));
		client_close(conn);
		return status;
	}
	uint32_t n = 0;
	wire_get_u32(&conn->rep, &n);
	static const struct cli_col cols[] = {
		{ "slot", "SLOT", false, 0 }, { "id", "ID", false, 0 },	  { "pin", "PIN", false, 0 },
		{ "name", "NAME", true, 0 },  { "agency", "AGENCY", true, 0 }, { "unit", "UNIT", true, 0 },
	};
	struct cli_table tab;
	cli_table_init(&tab, cols, sizeof(cols) / sizeof(cols[0]), json);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t slot = 0, flags = 0;
		char id[64], name[128], agency[192], unit[192];
		wire_get_u32(&conn->rep, &slot);
		wire_get_str_into(&conn->rep, id, sizeof(id));
		wire_get_str_into(&conn->rep, name, sizeof(name));
		wire_get_str_into(&conn->rep, agency, sizeof(agency));
		wire_get_str_into(&conn->rep, unit, sizeof(unit));
		wire_get_u32(&conn->rep, &flags);
		const char *pin = (flags & CKF_USER_PIN_LOCKED) ? "locked"
				  : (flags & CKF_USER_PIN_TO_BE_CHANGED) ? "initial" : "set";
		cli_table_add(&tab, json_pack("{s:I, s:o, s:o, s:o, s:o, s:s}", "slot", (json_int_t)slot, "id",
					      cli_json_text(id), "name", cli_json_text(name), "agency",
					      cli_json_text(agency), "unit", cli_json_text(unit), "pin", pin));
	}
	bool bad = wire_error(&conn->rep) != 0;
	client_close(conn);
	if (bad) {
		json_decref(tab.rows);
		return cli_fail("holder list: malformed reply");
	}
	return cli_table_print(&tab);
}

const struct cli_cmd cmd_holder_list = {
	"holder", "list", "[--json]",
	"Lists the holders: slot, id, the state of their PIN (initial: not yet changed;\n"
	"locked), name, agency and unit. For administrators and auditors.",
	holder_list,
};

static int
holder_reset_pin(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "id", required_argument, NULL, 'i' },
		{ "pin-out", required_argument, NULL, 'o' },
		{ "pin-letters", required_argument, NULL, 'L' },
		{ NULL, 0, NULL, 0 },
	};
	const char *id = NULL, *out = NULL, *letters = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "i:o:L:", longs, NULL)) != -1) {
		switch (c) {
		case 'i': id = optarg; break;
		case 'o': out = optarg; break;
		case 'L': letters = optarg; break;
		default: return cli_usage("holder reset-pin: bad option (see keymgr holder reset-pin --help)");
		}
	}
	if (optind != argc || id == NULL)
		return cli_usage("holder reset-pin: --id ID is required");
	struct pin_out po;
	if (pin_out_open(&po, out, letters) != 0)
		return 1;
	struct cy_conn *conn = cli_connect();
	int status = 1;
	char pin[9];
	new_pin(pin);
	if (conn != NULL) {
		struct wire_buf *b = client_begin(conn, MSG_HOLDER_RESET_PIN);
		wire_put_str(b, id);
		wire_put_bytes(b, pin, strlen(pin));
		CK_RV rv = cli_call(conn);
		if (rv == CKR_OK) {
			pin_out_put(&po, id, id, "", pin);
			status = 0;
		} else if (rv != (CK_RV)-1) {
			cli_fail("holder reset-pin: %s", rv == CKR_ARGUMENTS_BAD ? "no such holder" : ckr_name(rv));
		}
	}
	wire_wipe(pin, sizeof(pin));
	client_close(conn);
	if (pin_out_close(&po) != 0)
		status = 1;
	return status;
}

const struct cli_cmd cmd_holder_reset_pin = {
	"holder", "reset-pin", "--id ID [--pin-out FILE] [--pin-letters FILE]",
	"Gives a holder a new one-time PIN (after a lockout, a forgotten PIN), to be\n"
	"changed at first use; the failure count starts again. The administrator who\n"
	"does it cannot use the holder's keys with it. Administrators only; audited.",
	holder_reset_pin,
};

/* ---- accounts ---- */

static int
account_add(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "role", required_argument, NULL, 'r' },
		{ "uid", required_argument, NULL, 'u' },
		{ "cert", required_argument, NULL, 'C' },
		{ "new-passphrase-file", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *role = NULL, *uidarg = NULL, *file = NULL, *cert = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "r:u:f:", longs, NULL)) != -1) {
		switch (c) {
		case 'r': role = optarg; break;
		case 'u': uidarg = optarg; break;
		case 'C': cert = optarg; break;
		case 'f': file = optarg; break;
		default: return cli_usage("account add: bad option (see keymgr account add --help)");
		}
	}
	if (optind + 1 != argc || !role || (uidarg == NULL) == (cert == NULL))
		return cli_usage("account add: NAME, --role admin|auditor and --uid UID or --cert DN are required");
	if (strcmp(role, "admin") != 0 && strcmp(role, "auditor") != 0)
		return cli_fail("account add: --role is admin or auditor");
	uint32_t uid = CY_UID_NONE;
	if (uidarg != NULL && cli_parse_id(uidarg, false, &uid) != 0)
		return 1;
	char pass[300];
	int fd = file ? open(file, O_RDONLY | O_CLOEXEC) : -1;
	if (file && fd < 0)
		return cli_fail("%s: %s", file, strerror(errno));
	int r = cli_read_pin(fd >= 0 ? fd : (isatty(STDIN_FILENO) ? -1 : STDIN_FILENO), "new account's passphrase: ",
			     pass, sizeof(pass));
	if (fd >= 0)
		close(fd);
	if (r != 0)
		return cli_fail("account add: no passphrase read");
	struct cy_conn *conn = cli_connect();
	int status = 1;
	if (conn != NULL) {
		struct wire_buf *b = client_begin(conn, MSG_ACCOUNT_ADD);
		wire_put_str(b, argv[optind]);
		wire_put_str(b, role);
		wire_put_u32(b, uid);
		wire_put_str(b, cert ? cert : "");
		wire_put_bytes(b, pass, strlen(pass));
		CK_RV rv = cli_call(conn);
		if (rv == CKR_OK) {
			if (cert)
				printf("account %s (%s) added for the certificate %s\n", argv[optind], role, cert);
			else
				printf("account %s (%s) added for uid %u\n", argv[optind], role, uid);
			status = 0;
		} else if (rv == CKR_PIN_LEN_RANGE) {
			cli_fail("account add: the passphrase must be 8 to 256 bytes");
		} else if (rv == CKR_ATTRIBUTE_VALUE_INVALID && cert) {
			cli_fail("account add: '%s' is no distinguished name (write it as CN=...,O=..., a comma "
				 "inside a value as \\,), or that name or certificate has an account already", cert);
		} else if (rv == CKR_ATTRIBUTE_VALUE_INVALID) {
			cli_fail("account add: that name or uid %u has an account already", uid);
		} else if (rv == CKR_ARGUMENTS_BAD) {
			cli_fail("account add: a name is 1 to 63 letters, digits or .-_@");
		} else if (rv != (CK_RV)-1) {
			cli_fail("account add: %s", ckr_name(rv));
		}
	}
	wire_wipe(pass, sizeof(pass));
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_account_add = {
	"account", "add", "NAME --role admin|auditor (--uid UID | --cert DN) [--new-passphrase-file FILE]",
	"Adds an administrator's or auditor's account for a local user (a uid or a\n"
	"user name) or for whoever connects over TLS with a client certificate whose\n"
	"subject is DN ('CN=...,O=...'), with its own passphrase (8 to 256 bytes; asked on the terminal,\n"
	"or a line of standard input, unless in FILE), hashed like PINs and locked\n"
	"after as many wrong tries. Once an administrator account exists, root is no\n"
	"longer the administrator by itself. Administrators only.",
	account_add,
};

static int
account_list(int argc, char **argv)
{
	bool json = argc == 2 && strcmp(argv[1], "--json") == 0;
	if (argc > 2 || (argc == 2 && !json))
		return cli_usage("account list: the only option is --json");
	struct cy_conn *conn = cli_connect();
	if (conn == NULL)
		return 1;
	client_begin(conn, MSG_ACCOUNT_LIST);
	CK_RV rv = cli_call(conn);
	if (rv != CKR_OK) {
		client_close(conn);
		return rv == (CK_RV)-1 ? 1 : cli_fail("account list: %s", ckr_name(rv));
	}
	uint32_t n = 0;
	wire_get_u32(&conn->rep, &n);
	static const struct cli_col cols[] = {
		{ "name", "NAME", true, 0 },     { "role", "ROLE", false, 0 },		{ "uid", "UID", false, 0 },
		{ "failed", "FAILED", false, 0 }, { "certificate", "CERTIFICATE", true, 0 },
	};
	struct cli_table tab;
	cli_table_init(&tab, cols, sizeof(cols) / sizeof(cols[0]), json);
	for (uint32_t i = 0; i < n; i++) {
		char name[64], role[16], cert[256];
		uint32_t uid = 0, failures = 0;
		wire_get_str_into(&conn->rep, name, sizeof(name));
		wire_get_str_into(&conn->rep, role, sizeof(role));
		wire_get_u32(&conn->rep, &uid);
		wire_get_u32(&conn->rep, &failures);
		wire_get_str_into(&conn->rep, cert, sizeof(cert));
		cli_table_add(&tab, json_pack("{s:o, s:o, s:o, s:I, s:o}", "name", cli_json_text(name), "role",
					      cli_json_text(role), "uid",
					      uid != CY_UID_NONE ? json_integer((json_int_t)uid) : json_null(), "failed",
					      (json_int_t)failures, "certificate",
					      cert[0] ? cli_json_text(cert) : json_null()));
	}
	bool bad = wire_error(&conn->rep) != 0;
	client_close(conn);
	if (bad) {
		json_decref(tab.rows);
		return cli_fail("account list: malformed reply");
	}
	return cli_table_print(&tab);
}

const struct cli_cmd cmd_account_list = {
	"account", "list", "[--json]",
	"Lists the accounts: name, role, uid (or the certificate's subject), wrong\n"
	"passphrases since the last right one.",
	account_list,
};

static int
account_remove(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-')
		return cli_usage(argc == 2 ? "account remove: bad option %s (NAME is all it takes)"
					   : "account remove: NAME is required", argv[argc - 1]);
	struct cy_conn *conn = cli_connect();
	if (conn == NULL)
		return 1;
	wire_put_str(client_begin(conn, MSG_ACCOUNT_REMOVE), argv[1]);
	CK_RV rv = cli_call(conn);
	client_close(conn);
	if (rv == CKR_OK) {
		printf("account %s removed\n", argv[1]);
		return 0;
	}
	return rv == (CK_RV)-1 ? 1 : cli_fail("account remove: %s", rv == CKR_ARGUMENTS_BAD ? "no such account" : ckr_name(rv));
}

const struct cli_cmd cmd_account_remove = {
	"account", "remove", "NAME",
	"Removes an account; programs logged in with it lose its role at once.",
	account_remove,
};

/* ---- access rules ---- */

int
cli_parse_id(const char *s, bool group, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (*s && *end == '\0' && errno == 0 && v < 0xffffffffu) {
		*out = (uint32_t)v;
		return 0;
	}
	if (group) {
		struct group *g = getgrnam(s);
		if (g == NULL)
			return cli_fail("no group '%s'", s);
		*out = (uint32_t)g->gr_gid;
	} else {
		struct passwd *p = getpwnam(s);
		if (p == NULL)
			return cli_fail("no user '%s'", s);
		*out = (uint32_t)p->pw_uid;
	}
	return 0;
}

CK_RV
cli_access_set(struct cy_conn *conn, bool grant, uint32_t kind, uint32_t id, const char *name, const char *holder)
{
	struct wire_buf *b = client_begin(conn, MSG_ACCESS_SET);
	wire_put_u8(b, grant);
	wire_put_u32(b, kind);
	wire_put_u32(b, id);
	wire_put_str(b, name);
	wire_put_str(b, holder);
	return cli_call(conn);
}

static int
access_set(int argc, char **argv, bool grant)
{
	static const struct option longs[] = {
		{ "uid", required_argument, NULL, 'u' },
		{ "group", required_argument, NULL, 'g' },
		{ "cert", required_argument, NULL, 'C' },
		{ "cert-san", required_argument, NULL, 'S' },
		{ "holder", required_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	const char *uid = NULL, *group = NULL, *cert = NULL, *san = NULL, *holder = NULL;
	const char *what = grant ? "access grant" : "access revoke";
	int c;
	while ((c = getopt_long(argc, argv, "u:g:H:", longs, NULL)) != -1) {
		switch (c) {
		case 'u': uid = optarg; break;
		case 'g': group = optarg; break;
		case 'C': cert = optarg; break;
		case 'S': san = optarg; break;
		case 'H': holder = optarg; break;
		default: return cli_usage("%s: bad option (see keymgr %s --help)", what, what);
		}
	}
	if (optind != argc || !holder || (uid != NULL) + (group != NULL) + (cert != NULL) + (san != NULL) != 1)
		return cli_fail("%s: one of --uid UID, --group GROUP, --cert DN, --cert-san SAN, and --holder ID "
				"are required", what);
	/* The kinds of rule keymgrd knows (its enum store_access_kind). */
	uint32_t kind = uid ? 0 : group ? 1 : cert ? 2 : 3;
	uint32_t id = 0;
	if ((uid || group) && cli_parse_id(uid ? uid : group, group != NULL, &id) != 0)
		return 1;
	if (san != NULL && strncmp(san, "email:", 6) != 0 && strncmp(san, "dns:", 4) != 0 &&
	    strncmp(san, "uri:", 4) != 0)
		return cli_fail("%s: --cert-san is email:ADDRESS, dns:NAME or uri:URI", what);
	struct cy_conn *conn = cli_connect();
	if (conn == NULL)
		return 1;
	CK_RV rv = cli_access_set(conn, grant, kind, id, cert ? cert : san ? san : "", holder);
	client_close(conn);
	const char *may = grant ? "may use" : "may no longer use";
	if (rv == CKR_OK) {
		if (cert || san)
			printf("%s %s %s holder %s\n", cert ? "certificate" : "certificate SAN", cert ? cert : san, may,
			       holder);
		else
			printf("%s %u %s holder %s\n", group ? "group" : "uid", id, may, holder);
		return 0;
	}
	if (rv == CKR_ATTRIBUTE_VALUE_INVALID && (cert || san))
		return cli_fail("%s: '%s' is no distinguished name (write it as CN=...,O=..., a comma inside a value "
				"as \\,), or that certificate has an administrator or auditor account",
				what, cert ? cert : san);
	if (rv == CKR_ATTRIBUTE_VALUE_INVALID)
		return cli_fail("%s: uid %u has an administrator or auditor account, which never uses a holder's keys",
				what, id);
	return rv == (CK_RV)-1 ? 1 : cli_fail("%s: %s", what, rv == CKR_ARGUMENTS_BAD ? "no such holder" : ckr_name(rv));
}

static int
access_grant(int argc, char **argv)
{
	return access_set(argc, argv, true);
}

static int
access_revoke(int argc, char **argv)
{
	return access_set(argc, argv, false);
}

const struct cli_cmd cmd_access_grant = {
	"access", "grant", "(--uid UID | --group GROUP | --cert DN | --cert-san SAN) --holder ID",
	"Lets a local user (the official's own login, or a signing server's service\n"
	"account), every member of a group, or whoever connects over TLS with a\n"
	"client certificate whose subject is DN ('CN=...,O=...') or which carries\n"
	"the SAN (email:ADDRESS, dns:NAME, uri:URI) see and use a holder's token as\n"
	"its user (with the holder's PIN). A principal with no rule sees no token\n"
	"at all. Administrators only; audited.",
	access_grant,
};

const struct cli_cmd cmd_access_revoke = {
	"access", "revoke", "(--uid UID | --group GROUP | --cert DN | --cert-san SAN) --holder ID",
	"Removes an access rule; the sessions it allowed end at their next request.",
	access_revoke,
};

static int
access_list(int argc, char **argv)
{
	bool json = argc == 2 && strcmp(argv[1], "--json") == 0;
	if (argc > 2 || (argc == 2 && !json))
		return cli_usage("access list: the only option is --json");
	struct cy_conn *conn = cli_connect();
	if (conn == NULL)
		return 1;
	client_begin(conn, MSG_ACCESS_LIST);
	CK_RV rv = cli_call(conn);
	if (rv != CKR_OK) {
		client_close(conn);
		return rv == (CK_RV)-1 ? 1 : cli_fail("access list: %s", ckr_name(rv));
	}
	uint32_t n = 0;
	wire_get_u32(&conn->rep, &n);
	static const struct cli_col cols[] = {
		{ "principal", "PRINCIPAL", true, 0 },
		{ "holder", "HOLDER", false, 0 },
		{ "name", "NAME", true, 0 },
	};
	static const char *const kinds[] = { "uid", "group", "cert", "san" };
	struct cli_table tab;
	cli_table_init(&tab, cols, sizeof(cols) / sizeof(cols[0]), json);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t kind = 0;
		uint32_t id = 0;
		char holder[64], name[128], who[300], rname[256];
		wire_get_u32(&conn->rep, &kind);
		wire_get_u32(&conn->rep, &id);
		wire_get_str_into(&conn->rep, rname, sizeof(rname));
		wire_get_str_into(&conn->rep, holder, sizeof(holder));
		bool group = kind == 1;
		wire_get_str_into(&conn->rep, name, sizeof(name));
		const char *nm = NULL;
		if (kind >= 2) {
			/* a certificate's subject or SAN: no local name */
		} else if (group) {
			struct group *g = getgrgid((gid_t)id);
			nm = g ? g->gr_name : NULL;
		} else {
			struct passwd *p = getpwuid((uid_t)id);
			nm = p ? p->pw_name : NULL;
		}
		if (kind >= 2)
			snprintf(who, sizeof(who), "%s %s", kind == 2 ? "cert" : "san", rname);
		else
			snprintf(who, sizeof(who), "%s %u%s%.16s%s", group ? "group" : "uid", id, nm ? " (" : "",
				 nm ? nm : "", nm ? ")" : "");
		json_t *row = json_pack("{s:o, s:o, s:o, s:s}", "principal", cli_json_text(who), "holder",
					cli_json_text(holder), "name", cli_json_text(name), "kind", kinds[kind < 4 ? kind : 0]);
		if (row != NULL && kind < 2)
			json_object_set_new(row, kind == 1 ? "gid" : "uid", json_integer((json_int_t)id));
		else if (row != NULL)
			json_object_set_new(row, "value", cli_json_text(rname));
		cli_table_add(&tab, row);
	}
	bool bad = wire_error(&conn->rep) != 0;
	client_close(conn);
	if (bad) {
		json_decref(tab.rows);
		return cli_fail("access list: malformed reply");
	}
	return cli_table_print(&tab);
}

const struct cli_cmd cmd_access_list = {
	"access", "list", "[--json]",
	"Lists the access rules: which uid or group may use which holder's token.",
	access_list,
};
