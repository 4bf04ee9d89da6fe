/*
 * keymgr.c - the administrator's CLI: global options, the command table,
 * and the helpers of cli.h.
 *
 *   keymgr [--socket PATH] <group> <command> [options]
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <gcrypt.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "ckr.h"
#include "attr.h"
#include "cli.h"
#include "cy_err.h"
#include "paths.h"

const char *cli_socket;
const char *cli_passphrase_file;

static const struct cli_cmd *const commands[] = {
	&cmd_token_init,
	&cmd_token_list,
	&cmd_token_reset_so_pin,
	&cmd_token_set_pin,
	&cmd_token_init_pin,
	&cmd_token_delete,
	&cmd_unlock,
	&cmd_lock,
	&cmd_audit_list,
	&cmd_audit_verify,
	&cmd_backup,
	&cmd_cert_export,
	&cmd_key_pubkey,
	&cmd_backup_verify,
	&cmd_restore,
	&cmd_status,
	&cmd_key_generate,
	&cmd_key_list,
	&cmd_key_retire,
	&cmd_key_revoke,
	&cmd_key_destroy,
	&cmd_key_rotate,
	&cmd_key_show,
	&cmd_key_csr,
	&cmd_key_import,
	&cmd_cert_import,
	&cmd_inventory_list,
	&cmd_inventory_report,
	&cmd_cert_issue,
	&cmd_cert_revoke,
	&cmd_crl_generate,
	&cmd_crl_export,
	&cmd_workstation_enroll,
	&cmd_ca_init,
	&cmd_holder_add,
	&cmd_holder_import,
	&cmd_holder_list,
	&cmd_holder_reset_pin,
	&cmd_holder_split,
	&cmd_account_add,
	&cmd_account_list,
	&cmd_account_remove,
	&cmd_access_grant,
	&cmd_access_revoke,
	&cmd_access_list,
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* "keymgr: " and the message, one line on stderr. */
static void
say(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static void
say(const char *fmt, va_list ap)
{
	fputs("keymgr: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int
cli_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say(fmt, ap);
	va_end(ap);
	return 1;
}

int
cli_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say(fmt, ap);
	va_end(ap);
	return 2;
}

int
cli_help(const struct cli_cmd *c)
{
	printf("usage: keymgr [--socket PATH] [--passphrase-file FILE] %s%s%s %s\n\n%s\n", c->group, c->name[0] ? " " : "",
	       c->name, c->usage, c->help);
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: keymgr [--server URI | --socket PATH] [--passphrase-file FILE] <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %s%s%s %s\n", commands[i]->group, commands[i]->name[0] ? " " : "", commands[i]->name,
			commands[i]->usage);
	fprintf(f, "\n'keymgr <command> --help' describes a command. The daemon is --server\n"
		   "(tls://HOST:PORT or unix:PATH, a list tried in order) or --socket, else\n"
		   "$COYEU_SERVER or $COYEU_SOCKET, else [client] server or socket in %s,\n"
		   "else the default socket; over TLS with [client] tls_ca, tls_cert, tls_key.\n\n"
		   "Administrators and auditors give their account's passphrase with\n"
		   "--passphrase-file FILE (its first line; \"-\": asked on the terminal, or a\n"
		   "line of standard input), else $KEYMGR_PASSPHRASE_FILE. Root on a store with\n"
		   "no administrator account is the administrator without one.\n", paths_config_file());
}

/* Gives keymgrd the passphrase of the caller's account (see usage). */
/* A passphrase asked for ("-") once, for every connection of the command
 * (holder import --jobs opens several, from threads); wiped at exit. */
static char asked[300];
static int asked_state; /* 0: not yet, 1: read, -1: none came */
static pthread_mutex_t asked_lock = PTHREAD_MUTEX_INITIALIZER;

static void
wipe_asked(void)
{
	wire_wipe(asked, sizeof(asked));
}

static int
account_login(struct cy_conn *c)
{
	char pass[300];
	int fd = -1, r;
	const char *f = cli_passphrase_file;
	if (strcmp(f, "-") == 0) {
		pthread_mutex_lock(&asked_lock);
		if (asked_state == 0) {
			asked_state = cli_read_pin(isatty(STDIN_FILENO) ? -1 : STDIN_FILENO, "passphrase: ", asked,
						   sizeof(asked)) == 0 ? 1 : -1;
			atexit(wipe_asked);
		}
		r = asked_state == 1 ? 0 : -1;
		memcpy(pass, asked, sizeof(pass));
		pthread_mutex_unlock(&asked_lock);
	} else {
		if ((fd = open(f, O_RDONLY | O_CLOEXEC)) < 0)
			return cli_fail("%s: %s", f, strerror(errno));
		r = cli_read_pin(fd, "", pass, sizeof(pass));
		close(fd);
	}
	if (r != 0)
		return cli_fail("no passphrase read from %s", strcmp(f, "-") == 0 ? "the terminal or standard input" : f);
	wire_put_bytes(client_begin(c, MSG_ACCOUNT_LOGIN), pass, strlen(pass));
	wire_wipe(pass, sizeof(pass));
	CK_RV rv = cli_call(c);
	if (rv == CKR_OK)
		return 0;
	if (rv == (CK_RV)-1)
		return 1;
	if (rv == CKR_USER_TYPE_INVALID)
		return cli_fail("uid %u has no account (keymgr account add)", (unsigned)getuid());
	if (rv == CKR_PIN_LOCKED)
		return cli_fail("account locked after too many wrong passphrases");
	return cli_fail("account login: %s", rv == CKR_PIN_INCORRECT ? "wrong passphrase" : ckr_name(rv));
}

struct cy_conn *
cli_connect(void)
{
	char path[PATH_MAX];
	uint8_t app[PROTO_APP_ID_LEN];
	struct cy_conn *c = NULL;
	int r;
	if (cli_socket != NULL)
		r = snprintf(path, sizeof(path), "%s", cli_socket) >= (int)sizeof(path) ? CY_ERR_TOO_LARGE : 0;
	else
		r = paths_client_server(path, sizeof(path));
	if (r != 0) {
		cli_fail("cannot find the keymgrd socket: %s", cy_strerror(r));
		return NULL;
	}
	gcry_create_nonce(app, sizeof(app));
	if ((r = client_open(path, app, &c)) != 0) {
		cli_fail("cannot reach keymgrd at %s: %s", path, cy_strerror(r));
		return NULL;
	}
	if (cli_passphrase_file == NULL)
		cli_passphrase_file = getenv("KEYMGR_PASSPHRASE_FILE");
	if (cli_passphrase_file != NULL && account_login(c) != 0) {
		client_close(c);
		return NULL;
	}
	return c;
}

CK_RV
cli_call(struct cy_conn *c)
{
	uint32_t rv;
	int r = client_call(c, &rv);
	if (r != 0) {
		cli_fail("keymgrd connection failed: %s", cy_strerror(r));
		return (CK_RV)-1;
	}
	/* The one refusal every command can meet: say what would do. */
	if (rv == CKR_ACTION_PROHIBITED)
		fprintf(stderr, "keymgr: refused: this needs the %s role (an account's --passphrase-file)\n",
			c->type == MSG_AUDIT_LIST || c->type == MSG_AUDIT_VERIFY || c->type == MSG_HOLDER_LIST ||
			c->type == MSG_ACCESS_LIST || c->type == MSG_ACCOUNT_LIST ? "administrator or auditor"
										    : "administrator");
	return rv;
}

void
tmpl_init(struct cli_tmpl *t)
{
	memset(t, 0, sizeof(*t));
}

void
tmpl_free(struct cli_tmpl *t)
{
	for (CK_ULONG i = 0; i < t->n; i++) {
		wire_wipe(t->v[i].pValue, t->v[i].ulValueLen);
		free(t->v[i].pValue);
	}
	t->n = 0;
}

void
tmpl_bytes(struct cli_tmpl *t, CK_ATTRIBUTE_TYPE type, const void *p, size_t n)
{
	void *copy = malloc(n ? n : 1);
	if (t->n == sizeof(t->v) / sizeof(t->v[0]) || copy == NULL) {
		free(copy);
		t->failed = true;
		return;
	}
	if (n)
		memcpy(copy, p, n);
	t->v[t->n++] = (CK_ATTRIBUTE){ type, copy, n };
}

void
tmpl_bool(struct cli_tmpl *t, CK_ATTRIBUTE_TYPE type, bool v)
{
	CK_BBOOL b = v ? CK_TRUE : CK_FALSE;
	tmpl_bytes(t, type, &b, sizeof(b));
}

void
tmpl_ulong(struct cli_tmpl *t, CK_ATTRIBUTE_TYPE type, uint64_t v)
{
	CK_ULONG u = (CK_ULONG)v;
	tmpl_bytes(t, type, &u, sizeof(u));
}

CK_RV
tmpl_put(struct cli_tmpl *t, struct wire_buf *b)
{
	return t->failed ? CKR_HOST_MEMORY : attr_put_template(b, t->v, t->n, true);
}

CK_RV
cli_tokens(struct cy_conn *c, struct cli_token **out, uint32_t *n)
{
	uint32_t cnt = 0;
	wire_put_u8(client_begin(c, MSG_SLOT_LIST), 1);
	CK_RV rv = cli_call(c);
	if (rv != CKR_OK)
		return rv;
	wire_get_u32(&c->rep, &cnt);
	uint32_t *slots = calloc(cnt ? cnt : 1, sizeof(*slots));
	struct cli_token *t = calloc(cnt ? cnt : 1, sizeof(*t));
	if (slots == NULL || t == NULL) {
		free(slots);
		free(t);
		return CKR_HOST_MEMORY;
	}
	for (uint32_t i = 0; i < cnt; i++)
		wire_get_u32(&c->rep, &slots[i]);
	for (uint32_t i = 0; i < cnt && rv == CKR_OK; i++) {
		char skip[33];
		t[i].slot = slots[i];
		wire_put_u32(client_begin(c, MSG_TOKEN_INFO), slots[i]);
		if ((rv = cli_call(c)) != CKR_OK)
			break;
		wire_get_str_into(&c->rep, t[i].label, sizeof(t[i].label));
		wire_get_str_into(&c->rep, skip, sizeof(skip));
		wire_get_str_into(&c->rep, skip, sizeof(skip));
		wire_get_str_into(&c->rep, t[i].serial, sizeof(t[i].serial));
		wire_get_u32(&c->rep, &t[i].flags);
	}
	free(slots);
	if (rv != CKR_OK) {
		free(t);
		return rv;
	}
	*out = t;
	*n = cnt;
	return CKR_OK;
}

/* One line from fd (the newline dropped) into buf; -1 on error or when
 * it is empty. */
static int
read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;
	while (n + 1 < len) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || c == '\n')
			break;
		buf[n++] = c;
	}
	buf[n] = '\0';
	return n > 0 ? 0 : -1;
}

int
cli_read_pin(int fd, const char *prompt, char *pin, size_t len)
{
	if (fd >= 0)
		return read_line(fd, pin, len);
	int tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (tty < 0)
		return -1;
	struct termios old, quiet;
	bool restore = tcgetattr(tty, &old) == 0;
	if (restore) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(tty, TCSAFLUSH, &quiet);
	}
	dprintf(tty, "%s", prompt);
	int r = read_line(tty, pin, len);
	dprintf(tty, "\n");
	if (restore)
		tcsetattr(tty, TCSAFLUSH, &old);
	close(tty);
	return r;
}

/* Splits one CSV line (RFC 4180 quoting, in place) into at most max
 * fields; the count, or -1 when a quote is not closed. */
int
cli_csv_split(char *line, char **fields, int max)
{
	int n = 0;
	char *p = line;
	for (;;) {
		if (n == max)
			return n + 1;
		char *out = p;
		fields[n++] = p;
		if (*p == '"') {
			char *r = p + 1;
			for (;;) {
				if (*r == '\0')
					return -1;
				if (*r == '"' && r[1] == '"') {
					*out++ = '"';
					r += 2;
				} else if (*r == '"') {
					r++;
					break;
				} else {
					*out++ = *r++;
				}
			}
			if (*r != ',' && *r != '\0')
				return -1;
			*out = '\0';
			if (*r == '\0')
				return n;
			p = r + 1;
		} else {
			char *comma = strchr(p, ',');
			if (comma == NULL)
				return n;
			*comma = '\0';
			p = comma + 1;
		}
	}
}

int
cli_dn_check(const char *what, const char *dn)
{
	gnutls_x509_crq_t crq;
	const char *err = NULL;
	if (gnutls_x509_crq_init(&crq) < 0)
		return cli_fail("%s: out of memory", what);
	int e = gnutls_x509_crq_set_dn(crq, dn, &err);
	gnutls_x509_crq_deinit(crq);
	if (e >= 0)
		return 0;
	int at = err != NULL && err >= dn && err <= dn + strlen(dn) ? (int)(err - dn) : -1;
	return cli_fail("%s: the subject '%s' is not a DN%s%.*s%s: a comma, plus sign, quote, backslash, <, >, ; "
			"or = inside a value is part of the value only when a backslash comes before it (RFC 4514: "
			"write it as \\, so O=Sở Văn hóa\\, Thể thao và Du lịch), or give the parts apart with "
			"--cn, --ou, --o, --l, --st and --c, which need no escaping",
			what, dn, at >= 0 ? " (it goes wrong near '" : "", at >= 0 ? 24 : 0, at >= 0 ? dn + at : "",
			at >= 0 ? "')" : "");
}

int
cli_dn_append(char *dn, size_t len, const char *type, const char *value)
{
	size_t o = strlen(dn);
	if (o > 0 && o + 1 < len)
		dn[o++] = ',';
	for (const char *t = type; *t && o + 1 < len; t++)
		dn[o++] = *t;
	if (o + 1 < len)
		dn[o++] = '=';
	size_t n = strlen(value);
	for (size_t i = 0; i < n && o + 2 < len; i++) {
		char ch = value[i];
		/* RFC 4514 2.4: these anywhere, # and space at the start, space at the end. */
		if (strchr(",+\"\\<>;=", ch) != NULL || (i == 0 && (ch == '#' || ch == ' ')) || (i == n - 1 && ch == ' '))
			dn[o++] = '\\';
		dn[o++] = ch;
	}
	if (o + 1 >= len)
		return -1;
	dn[o] = '\0';
	return 0;
}

json_t *
cli_json_text(const char *s)
{
	json_t *j = json_string(s);
	if (j != NULL)
		return j;
	/* Not UTF-8: keep what is, mark what is not. */
	size_t n = strlen(s), o = 0;
	char *fixed = malloc(3 * n + 1);
	if (fixed == NULL)
		return json_string("");
	for (size_t i = 0; i < n;) {
		const unsigned char *p = (const unsigned char *)s + i;
		size_t len = p[0] < 0x80 ? 1 : (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3 : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
		bool ok = len > 0 && i + len <= n;
		for (size_t k = 1; ok && k < len; k++)
			ok = (p[k] & 0xc0) == 0x80;
		if (ok && len > 1) {
			/* Overlong forms, surrogates and beyond U+10FFFF are not UTF-8 either. */
			char one[5] = { 0 };
			memcpy(one, p, len);
			json_t *t = json_string(one);
			ok = t != NULL;
			json_decref(t);
		}
		if (ok) {
			memcpy(fixed + o, p, len);
			o += len;
			i += len;
		} else {
			memcpy(fixed + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	fixed[o] = '\0';
	j = json_string(fixed);
	free(fixed);
	return j != NULL ? j : json_string("");
}

int
cli_json_print(json_t *o, bool pretty)
{
	if (o == NULL)
		return cli_fail("cannot build the JSON output (out of memory)");
	char *text = json_dumps(o, (pretty ? JSON_INDENT(2) : JSON_COMPACT) | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (text == NULL)
		return cli_fail("cannot write the JSON output");
	int r = puts(text) < 0 ? cli_fail("write error") : 0;
	free(text);
	return r;
}

/* PINs read for "-": at most one SO and one user PIN per command, wiped
 * at exit. */
static char read_pins[2][128];
static int nread_pins;

static void
wipe_pins(void)
{
	wire_wipe(read_pins, sizeof(read_pins));
}

const char *
cli_pin_arg(const char *arg, const char *what)
{
	if (strcmp(arg, "-") != 0)
		return arg;
	char prompt[64];
	snprintf(prompt, sizeof(prompt), "%s: ", what);
	if (nread_pins == 2) {
		cli_fail("more than two PINs asked for");
		exit(1);
	}
	if (nread_pins++ == 0)
		atexit(wipe_pins);
	char *pin = read_pins[nread_pins - 1];
	if (cli_read_pin(isatty(STDIN_FILENO) ? -1 : STDIN_FILENO, prompt, pin, sizeof(read_pins[0])) != 0) {
		cli_fail("no %s read (from the terminal, or a line on standard input)", what);
		exit(1);
	}
	return pin;
}

int
cli_find_token(struct cy_conn *c, const char *name, uint32_t *slot)
{
	struct cli_token *t = NULL;
	uint32_t n = 0, by_label = 0, by_serial = 0;
	CK_RV rv = cli_tokens(c, &t, &n);
	if (rv != CKR_OK)
		return rv == (CK_RV)-1 ? 1 : cli_fail("cannot list tokens: %s", ckr_name(rv));
	for (uint32_t i = 0; i < n; i++) {
		if (!(t[i].flags & CKF_TOKEN_INITIALIZED))
			continue;
		if (strcmp(t[i].label, name) == 0 && by_label++ == 0)
			*slot = t[i].slot;
	}
	for (uint32_t i = 0; i < n && by_label == 0; i++)
		if ((t[i].flags & CKF_TOKEN_INITIALIZED) && strcasecmp(t[i].serial, name) == 0 && by_serial++ == 0)
			*slot = t[i].slot;
	int r = 0;
	if (by_label > 1) {
		/* A store from before labels were unique: never guess which. */
		fprintf(stderr, "keymgr: %u tokens are labelled '%s': name one by its serial:", by_label, name);
		for (uint32_t i = 0; i < n; i++)
			if ((t[i].flags & CKF_TOKEN_INITIALIZED) && strcmp(t[i].label, name) == 0)
				fprintf(stderr, " %s", t[i].serial);
		fputc('\n', stderr);
		r = 1;
	} else if (by_label == 0 && by_serial == 0) {
		r = cli_fail("no token labelled '%s' (nor with that serial)", name);
	}
	free(t);
	return r;
}

int
cli_open(struct cy_conn *c, const char *label, long slot, bool rw, const char *pin, uint32_t *session)
{
	uint32_t found = (uint32_t)slot;
	if (label != NULL && cli_find_token(c, label, &found) != 0)
		return 1;
	if (label == NULL) {
		struct cli_token *t = NULL;
		uint32_t n = 0;
		bool ok = false;
		CK_RV rv = cli_tokens(c, &t, &n);
		if (rv != CKR_OK)
			return rv == (CK_RV)-1 ? 1 : cli_fail("cannot list tokens: %s", ckr_name(rv));
		for (uint32_t i = 0; i < n; i++)
			ok |= (t[i].flags & CKF_TOKEN_INITIALIZED) && slot == (long)t[i].slot;
		free(t);
		if (!ok)
			return cli_fail("no token in slot %ld", slot);
	}
	CK_RV rv;
	struct wire_buf *b = client_begin(c, MSG_OPEN_SESSION);
	wire_put_u32(b, found);
	wire_put_u32(b, CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0));
	wire_put_u32(b, 0); /* any handle */
	if ((rv = cli_call(c)) != CKR_OK)
		return rv == (CK_RV)-1 ? 1 : cli_fail("cannot open a session: %s", ckr_name(rv));
	wire_get_u32(&c->rep, session);
	if (pin == NULL)
		return 0;
	b = client_begin(c, MSG_LOGIN);
	wire_put_u32(b, *session);
	wire_put_u32(b, CKU_USER);
	wire_put_bytes(b, pin, strlen(pin));
	if ((rv = cli_call(c)) != CKR_OK)
		return rv == (CK_RV)-1 ? 1 : cli_fail("login to '%s' failed: %s", label ? label : "the token",
							 cli_explain(rv, "PIN"));
	return 0;
}

int
cli_parse_hex(const char *s, uint8_t *out, size_t max, size_t *n)
{
	size_t len = strlen(s);
	if (len == 0 || len % 2 || len / 2 > max)
		return -1;
	for (size_t i = 0; i < len / 2; i++) {
		unsigned v;
		if (!isxdigit((unsigned char)s[2 * i]) || !isxdigit((unsigned char)s[2 * i + 1]) ||
		    sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	*n = len / 2;
	return 0;
}

/* Reads a FIND or FIND_INIT record list of handles (with their summaries)
 * into *out, growing it; *got is how many came. */
static CK_RV
read_found(struct cy_conn *c, uint32_t **out, uint32_t *n, size_t *cap, uint32_t *got)
{
	wire_get_u32(&c->rep, got);
	if (*n + (size_t)*got > *cap) {
		*cap = 2 * (*n + (size_t)*got) + 16;
		uint32_t *nv = realloc(*out, *cap * sizeof(**out));
		if (nv == NULL)
			return CKR_HOST_MEMORY;
		*out = nv;
	}
	for (uint32_t i = 0; i < *got; i++) {
		uint32_t summary;
		wire_get_u32(&c->rep, &(*out)[(*n)++]);
		for (int k = 0; k < 3; k++) /* class, key type, operations */
			wire_get_u32(&c->rep, &summary);
	}
	return CKR_OK;
}

CK_RV
cli_find_all(struct cy_conn *c, uint32_t session, struct cli_tmpl *t, uint32_t **out, uint32_t *n)
{
	struct wire_buf *b = client_begin(c, MSG_FIND_INIT);
	wire_put_u32(b, session);
	CK_RV rv = t ? tmpl_put(t, b) : (wire_put_u32(b, 0), CKR_OK);
	wire_put_u32(b, PROTO_MAX_LIST);
	if (rv == CKR_OK)
		rv = cli_call(c);
	*out = NULL;
	*n = 0;
	size_t cap = 0;
	uint8_t done = 1;
	uint32_t got = 0;
	if (rv == CKR_OK) {
		wire_get_u8(&c->rep, &done);
		rv = read_found(c, out, n, &cap, &got);
	}
	/* C_FindObjects in pieces until the search is over: every object,
	 * however many the token has. */
	while (rv == CKR_OK && !done && got == PROTO_MAX_LIST) {
		b = client_begin(c, MSG_FIND);
		wire_put_u32(b, session);
		wire_put_u32(b, PROTO_MAX_LIST);
		if ((rv = cli_call(c)) == CKR_OK)
			rv = read_found(c, out, n, &cap, &got);
	}
	if (rv != (CK_RV)-1 && !done) {
		wire_put_u32(client_begin(c, MSG_FIND_FINAL), session);
		CK_RV fin = cli_call(c);
		if (rv == CKR_OK && fin != CKR_OK)
			rv = fin;
	}
	if (rv != CKR_OK) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rv;
}

const char *
cli_explain(CK_RV rv, const char *pin)
{
	static char line[512];
	const char *why;
	switch (rv) {
	case CKR_PIN_INCORRECT: why = "wrong %s; each wrong one counts towards the lock"; break;
	case CKR_PIN_LOCKED:
		why = "the %s is locked after too many wrong tries; an administrator can give a new one (keymgr holder "
		      "reset-pin for a holder's token, keymgr token init-pin with the SO PIN otherwise)";
		break;
	case CKR_PIN_EXPIRED: why = "the %s is a one-time PIN: change it first (keymgr token set-pin)"; break;
	case CKR_PIN_LEN_RANGE: why = "the %s is too short or too long for this token"; break;
	case CKR_PIN_INVALID: why = "the %s has characters this token does not take"; break;
	case CKR_USER_PIN_NOT_INITIALIZED:
		why = "the token has no user PIN yet (its initialisation did not finish): set one with keymgr token "
		      "init-pin --so-pin (%s)";
		break;
	case CKR_ACTION_PROHIBITED: why = "this needs the administrator role (give --passphrase-file)%.0s"; break;
	case CKR_USER_TYPE_INVALID: why = "this token has no such user (%s)"; break;
	default: why = NULL; break;
	}
	if (why == NULL)
		return ckr_name(rv);
	char text[400];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(text, sizeof(text), why, pin);
#pragma GCC diagnostic pop
	snprintf(line, sizeof(line), "%s (%s)", text, ckr_name(rv));
	return line;
}

const char *
cli_reason_name(uint32_t code)
{
	/* RFC 5280 CRLReason; 7 is not used. */
	static const char *const names[] = {
		[0] = "unspecified", [1] = "keyCompromise", [2] = "cACompromise", [3] = "affiliationChanged",
		[4] = "superseded", [5] = "cessationOfOperation", [6] = "certificateHold",
		[8] = "removeFromCRL", [9] = "privilegeWithdrawn", [10] = "aACompromise",
	};
	return code < sizeof(names) / sizeof(names[0]) ? names[code] : NULL;
}

int
cli_reason_code(const char *what, const char *name, uint32_t *code)
{
	for (uint32_t i = 0; i <= 10; i++)
		if (cli_reason_name(i) && strcmp(cli_reason_name(i), name) == 0) {
			*code = i;
			return 0;
		}
	return cli_fail("%s: unknown reason '%s' (RFC 5280 names, e.g. keyCompromise)", what, name);
}

int
cli_read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;
	if (f == NULL)
		return cli_fail("%s: %s", path, strerror(errno));
	for (;;) {
		if (n == cap) {
			cap = cap ? 2 * cap : 8192;
			uint8_t *nb = cap > 16 * 1024 * 1024 ? NULL : realloc(buf, cap);
			if (nb == NULL) {
				fclose(f);
				free(buf);
				return cli_fail("%s: too large", path);
			}
			buf = nb;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	bool failed = ferror(f);
	fclose(f);
	if (failed) {
		free(buf);
		return cli_fail("%s: read error", path);
	}
	*out = buf;
	*len = n;
	return 0;
}

int
cli_read_der(const char *path, const char *kind, uint8_t **out, size_t *len)
{
	uint8_t *buf;
	size_t n;
	if (cli_read_file(path, &buf, &n) != 0)
		return 1;
	if (n > 0 && buf[0] == 0x30) {
		*out = buf;
		*len = n;
		return 0;
	}
	gnutls_datum_t in = { buf, (unsigned)n }, der = { NULL, 0 };
	int g = gnutls_pem_base64_decode2(kind, &in, &der);
	if (g < 0) {
		/* certtool writes requests as "NEW CERTIFICATE REQUEST". */
		char alt[64];
		snprintf(alt, sizeof(alt), "NEW %s", kind);
		g = gnutls_pem_base64_decode2(alt, &in, &der);
	}
	free(buf);
	if (g < 0 || (*out = malloc(der.size ? der.size : 1)) == NULL) {
		gnutls_free(der.data);
		return cli_fail("%s: no %s in it (PEM or DER)", path, kind);
	}
	memcpy(*out, der.data, der.size);
	*len = der.size;
	gnutls_free(der.data);
	return 0;
}

int
cli_write_pem(const char *path, const char *kind, const uint8_t *der, size_t len)
{
	gnutls_datum_t in = { (uint8_t *)der, (unsigned)len }, pem = { NULL, 0 };
	if (kind != NULL && gnutls_pem_base64_encode2(kind, &in, &pem) < 0)
		return cli_fail("cannot encode %s", kind);
	const gnutls_datum_t *w = kind != NULL ? &pem : &in;
	FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
	int status = 0;
	if (f == NULL)
		status = cli_fail("%s: %s", path, strerror(errno));
	else if (fwrite(w->data, 1, w->size, f) != w->size || (f != stdout ? fclose(f) : fflush(f)) != 0)
		status = cli_fail("%s: write error", path);
	gnutls_free(pem.data);
	return status;
}

int
main(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "server", required_argument, NULL, 's' },
		{ "passphrase-file", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	setlocale(LC_CTYPE, "");
	if (!gcry_check_version(GCRYPT_VERSION))
		return cli_fail("libgcrypt is too old");
	gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
	gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
	/* "+": stop at the first command word; the command parses the rest. */
	while ((c = getopt_long(argc, argv, "+s:P:hV", longs, NULL)) != -1) {
		switch (c) {
		case 's': cli_socket = optarg; break;
		case 'P': cli_passphrase_file = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("keymgr %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind < 1) {
		usage(stderr);
		return 2;
	}
	/* "GROUP NAME ...", or a command of one word ("status", "backup"),
	 * whose argv[0] is then the word itself. */
	const char *group = argv[optind], *name = optind + 1 < argc ? argv[optind + 1] : "";
	const struct cli_cmd *cmd = NULL;
	int skip = 1;
	for (size_t i = 0; i < NCOMMANDS && cmd == NULL; i++)
		if (strcmp(commands[i]->group, group) == 0 && commands[i]->name[0] && strcmp(commands[i]->name, name) == 0)
			cmd = commands[i];
	for (size_t i = 0; i < NCOMMANDS && cmd == NULL; i++)
		if (strcmp(commands[i]->group, group) == 0 && !commands[i]->name[0])
			cmd = commands[i], skip = 0;
	if (cmd != NULL) {
		/* The command sees argv[0] = its name, then its options. */
		int cargc = argc - optind - skip;
		char **cargv = argv + optind + skip;
		for (int j = 1; j < cargc; j++)
			if (strcmp(cargv[j], "--help") == 0 || strcmp(cargv[j], "-h") == 0)
				return cli_help(cmd);
		optind = 0;
		return cmd->run(cargc, cargv);
	}
	/* "keymgr key --help" (or "keymgr key"): the commands of the group. */
	bool known = false;
	for (size_t i = 0; i < NCOMMANDS; i++)
		known |= strcmp(commands[i]->group, group) == 0;
	if (known && (!name[0] || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)) {
		printf("usage: keymgr %s <command> [options]; 'keymgr %s <command> --help' describes one\n\n", group, group);
		for (size_t i = 0; i < NCOMMANDS; i++)
			if (strcmp(commands[i]->group, group) == 0)
				printf("  %s %s %s\n", commands[i]->group, commands[i]->name, commands[i]->usage);
		return name[0] ? 0 : 2;
	}
	if (!name[0])
		return cli_usage("unknown command '%s' (see keymgr --help)", group);
	return cli_usage("unknown command '%s %s' (see keymgr --help)", group, name);
}
