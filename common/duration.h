/* duration.h - "30d", "12h", "15m", "90s" (or plain seconds) for the CLI and keymgrd.conf. */
#ifndef CY_DURATION_H
#define CY_DURATION_H

/* The duration in seconds, or -1 when s is malformed or over 100 years. */
long long duration_parse(const char *s);

#endif
