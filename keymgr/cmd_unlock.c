/* cmd_unlock.c - keymgr unlock, keymgr lock: log a token in for the
 * calling user's programs, and end it. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckr.h"
#include "cli.h"
#include "wire.h"

/* The slot of the initialised token labelled label, or -1 (printed). */
static long
token_slot(struct cy_conn *c, const char *label)
{
	uint32_t slot = 0;
	return cli_find_token(c, label, &slot) == 0 ? (long)slot : -1;
}

static int
unlock(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "pin-fd", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *token = NULL;
	long timeout = 3600, pin_fd = -1;
	char *end;
	int c;
	while ((c = getopt_long(argc, argv, "t:T:f:", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 'T':
			timeout = strtol(optarg, &end, 10);
			if (*end || timeout <= 0 || timeout > 7 * 24 * 3600)
				return cli_fail("unlock: --timeout must be 1 to 604800 seconds");
			break;
		case 'f':
			pin_fd = strtol(optarg, &end, 10);
			if (*end || pin_fd < 0)
				return cli_fail("unlock: --pin-fd must be a file descriptor number");
			break;
		default: return cli_usage("unlock: bad option (see keymgr unlock --help)");
		}
	}
	if (optind != argc)
		return cli_usage("unlock: unexpected argument '%s'", argv[optind]);
	if (token == NULL)
		return cli_usage("unlock: --token is required");
	char pin[128], prompt[160];
	snprintf(prompt, sizeof(prompt), "User PIN for token '%s': ", token);
	if (cli_read_pin((int)pin_fd, prompt, pin, sizeof(pin)) != 0)
		return cli_fail("unlock: no PIN read (give --pin-fd, or run on a terminal)");
	struct cy_conn *conn = cli_connect();
	int status = 1;
	long slot;
	if (conn != NULL && (slot = token_slot(conn, token)) >= 0) {
		struct wire_buf *b = client_begin(conn, MSG_UNLOCK);
		wire_put_u32(b, (uint32_t)slot);
		wire_put_bytes(b, pin, strlen(pin));
		wire_put_u32(b, (uint32_t)timeout);
		CK_RV rv = cli_call(conn);
		if (rv == CKR_OK) {
			printf("token '%s' unlocked for your programs for %ld s\n", token, timeout);
			status = 0;
		} else if (rv != (CK_RV)-1) {
			cli_fail("unlock: %s", ckr_name(rv));
		}
	}
	wire_wipe(pin, sizeof(pin));
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_unlock = {
	"token", "unlock", "--token LABEL [--timeout SECONDS] [--pin-fd N]",
	"Gives the user PIN once: until the timeout (default 3600 s) or 'keymgr token\n"
	"lock', every program you run sees the token logged in, as with a smart card\n"
	"and an agent. Other local users are not affected. The PIN is read from file\n"
	"descriptor N, or asked on the terminal. Wrong PINs count towards the lockout.",
	unlock,
};

static int
lock(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const char *token = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "t:", longs, NULL)) != -1) {
		if (c != 't')
			return cli_usage("lock: bad option (see keymgr token lock --help)");
		token = optarg;
	}
	if (optind != argc)
		return cli_usage("lock: unexpected argument '%s'", argv[optind]);
	struct cy_conn *conn = cli_connect();
	int status = 1;
	long slot = 0xffffffffL;
	if (conn != NULL && (token == NULL || (slot = token_slot(conn, token)) >= 0)) {
		wire_put_u32(client_begin(conn, MSG_LOCK), (uint32_t)slot);
		CK_RV rv = cli_call(conn);
		if (rv == CKR_OK) {
			printf("%s locked\n", token ? token : "every token");
			status = 0;
		} else if (rv != (CK_RV)-1) {
			cli_fail("lock: %s", ckr_name(rv));
		}
	}
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_lock = {
	"token", "lock", "[--token LABEL]",
	"Ends 'keymgr token unlock' for one token, or for all of them.",
	lock,
};
