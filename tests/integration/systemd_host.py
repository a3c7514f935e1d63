"""A real systemd, booted as pid 1 of a puncker container, for the --systemd-cgroup tests.

This machine's pid 1 is not systemd and there is no system bus, so the tests that make
puncker talk to systemd over D-Bus run puncker *inside* a container whose init is the host's
own /lib/systemd/systemd (Debian's, from scripts/install-deps.sh), with dbus-daemon as the
system bus. The binary under test is bind-mounted read-only at /opt/pieces/puncker, and a
host directory at /bundles holds busybox bundles the inner puncker runs.

The container's root is a small directory: the host's /usr bound read-only (with the usual
bin, sbin, lib, lib64 symlinks), a copy of the host's /etc trimmed down to what the boot
needs (a test target that pulls dbus and journald, the rest masked, the generators masked),
tmpfs on /run and /tmp, a writable /var. It boots in well under a second here; making the
root (a copy of /etc) and the first exec add about as much again.

Cgroup modes (what systemd sees at /sys/fs/cgroup):
  "hybrid"   this host's own layout, through puncker's "cgroup" mount: a tmpfs with the v1
             hierarchies (cpu, memory, ..., name=systemd) and cgroup2 at
             /sys/fs/cgroup/unified, each rooted at the container's cgroup (cgroup namespace).
  "unified"  only the container's cgroup2 directory, bound at /sys/fs/cgroup. A "cgroup"
             mount always shows the host's whole layout, so this mode binds the container's
             cgroup2 directory instead, made before `run` because bind mounts are done before
             the runtime puts the init in its cgroup. systemd then runs with no controllers
             (this host's cgroup2 hierarchy delegates none to children), which it accepts; an
             inner container asking for linux.resources cannot be placed in this mode.
             The v1 hierarchies still hold the container (the host puts it there) but are
             not mounted inside.

Use:
  from systemd_host import systemd_host  # noqa: F401  (the fixture, module scope)

  def test_x(systemd_host):
      systemd_host.exec(["systemctl", "is-system-running"])          # a conftest Result
      b = systemd_host.bundle_dir("one", ["sleep", "100"])             # /bundles/one inside
      systemd_host.inner("run", "-d", "--bundle", b.path, "c1")        # puncker --systemd-cgroup
      systemd_host.host_cgroup("/system.slice/x.scope")                # that cgroup, host path

The mode is "hybrid" unless the test module parametrizes the fixture indirectly:
  @pytest.mark.parametrize("systemd_host", ["hybrid", "unified"], indirect=True)
or boots one itself with `with booted_systemd(base_dir, runtime_binary, mode) as host:`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import threading
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pytest

from conftest import (Bundle, CAPS, DEFAULT_TIMEOUT, PATH_ENV, Result, _recv_fd, cgroup_dirs_named,
                      deep_merge, default_config, mounts_under, processes_in_cgroup_named,
                      processes_naming, processes_rooted_at, reap_zombie_children, remove_tree)

SYSTEMD = "/lib/systemd/systemd"
MODES = ("hybrid", "unified")
# Where the binary under test appears inside the systemd container. /usr is the host's,
# read-only, so it cannot go there.
INNER_PUNCKER = "/opt/pieces/puncker"
# A host directory, writable, at the same path inside: bundles for the inner puncker.
INNER_BUNDLES = "/bundles"
BOOT_TIMEOUT = 60
TIOCGPTPEER = 0x5441  # <asm-generic/ioctls.h>: open the slave of a pty master
HOSTNAME = "systemd-host"
# The system bus; dbus.socket listens there.
BUS = "unix:path=/run/dbus/system_bus_socket"
# Environment of the commands run by exec(): the bus, no pager, no colours.
EXEC_ENV = [PATH_ENV, f"DBUS_SYSTEM_BUS_ADDRESS={BUS}", "SYSTEMD_PAGER=", "PAGER=cat",
            "SYSTEMD_COLORS=0", "LANG=C.UTF-8"]

NEWER_CAPS = {"CAP_PERFMON": 38, "CAP_BPF": 39, "CAP_CHECKPOINT_RESTORE": 40}


def all_caps() -> list[str]:
    """Every capability this process may pass on (its bounding set; this VM has no
    CAP_SYS_RESOURCE) but CAP_SYS_MODULE: with it, systemd-modules-load and kmod would load
    modules into the machine's kernel (there is no user namespace here)."""
    bounding = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            bounding = int(line.split()[1], 16)
    return [name for name, bit in {**CAPS, **NEWER_CAPS}.items()
            if bounding & (1 << bit) and name != "CAP_SYS_MODULE"]


# The target the container boots into. dbus.socket and dbus.service bring sysinit.target (and
# with it journald and tmpfiles) through their default dependencies; nothing else is wanted.
TEST_TARGET = """\
[Unit]
Description=puncker test host: system bus and nothing more
Requires=dbus.socket
Wants=dbus.service systemd-journald.service
After=dbus.socket dbus.service systemd-journald.service
AllowIsolate=yes
"""

# Units of sysinit.target, local-fs.target and friends that are slow, fail or would touch the
# machine from a container: masked (a symlink to /dev/null in /etc/systemd/system).
MASKED_UNITS = [
    "systemd-udevd.service", "systemd-udevd-control.socket", "systemd-udevd-kernel.socket",
    "systemd-udev-trigger.service", "systemd-udev-settle.service", "systemd-hwdb-update.service",
    "systemd-modules-load.service", "kmod-static-nodes.service", "systemd-remount-fs.service",
    "sys-kernel-config.mount", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
    "sys-fs-fuse-connections.mount", "dev-hugepages.mount", "dev-mqueue.mount",
    "proc-sys-fs-binfmt_misc.automount", "proc-sys-fs-binfmt_misc.mount", "systemd-binfmt.service",
    "systemd-pstore.service", "systemd-timesyncd.service", "systemd-random-seed.service",
    "systemd-firstboot.service", "systemd-machine-id-commit.service", "systemd-repart.service",
    "systemd-pcrphase.service", "systemd-pcrphase-sysinit.service", "systemd-sysctl.service",
    "systemd-sysusers.service", "systemd-update-utmp.service", "systemd-journal-flush.service",
    "systemd-journald-audit.socket", "systemd-ask-password-console.path",
    "systemd-ask-password-wall.path", "getty.target", "console-getty.service",
    "systemd-logind.service", "ldconfig.service", "systemd-boot-system-token.service",
    "systemd-hibernate-resume@.service", "e2scrub_reap.service", "cryptsetup.target",
    "veritysetup.target", "integritysetup.target", "swap.target", "remote-fs.target",
    "systemd-tmpfiles-clean.timer", "timers.target",
]


@dataclass
class InnerBundle(Bundle):
    """A bundle the inner puncker can run: `path` inside the systemd container, `host_path` here."""

    host_path: Path = Path()

    @property
    def rootfs(self) -> Path:
        return self.host_path / "rootfs"

    @property
    def config_path(self) -> Path:
        return self.host_path / "config.json"


class SystemdHost:
    """A running systemd container: run commands in it, make bundles for it, read its cgroups.

    Attributes:
      mode        "hybrid" or "unified"
      id          the container id (also its cgroup's name on the host)
      puncker     the binary under test as seen inside: /opt/pieces/puncker
      bundles     "/bundles", the inner path of the shared bundle directory
      cgroup_path the container's cgroup, e.g. "/sdhost-0123abcd", in every host hierarchy
      console     host path of the file that gets systemd's console output
      outer_root  puncker --root of the outer container (host side)
      base        host directory holding everything (rootfs, bundles, state, console)
      boot_seconds  from `run -d` to systemd running and answering on the bus
      left_after_delete  after teardown: leftovers() right after `delete --force`, before
                  the fixture's own clean-up (empty when the runtime removed everything)

    Commands run by exec() sit in the container's root cgroup ("/" inside, cgroup_path on
    the host), beside systemd's tree, not in a unit of systemd's.
    """

    def __init__(self, base: Path, binary: str, mode: str, rootfs_template: Path | None):
        if mode not in MODES:
            raise ValueError(f"systemd_host mode {mode!r}: expected one of {MODES}")
        self.base = base
        self.binary = binary
        self.mode = mode
        self.id = f"sdhost-{uuid.uuid4().hex[:10]}"
        self.puncker = INNER_PUNCKER
        self.bundles = INNER_BUNDLES
        self.cgroup_path = "/" + self.id
        self.outer_root = base / "state"
        self.console = base / "console.log"
        self.rootfs = base / "rootfs"
        self.bundles_host = base / "bundles"
        self.bundle_path = base / "outer"
        self.boot_seconds = 0.0
        self.left_after_delete: list[str] | None = None
        self._rootfs_template = rootfs_template

    # -- running things inside ---------------------------------------------------------------

    def outer(self, *args, timeout: float = DEFAULT_TIMEOUT, check: bool = True) -> Result:
        """Run `puncker --root <outer state> args...` on the host."""
        argv = [self.binary, "--root", str(self.outer_root), *map(str, args)]
        return _run(argv, timeout=timeout, check=check)

    def exec(self, argv: Iterable[str], timeout: float = DEFAULT_TIMEOUT, check: bool = True,
             env: Iterable[str] = (), input: str | None = None) -> Result:
        """Run argv inside the systemd container (puncker exec), PATH and the bus set.

        Returns conftest's Result (args, returncode, stdout, stderr); with check, a non-zero
        exit fails the test with the command and its output.
        """
        flags = []
        for e in [*EXEC_ENV, *env]:
            flags += ["--env", e]
        full = [self.binary, "--root", str(self.outer_root), "exec", *flags, self.id, *map(str, argv)]
        res = _run(full, timeout=timeout, check=False, input=input)
        if check and res.returncode != 0:
            raise AssertionError(f"command in the systemd container failed:\n{res}")
        return res

    def sh(self, script: str, **kw) -> Result:
        """exec(["sh", "-c", script])."""
        return self.exec(["sh", "-c", script], **kw)

    def inner(self, *args, systemd_cgroup: bool = True, **kw) -> Result:
        """Run the inner puncker: `/opt/pieces/puncker [--systemd-cgroup] args...` inside.

        Its stdio are files of its own, relayed once it exits: a container it leaves running
        (run -d, create) inherits those, not exec's, which some runtimes (runc) would wait on.
        """
        script = ('o=$(mktemp) e=$(mktemp); "$@" </dev/null >"$o" 2>"$e"; rc=$?; '
                  'cat "$o"; cat "$e" >&2; rm -f "$o" "$e"; exit $rc')
        return self.exec(["sh", "-c", script, "sh", self.puncker,
                          *(["--systemd-cgroup"] if systemd_cgroup else []), *map(str, args)], **kw)

    def bus_get(self, interface: str, prop: str, obj: str = "/org/freedesktop/systemd1",
                dest: str = "org.freedesktop.systemd1", **kw) -> str:
        """`busctl get-property` of one property, as busctl prints it (e.g. 's "252.39-1"')."""
        return self.exec(["busctl", "--system", "get-property", dest, obj, interface, prop],
                         **kw).stdout.strip()

    def unit_property(self, unit: str, prop: str) -> str:
        """`systemctl show -P prop unit`, stripped."""
        return self.exec(["systemctl", "show", "-P", prop, unit]).stdout.strip()

    def journal(self, lines: int = 200) -> str:
        res = self.exec(["journalctl", "--no-pager", "-b", "-n", str(lines)], check=False, timeout=15)
        return res.stdout + res.stderr

    def console_text(self) -> str:
        try:
            return self.console.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- bundles for the inner puncker -----------------------------------------------------------

    def bundle_dir(self, name: str, args: Iterable[str] = ("sleep", "1000"),
                   mutate: Callable[[dict], object] | None = None, **overrides) -> InnerBundle:
        """A busybox bundle at /bundles/<name> (inside), made from conftest's rootfs template
        and default_config(args) with overrides deep-merged and then mutate(config).

        The config has no cgroupsPath: set linux.cgroupsPath ("slice:prefix:name") for
        --systemd-cgroup tests that want one. Remove it with remove_bundle() or leave it to
        teardown.
        """
        if self._rootfs_template is None:
            raise AssertionError("bundle_dir needs the rootfs_template fixture")
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"bundle name {name!r}")
        host = self.bundles_host / name
        if host.exists():
            raise AssertionError(f"bundle {name} exists already")
        host.mkdir()
        host.chmod(0o755)
        subprocess.run(["cp", "-a", str(self._rootfs_template), str(host / "rootfs")],
                       check=True, timeout=DEFAULT_TIMEOUT)
        config = default_config(args)
        deep_merge(config, overrides)
        if mutate is not None:
            mutate(config)
        return InnerBundle(f"{self.bundles}/{name}", config, host).write()

    def remove_bundle(self, b: InnerBundle) -> None:
        remove_tree(b.host_path)

    # -- cgroups seen from the host ----------------------------------------------------------------

    def host_cgroup(self, path: str = "", hierarchy: str = "unified") -> Path:
        """Host path of a cgroup of the container: `path` is as seen inside (e.g.
        "/system.slice/foo.scope", or "" for the container's root) and `hierarchy` the host
        mount under /sys/fs/cgroup ("unified", "systemd", "memory", "pids", ...)."""
        return Path("/sys/fs/cgroup") / hierarchy / (self.cgroup_path + "/" + path.strip("/")).strip("/")

    def inner_cgroup(self, pid_or_self: str = "self") -> str:
        """/proc/<pid>/cgroup as read inside the container."""
        return self.exec(["cat", f"/proc/{pid_or_self}/cgroup"]).stdout

    # -- boot and teardown -------------------------------------------------------------------------

    def system_state(self) -> str:
        res = self.exec(["systemctl", "is-system-running"], check=False, timeout=10)
        return res.stdout.strip()

    def wait_running(self, timeout: float = BOOT_TIMEOUT) -> str:
        """Wait until systemd has finished booting and answers on the system bus; returns
        the system state ("running" or "degraded"). Fails with the console and journal."""
        deadline = time.monotonic() + timeout
        state = ""
        last = None
        while time.monotonic() < deadline:
            if not self._init_alive():
                self._fail_boot("the systemd container exited")
            try:
                res = self.exec(["systemctl", "is-system-running"], check=False, timeout=10)
            except subprocess.TimeoutExpired:
                res = None
            if res is not None:
                last = res
                state = res.stdout.strip()
                if state in ("running", "degraded"):
                    bus = self.exec(["busctl", "--system", "status", "org.freedesktop.systemd1"],
                                    check=False, timeout=10)
                    if bus.returncode == 0:
                        return state
                    last = bus
            time.sleep(0.1)
        self._fail_boot(f"systemd did not reach running/degraded in {timeout}s (last: {last})")
        return state

    def _init_alive(self) -> bool:
        res = self.outer("state", self.id, check=False)
        try:
            st = json.loads(res.stdout)
        except json.JSONDecodeError:
            return False
        return st.get("status") == "running"

    def _fail_boot(self, why: str) -> None:
        failed = ""
        if self._init_alive():
            failed = self.exec(["systemctl", "--failed", "--no-legend", "--plain"], check=False,
                               timeout=10).stdout
            failed += self.exec(["systemctl", "list-jobs", "--no-legend"], check=False, timeout=10).stdout
            journal = self.journal()
        else:
            journal = "(container not running)"
        raise AssertionError(f"{why}\n--- failed units and jobs:\n{failed}\n"
                             f"--- console ({self.console}):\n{self.console_text()[-8000:]}\n"
                             f"--- journal:\n{journal[-8000:]}")

    def leftovers(self) -> list[str]:
        """What the container still holds on the host: processes, mounts, cgroups, state."""
        reap_zombie_children()
        problems = []
        for pid in processes_in_cgroup_named(self.id):
            problems.append(f"process {pid} in a cgroup named {self.id}")
        for pid in processes_naming(self.id):
            problems.append(f"process {pid} with {self.id} on its command line")
        for pid in processes_rooted_at(self.rootfs):
            problems.append(f"process {pid} rooted at {self.rootfs}")
        for d in cgroup_dirs_named(self.id, depth=2):
            problems.append(f"cgroup directory {d}")
        for mnt in mounts_under(self.base):
            problems.append(f"mount {mnt}")
        if (self.outer_root / self.id).exists():
            problems.append(f"state directory {self.outer_root / self.id}")
        return problems

    def stop(self) -> None:
        """delete --force the container, then kill and remove whatever it left.

        What the runtime's delete alone left is kept in left_after_delete (a list of
        leftovers(), empty when delete cleaned up everything) for tests to assert on.
        """
        try:
            self.outer("delete", "--force", self.id, check=False, timeout=30)
        except subprocess.TimeoutExpired:
            pass
        self.left_after_delete = self.leftovers()
        # Whatever a failed delete left: kill by cgroup and by root, then remove cgroups deepest
        # first (systemd made sub-cgroups, the inner puncker made more).
        for _ in range(50):
            pids = set(processes_in_cgroup_named(self.id)) | set(processes_rooted_at(self.rootfs))
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            reap_zombie_children()
            time.sleep(0.05)
        reap_zombie_children()
        for top in cgroup_dirs_named(self.id, depth=2):
            for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)


# ---------------------------------------------------------------------------------------------
# The root filesystem and config of the systemd container
# ---------------------------------------------------------------------------------------------

def _run(argv: list[str], timeout: float, check: bool, input: str | None = None) -> Result:
    # Output through files, not pipes: a process left behind would hold a pipe open.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        stdin = {"input": input.encode()} if input is not None else {"stdin": subprocess.DEVNULL}
        proc = subprocess.run(argv, stdout=out, stderr=err, timeout=timeout, **stdin)
        out.seek(0)
        err.seek(0)
        res = Result(argv, proc.returncode, out.read().decode(errors="replace"),
                     err.read().decode(errors="replace"))
    if check and res.returncode != 0:
        raise AssertionError(f"command failed:\n{res}")
    return res


def _symlink(target: str, link: Path) -> None:
    if link.is_symlink() or link.exists():
        if link.is_dir() and not link.is_symlink():
            shutil.rmtree(link)
        else:
            link.unlink()
    link.symlink_to(target)


def make_etc(etc: Path) -> None:
    """A copy of the host's /etc, trimmed to a fast, quiet boot into the test target."""
    subprocess.run(["cp", "-a", "/etc", str(etc)], check=True, timeout=DEFAULT_TIMEOUT)
    units = etc / "systemd" / "system"
    # The host's enabled services (docker, podman, timers, ...) are not ours to start.
    for entry in list(units.iterdir()):
        if entry.name.endswith((".wants", ".requires")) or entry.is_symlink():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    (units / "puncker-test.target").write_text(TEST_TARGET)
    _symlink("/etc/systemd/system/puncker-test.target", units / "default.target")
    for unit in MASKED_UNITS:
        _symlink("/dev/null", units / unit)
    # Generators (fstab, getty, sysv, gpt-auto, ...) have nothing to do here: masked too.
    gens = etc / "systemd" / "system-generators"
    gens.mkdir(exist_ok=True)
    for d in ("/usr/lib/systemd/system-generators", "/usr/local/lib/systemd/system-generators"):
        if os.path.isdir(d):
            for g in os.listdir(d):
                _symlink("/dev/null", gens / g)
    (etc / "fstab").write_text("# empty: the runtime mounts everything\n")
    (etc / "machine-id").write_text(uuid.uuid4().hex + "\n")
    (etc / "hostname").write_text(HOSTNAME + "\n")
    # Volatile journal in /run, kept small.
    jd = etc / "systemd" / "journald.conf.d"
    jd.mkdir(parents=True, exist_ok=True)
    (jd / "puncker-test.conf").write_text("[Journal]\nStorage=volatile\nRuntimeMaxUse=8M\n")


def make_rootfs(root: Path) -> None:
    root.mkdir(mode=0o755)
    for d in ("usr", "proc", "sys", "dev", "run", "tmp", "root", "home", "opt/pieces",
              INNER_BUNDLES.lstrip("/"), "var/lib", "var/log", "var/cache", "var/spool", "var/tmp",
              "mnt", "srv", "media"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "var" / "tmp").chmod(0o1777)
    (root / "root").chmod(0o700)
    for name in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
        if os.path.islink(f"/{name}"):
            (root / name).symlink_to(os.readlink(f"/{name}"))
    (root / "var" / "run").symlink_to("../run")
    (root / "var" / "lock").symlink_to("../run/lock")
    # The bind-mount target of the inner binary.
    (root / INNER_PUNCKER.lstrip("/")).touch(mode=0o755)
    make_etc(root / "etc")


def systemd_config(host: SystemdHost) -> dict:
    """config.json of the systemd container (conftest's default_config, adjusted)."""
    config = default_config([SYSTEMD, "--log-target=console", "--log-level=info",
                             "--show-status=false"])
    proc = config["process"]
    proc["env"] = [PATH_ENV, "container=puncker", "LANG=C.UTF-8"]
    caps = all_caps()
    proc["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    proc["noNewPrivileges"] = False
    # systemd as pid 1 logs to /dev/console and only if it is a tty: a pty, whose master
    # ConsoleReader copies into the console file.
    proc["terminal"] = True
    # As many files as we may have (raising the hard limit needs CAP_SYS_RESOURCE).
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    proc["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": hard, "soft": min(1024, hard)}]
    config["root"] = {"path": str(host.rootfs), "readonly": False}
    config["hostname"] = HOSTNAME
    mounts = [m for m in config["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    mounts += [
        {"destination": "/usr", "type": "bind", "source": "/usr",
         "options": ["rbind", "ro"]},
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "mode=755", "size=65536k"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "mode=1777", "size=262144k"]},
        {"destination": INNER_PUNCKER, "type": "bind", "source": host.binary,
         "options": ["bind", "ro"]},
        {"destination": INNER_BUNDLES, "type": "bind", "source": str(host.bundles_host),
         "options": ["rbind", "rw"]},
    ]
    if host.mode == "hybrid":
        mounts.append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                       "options": ["nosuid", "noexec", "nodev", "relatime", "rw"]})
    else:
        # The container's own cgroup2 directory (made before create, see booted_systemd):
        # systemd finds cgroup2 at /sys/fs/cgroup and runs in unified mode.
        mounts.append({"destination": "/sys/fs/cgroup", "type": "bind",
                       "source": f"/sys/fs/cgroup/unified{host.cgroup_path}",
                       "options": ["rbind", "rw", "nosuid", "noexec", "nodev"]})
    config["mounts"] = mounts
    linux = config["linux"]
    linux["cgroupsPath"] = host.cgroup_path
    # /proc/sys stays read-only (systemd skips what it cannot write in a container); the
    # other masks of default_config stay as they are.
    return config


class ConsoleReader:
    """Takes the pty master puncker sends to a console socket and copies everything the
    container writes on its console into a file, from a thread, until the pty closes."""

    def __init__(self, socket_path: Path, out: Path):
        self.socket_path = socket_path
        self.out = out
        self.master = -1
        self.slave = -1
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(socket_path))
        self._server.listen(1)
        self._server.settimeout(DEFAULT_TIMEOUT)
        self._got: dict = {}
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()
        self._copier: threading.Thread | None = None
        self._stop = threading.Event()

    def _accept(self) -> None:
        try:
            conn, _ = self._server.accept()
            with conn:
                self._got["fd"] = _recv_fd(conn)
        except (OSError, AssertionError) as e:
            self._got["error"] = e

    def accepted(self) -> None:
        """Called once `run` returned: the master has arrived by then (or never will)."""
        self._acceptor.join(5)
        if self._acceptor.is_alive():
            self._server.shutdown(socket.SHUT_RDWR)
            self._acceptor.join(5)
        self._server.close()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        if "fd" in self._got:
            self.master = self._got["fd"]
            # systemd opens /dev/console for a message and closes it again; while no slave is
            # open, a read of the master fails with EIO. A slave of our own (TIOCGPTPEER works
            # whichever devpts the pty lives in) keeps the pty up until close().
            self.slave = fcntl.ioctl(self.master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
            self._copier = threading.Thread(target=self._copy, daemon=True)
            self._copier.start()

    def _copy(self) -> None:
        with open(self.out, "ab", buffering=0) as f:
            while not self._stop.is_set():
                ready, _, _ = select.select([self.master], [], [], 0.2)
                if not ready:
                    continue
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: the last slave is closed
                    break
                if not chunk:
                    break
                f.write(chunk.replace(b"\r", b""))

    def close(self) -> None:
        self._stop.set()
        if self._copier is not None:
            self._copier.join(5)
        for fd in (self.slave, self.master):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1


@contextlib.contextmanager
def booted_systemd(base: Path, binary: str, mode: str = "hybrid",
                   rootfs_template: Path | None = None,
                   timeout: float = BOOT_TIMEOUT) -> Iterator[SystemdHost]:
    """Boot systemd in a puncker container under `base`; yield the SystemdHost once it is
    running and answering on the bus; delete it and everything it made on exit."""
    if not os.access(SYSTEMD, os.X_OK) or not shutil.which("dbus-daemon"):
        pytest.skip("systemd and dbus are not installed (scripts/install-deps.sh installs them)")
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    host = SystemdHost(base, binary, mode, rootfs_template)
    made_v2_dir = None
    console_reader = None
    try:
        make_rootfs(host.rootfs)
        host.bundles_host.mkdir(mode=0o755)
        host.bundle_path.mkdir(mode=0o755)
        host.outer_root.mkdir(mode=0o700)
        (host.bundle_path / "config.json").write_text(json.dumps(systemd_config(host), indent=2))
        if mode == "unified":
            made_v2_dir = Path(f"/sys/fs/cgroup/unified{host.cgroup_path}")
            made_v2_dir.mkdir()
        started = time.monotonic()
        console_reader = ConsoleReader(base / "console.sock", host.console)
        try:
            res = host.outer("run", "-d", "--console-socket", console_reader.socket_path,
                             "--bundle", host.bundle_path, host.id, check=False)
        finally:
            console_reader.accepted()
        if res.returncode != 0:
            raise AssertionError(f"puncker run -d of the systemd container failed:\n{res}")
        host.wait_running(timeout)
        host.boot_seconds = time.monotonic() - started
        yield host
    finally:
        host.stop()
        if console_reader is not None:
            console_reader.close()
        if made_v2_dir is not None:
            with contextlib.suppress(OSError):
                made_v2_dir.rmdir()
        remove_tree(base)


@pytest.fixture(scope="module")
def systemd_host(request, runtime_binary, session_dir, rootfs_template) -> Iterator[SystemdHost]:
    """A booted systemd container for this module ("hybrid" unless parametrized indirectly)."""
    mode = getattr(request, "param", "hybrid")
    base = Path(tempfile.mkdtemp(prefix=f"systemd-{mode}-", dir=session_dir))
    with booted_systemd(base, runtime_binary, mode, rootfs_template) as host:
        yield host
