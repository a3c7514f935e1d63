#!/usr/bin/env bash
# Installs everything Pieces needs to build and test, from Debian's packages only.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(
  # build
  cmake ninja-build g++ pkg-config
  # libraries
  nlohmann-json3-dev libcli11-dev libseccomp-dev libcap-dev
  # pieces: layers (tar, gzip/xz/zstd), digests, FROM_URL and registries over http(s)
  libarchive-dev nettle-dev libcurl4-openssl-dev
  # puncker --systemd-cgroup: sd-bus's header (the library is loaded on first use), and the
  # systemd and D-Bus daemons the tests boot inside a container, since this host's pid 1 is not systemd
  libsystemd-dev systemd dbus
  # tests
  libgtest-dev googletest python3 python3-pytest busybox-static linux-libc-dev
  golang-github-containers-common   # a seccomp profile as container engines ship it
  # runtimes the tests and benchmarks compare with
  runc crun hyperfine jq procps
  # tools that read and write OCI image layouts, to check the store against
  skopeo
  # a real registry (the CNCF distribution registry) the pull tests start on loopback
  docker-registry openssl   # openssl: the TLS registry test makes its own CA
  # a real Docker credential helper (docker-credential-pass) over a throwaway password store
  golang-docker-credential-helpers pass gnupg
  # real clients the tests drive: dockerd; containerd and ctr (its runc shim calls puncker);
  # podman with conmon (rootful, --network none: no slirp4netns, uidmap or netavark needed)
  docker.io containerd podman conmon
  # the Docker CLI test's own bridge network: ip for the bridge, iptables for dockerd's rules
  iproute2 iptables
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
