#!/bin/bash
# tests/k8s/validate.sh - the Kubernetes manifests in k8s/, without a
# cluster: yamllint on the sources, `kubectl kustomize` of every overlay,
# then tests/k8s/lib/check.mjs on each render (Kubernetes and CRD
# schemas, unknown fields, the API server's own rules, kvferry's wiring),
# prefill vs decode differing only where they should, and known-bad
# variants proving each class of mistake is caught. TAP output.
#
# Needs kubectl (kustomize v4+), node and the npm packages that
# tests/k8s/lib/deps.sh installs (`make deps`); when those packages are
# missing it runs deps.sh once itself.
# shellcheck disable=SC2001 # sed prefixes every line of a diagnostic
set -u
src=${KVF_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
lib="$src/tests/k8s/lib"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

skip_all() {
	echo "1..0 # SKIP $*"
	exit 0
}

if ! kubectl version --client 2>/dev/null | grep -q 'Kustomize Version: v[4-9]'; then
	skip_all "kubectl with kustomize v4+ not found (Debian 12 has none; install kubectl from the Kubernetes apt repository)"
fi
command -v node >/dev/null 2>&1 || sh "$lib/deps.sh" >&2 || true
command -v node >/dev/null 2>&1 || skip_all "node not found and tests/k8s/lib/deps.sh could not install it"
if [ ! -d "$lib/node_modules/kubernetes-models" ]; then
	sh "$lib/deps.sh" >&2 ||
		skip_all "npm packages of tests/k8s/lib could not be installed (npm registry unreachable?)"
fi

# Results are collected first and numbered at the end, with the plan
# printed first.
res="$tmp/results"
: >"$res"
add() { printf '%s\n' "$@" >>"$res"; }
# Run check.mjs; its ok/not ok lines become test points.
check() { timeout 120 node "$lib/check.mjs" "$@" >>"$res" 2>&1; }
# Run check.mjs on a bad variant: the point passes when the checker
# fails and says what is expected.
expect_fail() {
	local desc="$1" pattern="$2"
	shift 2
	local out
	out=$(timeout 120 node "$lib/check.mjs" "$@" 2>&1)
	local st=$?
	if [ $st -eq 1 ] && grep -Eq -- "$pattern" <<<"$out"; then
		add "ok - rejected: $desc"
	else
		add "not ok - rejected: $desc (exit $st, want 1 and /$pattern/)"
		sed 's/^/#   /' <<<"$out" >>"$res"
	fi
}

# yamllint on every YAML source under k8s/.
if command -v yamllint >/dev/null 2>&1; then
	if out=$(yamllint -s -c "$src/k8s/.yamllint" "$src/k8s" 2>&1); then
		add "ok - yamllint k8s/"
	else
		add "not ok - yamllint k8s/"
		sed 's/^/#   /' <<<"$out" >>"$res"
	fi
else
	add "ok - yamllint k8s/ # SKIP yamllint not installed (make deps)"
fi

# Render and validate every overlay.
overlays=()
for d in "$src"/k8s/overlays/*/; do
	[ -f "$d/kustomization.yaml" ] && overlays+=("$(basename "$d")")
done
if [ ${#overlays[@]} -lt 2 ]; then
	add "not ok - found ${#overlays[@]} overlays in k8s/overlays"
fi
for o in "${overlays[@]}"; do
	if kubectl kustomize "$src/k8s/overlays/$o" >"$tmp/$o.yaml" 2>"$tmp/$o.err"; then
		add "ok - kubectl kustomize k8s/overlays/$o"
		check validate "$o" "$tmp/$o.yaml"
	else
		add "not ok - kubectl kustomize k8s/overlays/$o"
		sed 's/^/#   /' "$tmp/$o.err" >>"$res"
	fi
done

have() { [ -s "$tmp/$1.yaml" ]; }
if have prefill && have decode; then
	check roles "$tmp/prefill.yaml" "$tmp/decode.yaml" prefill decode
	# A decode that differs beyond its role must be caught.
	sed 's/replicas: 2/replicas: 3/' "$tmp/decode.yaml" >"$tmp/decode-bad.yaml"
	expect_fail "decode with other replicas than prefill" 'spec\.replicas differs' \
		roles "$tmp/prefill.yaml" "$tmp/decode-bad.yaml" prefill decode
else
	add "not ok - prefill and decode overlays rendered"
fi
if have lws-prefill && have lws-decode; then
	check roles "$tmp/lws-prefill.yaml" "$tmp/lws-decode.yaml" prefill decode
	check lws-sync "$tmp/prefill.yaml" "$tmp/lws-prefill.yaml"
	expect_fail "LeaderWorkerSet sidecar drifting from the Deployment's" \
		'initContainers.* differs' lws-sync "$tmp/eks-efa.yaml" "$tmp/lws-prefill.yaml"
else
	add "not ok - lws-prefill and lws-decode overlays rendered"
fi

# Known-bad manifests: each must fail validation, for the right reason.
if have prefill; then
	while read -r m pattern; do
		expect_fail "$m" "$pattern" validate "$m" "$tmp/prefill.yaml" --mutate "$m"
	done <<'EOF_MUT'
engine-no-image containers\[engine\]\.image: Required value
sidecar-no-restartpolicy needs restartPolicy: Always
sidecar-restartpolicy-typo restartpolicy: unknown field
no-share-process-namespace shareProcessNamespace must be true
engine-no-socket-mount container engine does not mount /run/kvferry
sidecar-as-container runs as a plain container, not a native sidecar
port-not-a-number containerPort: must be integer
hugepages-no-memory hugepages need a cpu or memory request
service-ready-only publishNotReadyAddresses must be true
unknown-kind no schema for example.com/v1/Widget
EOF_MUT
fi

n=$(grep -Ec '^(not )?ok - ' "$res")
echo "1..$n"
i=0
while IFS= read -r line; do
	case "$line" in
	"ok - "* | "not ok - "*)
		i=$((i + 1))
		printf '%s\n' "$(sed -E "s/^(not ok|ok) - /\1 $i - /" <<<"$line")"
		;;
	*) printf '%s\n' "$line" ;;
	esac
done <"$res"
