#!/usr/bin/env bash
# The main job, offline: installs dependencies, builds and installs pieces and puncker, builds an
# image from a Piecefile whose base is a busybox root filesystem made here from Debian's
# busybox-static (a file:// URL: nothing is downloaded), builds it again from the cache, and
# runs containers from it; then runs a plain OCI bundle with puncker.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cmake --install build >/dev/null

work=$(mktemp -d /tmp/pieces-demo.XXXXXX)
export PIECES_ROOT=$work/store   # a store of its own, removed at the end
trap 'pieces ps -a -q 2>/dev/null | xargs -r pieces rm -f >/dev/null; rm -rf "$work"' EXIT

# A base root filesystem as a tarball, from busybox-static.
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp" "$work/ctx"
cp /bin/busybox "$work/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$work/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/rootfs/etc/passwd"
echo 'root:x:0:' > "$work/rootfs/etc/group"
tar -C "$work/rootfs" --numeric-owner -czf "$work/busybox-rootfs.tar.gz" .

cat > "$work/ctx/Piecefile" <<PIECEFILE
FROM_URL file://$work/busybox-rootfs.tar.gz
ENV GREETING="hello from a pieces container"
WORKDIR /app
COPY motd.txt ./
RUN echo "built by RUN on \$(date -u +%F)" > built.txt
CMD ["sh", "-c", "echo \$GREETING; cat motd.txt built.txt; echo 'I am pid' \$\$ 'on' \$(hostname)"]
PIECEFILE
echo "copied in by COPY" > "$work/ctx/motd.txt"

run() { echo "+ $*"; "$@"; }
run pieces build -t demo "$work/ctx"
run pieces build -t demo "$work/ctx"          # again: every step comes from the cache
run pieces images
run pieces run --rm demo
run pieces run --rm demo ps aux               # only the container's processes; the command is pid 1

# The runtime on its own: an OCI bundle, run by puncker.
mkdir -p "$work/bundle"
cp -a "$work/rootfs" "$work/bundle/rootfs"
cd "$work/bundle"
puncker spec
host_ns=$(for ns in pid mnt uts ipc net cgroup; do printf '%s=%s ' "$ns" "$(readlink /proc/self/ns/$ns)"; done)
jq --arg host_ns "$host_ns" '.process.terminal = false
    | .process.env += ["HOST_NS=" + $host_ns]
    | .process.args = ["sh", "-c", "echo \"I am pid $$ on host $(hostname)\"; for kv in $HOST_NS; do ns=${kv%%=*}; if [ \"$(readlink /proc/self/ns/$ns)\" = \"${kv#*=}\" ]; then echo \"  $ns namespace: shared with the host\"; else echo \"  $ns namespace: my own\"; fi; done"]' \
   config.json > config.json.new && mv config.json.new config.json
run puncker run "demo-$$"
