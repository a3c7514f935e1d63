"""The `process` section: args, env, cwd, user, umask, rlimits, capabilities,
noNewPrivileges, oomScoreAdj and terminal handling."""

import os
import time

import pytest

from conftest import DEFAULT_CAPS, cap_mask, create_with_console, status_field

CAP_FIELDS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


def ok(res):
    assert res.returncode == 0, res
    return res.stdout


def caps_of(status_text):
    return {f: int(status_field(status_text, f), 16) for f in CAP_FIELDS}


# ---------------------------------------------------------------------------
# args / env / cwd
# ---------------------------------------------------------------------------

def test_args_passed_verbatim(rt, bundle):
    args = ["/bin/echo", "a b", "", "*", "$HOME", "--flag=x"]
    assert ok(rt.run_fg(bundle(args))) == "a b  * $HOME --flag=x\n"


def test_args_resolved_through_path(rt, bundle):
    assert ok(rt.run_fg(bundle(["echo", "via-path"]))) == "via-path\n"


def test_args_path_from_config_env(rt, bundle):
    b = bundle(["mytool"], process={"env": ["PATH=/opt/tools"]})
    (b.rootfs / "opt" / "tools").mkdir(parents=True)
    (b.rootfs / "opt" / "tools" / "mytool").write_text("#!/bin/sh\necho custom-path\n")
    (b.rootfs / "opt" / "tools" / "mytool").chmod(0o755)
    assert ok(rt.run_fg(b)) == "custom-path\n"


def test_missing_executable_fails(rt, bundle):
    b = bundle(["/no/such/binary"])
    res = rt.run_fg(b)
    assert res.returncode != 0
    assert "/no/such/binary" in res.stderr


def test_env(run_sh):
    out = ok(run_sh("echo \"$GREETING|$EMPTY|$TERM\"; env | sort",
                    process={"env": ["PATH=/bin", "GREETING=hello world", "EMPTY=",
                                     "TERM=dumb"]}))
    first, *env = out.splitlines()
    assert first == "hello world||dumb"
    assert "GREETING=hello world" in env
    assert "PATH=/bin" in env


def test_env_not_inherited_from_runtime(rt, bundle):
    b = bundle(["env"])
    env = dict(os.environ, PUNCKER_LEAK_CHECK="leaked")
    out = ok(rt.run("run", "--bundle", b.path, rt.new_id(), check=False, env=env))
    names = {line.split("=", 1)[0] for line in out.splitlines()}
    # Only the config's variables, plus HOME which runc fills in from /etc/passwd.
    assert names - {"HOME"} == {"PATH", "TERM"}, out


def test_cwd(run_sh):
    assert ok(run_sh("pwd", process={"cwd": "/tmp"})) == "/tmp\n"


def test_cwd_created_when_missing(rt, bundle):
    b = bundle(["pwd"], process={"cwd": "/work/dir"})
    assert ok(rt.run_fg(b)) == "/work/dir\n"


# ---------------------------------------------------------------------------
# user
# ---------------------------------------------------------------------------

def test_user_uid_gid(run_sh):
    out = ok(run_sh("grep -E '^(Uid|Gid|Groups):' /proc/self/status",
                    process={"user": {"uid": 1000, "gid": 1000}}))
    assert status_field(out, "Uid").split() == ["1000"] * 4
    assert status_field(out, "Gid").split() == ["1000"] * 4
    assert status_field(out, "Groups") == ""


def test_user_additional_gids(run_sh):
    out = ok(run_sh("grep -E '^(Uid|Gid|Groups):' /proc/self/status; id",
                    process={"user": {"uid": 1000, "gid": 1000,
                                      "additionalGids": [10, 29, 1234]}}))
    assert sorted(status_field(out, "Groups").split()) == ["10", "1234", "29"]
    id_line = out.splitlines()[-1]
    assert id_line.startswith("uid=1000(app) gid=1000(app)")
    assert "10(wheel)" in id_line and "29(audio)" in id_line


def test_root_user_has_no_extra_groups(run_sh):
    out = ok(run_sh("grep -E '^Groups:' /proc/self/status"))
    assert status_field(out, "Groups") in ("", "0")


def test_non_root_cannot_write_root_owned(run_sh):
    out = ok(run_sh("touch /root-owned 2>/dev/null; echo rc=$?",
                    process={"user": {"uid": 1000, "gid": 1000}}))
    assert out == "rc=1\n"


@pytest.mark.parametrize("umask,expect", [(0o027, "0027"), (0o077, "0077")])
def test_umask(run_sh, umask, expect):
    out = ok(run_sh("umask; touch /tmp/f; stat -c %a /tmp/f",
                    process={"user": {"uid": 0, "gid": 0, "umask": umask}}))
    umask_seen, mode = out.split()
    assert umask_seen == expect
    assert int(mode, 8) == 0o666 & ~umask


def test_default_umask(rt, bundle):
    """Without process.user.umask the process gets 0022, whatever the caller's umask."""
    b = bundle(["sh", "-c", "umask"])
    res = rt.raw(["/bin/sh", "-c", 'umask 077; exec "$@"', "sh",
                  *rt.cmd("run", "--bundle", b.path, rt.new_id())])
    assert ok(res) == "0022\n"


# ---------------------------------------------------------------------------
# rlimits
# ---------------------------------------------------------------------------

def limits_row(text, name):
    for line in text.splitlines():
        if line.startswith(name):
            return line[len(name):].split()[:2]
    raise AssertionError(f"{name} not in /proc/self/limits")


def test_rlimits(run_sh):
    rlimits = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 512},
               {"type": "RLIMIT_CORE", "soft": 1024, "hard": 2048},
               {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400}]
    out = ok(run_sh("ulimit -n; cat /proc/self/limits", process={"rlimits": rlimits}))
    assert out.splitlines()[0] == "512"
    assert limits_row(out, "Max open files") == ["512", "512"]
    assert limits_row(out, "Max core file size") == ["1024", "2048"]
    assert limits_row(out, "Max processes") == ["300", "400"]


def test_rlimit_soft_below_hard_can_be_raised(run_sh):
    rlimits = [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]
    out = ok(run_sh("ulimit -n; ulimit -n 200 && ulimit -n; ulimit -n 300; echo rc=$?",
                    process={"rlimits": rlimits}))
    assert out.split()[:2] == ["100", "200"]
    assert out.split()[-1] != "rc=0"


# ---------------------------------------------------------------------------
# capabilities
# ---------------------------------------------------------------------------

def test_default_capabilities(run_sh):
    """runc spec's set, with ambient listed but not inheritable: ambient ends up empty."""
    caps = caps_of(ok(run_sh("cat /proc/self/status")))
    mask = cap_mask(DEFAULT_CAPS)
    assert caps == {"CapInh": 0, "CapPrm": mask, "CapEff": mask, "CapBnd": mask, "CapAmb": 0}


def test_capabilities_root(run_sh):
    full = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_ADMIN",
            "CAP_SETUID", "CAP_SETGID"]
    spec = {"bounding": full, "effective": full, "permitted": full,
            "inheritable": ["CAP_KILL"], "ambient": []}
    caps = caps_of(ok(run_sh("cat /proc/self/status", process={"capabilities": spec})))
    assert caps == {"CapBnd": cap_mask(full), "CapPrm": cap_mask(full),
                    "CapEff": cap_mask(full), "CapInh": cap_mask(["CAP_KILL"]), "CapAmb": 0}


def test_capabilities_non_root_with_ambient(run_sh):
    bounding = ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_CHOWN"]
    kept = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    spec = {"bounding": bounding, "effective": kept, "permitted": kept,
            "inheritable": kept, "ambient": kept}
    out = ok(run_sh("cat /proc/self/status",
                    process={"user": {"uid": 1000, "gid": 1000}, "capabilities": spec}))
    caps = caps_of(out)
    assert status_field(out, "Uid").split() == ["1000"] * 4
    assert caps == {"CapBnd": cap_mask(bounding), "CapInh": cap_mask(kept),
                    "CapPrm": cap_mask(kept), "CapEff": cap_mask(kept),
                    "CapAmb": cap_mask(kept)}


def test_capabilities_non_root_without_ambient(run_sh):
    kept = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    spec = {"bounding": kept, "effective": kept, "permitted": kept}
    caps = caps_of(ok(run_sh("cat /proc/self/status",
                             process={"user": {"uid": 1000, "gid": 1000},
                                      "capabilities": spec})))
    assert caps == {"CapBnd": cap_mask(kept), "CapInh": 0, "CapPrm": 0, "CapEff": 0,
                    "CapAmb": 0}


def test_no_capabilities(run_sh):
    def none(cfg):
        cfg["process"]["capabilities"] = {k: [] for k in
                                          ("bounding", "effective", "permitted",
                                           "inheritable", "ambient")}
    caps = caps_of(ok(run_sh("cat /proc/self/status", mutate=none)))
    assert caps == dict.fromkeys(CAP_FIELDS, 0)


def test_capability_is_enforced(run_sh):
    """Without CAP_CHOWN, root cannot chown; with it, it can."""
    script = "touch /tmp/f; chown 1000 /tmp/f 2>/dev/null; echo rc=$?"
    without = {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
    with_ = {k: v + ["CAP_CHOWN"] for k, v in without.items()}
    assert ok(run_sh(script, process={"capabilities": without})) == "rc=1\n"
    assert ok(run_sh(script, process={"capabilities": with_})) == "rc=0\n"


@pytest.mark.puncker_only
def test_unknown_capability_is_an_error(rt, bundle):
    """A capability name no kernel has is a mistake in the config: refuse it, naming it.
    (runc 1.1 drops such names with a warning; the security issue asks for an error.)"""
    b = bundle(["true"], process={"capabilities": {"bounding": ["CAP_KILL", "CAP_BOGUS"]}})
    cid = rt.new_id()
    res = rt.run("run", "--bundle", b.path, cid, check=False)
    assert res.returncode != 0, res
    assert "CAP_BOGUS" in res.stderr and "bounding" in res.stderr, res.stderr
    rt.assert_clean(cid, b)


# ---------------------------------------------------------------------------
# noNewPrivileges / oomScoreAdj
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("nnp,expect", [(True, "1"), (False, "0")])
def test_no_new_privileges(run_sh, nnp, expect):
    out = ok(run_sh("cat /proc/self/status", process={"noNewPrivileges": nnp}))
    assert status_field(out, "NoNewPrivs") == expect


# Only values >= the caller's: lowering needs CAP_SYS_RESOURCE, which CI may lack.
@pytest.mark.parametrize("score", [123, 1000])
def test_oom_score_adj(run_sh, score):
    out = ok(run_sh("cat /proc/self/oom_score_adj", process={"oomScoreAdj": score}))
    assert out.strip() == str(score)


# ---------------------------------------------------------------------------
# terminal
# ---------------------------------------------------------------------------

def test_console_socket(rt, bundle, workdir):
    """create --console-socket hands the pty master over SCM_RIGHTS (containerd's way)."""
    b = bundle(["sh", "-c", "tty; test -c /dev/console && echo has-console; sleep 100"],
               process={"terminal": True})
    cid, master = create_with_console(rt, b, workdir / "console.sock")
    try:
        rt.start(cid)
        data = b""
        deadline = time.monotonic() + 10
        os.set_blocking(master, False)
        while b"has-console" not in data and time.monotonic() < deadline:
            try:
                data += os.read(master, 4096)
            except BlockingIOError:
                time.sleep(0.05)
        text = data.decode(errors="replace").replace("\r", "")
        assert text.startswith("/dev/pts/"), text
        assert "has-console" in text
    finally:
        os.close(master)


def test_terminal_without_console_socket_fails_for_create(rt, bundle):
    b = bundle(["true"], process={"terminal": True})
    res = rt.run("create", "--bundle", b.path, rt.new_id(), check=False)
    assert res.returncode != 0
    assert res.stderr.strip()
