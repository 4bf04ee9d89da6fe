/* cmd_token.c - keymgr token init, list, reset-so-pin, set-pin, init-pin, delete. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckr.h"
#include "cli.h"

static int
token_init(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "label", required_argument, NULL, 'l' },
		{ "so-pin", required_argument, NULL, 's' },
		{ "pin", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	const char *label = NULL, *so = NULL, *pin = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "l:s:p:", longs, NULL)) != -1) {
		switch (c) {
		case 'l': label = optarg; break;
		case 's': so = cli_pin_arg(optarg, "SO PIN"); break;
		case 'p': pin = cli_pin_arg(optarg, "user PIN"); break;
		default: return cli_usage("token init: bad option (see keymgr token init --help)");
		}
	}
	if (optind != argc)
		return cli_usage("token init: unexpected argument '%s'", argv[optind]);
	if (!label || !so || !pin)
		return cli_usage("token init: --label, --so-pin and --pin are required");
	if (strlen(label) == 0 || strlen(label) > 32)
		return cli_fail("token init: the label must be 1 to 32 bytes");

	struct cy_conn *conn = cli_connect();
	struct cli_token *t = NULL;
	uint32_t n = 0, session = 0;
	int status = 1;
	CK_RV rv;
	if (conn == NULL)
		return 1;
	if ((rv = cli_tokens(conn, &t, &n)) != CKR_OK) {
		if (rv != (CK_RV)-1)
			cli_fail("token init: cannot list tokens: %s", ckr_name(rv));
		goto out;
	}
	long slot = -1;
	for (uint32_t i = 0; i < n; i++) {
		if ((t[i].flags & CKF_TOKEN_INITIALIZED) && strcmp(t[i].label, label) == 0) {
			cli_fail("token init: a token labelled '%s' exists (slot %u)", label, t[i].slot);
			goto out;
		}
		if (!(t[i].flags & CKF_TOKEN_INITIALIZED) && slot < 0)
			slot = t[i].slot;
	}
	if (slot < 0) {
		cli_fail("token init: no free slot");
		goto out;
	}
	struct wire_buf *b = client_begin(conn, MSG_INIT_TOKEN);
	wire_put_u32(b, (uint32_t)slot);
	wire_put_bytes(b, so, strlen(so));
	wire_put_bytes(b, label, strlen(label));
	if ((rv = cli_call(conn)) != CKR_OK) {
		if (rv != (CK_RV)-1)
			cli_fail("token init: %s", ckr_name(rv));
		goto out;
	}
	b = client_begin(conn, MSG_OPEN_SESSION);
	wire_put_u32(b, (uint32_t)slot);
	wire_put_u32(b, CKF_SERIAL_SESSION | CKF_RW_SESSION);
	wire_put_u32(b, 0); /* any handle */
	if ((rv = cli_call(conn)) != CKR_OK) {
		if (rv != (CK_RV)-1)
			cli_fail("token init: open session: %s", ckr_name(rv));
		goto out;
	}
	wire_get_u32(&conn->rep, &session);
	b = client_begin(conn, MSG_LOGIN);
	wire_put_u32(b, session);
	wire_put_u32(b, CKU_SO);
	wire_put_bytes(b, so, strlen(so));
	if ((rv = cli_call(conn)) == CKR_OK) {
		b = client_begin(conn, MSG_INIT_PIN);
		wire_put_u32(b, session);
		wire_put_bytes(b, pin, strlen(pin));
		rv = cli_call(conn);
	}
	if (rv != CKR_OK) {
		if (rv != (CK_RV)-1)
			cli_fail("token init: setting the user PIN: %s", ckr_name(rv));
		goto out;
	}
	printf("token '%s' initialised in slot %ld\n", label, slot);
	status = 0;
out:
	free(t);
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_token_init = {
	"token", "init", "--label LABEL --so-pin SO_PIN --pin PIN",
	"Initialises a new token in the first free slot with the given label and\n"
	"Security Officer PIN, then sets its user PIN (PINs are 4 to 64 bytes).",
	token_init,
};

static const char *
pin_state(uint32_t f)
{
	if (f & CKF_USER_PIN_LOCKED)
		return "locked";
	if (f & CKF_USER_PIN_FINAL_TRY)
		return "final-try";
	if (f & CKF_USER_PIN_COUNT_LOW)
		return "count-low";
	return (f & CKF_USER_PIN_INITIALIZED) ? "ok" : "unset";
}

static int
token_list(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "j", longs, NULL)) != -1) {
		if (c != 'j')
			return cli_usage("token list: bad option (see keymgr token list --help)");
		json = true;
	}
	if (optind != argc)
		return cli_usage("token list: unexpected argument '%s'", argv[optind]);
	struct cy_conn *conn = cli_connect();
	struct cli_token *t = NULL;
	uint32_t n = 0;
	if (conn == NULL)
		return 1;
	CK_RV rv = cli_tokens(conn, &t, &n);
	client_close(conn);
	if (rv != CKR_OK)
		return rv == (CK_RV)-1 ? 1 : cli_fail("token list: %s", ckr_name(rv));
	static const struct cli_col cols[] = {
		{ "slot", "SLOT", false, 0 },
		{ "label", "LABEL", true, 0 },
		{ "serial", "SERIAL", false, 0 },
		{ "user_pin", "USER PIN", false, 0 },
	};
	struct cli_table tab;
	cli_table_init(&tab, cols, sizeof(cols) / sizeof(cols[0]), json);
	for (uint32_t i = 0; i < n; i++)
		if (t[i].flags & CKF_TOKEN_INITIALIZED)
			cli_table_add(&tab, json_pack("{s:I, s:o, s:o, s:s}", "slot", (json_int_t)t[i].slot, "label",
						      cli_json_text(t[i].label), "serial", cli_json_text(t[i].serial),
						      "user_pin", pin_state(t[i].flags)));
	free(t);
	return cli_table_print(&tab);
}

const struct cli_cmd cmd_token_list = {
	"token", "list", "[--json]",
	"Lists the initialised tokens: slot, label, serial number and the state of\n"
	"the user PIN (ok, unset, count-low, final-try, locked).",
	token_list,
};

static int
token_reset_so_pin(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "new-so-pin", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *token = NULL, *pin = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "t:n:", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 'n': pin = cli_pin_arg(optarg, "new SO PIN"); break;
		default: return cli_usage("token reset-so-pin: bad option (see keymgr token reset-so-pin --help)");
		}
	}
	if (optind != argc)
		return cli_usage("token reset-so-pin: unexpected argument '%s'", argv[optind]);
	if (!token || !pin)
		return cli_usage("token reset-so-pin: --token and --new-so-pin are required");
	struct cy_conn *conn = cli_connect();
	uint32_t slot = 0;
	int status = 1;
	if (conn == NULL)
		return 1;
	if (cli_find_token(conn, token, &slot) == 0) {
		struct wire_buf *b = client_begin(conn, MSG_RESET_SO_PIN);
		wire_put_u32(b, slot);
		wire_put_bytes(b, pin, strlen(pin));
		CK_RV rv = cli_call(conn);
		if (rv == CKR_OK) {
			printf("token '%s': new SO PIN set, its failure count cleared\n", token);
			status = 0;
		} else if (rv == CKR_USER_TYPE_INVALID) {
			cli_fail("token reset-so-pin: '%s' is a holder's token: its SO is an administrator's account "
				 "(keymgr holder reset-pin resets the holder's PIN)", token);
		} else if (rv == CKR_ACTION_PROHIBITED) {
			cli_fail("token reset-so-pin: only an administrator may (give --passphrase-file)");
		} else if (rv != (CK_RV)-1) {
			cli_fail("token reset-so-pin: %s", ckr_name(rv));
		}
	}
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_token_reset_so_pin = {
	"token", "reset-so-pin", "--token LABEL --new-so-pin PIN",
	"Sets a new SO PIN on a unit token (not a holder's), clearing its failure\n"
	"count: the recovery of a locked or lost SO PIN. Administrators only;\n"
	"audited. The token's objects and user PIN stay.",
	token_reset_so_pin,
};

/* ---- keymgr token set-pin, keymgr token init-pin ---- */

/* Opens a read-write session on token and logs in as who with pin: 0 with
 * *session, or 1 after saying why (in a sentence, the code after it). */
static int
open_as(struct cy_conn *conn, const char *what, const char *token, CK_USER_TYPE who, const char *pin,
	uint32_t *session)
{
	if (cli_open(conn, token, 0, true, NULL, session) != 0)
		return 1;
	struct wire_buf *b = client_begin(conn, MSG_LOGIN);
	wire_put_u32(b, *session);
	wire_put_u32(b, (uint32_t)who);
	wire_put_bytes(b, pin, strlen(pin));
	CK_RV rv = cli_call(conn);
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
		return 0;
	if (rv != (CK_RV)-1)
		cli_fail("%s: %s", what, cli_explain(rv, who == CKU_SO ? "SO PIN" : "PIN"));
	return 1;
}

static int
token_set_pin(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "pin", required_argument, NULL, 'p' },
		{ "new-pin", required_argument, NULL, 'n' },
		{ "so", no_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *token = NULL, *pin = NULL, *new_pin = NULL;
	bool so = false;
	int c;
	while ((c = getopt_long(argc, argv, "t:p:n:", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 'p': pin = optarg; break;
		case 'n': new_pin = optarg; break;
		case 's': so = true; break;
		default: return cli_usage("token set-pin: bad option (see keymgr token set-pin --help)");
		}
	}
	if (optind != argc || !token || !pin || !new_pin)
		return cli_usage("token set-pin: --token, --pin and --new-pin are required");
	pin = cli_pin_arg(pin, so ? "SO PIN" : "PIN");
	new_pin = cli_pin_arg(new_pin, so ? "new SO PIN" : "new PIN");
	struct cy_conn *conn = cli_connect();
	uint32_t session;
	int status = 1;
	if (conn != NULL && open_as(conn, "token set-pin", token, so ? CKU_SO : CKU_USER, pin, &session) == 0) {
		struct wire_buf *b = client_begin(conn, MSG_SET_PIN);
		wire_put_u32(b, session);
		wire_put_bytes(b, pin, strlen(pin));
		wire_put_bytes(b, new_pin, strlen(new_pin));
		CK_RV rv = cli_call(conn);
		if (rv == CKR_OK) {
			printf("token '%s': %s changed\n", token, so ? "SO PIN" : "PIN");
			status = 0;
		} else if (rv != (CK_RV)-1) {
			cli_fail("token set-pin: %s", cli_explain(rv, "new PIN"));
		}
	}
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_token_set_pin = {
	"token", "set-pin", "--token LABEL --pin PIN --new-pin PIN [--so]",
	"Changes the token's user PIN (or, with --so, its SO PIN) knowing the current\n"
	"one: C_SetPIN, as pkcs11-tool --change-pin does. A one-time PIN must be changed\n"
	"this way before the token signs. \"-\" asks for a PIN on the terminal.",
	token_set_pin,
};

static int
token_init_pin(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "so-pin", required_argument, NULL, 's' },
		{ "new-pin", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *token = NULL, *so_pin = NULL, *new_pin = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "t:s:n:", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 's': so_pin = optarg; break;
		case 'n': new_pin = optarg; break;
		default: return cli_usage("token init-pin: bad option (see keymgr token init-pin --help)");
		}
	}
	if (optind != argc || !token || !so_pin || !new_pin)
		return cli_usage("token init-pin: --token, --so-pin and --new-pin are required");
	so_pin = cli_pin_arg(so_pin, "SO PIN");
	new_pin = cli_pin_arg(new_pin, "new user PIN");
	struct cy_conn *conn = cli_connect();
	uint32_t session;
	int status = 1;
	if (conn != NULL && open_as(conn, "token init-pin", token, CKU_SO, so_pin, &session) == 0) {
		struct wire_buf *b = client_begin(conn, MSG_INIT_PIN);
		wire_put_u32(b, session);
		wire_put_bytes(b, new_pin, strlen(new_pin));
		CK_RV rv = cli_call(conn);
		if (rv == CKR_OK) {
			printf("token '%s': user PIN set by the SO, its failure count cleared\n", token);
			status = 0;
		} else if (rv != (CK_RV)-1) {
			cli_fail("token init-pin: %s", cli_explain(rv, "new PIN"));
		}
	}
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_token_init_pin = {
	"token", "init-pin", "--token LABEL --so-pin PIN --new-pin PIN",
	"Sets the user PIN as the token's SO (C_InitPIN): unblocks a locked PIN, or\n"
	"finishes a token whose initialisation stopped before its user PIN was set\n"
	"(it lists as 'not set'). On a holder's token the SO PIN is an administrator's\n"
	"account passphrase; keymgr holder reset-pin gives a one-time PIN instead.",
	token_init_pin,
};

/* ---- keymgr token delete ---- */

/* Asks for the token's label to be typed on the terminal: true when it
 * was. */
static bool
confirmed(const char *label)
{
	char line[128];
	fprintf(stderr, "This deletes token '%s' with every key, certificate and record on it.\n"
		"Type its label to go on: ", label);
	fflush(stderr);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return false;
	line[strcspn(line, "\r\n")] = '\0';
	return strcmp(line, label) == 0;
}

static int
token_delete(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "yes", no_argument, NULL, 'y' },
		{ NULL, 0, NULL, 0 },
	};
	const char *token = NULL;
	bool yes = false;
	int c;
	while ((c = getopt_long(argc, argv, "t:y", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 'y': yes = true; break;
		default: return cli_usage("token delete: bad option (see keymgr token delete --help)");
		}
	}
	if (optind != argc)
		return cli_usage("token delete: unexpected argument '%s'", argv[optind]);
	if (token == NULL)
		return cli_usage("token delete: --token is required");
	if (!yes && !isatty(STDIN_FILENO))
		return cli_usage("token delete: give --yes to delete '%s' (no terminal to confirm on)", token);
	struct cy_conn *conn = cli_connect();
	if (conn == NULL)
		return 1;
	uint32_t slot = 0, n = 0;
	struct cli_token *t = NULL, *found = NULL;
	int status = 1;
	CK_RV rv;
	if (cli_find_token(conn, token, &slot) != 0)
		goto out;
	if ((rv = cli_tokens(conn, &t, &n)) != CKR_OK) {
		if (rv != (CK_RV)-1)
			cli_fail("token delete: cannot list tokens: %s", ckr_name(rv));
		goto out;
	}
	for (uint32_t i = 0; i < n; i++)
		if (t[i].slot == slot)
			found = &t[i];
	if (found == NULL) {
		cli_fail("token delete: token '%s' went away", token);
		goto out;
	}
	if (!yes && !confirmed(found->label)) {
		cli_fail("token delete: not confirmed; '%s' is kept", found->label);
		goto out;
	}
	/* The serial goes along: a token deleted and made again in that slot
	 * meanwhile is another one, and stays. */
	struct wire_buf *b = client_begin(conn, MSG_TOKEN_DELETE);
	wire_put_u32(b, slot);
	wire_put_str(b, found->serial);
	rv = cli_call(conn);
	if (rv == CKR_OK) {
		printf("token '%s' (serial %s) deleted from slot %u\n", found->label, found->serial, slot);
		status = 0;
	} else if (rv == CKR_SESSION_EXISTS) {
		cli_fail("token delete: '%s' is open in a program (a session exists); close it and try again "
			 "(CKR_SESSION_EXISTS)", found->label);
	} else if (rv == CKR_TOKEN_NOT_RECOGNIZED) {
		cli_fail("token delete: slot %u holds another token now; nothing deleted (CKR_TOKEN_NOT_RECOGNIZED)",
			 slot);
	} else if (rv != (CK_RV)-1) {
		cli_fail("token delete: %s", cli_explain(rv, NULL));
	}
out:
	free(t);
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_token_delete = {
	"token", "delete", "--token LABEL [--yes]",
	"Deletes a token for good: its keys, certificates and their inventory, its CA\n"
	"records, access rules, logins and unlocks (the audit trail keeps what was done\n"
	"with them). Asks for the label to be typed again on a terminal; --yes skips\n"
	"that (and is needed without one). Refused while a program has the token open.\n"
	"Administrators only; audited.",
	token_delete,
};
