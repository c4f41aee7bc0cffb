/*
 * sidecar/log.c - a minimal implementation of sidecar/log.h so that xfer/
 * and its tests link: a level filter and one line per event on stderr,
 * written with one write(2), as text or JSON. The daemon's own log.c from
 * the sidecar work replaces this file at merge.
 */
#include "sidecar/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int cur_level = SC_LOG_WARN;
static _Atomic int cur_format = SC_LOG_TEXT;

static const char *const names[] = { "error", "warn", "info", "debug" };

void sc_log_setup(enum sc_log_level level, enum sc_log_format format)
{
	cur_level = level;
	cur_format = format;
}

void sc_log_set_level(enum sc_log_level level)
{
	cur_level = level;
}

enum sc_log_level sc_log_get_level(void)
{
	return (enum sc_log_level)cur_level;
}

int sc_log_parse_level(const char *s)
{
	for (int i = 0; s != NULL && i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

const char *sc_log_level_name(enum sc_log_level level)
{
	return (unsigned)level < 4 ? names[level] : "unknown";
}

void sc_log_write(enum sc_log_level level, const char *fmt, ...)
{
	char msg[1024], line[2300];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	size_t n = 0;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (cur_format == SC_LOG_JSON) {
		char esc[2100];
		size_t e = 0;

		for (const char *c = msg; *c && e + 7 < sizeof(esc); c++) {
			if (*c == '"' || *c == '\\') {
				esc[e++] = '\\';
				esc[e++] = *c;
			} else if ((unsigned char)*c < 0x20) {
				e += (size_t)snprintf(esc + e, sizeof(esc) - e,
				                      "\\u%04x", *c);
			} else {
				esc[e++] = *c;
			}
		}
		esc[e] = '\0';
		n = (size_t)snprintf(line, sizeof(line),
		        "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\","
		        "\"level\":\"%s\",\"msg\":\"%s\"}\n",
		        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		        tm.tm_hour, tm.tm_min, tm.tm_sec,
		        ts.tv_nsec / 1000000, sc_log_level_name(level), esc);
	} else {
		n = (size_t)snprintf(line, sizeof(line),
		        "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s\n",
		        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		        tm.tm_hour, tm.tm_min, tm.tm_sec,
		        ts.tv_nsec / 1000000, sc_log_level_name(level), msg);
	}
	if (n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	(void)!write(STDERR_FILENO, line, n);
}
