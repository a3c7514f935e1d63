"""Container lifecycle: create/start/state/kill/delete, run, list, ps, stdio."""

import datetime
import json
import os
import re
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import DEFAULT_TIMEOUT, pid_alive, proc_stat, wait_for

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def cmdline(pid):
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]


def sleeper(bundle, marker=True, **overrides):
    """A bundle whose process writes /tmp/started, then sleeps."""
    script = "echo started > /tmp/started; exec sleep 100" if marker else "exec sleep 100"
    return bundle(["sh", "-c", script], **overrides)


# ---------------------------------------------------------------------------
# create / start / state
# ---------------------------------------------------------------------------

def test_create_does_not_run_the_process(rt, bundle):
    b = sleeper(bundle)
    cid = rt.create(b)
    st = rt.state(cid)
    assert st["status"] == "created"
    assert st["pid"] > 0
    assert pid_alive(st["pid"])
    time.sleep(0.2)
    assert not (b.rootfs / "tmp" / "started").exists(), "process ran before start"


def test_start_runs_the_process(rt, bundle):
    b = sleeper(bundle)
    cid = rt.create(b)
    pid = rt.state(cid)["pid"]
    rt.start(cid)
    st = rt.state(cid)
    assert st["status"] == "running"
    assert st["pid"] == pid
    wait_for(lambda: (b.rootfs / "tmp" / "started").exists(), what="process to start")
    wait_for(lambda: cmdline(pid) == [b"sleep", b"100"], what="exec of sleep")


def test_start_twice_fails(rt, bundle):
    cid = rt.create_started(sleeper(bundle))
    res = rt.start(cid, check=False)
    assert res.returncode != 0
    assert rt.status(cid) == "running"


def test_state_fields(rt, bundle):
    b = sleeper(bundle, annotations={"org.example.key": "value", "other": "x"})
    before = datetime.datetime.now(datetime.timezone.utc)
    cid = rt.create(b)
    st = rt.state(cid)
    assert st["ociVersion"].startswith("1.")
    assert st["id"] == cid
    assert st["status"] == "created"
    assert isinstance(st["pid"], int) and st["pid"] > 0
    assert st["bundle"] == str(b.path)
    assert os.path.isabs(st["bundle"])
    assert st["annotations"] == {"org.example.key": "value", "other": "x"}
    assert "owner" in st
    assert RFC3339.match(st["created"]), st["created"]
    stamp = st["created"]
    # Python < 3.11 only parses microseconds.
    stamp = re.sub(r"(\.\d{6})\d+", r"\1", stamp).replace("Z", "+00:00")
    created = datetime.datetime.fromisoformat(stamp)
    assert abs((created - before).total_seconds()) < 60


def test_pid_file_holds_init_pid(rt, bundle, workdir):
    pid_file = workdir / "init.pid"
    cid = rt.create(sleeper(bundle), None, "--pid-file", pid_file)
    text = pid_file.read_text()
    assert text.strip().isdigit()
    assert int(text) == rt.state(cid)["pid"]


def test_relative_pid_file(rt, bundle, workdir):
    b = sleeper(bundle)
    cid = rt.new_id()
    rt.bundles.append(b)
    rt.run("create", "--bundle", b.path, "--pid-file", "rel.pid", cid, cwd=workdir)
    assert int((workdir / "rel.pid").read_text()) == rt.state(cid)["pid"]


def test_init_is_child_of_callers_subreaper(rt, bundle, workdir):
    """The container init is reparented to the caller's subreaper, like under a shim."""
    b = sleeper(bundle)
    cid = rt.new_id()
    rt.bundles.append(b)
    pid_file = workdir / "init.pid"
    helper = (
        "import ctypes, json, os, subprocess, sys\n"
        "ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)\n"
        "subprocess.run(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,"
        " check=True, timeout=30)\n"
        "pid = int(open(sys.argv[1]).read())\n"
        "stat = open(f'/proc/{pid}/stat').read()\n"
        "ppid = int(stat[stat.rindex(')') + 2:].split()[1])\n"
        "print(json.dumps({'me': os.getpid(), 'ppid': ppid}))\n"
    )
    # rt.raw captures through files: the container keeps its stdio open.
    res = rt.raw([sys.executable, "-c", helper, str(pid_file),
                  *rt.cmd("create", "--bundle", b.path, "--pid-file", pid_file, cid)])
    assert res.returncode == 0, res
    info = json.loads(res.stdout)
    assert info["ppid"] == info["me"]


# ---------------------------------------------------------------------------
# kill
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("sig", ["KILL", "9", "SIGKILL"])
def test_kill_signal_spellings(rt, bundle, sig):
    cid = rt.create_started(sleeper(bundle, marker=False))
    pid = rt.state(cid)["pid"]
    rt.kill(cid, sig)
    st = rt.wait_status(cid, "stopped")
    assert st["id"] == cid
    assert not pid_alive(pid)


TRAP = ("trap 'echo {name} > /tmp/sig; exit 3' {name}; "
        "echo ready > /tmp/ready; while true; do sleep 0.05; done")


def test_kill_defaults_to_sigterm(rt, bundle):
    b = bundle(["sh", "-c", TRAP.format(name="TERM")])
    cid = rt.create_started(b)
    wait_for(lambda: (b.rootfs / "tmp" / "ready").exists(), what="trap to be set")
    rt.kill(cid)
    rt.wait_status(cid, "stopped")
    assert (b.rootfs / "tmp" / "sig").read_text() == "TERM\n"


def test_kill_delivers_named_signal(rt, bundle):
    b = bundle(["sh", "-c", "trap 'echo got >> /tmp/sig' USR1; echo ready > /tmp/ready; "
                            "while true; do sleep 0.05; done"])
    cid = rt.create_started(b)
    wait_for(lambda: (b.rootfs / "tmp" / "ready").exists(), what="trap to be set")
    rt.kill(cid, "USR1")
    wait_for(lambda: (b.rootfs / "tmp" / "sig").exists(), what="USR1 handler")
    assert (b.rootfs / "tmp" / "sig").read_text() == "got\n"
    assert rt.status(cid) == "running"
    rt.kill(cid, "SIGUSR1")
    wait_for(lambda: (b.rootfs / "tmp" / "sig").read_text() == "got\ngot\n",
             what="second USR1")


@pytest.mark.parametrize("flag", ["--all", "-a"])
def test_kill_all(rt, bundle, flag):
    b = bundle(["sh", "-c", "sleep 100 & sleep 101 & exec sleep 102"])
    cid = rt.create_started(b)
    pids = wait_for(lambda: _ps_json(rt, cid) if len(_ps_json(rt, cid)) >= 3 else None,
                    what="three processes")
    rt.kill(cid, "KILL", flag)
    rt.wait_status(cid, "stopped")
    wait_for(lambda: not any(pid_alive(p) for p in pids), what="all processes to die")


def test_unreaped_exited_init_is_stopped(rt, bundle):
    """An init that exited but is still a zombie (nobody reaped it) counts as stopped."""
    cid = rt.create(bundle(["true"]))
    pid = rt.state(cid)["pid"]
    rt.start(cid)
    wait_for(lambda: proc_stat(pid)[0] == "Z", what="init to exit")
    st = rt.wait_status(cid, "stopped", reap=False)
    assert st["id"] == cid
    zombie = proc_stat(pid)
    assert zombie is not None and zombie[0] == "Z", "init was reaped; the test proves nothing"


def test_kill_stopped_container_fails(rt, bundle):
    cid = rt.create_started(bundle(["true"]))
    rt.wait_status(cid, "stopped")
    res = rt.kill(cid, "KILL", check=False)
    assert res.returncode != 0


# ---------------------------------------------------------------------------
# delete
# ---------------------------------------------------------------------------

def test_delete_stopped_container(rt, bundle):
    b = bundle(["true"])
    cid = rt.create_started(b)
    rt.wait_status(cid, "stopped")
    rt.delete(cid)
    res = rt.run("state", cid, check=False)
    assert res.returncode != 0
    assert "does not exist" in res.stderr
    rt.assert_clean(cid, b)
    assert cid not in rt.run("list", "-q").stdout.split()


def test_delete_created_container(rt, bundle):
    b = sleeper(bundle)
    cid = rt.create(b)
    pid = rt.state(cid)["pid"]
    rt.delete(cid, force=True)
    assert not rt.exists(cid)
    wait_for(lambda: not pid_alive(pid), what="init to die")
    assert not (b.rootfs / "tmp" / "started").exists()
    rt.assert_clean(cid, b)


def test_delete_running_needs_force(rt, bundle):
    b = sleeper(bundle, marker=False)
    cid = rt.create_started(b)
    pid = rt.state(cid)["pid"]
    res = rt.delete(cid, check=False)
    assert res.returncode != 0
    assert res.stderr.strip()
    assert rt.status(cid) == "running"
    assert pid_alive(pid)


@pytest.mark.parametrize("flag", ["--force", "-f"])
def test_force_delete_running(rt, bundle, flag):
    b = sleeper(bundle, marker=False)
    cid = rt.create_started(b)
    pid = rt.state(cid)["pid"]
    rt.run("delete", flag, cid)
    assert not rt.exists(cid)
    wait_for(lambda: not pid_alive(pid), what="init to die")
    rt.assert_clean(cid, b)


def test_id_reusable_after_delete(rt, bundle):
    cid = rt.new_id()
    rt.create(bundle(["true"]), cid)
    rt.delete(cid, force=True)
    rt.create(bundle(["sleep", "100"]), cid)
    assert rt.status(cid) == "created"


# ---------------------------------------------------------------------------
# stdio
# ---------------------------------------------------------------------------

def test_create_keeps_callers_stdout(rt, bundle, workdir):
    out = workdir / "out.txt"
    cid = rt.create(bundle(["sh", "-c", "echo hello; echo oops >&2"]), None, stdout=out)
    rt.start(cid)
    rt.wait_status(cid, "stopped")
    assert out.read_text() == "hello\n"


def test_run_passes_stdin_through(rt, bundle):
    res = rt.run_fg(bundle(["cat"]), input="line one\nline two\n")
    assert res.returncode == 0, res
    assert res.stdout == "line one\nline two\n"


def test_run_passes_stderr_through(run_sh):
    res = run_sh("echo to-out; echo to-err >&2")
    assert res.returncode == 0
    assert res.stdout == "to-out\n"
    assert "to-err\n" in res.stderr


# ---------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_run_exit_status(run_sh, code):
    res = run_sh(f"echo ran; exit {code}")
    assert res.returncode == code
    assert res.stdout == "ran\n"


def test_run_killed_by_signal_exits_128_plus_n(rt, bundle):
    b = bundle(["sleep", "100"])
    cid = rt.new_id()
    results = []
    runner = threading.Thread(target=lambda: results.append(rt.run_fg(b, cid)))
    runner.start()
    try:
        wait_for(lambda: rt.exists(cid) and rt.status(cid) == "running", what="run to start")
        rt.kill(cid, "KILL")
    finally:
        runner.join(DEFAULT_TIMEOUT)
    assert results and results[0].returncode == 128 + 9, results


def test_run_self_signal_without_pid_namespace(run_sh):
    def no_pidns(cfg):
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"]
                                      if n["type"] != "pid"]
    res = run_sh("kill -TERM $$; sleep 5", mutate=no_pidns)
    assert res.returncode == 128 + 15, res


def test_run_removes_container(rt, bundle):
    b = bundle(["true"])
    cid = rt.new_id()
    assert rt.run_fg(b, cid).returncode == 0
    assert not rt.exists(cid)
    rt.assert_clean(cid, b)


def test_run_keep(rt, bundle):
    b = bundle(["sh", "-c", "exit 7"])
    cid = rt.new_id()
    assert rt.run_fg(b, cid, "--keep").returncode == 7
    assert rt.status(cid) == "stopped"
    rt.delete(cid)
    assert not rt.exists(cid)


@pytest.mark.parametrize("flag", ["-d", "--detach"])
def test_run_detached(rt, bundle, workdir, flag):
    b = sleeper(bundle)
    cid = rt.new_id()
    pid_file = workdir / "run.pid"
    t0 = time.monotonic()
    res = rt.run_fg(b, cid, flag, "--pid-file", pid_file)
    assert res.returncode == 0, res
    assert time.monotonic() - t0 < 10
    st = rt.state(cid)
    assert st["status"] == "running"
    assert int(pid_file.read_text()) == st["pid"]
    wait_for(lambda: (b.rootfs / "tmp" / "started").exists(), what="process to start")


@pytest.mark.parametrize("flag", ["--no-subreaper", "-no-subreaper"])
def test_run_no_subreaper(rt, bundle, flag):
    res = rt.run_fg(bundle(["sh", "-c", "echo fine"]), None, flag)
    assert res.returncode == 0, res
    assert res.stdout == "fine\n"


def test_run_duplicate_id_fails(rt, bundle):
    cid = rt.create(sleeper(bundle))
    res = rt.run_fg(bundle(["true"]), cid)
    assert res.returncode != 0
    assert rt.status(cid) == "created"


# ---------------------------------------------------------------------------
# list / ps
# ---------------------------------------------------------------------------

def test_list(rt, bundle):
    created = rt.create(sleeper(bundle))
    running = rt.create_started(sleeper(bundle))
    lines = rt.run("list").stdout.splitlines()
    header = lines[0].split()
    for col in ("ID", "PID", "STATUS", "BUNDLE"):
        assert col in header
    rows = {l.split()[0]: l.split() for l in lines[1:] if l.strip()}
    assert set(rows) == {created, running}
    assert "created" in rows[created]
    assert "running" in rows[running]
    assert str(rt.state(running)["pid"]) in rows[running]


def test_list_quiet(rt, bundle):
    ids = {rt.create(sleeper(bundle)) for _ in range(3)}
    res = rt.run("list", "-q")
    assert sorted(res.stdout.split()) == sorted(ids)
    assert rt.run("list", "--quiet").stdout.split() == res.stdout.split()


@pytest.mark.parametrize("flags", [["-f", "json"], ["--format", "json"], ["--format=json"]])
def test_list_json(rt, bundle, flags):
    b = sleeper(bundle)
    cid = rt.create_started(b)
    items = json.loads(rt.run("list", *flags).stdout)
    assert isinstance(items, list) and len(items) == 1
    item = items[0]
    st = rt.state(cid)
    assert item["id"] == cid
    assert item["status"] == "running"
    assert item["pid"] == st["pid"]
    assert item["bundle"] == str(b.path)
    assert RFC3339.match(item["created"])


def test_list_empty(rt, bundle):
    cid = rt.create(sleeper(bundle))
    assert rt.run("list", "-q").stdout.split() == [cid]
    rt.delete(cid, force=True)
    assert rt.run("list", "-q").stdout.strip() == ""
    assert json.loads(rt.run("list", "-f", "json").stdout) in (None, [])


def test_list_shows_stopped(rt, bundle):
    cid = rt.create_started(bundle(["true"]))
    rt.wait_status(cid, "stopped")
    items = json.loads(rt.run("list", "-f", "json").stdout)
    assert [(i["id"], i["status"]) for i in items] == [(cid, "stopped")]


def _ps_json(rt, cid):
    return json.loads(rt.run("ps", "-f", "json", cid).stdout)


def test_ps_json(rt, bundle):
    cid = rt.create_started(bundle(["sh", "-c", "sleep 100 & exec sleep 101"]))
    init = rt.state(cid)["pid"]
    wait_for(lambda: len(_ps_json(rt, cid)) >= 2, what="two processes in ps")
    pids = _ps_json(rt, cid)
    assert all(isinstance(p, int) for p in pids)
    assert init in pids
    assert all(pid_alive(p) for p in pids)
    assert json.loads(rt.run("ps", "--format", "json", cid).stdout) == pids


def test_ps_table(rt, bundle):
    cid = rt.create_started(bundle(["sleep", "100"]))
    init = rt.state(cid)["pid"]
    lines = rt.run("ps", cid).stdout.splitlines()
    header = lines[0].split()
    assert "PID" in header
    col = header.index("PID")
    pids = [int(l.split()[col]) for l in lines[1:] if l.strip()]
    assert init in pids


# ---------------------------------------------------------------------------
# create options
# ---------------------------------------------------------------------------

def test_preserve_fds(rt, bundle, workdir):
    target = workdir / "fd3.txt"
    b = bundle(["sh", "-c", "echo through-fd3 >&3"])
    cid = rt.new_id()
    rt.bundles.append(b)
    # Let a shell open the file as fd 3 for the runtime.
    rt.raw(["/bin/sh", "-c", 'exec "$@" 3>"$0"', str(target),
            *rt.cmd("create", "--bundle", b.path, "--preserve-fds", "1", cid)], check=True)
    rt.start(cid)
    rt.wait_status(cid, "stopped")
    assert target.read_text() == "through-fd3\n"


def test_extra_fds_not_leaked_without_preserve(rt, bundle, workdir):
    out = workdir / "out.txt"
    cid = rt.create(bundle(["sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '"]),
                    None, stdout=out)
    rt.start(cid)
    rt.wait_status(cid, "stopped")
    fds = [int(x) for x in out.read_text().split()]
    # 0-2 are stdio; ls itself has the directory open as 3.
    assert fds == [0, 1, 2, 3], fds


def test_no_new_keyring(rt, bundle):
    cid = rt.create(sleeper(bundle), None, "--no-new-keyring")
    rt.start(cid)
    assert rt.status(cid) == "running"
    assert cid not in Path("/proc/keys").read_text()


def test_new_session_keyring_per_container(rt, bundle):
    cid = rt.create(sleeper(bundle))
    assert cid in Path("/proc/keys").read_text()


