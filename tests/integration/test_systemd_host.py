"""The systemd container of systemd_host.py boots, answers on the system bus, manages cgroups
the host can see, runs the inner puncker, and leaves nothing behind: the ground the
--systemd-cgroup tests stand on. Each test runs with systemd in both cgroup modes."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from conftest import cgroup_dirs_named, mounts_under, pid_alive, reap_zombie_children, wait_for
from systemd_host import MODES, booted_systemd, systemd_host  # noqa: F401  (the fixture)

each_mode = pytest.mark.parametrize("systemd_host", MODES, indirect=True)


def init_host_pid(host) -> int:
    return json.loads(host.outer("state", host.id).stdout)["pid"]


def procs(cgroup_dir: Path) -> list[int]:
    return [int(p) for p in (cgroup_dir / "cgroup.procs").read_text().split()]


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


@each_mode
def test_systemd_is_pid_1_and_answers_on_the_system_bus(systemd_host):
    assert systemd_host.exec(["cat", "/proc/1/comm"]).stdout.strip() == "systemd"
    res = systemd_host.exec(["busctl", "--system", "call", "org.freedesktop.systemd1",
                             "/org/freedesktop/systemd1", "org.freedesktop.DBus.Properties", "Get",
                             "ss", "org.freedesktop.systemd1.Manager", "Version"])
    assert res.stdout.startswith('v s "252'), res
    assert systemd_host.system_state() in ("running", "degraded")
    assert systemd_host.unit_property("dbus.service", "ActiveState") == "active"
    # The console reaches the file failures are reported from.
    assert "running in system mode" in systemd_host.console_text()


@each_mode
def test_cgroup_mode_is_the_one_asked_for(systemd_host):
    fstypes = systemd_host.sh("stat -fc %T /sys/fs/cgroup /sys/fs/cgroup/unified "
                              "/sys/fs/cgroup/systemd 2>/dev/null; true").stdout.split()
    init_scope_v2 = systemd_host.host_cgroup("init.scope", "unified")
    init_scope_v1 = systemd_host.host_cgroup("init.scope", "systemd")
    if systemd_host.mode == "hybrid":
        assert fstypes == ["tmpfs", "cgroup2fs", "cgroupfs"]
        # systemd keeps its tree in both the cgroup2 and the name=systemd hierarchy.
        assert init_host_pid(systemd_host) in procs(init_scope_v1)
    else:
        assert fstypes == ["cgroup2fs"]
        assert not init_scope_v1.exists()
    assert init_host_pid(systemd_host) in procs(init_scope_v2)


@each_mode
def test_transient_units_make_cgroups_the_host_sees(systemd_host):
    unit = "smoke-svc.service"
    systemd_host.exec(["systemd-run", f"--unit={unit}", "--property=Type=exec", "sleep", "1000"])
    assert systemd_host.unit_property(unit, "ControlGroup") == f"/system.slice/{unit}"
    on_host = systemd_host.host_cgroup(f"/system.slice/{unit}")
    pids = wait_for(lambda: procs(on_host), 10, f"a process in {on_host}")
    assert [cmdline(p) for p in pids] == [["/usr/bin/sleep", "1000"]]
    systemd_host.exec(["systemctl", "stop", unit])
    wait_for(lambda: not on_host.exists(), 10, f"{on_host} to be removed by systemd")

    res = systemd_host.exec(["systemd-run", "--scope", "--unit=smoke-scope",
                             "cat", "/proc/self/cgroup"])
    assert "0::/system.slice/smoke-scope.scope" in res.stdout.splitlines(), res


@each_mode
def test_the_inner_puncker_runs_a_bundle_from_the_shared_directory(systemd_host):
    b = systemd_host.bundle_dir("smoke", ["sleep", "1000"])
    assert (b.host_path / "config.json").exists()
    systemd_host.inner("run", "-d", "--bundle", b.path, "smoke1", systemd_cgroup=False)
    try:
        state = json.loads(systemd_host.inner("state", "smoke1", systemd_cgroup=False).stdout)
        assert state["status"] == "running"
        # Without --systemd-cgroup the inner container's cgroup sits beside systemd's tree,
        # inside the systemd container's own.
        on_host = systemd_host.host_cgroup("smoke1")
        assert [cmdline(p) for p in procs(on_host)] == [["sleep", "1000"]]
    finally:
        systemd_host.inner("delete", "--force", "smoke1", systemd_cgroup=False)
        systemd_host.remove_bundle(b)
    assert not systemd_host.host_cgroup("smoke1").exists()


@pytest.mark.parametrize("mode", MODES)
def test_teardown_leaves_nothing_and_the_next_boot_works(mode, runtime_binary, session_dir,
                                                        rootfs_template):
    for _ in range(2):
        base = Path(tempfile.mkdtemp(prefix=f"systemd-teardown-{mode}-", dir=session_dir))
        with booted_systemd(base, runtime_binary, mode, rootfs_template) as host:
            # Left running on purpose: a service, and an inner container in its own namespaces.
            host.exec(["systemd-run", "--unit=left.service", "sleep", "1000"])
            b = host.bundle_dir("left", ["sleep", "1000"])
            host.inner("run", "-d", "--bundle", b.path, "left1", systemd_cgroup=False)
            pids = [init_host_pid(host)] + procs(host.host_cgroup("/system.slice/left.service"))
            pids += procs(host.host_cgroup("left1"))
            assert len(pids) == 3
        # puncker delete --force alone removed it all, systemd's sub-cgroups included.
        assert host.left_after_delete == []
        reap_zombie_children()
        assert [p for p in pids if pid_alive(p)] == []
        assert host.leftovers() == []
        assert cgroup_dirs_named(host.id, depth=2) == []
        assert mounts_under(base) == []
        assert not base.exists()
        assert not os.path.exists(f"/sys/fs/cgroup/unified/{host.id}")
