#!/bin/sh
# Install kvferry's build and test dependencies from Debian packages (and
# the npm packages the Kubernetes manifest checks use). Idempotent: quiet
# when everything is present.
set -eu
PKGS="build-essential pkg-config libfabric-dev libfabric-bin libnng-dev \
liburing-dev libprotobuf-c-dev protobuf-c-compiler perl clang iproute2 \
procps fio yamllint jq"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "make deps: apt-get not found; install these packages by hand:$missing" >&2
		exit 1
	fi
	if [ "$(id -u)" -ne 0 ]; then
		echo "make deps: need root to install:$missing (run: sudo make deps)" >&2
		exit 1
	fi
	echo "make deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The Kubernetes manifest checks need npm packages (tests/k8s/lib): not
# fatal here; tests/k8s/validate.sh says what is missing.
if [ -f tests/k8s/lib/deps.sh ]; then
	sh tests/k8s/lib/deps.sh ||
		echo "make deps: tests/k8s dependencies incomplete (see above)" >&2
fi
exit 0
