/*
 * sidecar/log.h - the daemon's log: one line per event on stderr, text or
 * JSON, level checked before anything is formatted.
 *
 * Used by the daemon and by the modules it links (xfer/, sidecar/); the
 * client library never logs. Thread-safe: each line is written with one
 * write(2).
 */
#ifndef KVF_SIDECAR_LOG_H
#define KVF_SIDECAR_LOG_H

#include <stdbool.h>

enum sc_log_level {
	SC_LOG_ERROR = 0,
	SC_LOG_WARN = 1,
	SC_LOG_INFO = 2,
	SC_LOG_DEBUG = 3,
};

enum sc_log_format {
	SC_LOG_TEXT = 0,
	SC_LOG_JSON = 1,
};

void sc_log_setup(enum sc_log_level level, enum sc_log_format format);
void sc_log_set_level(enum sc_log_level level);
enum sc_log_level sc_log_get_level(void);
/* "error", "warn", "info", "debug" -> level; -1 when unknown. */
int sc_log_parse_level(const char *s);
const char *sc_log_level_name(enum sc_log_level level);

void sc_log_write(enum sc_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define sc_log(level, ...)                                                   \
	do {                                                                 \
		if ((level) <= sc_log_get_level())                           \
			sc_log_write((level), __VA_ARGS__);                  \
	} while (0)
#define sc_error(...) sc_log(SC_LOG_ERROR, __VA_ARGS__)
#define sc_warn(...) sc_log(SC_LOG_WARN, __VA_ARGS__)
#define sc_info(...) sc_log(SC_LOG_INFO, __VA_ARGS__)
#define sc_debug(...) sc_log(SC_LOG_DEBUG, __VA_ARGS__)

#endif
