"""Attacks on the runtime, each tried for real: the defence must make it fail."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import (DEFAULT_CAPS, create_with_console, mountinfo, parse_mountinfo, read_until_closed,
                      release, spawn, wait_for)


@pytest.mark.puncker_only  # runc 1.1.5 predates the fix for this one
def test_cwd_through_a_host_fd_is_refused(rt, bundle, workdir):
    """CVE-2024-21626: a cwd of /proc/self/fd/N, N a descriptor of a host directory handed in
    with --preserve-fds, would start the program outside the rootfs."""
    secret = workdir / "host-dir"
    secret.mkdir()
    (secret / "secret").write_text("host secret\n")
    b = bundle(["sh", "-c", "cat secret; pwd"], process={"cwd": "/proc/self/fd/3"})
    cid = rt.new_id()
    rt.bundles.append(b)
    # A shell opens the host directory as fd 3 and execs the runtime with it.
    res = rt.raw(["sh", "-c", 'exec 3<"$0"; exec "$@"', str(secret),
                  *rt.cmd("run", "--preserve-fds", "1", "--bundle", b.path, cid)], check=False)
    assert res.returncode != 0, res
    assert "host secret" not in res.stdout
    assert "cwd" in res.stderr, res.stderr
    rt.assert_clean(cid, b)


@pytest.mark.puncker_only  # runc 1.1.5 predates the fix for this one
def test_masking_uses_the_real_null_device(bundle, rt):
    """CVE-2025-31133: masking with whatever the container calls /dev/null. Here the image's
    /dev/null is a symlink to a file of its own and /dev is not a fresh tmpfs."""
    def no_dev_tmpfs(cfg):
        cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] not in ("/dev", "/dev/pts", "/dev/shm", "/dev/mqueue")]
    b = bundle(["sh", "-c", "cat /etc/motd-masked; echo; stat -c '%F %t:%T' /etc/motd-masked"],
               mutate=no_dev_tmpfs, linux={"maskedPaths": ["/etc/motd-masked"]})
    (b.rootfs / "etc" / "motd-masked").write_text("should be hidden\n")
    (b.rootfs / "etc" / "not-null").write_text("attacker data\n")
    dev = b.rootfs / "dev"
    dev.mkdir(exist_ok=True)
    if (dev / "null").exists() or (dev / "null").is_symlink():
        (dev / "null").unlink()
    (dev / "null").symlink_to("/etc/not-null")
    res = rt.run_fg(b)
    assert res.returncode == 0, res
    assert "should be hidden" not in res.stdout and "attacker data" not in res.stdout, res
    assert "character special file 1:3" in res.stdout, res


@pytest.mark.puncker_only  # runc's defence differs: its init runs from a sealed memfd copy
def test_parked_init_binary_is_out_of_reach_of_a_neighbour(rt, bundle):
    """CVE-2019-5736: until it execs, a container's init is the runtime binary. A second
    container that joins its pid namespace (a pod sharing one) must not be able to open it
    through /proc/1/exe, the first step of overwriting the runtime on the host."""
    caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"]

    def capset(names):
        return {"capabilities": {k: names for k in ("bounding", "effective", "permitted")}}

    # Parked: pid 1 of its namespace is the runtime binary, already holding the container's
    # final capabilities. The neighbour holds the same and one more, so only the runtime's
    # own defence stands between it and /proc/1/exe.
    first = rt.create(bundle(["sleep", "100"], process=capset(caps)))
    pid = rt.state(first)["pid"]

    def join_first(cfg):
        for ns in cfg["linux"]["namespaces"]:
            if ns["type"] == "pid":
                ns["path"] = f"/proc/{pid}/ns/pid"

    neighbour = bundle(["sh", "-c", "cat /proc/1/exe > /dev/null && echo opened || echo refused"],
                       mutate=join_first, process=capset(caps + ["CAP_NET_RAW"]))
    res = rt.run_fg(neighbour)
    assert res.returncode == 0, res
    assert res.stdout.strip() == "refused", res


def _freezer_dir(pid: int) -> tuple[Path, str, str]:
    """The freezer of the cgroup `pid` is in: (dir, state file, frozen value) — the v1 freezer
    where it is mounted, else cgroup2's cgroup.freeze."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "freezer" in controllers.split(","):
            return Path("/sys/fs/cgroup/freezer" + path), "freezer.state", "FROZEN"
    for line in lines:
        if line.startswith("0::"):
            base = next(m.point for m in mountinfo() if m.fstype == "cgroup2")
            return Path(base + line[3:]), "cgroup.freeze", "1"
    pytest.fail(f"no freezer for pid {pid}")


def test_exec_process_cannot_reach_the_runtime_binary(rt, probe_bundle, workdir):
    """CVE-2019-5736 through `exec`: until it execs, the process `exec` starts is the runtime,
    inside the container's pid namespace. A container process holding CAP_SYS_PTRACE opens
    its /proc/PID/exe and, once the runtime has exited, writes into that file. The runtime
    must be a sealed copy by then, so the binary on the host stays as it was.

    To hold the runtime's process in view, the test runs `exec --cgroup` into a frozen
    sub-cgroup of the container: the process is frozen right after it joins."""
    runtime = workdir / "runtime-copy"
    shutil.copy2(rt.binary, runtime)
    before = runtime.read_bytes()
    caps = list(DEFAULT_CAPS) + ["CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE"]
    b = probe_bundle(["/bin/probe", "exe-grab"],
                     process={"capabilities": {k: caps for k in ("bounding", "effective", "permitted")}})
    cid = rt.new_id()
    rt.bundles.append(b)
    out = workdir / "attacker.out"
    rt.raw([str(runtime), "--root", str(rt.root), "run", "-d", "--bundle", str(b.path), cid],
           stdout=out, check=True)
    wait_for(lambda: "ready" in out.read_text(), 10, "the attacker to start")
    freezer, state_file, frozen = _freezer_dir(rt.state(cid)["pid"])
    trap = freezer / "trap"
    trap.mkdir()
    exec_proc = None
    try:
        (trap / state_file).write_text(frozen)
        sub = ("freezer:" if state_file == "freezer.state" else "") + "trap"
        exec_proc = spawn([str(runtime), "--root", str(rt.root), "exec", "-d", "--cgroup", sub, cid, "/bin/true"],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: "found" in out.read_text() or exec_proc.poll() is not None, 10,
                 "the attacker to open the runtime's /proc/PID/exe")
    finally:
        (trap / state_file).write_text("THAWED" if state_file == "freezer.state" else "0")
        if exec_proc is not None:
            exec_proc.wait(timeout=20)
    assert exec_proc.returncode == 0, exec_proc.stderr.read().decode()
    release(exec_proc)
    wait_for(lambda: any(w in out.read_text() for w in ("write", "open for writing", "busy")), 20,
             "the attacker's write attempt")
    report = out.read_text()
    wait_for(lambda: not trap.exists() or not (trap / "cgroup.procs").read_text().strip(), 10, "trap to empty")
    trap.rmdir()
    assert "found" in report, report
    assert runtime.read_bytes() == before, "the runtime binary on the host was overwritten:\n" + report
    assert "write ok" not in report, report
    assert "memfd:" in report, report


@pytest.mark.puncker_only  # runc 1.1.5 predates the fix for this one
def test_console_is_not_bound_through_a_symlink(rt, bundle, workdir):
    """CVE-2025-52565: an image whose /dev/console is a symlink to a procfs file (and /dev is
    not a fresh tmpfs) must not get the pty bound over that file: the console lands on a file
    of its own, and /proc/sys/kernel/core_pattern stays procfs."""
    def no_dev_tmpfs(cfg):
        cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] not in ("/dev", "/dev/shm", "/dev/mqueue")]
    b = bundle(["sh", "-c", "stat -c '%F %t' /proc/sys/kernel/core_pattern; stat -c '%F %t' /dev/console"],
               mutate=no_dev_tmpfs, process={"terminal": True})
    dev = b.rootfs / "dev"
    dev.mkdir(exist_ok=True)
    (dev / "pts").mkdir(exist_ok=True)
    (dev / "console").symlink_to("/proc/sys/kernel/core_pattern")
    cid, master = create_with_console(rt, b, workdir / "console.sock")
    try:
        rt.start(cid)
        out = read_until_closed(master)
    finally:
        os.close(master)
    lines = out.split("\n")
    assert "regular empty file 0" in lines, out
    assert "character special file 88" in lines, out


@pytest.mark.puncker_only  # runc 1.1.5 predates the fix for this one
def test_dev_symlink_to_the_host_is_resolved_inside(rt, bundle, workdir):
    """An image whose /dev is an absolute symlink naming a host directory (and no /dev tmpfs):
    device nodes and /dev symlinks must be made inside the rootfs, never in that directory."""
    host_dir = workdir / "host-dev"
    host_dir.mkdir()

    def no_dev_mounts(cfg):
        cfg["mounts"] = [m for m in cfg["mounts"] if not m["destination"].startswith("/dev")]
    b = bundle(["sh", "-c", "ls /dev/null /dev/zero /dev/fd /dev/stdout >/dev/null && echo made"], mutate=no_dev_mounts)
    shutil.rmtree(b.rootfs / "dev")
    (b.rootfs / "dev").symlink_to(str(host_dir))
    res = rt.run_fg(b)
    assert sorted(os.listdir(host_dir)) == [], res
    assert res.returncode == 0 and "made" in res.stdout, res


def test_racing_symlink_swap_cannot_move_a_mount_out_of_the_rootfs(rt, probe_bundle, workdir):
    """CVE-2021-30465: a neighbour sharing a volume with the container swaps a directory on the
    mount destinations' path with a symlink that leads out of the rootfs ("../../victim"),
    while the runtime mounts. Each mount must land inside the rootfs: through the directory,
    or through the symlink resolved inside the root. A createContainer hook (which runs in the
    container's mount namespace before pivot_root) records where the mounts went."""
    count = 30
    victim = workdir / "victim"
    seen = workdir / "mountinfo"
    b = probe_bundle(["true"])
    data = b.rootfs / "data"
    for base in (victim, b.rootfs / "victim", data / "link"):
        for i in range(count):
            (base / f"m{i}").mkdir(parents=True)
    (data / "alt").symlink_to("../../victim")
    b.config["mounts"] += [{"destination": f"/data/link/m{i}", "type": "tmpfs", "source": "tmpfs",
                            "options": ["nosuid", "size=64k"]} for i in range(count)]
    b.config.setdefault("hooks", {})["createContainer"] = [
        {"path": "/bin/sh", "args": ["sh", "-c", f"cat /proc/self/mountinfo >> {seen}"]}]
    b.write()
    swapper = spawn([os.environ["PIECES_PROBE"], "swap", str(data / "link"), str(data / "alt"), "60"],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        escaped, redirected, runs = [], 0, 0
        while runs < 40 and (runs < 8 or not redirected):
            runs += 1
            seen.write_text("")
            res = rt.run_fg(b)
            assert res.returncode == 0, res
            points = [e.point for e in parse_mountinfo(seen.read_text())]
            escaped += [p for p in points if p.startswith(str(victim) + "/")]
            redirected += sum(p.startswith(str(b.rootfs / "victim") + "/") for p in points)
    finally:
        swapper.kill()
        swapper.wait()
        release(swapper)
    assert escaped == [], f"mounts landed outside the rootfs: {escaped}"
    assert redirected, f"the swap never redirected a mount in {runs} runs: the race was not exercised"


def _lsm_enabled(name: str) -> bool:
    if name == "apparmor":
        p = Path("/sys/module/apparmor/parameters/enabled")
        return p.exists() and p.read_text().startswith("Y")
    return Path("/sys/fs/selinux/enforce").exists()


@pytest.mark.puncker_only  # runc 1.1.5 ignores a label its host cannot apply
@pytest.mark.parametrize("field,where,lsm", [
    ("apparmorProfile", "process", "apparmor"),
    ("selinuxLabel", "process", "selinux"),
    ("mountLabel", "linux", "selinux"),
])
def test_a_security_label_this_host_cannot_apply_is_refused(rt, bundle, field, where, lsm):
    """A config asking for an AppArmor profile or SELinux label on a host without that module
    is refused in one line naming the field, not run unconfined; nothing is left behind."""
    if _lsm_enabled(lsm):
        pytest.skip(f"{lsm} is enabled on this host: the refusal cannot be shown here")
    b = bundle(["true"], **{where: {field: "system_u:system_r:container_t:s0" if lsm == "selinux" else "pieces-test"}})
    cid = rt.new_id()
    res = rt.run_fg(b, cid)
    assert res.returncode != 0, res
    err = res.stderr.strip()
    assert "\n" not in err and field in err and ("AppArmor" if lsm == "apparmor" else "SELinux") in err, err
    rt.assert_clean(cid, b)


@pytest.mark.puncker_only
@pytest.mark.parametrize("flag,lsm", [("--apparmor", "apparmor"), ("--process-label", "selinux")])
def test_exec_with_a_label_this_host_cannot_apply_is_refused(rt, bundle, flag, lsm):
    if _lsm_enabled(lsm):
        pytest.skip(f"{lsm} is enabled on this host: the refusal cannot be shown here")
    cid = rt.create_started(bundle(["sleep", "100"]))
    res = rt.run("exec", flag, "pieces-test", cid, "true", check=False)
    assert res.returncode != 0 and ("AppArmor" if lsm == "apparmor" else "SELinux") in res.stderr, res
    assert rt.run("exec", cid, "true", check=False).returncode == 0
