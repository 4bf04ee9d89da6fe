/* log.c - the small logger shared by the daemon, the CLI and the module. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"

static const char *log_ident = "coyeu";
static bool log_stderr = true;
static bool log_syslog;
static int log_level = LOG_INFO;
/* What a line on stderr begins with: nothing (the CLI, the module), the
 * time (keymgrd on a terminal or in a file), or <N>, the priority the
 * journal reads (keymgrd under systemd, which stamps lines itself). */
static enum { STDERR_PLAIN, STDERR_STAMPED, STDERR_JOURNAL } log_style = STDERR_PLAIN;

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
log_set_level(int level)
{
	log_level = level;
}

void
log_reopen(void)
{
	if (!log_syslog)
		return;
	closelog();
	openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_stderr_daemon(void)
{
	/* systemd sets JOURNAL_STREAM to the device and inode of the stream
	 * it connected stderr to. */
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;
	unsigned long long dev, ino;
	if (js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
		log_style = STDERR_JOURNAL;
	else
		log_style = STDERR_STAMPED;
}

static const char *const prio_names[] = { "emergency", "alert", "critical", "error",
					  "warning", "notice", "info", "debug" };

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
	if (!log_stderr)
		return;
	char line[1024];
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (log_style == STDERR_JOURNAL) {
		fprintf(stderr, "<%d>%s\n", prio & 7, line);
	} else if (log_style == STDERR_STAMPED) {
		struct timespec ts;
		struct tm tm;
		char when[32];
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		char zone[8];
		strftime(zone, sizeof(zone), "%z", &tm);
		fprintf(stderr, "%s.%03ld%s %s[%s]: %s\n", when, ts.tv_nsec / 1000000, zone, log_ident,
			prio_names[prio & 7], line);
	} else {
		fprintf(stderr, "%s: %s\n", log_ident, line);
	}
}
