/*
 * sidecar/main.c - kvferryd's entry point.
 *
 * Reads the configuration, blocks the shutdown signals before any thread
 * exists (so every thread inherits the mask and only the main thread ever
 * sees them), starts the daemon, then waits in sigwaitinfo() until
 * SIGTERM or SIGINT asks it to stop. Shutdown is bounded: an alarm ends
 * the process should a module hang while stopping.
 *
 * Exit status: 0 after a clean shutdown, 1 when start-up fails, 2 for a bad
 * option (message on stderr, before the log is configured).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "sidecar/config.h"
#include "sidecar/daemon.h"
#include "sidecar/log.h"

/* Longest a clean shutdown may take before SIGALRM ends the process. */
#define SHUTDOWN_LIMIT_S 20

static struct sc_daemon daemon_state;

int main(int argc, char **argv)
{
	static struct sc_config cfg;
	enum sc_config_action action;
	char err[1024];
	sigset_t set;
	siginfo_t si;
	int sig, rv;

	if (sc_config_load(&cfg, argc, argv, stdout, &action, err,
	        sizeof(err)) != 0) {
		fprintf(stderr, "kvferryd: %s\n", err);
		return 2;
	}
	if (action != SC_CONFIG_RUN)
		return 0;
	sc_log_setup(cfg.log_level, cfg.log_format);

	/* A peer or client that vanishes mid-write must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if ((rv = pthread_sigmask(SIG_BLOCK, &set, NULL)) != 0) {
		sc_error("kvferryd: pthread_sigmask() failed: %s",
		    strerror(rv));
		return 1;
	}

	if ((rv = sc_daemon_start(&daemon_state, &cfg, err, sizeof(err)))) {
		sc_error("kvferryd: start failed: %s", err);
		return 1;
	}

	for (;;) {
		sig = sigwaitinfo(&set, &si);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGHUP)
			sc_info("kvferryd: SIGHUP from pid %d ignored (nothing "
			    "to reload)", (int)si.si_pid);
	}

	alarm(SHUTDOWN_LIMIT_S);
	{
		uint64_t up = (sc_now_ns() - daemon_state.start_ns) / 1000000u;
		sc_daemon_stop(&daemon_state);
		sc_info("kvferryd stopped: %s from pid %d, uptime %llu ms, "
		    "sockets removed", sig == SIGTERM ? "SIGTERM" : "SIGINT",
		    (int)si.si_pid, (unsigned long long)up);
	}
	return 0;
}
