/*
 * tests/fuzz/ctl_req.c - libFuzzer target for the control server's
 * request path: the real decode-check-dispatch function of
 * sidecar/ctl_server.c (size limit, unpack, protocol version, empty and
 * unknown commands, handler failure turning a half-built reply into an
 * Error) and the packing of the reply, as a worker does for each request.
 * The one registered command (status) is a stand-in handler that fills a
 * StatusReply and fails every other call, so both outcomes are packed.
 * Each reply must decode again, the way kvferryctl reads it.
 */
#include "sidecar/ctl_server.c"

void sc_ctl_builtin_register(void)
{
}

static int status_fn(struct sc_daemon *d, const Kvf__Ctl__Request *req,
                     Kvf__Ctl__Reply *rep, char *err, size_t errlen)
{
	static unsigned calls;
	Kvf__Ctl__StatusReply *s = malloc(sizeof *s);

	(void)d;
	(void)req;
	if (!s)
		return KVF_ENOMEM;
	kvf__ctl__status_reply__init(s);
	s->version = sc_ctl_strdup("fuzz");
	s->provider = sc_ctl_strdup("tcp");
	rep->body_case = KVF__CTL__REPLY__BODY_STATUS;
	rep->status = s;
	if (++calls & 1) {
		snprintf(err, errlen, "status failed on purpose");
		return KVF_EBUSY;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	Kvf__Ctl__Reply *rep, *back;
	nng_msg *out;

	if (!init) {
		sc_log_setup(SC_LOG_ERROR, SC_LOG_TEXT);
		sc_ctl_register(KVF__CTL__REQUEST__BODY_STATUS, status_fn);
		init = 1;
	}
	if (!(rep = malloc(sizeof *rep)))
		return 0;
	kvf__ctl__reply__init(rep);
	rep->proto_version = KVF_CTL_PROTO_VERSION;
	handle(NULL, data, size, rep);
	out = pack(rep);
	kvf__ctl__reply__free_unpacked(rep, NULL);
	if (!out)
		abort();
	back = kvf__ctl__reply__unpack(NULL, nng_msg_len(out),
	                               nng_msg_body(out));
	if (!back || back->body_case == KVF__CTL__REPLY__BODY__NOT_SET)
		abort(); /* every request gets a status or an error */
	kvf__ctl__reply__free_unpacked(back, NULL);
	nng_msg_free(out);
	return 0;
}
