/*
 * report.h - what keymgr inventory report counts, for its table, CSV,
 * JSON and HTML (report_html.c) alike.
 */
#ifndef KEYMGR_REPORT_H
#define KEYMGR_REPORT_H

#include <stddef.h>
#include <stdint.h>

struct report_agency {
	const char *agency;
	uint32_t valid, expired, revoked, superseded, soon;
};

struct report_revoked {
	const char *holder, *agency;
	char date[16];
	const char *reason;
};

struct report {
	const char *token;
	uint64_t now;
	unsigned within_days;
	struct report_agency *agencies, total;
	size_t nagencies;
	uint32_t months[12];       /* valid certificates expiring in this month and the 11 after */
	char month_names[12][24];  /* "2026-12" */
	char **due;                /* labels of keys due for rotation */
	uint32_t ndue;
	struct report_revoked *revoked; /* revoked this calendar year */
	uint32_t nrevoked;
	int lockouts;              /* tokens with a locked PIN; -1: not known (no role) */
};

/* Writes r as one self-contained HTML page: 0, or 1 after saying why. */
int report_html(const char *path, const struct report *r);

#endif
