/* log.c - the small logger shared by the daemon, the CLI and the module. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

static const char *log_ident = "coyeu";
static bool log_stderr = true;
static bool log_syslog;
static int log_level = LOG_INFO;

void
log_init(const char *ident, bool to_stderr, bool to_syslog, int level)
{
	log_ident = ident;
	log_stderr = to_stderr;
	log_syslog = to_syslog;
	log_level = level;
	if (to_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_msg(int prio, const char *fmt, ...)
{
	va_list ap;
	if (prio > log_level)
		return;
	if (log_syslog) {
		va_start(ap, fmt);
		vsyslog(prio, fmt, ap);
		va_end(ap);
	}
	if (log_stderr) {
		char line[1024];
		va_start(ap, fmt);
		vsnprintf(line, sizeof(line), fmt, ap);
		va_end(ap);
		fprintf(stderr, "%s: %s\n", log_ident, line);
	}
}
