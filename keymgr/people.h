/*
 * people.h - what keymgr's holder commands share (cmd_people.c):
 * holder rows from a CSV file, one-time PINs and where they go.
 */
#ifndef KEYMGR_PEOPLE_H
#define KEYMGR_PEOPLE_H

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>

#include "client.h"

/* One holder: its fields point into the buffer they were read from. */
struct holder_row {
	char *id, *name, *agency, *unit;
	unsigned line;
};

/* Where the one-time PINs go: a CSV file and/or letters to print (each a
 * new file of mode 0600), else standard output. */
struct pin_out {
	FILE *f;
	FILE *letters;
};

/* Reads and checks every row of a holder CSV file (id,name,agency[,unit];
 * RFC 4180 quoting; an "id,..." first line is a header). *buf holds the
 * text the rows point into; free both. 0, or prints (file:line) and 1. */
int holders_read_csv(const char *path, char **buf, struct holder_row **rows, size_t *n);
/* 0, or prints and 1 (an existing file is never written over). */
int pin_out_open(struct pin_out *po, const char *path, const char *letters);
int pin_out_close(struct pin_out *po);
/* Creates holder h's token with a new one-time PIN, and its first key
 * (labelled 'signing') when key is not NULL; the PIN goes to po, under
 * po_lock when that is not NULL. 0 or prints, 1. */
int holder_add_one(struct cy_conn *c, const struct holder_row *h, const char *key, struct pin_out *po,
		   pthread_mutex_t *po_lock);

#endif
