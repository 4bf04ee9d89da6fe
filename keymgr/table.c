/*
 * table.c - keymgr's listings: rows gathered as JSON objects, printed at
 * the end either as one JSON array (--json; jansson writes it) or as a
 * table whose columns fit the terminal. One writer for every listing.
 */
#include "config.h"

#include <langinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"

void
cli_table_init(struct cli_table *t, const struct cli_col *cols, size_t ncols, bool json)
{
	t->cols = cols;
	t->ncols = ncols;
	t->json = json;
	t->rows = json_array();
	t->lost = false;
}

void
cli_table_add(struct cli_table *t, json_t *row)
{
	if (row == NULL || t->rows == NULL || json_array_append_new(t->rows, row) != 0)
		t->lost = true;
}

/* A cell's text: a string as it is, a number in decimal, null or an
 * empty string "-". */
static const char *
cell(json_t *v, char *buf, size_t cap)
{
	if (json_is_string(v) && json_string_length(v) > 0)
		return json_string_value(v);
	if (json_is_integer(v))
		snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, cap, "%s", json_is_true(v) ? "yes" : "no");
	else
		snprintf(buf, cap, "-");
	return buf;
}

/* The columns the UTF-8 sequence at p takes: 0 for a continuation byte
 * and for a combining mark (U+0300 to U+036F: Vietnamese written
 * decomposed), else 1 (the province's scripts are one column wide). */
static size_t
cp_width(const unsigned char *p)
{
	if ((p[0] & 0xc0) == 0x80)
		return 0;
	if ((p[0] == 0xcc && (p[1] & 0xc0) == 0x80) || (p[0] == 0xcd && p[1] >= 0x80 && p[1] <= 0xaf))
		return 0;
	return 1;
}

static size_t
text_width(const char *s)
{
	size_t w = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		w += cp_width(p);
	return w;
}

/* The terminal's width, or 0 (no limit) when the output is no terminal
 * and COLUMNS does not say. */
static size_t
terminal_width(void)
{
	struct winsize ws;
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	const char *c = getenv("COLUMNS");
	long n = c ? strtol(c, NULL, 10) : 0;
	return n > 0 && n < 10000 ? (size_t)n : 0;
}

/* Prints s in w columns: cut at a code point with an ellipsis when
 * longer, padded unless last. */
static void
put_cell(const char *s, size_t w, bool last, const char *ellipsis)
{
	size_t tw = text_width(s);
	if (tw > w) {
		/* Up to the character that would pass keep, its marks kept. */
		size_t keep = w > 0 ? w - 1 : 0, cols = 0;
		const unsigned char *p = (const unsigned char *)s;
		while (*p && cols + cp_width(p) <= keep) {
			cols += cp_width(p);
			p++;
		}
		fwrite(s, 1, (size_t)(p - (const unsigned char *)s), stdout);
		if (w > 0)
			fputs(ellipsis, stdout);
		tw = w;
	} else {
		fputs(s, stdout);
	}
	if (!last)
		for (size_t i = tw; i < w + 2; i++)
			putchar(' ');
}

int
cli_table_print(struct cli_table *t)
{
	int status = 0;
	if (t->rows == NULL || t->lost) {
		json_decref(t->rows);
		t->rows = NULL;
		return cli_fail("out of memory: a row of the listing could not be made; nothing listed");
	}
	if (t->json) {
		status = cli_json_print(t->rows, false);
		t->rows = NULL;
		return status;
	}
	size_t w[32], n = t->ncols < 32 ? t->ncols : 32, rows = json_array_size(t->rows);
	char buf[32];
	for (size_t c = 0; c < n; c++)
		w[c] = text_width(t->cols[c].head);
	for (size_t r = 0; r < rows; r++)
		for (size_t c = 0; c < n; c++) {
			size_t cw = text_width(cell(json_object_get(json_array_get(t->rows, r), t->cols[c].key), buf,
						    sizeof(buf)));
			if (cw > w[c])
				w[c] = cw;
		}
	/* Too wide for the terminal: columns that may be left out go, the
	 * first to drop first, until the rest fits with shrinking; then the
	 * widest column that may shrink loses a column at a time, down to its
	 * heading (at least 8). */
	size_t limit = terminal_width(), total = 0, least = 0, floor[32];
	bool shown[32];
	for (size_t c = 0; c < n; c++) {
		size_t hw = text_width(t->cols[c].head);
		floor[c] = !t->cols[c].shrink ? w[c] : hw > 8 ? hw : 8;
		if (floor[c] > w[c])
			floor[c] = w[c];
		shown[c] = true;
		total += w[c] + 2;
		least += floor[c] + 2;
	}
	while (limit > 0 && least > limit + 2) {
		size_t pick = n;
		for (size_t c = 0; c < n; c++)
			if (shown[c] && t->cols[c].drop > 0 && (pick == n || t->cols[c].drop < t->cols[pick].drop))
				pick = c;
		if (pick == n)
			break;
		shown[pick] = false;
		total -= w[pick] + 2;
		least -= floor[pick] + 2;
	}
	while (limit > 0 && total > limit + 2) {
		size_t pick = n;
		for (size_t c = 0; c < n; c++)
			if (shown[c] && w[c] > floor[c] && (pick == n || w[c] > w[pick]))
				pick = c;
		if (pick == n)
			break;
		w[pick]--;
		total--;
	}
	size_t lastc = 0;
	for (size_t c = 0; c < n; c++)
		if (shown[c])
			lastc = c;
	const char *codeset = nl_langinfo(CODESET);
	const char *ellipsis = codeset && strcmp(codeset, "UTF-8") == 0 ? "\u2026" : "~";
	for (size_t c = 0; c < n; c++)
		if (shown[c])
			put_cell(t->cols[c].head, w[c], c == lastc, ellipsis);
	putchar('\n');
	for (size_t r = 0; r < rows; r++) {
		json_t *row = json_array_get(t->rows, r);
		for (size_t c = 0; c < n; c++)
			if (shown[c])
				put_cell(cell(json_object_get(row, t->cols[c].key), buf, sizeof(buf)), w[c], c == lastc,
					 ellipsis);
		putchar('\n');
	}
	if (fflush(stdout) != 0)
		status = cli_fail("write error");
	json_decref(t->rows);
	t->rows = NULL;
	return status;
}
