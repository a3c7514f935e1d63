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
# Non-interactive: no terminal, and a command that reports what the container sees.
sed -i -e 's/"terminal": true/"terminal": false/' \
       -e 's|^\(\t*\)"sh"$|\1"sh", "-c", "echo \\"I am pid $$ on $(hostname)\\"; echo namespaces:; ls -l /proc/self/ns \| sed -n \\"s/.* \\\\([a-z_]*\\\\) -> .*/  \\\\1/p\\" \| sort \| tr \\"\\\\n\\" \\" \\"; echo; ps"|' config.json
echo "+ puncker run demo-$$"
puncker run "demo-$$"
