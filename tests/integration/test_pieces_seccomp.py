"""pieces run's seccomp filter, seen from inside its containers: our default profile on every
container (Seccomp: 2 in /proc/self/status; the syscalls it refuses fail with EPERM, clone3
with ENOSYS so libc falls back to clone), none with --security-opt seccomp=unconfined or
--privileged, syscalls governed by a capability allowed once the container holds it, a
Docker-format profile file taking effect, and one clear error for a bad profile file with
nothing left behind. A build's RUN runs under the default profile too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from images import build_rootfs, write_docker_archive
from test_pieces import Pieces, context, pieces  # noqa: F401  (fixtures)

IMAGE = "sc:1"


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("seccomp-image")
    return write_docker_archive(build_rootfs(d / "rootfs"), d / "sc.tar", IMAGE)


@pytest.fixture
def p(pieces, archive) -> Pieces:
    pieces.ok("load", "-i", archive)
    return pieces


def seccomp_mode(out: str) -> str:
    return next(line.split()[1] for line in out.splitlines() if line.startswith("Seccomp:"))


def run_sh(p: Pieces, script: str, *flags: str) -> str:
    return p.ok("run", "--rm", *flags, IMAGE, "sh", "-c", script)


def probes(p: Pieces, names: list[str], *flags: str) -> dict[str, str]:
    """What each probe reports (ok or the errno name) in one container run with `flags`."""
    out = run_sh(p, "; ".join(f"echo {n.replace(' ', '_')}=$(probe {n})" for n in names), *flags)
    return dict(line.split("=", 1) for line in out.splitlines())


def test_default_profile_unconfined_and_privileged(p):
    assert seccomp_mode(run_sh(p, "cat /proc/self/status")) == "2"
    assert seccomp_mode(run_sh(p, "cat /proc/self/status", "--security-opt", "seccomp=unconfined")) == "0"
    assert seccomp_mode(run_sh(p, "cat /proc/self/status", "--security-opt", "seccomp:unconfined")) == "0"
    assert seccomp_mode(run_sh(p, "cat /proc/self/status", "--privileged")) == "0"


def test_exec_gets_the_containers_filter(p):
    cid = p.ok("run", "-d", IMAGE, "sleep", "30").strip()
    try:
        assert seccomp_mode(p.ok("exec", cid, "cat", "/proc/self/status")) == "2"
    finally:
        p.ok("rm", "-f", cid)


def test_default_profile_refuses_what_reaches_the_host(p):
    names = ["keyctl", "add_key", "unshare-user", "clone-newuser", "clone3"]
    confined = probes(p, names)
    assert confined == {"keyctl": "EPERM", "add_key": "EPERM", "unshare-user": "EPERM",
                        "clone-newuser": "EPERM", "clone3": "ENOSYS"}, confined
    # The kernel alone would have allowed or refused them differently: the filter did it.
    free = probes(p, names, "--security-opt", "seccomp=unconfined")
    assert free["keyctl"] == "ok" and free["add_key"] == "ok", free
    assert free["clone3"] == "EINVAL", free  # a clone3 without arguments, reaching the kernel
    if int(Path("/proc/sys/user/max_user_namespaces").read_text()) > 0:
        assert free["unshare-user"] == "ok" and free["clone-newuser"] == "ok", free


def test_capabilities_open_the_syscalls_they_govern(p):
    """As Docker's: --cap-add SYS_ADMIN lets mount and namespace flags through the filter;
    the key store stays shut whatever the capabilities."""
    got = probes(p, ["mount /tmp", "clone-newuser", "clone3", "keyctl"], "--cap-add", "SYS_ADMIN")
    assert got["mount_/tmp"] == "ok", got
    assert got["clone3"] == "EINVAL", got
    assert got["keyctl"] == "EPERM", got
    if int(Path("/proc/sys/user/max_user_namespaces").read_text()) > 0:
        assert got["clone-newuser"] == "ok", got
    assert probes(p, ["mount /tmp"])["mount_/tmp"] == "EPERM"


def test_normal_work_is_unaffected(p):
    """Shells, pipelines, background jobs, files, users, time and the network stack behave the
    same under the default profile as without a filter."""
    script = ("set -e; for i in 1 2 3; do echo $i; done | wc -l; (sleep 0.1; echo bg) & wait; "
              "mkdir -p /tmp/a/b && echo data > /tmp/a/b/f && cat /tmp/a/b/f; ln -s f /tmp/a/b/l; readlink /tmp/a/b/l; "
              "chmod 600 /tmp/a/b/f && stat -c %a /tmp/a/b/f; chown 1000:1000 /tmp/a/b/f && stat -c %u /tmp/a/b/f; "
              "tar -C /tmp -cf /tmp/t.tar a && tar -tf /tmp/t.tar | sort | head -2; id -u; "
              "date +%Y >/dev/null && echo date; uname -s; "
              "echo x | sed s/x/y/ | awk '{print $1 \"z\"}'; nproc >/dev/null && echo nproc; "
              "ps -o comm | grep -c ps; ping -c 1 -W 2 127.0.0.1 >/dev/null && echo ping; "
              "sh -c 'exit 7' || echo status=$?")
    confined = run_sh(p, script)
    free = run_sh(p, script, "--security-opt", "seccomp=unconfined")
    assert confined == free, (confined, free)
    assert "status=7" in confined and "bg" in confined and "ping" in confined, confined


def test_profile_file_takes_effect(p, workdir):
    """A Docker-format file (archMap, name/names, errnoRet, includes by capability) replaces
    the default profile: what it refuses fails with its errno, what it allows works."""
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "comment": "no new dirs"},
            {"name": "keyctl", "action": "SCMP_ACT_ERRNO", "errnoRet": 95, "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        ],
    }
    path = workdir / "profile.json"
    path.write_text(json.dumps(profile))
    out = run_sh(p, "grep Seccomp: /proc/self/status; mkdir /tmp/d 2>&1; echo keyctl=$(probe keyctl)",
                 "--security-opt", f"seccomp={path}")
    assert seccomp_mode(out) == "2", out
    assert "Permission denied" in out, out
    assert "keyctl=ok" in out, out  # the default profile would refuse it; this one has no such rule
    with_admin = run_sh(p, "echo keyctl=$(probe keyctl)", "--security-opt", f"seccomp={path}", "--cap-add", "SYS_ADMIN")
    assert "keyctl=EOPNOTSUPP" in with_admin, with_admin


@pytest.mark.parametrize("case", ["not-json", "bad-action", "unknown-field", "missing"])
def test_bad_profile_file(p, workdir, case):
    path = workdir / f"{case}.json"
    content = {
        "not-json": "{ nope",
        "bad-action": json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                                  "syscalls": [{"names": ["read"], "action": "SCMP_ACT_SOMETIMES"}]}),
        "unknown-field": json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                                     "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "when": "never"}]}),
        "missing": None,
    }[case]
    if content is not None:
        path.write_text(content)
    for mode in ("--rm", "-d"):
        res = p("run", mode, "--security-opt", f"seccomp={path}", IMAGE, "true")
        assert res.returncode != 0, res
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and f"seccomp={path}" in lines[0], res.stderr
        assert p.ok("ps", "-a", "-q") == ""
        assert not (p.store / "containers").exists() or list((p.store / "containers").iterdir()) == []
    assert p.leftovers() == []


def test_build_run_steps_are_confined(p, workdir):
    ctx = context(workdir, f"FROM {IMAGE}\nRUN grep Seccomp: /proc/self/status > /seccomp; probe keyctl > /keyctl || true\n")
    p.ok("build", "-t", "built:1", ctx)
    out = p.ok("run", "--rm", "--security-opt", "seccomp=unconfined", "built:1", "cat", "/seccomp", "/keyctl")
    assert seccomp_mode(out) == "2" and "EPERM" in out, out
