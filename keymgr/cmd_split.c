/*
 * cmd_split.c - keymgr holder split: a store from before holder tokens
 * keeps every official's key on one shared token; this moves each key
 * version to the token of the holder its certificates name.
 *
 * A certificate names its holder by subject: CN is the holder's name, O
 * the agency (and OU, when both have one, the unit), as in the holder CSV
 * the unit keeps. Key versions whose certificates name no holder, or more
 * than one, stay where they are and are listed; so does a CA's key. Moving
 * is done by keymgrd (KEY_MOVE: the private key never leaves it) with the
 * shared token's user PIN; running the command again finishes what an
 * interrupted run left.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckr.h"
#include "cli.h"
#include "people.h"

#define NO_HOLDER (-1)
#define MANY_HOLDERS (-2)
#define CA_KEY (-3)

/* One key version of the shared token and whose it is. */
struct move {
	const struct cli_inv_row *cert; /* its first certificate */
	long holder;                    /* a row of the CSV, or NO_/MANY_HOLDERS */
};

/* The holder row a certificate names (NO_HOLDER, MANY_HOLDERS). */
static long
holder_of(const struct cli_inv_row *c, const struct holder_row *h, size_t n)
{
	long found = NO_HOLDER;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(c->holder, h[i].name) != 0 || strcmp(c->agency, h[i].agency) != 0)
			continue;
		if (c->unit[0] && h[i].unit[0] && strcmp(c->unit, h[i].unit) != 0)
			continue;
		if (found != NO_HOLDER)
			return MANY_HOLDERS;
		found = (long)i;
	}
	return found;
}

/* The key versions of the inventory rows, each with its holder. */
static struct move *
plan(const struct cli_inv_row *rows, uint32_t nrows, const struct holder_row *h, size_t nh, size_t *nmoves)
{
	struct move *v = calloc(nrows ? nrows : 1, sizeof(*v));
	size_t n = 0;
	if (v == NULL)
		return NULL;
	for (uint32_t i = 0; i < nrows; i++) {
		if (rows[i].keyid[0] == '\0')
			continue; /* a certificate without its key: nothing to move */
		long who = holder_of(&rows[i], h, nh);
		size_t j;
		for (j = 0; j < n && strcmp(v[j].cert->keyid, rows[i].keyid) != 0; j++)
			;
		if (j == n)
			v[n++] = (struct move){ &rows[i], who };
		else if (v[j].holder != who)
			v[j].holder = MANY_HOLDERS; /* certificates of two holders */
	}
	*nmoves = n;
	return v;
}

/* The ids of the holders that have a token already; *out malloc'd. */
static int
existing_holders(struct cy_conn *c, char (**out)[64], uint32_t *n)
{
	client_begin(c, MSG_HOLDER_LIST);
	CK_RV rv = cli_call(c);
	if (rv != CKR_OK)
		return rv == (CK_RV)-1 ? 1 : cli_fail("holder split: cannot list holders: %s", ckr_name(rv));
	wire_get_u32(&c->rep, n);
	*out = calloc(*n ? *n : 1, sizeof(**out));
	if (*out == NULL)
		return cli_fail("out of memory");
	for (uint32_t i = 0; i < *n; i++) {
		uint32_t u;
		char skip[192];
		wire_get_u32(&c->rep, &u);
		wire_get_str_into(&c->rep, (*out)[i], sizeof((*out)[i]));
		for (int k = 0; k < 3; k++)
			wire_get_str_into(&c->rep, skip, sizeof(skip));
		wire_get_u32(&c->rep, &u);
	}
	return wire_error(&c->rep) ? cli_fail("holder split: malformed holder list") : 0;
}

static bool
listed(char (*ids)[64], uint32_t n, const char *id)
{
	for (uint32_t i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			return true;
	return false;
}

/* Moves key version m to its holder's token. 0, 2 for a CA's key (which
 * stays), or prints and 1. */
static int
move_one(struct cy_conn *c, uint32_t session, const struct move *m, const struct holder_row *h, uint32_t *objects)
{
	uint8_t id[64];
	size_t idlen;
	if (cli_parse_hex(m->cert->keyid, id, sizeof(id), &idlen) != 0)
		return cli_fail("holder split: key id %s is not hex", m->cert->keyid);
	struct wire_buf *b = client_begin(c, MSG_KEY_MOVE);
	wire_put_u32(b, session);
	wire_put_bytes(b, id, idlen);
	wire_put_str(b, h->id);
	CK_RV rv = cli_call(c);
	if (rv == CKR_OK) {
		wire_get_u32(&c->rep, objects);
		return 0;
	}
	if (rv == (CK_RV)-1)
		return 1;
	if (rv == CKR_KEY_FUNCTION_NOT_PERMITTED)
		return 2;
	if (rv == CKR_ATTRIBUTE_VALUE_INVALID)
		return cli_fail("holder split: holder %s's token has a key with id %s already", h->id, m->cert->keyid);
	return cli_fail("holder split: key %s to holder %s: %s", m->cert->keyid, h->id, ckr_name(rv));
}

/* Prints what stays on the shared token, and why. */
static size_t
report_left(const struct move *v, size_t n, const char *token)
{
	size_t left = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].holder >= 0)
			continue;
		if (left++ == 0)
			printf("left on '%s':\n", token);
		printf("  key %s: CN=%s, O=%s%s%s: %s\n", v[i].cert->keyid, v[i].cert->holder, v[i].cert->agency,
		       v[i].cert->unit[0] ? ", OU=" : "", v[i].cert->unit,
		       v[i].holder == NO_HOLDER      ? "no holder in the file has that name and agency"
		       : v[i].holder == MANY_HOLDERS ? "its certificates name more than one holder"
						     : "a CA's key, which stays with the unit");
	}
	return left;
}

static int
holder_split(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "pin", required_argument, NULL, 'p' },
		{ "holders", required_argument, NULL, 'H' },
		{ "pin-out", required_argument, NULL, 'o' },
		{ "pin-letters", required_argument, NULL, 'L' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *token = NULL, *pin = NULL, *csv = NULL, *out = NULL, *letters = NULL;
	bool dry = false;
	int c;
	while ((c = getopt_long(argc, argv, "t:p:H:o:L:n", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 'p': pin = cli_pin_arg(optarg, "user PIN of the shared token"); break;
		case 'H': csv = optarg; break;
		case 'o': out = optarg; break;
		case 'L': letters = optarg; break;
		case 'n': dry = true; break;
		default: return cli_usage("holder split: bad option (see keymgr holder split --help)");
		}
	}
	if (optind != argc)
		return cli_usage("holder split: unexpected argument '%s'", argv[optind]);
	if (!token || !csv)
		return cli_usage("holder split: --token LABEL and --holders FILE.csv are required");
	if (!dry && !pin)
		return cli_usage("holder split: --pin (the shared token's user PIN; '-' to be asked) is required");
	if (!dry && !out && !letters)
		return cli_usage("holder split: --pin-out FILE or --pin-letters FILE is required (the one-time PINs "
				"of the holders it creates)");
	char *buf = NULL;
	struct holder_row *h = NULL;
	size_t nh = 0;
	if (holders_read_csv(csv, &buf, &h, &nh) != 0)
		return 1;
	struct cli_inv_row *rows = NULL;
	uint32_t nrows = 0;
	struct move *v = NULL;
	size_t nmoves = 0;
	char (*have)[64] = NULL;
	uint32_t nhave = 0;
	struct cy_conn *conn = NULL;
	struct pin_out po = { 0 };
	bool po_open = false;
	int status = cli_inventory(token, "", "", 0, &rows, &nrows);
	if (status == 0 && (v = plan(rows, nrows, h, nh, &nmoves)) == NULL)
		status = cli_fail("out of memory");
	if (status == 0 && (conn = cli_connect()) == NULL)
		status = 1;
	if (status == 0)
		status = existing_holders(conn, &have, &nhave);
	uint32_t session = 0;
	bool opened = false;
	if (status == 0 && !dry)
		opened = (status = cli_open(conn, token, 0, true, pin, &session)) == 0;
	size_t holders = 0, versions = 0, created = 0;
	for (size_t i = 0; status == 0 && i < nh; i++) {
		size_t mine = 0;
		for (size_t j = 0; j < nmoves; j++)
			mine += v[j].holder == (long)i;
		if (mine == 0)
			continue;
		bool exists = listed(have, nhave, h[i].id);
		holders++;
		versions += mine;
		if (dry) {
			printf("holder %s (%s): %zu key version(s)%s\n", h[i].id, h[i].name, mine,
			       exists ? "" : ", a new token");
			created += !exists;
			continue;
		}
		if (!po_open && !exists) {
			if ((status = pin_out_open(&po, out, letters)) != 0)
				break;
			po_open = true;
		}
		uint32_t objects = 0, all = 0;
		size_t moved = 0;
		if (!exists && (status = holder_add_one(conn, &h[i], NULL, &po, NULL)) != 0)
			break;
		created += !exists;
		for (size_t j = 0; j < nmoves && status == 0; j++) {
			if (v[j].holder != (long)i)
				continue;
			if ((status = move_one(conn, session, &v[j], &h[i], &objects)) == 2) {
				v[j].holder = CA_KEY;
				status = 0;
			} else if (status == 0) {
				all += objects;
				moved++;
			}
		}
		versions -= mine - moved;
		holders -= moved == 0;
		if (status == 0)
			printf("holder %s (%s): %zu key version(s), %u object(s) moved%s\n", h[i].id, h[i].name, moved,
			       all, exists ? "" : " to a new token");
	}
	if (opened) {
		wire_put_u32(client_begin(conn, MSG_CLOSE_SESSION), session);
		cli_call(conn);
	}
	size_t left = status == 0 ? report_left(v, nmoves, token) : 0;
	if (po_open && pin_out_close(&po) != 0)
		status = 1;
	if (status == 0)
		printf("%s %zu key version(s) of %zu holder(s), %zu new token(s); %zu key version(s) left\n",
		       dry ? "would move" : "moved", versions, holders, created, left);
	else if (holders)
		fprintf(stderr, "keymgr: holder split stopped; what moved stays moved: run it again to go on\n");
	client_close(conn);
	free(have);
	free(v);
	free(rows);
	free(h);
	free(buf);
	return status;
}

const struct cli_cmd cmd_holder_split = {
	"holder", "split",
	"--token LABEL --holders FILE.csv --pin PIN (--pin-out FILE | --pin-letters FILE) [--dry-run]",
	"Moves the keys of a shared token (a store from before holder tokens) to\n"
	"the tokens of their holders: each key version goes, with its certificates,\n"
	"to the holder whose name (CN) and agency (O, and OU when both have a unit)\n"
	"its certificates carry, as listed in FILE.csv (the holder import format).\n"
	"A holder without a token gets one, with a one-time PIN as in holder add.\n"
	"Versions whose certificates name no holder or several, and CA keys, stay\n"
	"and are listed; versions without a certificate stay too. Needs the shared\n"
	"token's user PIN; administrators only.\n"
	"--dry-run only says what would move. A run that stops can be run again.",
	holder_split,
};
