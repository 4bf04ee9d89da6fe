/*
 * cli.h - the keymgr command line: the command table and the helpers its
 * commands share (a connection to keymgrd, requests, templates, errors).
 *
 * Each command lives in its own cmd_*.c and registers one struct cli_cmd.
 * A command returns the process exit status; it reports failure with
 * cli_fail(), which prints one line on stderr.
 */
#ifndef CLI_H
#define CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "cy_pkcs11.h"

struct cli_cmd {
	const char *group;  /* "token" */
	const char *name;   /* "init"; "" for a command of one word ("status") */
	const char *usage;  /* the arguments after "keymgr token init" */
	const char *help;   /* one paragraph */
	int (*run)(int argc, char **argv);
};

extern const struct cli_cmd cmd_token_init, cmd_token_list, cmd_key_generate, cmd_key_list,
	cmd_unlock, cmd_lock, cmd_audit_list, cmd_audit_verify, cmd_key_retire, cmd_key_revoke,
	cmd_key_destroy, cmd_cert_import, cmd_inventory_list, cmd_inventory_report, cmd_key_rotate,
	cmd_key_show, cmd_cert_issue, cmd_crl_generate, cmd_key_csr, cmd_ca_init, cmd_holder_add,
	cmd_holder_import, cmd_holder_list, cmd_holder_reset_pin, cmd_account_add, cmd_account_list,
	cmd_account_remove, cmd_access_grant, cmd_access_revoke, cmd_access_list, cmd_holder_split, cmd_token_reset_so_pin,
	cmd_workstation_enroll, cmd_cert_revoke, cmd_backup, cmd_backup_verify, cmd_restore, cmd_status,
	cmd_cert_export, cmd_key_pubkey, cmd_token_set_pin, cmd_token_init_pin, cmd_key_import,
	cmd_token_delete, cmd_crl_export;

/* The socket given with --socket, or NULL to resolve it the usual way. */
extern const char *cli_socket;
/* --passphrase-file: cli_connect logs in to the caller's account with it. */
extern const char *cli_passphrase_file;

/* Prints "keymgr: <what>" on stderr; returns 1 (the exit status). */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A sentence for the codes people meet (a wrong or locked PIN, a token
 * whose init did not finish), the code after it; pin names the PIN ("SO
 * PIN"). Else the code's name. A static buffer. */
const char *cli_explain(CK_RV rv, const char *pin);
/* The same for a usage error (a bad option, a missing argument): returns 2,
 * the exit status keymgr(1) gives them. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints a command's usage and help on stdout; returns 0. */
int cli_help(const struct cli_cmd *c);

/* Connects to keymgrd; on failure prints why and returns NULL. */
struct cy_conn *cli_connect(void);
/*
 * Sends c->req; returns the daemon's CK_RV, or (CK_RV)-1 after printing a
 * line when the connection failed. On CKR_OK the reply fields are ready
 * in c->rep.
 */
CK_RV cli_call(struct cy_conn *c);

/* A template under construction ('A' on the wire). */
/* A template built by a command: CK_ATTRIBUTEs whose values it owns,
 * encoded by the one template encoder (attr_put_template). */
struct cli_tmpl {
	CK_ATTRIBUTE v[32];
	CK_ULONG n;
	bool failed; /* too many attributes, or no memory */
};
void tmpl_init(struct cli_tmpl *t);
void tmpl_free(struct cli_tmpl *t);
void tmpl_bool(struct cli_tmpl *t, CK_ATTRIBUTE_TYPE type, bool v);
void tmpl_ulong(struct cli_tmpl *t, CK_ATTRIBUTE_TYPE type, uint64_t v);
void tmpl_bytes(struct cli_tmpl *t, CK_ATTRIBUTE_TYPE type, const void *p, size_t n);
/* Appends the template to b; CKR_OK or why it could not be encoded. */
CK_RV tmpl_put(struct cli_tmpl *t, struct wire_buf *b);

/* Token helpers shared by the commands. */
struct cli_token {
	uint32_t slot;
	char label[33];
	char serial[17];
	uint32_t flags;
};
/* Every slot's token (*n of them, malloc'd). Returns a CK_RV. */
CK_RV cli_tokens(struct cy_conn *c, struct cli_token **out, uint32_t *n);
/* A PIN: a line from fd, or (fd -1) asked on the terminal with prompt,
 * without echo. 0, or -1 when none was read. */
int cli_read_pin(int fd, const char *prompt, char *pin, size_t len);
/* A JSON string of text from a certificate or the store: its bytes when
 * they are UTF-8, else with each byte that is not replaced by U+FFFD (JSON
 * is UTF-8; jansson refuses anything else). */
json_t *cli_json_text(const char *s);

/* A bulk command's progress (progress.c), on standard error when it is a
 * terminal (and standard output is not, when the command prints a line per
 * item there). Not locked: callers with workers hold their lock. */
struct cli_progress {
	const char *what;
	size_t total, done; /* total 0: not known */
	long long last_ms;
	bool on;
};
void cli_progress_start(struct cli_progress *p, const char *what, size_t total, bool lines_on_stdout);
void cli_progress_step(struct cli_progress *p, size_t n);
void cli_progress_end(struct cli_progress *p);

/* A listing (table.c): rows gathered as JSON objects, then printed as one
 * JSON array (--json) or as a table that fits the terminal (columns that
 * may shrink are cut with an ellipsis, some left out; serials and ids are
 * never cut). */
struct cli_col {
	const char *key;  /* the row's member */
	const char *head; /* the column's heading */
	bool shrink;      /* may be cut to fit the terminal */
	int drop;         /* > 0: may be left out when even cut columns do not fit, 1 first */
};
struct cli_table {
	const struct cli_col *cols;
	size_t ncols;
	bool json;
	json_t *rows;
	bool lost; /* a row could not be made: the listing is refused, not short */
};
void cli_table_init(struct cli_table *t, const struct cli_col *cols, size_t ncols, bool json);
/* Adds row, an object with the columns' keys (strings, integers, null);
 * its reference is taken. Strings from the store go in through
 * cli_json_text. */
void cli_table_add(struct cli_table *t, json_t *row);
/* Prints the rows and frees them: 0, or 1 after saying why. */
int cli_table_print(struct cli_table *t);
/* Whether dn (RFC 4514, as GnuTLS reads it) parses: 0, or 1 after saying
 * where it goes wrong and what to escape (or to give the parts apart). */
int cli_dn_check(const char *what, const char *dn);
/* Splits one CSV line (RFC 4180 quoting, in place) into at most max
 * fields; the count (max + 1 when there are more), or -1 when a quote is
 * not closed. */
int cli_csv_split(char *line, char **fields, int max);
/* Appends ",TYPE=value" (value escaped as RFC 4514 wants) to dn: 0, or -1
 * when it does not fit in len. */
int cli_dn_append(char *dn, size_t len, const char *type, const char *value);
/* Prints o (indented when pretty) and a newline, and frees it: 0, or 1
 * after saying it could not be written. */
int cli_json_print(json_t *o, bool pretty);
/* The value of a PIN option: arg itself, or for "-" the PIN (what: "user
 * PIN", "SO PIN") asked on the terminal, or read as a line from standard
 * input when that is not a terminal; exits when none comes. Keeps PINs out
 * of the command line, where other users' ps shows them. */
const char *cli_pin_arg(const char *arg, const char *what);
/* The slot of the token named name: its label (which must be on one token
 * only), else its serial. 0, or prints and returns 1. */
int cli_find_token(struct cy_conn *c, const char *name, uint32_t *slot);
/* Opens a session on the token labelled label (or in slot when label is
 * NULL), logging in as user when pin is not NULL. Returns 0 or prints and
 * returns 1. */
int cli_open(struct cy_conn *c, const char *label, long slot, bool rw, const char *pin,
	     uint32_t *session);

/* Every object of session's token that t (NULL: an empty template)
 * matches, through as many C_FindObjects as it takes; *out malloc'd.
 * A CK_RV; (CK_RV)-1 when the connection failed (printed). */
CK_RV cli_find_all(struct cy_conn *c, uint32_t session, struct cli_tmpl *t, uint32_t **out, uint32_t *n);

/* Generates a key of type ("ec:P-256", "rsa:2048", ...; see keymgr key
 * generate) labelled label with CKA_ID id in session. 0 or prints, 1. */
int cli_generate_key(struct cy_conn *conn, uint32_t session, const char *type, const char *label,
		     const uint8_t *id, size_t idlen);

/* ACCESS_SET: grant (else revoke) holder's token to the principal of kind
 * (0 uid, 1 group: id; 2 certificate subject, 3 certificate SAN: name). */
CK_RV cli_access_set(struct cy_conn *conn, bool grant, uint32_t kind, uint32_t id, const char *name,
		     const char *holder);

/* A uid (group false) or gid: a number, or a user or group name. 0, or
 * prints and returns 1. */
int cli_parse_id(const char *s, bool group, uint32_t *out);

/* Hex digits (1 to max bytes) into out; 0, or -1 when s is not that. */
int cli_parse_hex(const char *s, uint8_t *out, size_t max, size_t *n);

/* A whole file (at most 16 MiB) into *out (malloc'd). 0 or prints, 1. */
int cli_read_file(const char *path, uint8_t **out, size_t *len);
/* A DER object from a file holding it as DER or as PEM of kind. */
int cli_read_der(const char *path, const char *kind, uint8_t **out, size_t *len);
/* Writes der as PEM of kind to path ("-": stdout); kind NULL: der as it
 * is. 0 or prints, 1. */
int cli_write_pem(const char *path, const char *kind, const uint8_t *der, size_t len);

/* One row of the certificate inventory, as keymgr prints it. */
struct cli_inv_row {
	uint64_t object, not_before, not_after, revoked_at;
	char holder[256], agency[256], unit[256], status[16], keyid[130], serial[130];
	uint32_t reason;
};
/* The inventory rows of token label matching the filters ("" and 0 for
 * none); *out malloc'd. 0, or prints and returns 1. */
int cli_inventory(const char *label, const char *agency, const char *status, uint64_t before,
		  struct cli_inv_row **out, uint32_t *n);
/* The RFC 5280 name of a CRLReason code, or NULL. */
const char *cli_reason_name(uint32_t code);
/* The code of RFC 5280 reason name into *code: 0, or prints (for what), 1. */
int cli_reason_code(const char *what, const char *name, uint32_t *code);

#endif
