#!/bin/sh
# kvferry image entrypoint: prefer the AWS EFA libfabric when the image
# or the node (mounted at the same path) provides one, then run the
# command (kvferryd by default). KVFERRY_EFA_PREFIX moves the place
# looked at, for tests.
set -eu
efa="${KVFERRY_EFA_PREFIX:-/opt/amazon/efa}"
for d in "$efa/lib64" "$efa/lib"; do
	if [ -d "$d" ]; then
		LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
		export LD_LIBRARY_PATH
	fi
done
if [ "$#" -eq 0 ]; then
	set -- kvferryd
fi
exec "$@"
