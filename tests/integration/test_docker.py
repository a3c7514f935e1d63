"""The real Docker daemon driving puncker: dockerd and its containerd, started by the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from docker_daemon import IMAGE, docker_daemon

# Docker's default capability set, as bits of CapEff.
DOCKER_CAPS_MASK = 0x00000000A80425FB


@pytest.fixture(scope="module")
def docker(runtime_binary, tmp_path_factory):
    """A private dockerd with no bridge network, puncker as a runtime."""
    base = tmp_path_factory.mktemp("dockerd")
    with docker_daemon(base, runtime_binary, "--bridge=none", "--iptables=false", "--ip-masq=false") as client:
        yield client


def run_in(docker, script, *flags):
    res = docker("run", "--rm", "--runtime=puncker", "--network", "none", *flags, IMAGE, "sh", "-c", script)
    return res.returncode, res.stdout.decode(), res.stderr.decode()


def test_docker_runs_a_container_on_puncker(docker):
    rc, out, err = run_in(docker, "echo hello from $(hostname); echo pid=$$")
    assert rc == 0, err
    assert "hello from" in out and "pid=1" in out


def test_exit_code_passes_through(docker):
    rc, _, err = run_in(docker, "exit 7")
    assert rc == 7, err


def test_dockers_default_seccomp_profile_is_applied(docker):
    """Docker puts its default profile in every config.json: it must be in force inside."""
    rc, out, err = run_in(docker, "grep Seccomp: /proc/self/status; probe add_key; probe keyctl; "
                                  "probe unshare-user; echo ordinary > /tmp/f && cat /tmp/f")
    assert rc == 0, err
    # "Seccomp: 2" means a filter is installed; Docker's profile refuses the key and user
    # namespace calls with EPERM, and lets ordinary work through.
    assert out.split() == ["Seccomp:", "2", "EPERM", "EPERM", "EPERM", "ordinary"], out


def test_unconfined_seccomp_leaves_the_calls_alone(docker):
    rc, out, err = run_in(docker, "grep Seccomp: /proc/self/status; probe add_key",
                          "--security-opt", "seccomp=unconfined")
    assert rc == 0, err
    assert out.split() == ["Seccomp:", "0", "ok"], out


def test_dockers_default_capabilities_are_applied(docker):
    rc, out, err = run_in(docker, "grep CapEff: /proc/self/status")
    assert rc == 0, err
    assert int(out.split()[1], 16) == DOCKER_CAPS_MASK, out
    rc, out, err = run_in(docker, "grep CapEff: /proc/self/status", "--cap-drop", "ALL", "--cap-add", "NET_RAW")
    assert rc == 0, err
    assert int(out.split()[1], 16) == 1 << 13, out


def test_resource_flags_are_applied(docker):
    rc, out, err = run_in(docker, "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes pids/pids.max "
                                  "cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpuset/cpuset.cpus cpu/cpu.shares",
                          "--memory", "64m", "--pids-limit", "20", "--cpus", "0.5", "--cpuset-cpus", "0",
                          "--cpu-shares", "512")
    assert rc == 0, err
    assert out.split() == [str(64 << 20), "20", "50000", "100000", "0", "512"], out


def test_pause_unpause_and_update(docker):
    res = docker("run", "-d", "--runtime=puncker", "--network", "none", IMAGE, "sleep", "300")
    assert res.returncode == 0, res.stderr
    cid = res.stdout.decode().strip()
    try:
        assert docker("pause", cid).returncode == 0
        assert docker("inspect", "-f", "{{.State.Status}}", cid).stdout.decode().strip() == "paused"
        assert docker("unpause", cid).returncode == 0
        assert docker("inspect", "-f", "{{.State.Status}}", cid).stdout.decode().strip() == "running"
        res = docker("update", "--memory", "96m", "--memory-swap", "192m", "--pids-limit", "33", cid)
        assert res.returncode == 0, res.stderr
        limit = Path(f"/sys/fs/cgroup/memory/docker/{cid}/memory.limit_in_bytes").read_text().strip()
        assert limit == str(96 << 20)
        assert Path(f"/sys/fs/cgroup/pids/docker/{cid}/pids.max").read_text().strip() == "33"
    finally:
        docker("rm", "-f", cid)
    assert not Path(f"/sys/fs/cgroup/memory/docker/{cid}").exists()


def test_docker_stats_reads_the_container_cgroup(docker):
    res = docker("run", "-d", "--runtime=puncker", "--network", "none", "--memory", "64m", IMAGE, "sleep", "300")
    assert res.returncode == 0, res.stderr
    cid = res.stdout.decode().strip()
    try:
        stats = docker("stats", "--no-stream", "--format", "{{.MemUsage}} {{.PIDs}}", cid)
        assert stats.returncode == 0, stats.stderr
        usage, limit, pids = stats.stdout.decode().replace(" / ", " ").split()
        assert limit == "64MiB", stats.stdout
        assert pids == "1"
    finally:
        docker("rm", "-f", cid)


def test_docker_exec(docker):
    res = docker("run", "-d", "--runtime=puncker", "--network", "none", IMAGE, "sleep", "300")
    assert res.returncode == 0, res.stderr
    cid = res.stdout.decode().strip()
    try:
        ex = docker("exec", "-e", "GREETING=hi", cid, "sh", "-c", "echo $GREETING from $$; exit 4")
        assert ex.returncode == 4, ex.stderr
        out = ex.stdout.decode().split()
        assert out[:2] == ["hi", "from"] and int(out[2]) > 1, out
        # Docker's seccomp profile applies to exec'd processes too.
        probe = docker("exec", cid, "probe", "add_key")
        assert probe.stdout.decode().strip() == "EPERM", probe
    finally:
        docker("rm", "-f", cid)


def test_device_flag(docker):
    """--device makes the node and allows it in the device cgroup; others stay denied."""
    rc, out, err = run_in(docker, "head -c 0 /dev/xloop && echo opened; ls /dev/loop0 2>&1 || echo absent",
                          "--device", "/dev/loop0:/dev/xloop")
    assert rc == 0, err
    assert out.split()[0] == "opened", out
    assert "absent" in out
