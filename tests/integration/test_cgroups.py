"""linux.resources on this hybrid host's v1 hierarchies: read back, and enforced for real."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

MiB = 1024 * 1024
CG = "/sys/fs/cgroup"


def with_cgroupns(cfg):
    if not any(ns["type"] == "cgroup" for ns in cfg["linux"]["namespaces"]):
        cfg["linux"]["namespaces"].append({"type": "cgroup"})


def run_limited(run_sh, script, resources, linux=None, **overrides):
    return run_sh(script, mutate=with_cgroupns, linux={"resources": resources, **(linux or {})}, **overrides)


def test_resources_are_written_to_the_cgroup(run_sh):
    files = ["memory/memory.limit_in_bytes", "memory/memory.memsw.limit_in_bytes",
             "memory/memory.soft_limit_in_bytes", "memory/memory.swappiness", "pids/pids.max",
             "cpu/cpu.shares", "cpu/cpu.cfs_period_us", "cpu/cpu.cfs_quota_us", "cpuset/cpuset.cpus",
             "cpuset/cpuset.mems"]
    res = run_limited(run_sh, "cat " + " ".join(f"{CG}/{f}" for f in files), {
        "memory": {"limit": 64 * MiB, "swap": 128 * MiB, "reservation": 32 * MiB, "swappiness": 10},
        "pids": {"limit": 42},
        "cpu": {"shares": 512, "period": 200000, "quota": 50000, "cpus": "0", "mems": "0"},
    })
    assert res.returncode == 0, res
    assert res.stdout.split() == [str(64 * MiB), str(128 * MiB), str(32 * MiB), "10", "42",
                                  "512", "200000", "50000", "0", "0"], res


def test_memory_hog_is_oom_killed(run_sh):
    script = "(dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null); echo rc=$?"
    limited = run_limited(run_sh, script, {"memory": {"limit": 16 * MiB, "swap": 16 * MiB}})
    assert limited.returncode == 0, limited
    assert "rc=137" in limited.stdout, limited  # SIGKILL from the OOM killer
    free = run_limited(run_sh, script, {"memory": {"limit": 256 * MiB}})
    assert "rc=0" in free.stdout, free


def test_fork_stops_at_the_pids_limit(run_sh):
    # Shell builtins only after the loop: once the limit is hit, nothing else can fork.
    script = ("(for i in $(seq 20); do sleep 3 & done) 2>/dev/null; "
              "read n < /sys/fs/cgroup/pids/pids.current; echo current=$n")
    res = run_limited(run_sh, script, {"pids": {"limit": 6}})
    assert res.returncode == 0, res
    assert "current=" in res.stdout, res
    assert int(res.stdout.split("current=")[1]) <= 6, res  # 20 sleeps were asked for
    unlimited = run_limited(run_sh, script, {"pids": {"limit": -1}})
    assert int(unlimited.stdout.split("current=")[1]) > 20, unlimited


def test_device_rules_are_enforced(run_sh):
    """The device cgroup denies a node the container has unless a rule allows it."""
    loop = {"path": "/dev/loop-probe", "type": "b", "major": 7, "minor": 0, "fileMode": 0o666}
    script = "head -c 0 /dev/loop-probe && echo opened; head -c 1 /dev/null; echo null-ok"
    denied = run_limited(run_sh, script, {"devices": [{"allow": False, "access": "rwm"}]},
                         linux={"devices": [loop]})
    assert "opened" not in denied.stdout and "null-ok" in denied.stdout, denied
    assert "Operation not permitted" in denied.stderr + denied.stdout, denied
    allowed = run_limited(run_sh, script, {"devices": [{"allow": False, "access": "rwm"},
                                                        {"allow": True, "type": "b", "major": 7, "minor": 0,
                                                         "access": "rw"}]},
                          linux={"devices": [loop]})
    assert "opened" in allowed.stdout, allowed


@pytest.mark.puncker_only  # the error wording
def test_bad_resource_value_fails_cleanly(rt, bundle):
    b = bundle(["true"], linux={"resources": {"memory": {"swappiness": 200}}})
    cid = rt.new_id()
    res = rt.run("run", "--bundle", b.path, cid, check=False)
    assert res.returncode != 0
    assert "linux.resources.memory.swappiness" in res.stderr, res.stderr
    rt.assert_clean(cid, b)


def host_cgroup_file(pid: int, controller: str, name: str) -> Path:
    """The host path of `name` in the v1 `controller` cgroup that `pid` is in."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return Path(CG) / controller / path.lstrip("/") / name
    raise AssertionError(f"{pid} is in no {controller} cgroup")


def test_pause_freezes_and_resume_thaws(rt, bundle):
    # The container appends to a file as fast as it can: its size is its progress.
    b = bundle(["sh", "-c", "while true; do echo x >> /tmp/progress; done"])
    cid = rt.create_started(b)
    progress = b.rootfs / "tmp" / "progress"

    def size():
        return progress.stat().st_size if progress.exists() else 0

    def wait_for_growth(since):
        deadline = time.monotonic() + 5
        while size() == since and time.monotonic() < deadline:
            time.sleep(0.02)
        return size() != since

    assert wait_for_growth(0), "the container never made progress"
    rt.run("pause", cid)
    assert rt.status(cid) == "paused"
    frozen = size()
    time.sleep(0.3)
    assert size() == frozen  # no progress while paused
    rt.run("resume", cid)
    assert rt.status(cid) == "running"
    assert wait_for_growth(frozen), "no progress after resume"
    assert rt.run("resume", cid, check=False).returncode != 0  # not paused any more
    rt.delete(cid, force=True)


def test_update_changes_limits_of_a_running_container(rt, bundle):
    cid = rt.create_started(bundle(["sleep", "100"]))
    pid = rt.state(cid)["pid"]
    rt.run("update", "--memory", "48m", "--pids-limit", "9", "--cpu-share", "300", "--cpu-period", "100000",
           "--cpu-quota", "20000", cid)
    assert host_cgroup_file(pid, "memory", "memory.limit_in_bytes").read_text().strip() == str(48 * MiB)
    assert host_cgroup_file(pid, "pids", "pids.max").read_text().strip() == "9"
    assert host_cgroup_file(pid, "cpu", "cpu.shares").read_text().strip() == "300"
    assert host_cgroup_file(pid, "cpu", "cpu.cfs_quota_us").read_text().strip() == "20000"
    # The form Docker uses: linux.resources as JSON on stdin.
    rt.run("update", "-r", "-", cid, input=json.dumps({"memory": {"limit": 96 * MiB}, "pids": {"limit": 11}}))
    assert host_cgroup_file(pid, "memory", "memory.limit_in_bytes").read_text().strip() == str(96 * MiB)
    assert host_cgroup_file(pid, "pids", "pids.max").read_text().strip() == "11"
    rt.delete(cid, force=True)


def test_events_stats(rt, bundle):
    b = bundle(["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 100"],
               linux={"resources": {"memory": {"limit": 64 * MiB}, "pids": {"limit": 50}}})
    cid = rt.create_started(b)
    time.sleep(0.3)
    event = json.loads(rt.run("events", "--stats", cid).stdout.splitlines()[0])
    assert event["type"] == "stats" and event["id"] == cid
    data = event["data"]
    assert data["memory"]["usage"]["limit"] == 64 * MiB
    assert 0 < data["memory"]["usage"]["usage"] <= 64 * MiB
    assert data["pids"] == {"current": 1, "limit": 50}  # sh, which execs sleep at the end
    assert data["cpu"]["usage"]["total"] > 0
    rt.delete(cid, force=True)


@pytest.mark.puncker_only  # runc needs a running systemd for --systemd-cgroup
def test_systemd_cgroup_path_maps_to_cgroupfs_without_systemd(rt, bundle):
    cid = rt.new_id()
    b = bundle(["sleep", "100"], linux={"cgroupsPath": f"system.slice:pieces-test:{cid}"})
    rt.bundles.append(b)
    rt.run("create", "--bundle", b.path, cid, global_args=["--systemd-cgroup"])
    pid = rt.state(cid)["pid"]
    scope = Path(CG) / "pids" / "system.slice" / f"pieces-test-{cid}.scope"
    assert str(pid) in (scope / "cgroup.procs").read_text().split()
    rt.delete(cid, force=True)
    assert not scope.exists()
    # The slice stays, as systemd's would; tidy it away when nothing else uses it.
    for slice_dir in Path(CG).glob("*/system.slice"):
        try:
            slice_dir.rmdir()
        except OSError:
            pass
