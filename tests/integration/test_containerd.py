"""containerd driving puncker through its runc shim (io.containerd.runc.v2), with `ctr`.

The test starts a private containerd (own root, state, socket and config; the CRI plugin off)
and imports an image built from busybox-static and our probe. Every container runs with
`--runc-binary $PUNCKER --runc-root <private dir>`, which sets the shim's runtime options
BinaryName and Root: the same options a Kubernetes RuntimeClass handler sets through
containerd's CRI config (docs/kubernetes.md). That puncker, not runc, ran each container is
checked by reading the container's state with puncker itself from that root while it runs:
runc's state files are not puncker's, and `puncker state` fails on them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import pid_alive, processes_naming, read_line, remove_tree, unmount_all_under, wait_for
from images import build_rootfs, write_docker_archive
from pty_session import PtySession

CONTAINERD = shutil.which("containerd") or "/usr/bin/containerd"
CTR = shutil.which("ctr") or "/usr/bin/ctr"
NAMESPACE = "pieces-test"
IMAGE = "docker.io/library/pieces-test-bb:latest"
# The default capability set of ctr's spec (the same as Docker's), as bits of CapEff.
DEFAULT_CAPS_MASK = 0x00000000A80425FB

CONFIG = """\
version = 2
root = "{base}/root"
state = "{base}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{base}/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "{base}/opt"
"""


class Ctr:
    """`ctr` bound to the private containerd's socket and our namespace."""

    def __init__(self, base: Path, puncker: str):
        self.base = base
        self.sock = base / "containerd.sock"
        self.puncker = puncker
        self.runc_root = base / "runtime-root"
        # The shim gives its runtime --root <Root>/<namespace>.
        self.state_root = self.runc_root / NAMESPACE

    def argv(self, *args) -> list[str]:
        return [CTR, "--address", str(self.sock), "--namespace", NAMESPACE, *map(str, args)]

    def __call__(self, *args, input: bytes | None = None, timeout: float = 60):
        return subprocess.run(self.argv(*args), input=input, capture_output=True, timeout=timeout)

    def run_argv(self, *flags, cid: str, cmd: list[str]) -> list[str]:
        """`ctr run` of our image on puncker."""
        return self.argv("run", "--runc-binary", self.puncker, "--runc-root", self.runc_root,
                         *flags, IMAGE, cid, *cmd)

    def puncker_state(self, cid: str) -> dict | None:
        """The container's state as puncker reads it from the shim's runtime root, or None."""
        res = subprocess.run([self.puncker, "--root", str(self.state_root), "state", cid],
                             capture_output=True, timeout=30)
        return json.loads(res.stdout) if res.returncode == 0 else None

    def tasks(self) -> dict[str, tuple[int, str]]:
        """`ctr task ls`: {id: (pid, STATUS)}."""
        res = self("task", "ls")
        assert res.returncode == 0, res.stderr
        rows = [line.split() for line in res.stdout.decode().splitlines()[1:]]
        return {r[0]: (int(r[1]), r[2]) for r in rows if len(r) == 3}

    def task_status(self, cid: str) -> str | None:
        entry = self.tasks().get(cid)
        return entry[1] if entry else None

    def remove(self, cid: str) -> None:
        """Kills, deletes and removes a container whatever state it is in."""
        if self.task_status(cid) not in (None, "STOPPED"):
            self("task", "kill", "-a", "-s", "SIGKILL", cid)
            try:
                wait_for(lambda: self.task_status(cid) in (None, "STOPPED"), 10, f"{cid} to stop")
            except AssertionError:
                pass
        self("task", "delete", "-f", cid)
        self("container", "delete", cid)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def ctr(runtime_binary, tmp_path_factory):
    """A private containerd with our image imported; everything it made is removed after."""
    if not Path(CONTAINERD).exists() or not Path(CTR).exists():
        pytest.fail("containerd (ctr) is installed by scripts/install-deps.sh")
    base = tmp_path_factory.mktemp("containerd")
    (base / "config.toml").write_text(CONFIG.format(base=base))
    client = Ctr(base, runtime_binary)
    log = open(base / "containerd.log", "wb")
    daemon = subprocess.Popen([CONTAINERD, "--config", str(base / "config.toml")],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while client("version").returncode != 0:
            if daemon.poll() is not None or time.monotonic() > deadline:
                pytest.fail("containerd did not come up:\n" + (base / "containerd.log").read_text()[-3000:])
            time.sleep(0.1)
        archive = write_docker_archive(build_rootfs(base / "rootfs"), base / "image.tar", "pieces-test-bb:latest")
        res = client("images", "import", archive)
        assert res.returncode == 0, res.stderr
        yield client
    finally:
        # Tasks first: their shims outlive containerd.
        if daemon.poll() is None:
            for cid in list(client.tasks()):
                client.remove(cid)
            res = client("container", "ls", "-q")
            for cid in res.stdout.decode().split():
                client("container", "delete", cid)
        daemon.terminate()
        try:
            daemon.wait(20)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
        for pid in processes_naming(str(client.sock)):  # a shim left behind by a failure
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        unmount_all_under(base)
        remove_tree(base)
        # The namespace's parent cgroup that containers' /<namespace>/<id> paths made.
        for d in Path("/sys/fs/cgroup").glob(f"*/{NAMESPACE}"):
            try:
                d.rmdir()
            except OSError:
                pass


def assert_runs_on_puncker(ctr: Ctr, cid: str) -> dict:
    """The running container is puncker's: puncker reads its state from the shim's root."""
    state = ctr.puncker_state(cid)
    assert state is not None, f"puncker has no container {cid} under {ctr.state_root}"
    assert state["status"] == "running", state
    assert state["pid"] > 0
    return state


def run_checked(ctr: Ctr, *flags, script: str) -> tuple[int, str, str]:
    """`ctr run --rm FLAGS IMAGE ID sh -c SCRIPT`, held at its start until puncker is seen to
    run it; returns (exit status, stdout, stderr)."""
    cid = new_id("run")
    proc = subprocess.Popen(ctr.run_argv("--rm", *flags, cid=cid, cmd=["sh", "-c", "echo ready; read _; " + script]),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert read_line(proc.stdout, 20) == "ready\n"
        assert_runs_on_puncker(ctr, cid)
        out, err = proc.communicate(b"go\n", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out.decode(), err.decode()


def test_run_output_stdin_and_exit_code(ctr):
    """`ctr run --rm`: the container's stdout, stdin from the client and its exit code."""
    cid = new_id("run")
    proc = subprocess.Popen(ctr.run_argv("--rm", cid=cid, cmd=["sh", "-c", "echo ready; read line; echo got=$line; exit 7"]),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert read_line(proc.stdout, 20) == "ready\n"
        state = assert_runs_on_puncker(ctr, cid)
        assert ctr.tasks()[cid] == (state["pid"], "RUNNING")
        out, err = proc.communicate(b"typed\n", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 7, err
    assert out.decode() == "got=typed\n"
    # --rm: puncker deleted its state, and containerd forgot the container.
    assert ctr.puncker_state(cid) is None
    assert not (ctr.state_root / cid).exists()
    assert cid not in ctr("container", "ls", "-q").stdout.decode().split()

    res = subprocess.run(ctr.run_argv("--rm", cid=new_id("run"), cmd=["true"]), capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr


def test_run_applies_ctrs_spec(ctr):
    """What ctr puts in config.json is what the process sees: caps, no_new_privs, env, cwd,
    a read-only root, and (with --seccomp) containerd's default seccomp profile."""
    script = ("grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; echo FOO=$FOO; pwd; "
              "touch /rootfile 2>/dev/null && echo writable || echo read-only; probe add_key")
    rc, out, err = run_checked(ctr, "--env", "FOO=bar", "--cwd", "/tmp", "--read-only", script=script)
    assert rc == 0, err
    lines = out.splitlines()
    assert int(lines[0].split()[1], 16) == DEFAULT_CAPS_MASK, lines
    assert lines[1:] == ["NoNewPrivs:\t1", "Seccomp:\t0", "FOO=bar", "/tmp", "read-only", "ok"], lines

    rc, out, err = run_checked(ctr, "--seccomp", script="grep '^Seccomp:' /proc/self/status; probe add_key; probe keyctl")
    # containerd's default profile refuses the key calls with EPERM (and probe exits 1).
    assert rc == 1, err
    assert out.split() == ["Seccomp:", "2", "EPERM", "EPERM"], out


def test_run_with_a_tty(ctr):
    """`ctr run -t` in a real terminal: the shim gets puncker's pty over the console socket,
    it is the container's controlling terminal, takes the window size and relays input."""
    cid = new_id("tty")
    script = ("tty; test -t 0 && echo stdin-is-a-tty; "
              "until [ \"$(stty size 2>/dev/null)\" = '33 101' ]; do sleep 0.05; done; echo size-ok; "
              "echo ready; read line; echo got=$line; exit 5")
    session = PtySession(ctr.run_argv("--rm", "-t", cid=cid, cmd=["sh", "-c", script]), rows=33, cols=101)
    try:
        session.expect("ready")
        state = assert_runs_on_puncker(ctr, cid)
        # The container's init has a controlling terminal (tty_nr in /proc/PID/stat).
        stat = Path(f"/proc/{state['pid']}/stat").read_text()
        assert int(stat[stat.rindex(")") + 2:].split()[4]) != 0, stat
        session.send(b"typed\r")
        assert session.wait() == 5, session.text
    finally:
        session.close()
    assert re.search(r"/dev/pts/\d+", session.text), session.text
    for shown in ("stdin-is-a-tty", "size-ok", "got=typed"):
        assert shown in session.text, session.text


def test_detached_task_exec_kill_and_delete(ctr):
    """`ctr run -d`, then exec (with and without a tty), ps, pause/resume, SIGTERM that the
    container handles, and delete with the exit status."""
    cid = new_id("det")
    log = ctr.base / f"{cid}.log"
    script = "trap 'echo terminated; exit 9' TERM; echo started; while true; do sleep 0.1; done"
    res = subprocess.run(ctr.run_argv("-d", "--log-uri", f"file://{log}", cid=cid, cmd=["sh", "-c", script]),
                         capture_output=True, timeout=60)
    try:
        assert res.returncode == 0, res.stderr
        state = assert_runs_on_puncker(ctr, cid)
        assert ctr.tasks()[cid] == (state["pid"], "RUNNING")

        ex = ctr("task", "exec", "--exec-id", "e1", cid, "sh", "-c",
                 "echo pid=$$; grep -E '^(NoNewPrivs|CapEff):' /proc/self/status; exit 4")
        assert ex.returncode == 4, ex.stderr
        lines = ex.stdout.decode().splitlines()
        assert int(lines[0].removeprefix("pid=")) > 1, lines
        assert int(lines[1].split()[1], 16) == DEFAULT_CAPS_MASK and lines[2] == "NoNewPrivs:\t1", lines

        session = PtySession(ctr.argv("task", "exec", "-t", "--exec-id", "e2", cid, "sh", "-c",
                                      "tty; test -t 0 && echo stdin-is-a-tty; echo ready; read l; echo got=$l; exit 6"))
        try:
            session.expect("ready")
            session.send(b"typed\r")
            assert session.wait() == 6, session.text
        finally:
            session.close()
        assert "stdin-is-a-tty" in session.text and "got=typed" in session.text, session.text

        # The shim lists the container's processes with `puncker ps`.
        ps = ctr("task", "ps", cid)
        assert ps.returncode == 0, ps.stderr
        assert str(state["pid"]) in ps.stdout.decode().split(), ps.stdout

        assert ctr("task", "pause", cid).returncode == 0
        assert ctr.task_status(cid) == "PAUSED"
        assert ctr.puncker_state(cid)["status"] == "paused"
        assert ctr("task", "resume", cid).returncode == 0
        assert ctr.task_status(cid) == "RUNNING"

        kill = ctr("task", "kill", "-s", "SIGTERM", cid)
        assert kill.returncode == 0, kill.stderr
        wait_for(lambda: ctr.task_status(cid) == "STOPPED", 10, "the task to stop")
        assert ctr.puncker_state(cid)["status"] == "stopped"
        delete = ctr("task", "delete", cid)
        assert delete.returncode == 0, delete.stderr
        assert "exit code 9" in delete.stderr.decode(), delete.stderr
        assert ctr.puncker_state(cid) is None and not (ctr.state_root / cid).exists()
        assert cid not in ctr.tasks()
        assert log.read_text().split() == ["started", "terminated"]
    finally:
        ctr.remove(cid)


def test_sigkill_stops_a_container_that_ignores_sigterm(ctr):
    cid = new_id("kill")
    res = subprocess.run(ctr.run_argv("-d", "--null-io", cid=cid,
                                      cmd=["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"]),
                         capture_output=True, timeout=60)
    try:
        assert res.returncode == 0, res.stderr
        state = assert_runs_on_puncker(ctr, cid)
        # A second process, started by exec, that `kill --all` must reach too.
        ex = ctr("task", "exec", "-d", "--exec-id", "bg", cid, "sleep", "300")
        assert ex.returncode == 0, ex.stderr
        assert ctr("task", "kill", "-s", "SIGTERM", cid).returncode == 0
        time.sleep(1)
        assert ctr.task_status(cid) == "RUNNING"
        kill = ctr("task", "kill", "-a", "-s", "SIGKILL", cid)
        assert kill.returncode == 0, kill.stderr
        wait_for(lambda: ctr.task_status(cid) == "STOPPED", 10, "the task to stop")
        assert not pid_alive(state["pid"])
        delete = ctr("task", "delete", cid)
        assert delete.returncode == 0, delete.stderr
        assert "exit code 137" in delete.stderr.decode(), delete.stderr
    finally:
        ctr.remove(cid)


def test_memory_limit_reaches_the_cgroup(ctr):
    """ctr's --memory-limit lands in config.json's resources; puncker writes it to the
    container's memory cgroup (ctr's default cgroupsPath is /<namespace>/<id>)."""
    cid = new_id("mem")
    res = subprocess.run(ctr.run_argv("-d", "--null-io", "--memory-limit", str(64 << 20), cid=cid,
                                      cmd=["sleep", "300"]), capture_output=True, timeout=60)
    try:
        assert res.returncode == 0, res.stderr
        assert_runs_on_puncker(ctr, cid)
        limit = Path(f"/sys/fs/cgroup/memory/{NAMESPACE}/{cid}/memory.limit_in_bytes")
        assert limit.read_text().strip() == str(64 << 20)
    finally:
        ctr.remove(cid)
    assert not Path(f"/sys/fs/cgroup/memory/{NAMESPACE}/{cid}").exists()
