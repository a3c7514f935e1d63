"""linux.resources on this hybrid host's v1 hierarchies: read back, and enforced for real."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import release, spawn, wait_for

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


@pytest.mark.puncker_only  # runc accepts it, and its kill --all then reaches every process there
@pytest.mark.parametrize("path", ["/", "/a/../..", "../../../../../../.."])
def test_the_root_cgroup_is_refused(rt, bundle, path):
    # The root holds the whole machine: a container there would take every process with it on
    # kill --all or delete --force.
    b = bundle(["sleep", "100"], linux={"cgroupsPath": path})
    cid = rt.new_id()
    res = rt.run("create", "--bundle", b.path, cid, check=False)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "names the root of" in lines[0], res.stderr
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


def test_events_streams_an_oom_event(rt, bundle, workdir):
    """Without --stats, events reports the memory cgroup running out (v1: memory.oom_control)."""
    hog = "(dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null)"
    b = bundle(["sh", "-c", f"while [ ! -e /tmp/go ]; do sleep 0.05; done; {hog}; sleep 100"],
               linux={"resources": {"memory": {"limit": 16 * MiB, "swap": 16 * MiB}}})
    cid = rt.create_started(b)
    out = workdir / "events.out"

    def events():
        return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]

    with open(out, "wb") as sink:
        proc = spawn(rt.cmd("events", "--interval", "1h", cid), stdout=sink, stderr=subprocess.PIPE)
    try:
        # The first stats event comes once the OOM watch is in place.
        first = wait_for(lambda: events(), what="the first stats event")[0]
        assert first["type"] == "stats" and first["id"] == cid, first
        assert first["data"]["memory"]["usage"]["limit"] == 16 * MiB, first
        (b.rootfs / "tmp" / "go").touch()
        wait_for(lambda: len(events()) > 1, what="an oom event")
        assert events()[1:] == [{"type": "oom", "id": cid}], events()
        rt.delete(cid, force=True)
        proc.wait(timeout=10)  # the stream ends with the container
        assert proc.returncode == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        release(proc)


UNIFIED = "/sys/fs/cgroup/unified"


def on_v1_only(rt, *args, **kw):
    """Runs the runtime with this host's cgroup2 hierarchy (and its cgroup.kill) out of sight,
    as on a pure v1 host."""
    argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
            f'umount {UNIFIED} && exec "$@"', "sh", *rt.cmd(*args)]
    return rt.raw(argv, **kw)


def test_kill_all_on_v1_freezes_so_nothing_forks_past_the_signal(rt, bundle):
    """A process that forks the moment another is killed escapes a kill that signals pid after
    pid; frozen, it cannot fork at all. Without a pid namespace nothing else kills them."""
    fillers, pairs = 1000, 4
    script = (
        "for n in $(seq {p}); do mkfifo /tmp/f$n; sleep 1000 > /tmp/f$n & done; "  # the watched ones
        "i=0; while [ $i -lt {f} ]; do sleep 1000 & i=$((i+1)); done; "  # pids in between
        # Each watcher (higher pids, signalled last) forks until the pids limit once it sees EOF.
        "for n in $(seq {p}); do {{ read x; while :; do sleep 1000 & done; }} < /tmp/f$n 2>/dev/null & done; "
        "wait").format(p=pairs, f=fillers)

    def host_pid_namespace(cfg):
        cfg["linux"]["namespaces"] = [ns for ns in cfg["linux"]["namespaces"] if ns["type"] != "pid"]

    # Each round gives a signal-by-signal kill a chance to miss a fork; two make a miss certain
    # in practice (measured: one round alone catches it about 6 times in 7).
    for _ in range(2):
        kill_all_of_a_forking_container(rt, bundle, script, fillers, pairs, host_pid_namespace)


def kill_all_of_a_forking_container(rt, bundle, script, fillers, pairs, host_pid_namespace):
    b = bundle(["sh", "-c", script], mutate=host_pid_namespace,
               linux={"resources": {"pids": {"limit": fillers + 300}}})
    cid = rt.create_started(b)
    pid = rt.state(cid)["pid"]
    procs = host_cgroup_file(pid, "pids", "cgroup.procs")
    current = host_cgroup_file(pid, "pids", "pids.current")
    try:
        wait_for(lambda: int(current.read_text()) >= fillers + 2 * pairs + 1, timeout=30,
                 what="every process started")
        on_v1_only(rt, "kill", "--all", cid, "KILL", check=True)
        deadline = time.monotonic() + 5
        while procs.read_text().split() and time.monotonic() < deadline:
            time.sleep(0.05)
        left = procs.read_text().split()
        assert not left, f"{len(left)} processes escaped kill --all"
        rt.delete(cid)
        assert not procs.parent.exists()
    finally:
        # Whatever escaped is killed here, so that a failure leaves nothing behind.
        while procs.exists() and procs.read_text().split():
            for p in procs.read_text().split():
                try:
                    os.kill(int(p), signal.SIGKILL)
                except ProcessLookupError:
                    pass
    rt.assert_clean(cid, b)


@pytest.mark.puncker_only  # runc 1.1 checks on cgroup v2 only
def test_update_with_check_before_update_refuses_a_limit_below_usage(rt, bundle, workdir):
    # 24 MiB of page cache, charged to the container's memory cgroup; the kernel itself would
    # reclaim it to meet a lower limit, so only the check stands in the way.
    b = bundle(["sh", "-c", "dd if=/dev/zero of=/tmp/fill bs=1M count=24 2>/dev/null; sleep 100"],
               linux={"resources": {"memory": {"limit": 256 * MiB}}})
    cid = rt.create_started(b)
    pid = rt.state(cid)["pid"]
    usage = host_cgroup_file(pid, "memory", "memory.usage_in_bytes")
    limit = host_cgroup_file(pid, "memory", "memory.limit_in_bytes")
    wait_for(lambda: int(usage.read_text()) >= 24 * MiB, what="24 MiB in use")
    request = workdir / "resources.json"
    request.write_text(json.dumps({"memory": {"limit": 8 * MiB, "checkBeforeUpdate": True}}))
    res = rt.run("update", "-r", request, cid, check=False)
    assert res.returncode != 0, res
    assert f"unable to set memory limit to {8 * MiB} (current usage: " in res.stderr, res
    assert len(res.stderr.strip().splitlines()) == 1, res
    assert limit.read_text().strip() == str(256 * MiB)  # unchanged
    # Above the usage the same request goes through.
    request.write_text(json.dumps({"memory": {"limit": 200 * MiB, "checkBeforeUpdate": True}}))
    rt.run("update", "-r", request, cid)
    assert limit.read_text().strip() == str(200 * MiB)
    # And without the check, the kernel reclaims the cache to meet the low limit.
    rt.run("update", "--memory", "8m", cid)
    assert limit.read_text().strip() == str(8 * MiB)
    assert rt.status(cid) == "running"
    rt.delete(cid, force=True)


def host_has_rdma() -> bool:
    return any(line.split()[0] == "rdma" and line.split()[-1] == "1"
               for line in Path("/proc/cgroups").read_text().splitlines()[1:])


@pytest.mark.puncker_only  # the error wording
def test_rdma_limits_without_an_rdma_controller_fail_cleanly(rt, bundle):
    if host_has_rdma():
        pytest.skip("this host has an rdma controller: the refusal cannot be shown here")
    b = bundle(["true"], linux={"resources": {"rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 100}}}})
    cid = rt.new_id()
    res = rt.run("run", "--bundle", b.path, cid, check=False)
    assert res.returncode != 0, res
    assert "linux.resources.rdma: this host has no rdma cgroup controller" in res.stderr, res
    assert len(res.stderr.strip().splitlines()) == 1, res
    rt.assert_clean(cid, b)
    # update refuses it the same way, and the container is untouched.
    running = rt.create_started(bundle(["sleep", "100"]))
    res = rt.run("update", "-r", "-", running, input=json.dumps({"rdma": {"mlx5_0": {"hcaHandles": 1}}}),
                 check=False)
    assert res.returncode != 0 and "no rdma cgroup controller" in res.stderr, res
    assert rt.status(running) == "running"
    rt.delete(running, force=True)
