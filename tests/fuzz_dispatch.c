/*
 * fuzz_dispatch.c - libFuzzer harness for keymgrd's request decoder and
 * dispatcher: the bytes a hostile peer could send after HELLO.
 *
 * Input: a sequence of frames, each a 2-byte big-endian length and that
 * many bytes of request body (u32 type, fields). They go to
 * dispatch_request() in order, as one connection would send them, until
 * one is malformed (the connection would close). Then the peer goes away,
 * which releases its sessions, so every input starts from the same state:
 * one initialised token (slot 1, SO PIN 12345678, user PIN 1234).
 *
 * Built with clang -fsanitize=fuzzer by "make fuzz"; fuzz_replay.c runs
 * the same function over the seed corpus in "make check".
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <gcrypt.h>

#include "ctx.h"
#include "log.h"
#include "crypto/seal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct km_ctx ctx;
static bool ready;

static void
init_once(void)
{
	static char dir[] = "/tmp/coyeu-fuzz.XXXXXX";
	char path[128];
	struct store *st;
	uint8_t *master;
	bool created;
	if (ready)
		return;
	if (!gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P)) {
		gcry_check_version(NULL);
		gcry_control(GCRYCTL_INIT_SECMEM, 1024 * 1024, 0);
		gcry_control(GCRYCTL_AUTO_EXPAND_SECMEM, 4 * 1024 * 1024, 0);
		gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
	}
	log_init("fuzz", false, false, LOG_EMERG);
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/master.key", dir);
	if (seal_master_key(path, &master, &created) != 0)
		abort();
	/* The key stays in memory; its file and folder go at once, so no run
	 * of the fuzzer (which may be killed) leaves a master key behind. */
	if (unlink(path) != 0 || rmdir(dir) != 0)
		abort();
	/* An in-memory store keeps the fuzzer off the disk. */
	if (store_open(":memory:", &st) != 0 || ctx_init(&ctx, st, master) != 0)
		abort();
	ctx.pin_cost.mem_kib = 8;
	ctx.pin_cost.passes = 1;
	if (token_init_locked(&ctx, 1, (const uint8_t *)"12345678", 8, "fuzz") != CKR_OK ||
	    token_set_pin_locked(&ctx, token_find_locked(&ctx, 1), CKU_USER, (const uint8_t *)"1234", 4) != CKR_OK)
		abort();
	ready = true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct km_peer peer = { .who = { .name = "uid:1000", .uid = 1000, .pid = 4242 }, .bootstrap = true, .caps = TRANSPORT_PASS_FDS, .pending_fd = -1 };
	struct wire_buf req, rep;
	uint8_t hello[4 + 4 + 4 + PROTO_APP_ID_LEN];
	init_once();
	/* Predictable handles (1, 2, ...) so inputs can name their sessions. */
	ctx.next_session = 1;
	ctx.next_sobj = 1;
	wire_init(&rep, WIRE_MAX_FRAME);

	wire_store_u32(hello, MSG_HELLO);
	wire_store_u32(hello + 4, PROTO_VERSION);
	wire_store_u32(hello + 8, PROTO_APP_ID_LEN);
	memset(hello + 12, 0x5a, PROTO_APP_ID_LEN);
	wire_init_view(&req, hello, sizeof(hello));
	if (dispatch_request(&ctx, &peer, &req, &rep) != 0)
		abort();

	size_t pos = 0;
	while (size - pos >= 2) {
		size_t n = (size_t)data[pos] << 8 | data[pos + 1];
		pos += 2;
		if (n > size - pos)
			n = size - pos;
		wire_init_view(&req, data + pos, n);
		pos += n;
		if (dispatch_request(&ctx, &peer, &req, &rep) != 0)
			break;
		/* A reply always starts with the request type and an rv. */
		if (rep.size < 8)
			abort();
	}
	dispatch_peer_gone(&ctx, &peer);
	/* The state must be back where it started. */
	if (ctx.nsessions != 0 || ctx.apps != NULL)
		abort();
	wire_free(&rep);
	return 0;
}
