/*
 * log.h - logging for every coyeu component: stderr and/or syslog.
 * Never pass PINs or key values; log attribute types and lengths only.
 */
#ifndef CY_LOG_H
#define CY_LOG_H

#include <stdbool.h>
#include <syslog.h>

/* ident names the program; to_syslog adds syslog; level is a LOG_* value. */
void log_init(const char *ident, bool to_stderr, bool to_syslog, int level);
/* keymgrd: lines on stderr get the time and priority, or only the
 * priority (<N>) when stderr is the journal (JOURNAL_STREAM). */
void log_stderr_daemon(void);
void log_set_level(int level);
/* SIGHUP: the syslog connection is made again. */
void log_reopen(void);
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
