"""Shared fixtures for the puncker integration tests.

The tests drive the runtime binary named by the PUNCKER environment variable
through its runc-compatible command line.  They are runtime-agnostic: run them
with PUNCKER=/usr/bin/runc to check that a test describes runc's behaviour.
Tests of puncker-only behaviour carry ``@pytest.mark.puncker_only`` and are
skipped when the binary under test is runc.

Fixtures:
  runtime_binary  path of the binary under test (session)
  session_dir     world-traversable base directory for everything (session)
  rootfs_template a busybox root filesystem built offline (session)
  workdir         a fresh world-traversable directory for one test
  bundle          factory: bundle(args, mutate=fn, **overrides) -> Bundle
  rt              Runtime wrapper with a private --root; cleans up after itself
  run_sh          run_sh(script, **overrides) -> Result of a foreground `run`

Helpers: rt.leftovers()/rt.assert_clean() (state entries, mounts, processes,
cgroups a container left), wait_for(), parse_mountinfo(), cap_mask(),
status_field(), read_status(), spawn()/release() for extra child processes.

The test process is a child subreaper (like containerd's shim), so container
inits are reparented to it; teardown reaps them.
"""

from __future__ import annotations

import array
import copy
import ctypes
import json
import os
import shutil
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pytest

# Seconds any single runtime invocation may take before the test fails.
DEFAULT_TIMEOUT = 30
BUSYBOX = "/bin/busybox"
HOSTNAME = "puncker-test"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

PR_SET_CHILD_SUBREAPER = 36

# Capability numbers from linux/capability.h.
CAPS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6,
    "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19, "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23, "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
    "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31, "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35, "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
}

DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def cap_mask(names: Iterable[str]) -> int:
    """Bit mask of the named capabilities, as shown in /proc/PID/status."""
    mask = 0
    for name in names:
        mask |= 1 << CAPS[name]
    return mask


# ---------------------------------------------------------------------------
# Binary under test and the puncker_only marker
# ---------------------------------------------------------------------------

def _binary() -> str:
    value = os.environ.get("PUNCKER")
    if not value:
        raise pytest.UsageError(
            "PUNCKER is not set: point it at the runtime binary under test, "
            "e.g. PUNCKER=$PWD/build/src/puncker/puncker (or /usr/bin/runc)")
    path = os.path.abspath(value)
    if not os.access(path, os.X_OK):
        raise pytest.UsageError(f"PUNCKER={value}: not an executable file")
    return path


def is_runc() -> bool:
    return os.path.basename(os.environ.get("PUNCKER", "")) == "runc"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "puncker_only: behaviour specific to puncker; skipped when PUNCKER is runc")
    _binary()


def pytest_collection_modifyitems(config, items):
    if not is_runc():
        return
    skip = pytest.mark.skip(reason="puncker-specific behaviour; runc does not do this")
    for item in items:
        if item.get_closest_marker("puncker_only"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def runtime_binary() -> str:
    return _binary()


# ---------------------------------------------------------------------------
# Process helpers
# ---------------------------------------------------------------------------

def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, ppid) of a process, or None if it does not exist."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def pid_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


# Children started through spawn() that their own caller will wait for. The
# reaper below must leave them alone, or their exit status would be lost.
_children_lock = threading.Lock()
_awaited_children: set[int] = set()


def spawn(argv: list[str], **kw) -> subprocess.Popen:
    """subprocess.Popen, registered so reap_zombie_children() skips it."""
    with _children_lock:
        proc = subprocess.Popen(argv, **kw)
        _awaited_children.add(proc.pid)
    return proc


def release(proc: subprocess.Popen) -> None:
    with _children_lock:
        _awaited_children.discard(proc.pid)


def reap_zombie_children() -> None:
    """Reap our exited children that nobody waits for: container inits
    reparented to us (we are a subreaper)."""
    me = os.getpid()
    with _children_lock:
        for pid in all_pids():
            st = proc_stat(pid)
            if st and st[1] == me and st[0] == "Z" and pid not in _awaited_children:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass


def wait_for(predicate: Callable[[], object], timeout: float = 10, what: str = "condition"):
    """Poll predicate until it returns a truthy value; fail after timeout."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


@dataclass
class MountEntry:
    root: str          # path inside the mounted filesystem
    point: str         # mount point
    options: set       # per-mount options (ro, nosuid, ...)
    fstype: str
    source: str
    super_options: set  # filesystem options (size=..., mode=...)


def _unescape(field: str) -> str:
    return field.encode().decode("unicode_escape")


def parse_mountinfo(text: str) -> list[MountEntry]:
    """Parse /proc/PID/mountinfo text (host's or captured inside a container)."""
    out = []
    for line in text.splitlines():
        if " - " not in line:
            continue
        left, right = line.split(" - ", 1)
        parts = left.split()
        fstype, source, super_opts = (right.split() + ["", ""])[:3]
        out.append(MountEntry(_unescape(parts[3]), _unescape(parts[4]),
                              set(parts[5].split(",")), fstype, _unescape(source),
                              set(super_opts.split(","))))
    return out


def mountinfo() -> list[MountEntry]:
    """Mounts of our own mount namespace."""
    return parse_mountinfo(Path("/proc/self/mountinfo").read_text())


def mounts_under(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    return [m.point for m in mountinfo() if m.point == str(path) or m.point.startswith(prefix)]


def processes_rooted_at(rootfs: Path) -> list[int]:
    """Live processes whose root directory is the given directory."""
    try:
        want = os.stat(rootfs)
    except FileNotFoundError:
        return []
    found = []
    for pid in all_pids():
        try:
            st = os.stat(f"/proc/{pid}/root")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino) and pid_alive(pid):
            found.append(pid)
    return found


def processes_with_cwd_under(path: Path) -> list[int]:
    """Live processes (in our mount namespace) whose working directory is in path."""
    prefix = str(path).rstrip("/") + "/"
    found = []
    for pid in all_pids():
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if (cwd == str(path) or cwd.startswith(prefix)) and pid_alive(pid):
            found.append(pid)
    return found


def processes_in_cgroup_named(name: str) -> list[int]:
    found = []
    for pid in all_pids():
        try:
            text = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            path = line.split(":", 2)[2]
            if name in path.split("/") and pid_alive(pid):
                found.append(pid)
                break
    return found


def processes_naming(word: str) -> list[int]:
    """Live processes other than us whose command line contains word."""
    found = []
    for pid in all_pids():
        if pid == os.getpid():
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(word.encode() in arg for arg in argv) and pid_alive(pid):
            found.append(pid)
    return found


def cgroup_dirs_named(name: str, base: str = "/sys/fs/cgroup", depth: int = 5) -> list[str]:
    found = []

    def walk(d: str, level: int):
        try:
            entries = list(os.scandir(d))
        except OSError:
            return
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                if e.name == name:
                    found.append(e.path)
                elif level < depth:
                    walk(e.path, level + 1)

    walk(base, 0)
    return found


def read_line(stream, timeout: float) -> str:
    """One line from a child's stdout pipe, failing rather than hanging."""
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "no output from the container"
    return stream.readline().decode()


def unmount_all_under(path: Path) -> None:
    for mnt in sorted(mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", mnt], timeout=DEFAULT_TIMEOUT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def remove_tree(path: Path) -> None:
    """rm -rf that first detaches mounts and never descends into one.

    A runtime bug could leave e.g. a bind mount of a host directory inside a
    bundle; deleting through it would delete host files.
    """
    unmount_all_under(path)
    if mounts_under(path):
        print(f"not removing {path}: mounts remain: {mounts_under(path)}")
        return
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------
# Root filesystem and bundles
# ---------------------------------------------------------------------------

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""

GROUP = """\
root:x:0:
daemon:x:1:
wheel:x:10:app
audio:x:29:app
video:x:44:
app:x:1000:
nogroup:x:65534:
"""


@pytest.fixture(scope="session")
def session_dir():
    """A session-wide base directory that every uid can traverse.

    pytest's own tmp dirs are 0700, which a container root mapped to an
    unprivileged host uid could not enter.
    """
    base = Path(tempfile.mkdtemp(prefix="puncker-it-"))
    base.chmod(0o755)
    yield base
    remove_tree(base)


@pytest.fixture(scope="session")
def rootfs_template(session_dir) -> Path:
    """A minimal busybox root filesystem (never run directly; bundles copy it)."""
    root = session_dir / "rootfs-template"
    for d in ("bin", "proc", "sys", "dev", "etc", "tmp", "root", "home/app", "var", "usr"):
        (root / d).mkdir(parents=True, exist_ok=True)
        (root / d).chmod(0o755)
    (root / "tmp").chmod(0o1777)
    (root / "root").chmod(0o700)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True, timeout=DEFAULT_TIMEOUT).stdout.split()
    for applet in applets:
        if applet != "busybox" and "/" not in applet:
            (root / "bin" / applet).symlink_to("busybox")
    (root / "sbin").symlink_to("bin")
    (root / "usr" / "bin").symlink_to("../bin")
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    (root / "etc" / "hostname").write_text(HOSTNAME + "\n")
    (root / "home" / "app").chmod(0o755)
    os.chown(root / "home" / "app", 1000, 1000)
    return root


def default_config(args: Iterable[str]) -> dict:
    """A config.json in the shape `runc spec` writes, adjusted for tests.

    Differences from `runc spec`: no terminal, writable root, a fixed
    hostname, a cgroup namespace, and no linux.resources (the tests do not
    cover cgroup limits). Like `runc spec`, the ambient set is listed while
    the inheritable set is not: runtimes must tolerate that (the kernel will
    not raise those ambient capabilities).
    """
    caps = list(DEFAULT_CAPS)
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": [PATH_ENV, "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": list(caps),
                "effective": list(caps),
                "permitted": list(caps),
                "ambient": list(caps),
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": HOSTNAME,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666",
                         "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in
                           ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                "/proc/sysrq-trigger",
            ],
        },
    }


def deep_merge(base: dict, overrides: dict) -> dict:
    """Merge overrides into base in place: dicts merge, everything else replaces."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


@dataclass
class Bundle:
    path: Path
    config: dict

    @property
    def rootfs(self) -> Path:
        root = Path(self.config["root"]["path"])
        return root if root.is_absolute() else self.path / root

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    def write(self) -> "Bundle":
        self.config_path.write_text(json.dumps(self.config, indent=2))
        return self

    def update(self, fn: Callable[[dict], object] | None = None, **overrides) -> "Bundle":
        """Change the config (deep-merging overrides, then calling fn) and rewrite it."""
        deep_merge(self.config, overrides)
        if fn is not None:
            fn(self.config)
        return self.write()

    def add_mount(self, destination: str, type_: str = "bind", source: str | None = None,
                  options: list[str] | None = None) -> "Bundle":
        mount = {"destination": destination, "type": type_,
                 "source": source if source is not None else type_}
        if options is not None:
            mount["options"] = options
        self.config["mounts"].append(mount)
        return self.write()


@pytest.fixture
def workdir(session_dir, request) -> Path:
    """A fresh directory for this test (mode 0755, removed afterwards)."""
    name = request.node.name[:40].replace("/", "_").replace("[", "_").replace("]", "")
    d = Path(tempfile.mkdtemp(prefix=name + "-", dir=session_dir))
    d.chmod(0o755)
    yield d
    remove_tree(d)


@pytest.fixture
def bundle(rootfs_template, workdir):
    """Factory for bundles: bundle(args=["true"], mutate=fn, **config overrides).

    The rootfs is a private copy of the busybox template. Overrides are deep
    merged into default_config(); mutate(config) runs after that. The
    config.json is written before the Bundle is returned.
    """
    counter = iter(range(1, 10_000))

    def make(args: Iterable[str] = ("true",), mutate: Callable[[dict], object] | None = None,
             **overrides) -> Bundle:
        path = workdir / f"bundle{next(counter)}"
        path.mkdir()
        path.chmod(0o755)
        subprocess.run(["cp", "-a", str(rootfs_template), str(path / "rootfs")],
                       check=True, timeout=DEFAULT_TIMEOUT)
        b = Bundle(path, default_config(args))
        deep_merge(b.config, overrides)
        if mutate is not None:
            mutate(b.config)
        return b.write()

    return make


def _recv_fd(conn) -> int:
    fds = array.array("i")
    _, ancdata, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:fds.itemsize])
            return fds[0]
    raise AssertionError("no fd received on the console socket")


def create_with_console(rt, b, sock_path: Path) -> tuple[str, int]:
    """`create --console-socket` (a container with process.terminal): the id, and the pty
    master the runtime sent over the socket (SCM_RIGHTS), which the caller closes."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(1)
    server.settimeout(DEFAULT_TIMEOUT)
    got = {}

    def accept():
        try:
            conn, _ = server.accept()
            with conn:
                got["fd"] = _recv_fd(conn)
        except (OSError, AssertionError) as e:
            got["error"] = e

    acceptor = threading.Thread(target=accept)
    acceptor.start()
    try:
        cid = rt.create(b, None, "--console-socket", sock_path)
    finally:
        # The master must have been handed over by the time create returns.
        acceptor.join(5)
        if acceptor.is_alive():
            server.shutdown(socket.SHUT_RDWR)  # wakes up accept()
            acceptor.join(5)
        server.close()
    assert "fd" in got, f"no pty master received on --console-socket: {got.get('error')}"
    return cid, got["fd"]


def read_until_closed(master: int, timeout: float = 10) -> str:
    """Everything a pty master yields until the last slave closes (EIO) or `timeout`."""
    data = b""
    deadline = time.monotonic() + timeout
    os.set_blocking(master, False)
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 4096)
        except BlockingIOError:
            time.sleep(0.02)
            continue
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").replace("\r", "")


@pytest.fixture
def probe_bundle(bundle):
    """Like `bundle`, with our static probe (tests/probe, named by PIECES_PROBE) at /bin/probe."""
    probe = os.environ.get("PIECES_PROBE", "")
    if not probe or not Path(probe).exists():
        pytest.fail("PIECES_PROBE must name the built tests/probe binary (CTest sets it)")

    def make(args, mutate=None, **overrides):
        b = bundle(args, mutate=mutate, **overrides)
        shutil.copy(probe, b.rootfs / "bin" / "probe")
        return b

    return make


# ---------------------------------------------------------------------------
# Runtime wrapper
# ---------------------------------------------------------------------------

@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self):
        return (f"$ {' '.join(self.args)}\n-> exit {self.returncode}\n"
                f"stdout: {self.stdout!r}\nstderr: {self.stderr!r}")


class RuntimeFailed(AssertionError):
    pass


@dataclass
class Runtime:
    """The binary under test, bound to a private state directory (--root).

    Every invocation has a timeout and captures stdout/stderr through files,
    never pipes: a container started by create/run -d inherits the runtime's
    stdio and would keep a pipe open forever.
    """

    binary: str
    root: Path
    scratch: Path
    ids: list[str] = field(default_factory=list)
    bundles: list[Bundle] = field(default_factory=list)

    @property
    def is_runc(self) -> bool:
        return os.path.basename(self.binary) == "runc"

    def new_id(self, prefix: str = "it") -> str:
        cid = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.ids.append(cid)
        return cid

    def cmd(self, *args, global_args: Iterable[str] = ()) -> list[str]:
        return [self.binary, "--root", str(self.root), *global_args, *map(str, args)]

    def raw(self, argv: list[str], *, check: bool = False, input: str | None = None,
            timeout: float = DEFAULT_TIMEOUT, stdout: str | Path | None = None,
            pass_fds: Iterable[int] = (), cwd: str | Path | None = None,
            env: dict | None = None) -> Result:
        """Run argv as is (no --root added)."""
        out_path = Path(stdout) if stdout is not None else None
        with tempfile.TemporaryFile(dir=self.scratch) as err_f, \
                tempfile.TemporaryFile(dir=self.scratch) as tmp_out:
            out_f = open(out_path, "ab") if out_path else tmp_out
            try:
                proc = spawn(argv,
                             stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                             stdout=out_f, stderr=err_f, pass_fds=tuple(pass_fds),
                             cwd=cwd, env=env)
                try:
                    proc.communicate(input.encode() if input is not None else None,
                                     timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    raise
                finally:
                    release(proc)
            finally:
                if out_path:
                    out_f.close()
            err_f.seek(0)
            tmp_out.seek(0)
            out = "" if out_path else tmp_out.read().decode(errors="replace")
            result = Result(argv, proc.returncode, out, err_f.read().decode(errors="replace"))
        if check and result.returncode != 0:
            raise RuntimeFailed(f"runtime command failed:\n{result}")
        return result

    def run(self, *args, check: bool = True, global_args: Iterable[str] = (), **kw) -> Result:
        """Run `<binary> --root <root> [global_args] args...`."""
        return self.raw(self.cmd(*args, global_args=global_args), check=check, **kw)

    # -- lifecycle shortcuts -------------------------------------------------

    def create(self, b: Bundle, cid: str | None = None, *flags, **kw) -> str:
        cid = cid or self.new_id()
        self.bundles.append(b)
        self.run("create", "--bundle", b.path, *flags, cid, **kw)
        return cid

    def start(self, cid: str, **kw) -> Result:
        return self.run("start", cid, **kw)

    def create_started(self, b: Bundle, cid: str | None = None, *flags, **kw) -> str:
        cid = self.create(b, cid, *flags, **kw)
        self.start(cid)
        return cid

    def run_fg(self, b: Bundle, cid: str | None = None, *flags, check: bool = False,
               **kw) -> Result:
        """`run` a container in the foreground; returns when it exits."""
        cid = cid or self.new_id()
        self.bundles.append(b)
        return self.run("run", "--bundle", b.path, *flags, cid, check=check, **kw)

    def state(self, cid: str) -> dict:
        res = self.run("state", cid)
        try:
            return json.loads(res.stdout)
        except json.JSONDecodeError as e:
            raise AssertionError(f"state output is not JSON: {e}\n{res}")

    def status(self, cid: str) -> str:
        return self.state(cid)["status"]

    def kill(self, cid: str, sig: str | None = None, *flags, **kw) -> Result:
        args = ["kill", *flags, cid] + ([sig] if sig is not None else [])
        return self.run(*args, **kw)

    def delete(self, cid: str, force: bool = False, **kw) -> Result:
        return self.run("delete", *(["--force"] if force else []), cid, **kw)

    def wait_status(self, cid: str, status: str, timeout: float = 10,
                    reap: bool = True) -> dict:
        """Poll `state` until the status is reached; returns that state.

        With reap=False exited inits stay zombies meanwhile.
        """
        holder = {}

        def check():
            if reap:
                reap_zombie_children()
            holder["state"] = self.state(cid)
            return holder["state"]["status"] == status

        wait_for(check, timeout, f"container {cid} to be {status}")
        return holder["state"]

    def exists(self, cid: str) -> bool:
        return self.run("state", cid, check=False).returncode == 0

    # -- leftovers ---------------------------------------------------------

    def leftovers(self, cid: str, b: Bundle | None = None) -> list[str]:
        """Everything the container id or bundle still holds on the host."""
        problems = []
        if self.root.exists():
            for dirpath, dirnames, filenames in os.walk(self.root):
                for name in dirnames + filenames:
                    if cid in name:
                        problems.append(f"state entry {os.path.join(dirpath, name)}")
        for pid in processes_in_cgroup_named(cid):
            problems.append(f"process {pid} in a cgroup named {cid}")
        for pid in processes_naming(cid):
            problems.append(f"process {pid} with {cid} on its command line")
        for d in cgroup_dirs_named(cid):
            problems.append(f"cgroup directory {d}")
        if b is not None:
            for mnt in mounts_under(b.path):
                problems.append(f"mount {mnt}")
            for pid in processes_rooted_at(b.rootfs):
                problems.append(f"process {pid} rooted at {b.rootfs}")
            for pid in processes_with_cwd_under(b.path):
                problems.append(f"process {pid} working in {b.path}")
        return problems

    def assert_clean(self, cid: str, b: Bundle | None = None) -> None:
        reap_zombie_children()
        problems = self.leftovers(cid, b)
        assert not problems, f"container {cid} left things behind: {problems}"

    # -- teardown ----------------------------------------------------------

    def cleanup(self) -> None:
        listed = []
        if self.root.exists():
            try:
                res = self.run("list", "-q", check=False, timeout=10)
                if res.returncode == 0:
                    listed = res.stdout.split()
            except subprocess.TimeoutExpired:
                pass
        for cid in dict.fromkeys(self.ids + listed):
            try:
                self.run("delete", "--force", cid, check=False, timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for b in self.bundles:
            for pid in processes_rooted_at(b.rootfs) + processes_with_cwd_under(b.path):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for cid in self.ids:
            for pid in processes_in_cgroup_named(cid) + processes_naming(cid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        reap_zombie_children()


@pytest.fixture(scope="session", autouse=True)
def _subreaper():
    """Make the test process a subreaper, like containerd's shim.

    Container inits started by `create` or `run -d` are reparented to us
    instead of to PID 1 (which may not reap on this machine); teardown reaps
    them. Tests that need a process's own subreaper use a helper process.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    yield
    reap_zombie_children()


@pytest.fixture
def rt(runtime_binary, workdir) -> Runtime:
    scratch = workdir / "scratch"
    scratch.mkdir()
    runtime = Runtime(runtime_binary, workdir / "state", scratch)
    yield runtime
    runtime.cleanup()


@pytest.fixture
def run_sh(rt, bundle):
    """run_sh(script, mutate=None, input=None, flags=(), **overrides) -> Result.

    Runs `sh -c script` in a fresh container in the foreground and returns
    the runtime's result (exit status is the container's).
    """

    def go(script: str, *, mutate=None, input: str | None = None, flags=(), **overrides):
        b = bundle(["sh", "-c", script], mutate=mutate, **overrides)
        return rt.run_fg(b, None, *flags, input=input)

    return go


def read_status(pid: int) -> dict:
    """/proc/PID/status as a dict of stripped strings."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def status_field(text: str, key: str) -> str:
    """Value of `key:` in a /proc/*/status dump taken inside a container."""
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k == key:
            return v.strip()
    raise AssertionError(f"{key} not found in:\n{text}")
