/*
 * client/kvferryctl.h - kvferryctl's command table and output helpers,
 * shared by client/kvferryctl*.c (not part of libkvferry).
 *
 * To add a command: write client/kvferryctl_<name>.c with a struct
 * ctl_cmd (build fills the request body, print renders the reply as text
 * or JSON) and add it to the table in client/kvferryctl.c.
 */
#ifndef KVF_CLIENT_KVFERRYCTL_H
#define KVF_CLIENT_KVFERRYCTL_H

#include <stdint.h>
#include <stdio.h>

#include "proto/ctl.pb-c.h"

/* Exit statuses, documented in --help and the README. */
enum {
	CTL_EXIT_OK = 0,
	CTL_EXIT_USAGE = 1,
	CTL_EXIT_UNREACHABLE = 2, /* no sidecar, or no answer in time */
	CTL_EXIT_ERROR = 3,       /* the sidecar answered with an error */
	CTL_EXIT_PENDING = 4,     /* drain: transfers still in flight when
	                             its time ran out */
};

/* Where and how to ask: the control URL, the limit of one request, and
 * the output format. */
struct ctl_conn {
	const char *url;
	int timeout_ms;
	int json;
};

struct ctl_cmd {
	const char *name;
	const char *args; /* usage of its arguments, "" when none */
	const char *help;
	/* Fill req's body from the command's arguments (argv[0] is the
	 * command). Return 0, or CTL_EXIT_USAGE with why in err. Anything
	 * allocated must stay valid until the request is packed. */
	int (*build)(Kvf__Ctl__Request *req, int argc, char **argv, char *err,
	             size_t errlen);
	/* The reply body this command expects. */
	Kvf__Ctl__Reply__BodyCase reply;
	void (*print)(const Kvf__Ctl__Reply *rep, int json, FILE *out);
	/* Instead of build and print, for commands that ask more than once
	 * (argv[0] is the command). Returns a CTL_EXIT_* status, having
	 * said why on stderr. */
	int (*run)(const struct ctl_conn *c, int argc, char **argv,
	           FILE *out);
};

extern const struct ctl_cmd ctl_cmd_status;
extern const struct ctl_cmd ctl_cmd_objects;
extern const struct ctl_cmd ctl_cmd_engines;
extern const struct ctl_cmd ctl_cmd_regions;
extern const struct ctl_cmd ctl_cmd_peers;
extern const struct ctl_cmd ctl_cmd_xfers;
extern const struct ctl_cmd ctl_cmd_stats;
extern const struct ctl_cmd ctl_cmd_drain;
extern const struct ctl_cmd ctl_cmd_undrain;
extern const struct ctl_cmd ctl_cmd_log_level;

/*
 * Send req (its proto_version is set here) and check the answer: returns
 * CTL_EXIT_OK with *out a reply of body case want (free it with
 * kvf__ctl__reply__free_unpacked), or the exit status after printing why
 * on stderr, the command's name in it.
 */
int ctl_request(const struct ctl_conn *c, const char *name,
                Kvf__Ctl__Request *req, Kvf__Ctl__Reply__BodyCase want,
                Kvf__Ctl__Reply **out);

/* A JSON object writer: keys in call order, strings escaped. */
struct ctl_json {
	FILE *f;
	int n;
};
void ctl_json_begin(struct ctl_json *j, FILE *f);
void ctl_json_str(struct ctl_json *j, const char *key, const char *val);
void ctl_json_u64(struct ctl_json *j, const char *key, uint64_t val);
void ctl_json_end(struct ctl_json *j);
/* The comma and "key": of the next member; key NULL in an array. */
void ctl_json_key(struct ctl_json *j, const char *key);
/* client/kvferryctl_json.c: nesting and more value types. A nested
 * object or array is written through its own struct ctl_json, opened on
 * the parent (key NULL inside an array) and closed before the parent
 * goes on. */
void ctl_json_obj(struct ctl_json *parent, const char *key,
                  struct ctl_json *child);
void ctl_json_arr(struct ctl_json *parent, const char *key,
                  struct ctl_json *child);
void ctl_json_close_obj(struct ctl_json *j);
void ctl_json_close_arr(struct ctl_json *j);
void ctl_json_bool(struct ctl_json *j, const char *key, int val);
/* Non-finite values are written as null. */
void ctl_json_f64(struct ctl_json *j, const char *key, double val);
void ctl_json_null(struct ctl_json *j, const char *key);

/* Human forms for text output, into buf: "8.0 MiB", "1.25 ms". */
const char *ctl_fmt_bytes(char *buf, size_t len, uint64_t bytes);
const char *ctl_fmt_us(char *buf, size_t len, double us);

/* Write s as a JSON string, quotes included. */
void ctl_json_quote(FILE *f, const char *s);

#endif
