"""A client command run on a real pseudo-terminal, as a person at a terminal would run it.

Used by the client tests for `-t` / `-it`: the client (docker, ctr, podman) sees a terminal on its
stdio, puts it in raw mode and relays it to the container's pty.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time


class PtySession:
    """argv running with a fresh pty (of rows x cols) as its stdin, stdout and stderr."""

    def __init__(self, argv: list[str], rows: int = 33, cols: int = 101, env: dict | None = None):
        self.master, slave = pty.openpty()
        self.resize(rows, cols, fd=slave)
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True,
                                     preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        self.shown = b""
        self.cursor = 0  # where expect_next() looks from
        self.closed = False

    def resize(self, rows: int, cols: int, fd: int | None = None) -> None:
        """Sets the terminal's window size (and tells the client, as a terminal emulator does)."""
        fcntl.ioctl(self.master if fd is None else fd, termios.TIOCSWINSZ,
                    struct.pack("HHHH", rows, cols, 0, 0))
        if fd is None:
            self.proc.send_signal(signal.SIGWINCH)

    def _read(self, timeout: float) -> int:
        """Reads what the terminal shows within timeout; returns how many bytes came."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return 0
        try:
            data = os.read(self.master, 4096)
        except OSError:  # EIO: every holder of the slave side has closed it
            data = b""
        if not data:
            self.closed = True
        self.shown += data
        return len(data)

    def expect(self, pattern: str, timeout: float = 20) -> re.Match:
        """Waits until the terminal has shown text matching the regex pattern."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern.encode(), self.shown)
            if m:
                return m
            if self.closed or time.monotonic() > deadline:
                raise AssertionError(f"terminal never showed {pattern!r}; it showed:\n{self.text}")
            self._read(0.1)

    def expect_next(self, pattern: str, timeout: float = 20) -> re.Match:
        """Like expect(), but only in what was shown after the last expect_next() match, so a
        dialogue can wait for the same prompt again; moves past the match."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern.encode())
        while True:
            m = regex.search(self.shown, self.cursor)
            if m:
                self.cursor = m.end()
                return m
            if self.closed or time.monotonic() > deadline:
                raise AssertionError(f"terminal never showed {pattern!r} after offset {self.cursor}; "
                                     f"it showed:\n{self.text}")
            self._read(0.1)

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def sendline(self, line: str) -> None:
        """Types a line and Enter (a carriage return, as a terminal sends it)."""
        self.send(line.encode() + b"\r")

    def wait(self, timeout: float = 30) -> int:
        """Reads the terminal until the client exits; returns its exit status."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self._read(0.1)
            if self.proc.poll() is not None:
                while not self.closed and self._read(0.1):
                    pass
                break
        try:
            return self.proc.wait(max(0.1, deadline - time.monotonic()))
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

    @property
    def text(self) -> str:
        return self.shown.decode(errors="replace")
