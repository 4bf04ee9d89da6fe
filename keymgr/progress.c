/*
 * progress.c - what a bulk command has done so far, on standard error
 * when that is a terminal ("\rholder import: 120/200"), at most ten times a
 * second; nothing in a script or a log.
 */
#include "config.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

void
cli_progress_start(struct cli_progress *p, const char *what, size_t total, bool lines_on_stdout)
{
	p->what = what;
	p->total = total;
	p->done = 0;
	p->last_ms = 0;
	/* Lines a command prints per item are progress enough on a terminal. */
	p->on = isatty(STDERR_FILENO) && !(lines_on_stdout && isatty(STDOUT_FILENO));
}

static long long
now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void
show(const struct cli_progress *p)
{
	if (p->total > 0)
		fprintf(stderr, "\r%s: %zu/%zu (%zu%%)", p->what, p->done, p->total, p->done * 100 / p->total);
	else
		fprintf(stderr, "\r%s: %zu", p->what, p->done);
	fflush(stderr);
}

void
cli_progress_step(struct cli_progress *p, size_t n)
{
	p->done += n;
	if (!p->on)
		return;
	long long ms = now_ms();
	if (ms - p->last_ms >= 100 || p->done == p->total) {
		p->last_ms = ms;
		show(p);
	}
}

void
cli_progress_end(struct cli_progress *p)
{
	if (!p->on)
		return;
	show(p);
	fputc('\n', stderr);
	p->on = false;
}
