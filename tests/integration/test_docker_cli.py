"""The docker command line as people use it, with puncker as the runtime.

A private dockerd (tests/integration/docker_daemon.py) with a bridge network of its own:
interactive shells on a real terminal, detached containers with exec, logs, stop, kill,
restart, wait and rm, the common `docker run` flags checked from inside the container, the
bridge network and a published port, and puncker's errors as Docker shows them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from conftest import CAPS, pid_alive, read_line, wait_for
from docker_daemon import IMAGE, Docker, docker_daemon, iptables_works, private_bridge
from pty_session import PtySession

# A bridge and subnet of this file's own: neither docker0 nor 172.17.0.0/16, so it cannot
# clash with a dockerd already on the machine.
BRIDGE = "pieces-dkcli0"
BRIDGE_ADDRESS = "10.199.73.1/24"
GATEWAY = BRIDGE_ADDRESS.split("/")[0]


def subnet_is_free(cidr: str) -> bool:
    """No route of the machine's covers or falls in the subnet."""
    net = ipaddress.ip_network(cidr, strict=False)
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    for line in routes.splitlines():
        dest = line.split()[0]
        if dest in ("default", "local", "broadcast", "unreachable", "prohibit", "blackhole"):
            continue
        with contextlib.suppress(ValueError):
            if ipaddress.ip_network(dest, strict=False).overlaps(net):
                return False
    return True


@pytest.fixture(scope="module")
def docker(runtime_binary, tmp_path_factory):
    """A private dockerd whose default bridge network is our own bridge, with iptables."""
    assert iptables_works(), "iptables (installed with docker.io) cannot change the filter/nat tables here"
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)  # left by a killed run
    assert subnet_is_free(BRIDGE_ADDRESS), f"{BRIDGE_ADDRESS} overlaps a route of this machine"
    base = tmp_path_factory.mktemp("dockerd-cli")
    with private_bridge(BRIDGE, BRIDGE_ADDRESS):
        with docker_daemon(base, runtime_binary, f"--bridge={BRIDGE}", "--iptables=true") as client:
            yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(3).hex()}"


def run_checked(docker: Docker, *flags, script: str) -> tuple[int, str, str]:
    """`docker run --rm -i --runtime=puncker FLAGS IMAGE sh -c SCRIPT`, held at its start until
    puncker is seen to run it; returns (exit status, stdout, stderr)."""
    name = unique("run")
    proc = docker.popen("run", "--rm", "-i", "--runtime=puncker", "--name", name, *flags, IMAGE,
                        "sh", "-c", "echo ready; read _; " + script)
    try:
        line = read_line(proc.stdout, 30)
        assert line == "ready\n", line + (proc.stderr.read1().decode() if proc.poll() is not None else "")
        docker.assert_runs_on_puncker(name)
        out, err = proc.communicate(b"go\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out.decode(), err.decode()


@contextlib.contextmanager
def detached(docker: Docker, script: str, *flags) -> Iterator[str]:
    """A container run with -d on puncker, removed (rm -f) afterwards; yields its name."""
    name = unique("bg")
    docker.ok("run", "-d", "--runtime=puncker", "--name", name, *flags, IMAGE, "sh", "-c", script)
    try:
        yield name
    finally:
        docker("rm", "-f", name)


def logs(docker: Docker, name: str) -> tuple[str, str]:
    res = docker("logs", name)
    assert res.returncode == 0, res.stderr
    return res.stdout.decode(), res.stderr.decode()


def controlling_tty(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[4])


# ---------------------------------------------------------------------------
# stdin and terminals
# ---------------------------------------------------------------------------

def test_run_echo_hello(docker):
    """The first command of docs/docker.md, on the default bridge network."""
    res = docker("run", "--rm", "--runtime=puncker", IMAGE, "echo", "hello")
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"hello\n"


def test_run_i_with_stdin_piped(docker):
    """`docker run -i`: what is piped in reaches the container, its output and status come back."""
    data = b"".join(b"line %d\n" % i for i in range(2000))
    name = unique("stdin")
    proc = docker.popen("run", "--rm", "-i", "--runtime=puncker", "--name", name, IMAGE,
                        "sh", "-c", "read first; echo first=$first; cat > /tmp/rest; wc -l < /tmp/rest; "
                                    "test -t 0 || echo not-a-tty; exit 3")
    try:
        proc.stdin.write(b"hello\n")
        proc.stdin.flush()
        assert read_line(proc.stdout, 30) == "first=hello\n"
        docker.assert_runs_on_puncker(name)
        out, err = proc.communicate(data, timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, err
    assert out.decode().split() == ["2000", "not-a-tty"], out


def test_run_it_interactive_shell(docker):
    """`docker run -it IMG sh` on a real terminal: a shell with job control (a controlling
    terminal, background jobs, Ctrl-C reaching the foreground job), the window size following
    the terminal, and the shell's exit status as docker's."""
    name = unique("it")
    session = PtySession(docker.argv("run", "--rm", "-it", "--runtime=puncker", "--name", name,
                                     "-e", "PS1=pieces-sh> ", IMAGE, "sh"),
                         rows=33, cols=101, env=docker.env)
    try:
        session.expect_next("pieces-sh> ")
        state = docker.assert_runs_on_puncker(name)
        assert controlling_tty(state["pid"]) != 0, "the shell has no controlling terminal"

        session.sendline("tty; stty size")
        session.expect_next(r"/dev/pts/\d+\s+33 101\s")
        session.expect_next("pieces-sh> ")

        # The window size follows the terminal: docker relays SIGWINCH to the container's pty.
        session.resize(40, 120)
        deadline = time.monotonic() + 20
        while True:
            session.sendline("stty size")
            m = session.expect_next(r"(\d+ \d+)\s+pieces-sh> ")
            if m.group(1) == b"40 120" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert m.group(1) == b"40 120", session.text

        # Job control: a background job is listed, brought to the foreground and stopped by
        # Ctrl-C (SIGINT from the terminal to its foreground process group).
        session.sendline("sleep 100 &")
        session.expect_next("pieces-sh> ")
        session.sendline("jobs")
        session.expect_next(r"\[1\]\+\s+Running\s+sleep 100")
        session.expect_next("pieces-sh> ")
        session.sendline("fg")
        session.expect_next(r"sleep 100\s")
        time.sleep(0.3)
        session.send(b"\x03")
        session.expect_next("pieces-sh> ")
        session.sendline("echo status=$?")
        session.expect_next(r"status=130")
        session.expect_next("pieces-sh> ")
        session.sendline("sleep 200 &")
        session.expect_next("pieces-sh> ")
        session.sendline("kill %1; wait; jobs; echo jobs-done")
        session.expect_next(r"jobs-done\s")
        session.expect_next("pieces-sh> ")

        session.sendline("exit 3")
        assert session.wait() == 3, session.text
    finally:
        session.close()
    assert "job control turned off" not in session.text, session.text
    assert "can't access tty" not in session.text, session.text


# ---------------------------------------------------------------------------
# Detached containers: exec, logs, stop, kill, restart, wait, rm
# ---------------------------------------------------------------------------

def test_detached_exec_and_logs(docker):
    """`docker run -d`, then `docker exec` (plain, -i with stdin piped, -it on a terminal) and
    `docker logs` with stdout and stderr kept apart."""
    with detached(docker, "echo to-stdout; echo to-stderr >&2; while true; do sleep 0.1; done") as name:
        state = docker.assert_runs_on_puncker(name)

        ex = docker("exec", "-e", "GREETING=hi", "-w", "/tmp", name, "sh", "-c",
                    "echo $GREETING from $$ in $(pwd); for ns in mnt pid net; do readlink /proc/self/ns/$ns; done; exit 4")
        assert ex.returncode == 4, ex.stderr
        words = ex.stdout.decode().split()
        assert words[:2] == ["hi", "from"] and int(words[2]) > 1 and words[3:5] == ["in", "/tmp"], words
        # The exec'd process joined the container's namespaces.
        assert words[5:] == [os.readlink(f"/proc/{state['pid']}/ns/{ns}") for ns in ("mnt", "pid", "net")], words

        ex = docker("exec", "-i", name, "sh", "-c", "wc -c", input=b"x" * 100000)
        assert ex.returncode == 0 and ex.stdout.decode().strip() == "100000", ex

        # docker sets an exec's window size only after it has started it (with runc too): the
        # process waits for the size to arrive.
        session = PtySession(docker.argv("exec", "-it", name, "sh", "-c",
                                         "tty; test -t 0 && echo stdin-is-a-tty; echo ready; read l; echo got=$l; "
                                         "for i in $(seq 100); do s=$(stty size 2>&1); case $s in [1-9]*) break; esac; sleep 0.1; done; "
                                         "echo size=$s; exit 6"),
                             rows=25, cols=91, env=docker.env)
        try:
            session.expect("ready")
            session.sendline("typed")
            assert session.wait() == 6, session.text
        finally:
            session.close()
        assert re.search(r"/dev/pts/\d+\s+stdin-is-a-tty\s+ready\s+typed\s+got=typed\s+size=25 91\s", session.text), \
            session.text

        assert logs(docker, name) == ("to-stdout\n", "to-stderr\n")


@pytest.mark.parametrize("trap, timeout, exit_code", [("echo bye; exit 9", 20, 9), ("", 1, 137)],
                         ids=["handles-sigterm", "ignores-sigterm"])
def test_stop(docker, trap, timeout, exit_code):
    """`docker stop`: SIGTERM reaches the container's handler, whose exit code docker reports;
    a container that ignores it is killed with SIGKILL after -t (137)."""
    with detached(docker, f"trap '{trap}' TERM; echo trapped; while true; do sleep 0.1; done") as name:
        state = docker.assert_runs_on_puncker(name)
        wait_for(lambda: "trapped" in logs(docker, name)[0], what="the trap to be set")
        started = time.monotonic()
        docker.ok("stop", "-t", str(timeout), name)
        took = time.monotonic() - started
        assert docker.inspect(name, "{{.State.Status}} {{.State.ExitCode}}") == f"exited {exit_code}"
        assert not pid_alive(state["pid"])
        if exit_code == 9:
            assert logs(docker, name)[0] == "trapped\nbye\n"
            assert took < timeout, "the handler's exit was not seen; docker waited for -t"
        else:
            assert took >= timeout, "SIGKILL came before -t"


def test_kill_with_a_signal_reaches_the_trap(docker):
    """`docker kill -s USR1` delivers USR1 to the container's init, which keeps running."""
    with detached(docker, "trap 'echo got-usr1' USR1; echo trapped; while true; do sleep 0.1; done") as name:
        docker.assert_runs_on_puncker(name)
        wait_for(lambda: "trapped" in logs(docker, name)[0], what="the trap to be set")
        docker.ok("kill", "-s", "USR1", name)
        wait_for(lambda: "got-usr1" in logs(docker, name)[0], what="the USR1 trap to run")
        docker.ok("kill", "-s", "USR1", name)
        wait_for(lambda: logs(docker, name)[0].count("got-usr1") == 2, what="the second USR1")
        assert docker.inspect(name, "{{.State.Status}}") == "running"
        docker.assert_runs_on_puncker(name)
        docker.ok("kill", name)  # SIGKILL by default
        assert docker.ok("wait", name) == "137"


def test_restart(docker):
    """`docker restart`: the old init stops, a new one (another pid) runs, again on puncker."""
    with detached(docker, "echo run; while true; do sleep 0.1; done") as name:
        before = docker.assert_runs_on_puncker(name)
        docker.ok("restart", "-t", "1", name)
        after = docker.assert_runs_on_puncker(name)
        assert after["pid"] != before["pid"]
        assert not pid_alive(before["pid"])
        wait_for(lambda: logs(docker, name)[0] == "run\nrun\n", what="the second start's output")


def test_rm_force_removes_a_running_container(docker):
    """`docker rm -f`: the running container is killed and puncker's state of it deleted."""
    name = unique("rmf")
    docker.ok("run", "-d", "--runtime=puncker", "--name", name, IMAGE, "sleep", "300")
    state = docker.assert_runs_on_puncker(name)
    cid = docker.inspect(name, "{{.Id}}")
    root = docker.runtime_root(cid)
    docker.ok("rm", "-f", name)
    assert docker("inspect", name).returncode != 0
    assert not pid_alive(state["pid"])
    assert docker.puncker_state(cid, root) is None
    assert not (root / cid).exists()


def test_wait_returns_the_exit_code(docker):
    """`docker wait` blocks while the container runs and prints the code it exits with."""
    with detached(docker, "while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 42") as name:
        docker.assert_runs_on_puncker(name)
        proc = docker.popen("wait", name)
        try:
            time.sleep(0.5)
            assert proc.poll() is None, "docker wait returned while the container ran"
            docker.ok("exec", name, "touch", "/tmp/go")
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        assert out.decode().strip() == "42", out


# ---------------------------------------------------------------------------
# docker run flags, checked from inside
# ---------------------------------------------------------------------------

def test_user_workdir_env_hostname(docker):
    rc, out, err = run_checked(docker, "--user", "1000:29", "--workdir", "/home/app", "-e", "FOO=bar baz",
                               "--hostname", "pieces-host", script="id -u; id -g; pwd; echo \"$FOO\"; hostname; "
                               "cat /proc/sys/kernel/hostname")
    assert rc == 0, err
    assert out.splitlines() == ["1000", "29", "/home/app", "bar baz", "pieces-host", "pieces-host"], out
    # A user name is looked up in the image's /etc/passwd.
    rc, out, err = run_checked(docker, "--user", "app", script="id")
    assert rc == 0, err
    assert out.startswith("uid=1000(app) gid=1000(app)"), out


def test_read_only_rootfs_and_tmpfs(docker):
    rc, out, err = run_checked(docker, "--read-only", "--tmpfs", "/x:size=1m",
                               script="touch /new-file 2>&1; touch /etc/x 2>&1; echo data > /x/f && cat /x/f; "
                                      "grep -E ' / | /x ' /proc/self/mounts")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].endswith("Read-only file system") and lines[1].endswith("Read-only file system"), out
    assert lines[2] == "data", out
    mounts = {line.split()[1]: line.split() for line in lines[3:]}
    assert "ro" in mounts["/"][3].split(","), out
    assert mounts["/x"][2] == "tmpfs" and "rw" in mounts["/x"][3].split(","), out
    assert "size=1024k" in mounts["/x"][3], out


def test_cap_drop_all_cap_add(docker):
    """--cap-drop ALL --cap-add CHOWN: CapEff is that one bit, and it works where others fail."""
    rc, out, err = run_checked(docker, "--cap-drop", "ALL", "--cap-add", "CHOWN",
                               script="grep -E 'Cap(Eff|Prm|Bnd):' /proc/self/status; touch /tmp/f; "
                                      "chown 1000 /tmp/f && echo chown-ok; mknod /tmp/n c 1 3 2>&1 || echo mknod-refused")
    assert rc == 0, err
    caps = dict(line.split(":") for line in out.splitlines()[:3])
    for field in ("CapEff", "CapPrm", "CapBnd"):
        assert int(caps[field], 16) == 1 << CAPS["CAP_CHOWN"], out
    assert "chown-ok" in out and "mknod-refused" in out, out


def test_bind_mounts(docker, tmp_path):
    """-v host:ctr is writable both ways; -v host:ctr:ro is readable and refuses writes."""
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (rw / "from-host").write_text("host says hi\n")
    (ro / "from-host").write_text("read me\n")
    rc, out, err = run_checked(docker, "-v", f"{rw}:/data", "-v", f"{ro}:/ro:ro",
                               script="cat /data/from-host /ro/from-host; echo written-inside > /data/from-ctr; "
                                      "sh -c 'echo x > /ro/from-ctr' 2>&1 || echo ro-refused; "
                                      "grep -E ' /(data|ro) ' /proc/self/mounts")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[:2] == ["host says hi", "read me"], out
    assert "Read-only file system" in lines[2] and lines[3] == "ro-refused", out
    mounts = {line.split()[1]: line.split()[3].split(",") for line in lines[4:]}
    assert "rw" in mounts["/data"] and "ro" in mounts["/ro"], out
    assert (rw / "from-ctr").read_text() == "written-inside\n"
    assert not (ro / "from-ctr").exists()


def test_network_none_has_only_loopback(docker):
    rc, out, err = run_checked(docker, "--network", "none", script="ls /sys/class/net; ip -o -4 addr")
    assert rc == 0, err
    lines = out.split("\n")
    assert lines[0] == "lo", out
    assert "eth0" not in out and "127.0.0.1/8" in out, out


# ---------------------------------------------------------------------------
# The bridge network
# ---------------------------------------------------------------------------

def test_container_reaches_a_server_on_the_bridge(docker):
    """On the default bridge, the container has an address in our subnet, its route goes
    through the bridge, and it talks to a TCP server the test runs on the bridge address."""
    server = socket.create_server((GATEWAY, 0))
    server.settimeout(30)
    port = server.getsockname()[1]
    seen = {}

    def serve():
        with contextlib.suppress(OSError):
            conn, peer = server.accept()
            with conn:
                conn.settimeout(10)
                seen["peer"] = peer[0]
                seen["got"] = conn.recv(100)
                conn.sendall(b"hello from the host\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        rc, out, err = run_checked(docker, script=f"ip -o -4 addr show eth0; ip route; "
                                                  f"echo from-container | nc -w 10 {GATEWAY} {port}")
    finally:
        thread.join(30)
        server.close()
    assert rc == 0, err
    address = re.search(r"inet (\S+)/24", out)
    assert address and ipaddress.ip_address(address.group(1)) in ipaddress.ip_network(BRIDGE_ADDRESS, strict=False), out
    assert f"default via {GATEWAY} dev eth0" in out, out
    assert "hello from the host" in out, out
    assert seen.get("got") == b"from-container\n" and seen.get("peer") == address.group(1), seen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_published_port_reaches_the_container(docker):
    """-p 127.0.0.1:PORT:80: an HTTP server in the container answers on the host's loopback."""
    port = free_port()
    script = "mkdir /www; echo served by $(hostname) > /www/index.html; exec httpd -f -p 80 -h /www"
    with detached(docker, script, "--hostname", "web-in-ctr", "-p", f"127.0.0.1:{port}:80") as name:
        docker.assert_runs_on_puncker(name)
        assert docker.ok("port", name, "80") == f"127.0.0.1:{port}"

        def fetch():
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
                    return reply.read()
            return None

        body = wait_for(fetch, timeout=20, what="the published port to answer")
        assert body == b"served by web-in-ctr\n", body


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("command, message", [
    ("/nonexistent", 'exec "/nonexistent": stat /nonexistent: no such file or directory'),
    ("no-such-command", 'exec: "no-such-command": executable file not found in $PATH'),
    ("/etc", 'exec "/etc": permission denied'),
    ("/etc/passwd", 'exec "/etc/passwd": permission denied'),
], ids=["missing-path", "not-in-path", "directory", "not-executable"])
@pytest.mark.puncker_only
def test_puncker_errors_reach_dockers_message(docker, command, message):
    """When puncker cannot start the process, docker's error carries puncker's one-line
    message after containerd's "OCI runtime create failed", and the container is gone."""
    name = unique("err")
    res = docker("run", "--rm", "--runtime=puncker", "--name", name, IMAGE, command)
    err = res.stderr.decode()
    assert res.returncode != 0, err
    assert re.search(r"OCI runtime create failed: create container [0-9a-f]{64}: " + re.escape(message), err), err
    assert docker("inspect", name).returncode != 0, "docker run --rm left the container"


@pytest.mark.parametrize("command, status", [
    ("no-such-command", 127), ("/nonexistent", 127), ("/etc", 126), ("/etc/passwd", 126),
])
def test_unstartable_command_exit_status(docker, command, status):
    """docker's CLI picks 127 (not found) or 126 (cannot execute) from the runtime's words at
    create, as with runc."""
    res = docker("run", "--rm", "--runtime=puncker", IMAGE, command)
    assert res.returncode == status, res.stderr
