"""podman (with conmon) driving puncker.

The test gives podman its own storage (--root, --runroot, --tmpdir in a temporary directory)
and its own containers.conf (CONTAINERS_CONF): the cgroupfs manager and file events (no
systemd here), puncker listed under [engine.runtimes], and default_ulimits, because podman
otherwise asks for RLIMIT_NOFILE and RLIMIT_NPROC of 1048576, above this machine's hard
limits (setrlimit fails with EPERM there for every runtime, runc and crun included). The
image is a docker-archive built by the test and loaded with `podman load`. Containers use
`--network none`.

conmon calls puncker with its default --root (/run/puncker for root), so that a container
really runs on puncker is checked with `puncker state <container id>` while it runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import pid_alive, processes_naming, read_line, remove_tree, unmount_all_under, wait_for
from images import build_rootfs, write_docker_archive
from pty_session import PtySession

PODMAN = shutil.which("podman") or "/usr/bin/podman"
IMAGE = "localhost/pieces-test-bb:latest"
# Podman 4.3's default capability set (the same as Docker's), as bits of CapEff.
PODMAN_CAPS_MASK = 0x00000000A80425FB

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "puncker"
cgroup_manager = "{cgroup_manager}"
events_logger = "file"

[engine.runtimes]
puncker = ["{puncker}"]
"""


class Podman:
    """podman with private storage and our containers.conf, running containers on puncker."""

    def __init__(self, base: Path, puncker: str):
        self.base = base
        self.puncker = puncker
        self.env = dict(os.environ, CONTAINERS_CONF=str(base / "containers.conf"))

    def argv(self, *args, runtime: str | None = None) -> list[str]:
        """podman's command line; --runtime is puncker's path unless runtime says otherwise
        ("" for none: then containers.conf's [engine] runtime picks it)."""
        runtime = self.puncker if runtime is None else runtime
        return [PODMAN, "--root", str(self.base / "root"), "--runroot", str(self.base / "runroot"),
                "--tmpdir", str(self.base / "tmp"), "--cgroup-manager", "cgroupfs",
                "--events-backend", "file", *(["--runtime", runtime] if runtime else []), *map(str, args)]

    def __call__(self, *args, input: bytes | None = None, timeout: float = 60, runtime: str | None = None):
        return subprocess.run(self.argv(*args, runtime=runtime), input=input, capture_output=True,
                              timeout=timeout, env=self.env)

    def popen(self, *args, runtime: str | None = None) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args, runtime=runtime), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env)

    def inspect(self, name: str, fmt: str) -> str:
        res = self("inspect", "-f", fmt, name)
        assert res.returncode == 0, res.stderr
        return res.stdout.decode().strip()

    def puncker_state(self, cid: str) -> dict | None:
        """The container's state as puncker reads it from its default root, or None."""
        res = subprocess.run([self.puncker, "state", cid], capture_output=True, timeout=30)
        return json.loads(res.stdout) if res.returncode == 0 else None


@pytest.fixture(scope="module")
def podman(runtime_binary, tmp_path_factory):
    if not Path(PODMAN).exists() or not shutil.which("conmon"):
        pytest.fail("podman and conmon are installed by scripts/install-deps.sh")
    base = tmp_path_factory.mktemp("podman")
    (base / "containers.conf").write_text(CONTAINERS_CONF.format(puncker=runtime_binary, cgroup_manager="cgroupfs"))
    client = Podman(base, runtime_binary)
    try:
        archive = write_docker_archive(build_rootfs(base / "rootfs"), base / "image.tar", "pieces-test-bb:latest")
        res = client("load", "-i", archive)
        assert res.returncode == 0, res.stderr
        yield client
    finally:
        client("rm", "--all", "--force", "--time", "0", timeout=120)
        for pid in processes_naming(str(base)):  # a conmon or container left by a failure
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        unmount_all_under(base)
        remove_tree(base)
        # podman's cgroupfs parents (libpod_parent/conmon), when nothing else uses them.
        for pattern in ("*/libpod_parent/conmon", "*/libpod_parent"):
            for d in Path("/sys/fs/cgroup").glob(pattern):
                try:
                    d.rmdir()
                except OSError:
                    pass


def assert_runs_on_puncker(podman: Podman, name: str) -> dict:
    """podman's container `name` is running, and puncker holds it with the same init pid."""
    cid = podman.inspect(name, "{{.Id}}")
    state = podman.puncker_state(cid)
    assert state is not None, f"puncker does not know container {cid}"
    assert state["status"] == "running", state
    assert state["pid"] == int(podman.inspect(name, "{{.State.Pid}}")), state
    return state


def run_checked(podman: Podman, *flags, script: str, runtime: str | None = None) -> tuple[int, str, str]:
    """`podman run --rm -i FLAGS IMAGE sh -c SCRIPT`, held at its start until puncker is seen
    to run it; returns (exit status, stdout, stderr)."""
    name = f"run-{os.urandom(4).hex()}"
    proc = podman.popen("run", "--rm", "-i", "--network", "none", "--name", name, *flags, IMAGE,
                        "sh", "-c", "echo ready; read _; " + script, runtime=runtime)
    try:
        assert read_line(proc.stdout, 30) == "ready\n", proc.stderr.read1().decode() if proc.poll() is not None else ""
        assert_runs_on_puncker(podman, name)
        out, err = proc.communicate(b"go\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out.decode(), err.decode()


def test_run_output_stdin_and_exit_code(podman):
    """`podman run --rm -i`: stdout, stdin piped through conmon, the exit code."""
    name = "stdin-test"
    proc = podman.popen("run", "--rm", "-i", "--network", "none", "--name", name, IMAGE,
                        "sh", "-c", "echo ready; read line; echo got=$line; cat; exit 7")
    try:
        assert read_line(proc.stdout, 30) == "ready\n"
        cid = podman.inspect(name, "{{.Id}}")
        assert_runs_on_puncker(podman, name)
        out, err = proc.communicate(b"typed\nmore\nlines\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 7, err
    assert out.decode() == "got=typed\nmore\nlines\n"
    # --rm: gone from podman and from puncker.
    assert podman("container", "exists", name).returncode == 1
    assert podman.puncker_state(cid) is None

    res = podman("run", "--rm", "--network", "none", IMAGE, "true")
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("runtime", ["puncker", ""], ids=["--runtime-puncker", "engine-runtime"])
def test_runtime_named_in_containers_conf(podman, runtime):
    """`--runtime puncker` resolves through containers.conf's [engine.runtimes]; without
    --runtime, [engine] runtime = "puncker" picks it."""
    res = podman("info", "--format", "{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Path}}", runtime=runtime)
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode().split() == ["puncker", podman.puncker]
    rc, out, err = run_checked(podman, script="echo hi; exit 3", runtime=runtime)
    assert rc == 3, err
    assert out == "hi\n"


def test_podmans_defaults_are_applied(podman):
    """Podman's default capabilities, seccomp profile and containers.conf's default_ulimits."""
    rc, out, err = run_checked(podman, script="grep -E '^(CapEff|Seccomp):' /proc/self/status; "
                                              "ulimit -n; ulimit -u; probe add_key; probe keyctl")
    assert rc == 0, err
    lines = out.split()
    assert int(lines[1], 16) == PODMAN_CAPS_MASK, out
    # Podman's profile answers calls it does not list, such as add_key, with ENOSYS.
    assert lines[2:] == ["Seccomp:", "2", "1024", "4096", "ENOSYS", "ok"], out


def test_user_env_workdir_ulimit_read_only(podman):
    """--user, -e, --workdir, --ulimit and --read-only. An explicit --ulimit replaces
    default_ulimits, so nproc is given again. --read-only puts tmpfs mounts on /tmp, /run and
    /var/tmp with the "tmpcopyup" option (a copy of what they cover): the root is read-only,
    /tmp writable, and what the image had in /tmp is still there."""
    rc, out, err = run_checked(
        podman, "--user", "1000:1000", "-e", "GREETING=hello", "--workdir", "/home/app",
        "--ulimit", "nofile=512:512", "--ulimit", "nproc=2048:2048", "--read-only",
        script="id -u; id -g; echo $GREETING; pwd; ulimit -n; ulimit -u; "
               "touch /etc/x 2>/dev/null && echo root-writable || echo root-read-only; "
               "touch /tmp/x && echo tmp-writable; stat -f -c %T /tmp")
    assert rc == 0, err
    assert out.split() == ["1000", "1000", "hello", "/home/app", "512", "2048", "root-read-only",
                           "tmp-writable", "tmpfs"], out
    rc, out, err = run_checked(podman, "--user", "app", script="id -un; touch /tmp/x && echo writable")
    assert rc == 0, err
    assert out.split() == ["app", "writable"], out


def test_run_with_a_tty(podman):
    """`podman run -it` in a real terminal: conmon gets puncker's pty over the console socket."""
    name = "tty-test"
    script = ("tty; test -t 0 && echo stdin-is-a-tty; "
              "until [ \"$(stty size 2>/dev/null)\" = '33 101' ]; do sleep 0.05; done; echo size-ok; "
              "echo ready; read line; echo got=$line; exit 5")
    session = PtySession(podman.argv("run", "--rm", "-it", "--network", "none", "--name", name, IMAGE, "sh", "-c", script),
                         rows=33, cols=101, env=podman.env)
    try:
        session.expect("ready")
        state = assert_runs_on_puncker(podman, name)
        stat = Path(f"/proc/{state['pid']}/stat").read_text()
        assert int(stat[stat.rindex(")") + 2:].split()[4]) != 0, stat  # a controlling terminal
        session.send(b"typed\r")
        assert session.wait() == 5, session.text
    finally:
        session.close()
    assert re.search(r"/dev/pts/\d+", session.text), session.text
    for shown in ("stdin-is-a-tty", "size-ok", "got=typed"):
        assert shown in session.text, session.text


def test_detached_exec_and_logs(podman):
    """`podman run -d`, `podman exec` (plain, -i with stdin piped, -it), `podman logs`."""
    name = "detached-test"
    res = podman("run", "-d", "--network", "none", "--name", name, IMAGE,
                 "sh", "-c", "echo started; echo to-stderr >&2; while true; do sleep 0.1; done")
    assert res.returncode == 0, res.stderr
    try:
        assert_runs_on_puncker(podman, name)
        ex = podman("exec", "-e", "GREETING=hi", name, "sh", "-c", "echo $GREETING from $$; exit 4")
        assert ex.returncode == 4, ex.stderr
        words = ex.stdout.decode().split()
        assert words[:2] == ["hi", "from"] and int(words[2]) > 1, words
        ex = podman("exec", "-i", name, "sh", "-c", "tr a-z A-Z", input=b"piped input\n")
        assert ex.returncode == 0, ex.stderr
        assert ex.stdout.decode() == "PIPED INPUT\n"
        # Podman's seccomp profile applies to exec'd processes too.
        ex = podman("exec", name, "probe", "add_key")
        assert ex.stdout.decode().strip() == "ENOSYS", ex

        session = PtySession(podman.argv("exec", "-it", name, "sh", "-c",
                                         "tty; test -t 0 && echo stdin-is-a-tty; echo ready; read l; echo got=$l; exit 6"),
                             env=podman.env)
        try:
            session.expect("ready")
            session.send(b"typed\r")
            assert session.wait() == 6, session.text
        finally:
            session.close()
        assert "stdin-is-a-tty" in session.text and "got=typed" in session.text, session.text

        logs = podman("logs", name)
        assert logs.returncode == 0, logs.stderr
        assert logs.stdout.decode() == "started\n" and logs.stderr.decode() == "to-stderr\n", logs
    finally:
        podman("rm", "--force", "--time", "0", name)


@pytest.mark.parametrize("trap, exit_code", [("exit 9", 9), ("", 137)], ids=["handles-sigterm", "ignores-sigterm"])
def test_stop(podman, trap, exit_code):
    """`podman stop`: SIGTERM through puncker's kill; a container that ignores it is killed
    with SIGKILL after --time."""
    name = f"stop-{exit_code}"
    res = podman("run", "-d", "--network", "none", "--name", name, IMAGE,
                 "sh", "-c", f"trap '{trap}' TERM; echo trapped; while true; do sleep 0.1; done")
    assert res.returncode == 0, res.stderr
    try:
        state = assert_runs_on_puncker(podman, name)
        wait_for(lambda: podman("logs", name).stdout == b"trapped\n", 10, "the trap to be set")
        stop = podman("stop", "--time", "2", name)
        assert stop.returncode == 0, stop.stderr
        assert podman.inspect(name, "{{.State.Status}} {{.State.ExitCode}}") == f"exited {exit_code}"
        assert not pid_alive(state["pid"])
        assert ("resorting to SIGKILL" in stop.stderr.decode()) == (exit_code == 137), stop.stderr
    finally:
        podman("rm", "--force", "--time", "0", name)
