/*
 * sidecar/log.c - the daemon's log.
 *
 * Each event becomes one line on stderr, written with a single write(2) so
 * lines from different threads never interleave. Text lines read
 * "2024-05-01T12:00:00.123Z INFO kvferryd ready ..."; JSON lines are one
 * object {"ts":...,"level":...,"msg":...} with the message escaped. The
 * level is an atomic so `kvferryctl log-level` can change it while other
 * threads log; the sc_log macro checks it before any formatting happens.
 */
#include "sidecar/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = SC_LOG_INFO;
static _Atomic int log_format = SC_LOG_TEXT;

static const char *const level_names[] = {
	[SC_LOG_ERROR] = "error",
	[SC_LOG_WARN] = "warn",
	[SC_LOG_INFO] = "info",
	[SC_LOG_DEBUG] = "debug",
};

static const char *const level_upper[] = {
	[SC_LOG_ERROR] = "ERROR",
	[SC_LOG_WARN] = "WARN",
	[SC_LOG_INFO] = "INFO",
	[SC_LOG_DEBUG] = "DEBUG",
};

void sc_log_setup(enum sc_log_level level, enum sc_log_format format)
{
	atomic_store(&log_level, (int)level);
	atomic_store(&log_format, (int)format);
}

void sc_log_set_level(enum sc_log_level level)
{
	atomic_store(&log_level, (int)level);
}

enum sc_log_level sc_log_get_level(void)
{
	return (enum sc_log_level)atomic_load_explicit(&log_level,
	    memory_order_relaxed);
}

int sc_log_parse_level(const char *s)
{
	for (int i = SC_LOG_ERROR; i <= SC_LOG_DEBUG; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

const char *sc_log_level_name(enum sc_log_level level)
{
	if ((int)level < SC_LOG_ERROR || level > SC_LOG_DEBUG)
		return "unknown";
	return level_names[level];
}

/* Append s to buf[*n..cap) as a JSON string body; stops short of cap. */
static void json_escape(char *buf, size_t *n, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	for (; *s && *n + 7 < cap; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			buf[(*n)++] = '\\';
			buf[(*n)++] = (char)ch;
		} else if (ch == '\n') {
			buf[(*n)++] = '\\';
			buf[(*n)++] = 'n';
		} else if (ch == '\t') {
			buf[(*n)++] = '\\';
			buf[(*n)++] = 't';
		} else if (ch < 0x20 || ch == 0x7f) {
			buf[(*n)++] = '\\';
			buf[(*n)++] = 'u';
			buf[(*n)++] = '0';
			buf[(*n)++] = '0';
			buf[(*n)++] = hex[ch >> 4];
			buf[(*n)++] = hex[ch & 15];
		} else {
			buf[(*n)++] = (char)ch;
		}
	}
}

void sc_log_write(enum sc_log_level level, const char *fmt, ...)
{
	char msg[2048], line[4608], ts[40];
	struct timespec now;
	struct tm tm;
	va_list ap;
	size_t n;
	int saved = errno;

	if ((int)level < SC_LOG_ERROR || level > SC_LOG_DEBUG)
		level = SC_LOG_ERROR;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* A message is one line: fold embedded newlines so a multi-line
	 * callee reason cannot split an event in the text format. */
	if (atomic_load(&log_format) == SC_LOG_TEXT)
		for (char *p = msg; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);

	if (atomic_load(&log_format) == SC_LOG_JSON) {
		n = (size_t)snprintf(line, sizeof(line),
		    "{\"ts\":\"%s\",\"level\":\"%s\",\"pid\":%d,\"msg\":\"", ts,
		    level_names[level], (int)getpid());
		json_escape(line, &n, sizeof(line) - 4, msg);
		line[n++] = '"';
		line[n++] = '}';
		line[n++] = '\n';
	} else {
		int w = snprintf(line, sizeof(line), "%s %-5s %s\n", ts,
		    level_upper[level], msg);
		n = w < 0 ? 0 : (size_t)w;
		if (n >= sizeof(line)) {
			n = sizeof(line) - 1;
			line[n - 1] = '\n';
		}
	}
	/* One write per line; a short write to a pipe of this size only
	 * happens when the reader is gone, and then there is no one to tell. */
	if (write(STDERR_FILENO, line, n) < 0)
		(void)0;
	errno = saved;
}
