"""--systemd-cgroup against a real systemd: the container's cgroup is a transient unit systemd
starts, holds the limits of, changes on update and stops on delete.

This host's pid 1 is not systemd, so the runtime under test runs inside a container whose pid 1
is the host's systemd (systemd_host.py); the cgroups it makes are read back from there and from
the host. Where systemd does not run, --systemd-cgroup maps to a cgroupfs path instead
(test_cgroups.py)."""

from __future__ import annotations

import contextlib
import json
import threading

import pytest

from conftest import wait_for
from systemd_host import MODES, systemd_host  # noqa: F401  (the fixture)

each_mode = pytest.mark.parametrize("systemd_host", MODES, indirect=True)
hybrid = pytest.mark.parametrize("systemd_host", ["hybrid"], indirect=True)

MiB = 1024 * 1024


@contextlib.contextmanager
def container(host, name: str, cgroups_path: str, resources=None):
    """A `sleep` container run detached with --systemd-cgroup, force-deleted afterwards."""
    linux = {"cgroupsPath": cgroups_path}
    if resources is not None:
        linux["resources"] = resources
    b = host.bundle_dir(name, ["sleep", "1000"], linux=linux)
    try:
        host.inner("run", "-d", "--bundle", b.path, name)
        yield b
    finally:
        res = host.inner("delete", "--force", name)
        host.remove_bundle(b)
    assert res.stderr == "", res


def inner_state(host, cid: str) -> dict:
    return json.loads(host.inner("state", cid).stdout)


def show(host, unit: str, *props: str) -> dict:
    out = host.exec(["systemctl", "show", unit, *[f"--property={p}" for p in props]]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def show_list(host, unit: str, prop: str) -> list[str]:
    """A list property: systemctl prints one line per entry."""
    out = host.exec(["systemctl", "show", unit, f"--property={prop}"]).stdout
    return [line.split("=", 1)[1] for line in out.splitlines() if line.startswith(prop + "=")]


def read(host, path: str) -> str:
    return host.exec(["cat", path]).stdout.strip()


def unit_gone(host, unit: str) -> bool:
    return show(host, unit, "LoadState", "ActiveState") in (
        {"LoadState": "not-found", "ActiveState": "inactive"},)


@each_mode
def test_the_container_runs_in_a_delegated_scope(systemd_host):
    host = systemd_host
    unit = "puncker-sc1.scope"
    with container(host, "sc1", "system.slice:puncker:sc1"):
        props = show(host, unit, "ActiveState", "ControlGroup", "Delegate", "Slice",
                     "DefaultDependencies", "Description", "CollectMode")
        # CollectMode: a scope that fails (an OOM kill can do it) is unloaded all the same.
        assert props == {"ActiveState": "active", "ControlGroup": "/system.slice/puncker-sc1.scope",
                         "Delegate": "yes", "Slice": "system.slice", "DefaultDependencies": "no",
                         "Description": "puncker container sc1", "CollectMode": "inactive-or-failed"}
        pid = inner_state(host, "sc1")["pid"]
        cgroups = read(host, f"/proc/{pid}/cgroup").splitlines()
        assert "0::/system.slice/puncker-sc1.scope" in cgroups
        if host.mode == "hybrid":
            # systemd's v1 hierarchies and the ones it leaves alone (freezer) agree.
            assert any(line.endswith(":name=systemd:/system.slice/puncker-sc1.scope") for line in cgroups)
            assert any(":freezer:/system.slice/puncker-sc1.scope" in line for line in cgroups), cgroups
        # systemd knows the process as the scope's.
        status = host.exec(["systemctl", "status", "--no-pager", unit], check=False).stdout
        assert f"{pid} sleep 1000" in status
        # From the host, the directory systemd made holds the container's init.
        assert host.host_cgroup("/system.slice/puncker-sc1.scope").is_dir()
        # A process exec'd into the container joins the same scope.
        res = host.inner("exec", "sc1", "sh", "-c", "cat /proc/self/cgroup; echo; cat /proc/1/cgroup")
        own, _, init = res.stdout.partition("\n\n")
        assert own.split() == init.split(), res
    wait_for(lambda: unit_gone(host, unit), 10, f"{unit} to be gone")
    assert not host.host_cgroup("/system.slice/puncker-sc1.scope").exists()
    if host.mode == "hybrid":
        for hierarchy in ("memory", "freezer", "cpuset", "systemd"):
            assert not host.host_cgroup("/system.slice/puncker-sc1.scope", hierarchy).exists(), hierarchy
    assert host.sh("ls /run/puncker 2>/dev/null; true").stdout.split() == []


@hybrid
def test_limits_are_unit_properties_and_cgroup_files(systemd_host):
    host = systemd_host
    resources = {"memory": {"limit": 64 * MiB},
                 "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
                 "pids": {"limit": 50}}
    unit = "puncker-lim1.scope"
    scope = "/system.slice/puncker-lim1.scope"
    with container(host, "lim1", "system.slice:puncker:lim1", resources):
        props = show(host, unit, "MemoryLimit", "CPUShares", "CPUQuotaPerSecUSec",
                     "CPUQuotaPeriodUSec", "TasksMax", "MemoryAccounting", "TasksAccounting")
        assert props == {"MemoryLimit": str(64 * MiB), "CPUShares": "512", "CPUQuotaPerSecUSec": "500ms",
                         "CPUQuotaPeriodUSec": "100ms", "TasksMax": "50", "MemoryAccounting": "yes",
                         "TasksAccounting": "yes"}
        assert read(host, f"/sys/fs/cgroup/memory{scope}/memory.limit_in_bytes") == str(64 * MiB)
        assert read(host, f"/sys/fs/cgroup/cpu{scope}/cpu.shares") == "512"
        assert read(host, f"/sys/fs/cgroup/cpu{scope}/cpu.cfs_quota_us") == "50000"
        assert read(host, f"/sys/fs/cgroup/pids{scope}/pids.max") == "50"
        # systemd has no v1 cpuset: the file is written all the same.
        assert read(host, f"/sys/fs/cgroup/cpuset{scope}/cpuset.cpus") == "0"

        # update goes to systemd too: a daemon-reload, which re-applies what systemd holds,
        # keeps the new values.
        # A quota alone is a share of the period in force (50 ms here): 25 ms per 50 ms is 500 ms/s.
        host.inner("update", "--cpu-period", "50000", "lim1")
        host.inner("update", "--cpu-quota", "25000", "lim1")
        assert show(host, unit, "CPUQuotaPerSecUSec", "CPUQuotaPeriodUSec") == {
            "CPUQuotaPerSecUSec": "500ms", "CPUQuotaPeriodUSec": "50ms"}
        host.inner("update", "--memory", str(128 * MiB), "--pids-limit", "80", "lim1")
        assert show(host, unit, "MemoryLimit", "TasksMax") == {"MemoryLimit": str(128 * MiB), "TasksMax": "80"}
        # Values changed behind systemd's back are put back from what it holds: the new ones.
        host.sh(f"echo {96 * MiB} > /sys/fs/cgroup/memory{scope}/memory.limit_in_bytes; "
                f"echo 70 > /sys/fs/cgroup/pids{scope}/pids.max")
        host.exec(["systemctl", "daemon-reload"])
        assert read(host, f"/sys/fs/cgroup/memory{scope}/memory.limit_in_bytes") == str(128 * MiB)
        assert read(host, f"/sys/fs/cgroup/pids{scope}/pids.max") == "80"

        # pause and resume still go through the cgroup (the freezer, which systemd leaves alone).
        host.inner("pause", "lim1")
        assert inner_state(host, "lim1")["status"] == "paused"
        host.inner("resume", "lim1")
        assert inner_state(host, "lim1")["status"] == "running"
    wait_for(lambda: unit_gone(host, unit), 10, f"{unit} to be gone")


@hybrid
def test_device_rules_become_a_strict_device_policy(systemd_host):
    host = systemd_host
    devices = [{"allow": False, "access": "rwm"},
               {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    unit = "puncker-dev1.scope"
    with container(host, "dev1", "system.slice:puncker:dev1", {"devices": devices}):
        assert show(host, unit, "DevicePolicy", "NeedDaemonReload") == {"DevicePolicy": "strict",
                                                                          "NeedDaemonReload": "no"}
        allowed = show_list(host, unit, "DeviceAllow")
        assert "/dev/char/1:3 rwm" in allowed and "char-136 rwm" in allowed, allowed
        # systemd's own rules, not only ours: opened wide behind its back, then re-applied by it.
        devices = "/sys/fs/cgroup/devices/system.slice/puncker-dev1.scope"
        host.sh(f"echo a > {devices}/devices.allow")
        assert read(host, f"{devices}/devices.list") == "a *:* rwm"
        host.exec(["systemctl", "daemon-reload"])
        listed = read(host, f"{devices}/devices.list").splitlines()
        assert "c 1:3 rwm" in listed and "a *:* rwm" not in listed, listed
        # Enforced: /dev/null opens, a device nothing allowed does not.
        res = host.inner("exec", "dev1", "sh", "-c",
                         "echo x > /dev/null && mknod /tmp/loop b 7 0 && head -c1 /tmp/loop",
                         check=False)
        assert res.returncode != 0 and "Operation not permitted" in res.stderr, res


@each_mode
def test_a_unit_systemd_refuses_fails_create_and_leaves_nothing(systemd_host):
    host = systemd_host
    with container(host, "dup1", "system.slice:puncker:dup"):
        second = host.bundle_dir("dup2", ["sleep", "1000"], linux={"cgroupsPath": "system.slice:puncker:dup"})
        res = host.inner("run", "-d", "--bundle", second.path, "dup2", check=False)
        assert res.returncode != 0
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and "puncker-dup.scope" in lines[0], res
        assert host.inner("state", "dup2", check=False).returncode != 0
        assert "dup2" not in host.sh("ls /run/puncker").stdout.split()
        assert host.sh("ps -o args | grep -c '^sleep 1000$'").stdout.strip() == "1"
        # The first container's unit and cgroup were not taken away.
        assert show(host, "puncker-dup.scope", "ActiveState") == {"ActiveState": "active"}
        assert inner_state(host, "dup1")["status"] == "running"
        assert host.host_cgroup("/system.slice/puncker-dup.scope").is_dir()
        host.remove_bundle(second)


@each_mode
def test_a_slice_name_makes_a_slice_unit_the_init_joins(systemd_host):
    host = systemd_host
    with container(host, "sl1", "system.slice::system-puncker.slice"):
        props = show(host, "system-puncker.slice", "ActiveState", "ControlGroup")
        assert props == {"ActiveState": "active", "ControlGroup": "/system.slice/system-puncker.slice"}
        pid = inner_state(host, "sl1")["pid"]
        assert "0::/system.slice/system-puncker.slice" in read(host, f"/proc/{pid}/cgroup").splitlines()
    # A slice systemd also knows by its name alone stays loaded, stopped.
    wait_for(lambda: show(host, "system-puncker.slice", "ActiveState") == {"ActiveState": "inactive"}, 10,
             "the slice to be stopped")


@hybrid
def test_without_a_bus_daemon_systemd_is_reached_on_its_private_socket(systemd_host):
    host = systemd_host
    host.exec(["systemctl", "stop", "dbus.socket", "dbus.service"])
    try:
        assert host.exec(["busctl", "--system", "status"], check=False).returncode != 0
        with container(host, "nobus1", "system.slice:puncker:nobus1"):
            assert show(host, "puncker-nobus1.scope", "ActiveState") == {"ActiveState": "active"}
        wait_for(lambda: unit_gone(host, "puncker-nobus1.scope"), 10, "the scope to be gone")
    finally:
        host.exec(["systemctl", "start", "dbus.socket", "dbus.service"])


@hybrid
def test_a_failed_unit_of_the_same_name_is_reset_and_reused(systemd_host):
    host = systemd_host
    unit = "puncker-rf1.scope"
    # A scope that ends by timeout stays loaded as failed, and would refuse the name.
    host.exec(["systemd-run", "--scope", f"--unit={unit}", "--property=RuntimeMaxSec=1", "sleep", "30"],
              check=False, timeout=30)
    assert show(host, unit, "ActiveState") == {"ActiveState": "failed"}
    with container(host, "rf1", "system.slice:puncker:rf1"):
        props = show(host, unit, "ActiveState", "Description")
        assert props == {"ActiveState": "active", "Description": "puncker container rf1"}



@hybrid
def test_run_reconnects_when_the_bus_daemon_restarted_during_the_container(systemd_host):
    """A foreground `run` asks systemd for the scope at create and stops it when the container
    exits, on the one D-Bus connection of the process; a restart of dbus in between closes that
    connection. The stop goes out on a new one: no warning, the scope stopped by the runtime.
    The init leaves a child behind (no pid namespace), so the scope is not empty and systemd
    would not stop it by itself before the runtime asks."""
    host = systemd_host
    unit = "puncker-bus1.scope"
    script = "sleep 1000 & while [ ! -e /go ]; do sleep 0.1; done"

    def no_pid_namespace(config):
        config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "pid"]

    b = host.bundle_dir("bus1", ["sh", "-c", script], mutate=no_pid_namespace,
                        linux={"cgroupsPath": "system.slice:puncker:bus1"})
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(res=host.inner("run", "--bundle", b.path, "bus1",
                                                                           check=False, timeout=120)))
    runner.start()
    try:
        wait_for(lambda: show(host, unit, "ActiveState") == {"ActiveState": "active"}, 30, f"{unit} to be active")
        main_pid = show(host, "dbus.service", "MainPID")["MainPID"]
        host.exec(["systemctl", "restart", "dbus.service"])
        wait_for(lambda: host.exec(["busctl", "--system", "status"], check=False).returncode == 0, 30, "dbus back")
        assert show(host, "dbus.service", "MainPID")["MainPID"] != main_pid
        (b.host_path / "rootfs" / "go").touch()
        runner.join(120)
        assert not runner.is_alive()
        res = result["res"]
        assert res.returncode == 0 and res.stderr == "", res
        # The runtime's StopUnit, not systemd noticing an empty scope: gone at once.
        assert unit_gone(host, unit) or show(host, unit, "ActiveState")["ActiveState"] in ("inactive", "deactivating")
    finally:
        (b.host_path / "rootfs" / "go").touch()
        runner.join(120)
        host.inner("delete", "--force", "bus1", check=False)
        host.remove_bundle(b)
