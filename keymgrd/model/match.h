/*
 * match.h - text an administrator types matched against text in
 * certificates: case-insensitive, on Unicode-normalised text (Vietnamese
 * names arrive composed and decomposed: "Sở Y tế" in NFC and NFD are one
 * name), by substring. libunistring does the Unicode.
 */
#ifndef KM_MATCH_H
#define KM_MATCH_H

#include <stdbool.h>
#include <stddef.h>

/* The case-folded NFC form of UTF-8 s (malloc'd, NUL-terminated), or NULL
 * when s is not UTF-8 or memory ran out. */
char *match_fold(const char *s);
/* Whether folded needle (match_fold) occurs in hay. */
bool match_in(const char *hay, const char *folded_needle);

#endif
