"""linux.seccomp: actions, errnoRet, argument filters, the notify listener, Docker's profile."""

from __future__ import annotations

import array
import fcntl
import json
import os
import shutil
import socket
import struct
import threading
from pathlib import Path

import pytest

from conftest import DEFAULT_TIMEOUT

SYS_MKDIR = 83  # x86_64
DOCKER_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
               "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
               "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


def allow_all_but(*rules, **extra):
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": list(rules), **extra}


def run_filtered(run_sh, script, seccomp, nnp=True):
    return run_sh(script, linux={"seccomp": seccomp}, process={"noNewPrivileges": nnp})


@pytest.fixture(params=[True, False], ids=["nnp", "no-nnp"])
def nnp(request):
    """Filters load before the capability drop without no_new_privs, after it with: test both."""
    return request.param


def test_errno_with_errno_ret(run_sh, nnp):
    res = run_filtered(run_sh, "mkdir /tmp/a; echo rc=$?; touch /tmp/f && echo touched",
                       allow_all_but({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}), nnp)
    assert res.returncode == 0, res
    assert "Permission denied" in res.stderr + res.stdout
    assert "rc=1" in res.stdout and "touched" in res.stdout


def test_errno_defaults_to_eperm_and_default_errno_ret(run_sh):
    res = run_filtered(run_sh, "mkdir /tmp/a; echo rc=$?",
                       allow_all_but({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}))
    assert "Operation not permitted" in res.stderr + res.stdout, res
    # With a default ERRNO action, defaultErrnoRet picks the errno for everything not allowed.
    everything_else = sorted(all_syscall_names() - {"mkdir", "mkdirat"})
    res = run_filtered(run_sh, "mkdir /tmp/b; echo rc=$?",
                       {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 2,
                        "syscalls": [{"names": everything_else, "action": "SCMP_ACT_ALLOW"}]})
    assert "No such file or directory" in res.stderr + res.stdout, res
    assert "rc=1" in res.stdout


def all_syscall_names() -> set[str]:
    """Every x86_64 syscall name, from the kernel's uapi header."""
    header = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h").read_text()
    return {line.split()[1][len("__NR_"):] for line in header.splitlines() if line.startswith("#define __NR_")}


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                                    "SCMP_ACT_TRAP"])
def test_kill_and_trap_end_the_caller_with_sigsys(run_sh, action):
    # A subshell: busybox runs mkdir inside the shell's own process otherwise.
    res = run_filtered(run_sh, "(mkdir /tmp/k && echo made); echo rc=$?",
                       allow_all_but({"names": ["mkdir", "mkdirat"], "action": action}))
    assert res.returncode == 0, res
    assert "made" not in res.stdout
    assert "rc=159" in res.stdout  # 128 + SIGSYS


def test_log_allows_the_call(run_sh):
    res = run_filtered(run_sh, "(mkdir /tmp/l && echo made); echo rc=$?",
                       allow_all_but({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG"}))
    assert res.stdout == "made\nrc=0\n", res


@pytest.mark.parametrize("op,value,two", [("SCMP_CMP_EQ", 10, 0), ("SCMP_CMP_MASKED_EQ", 0xff, 10),
                                          ("SCMP_CMP_GE", 10, 0)])
def test_argument_filters(run_sh, op, value, two):
    """kill(pid, SIGUSR1=10) is refused; kill(pid, 0) still works."""
    arg = {"index": 1, "value": value, "op": op}
    if two:
        arg["valueTwo"] = two
    res = run_filtered(run_sh, "kill -0 $$ && echo zero-ok; kill -USR1 $$; echo rc=$?",
                       allow_all_but({"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [arg]}))
    assert "zero-ok" in res.stdout, res
    assert "rc=1" in res.stdout, res


ALL_FLAGS = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
             "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]


@pytest.mark.puncker_only  # runc 1.1.5 does not know WAIT_KILLABLE_RECV
def test_filter_flags(run_sh, rt, bundle):
    res = run_filtered(run_sh, "mkdir /tmp/a; echo rc=$?",
                       allow_all_but({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}, flags=ALL_FLAGS))
    assert res.returncode == 0, res
    assert "rc=1" in res.stdout
    b = bundle(["true"], linux={"seccomp": allow_all_but(flags=["SECCOMP_FILTER_FLAG_BOGUS"])})
    cid = rt.new_id()
    bad = rt.run("run", "--bundle", b.path, cid, check=False)
    assert bad.returncode != 0 and "SECCOMP_FILTER_FLAG_BOGUS" in bad.stderr, bad
    rt.assert_clean(cid, b)


def test_unknown_syscall_names_are_skipped(run_sh):
    res = run_filtered(run_sh, "mkdir /tmp/a; echo rc=$?",
                       allow_all_but({"names": ["no_such_syscall_at_all", "mkdir", "mkdirat"],
                                      "action": "SCMP_ACT_ERRNO"}))
    assert res.returncode == 0, res
    assert "rc=1" in res.stdout


def test_unknown_action_is_an_error(rt, bundle):
    b = bundle(["true"], linux={"seccomp": allow_all_but({"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"})})
    cid = rt.new_id()
    res = rt.run("run", "--bundle", b.path, cid, check=False)
    assert res.returncode != 0
    assert "SCMP_ACT_BOGUS" in res.stderr, res.stderr
    rt.assert_clean(cid, b)


@pytest.mark.puncker_only  # the cache of compiled filters is ours
def test_compiled_filters_are_kept_under_the_root_and_reused(run_sh, rt):
    cache = rt.root / "@cache" / "seccomp"
    profile = allow_all_but({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"})
    first = run_filtered(run_sh, "mkdir /tmp/a; echo rc=$?", profile)
    assert "rc=1" in first.stdout, first
    (entry,) = cache.iterdir()
    assert (entry.stat().st_mode & 0o777, cache.stat().st_mode & 0o777) == (0o600, 0o700)
    used = entry.stat().st_mtime_ns
    # The same profile again: the filter comes from the entry, and still confines.
    again = run_filtered(run_sh, "mkdir /tmp/a; echo rc=$?", profile)
    assert "rc=1" in again.stdout, again
    assert list(cache.iterdir()) == [entry]
    assert entry.stat().st_mtime_ns > used  # marked as used, for least-recently-used eviction
    # Another profile is another entry; a different rule is not served the first one's filter.
    other = run_filtered(run_sh, "mkdir /tmp/a; echo rc=$?; touch /tmp/f; echo rc=$?",
                         allow_all_but({"names": ["utimensat", "open", "openat"], "action": "SCMP_ACT_ERRNO"}))
    assert "rc=0" in other.stdout and "rc=1" in other.stdout, other
    assert len(list(cache.iterdir())) == 2
    # The cache is no container.
    assert "@cache" not in rt.run("list").stdout


@pytest.mark.puncker_only
def test_a_cache_entry_others_can_write_is_not_trusted(run_sh, rt):
    profile = allow_all_but({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"})
    run_filtered(run_sh, "true", profile)
    (entry,) = (rt.root / "@cache" / "seccomp").iterdir()
    # The entry rewritten to allow what the profile refuses and made group-writable, as
    # someone else could have: it must not be loaded.
    entry.write_bytes(allowing_everything(entry.read_bytes()))
    entry.chmod(0o660)
    res = run_filtered(run_sh, "mkdir /tmp/a; echo rc=$?", profile)
    assert "rc=1" in res.stdout, res
    assert entry.stat().st_mode & 0o777 == 0o600  # replaced by a fresh compile
    # The same rewrite with the entry's own mode is loaded as it is: the check above is what
    # stood between the container and that filter.
    entry.write_bytes(allowing_everything(entry.read_bytes()))
    res = run_filtered(run_sh, "mkdir /tmp/a; echo rc=$?", profile)
    assert "rc=0" in res.stdout, res


def allowing_everything(entry: bytes) -> bytes:
    """A cache entry (docs/architecture.md) whose filter returns ALLOW wherever it said ERRNO."""
    magic = b"pieces seccomp cache 1\n"
    assert entry.startswith(magic)
    (key_size,) = struct.unpack_from("<Q", entry, len(magic))
    at = len(magic) + 8 + key_size + 8  # past the key, the flags and the notify word
    (count,) = struct.unpack_from("<Q", entry, at)
    at += 8
    out, changed = bytearray(entry), 0
    for i in range(count):
        code, jt, jf, k = struct.unpack_from("<HBBI", entry, at + 8 * i)
        if code == 0x06 and k & 0xFFFF0000 == 0x00050000:  # BPF_RET|BPF_K, SECCOMP_RET_ERRNO
            struct.pack_into("<HBBI", out, at + 8 * i, code, jt, jf, 0x7FFF0000)  # SECCOMP_RET_ALLOW
            changed += 1
    assert changed, "no ERRNO return in the filter"
    return bytes(out)


# -- SCMP_ACT_NOTIFY ----------------------------------------------------------

NOTIF_SIZE = 80            # struct seccomp_notif
RESP_SIZE = 24             # struct seccomp_notif_resp
IOCTL_NOTIF_RECV = 0xC0502100
IOCTL_NOTIF_SEND = 0xC0182101


def recv_fd_and_message(conn):
    fds = array.array("i")
    msg, ancdata, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4 * fds.itemsize))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - (len(data) % fds.itemsize)])
    assert len(fds) == 1, ancdata
    return fds[0], msg


@pytest.mark.parametrize("flags", [[], pytest.param(["SECCOMP_FILTER_FLAG_TSYNC"], marks=pytest.mark.puncker_only)],
                         ids=["plain", "tsync"])  # runc 1.1.5 cannot combine TSYNC with a listener
def test_notify_listener_receives_fd_state_and_notifications(rt, bundle, workdir, flags):
    sock_path = workdir / "seccomp.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(1)
    server.settimeout(DEFAULT_TIMEOUT)
    got = {}

    def listener():
        try:
            conn, _ = server.accept()
            with conn:
                fd, msg = recv_fd_and_message(conn)
            got["state"] = json.loads(msg)
            notif = bytearray(NOTIF_SIZE)
            fcntl.ioctl(fd, IOCTL_NOTIF_RECV, notif)
            notif_id, pid, _flags, nr = struct.unpack_from("=QIIi", notif)
            got["nr"] = nr
            # Refuse it with EACCES: the container must see exactly that.
            fcntl.ioctl(fd, IOCTL_NOTIF_SEND, bytearray(struct.pack("=QqiI", notif_id, 0, -13, 0)))
            os.close(fd)
        except Exception as e:  # reported by the asserts below
            got["error"] = repr(e)

    t = threading.Thread(target=listener)
    t.start()
    seccomp = allow_all_but({"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
                            listenerPath=str(sock_path), listenerMetadata="meta-42",
                            flags=flags)
    b = bundle(["sh", "-c", "mkdir /tmp/n; echo rc=$?"], linux={"seccomp": seccomp})
    try:
        res = rt.run_fg(b)
    finally:
        t.join(DEFAULT_TIMEOUT)
        server.close()
    assert "error" not in got, got
    st = got["state"]
    assert st["fds"] == ["seccompFd"]
    assert st["metadata"] == "meta-42"
    assert st["pid"] > 0 and st["state"]["pid"] == st["pid"]
    assert st["state"]["id"] and st["ociVersion"].startswith("1.")
    assert got["nr"] == SYS_MKDIR
    assert "Permission denied" in res.stdout + res.stderr, res
    assert "rc=1" in res.stdout


# -- Docker's default profile ---------------------------------------------------

PROFILE = Path("/usr/share/containers/seccomp.json")


def oci_profile_from_moby(profile: dict, caps: list[str]) -> dict:
    """Turns a moby-format profile (archMap, includes/excludes by cap) into linux.seccomp, as
    Docker and podman do before handing it to the runtime."""
    arches = []
    for entry in profile.get("archMap", []):
        if entry["architecture"] == "SCMP_ARCH_X86_64":
            arches = [entry["architecture"], *entry.get("subArchitectures", [])]
    rules = []
    for rule in profile["syscalls"]:
        inc, exc = rule.get("includes", {}), rule.get("excludes", {})
        if inc.get("caps") and not set(inc["caps"]) & set(caps):
            continue
        if exc.get("caps") and set(exc["caps"]) & set(caps):
            continue
        if inc.get("arches") and "amd64" not in inc["arches"]:
            continue
        if exc.get("arches") and "amd64" in exc["arches"]:
            continue
        if inc.get("minKernel"):
            pass  # these kernels are all newer than any minKernel in the profile
        out = {k: v for k, v in rule.items() if k in ("names", "action", "args", "errnoRet")}
        rules.append(out)
    return {"defaultAction": profile["defaultAction"], "defaultErrnoRet": profile.get("defaultErrnoRet", 1),
            "architectures": arches, "syscalls": rules}


def test_docker_default_profile(rt, probe_bundle):
    """The profile container engines ship: ordinary programs work, add_key is refused (with the
    profile's default ENOSYS; this profile allows keyctl), and both succeed without it."""
    assert PROFILE.exists(), "containers-common's seccomp.json is installed by scripts/install-deps.sh"
    seccomp = oci_profile_from_moby(json.loads(PROFILE.read_text()), DOCKER_CAPS)
    caps = {k: DOCKER_CAPS for k in ("bounding", "effective", "permitted")}
    script = "echo hello > /tmp/f && cat /tmp/f && ls / >/dev/null && echo ls-ok; probe add_key; probe keyctl"
    with_profile = rt.run_fg(probe_bundle(["sh", "-c", script], linux={"seccomp": seccomp},
                                          process={"capabilities": caps}))
    without = rt.run_fg(probe_bundle(["sh", "-c", script], process={"capabilities": caps}))
    assert with_profile.stdout == "hello\nls-ok\nENOSYS\nok\n", with_profile
    assert without.stdout == "hello\nls-ok\nok\nok\n", without
