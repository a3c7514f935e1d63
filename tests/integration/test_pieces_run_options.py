"""pieces run's Docker-style options: resource limits read back from the container's cgroups,
capabilities and no-new-privileges from /proc/self/status, env files, tmpfs mounts, stop
signals and timeouts, the image's volumes; and one clear error for each kind of bad value.

The image is a busybox root filesystem written as a docker-archive and `pieces load`-ed, so its
config can carry StopSignal and Volumes without a Piecefile instruction for them."""

from __future__ import annotations

import glob
import os
import time
from pathlib import Path

import pytest

from conftest import CAPS, wait_for
from images import build_rootfs, write_docker_archive
from test_pieces import PIECES, Pieces, pieces  # noqa: F401  (fixtures)

IMAGE = "opts:1"
UNLIMITED = 9223372036854771712  # what cgroup v1 shows for "max" (PAGE_COUNTER_MAX pages)


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """One image: busybox, /data seeded with a file owned by app (1000), StopSignal SIGUSR2."""
    d = tmp_path_factory.mktemp("opts-image")
    root = build_rootfs(d / "rootfs")
    (root / "data").mkdir()
    (root / "data" / "seed.txt").write_text("seeded by the image\n")
    os.chown(root / "data", 1000, 1000)
    os.chown(root / "data" / "seed.txt", 1000, 1000)
    (root / "data").chmod(0o750)
    return write_docker_archive(root, d / "opts.tar", IMAGE,
                                extra_config={"StopSignal": "SIGUSR2", "Volumes": {"/data": {}}})


@pytest.fixture
def p(pieces, archive) -> Pieces:
    pieces.ok("load", "-i", archive)
    return pieces


def cgroup_file(controller: str, cid: str, name: str) -> str:
    """A file of the container's cgroup in a v1 hierarchy of the host."""
    found = glob.glob(f"/sys/fs/cgroup/{controller}/**/{cid}/{name}", recursive=True)
    assert len(found) == 1, (controller, cid, found)
    return Path(found[0]).read_text().strip()


def detached(p: Pieces, *args: str) -> str:
    return p.ok("run", "-d", *args).strip()


def cap_eff(status: str) -> int:
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")), 16)


def test_resource_limits_reach_the_cgroup(p):
    cid = detached(p, "--memory", "64m", "--memory-swap", "96m", "--memory-reservation", "32m", "--cpus", "0.5",
                   "--cpu-shares", "512", "--cpuset-cpus", "0", "--cpuset-mems", "0", "--pids-limit", "42",
                   IMAGE, "sleep", "1000")
    assert cgroup_file("memory", cid, "memory.limit_in_bytes") == str(64 << 20)
    assert cgroup_file("memory", cid, "memory.memsw.limit_in_bytes") == str(96 << 20)
    assert cgroup_file("memory", cid, "memory.soft_limit_in_bytes") == str(32 << 20)
    assert cgroup_file("cpu", cid, "cpu.cfs_period_us") == "100000"
    assert cgroup_file("cpu", cid, "cpu.cfs_quota_us") == "50000"
    assert cgroup_file("cpu", cid, "cpu.shares") == "512"
    assert cgroup_file("cpuset", cid, "cpuset.cpus") == "0"
    assert cgroup_file("cpuset", cid, "cpuset.mems") == "0"
    assert cgroup_file("pids", cid, "pids.max") == "42"
    # The container is in that cgroup, and feels the pids limit.
    p("exec", cid, "sh", "-c", "for i in $(seq 60); do sleep 5 >/dev/null 2>&1 & done 2>/dev/null; true")
    assert int(cgroup_file("pids", cid, "pids.current")) <= 42
    assert cgroup_file("pids", cid, "pids.events") != "max 0"  # forks were refused
    p.ok("rm", "-f", cid)


def test_memory_swap_defaults_as_docker(p):
    """--memory alone: as much swap as memory (memsw = 2 x memory); --memory-swap -1: unlimited."""
    twice = detached(p, "-m", "32m", IMAGE, "sleep", "1000")
    assert cgroup_file("memory", twice, "memory.limit_in_bytes") == str(32 << 20)
    assert cgroup_file("memory", twice, "memory.memsw.limit_in_bytes") == str(64 << 20)
    unlimited = detached(p, "--memory=1g", "--memory-swap=-1", IMAGE, "sleep", "1000")
    assert cgroup_file("memory", unlimited, "memory.limit_in_bytes") == str(1 << 30)
    assert int(cgroup_file("memory", unlimited, "memory.memsw.limit_in_bytes")) == UNLIMITED


def test_cap_add_and_drop(p):
    status = p.ok("run", "--rm", "--cap-add", "NET_ADMIN", "--cap-drop", "cap_chown", IMAGE, "cat", "/proc/self/status")
    eff = cap_eff(status)
    assert eff & (1 << CAPS["CAP_NET_ADMIN"]) and not eff & (1 << CAPS["CAP_CHOWN"]), hex(eff)
    assert eff & (1 << CAPS["CAP_KILL"]), hex(eff)  # the defaults stay
    default = cap_eff(p.ok("run", "--rm", IMAGE, "cat", "/proc/self/status"))
    assert not default & (1 << CAPS["CAP_NET_ADMIN"]) and default & (1 << CAPS["CAP_CHOWN"])
    # chown as root without CAP_CHOWN (and without DAC override of it) fails.
    res = p("run", "--rm", "--cap-drop", "CHOWN", IMAGE, "chown", "1000", "/tmp")
    assert res.returncode != 0 and "Operation not permitted" in res.stderr, res
    only = cap_eff(p.ok("run", "--rm", "--cap-drop", "ALL", "--cap-add", "KILL", IMAGE, "cat", "/proc/self/status"))
    assert only == 1 << CAPS["CAP_KILL"], hex(only)
    everything = cap_eff(p.ok("run", "--rm", "--cap-add", "ALL", IMAGE, "cat", "/proc/self/status"))
    assert everything & (1 << CAPS["CAP_SYS_ADMIN"]) and everything & (1 << CAPS["CAP_AUDIT_READ"]), hex(everything)


def test_no_new_privileges(p):
    assert "NoNewPrivs:\t0" in p.ok("run", "--rm", IMAGE, "cat", "/proc/self/status")
    assert "NoNewPrivs:\t1" in p.ok("run", "--rm", "--security-opt", "no-new-privileges", IMAGE, "cat", "/proc/self/status")


def test_env_file(p, workdir, monkeypatch):
    monkeypatch.setenv("FROM_THE_HOST", "host value")
    monkeypatch.delenv("NOT_ON_THE_HOST", raising=False)
    env_file = workdir / "vars.env"
    env_file.write_text("# a comment\n\nGREETING=hello world\n  INDENTED=yes\nQUOTED=\"kept\"\nFROM_THE_HOST\n"
                        "NOT_ON_THE_HOST\nOVERRIDDEN=from the file\n")
    second = workdir / "more.env"
    second.write_text("SECOND=2\n")
    out = p.ok("run", "--rm", "--env-file", env_file, "--env-file", second, "-e", "OVERRIDDEN=from -e", IMAGE, "env")
    env = dict(line.split("=", 1) for line in out.splitlines())
    assert env["GREETING"] == "hello world" and env["INDENTED"] == "yes" and env["QUOTED"] == '"kept"', env
    assert env["FROM_THE_HOST"] == "host value" and "NOT_ON_THE_HOST" not in env, env
    assert env["OVERRIDDEN"] == "from -e" and env["SECOND"] == "2", env
    assert "# a comment" not in out


def test_tmpfs(p):
    out = p.ok("run", "--rm", "--read-only", "--tmpfs", "/scratch:size=1m,mode=1770", IMAGE, "sh", "-c",
               "grep ' /scratch ' /proc/mounts; stat -c %a /scratch; echo x > /scratch/f && echo written; "
               "echo y > /f 2>/dev/null || echo root-refused")
    line, mode, written, refused = out.splitlines()
    fields = line.split()
    assert fields[0] == "tmpfs" and fields[2] == "tmpfs", line
    opts = fields[3].split(",")
    assert {"rw", "nosuid", "nodev", "noexec", "size=1024k"} <= set(opts), opts
    assert (mode, written, refused) == ("1770", "written", "root-refused")


def trapping(signal: str, code: int) -> list[str]:
    return ["sh", "-c", f"trap 'echo caught {signal}; exit {code}' {signal}; echo ready; while :; do sleep 0.1; done"]


def stop_and_wait(p: Pieces, name: str, *args: str) -> None:
    wait_for(lambda: "ready" in p.ok("logs", name), 10, "the container's trap")
    p.ok("stop", *args, name)


def test_stop_signal_from_the_flag(p):
    detached(p, "--name", "usr1", "--stop-signal", "USR1", IMAGE, *trapping("USR1", 41))
    stop_and_wait(p, "usr1")
    assert "caught USR1" in p.ok("logs", "usr1")
    assert "exited (41)" in p.ok("ps", "-a")


def test_stop_signal_from_the_image(p):
    """The image says SIGUSR2: pieces stop sends that, not SIGTERM."""
    detached(p, "--name", "usr2", IMAGE, *trapping("USR2", 42))
    stop_and_wait(p, "usr2")
    assert "caught USR2" in p.ok("logs", "usr2")
    assert "exited (42)" in p.ok("ps", "-a")
    # --stop-signal wins over the image's.
    detached(p, "--name", "term", "--stop-signal", "SIGTERM", IMAGE, *trapping("TERM", 43))
    stop_and_wait(p, "term")
    assert "exited (43)" in p.ok("ps", "-a")


def test_stop_timeout(p):
    """A container that ignores its stop signal (an init without a handler) is killed after its
    --stop-timeout, and stop -t overrides that."""
    detached(p, "--name", "short", "--stop-timeout", "1", "--stop-signal", "TERM", IMAGE, *trapping("USR1", 1))
    start = time.monotonic()
    stop_and_wait(p, "short")
    assert time.monotonic() - start < 8, "waited for the default 10 s instead of --stop-timeout 1"
    detached(p, "--name", "long", "--stop-timeout", "60", "--stop-signal", "TERM", IMAGE, *trapping("USR1", 1))
    start = time.monotonic()
    stop_and_wait(p, "long", "-t", "1")
    assert time.monotonic() - start < 8, "stop -t 1 did not override --stop-timeout 60"
    ps = p.ok("ps", "-a")
    assert ps.count("exited (137)") == 2, ps


def test_image_volume_seeded_persistent_and_removed(p, pieces):
    cid = detached(p, "--name", "vol", IMAGE, "sleep", "1000")
    assert p.ok("exec", "vol", "cat", "/data/seed.txt") == "seeded by the image\n"
    assert p.ok("exec", "vol", "stat", "-c", "%u %a", "/data").split() == ["1000", "750"]
    p.ok("exec", "vol", "sh", "-c", "echo written in the container > /data/new.txt")
    assert p.ok("exec", "vol", "cat", "/data/new.txt") == "written in the container\n"
    mounts = p.ok("exec", "vol", "cat", "/proc/self/mountinfo")
    assert any(line.split()[4] == "/data" for line in mounts.splitlines()), mounts
    p.ok("stop", "-t", "1", "vol")
    kept = pieces.store / "containers" / cid / "volumes" / "0"
    assert (kept / "new.txt").read_text() == "written in the container\n"
    assert (kept / "seed.txt").read_text() == "seeded by the image\n"
    # Each container has a volume of its own, seeded afresh from the image.
    assert p.ok("run", "--rm", IMAGE, "ls", "/data").split() == ["seed.txt"]
    p.ok("rm", "vol")
    assert not (pieces.store / "containers" / cid).exists()
    assert p.ok("ps", "-a", "-q") == ""
    assert pieces.leftovers() == []


def test_volume_flag_wins_over_the_image_volume(p, workdir):
    host = workdir / "host-data"
    host.mkdir()
    (host / "from-host.txt").write_text("host\n")
    assert p.ok("run", "--rm", "-v", f"{host}:/data", IMAGE, "ls", "/data").split() == ["from-host.txt"]
    assert p.ok("run", "--rm", "--tmpfs", "/data", IMAGE, "ls", "-A", "/data") == ""
    # Under --rm the volume goes with the container.
    assert p.ok("run", "--rm", IMAGE, "sh", "-c", "echo x > /data/y; cat /data/y") == "x\n"
    assert list((p.store / "containers").iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["--memory", "12x"], '--memory "12x"'),
    (["-m", "1m"], '--memory "1m": the minimum is 6m'),
    (["--memory-swap", "1g"], "--memory-swap needs --memory"),
    (["--memory", "64m", "--memory-swap", "32m"], '--memory-swap "32m": below --memory 64m'),
    (["--memory", "64m", "--memory-reservation", "1g"], '--memory-reservation "1g": above --memory 64m'),
    (["--cpus", "-1"], '--cpus "-1"'),
    (["--cpus=100"], '--cpus "100"'),
    (["--cpu-shares", "lots"], '--cpu-shares "lots"'),
    (["--cpuset-cpus", "0-"], '--cpuset-cpus "0-"'),
    (["--pids-limit", "many"], '--pids-limit "many"'),
    (["--cap-add", "FLY"], '--cap-add "FLY": unknown capability'),
    (["--cap-drop", "CAP_NOPE"], '--cap-drop "CAP_NOPE": unknown capability'),
    (["--security-opt", "apparmor=x"], '--security-opt "apparmor=x"'),
    (["--env-file", "/nonexistent.env"], '--env-file "/nonexistent.env": No such file or directory'),
    (["--env-file", "/"], '--env-file "/"'),
    (["--tmpfs", "relative"], '--tmpfs "relative"'),
    (["--stop-signal", "NOPE"], '--stop-signal "NOPE"'),
    (["--stop-timeout", "soon"], '--stop-timeout "soon"'),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_values(p, args, message):
    res = p("run", "--rm", *args, IMAGE, "true")
    assert res.returncode != 0, res
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert p.ok("ps", "-a", "-q") == ""
    assert not (p.store / "containers").exists() or list((p.store / "containers").iterdir()) == []


def test_bad_env_file_line(p, workdir):
    bad = workdir / "bad.env"
    bad.write_text("GOOD=1\nBAD NAME=2\n")
    res = p("run", "-d", "--env-file", bad, IMAGE, "true")
    assert res.returncode != 0 and f'--env-file "{bad}" line 2' in res.stderr, res
    assert p.ok("ps", "-a", "-q") == ""


def test_limit_the_kernel_refuses_leaves_nothing(p):
    """A cpuset the host lacks passes the parser and fails when the cgroup is written: the
    container made so far goes, in the foreground and detached."""
    for mode in ("--rm", "-d"):
        res = p("run", mode, "--cpuset-cpus", "63", IMAGE, "true")
        assert res.returncode != 0 and "cpuset" in res.stderr, res
        assert p.ok("ps", "-a", "-q") == ""
        assert list((p.store / "containers").iterdir()) == []
    assert p.leftovers() == []


def test_privileged(p):
    """Every capability the host has, the host's devices usable (the devices cgroup allows
    them), /sys writable, no masked or read-only /proc paths."""
    out = p.ok("run", "--rm", "--privileged", "--cap-drop", "ALL", IMAGE, "sh", "-c",
               "grep CapEff /proc/self/status; stat -c '%t:%T' /dev/loop0; "
               "dd if=/dev/kmsg bs=8192 count=1 2>/dev/null | wc -c; cat /proc/self/mountinfo")
    host_bounding = int(next(line.split()[1] for line in Path("/proc/self/status").read_text().splitlines()
                             if line.startswith("CapBnd:")), 16)
    assert cap_eff(out) == host_bounding, out  # --cap-drop changes nothing, as with Docker
    loop0 = os.stat("/dev/loop0").st_rdev
    lines = out.splitlines()
    assert lines[1] == f"{os.major(loop0):x}:{os.minor(loop0):x}", out
    assert int(lines[2]) > 0, out  # /dev/kmsg opened and read
    points = {line.split()[4]: line.split()[5] for line in lines[3:]}
    assert "/proc/keys" not in points and "/proc/sys" not in points, points
    assert points["/sys"].startswith("rw"), points
    # Without it: no such device, and the masks are there.
    plain = p.ok("run", "--rm", IMAGE, "sh", "-c", "ls /dev/loop0 2>&1; cat /proc/self/mountinfo")
    assert "No such file" in plain and " /proc/keys " in plain and " /proc/sys " in plain, plain
