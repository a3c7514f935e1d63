"""`run` in the foreground with process.terminal and no console socket: the pty is relayed."""

from __future__ import annotations

import os
import pty
import select
import time

from pty_session import PtySession


def run_on_a_pty(rt, b, cid, typed: bytes, timeout: float = 15):
    """Runs `run` with a pty as its stdio (as a person at a terminal would); returns what the
    terminal showed and the exit status."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(rt.binary, rt.cmd("run", "--bundle", b.path, cid))
        finally:
            os._exit(127)
    shown = b""
    typed_yet = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not typed_yet and b"ready" in shown:
            os.write(fd, typed)
            typed_yet = True
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:  # the pty closed: run exited
            break
        if not data:
            break
        shown += data
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return shown.decode(errors="replace"), os.waitstatus_to_exitcode(status)


def test_foreground_terminal_is_relayed(rt, bundle):
    b = bundle(["sh", "-c", "tty; test -c /dev/console && echo console; echo ready; read line; echo got=$line; exit 3"],
               process={"terminal": True})
    cid = rt.new_id()
    rt.bundles.append(b)
    shown, status = run_on_a_pty(rt, b, cid, b"typed text\n")
    assert status == 3, shown
    assert "/dev/pts/" in shown and "console" in shown, shown
    assert "got=typed text" in shown, shown
    rt.assert_clean(cid, b)


def test_exec_with_a_terminal_and_no_console_socket_is_relayed(rt, bundle):
    """`exec -t ID sh` in the foreground, from a terminal, without --console-socket: the new
    process gets a pty of its own, relayed to ours (input, window size, exit status)."""
    cid = rt.create_started(bundle(["sleep", "100"]))
    session = PtySession(rt.cmd("exec", "-t", cid, "sh"), rows=27, cols=93)
    try:
        session.expect(r"# ")  # the shell's prompt: our terminal is relayed by now
        session.sendline("tty; stty size; echo marker-$((6*7))")
        session.expect(r"/dev/pts/\d+")
        session.expect(r"27 93")
        session.expect(r"marker-42")
        session.sendline("exit 6")
        assert session.wait() == 6
    finally:
        session.close()
    # The init's console is left alone, and a detached exec with a tty still needs a socket.
    res = rt.run("exec", "-d", "-t", cid, "true", check=False)
    assert res.returncode != 0 and "console" in res.stderr and "socket" in res.stderr, res
