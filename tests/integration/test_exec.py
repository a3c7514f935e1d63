"""exec: a new process inside a running container."""

from __future__ import annotations

import json
import os

import pytest


@pytest.fixture
def running(rt, bundle):
    """A running container (sleep) to exec into; returns its id."""
    b = bundle(["sleep", "300"], process={"env": ["PATH=/bin", "FROM_CONFIG=yes"]})
    return rt.create_started(b)


def test_exec_joins_the_containers_namespaces(rt, running):
    pid = rt.state(running)["pid"]
    res = rt.run("exec", running, "sh", "-c", "echo $$; hostname; tr '\\0' ' ' < /proc/1/cmdline; echo; readlink /proc/self/ns/mnt",
                 check=False)
    assert res.returncode == 0, res
    lines = res.stdout.splitlines()
    assert lines[0] != "1" and int(lines[0]) > 1  # a new pid in the container's pid namespace
    assert lines[2].startswith("sleep")            # pid 1 there is the container's init
    assert lines[3] == os.readlink(f"/proc/{pid}/ns/mnt")


def test_exec_exit_status_passes_through(rt, running):
    assert rt.run("exec", running, "sh", "-c", "exit 5", check=False).returncode == 5


def test_exec_env_cwd_user(rt, running):
    res = rt.run("exec", "-e", "EXTRA=1", "--cwd", "/tmp", "-u", "1000:1000", running,
                 "sh", "-c", "echo $FROM_CONFIG $EXTRA; pwd; id -u; id -g")
    assert res.stdout.split() == ["yes", "1", "/tmp", "1000", "1000"], res


def test_exec_process_file(rt, running, workdir):
    proc = workdir / "process.json"
    proc.write_text(json.dumps({"args": ["/bin/sh", "-c", "echo from-file $X"], "cwd": "/", "env": ["X=42"],
                                "user": {"uid": 0, "gid": 0}}))
    res = rt.run("exec", "--process", proc, running)
    assert res.stdout.strip() == "from-file 42", res


def test_exec_detached_with_pid_file(rt, running, workdir):
    pid_file = workdir / "exec.pid"
    rt.run("exec", "-d", "--pid-file", pid_file, running, "sleep", "30")
    pid = int(pid_file.read_text())
    assert str(pid) in rt.run("ps", "-f", "json", running).stdout.replace(" ", "")
    cmdline = open(f"/proc/{pid}/cmdline").read()
    assert cmdline.startswith("sleep")


def test_exec_into_a_missing_program_fails_cleanly(rt, running):
    res = rt.run("exec", running, "/no/such/program", check=False)
    assert res.returncode != 0
    assert "no/such/program" in res.stderr or "no such file" in res.stderr.lower(), res


def test_exec_into_a_stopped_container_fails(rt, bundle):
    cid = rt.create_started(bundle(["true"]))
    rt.wait_status(cid, "stopped")
    res = rt.run("exec", cid, "true", check=False)
    assert res.returncode != 0
