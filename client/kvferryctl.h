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
};

extern const struct ctl_cmd ctl_cmd_status;
extern const struct ctl_cmd ctl_cmd_objects;

/* A JSON object writer: keys in call order, strings escaped. */
struct ctl_json {
	FILE *f;
	int n;
};
void ctl_json_begin(struct ctl_json *j, FILE *f);
void ctl_json_str(struct ctl_json *j, const char *key, const char *val);
void ctl_json_u64(struct ctl_json *j, const char *key, uint64_t val);
void ctl_json_end(struct ctl_json *j);

/* Write s as a JSON string, quotes included. */
void ctl_json_quote(FILE *f, const char *s);

#endif
