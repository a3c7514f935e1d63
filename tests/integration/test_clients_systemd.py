"""Docker, containerd and podman with their systemd cgroup drivers drive puncker, as on most
hosts run by systemd: each passes --systemd-cgroup and a "slice:prefix:name" cgroupsPath, and
puncker makes every container a transient systemd scope over D-Bus.

- dockerd with native.cgroupdriver=systemd ("system.slice:docker:<id>");
- containerd through its runc shim with the systemd option (`ctr run --runc-systemd-cgroup`,
  the option a Kubernetes RuntimeClass handler with SystemdCgroup = true sets);
- podman with cgroup_manager = "systemd" ("machine.slice:libpod:<id>", conmon in a scope of
  its own).

This host's pid 1 is not systemd, so the daemons run as services inside the systemd container
of systemd_host.py, with the binary under test at /opt/pieces/puncker. No network is needed:
images are loaded from archives, containers run with --network none, storage is vfs/native."""

from __future__ import annotations

import json
import time

import pytest

from conftest import wait_for
from images import build_rootfs, write_docker_archive
from systemd_host import systemd_host  # noqa: F401  (the fixture)
from test_podman import CONTAINERS_CONF

MiB = 1024 * 1024


def show(host, unit: str, *props: str) -> dict:
    out = host.exec(["systemctl", "show", unit, *[f"--property={p}" for p in props]]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def read(host, path: str) -> str:
    return host.exec(["cat", path]).stdout.strip()


def start_service(host, unit: str, argv: list[str], ready, what: str) -> None:
    """Runs argv as a transient service in the systemd container and waits for ready()."""
    host.exec(["systemd-run", f"--unit={unit}", "--property=Delegate=yes", *argv])
    deadline = time.monotonic() + 60
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not come up:\n" + host.journal(60))
        time.sleep(0.2)


def image_archive(host, name: str, ref: str) -> str:
    """A one-layer image of busybox and the probe, as a docker-archive visible inside."""
    d = host.bundles_host / name
    d.mkdir()
    write_docker_archive(build_rootfs(d / "rootfs"), d / "image.tar", ref)
    return f"{host.bundles}/{name}/image.tar"


# ---------------------------------------------------------------------------------- Docker

DOCKER_IMAGE = "pieces-test-bb:latest"


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
    archive = image_archive(host, "docker", DOCKER_IMAGE)
    d = host.bundles_host / "docker"
    # No bridge and no iptables in the systemd container's own network namespace; /proc/sys
    # is read-only there, so dockerd leaves forwarding alone.
    (d / "daemon.json").write_text(json.dumps({
        "runtimes": {"puncker": {"path": host.puncker}},
        "exec-opts": ["native.cgroupdriver=systemd"],
        "storage-driver": "vfs", "bridge": "none", "iptables": False, "ip-masq": False,
        "ip-forward": False}))
    client = InnerDocker(host)
    start_service(host, "pieces-dockerd.service",
                  ["/usr/sbin/dockerd", "--config-file", f"{host.bundles}/docker/daemon.json",
                   "--data-root", "/var/lib/docker"],
                  lambda: client("version", check=False).returncode == 0, "dockerd")
    assert "Cgroup Driver: systemd" in client.ok("info")
    client("load", "-i", archive)
    yield client
    ids = client.ok("ps", "-aq", check=False).split()
    if ids:
        client("rm", "-f", *ids, check=False, timeout=120)
    host.exec(["systemctl", "stop", "pieces-dockerd.service"], check=False, timeout=60)


def test_docker_run_update_stats_pause_and_rm_through_systemd(docker, systemd_host):
    host = systemd_host
    docker("run", "-d", "--name", "lim", "--runtime=puncker", "--network", "none",
           "--memory", "64m", "--cpus", "0.5", "--pids-limit", "40", "--cpuset-cpus", "0",
           DOCKER_IMAGE, "sleep", "1000")
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


# ---------------------------------------------------------------------------------- containerd

CTR_IMAGE = "docker.io/library/pieces-test-bb:latest"
NAMESPACE = "pieces-test"
SOCKET = "/run/pieces-containerd/containerd.sock"


@pytest.fixture(scope="module")
def ctr(systemd_host):
    host = systemd_host
    archive = image_archive(host, "containerd", CTR_IMAGE.rsplit("/", 1)[1])
    d = host.bundles_host / "containerd"
    (d / "config.toml").write_text(
        'version = 2\n'
        'root = "/var/lib/pieces-containerd"\n'
        'state = "/run/pieces-containerd"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{SOCKET}"\n')

    def run(*args, check=True, timeout=60):
        return host.exec(["ctr", "--address", SOCKET, "--namespace", NAMESPACE, *map(str, args)],
                         check=check, timeout=timeout)

    start_service(host, "pieces-containerd.service",
                  ["/usr/bin/containerd", "--config", f"{host.bundles}/containerd/config.toml"],
                  lambda: run("version", check=False).returncode == 0, "containerd")
    run("images", "import", "--snapshotter", "native", archive)
    yield run
    for task in run("tasks", "ls", "-q", check=False).stdout.split():
        run("tasks", "kill", "-s", "SIGKILL", task, check=False)
        run("tasks", "delete", "-f", task, check=False)
    for c in run("containers", "ls", "-q", check=False).stdout.split():
        run("containers", "delete", c, check=False)
    host.exec(["systemctl", "stop", "pieces-containerd.service"], check=False, timeout=60)


def test_ctr_run_with_the_systemd_cgroup_driver(ctr, systemd_host):
    host = systemd_host
    ctr("run", "-d", "--snapshotter", "native", "--runc-binary", host.puncker, "--runc-systemd-cgroup",
        "--cgroup", "system.slice:ctr:k1", "--memory-limit", 48 * MiB, CTR_IMAGE, "k1", "sleep", "1000")
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


# ---------------------------------------------------------------------------------- podman

PODMAN_IMAGE = "localhost/pieces-test-bb:latest"


@pytest.fixture(scope="module")
def podman(systemd_host):
    host = systemd_host
    archive = image_archive(host, "podman", "pieces-test-bb:latest")
    (host.bundles_host / "podman" / "containers.conf").write_text(
        CONTAINERS_CONF.format(puncker=host.puncker, cgroup_manager="systemd"))

    def run(*args, check=True, timeout=60):
        return host.exec(["env", f"CONTAINERS_CONF={host.bundles}/podman/containers.conf", "podman",
                          "--storage-driver", "vfs", "--runtime", "puncker", *map(str, args)],
                         check=check, timeout=timeout)

    run("load", "-i", archive)
    yield run
    run("rm", "-a", "-f", "-t", "0", check=False, timeout=120)


def test_podman_run_with_the_systemd_cgroup_manager(podman, systemd_host):
    host = systemd_host
    cid = podman("run", "-d", "--name", "p1", "--network", "none", "--memory", "32m", "--pids-limit", "30",
                 PODMAN_IMAGE, "sleep", "1000").stdout.strip()
    unit = f"libpod-{cid}.scope"
    scope = f"/machine.slice/{unit}"
    props = show(host, unit, "ActiveState", "Description", "Slice", "MemoryLimit", "TasksMax")
    assert props == {"ActiveState": "active", "Description": f"puncker container {cid}",
                     "Slice": "machine.slice", "MemoryLimit": str(32 * MiB), "TasksMax": "30"}
    # conmon, which podman keeps beside the container, has a scope of its own.
    assert show(host, f"libpod-conmon-{cid}.scope", "ActiveState") == {"ActiveState": "active"}
    assert read(host, f"/sys/fs/cgroup/memory{scope}/memory.limit_in_bytes") == str(32 * MiB)
    assert podman("stats", "--no-stream", "--format", "{{.MemUsage}}", "p1").stdout.strip().endswith("/ 33.55MB")
    podman("update", "--memory", "64m", "p1")
    assert show(host, unit, "MemoryLimit") == {"MemoryLimit": str(64 * MiB)}
    assert read(host, f"/sys/fs/cgroup/memory{scope}/memory.limit_in_bytes") == str(64 * MiB)
    podman("pause", "p1")
    assert podman("inspect", "-f", "{{.State.Status}}", "p1").stdout.strip() == "paused"
    podman("unpause", "p1")
    podman("rm", "-f", "-t", "0", "p1")
    wait_for(lambda: show(host, unit, "LoadState") == {"LoadState": "not-found"}, 10, f"{unit} to go")
    assert not host.host_cgroup(scope, "memory").exists()
