"""containerd with the systemd cgroup driver drives puncker: what a Kubernetes node whose
kubelet uses the systemd driver does through a RuntimeClass handler with SystemdCgroup = true
(docs/kubernetes.md). `ctr run --runc-systemd-cgroup` sets the same runc shim option.

This host's pid 1 is not systemd, so containerd runs as a service inside the systemd container
of systemd_host.py; the image is imported from an archive and the native snapshotter used."""

from __future__ import annotations

import time

import pytest

from conftest import wait_for
from images import build_rootfs, write_docker_archive
from systemd_host import systemd_host  # noqa: F401  (the fixture)

IMAGE = "docker.io/library/pieces-test-bb:latest"
NAMESPACE = "pieces-test"
SOCKET = "/run/pieces-containerd/containerd.sock"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def ctr(systemd_host):
    host = systemd_host
    d = host.bundles_host / "containerd"
    d.mkdir()
    write_docker_archive(build_rootfs(d / "rootfs"), d / "image.tar", IMAGE.rsplit("/", 1)[1])
    (d / "config.toml").write_text(
        'version = 2\n'
        'root = "/var/lib/pieces-containerd"\n'
        'state = "/run/pieces-containerd"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{SOCKET}"\n')
    host.exec(["systemd-run", "--unit=pieces-containerd.service", "--property=Delegate=yes", "/usr/bin/containerd",
               "--config", f"{host.bundles}/containerd/config.toml"])

    def run(*args, check=True, timeout=60):
        return host.exec(["ctr", "--address", SOCKET, "--namespace", NAMESPACE, *map(str, args)],
                         check=check, timeout=timeout)

    deadline = time.monotonic() + 60
    while run("version", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise AssertionError("containerd did not come up:\n" + host.journal(60))
        time.sleep(0.2)
    run("images", "import", "--snapshotter", "native", f"{host.bundles}/containerd/image.tar")
    yield run
    for task in run("tasks", "ls", "-q", check=False).stdout.split():
        run("tasks", "kill", "-s", "SIGKILL", task, check=False)
        run("tasks", "delete", "-f", task, check=False)
    for c in run("containers", "ls", "-q", check=False).stdout.split():
        run("containers", "delete", c, check=False)
    host.exec(["systemctl", "stop", "pieces-containerd.service"], check=False, timeout=60)


def show(host, unit: str, *props: str) -> dict:
    out = host.exec(["systemctl", "show", unit, *[f"--property={p}" for p in props]]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_ctr_run_with_the_systemd_cgroup_driver(ctr, systemd_host):
    host = systemd_host
    ctr("run", "-d", "--snapshotter", "native", "--runc-binary", host.puncker, "--runc-systemd-cgroup",
        "--cgroup", "system.slice:ctr:k1", "--memory-limit", 48 * MiB, IMAGE, "k1", "sleep", "1000")
    unit = "ctr-k1.scope"
    props = show(host, unit, "ActiveState", "Description", "MemoryLimit", "Delegate")
    assert props == {"ActiveState": "active", "Description": "puncker container k1",
                     "MemoryLimit": str(48 * MiB), "Delegate": "yes"}
    pid = ctr("tasks", "ls").stdout.split("\n")[1].split()[1]
    assert "0::/system.slice/ctr-k1.scope" in host.exec(["cat", f"/proc/{pid}/cgroup"]).stdout.splitlines()
    assert host.exec(["cat", "/sys/fs/cgroup/memory/system.slice/ctr-k1.scope/memory.limit_in_bytes"]).stdout.strip() \
        == str(48 * MiB)
    ctr("tasks", "pause", "k1")
    assert "PAUSED" in ctr("tasks", "ls").stdout
    ctr("tasks", "resume", "k1")
    ctr("tasks", "kill", "-s", "SIGKILL", "k1")
    wait_for(lambda: "STOPPED" in ctr("tasks", "ls").stdout, 10, "the task to stop")
    ctr("tasks", "delete", "k1")
    ctr("containers", "delete", "k1")
    wait_for(lambda: show(host, unit, "LoadState") == {"LoadState": "not-found"}, 10, f"{unit} to go")
    assert not host.host_cgroup("/system.slice/ctr-k1.scope", "memory").exists()
