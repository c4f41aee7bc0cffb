/* sidecar/auth: SHA-256 and HMAC-SHA256 against FIPS 180-4 and RFC 4231 vectors, secret files refused for each reason, the mutual handshake MACs (tamper, replay, stale nonce, wrong secret, missing MAC) and the engine uid rule. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "sidecar/auth.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

static void unhex(const char *h, uint8_t *out)
{
	for (size_t i = 0; h[2 * i]; i++) {
		unsigned v;
		sscanf(h + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

static void check_hmac(const char *name, const void *key, size_t keylen,
                       const void *msg, size_t len, const char *hex,
                       size_t cmp)
{
	uint8_t have[32], want[32];
	sc_hmac_sha256(key, keylen, msg, len, have);
	unhex(hex, want);
	is_blob(have, want, cmp, "RFC 4231 %s", name);
}

static const char *write_file(const char *name, const char *body, int mode)
{
	static char path[8][512];
	static int next;
	char *p = path[next++ % 8];
	snprintf(p, 512, "%s/%s", tp_tmpdir(), name);
	FILE *f = fopen(p, "w");
	if (!f)
		bail("cannot write %s", p);
	fputs(body, f);
	fclose(f);
	chmod(p, (mode_t)mode);
	return p;
}

int main(void)
{
	uint8_t d[32], want[32], k[131], data[152];
	char err[300];
	struct sc_auth *a = NULL, *b = NULL, *none = NULL;
	int rc;

	plan(48);

	/* FIPS 180-4 examples. */
	sc_sha256("abc", 3, d);
	unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	      want);
	is_blob(d, want, 32, "SHA-256(\"abc\")");
	sc_sha256("", 0, d);
	unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	      want);
	is_blob(d, want, 32, "SHA-256 of nothing");
	{
		char *m = malloc(1000000);
		memset(m, 'a', 1000000);
		sc_sha256(m, 1000000, d);
		free(m);
		unhex("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39cc"
		      "c7112cd0", want);
		is_blob(d, want, 32, "SHA-256 of a million 'a'");
	}

	/* RFC 4231 test cases 1-7. */
	memset(k, 0x0b, 20);
	check_hmac("case 1", k, 20, "Hi There", 8,
	           "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e"
	           "32cff7", 32);
	check_hmac("case 2", "Jefe", 4, "what do ya want for nothing?", 28,
	           "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964"
	           "ec3843", 32);
	memset(k, 0xaa, 20);
	memset(data, 0xdd, 50);
	check_hmac("case 3", k, 20, data, 50,
	           "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ce"
	           "d565fe", 32);
	for (int i = 0; i < 25; i++)
		k[i] = (uint8_t)(i + 1);
	memset(data, 0xcd, 50);
	check_hmac("case 4", k, 25, data, 50,
	           "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff467"
	           "29665b", 32);
	memset(k, 0x0c, 20);
	check_hmac("case 5 (truncated to 128 bits)", k, 20,
	           "Test With Truncation", 20,
	           "a3b6167473100ee06e0c796c2955552b", 16);
	memset(k, 0xaa, 131);
	check_hmac("case 6 (key longer than a block)", k, 131,
	           "Test Using Larger Than Block-Size Key - Hash Key First", 54,
	           "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0e"
	           "e37f54", 32);
	{
		const char *m7 = "This is a test using a larger than block-size "
		                 "key and a larger than block-size data. The key "
		                 "needs to be hashed before being used by the "
		                 "HMAC algorithm.";
		check_hmac("case 7 (key and data longer than a block)", k, 131,
		           m7, strlen(m7),
		           "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f"
		           "51535c3a35e2", 32);
	}
	ok(sc_auth_equal("abcd", "abcd", 4) && !sc_auth_equal("abcd", "abce", 4),
	   "constant-time compare tells equal from different");

	/* Secret files. */
	is_int(sc_auth_load("", &none, err, sizeof err), 0,
	       "no secret file: authentication off");
	ok(none == NULL, "and no state");
	char missing[512];
	snprintf(missing, sizeof missing, "%s/nope", tp_tmpdir());
	is_int(sc_auth_load(missing, &a, err, sizeof err), KVF_ECONFIG,
	       "missing file: KVF_ECONFIG");
	like(err, "--secret-file", "message names the option: %s", err);
	is_int(sc_auth_load(write_file("world", "0123456789abcdef0123\n", 0644),
	                    &a, err, sizeof err),
	       KVF_ECONFIG, "world-readable file refused");
	like(err, "others", "message says why: %s", err);
	is_int(sc_auth_load(write_file("short", "tooshort\n", 0600), &a, err,
	                    sizeof err),
	       KVF_ECONFIG, "short secret refused");
	like(err, "at least", "message: %s", err);
	is_int(sc_auth_load(tp_tmpdir(), &a, err, sizeof err), KVF_ECONFIG,
	       "a directory refused");
	{
		char *big = malloc(SC_AUTH_MAX_SECRET + 2);
		memset(big, 'x', SC_AUTH_MAX_SECRET + 1);
		big[SC_AUTH_MAX_SECRET + 1] = 0;
		is_int(sc_auth_load(write_file("big", big, 0600), &a, err,
		                    sizeof err),
		       KVF_ECONFIG, "oversized secret refused");
		free(big);
	}
	const char *s1 = write_file("s1", "correct horse battery staple\n", 0640);
	const char *s1b = write_file("s1b", "correct horse battery staple", 0600);
	const char *s2 = write_file("s2", "another secret entirely!!", 0600);
	rc = sc_auth_load(s1, &a, err, sizeof err);
	is_int(rc, 0, "0640 secret file loads (%s)", rc ? err : "ok");
	rc = sc_auth_load(s1b, &b, err, sizeof err);
	is_int(rc, 0, "same secret without the newline loads");
	if (!a || !b)
		bail("no secret loaded: %s", err);

	/* Handshake: caller a, responder b (same secret). */
	Kvf__Peer__Handshake h = KVF__PEER__HANDSHAKE__INIT;
	uint8_t mac[32], rmac[32], addr[16] = {1, 2, 3};
	h.proto_version = 1;
	h.sidecar_id = "caller";
	h.host_id = "host-a";
	h.provider = "tcp";
	h.fabric_addr.data = addr;
	h.fabric_addr.len = sizeof addr;
	h.engine_name = "decode";
	sc_auth_sign_handshake(a, &h, mac);
	ok(h.auth.len == 32 && h.nonce != 0, "caller signs with a nonce");
	ok((int64_t)(h.nonce >> 32) - (int64_t)time(NULL) < 5,
	   "nonce carries the time");
	is_int(sc_auth_verify_handshake(b, &h, err, sizeof err), 0,
	       "responder with the same secret accepts");
	is_int(sc_auth_verify_handshake(b, &h, err, sizeof err), KVF_EPERM,
	       "the same request again: refused as a replay");
	like(err, "replay", "message: %s", err);

	Kvf__Peer__Handshake t = h;
	sc_auth_sign_handshake(a, &t, mac);
	t.engine_name = "other";
	is_int(sc_auth_verify_handshake(b, &t, err, sizeof err), KVF_EPERM,
	       "a tampered engine name is refused");
	t = h;
	sc_auth_sign_handshake(a, &t, mac);
	addr[0] ^= 1;
	is_int(sc_auth_verify_handshake(b, &t, err, sizeof err), KVF_EPERM,
	       "a tampered fabric address is refused");
	addr[0] ^= 1;
	is_int(sc_auth_verify_handshake(b, &t, err, sizeof err), 0,
	       "the untampered one then passes");
	{
		struct sc_auth *c = NULL;
		sc_auth_load(s2, &c, err, sizeof err);
		t = h;
		sc_auth_sign_handshake(c, &t, mac);
		is_int(sc_auth_verify_handshake(b, &t, err, sizeof err),
		       KVF_EPERM, "a different secret is refused");
		like(err, "authentication failed", "message: %s", err);
		sc_auth_free(c);
	}
	t = h;
	t.auth.len = 0;
	t.auth.data = NULL;
	is_int(sc_auth_verify_handshake(b, &t, err, sizeof err), KVF_EPERM,
	       "no MAC at all is refused");
	like(err, "no authentication", "message: %s", err);
	is_int(sc_auth_verify_handshake(NULL, &t, err, sizeof err), 0,
	       "without a secret the responder accepts it");
	t = h;
	t.epoch = 5;
	sc_auth_sign_handshake(a, &t, mac);
	t.epoch = 6;
	is_int(sc_auth_verify_handshake(b, &t, err, sizeof err), KVF_EPERM,
	       "a tampered caller epoch is refused");
	t = h;
	sc_auth_sign_handshake(a, &t, mac);
	t.nonce -= (uint64_t)(SC_AUTH_SKEW_S + 60) << 32;
	is_int(sc_auth_verify_handshake(b, &t, err, sizeof err), KVF_EPERM,
	       "a request whose nonce was moved back in time is refused");

	/* Reply: responder b signs for h, caller a verifies. */
	Kvf__Peer__HandshakeReply hr = KVF__PEER__HANDSHAKE_REPLY__INIT;
	Kvf__Peer__RegionDesc rd = KVF__PEER__REGION_DESC__INIT, *rdp = &rd;
	Kvf__KvLayout lay = KVF__KV_LAYOUT__INIT;
	hr.proto_version = 1;
	hr.sidecar_id = "responder";
	hr.host_id = "host-b";
	hr.provider = "tcp";
	hr.fabric_addr.data = addr;
	hr.fabric_addr.len = sizeof addr;
	hr.engine_session_id = 7;
	hr.epoch = 99;
	rd.region_id = 3;
	rd.length = 1 << 20;
	rd.key = 0x1234;
	lay.num_layers = 2;
	rd.layout = &lay;
	hr.n_regions = 1;
	hr.regions = &rdp;
	sc_auth_sign_reply(b, &h, &hr, rmac);
	ok(hr.auth.len == 32, "responder signs its reply");
	is_int(sc_auth_verify_reply(a, &h, &hr, err, sizeof err), 0,
	       "caller verifies it: the responder proved the secret");
	rd.key ^= 1;
	is_int(sc_auth_verify_reply(a, &h, &hr, err, sizeof err), KVF_EPERM,
	       "a changed region key is refused");
	rd.key ^= 1;
	lay.num_layers = 3;
	is_int(sc_auth_verify_reply(a, &h, &hr, err, sizeof err), KVF_EPERM,
	       "a changed layout is refused");
	lay.num_layers = 2;
	t = h;
	t.nonce ^= 1;
	is_int(sc_auth_verify_reply(a, &t, &hr, err, sizeof err), KVF_EPERM,
	       "an old reply replayed to a new request is refused");
	hr.auth.len = 0;
	is_int(sc_auth_verify_reply(a, &h, &hr, err, sizeof err), KVF_EPERM,
	       "an unsigned reply is refused");

	/* Engine credentials. */
	is_int(sc_auth_engine_uid((int)geteuid(), false, err, sizeof err), 0,
	       "our own uid may connect");
	is_int(sc_auth_engine_uid(0, false, err, sizeof err), 0,
	       "root may connect");
	is_int(sc_auth_engine_uid((int)geteuid() + 4242, false, err, sizeof err),
	       KVF_EPERM, "another uid is refused without --socket-group");
	is_int(sc_auth_engine_uid((int)geteuid() + 4242, true, err, sizeof err),
	       0, "and allowed with it");

	sc_auth_free(a);
	sc_auth_free(b);
	return tap_exit_status();
}
