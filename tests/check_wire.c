/* check_wire.c - the codec and the framing: truncated, oversized, garbage. */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cy_err.h"
#include "frame.h"
#include "proto.h"
#include "wire.h"

START_TEST(u32_truncated)
{
	static const uint8_t three[] = { 1, 2, 3 };
	struct wire_buf b;
	uint32_t v = 0xdeadbeef;
	wire_init_view(&b, three, sizeof(three));
	ck_assert_int_eq(wire_get_u32(&b, &v), CY_ERR_TRUNCATED);
	ck_assert_uint_eq(v, 0xdeadbeef);      /* nothing written */
	ck_assert_uint_eq(b.rpos, 0);          /* nothing consumed */
	ck_assert_int_eq(wire_error(&b), CY_ERR_TRUNCATED);
	uint8_t u8;
	ck_assert_int_ne(wire_get_u8(&b, &u8), 0); /* sticky */
}
END_TEST

START_TEST(bytes_length_past_end)
{
	static const uint8_t msg[] = { 0, 0, 0, 100, 'a', 'b', 'c', 'd' };
	struct wire_buf b;
	const uint8_t *p = NULL;
	uint32_t n = 7;
	wire_init_view(&b, msg, sizeof(msg));
	ck_assert_int_eq(wire_get_bytes(&b, &p, &n), CY_ERR_TRUNCATED);
	ck_assert_uint_eq(b.rpos, 0);
	ck_assert_ptr_null(p);
}
END_TEST

START_TEST(u64_roundtrip)
{
	struct wire_buf b;
	uint64_t v = 0;
	uint32_t u = 0;
	wire_init(&b, 64);
	wire_put_u64(&b, 0x0102030405060708ull);
	wire_put_u32(&b, 0xa1b2c3d4);
	ck_assert_int_eq(wire_error(&b), 0);
	ck_assert_uint_eq(b.data[0], 1);       /* big-endian */
	ck_assert_int_eq(wire_get_u64(&b, &v), 0);
	ck_assert_int_eq(wire_get_u32(&b, &u), 0);
	ck_assert(v == 0x0102030405060708ull);
	ck_assert_uint_eq(u, 0xa1b2c3d4);
	ck_assert_int_eq(wire_end(&b), 0);
	wire_free(&b);
}
END_TEST

START_TEST(put_over_max)
{
	struct wire_buf b;
	wire_init(&b, 8);
	ck_assert_int_eq(wire_put_u32(&b, 1), 0);
	ck_assert_int_eq(wire_put_bytes(&b, "abcd", 4), CY_ERR_TOO_LARGE);
	ck_assert_uint_eq(b.size, 4);          /* the failed put left nothing */
	ck_assert_int_eq(wire_error(&b), CY_ERR_TOO_LARGE);
	wire_free(&b);
}
END_TEST

START_TEST(str_embedded_nul)
{
	static const uint8_t msg[] = { 0, 0, 0, 3, 'a', 0, 'b' };
	struct wire_buf b;
	char *s = NULL;
	char small[8];
	wire_init_view(&b, msg, sizeof(msg));
	ck_assert_int_eq(wire_get_str(&b, &s), CY_ERR_EMBEDDED_NUL);
	ck_assert_ptr_null(s);
	ck_assert_uint_eq(b.rpos, 0);
	static const uint8_t longer[] = { 0, 0, 0, 9, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i' };
	wire_init_view(&b, longer, sizeof(longer));
	ck_assert_int_ne(wire_get_str_into(&b, small, sizeof(small)), 0);
}
END_TEST

START_TEST(trailing_bytes)
{
	static const uint8_t msg[] = { 0, 0, 0, 1, 9 };
	struct wire_buf b;
	uint32_t v;
	wire_init_view(&b, msg, sizeof(msg));
	ck_assert_int_eq(wire_get_u32(&b, &v), 0);
	ck_assert_int_eq(wire_end(&b), CY_ERR_TRAILING);
	ck_assert_int_eq(proto_check_sig(&b, ""), CY_ERR_TRAILING);
}
END_TEST

START_TEST(sig_checks_without_consuming)
{
	struct wire_buf b;
	wire_init(&b, 256);
	wire_put_u32(&b, 7);
	wire_put_bytes(&b, "pin", 3);
	wire_put_str(&b, "label");
	ck_assert_int_eq(proto_check_sig(&b, "uys"), 0);
	ck_assert_uint_eq(b.rpos, 0);
	ck_assert_int_ne(proto_check_sig(&b, "uy"), 0);   /* trailing */
	ck_assert_int_ne(proto_check_sig(&b, "uysu"), 0); /* truncated */
	ck_assert_int_ne(proto_check_sig(&b, "qys"), 0);
	wire_free(&b);
}
END_TEST

START_TEST(sig_template_count_huge)
{
	/* A template claiming 4 billion attributes is refused at once. */
	static const uint8_t msg[] = { 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 3 };
	struct wire_buf b;
	wire_init_view(&b, msg, sizeof(msg));
	ck_assert_int_ne(proto_check_sig(&b, "uA"), 0);
	ck_assert_int_ne(proto_check_sig(&b, "uU"), 0);
}
END_TEST

START_TEST(sig_slot_list_of_a_province)
{
	/* An administrator's slot list: every holder's token (5,418) and the
	 * spare slot, more than the 4,096 attributes a template may have. */
	struct wire_buf b;
	wire_init(&b, WIRE_MAX_FRAME);
	wire_put_u32(&b, 5419);
	for (uint32_t i = 1; i <= 5419; i++)
		wire_put_u32(&b, i);
	ck_assert_int_eq(proto_check_sig(&b, "U"), 0);
	wire_free(&b);
}
END_TEST

START_TEST(sig_bool_not_0_or_1)
{
	static const uint8_t msg[] = { 2 };
	struct wire_buf b;
	wire_init_view(&b, msg, sizeof(msg));
	ck_assert_int_ne(proto_check_sig(&b, "b"), 0);
}
END_TEST

START_TEST(sig_record_list)
{
	/* Two records of (u32, string), the second with a nested list of
	 * two byte strings; then a u64 after the list. */
	struct wire_buf b;
	wire_init(&b, 256);
	wire_put_u32(&b, 2);
	wire_put_u32(&b, 1);
	wire_put_str(&b, "a");
	wire_put_u32(&b, 0);
	wire_put_u32(&b, 2);
	wire_put_str(&b, "b");
	wire_put_u32(&b, 2);
	wire_put_bytes(&b, "x", 1);
	wire_put_bytes(&b, "yz", 2);
	wire_put_u64(&b, 9);
	ck_assert_int_eq(proto_check_sig(&b, "[us[y]]q"), 0);
	ck_assert_uint_eq(b.rpos, 0);
	ck_assert_int_ne(proto_check_sig(&b, "[us[y]]"), 0);  /* trailing */
	ck_assert_int_ne(proto_check_sig(&b, "[us[u]]q"), 0); /* wrong record shape */
	ck_assert_int_ne(proto_check_sig(&b, "[us"), 0);      /* unclosed: a bug, refused */
	/* Each truncation of the message is refused. */
	for (size_t n = 0; n < b.size; n++) {
		struct wire_buf t;
		wire_init_view(&t, b.data, n);
		ck_assert_int_ne(proto_check_sig(&t, "[us[y]]q"), 0);
	}
	wire_free(&b);
	/* A count larger than the records there, and one over the limit. */
	static const uint8_t few[] = { 0, 0, 0, 3, 0, 0, 0, 0 };
	static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff };
	struct wire_buf v;
	wire_init_view(&v, few, sizeof(few));
	ck_assert_int_eq(proto_check_sig(&v, "[u]"), CY_ERR_TRUNCATED);
	wire_init_view(&v, huge, sizeof(huge));
	ck_assert_int_eq(proto_check_sig(&v, "[u]"), CY_ERR_TOO_LARGE);
}
END_TEST

START_TEST(sig_garbage)
{
	/* Random bodies against every request signature: no crash, and each
	 * verdict agrees with a second look (the check is pure). */
	uint8_t buf[64];
	unsigned seed = 12345;
	for (int i = 0; i < 20000; i++) {
		size_t n = rand_r(&seed) % sizeof(buf);
		for (size_t j = 0; j < n; j++)
			buf[j] = (uint8_t)(rand_r(&seed) % 4 == 0 ? 0 : rand_r(&seed));
		for (uint32_t t = 1; t < MSG_COUNT; t++) {
			struct wire_buf b;
			wire_init_view(&b, buf, n);
			int r1 = proto_check_sig(&b, proto_msg(t)->req_sig);
			int r2 = proto_check_sig(&b, proto_msg(t)->req_sig);
			ck_assert_int_eq(r1, r2);
			ck_assert_uint_eq(b.rpos, 0);
		}
	}
}
END_TEST

START_TEST(unknown_type)
{
	ck_assert_ptr_null(proto_msg(0));
	ck_assert_ptr_null(proto_msg(MSG_COUNT));
	ck_assert_ptr_null(proto_msg(0xffffffffu));
	ck_assert_ptr_nonnull(proto_msg(MSG_HELLO));
}
END_TEST

START_TEST(recv_oversize_frame)
{
	int sv[2];
	struct wire_buf b;
	static const uint8_t hdr[] = { 0xff, 0xff, 0xff, 0xf0 };
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(write(sv[0], hdr, 4), 4);
	struct transport *t;
	ck_assert_int_eq(transport_unix_adopt(sv[1], &t), 0);
	wire_init(&b, 1024);
	ck_assert_int_eq(frame_recv(t, &b, 1024, 1000, NULL), CY_ERR_TOO_LARGE);
	ck_assert_ptr_null(b.data); /* refused before allocating */
	wire_free(&b);
	close(sv[0]);
	transport_close(t);
}
END_TEST

START_TEST(recv_truncated_frame)
{
	int sv[2];
	struct wire_buf b;
	static const uint8_t msg[] = { 0, 0, 0, 10, 1, 2, 3 };
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(write(sv[0], msg, sizeof(msg)), (ssize_t)sizeof(msg));
	close(sv[0]);
	struct transport *t;
	ck_assert_int_eq(transport_unix_adopt(sv[1], &t), 0);
	wire_init(&b, 1024);
	ck_assert_int_eq(frame_recv(t, &b, 1024, 1000, NULL), CY_ERR_EOF);
	ck_assert_uint_eq(b.size, 0); /* nothing of the frame is kept */
	wire_free(&b);
	transport_close(t);
}
END_TEST

START_TEST(send_recv_roundtrip)
{
	int sv[2];
	struct wire_buf a, b;
	uint32_t t = 0;
	struct transport *t0, *t1;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(transport_unix_adopt(sv[0], &t0), 0);
	ck_assert_int_eq(transport_unix_adopt(sv[1], &t1), 0);
	wire_init(&a, 1024);
	proto_begin_request(&a, MSG_LOGOUT);
	wire_put_u32(&a, 42);
	ck_assert_int_eq(frame_send(t0, &a, -1), 0);
	wire_init(&b, 1024);
	ck_assert_int_eq(frame_recv(t1, &b, 1024, 1000, NULL), 0);
	ck_assert_int_eq(wire_get_u32(&b, &t), 0);
	ck_assert_uint_eq(t, MSG_LOGOUT);
	ck_assert_int_eq(proto_check_sig(&b, proto_msg(t)->req_sig), 0);
	wire_free(&a);
	wire_free(&b);
	transport_close(t0);
	transport_close(t1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("wire");
	TCase *w = tcase_create("/wire");
	tcase_add_test(w, u32_truncated);
	tcase_add_test(w, sig_slot_list_of_a_province);
	tcase_add_test(w, bytes_length_past_end);
	tcase_add_test(w, u64_roundtrip);
	tcase_add_test(w, put_over_max);
	tcase_add_test(w, str_embedded_nul);
	tcase_add_test(w, trailing_bytes);
	suite_add_tcase(s, w);
	TCase *p = tcase_create("/proto");
	tcase_add_test(p, sig_checks_without_consuming);
	tcase_add_test(p, sig_template_count_huge);
	tcase_add_test(p, sig_bool_not_0_or_1);
	tcase_add_test(p, sig_record_list);
	tcase_add_test(p, sig_garbage);
	tcase_add_test(p, unknown_type);
	tcase_add_test(p, recv_oversize_frame);
	tcase_add_test(p, recv_truncated_frame);
	tcase_add_test(p, send_recv_roundtrip);
	tcase_set_timeout(p, 60);
	suite_add_tcase(s, p);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
