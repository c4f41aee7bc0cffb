#!/bin/bash
# tests/k8s/dockerfile.sh - static checks of the Dockerfile (docker itself
# cannot run here): its stages, that the build stage runs the project's
# `make deps && make`, that every file it copies out of the build stage
# is one `make` produces (asked of make's own database) and every file it
# copies from the context exists and is not .dockerignore'd, that the
# image's user and ports match the manifests, and the entrypoint's
# LD_LIBRARY_PATH handling, run for real. TAP output.
# shellcheck disable=SC2016,SC2013 # literal ${...}; paths have no spaces
set -u
src=${KVF_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
df="$src/Dockerfile"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -f "$df" ] || { echo "1..0 # SKIP no Dockerfile"; exit 0; }

echo "1..14"
n=0
pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() {
	n=$((n + 1))
	echo "not ok $n - $1"
	shift
	for l in "$@"; do echo "#   $l"; done
}
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }

# Join continuation lines so each instruction is one line.
sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$df" | grep -Ev '^\s*(#|$)' >"$tmp/df"

# Stages: name -> the line range of the stage.
grep -nE '^FROM ' "$tmp/df" >"$tmp/froms"
stages=$(sed -nE 's/^[0-9]+:FROM .* AS ([a-z0-9_-]+)$/\1/ip' "$tmp/froms" | tr '\n' ' ')
want="build runtime-debian runtime-efa runtime "
if [ "$stages" = "$want" ]; then
	pass "stages: $stages"
else
	fail "stages" "got '$stages', want '$want'"
fi
stage() { # the instructions of stage $1
	awk -v s="$1" 'toupper($1)=="FROM" { cur = tolower($NF) } cur == s' "$tmp/df"
}

# The build stage starts from debian:12 (the default of its ARG).
from=$(stage build | head -1)
argdef=$(grep -E '^ARG DEBIAN_IMAGE=' "$tmp/df" | head -1 | cut -d= -f2)
if [ "$from" = 'FROM ${DEBIAN_IMAGE} AS build' ] && [ "$argdef" = "debian:12" ]; then
	pass "build stage FROM debian:12"
else
	fail "build stage FROM debian:12" "got '$from' with DEBIAN_IMAGE=$argdef"
fi

if stage build | grep -Eq '^RUN make deps +&& +make( +-j[0-9]+)? +MODE=release +BUILD=build/release +all'; then
	pass "build stage runs make deps && make MODE=release BUILD=build/release all"
else
	fail "build stage runs make deps && make" "$(stage build | grep -E '^RUN.*make' || echo 'no RUN make')"
fi

# Everything copied from the build stage is a product of `make`.
bins=$(cd "$src" && make -pn MODE=release BUILD=build/release all 2>/dev/null |
	sed -n 's/^BINS := //p' | head -1)
# not_made FILE: the paths FILE copies from the build stage that make
# does not produce.
not_made() {
	local p bad=""
	for p in $(grep -E '^COPY --from=build ' "$1" | awk '{print $3}' | sed 's#^/src/##'); do
		case " $bins " in
		*" $p "*) ;;
		*) bad="$bad $p" ;;
		esac
	done
	echo "$bad"
}
copied=$(grep -E '^COPY --from=build ' "$tmp/df" | awk '{print $3}' | sed 's#^/src/##')
bad=$(not_made "$tmp/df")
if [ -n "$bins" ] && [ -n "$copied" ] && [ -z "${bad// /}" ]; then
	pass "$(wc -w <<<"$copied") paths copied from the build stage are make outputs"
else
	fail "paths copied from the build stage are make outputs" \
		"not made by make:${bad:- (none)}" "make's BINS: ${bins:-(none)}"
fi
# The same check must catch a path make does not make.
sed 's#build/release/libkvferry.so #build/release/lib/libkvferry.so.9 #' "$tmp/df" >"$tmp/df.bad"
if [ "$(not_made "$tmp/df.bad")" = " build/release/lib/libkvferry.so.9" ]; then
	pass "a COPY of a path make does not produce is caught"
else
	fail "a COPY of a path make does not produce is caught" "got '$(not_made "$tmp/df.bad")'"
fi
# ...and the image carries the three things it is for.
missing=""
for p in bin/kvferryd bin/kvferryctl libkvferry.so; do
	grep -q "build/release/$p" <<<"$copied" || missing="$missing $p"
done
if [ -z "$missing" ]; then
	pass "runtime image gets kvferryd, kvferryctl and libkvferry"
else
	fail "runtime image gets kvferryd, kvferryctl and libkvferry" "missing:$missing"
fi

# Files copied from the context exist and .dockerignore keeps them.
ctx=$(grep -E '^COPY ' "$tmp/df" | grep -v -- '--from=' | awk '{print $2}' | grep -v '^\.$')
bad=""
for p in $ctx; do
	[ -e "$src/$p" ] || bad="$bad $p(missing)"
	while read -r pat; do
		case "$pat" in '' | '#'*) continue ;; esac
		pat=${pat%/}
		case "$p" in "$pat" | "$pat"/*) bad="$bad $p(ignored by $pat)" ;; esac
	done <"$src/.dockerignore"
done
if [ -z "$bad" ]; then
	pass "context files copied exist and are not .dockerignore'd: $(tr '\n' ' ' <<<"$ctx")"
else
	fail "context files copied exist and are not .dockerignore'd" "$bad"
fi
if grep -qx '.git' "$src/.dockerignore" && grep -qx 'build/' "$src/.dockerignore"; then
	pass ".dockerignore keeps .git and build/ out of the context"
else
	fail ".dockerignore keeps .git and build/ out of the context"
fi

# The final stage matches the manifests: user 1000, ports 18515 9464.
dep="$src/k8s/base/deployment.yaml"
final=$(stage runtime)
if grep -q '^USER 1000:1000$' <<<"$final" && grep -q 'runAsUser: 1000' "$dep" &&
	grep -q '^EXPOSE 18515 9464$' <<<"$final" &&
	grep -q 'containerPort: 18515' "$dep" && grep -q 'containerPort: 9464' "$dep" &&
	grep -q '^ENTRYPOINT \["/usr/local/bin/kvferry-entrypoint"\]$' <<<"$final"; then
	pass "final stage: entrypoint, USER 1000 and ports 18515 9464 as in the manifests"
else
	fail "final stage: entrypoint, USER 1000 and ports as in the manifests" "$final"
fi

# The entrypoint, run for real with a fake EFA prefix.
ep="$src/k8s/image/entrypoint.sh"
mkdir -p "$tmp/efa/lib" "$tmp/bin"
printf '#!/bin/sh\necho "kvferryd LD=$LD_LIBRARY_PATH"\n' >"$tmp/bin/kvferryd"
chmod +x "$tmp/bin/kvferryd"
got=$(KVFERRY_EFA_PREFIX="$tmp/efa" LD_LIBRARY_PATH=/x PATH="$tmp/bin:$PATH" sh "$ep")
if [ "$got" = "kvferryd LD=$tmp/efa/lib:/x" ]; then
	pass "entrypoint puts <efa>/lib first on LD_LIBRARY_PATH and runs kvferryd by default"
else
	fail "entrypoint with EFA present" "got '$got'"
fi
got=$(KVFERRY_EFA_PREFIX="$tmp/none" sh "$ep" sh -c 'echo "LD=${LD_LIBRARY_PATH-unset}"')
if [ "$got" = "LD=unset" ]; then
	pass "entrypoint leaves LD_LIBRARY_PATH alone without EFA and runs its arguments"
else
	fail "entrypoint without EFA" "got '$got'"
fi

if command -v shellcheck >/dev/null 2>&1; then
	if out=$(shellcheck "$ep" 2>&1); then pass "shellcheck entrypoint.sh"; else fail "shellcheck entrypoint.sh" "$out"; fi
else
	skip "shellcheck entrypoint.sh" "shellcheck not installed"
fi
# dockerfilelint (npm, installed by tests/k8s/lib/deps.sh): instruction
# syntax, ports, and the like. It does not know ARG-templated FROM lines
# ("Base Image Missing Tag" on them); the tags are in the ARG defaults,
# checked above for the build stage.
dfl="$src/tests/k8s/lib/node_modules/.bin/dockerfilelint"
[ -x "$dfl" ] || sh "$src/tests/k8s/lib/deps.sh" >&2 || true
if [ -x "$dfl" ] && command -v node >/dev/null 2>&1; then
	issues=$("$dfl" -o json "$df" 2>&1 | node -e '
		let s = ""; process.stdin.on("data", (d) => s += d).on("end", () => {
			let r; try { r = JSON.parse(s); } catch (e) { console.log("bad output: " + s); return; }
			for (const f of r.files) for (const i of f.issues)
				if (!(i.title === "Base Image Missing Tag" && /\$\{/.test(i.content)))
					console.log(`line ${i.line}: ${i.title}: ${i.content}`);
		});')
	if [ -z "$issues" ]; then pass "dockerfilelint Dockerfile"; else fail "dockerfilelint Dockerfile" "$issues"; fi
else
	skip "dockerfilelint Dockerfile" "tests/k8s/lib/node_modules not installed (make deps)"
fi
if command -v hadolint >/dev/null 2>&1; then
	if out=$(hadolint "$df" 2>&1); then pass "hadolint Dockerfile"; else fail "hadolint Dockerfile" "$out"; fi
else
	skip "hadolint Dockerfile" "hadolint is in neither Debian 12 nor the npm registry"
fi
