#!/usr/bin/env bash
# The main job: installs dependencies, builds and installs puncker, then runs a container from a
# busybox bundle made offline from Debian's busybox-static, and shows what it sees inside.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cmake --install build >/dev/null
bundle=$(mktemp -d /tmp/puncker-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$bundle/rootfs/bin/$applet"
done
cd "$bundle"
puncker spec
# Non-interactive: no terminal, and a command that reports what the container sees: its pid,
# and for each namespace whether it differs from the host's (passed in as HOST_NS).
host_ns=$(for ns in pid mnt uts ipc net cgroup; do printf '%s=%s ' "$ns" "$(readlink /proc/self/ns/$ns)"; done)
jq --arg host_ns "$host_ns" '.process.terminal = false
    | .process.env += ["HOST_NS=" + $host_ns]
    | .process.args = ["sh", "-c", "echo \"I am pid $$ on host $(hostname)\"; for kv in $HOST_NS; do ns=${kv%%=*}; if [ \"$(readlink /proc/self/ns/$ns)\" = \"${kv#*=}\" ]; then echo \"  $ns namespace: shared with the host\"; else echo \"  $ns namespace: my own\"; fi; done; ps"]' \
   config.json > config.json.new && mv config.json.new config.json
echo "+ puncker run demo-$$"
puncker run "demo-$$"
