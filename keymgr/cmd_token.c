/* cmd_token.c - keymgr token init, keymgr token list. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	if (json)
		putchar('[');
	else
		printf("%-5s %-32s %-16s %s\n", "SLOT", "LABEL", "SERIAL", "USER PIN");
	bool first = true;
	for (uint32_t i = 0; i < n; i++) {
		if (!(t[i].flags & CKF_TOKEN_INITIALIZED))
			continue;
		if (json) {
			printf("%s{\"slot\":%u,\"label\":", first ? "" : ",", t[i].slot);
			cli_json_str(t[i].label);
			printf(",\"serial\":");
			cli_json_str(t[i].serial);
			printf(",\"user_pin\":\"%s\"}", pin_state(t[i].flags));
		} else {
			printf("%-5u %-32s %-16s %s\n", t[i].slot, t[i].label, t[i].serial, pin_state(t[i].flags));
		}
		first = false;
	}
	if (json)
		printf("]\n");
	free(t);
	return 0;
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
