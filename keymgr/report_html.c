/*
 * report_html.c - keymgr inventory report --html FILE: one self-contained
 * page for the unit's leadership (no script, no fetch: inline CSS and an
 * SVG chart), from the rows keymgr read. Every number has an id or a data-
 * attribute, so that a test reads them back from what Chromium rendered.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "report.h"

/* Text into HTML: & < > " ' escaped. */
static void
esc(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*s, f);
		}
	}
}

static const char style[] =
	"body{font-family:'DejaVu Sans',Arial,sans-serif;margin:2em;color:#222}"
	"h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}"
	"table{border-collapse:collapse}td,th{padding:.25em .6em;border-bottom:1px solid #eee;text-align:right}"
	"td:first-child,th:first-child{text-align:left}tr.total td{font-weight:bold;border-top:2px solid #999}"
	".note{color:#666;font-size:.9em}.bar{fill:#3a6ea5}.bar.now{fill:#c0392b}text{font-size:11px}";

int
report_html(const char *path, const struct report *r)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return cli_fail("inventory report: %s: cannot write it", path);
	char when[64];
	time_t now = (time_t)r->now;
	struct tm tm;
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M", localtime_r(&now, &tm));
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"vi\"><head><meta charset=\"utf-8\">"
		   "<title>coyeu: ");
	esc(f, r->token);
	fprintf(f, "</title><style>%s</style></head><body>\n<h1>Chứng thư số: ", style);
	esc(f, r->token);
	fprintf(f, "</h1>\n<p class=\"note\">keymgr inventory report, %s. Certificates by agency and status; "
		   "expiries by month for the next 12 months; keys due for rotation; revocations in %d; PIN lockouts.</p>\n",
		when, tm.tm_year + 1900);

	/* Expiries by month: an SVG bar chart, the month's count on each bar. */
	uint32_t max = 1;
	for (int m = 0; m < 12; m++)
		if (r->months[m] > max)
			max = r->months[m];
	const int w = 720, h = 220, bw = 48, gap = 12, top = 20, base = 180;
	fprintf(f, "<h2>Hết hạn theo tháng (expiries by month, next 12 months)</h2>\n"
		   "<svg id=\"expiry-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		   "role=\"img\" aria-label=\"certificates expiring per month\">\n", w, h);
	for (int m = 0; m < 12; m++) {
		int bh = (int)((uint64_t)r->months[m] * (base - top) / max);
		int x = 10 + m * (bw + gap);
		fprintf(f, "<rect class=\"bar%s\" data-month=\"%s\" data-count=\"%u\" x=\"%d\" y=\"%d\" width=\"%d\" "
			   "height=\"%d\"/>\n<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%u</text>"
			   "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
			m == 0 ? " now" : "", r->month_names[m], r->months[m], x, base - bh, bw, bh, x + bw / 2,
			base - bh - 4, r->months[m], x + bw / 2, base + 16, r->month_names[m]);
	}
	fprintf(f, "</svg>\n<p class=\"note\">Valid certificates only; superseded ones (a renewal took over) are "
		   "not counted.</p>\n");

	/* Keys due, revocations this year, lockouts. */
	fprintf(f, "<h2>Khóa đến hạn thay (keys due for rotation)</h2>\n<p>"
		   "<span id=\"keys-due\">%u</span> key(s) whose certificate expires within %u days.</p>\n<ul>",
		r->ndue, r->within_days);
	for (size_t i = 0; i < r->ndue && i < 50; i++) {
		fputs("<li>", f);
		esc(f, r->due[i]);
		fputs("</li>", f);
	}
	fprintf(f, "</ul>\n<h2>Thu hồi (revocations in %d)</h2>\n<p><span id=\"revoked-year\">%u</span> "
		   "certificate(s) revoked this year.</p>\n<table id=\"revocations\"><tr><th>Holder</th><th>Agency</th>"
		   "<th>Date</th><th>Reason</th></tr>\n", tm.tm_year + 1900, r->nrevoked);
	for (size_t i = 0; i < r->nrevoked && i < 200; i++) {
		fputs("<tr><td>", f);
		esc(f, r->revoked[i].holder);
		fputs("</td><td>", f);
		esc(f, r->revoked[i].agency);
		fprintf(f, "</td><td>%s</td><td>%s</td></tr>\n", r->revoked[i].date, r->revoked[i].reason);
	}
	fprintf(f, "</table>\n<h2>Khóa PIN (PIN lockouts)</h2>\n");
	if (r->lockouts < 0)
		fprintf(f, "<p id=\"pin-lockouts\" data-count=\"-1\">Not shown: keymgr status needs the administrator or "
			   "auditor role.</p>\n");
	else
		fprintf(f, "<p><span id=\"pin-lockouts\" data-count=\"%d\">%d</span> token(s) with a locked PIN.</p>\n",
			r->lockouts, r->lockouts);
	/* By agency and status. */
	fprintf(f, "<h2>Theo cơ quan (by agency)</h2>\n<table id=\"agencies\"><tr><th>Agency</th><th>Valid</th>"
		   "<th>Expired</th><th>Revoked</th><th>Superseded</th><th>Expiring &lt;%ud</th></tr>\n", r->within_days);
	for (size_t j = 0; j <= r->nagencies; j++) {
		const struct report_agency *a = j < r->nagencies ? &r->agencies[j] : &r->total;
		fprintf(f, "<tr%s><td>", j < r->nagencies ? "" : " class=\"total\"");
		esc(f, j < r->nagencies ? (a->agency[0] ? a->agency : "(no O)") : "Total");
		if (j < r->nagencies)
			fprintf(f, "</td><td>%u</td><td>%u</td><td>%u</td><td>%u</td><td>%u</td></tr>\n", a->valid, a->expired,
				a->revoked, a->superseded, a->soon);
		else
			fprintf(f, "</td><td id=\"total-valid\">%u</td><td id=\"total-expired\">%u</td>"
				   "<td id=\"total-revoked\">%u</td><td id=\"total-superseded\">%u</td>"
				   "<td id=\"total-expiring\">%u</td></tr>\n",
				a->valid, a->expired, a->revoked, a->superseded, a->soon);
	}
	fprintf(f, "</table>\n");

	fprintf(f, "</body></html>\n");
	if (fclose(f) != 0)
		return cli_fail("inventory report: %s: write error", path);
	return 0;
}
