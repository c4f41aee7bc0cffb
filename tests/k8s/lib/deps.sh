#!/bin/sh
# Install what tests/k8s/validate.sh needs, idempotently (quiet when all
# is present). Meant to be called from .ci/deps.sh (`make deps`):
#   - the npm packages of tests/k8s/lib/package-lock.json (npm ci);
#   - yamllint and shellcheck from Debian, when run as root;
#   - kubectl with kustomize v4 or later: not in Debian 12 (its
#     kubernetes-client is 1.20, kustomize v2), so it is only checked and
#     named; install it from the Kubernetes apt repository.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
rc=0

missing=""
for p in yamllint shellcheck; do
	command -v "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	missing="$missing nodejs npm"
fi
if [ -n "$missing" ]; then
	if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
		echo "tests/k8s deps: installing$missing"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >/dev/null
		# shellcheck disable=SC2086
		apt-get install -y -qq --no-install-recommends $missing >/dev/null
	else
		echo "tests/k8s deps: please install:$missing" >&2
		rc=1
	fi
fi

# npm ci only when the installed tree is not the locked one.
lock="$here/package-lock.json"
stamp="$here/node_modules/.kvferry-lock"
if command -v npm >/dev/null 2>&1; then
	if ! cmp -s "$lock" "$stamp" 2>/dev/null; then
		echo "tests/k8s deps: npm ci in tests/k8s/lib"
		(cd "$here" && timeout 600 npm ci --no-audit --no-fund \
			--ignore-scripts --loglevel=error) && cp "$lock" "$stamp" || rc=1
	fi
fi

if ! kubectl version --client 2>/dev/null | grep -q 'Kustomize Version: v[4-9]'; then
	echo "tests/k8s deps: kubectl with kustomize v4+ not found;" \
		"install kubectl from the Kubernetes apt repository" >&2
fi
exit $rc
