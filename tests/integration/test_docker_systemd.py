"""Docker with its systemd cgroup driver drives puncker: `docker run --runtime=puncker` on a
systemd machine, as most Docker hosts are set up (native.cgroupdriver=systemd makes dockerd pass
--systemd-cgroup and cgroupsPath "system.slice:docker:<id>").

This host's pid 1 is not systemd, so dockerd runs inside the systemd container of
systemd_host.py, as a systemd service there, with the binary under test registered as a runtime.
No network is needed: the image is loaded from an archive, containers run with --network none."""

from __future__ import annotations

import json
import time

import pytest

from conftest import wait_for
from images import build_rootfs, write_docker_archive
from systemd_host import systemd_host  # noqa: F401  (the fixture)

IMAGE = "pieces-test-bb:latest"
MiB = 1024 * 1024


class InnerDocker:
    def __init__(self, host):
        self.host = host

    def __call__(self, *args, timeout: float = 60, check: bool = True):
        return self.host.exec(["docker", *map(str, args)], timeout=timeout, check=check)

    def ok(self, *args, **kw) -> str:
        return self(*args, **kw).stdout.strip()


@pytest.fixture(scope="module")
def docker(systemd_host):
    host = systemd_host
    d = host.bundles_host / "docker"
    d.mkdir()
    write_docker_archive(build_rootfs(d / "rootfs"), d / "image.tar", IMAGE)
    # No bridge and no iptables in the systemd container's own network namespace; /proc/sys
    # is read-only there, so dockerd leaves forwarding alone.
    (d / "daemon.json").write_text(json.dumps({
        "runtimes": {"puncker": {"path": host.puncker}},
        "exec-opts": ["native.cgroupdriver=systemd"],
        "storage-driver": "vfs", "bridge": "none", "iptables": False, "ip-masq": False,
        "ip-forward": False}))
    host.exec(["systemd-run", "--unit=dockerd.service", "--property=Delegate=yes", "/usr/sbin/dockerd",
               "--config-file", f"{host.bundles}/docker/daemon.json", "--data-root", "/var/lib/docker"])
    client = InnerDocker(host)
    deadline = time.monotonic() + 60
    while client("version", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise AssertionError("dockerd did not come up:\n" + host.journal(60))
        time.sleep(0.2)
    assert "Cgroup Driver: systemd" in client.ok("info")
    client("load", "-i", f"{host.bundles}/docker/image.tar")
    yield client
    ids = client.ok("ps", "-aq", check=False).split()
    if ids:
        client("rm", "-f", *ids, check=False, timeout=120)
    host.exec(["systemctl", "stop", "dockerd.service"], check=False, timeout=60)


def show(host, unit: str, *props: str) -> dict:
    out = host.exec(["systemctl", "show", unit, *[f"--property={p}" for p in props]]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def read(host, path: str) -> str:
    return host.exec(["cat", path]).stdout.strip()


def test_docker_run_update_stats_pause_and_rm_through_systemd(docker, systemd_host):
    host = systemd_host
    docker("run", "-d", "--name", "lim", "--runtime=puncker", "--network", "none",
           "--memory", "64m", "--cpus", "0.5", "--pids-limit", "40", "--cpuset-cpus", "0",
           IMAGE, "sleep", "1000")
    cid = docker.ok("inspect", "-f", "{{.Id}}", "lim")
    unit = f"docker-{cid}.scope"
    scope = f"/system.slice/{unit}"
    # The unit is puncker's (runc would describe it otherwise) and holds Docker's limits.
    props = show(host, unit, "ActiveState", "Description", "MemoryLimit", "CPUQuotaPerSecUSec", "TasksMax")
    assert props == {"ActiveState": "active", "Description": f"puncker container {cid}",
                     "MemoryLimit": str(64 * MiB), "CPUQuotaPerSecUSec": "500ms", "TasksMax": "40"}
    pid = docker.ok("inspect", "-f", "{{.State.Pid}}", "lim")
    assert f"0::{scope}" in read(host, f"/proc/{pid}/cgroup").splitlines()
    assert read(host, f"/sys/fs/cgroup/memory{scope}/memory.limit_in_bytes") == str(64 * MiB)
    assert read(host, f"/sys/fs/cgroup/cpu{scope}/cpu.cfs_quota_us") == "50000"
    assert read(host, f"/sys/fs/cgroup/pids{scope}/pids.max") == "40"
    assert read(host, f"/sys/fs/cgroup/cpuset{scope}/cpuset.cpus") == "0"

    docker("update", "--memory", "128m", "--memory-swap", "256m", "--pids-limit", "60", "lim")
    assert show(host, unit, "MemoryLimit", "TasksMax") == {"MemoryLimit": str(128 * MiB), "TasksMax": "60"}
    assert read(host, f"/sys/fs/cgroup/memory{scope}/memory.limit_in_bytes") == str(128 * MiB)
    assert read(host, f"/sys/fs/cgroup/pids{scope}/pids.max") == "60"
    stats = json.loads(docker.ok("stats", "--no-stream", "--format", "{{json .}}", "lim"))
    assert stats["MemUsage"].endswith("/ 128MiB"), stats
    assert stats["PIDs"] == "1", stats

    docker("pause", "lim")
    assert docker.ok("inspect", "-f", "{{.State.Status}}", "lim") == "paused"
    assert read(host, f"/sys/fs/cgroup/freezer{scope}/freezer.state") == "FROZEN"
    docker("unpause", "lim")
    assert read(host, f"/sys/fs/cgroup/freezer{scope}/freezer.state") == "THAWED"

    docker("rm", "-f", "lim")
    wait_for(lambda: show(host, unit, "LoadState") == {"LoadState": "not-found"}, 10, f"{unit} to go")
    for hierarchy in ("memory", "cpuset", "freezer", "pids", "systemd", "unified"):
        assert not host.host_cgroup(scope, hierarchy).exists(), hierarchy
