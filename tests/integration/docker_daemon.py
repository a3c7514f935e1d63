"""A private dockerd for the Docker client tests, started and torn down by the tests.

Each test module starts its own daemon with docker_daemon(): its own data root, exec root,
socket and containerd, puncker registered as a runtime, and the busybox+probe image loaded.
The daemon does not touch the machine's /var/lib/docker or /var/run/docker.

private_bridge() makes a Linux bridge of the test's own for a daemon started with
--bridge=NAME, and on exit removes the bridge and the iptables rules and chains dockerd
added while it ran, so the machine's tables end as they began.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

from conftest import processes_naming, unmount_all_under
from images import build_rootfs, write_docker_archive

DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"
IMAGE = "pieces-test-bb:latest"


class Docker:
    """The docker CLI talking to one private daemon; runs commands and reads its state."""

    def __init__(self, base: Path, puncker: str):
        self.base = base
        self.puncker = puncker
        self.sock = base / "docker.sock"
        self.exec_root = base / "exec"
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{self.sock}")

    def argv(self, *args) -> list[str]:
        return [DOCKER, *map(str, args)]

    def __call__(self, *args, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), env=self.env, input=input, capture_output=True, timeout=timeout)

    def popen(self, *args, **kw) -> subprocess.Popen:
        kw.setdefault("stdin", subprocess.PIPE)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen(self.argv(*args), env=self.env, **kw)

    def ok(self, *args, input: bytes | None = None, timeout: float = 60) -> str:
        """Runs a docker command that must succeed; returns its stdout, stripped."""
        res = self(*args, input=input, timeout=timeout)
        assert res.returncode == 0, f"docker {' '.join(map(str, args))}: {res.stderr.decode()}"
        return res.stdout.decode().strip()

    def inspect(self, name: str, fmt: str) -> str:
        return self.ok("inspect", "-f", fmt, name)

    def bundle(self, cid: str) -> Path:
        """The bundle containerd made for a container: config.json as Docker wrote it, and
        options.json, the runc shim's options (which binary, which --root)."""
        return self.exec_root / "containerd" / "daemon" / "io.containerd.runtime.v2.task" / "moby" / cid

    def shim_options(self, cid: str) -> dict:
        return json.loads((self.bundle(cid) / "options.json").read_text())

    def runtime_root(self, cid: str) -> Path:
        """The --root the runc shim gives the runtime: options.json's root (Docker 20.10 says
        <exec-root>/runtime-runc for every runtime), then containerd's namespace."""
        return Path(self.shim_options(cid)["root"]) / "moby"

    def puncker_state(self, cid: str, root: Path | None = None) -> dict | None:
        """The container's state as puncker reads it from Docker's runtime root, or None."""
        root = root or self.runtime_root(cid)
        res = subprocess.run([self.puncker, "--root", str(root), "state", cid],
                             capture_output=True, timeout=30)
        return json.loads(res.stdout) if res.returncode == 0 else None

    def assert_runs_on_puncker(self, name: str) -> dict:
        """Docker's container `name` is running, and puncker holds it with the same init pid."""
        cid = self.inspect(name, "{{.Id}}")
        binary = self.shim_options(cid)["binary_name"]
        assert binary == self.puncker, f"containerd's runc shim runs {binary}, not {self.puncker}"
        state = self.puncker_state(cid)
        assert state is not None, f"puncker does not know container {cid} under {self.runtime_root(cid)}"
        assert state["status"] == "running", state
        assert state["pid"] == int(self.inspect(name, "{{.State.Pid}}")), state
        return state


@contextlib.contextmanager
def docker_daemon(base: Path, puncker: str, *daemon_args: str) -> Iterator[Docker]:
    """A private dockerd run with daemon_args, puncker as a runtime and IMAGE loaded; on exit
    every container is removed, the daemon stopped and its mounts undone (its log stays in base)."""
    if not Path(DOCKERD).exists() or not Path(DOCKER).exists():
        raise AssertionError("docker.io is installed by scripts/install-deps.sh")
    client = Docker(base, puncker)
    config = base / "daemon.json"
    config.write_text(json.dumps({"runtimes": {"puncker": {"path": str(puncker)}}}))
    log_path = base / "dockerd.log"
    log = open(log_path, "wb")
    daemon = subprocess.Popen(
        [DOCKERD, "--config-file", str(config), "--data-root", str(base / "data"),
         "--exec-root", str(client.exec_root), "--pidfile", str(base / "dockerd.pid"),
         "-H", f"unix://{client.sock}", *daemon_args],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while client("version").returncode != 0:
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("dockerd did not come up:\n" + log_path.read_text()[-3000:])
            time.sleep(0.2)
        # An image from a busybox rootfs with our probe in it: no registry is reachable.
        archive = write_docker_archive(build_rootfs(base / "rootfs"), base / "image.tar", IMAGE)
        client.ok("load", "-i", archive)
        yield client
    finally:
        if daemon.poll() is None:
            ids = client("ps", "-aq").stdout.decode().split()
            if ids:
                client("rm", "-f", *ids, timeout=120)
        daemon.terminate()
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
        for pid in processes_naming(str(base)):  # a containerd, shim or docker-proxy left behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        unmount_all_under(base)
        for mount in ("data", "exec"):
            subprocess.run(["umount", "-R", str(base / mount)], capture_output=True)


def _iptables_save(table: str) -> list[str] | None:
    res = subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True)
    return res.stdout.splitlines() if res.returncode == 0 else None


def iptables_works() -> bool:
    """True when iptables can list and change the filter and nat tables here."""
    chain = f"PIECES-PROBE-{os.getpid()}"
    for table in ("filter", "nat"):
        if subprocess.run(["iptables", "-t", table, "-N", chain], capture_output=True).returncode != 0:
            return False
        subprocess.run(["iptables", "-t", table, "-X", chain], capture_output=True)
    return True


def _rules_and_chains(listing: list[str]) -> tuple[Counter, set[str]]:
    rules = Counter(line for line in listing if line.startswith("-A "))
    chains = {line.split()[0][1:] for line in listing if line.startswith(":")}
    return rules, chains


def _delete_rules_naming(table: str, words: tuple[str, ...]) -> None:
    """Deletes every rule of `table` that names one of `words` (a bridge, a subnet)."""
    for rule in _iptables_save(table) or []:
        if rule.startswith("-A ") and any(word in rule.split() for word in words):
            subprocess.run(["iptables", "-t", table, "-D", *shlex.split(rule)[1:]], capture_output=True)


def _undo_iptables(table: str, before: list[str]) -> None:
    """Puts `table` back as its `before` listing had it: deletes the rules and chains added
    since; if dockerd also removed rules (it rebuilds its isolation chains when it starts),
    restores the table from the listing."""
    after = _iptables_save(table)
    if after is None:
        return
    rules_before, chains_before = _rules_and_chains(before)
    rules_after, chains_after = _rules_and_chains(after)
    for rule, count in (rules_after - rules_before).items():
        for _ in range(count):
            subprocess.run(["iptables", "-t", table, "-D", *shlex.split(rule)[1:]], capture_output=True)
    for flag in ("-F", "-X"):  # empty every new chain before deleting any: they jump to each other
        for chain in chains_after - chains_before:
            subprocess.run(["iptables", "-t", table, flag, chain], capture_output=True)
    if _rules_and_chains(_iptables_save(table) or []) != (rules_before, chains_before):
        subprocess.run(["iptables-restore"], input="\n".join(before) + "\n", text=True, capture_output=True)


@contextlib.contextmanager
def private_bridge(name: str, address: str) -> Iterator[str]:
    """A Linux bridge `name` with `address` (a.b.c.d/len) for dockerd --bridge=name; on exit
    the bridge goes, and so do the iptables rules and chains added while it existed."""
    subprocess.run(["ip", "link", "del", name], capture_output=True)  # left by a killed run
    before = {table: _iptables_save(table) or [] for table in ("filter", "nat")}
    try:
        for cmd in (["ip", "link", "add", name, "type", "bridge"],
                    ["ip", "addr", "add", address, "dev", name],
                    ["ip", "link", "set", name, "up"]):
            res = subprocess.run(cmd, capture_output=True, text=True)
            assert res.returncode == 0, f"{' '.join(cmd)}: {res.stderr}"
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True)
        subnet = str(ipaddress.ip_network(address, strict=False))
        for table, lines in before.items():
            _undo_iptables(table, lines)
            _delete_rules_naming(table, (name, subnet))  # whatever another daemon's timing left
