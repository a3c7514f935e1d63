"""OCI hooks: order, the state on stdin, env, namespaces, failures, timeouts."""

import json
import os
import time

import pytest

ALL_HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer",
             "poststart", "poststop"]
CREATE_PHASE = ["prestart", "createRuntime", "createContainer"]


@pytest.fixture
def hook_dir(workdir):
    """Host directory the hooks write to; the container sees it at /hk."""
    d = workdir / "hooks-out"
    d.mkdir()
    d.chmod(0o777)
    return d


def recording_hook(name, out_dir, env=("FOO=bar", "HOOK_NAME=x")):
    """A hook that logs its name and saves its stdin, env and mount namespace."""
    script = (f"echo {name} >> {out_dir}/log; cat > {out_dir}/{name}.json; "
              f"env > {out_dir}/{name}.env; readlink /proc/self/ns/mnt > {out_dir}/{name}.ns")
    hook = {"path": "/bin/sh", "args": ["sh", "-c", script]}
    if env is not None:
        hook["env"] = list(env)
    return hook


def all_hooks(hook_dir):
    hooks = {}
    for name in ALL_HOOKS:
        # startContainer runs inside the container: its paths are the container's.
        out = "/hk" if name == "startContainer" else str(hook_dir)
        hooks[name] = [recording_hook(name, out)]
    return hooks


def hooked_bundle(bundle, hook_dir, args, hooks):
    b = bundle(args, hooks=hooks)
    b.add_mount("/hk", "bind", str(hook_dir), ["bind"])
    return b


def log_of(hook_dir):
    path = hook_dir / "log"
    return path.read_text().split() if path.exists() else []


def run_full_lifecycle(rt, bundle, hook_dir):
    b = hooked_bundle(bundle, hook_dir, ["sh", "-c", "echo main >> /hk/log"],
                      all_hooks(hook_dir))
    cid = rt.create(b)
    after_create = log_of(hook_dir)
    pid = rt.state(cid)["pid"]
    rt.start(cid)
    rt.wait_status(cid, "stopped")
    before_delete = log_of(hook_dir)
    rt.delete(cid)
    return cid, pid, b, after_create, before_delete, log_of(hook_dir)


def test_hook_order(rt, bundle, hook_dir):
    cid, _, b, after_create, before_delete, log = run_full_lifecycle(rt, bundle, hook_dir)
    assert sorted(log) == sorted(ALL_HOOKS + ["main"]), log
    assert after_create[:3] == CREATE_PHASE, after_create
    assert "startContainer" not in after_create and "main" not in after_create
    assert log.index("startContainer") < log.index("main")
    assert "poststop" not in before_delete
    assert log[-1] == "poststop"
    rt.assert_clean(cid, b)


@pytest.mark.puncker_only  # runc 1.1 runs poststart during create
def test_poststart_runs_at_start_after_start_container(rt, bundle, hook_dir):
    _, _, _, after_create, _, log = run_full_lifecycle(rt, bundle, hook_dir)
    assert after_create == CREATE_PHASE
    assert log.index("startContainer") < log.index("poststart") < log.index("poststop")


def test_hooks_receive_state_on_stdin(rt, bundle, hook_dir):
    cid, pid, b, *_ = run_full_lifecycle(rt, bundle, hook_dir)
    states = {n: json.loads((hook_dir / f"{n}.json").read_text()) for n in ALL_HOOKS}
    for name, st in states.items():
        assert st["id"] == cid, name
        assert st["bundle"] == str(b.path), name
        assert st["ociVersion"].startswith("1."), name
    for name in CREATE_PHASE:
        assert states[name]["status"] == "creating", name
    assert states["startContainer"]["status"] == "created"
    assert states["poststart"]["status"] in ("created", "running")
    assert states["poststop"]["status"] == "stopped"
    # Hooks running in the runtime namespace see the init's host pid.
    for name in ("prestart", "createRuntime", "poststart"):
        assert states[name]["pid"] == pid, name
    for name in ("createContainer", "startContainer"):
        assert states[name]["pid"] > 0, name


def test_hook_env(rt, bundle, hook_dir):
    run_full_lifecycle(rt, bundle, hook_dir)
    for name in ALL_HOOKS:
        env = (hook_dir / f"{name}.env").read_text().splitlines()
        assert "FOO=bar" in env, name
        assert "HOOK_NAME=x" in env, name


def test_hook_env_not_inherited_from_runtime(rt, bundle, hook_dir):
    b = hooked_bundle(bundle, hook_dir, ["true"],
                      {"createRuntime": [recording_hook("createRuntime", hook_dir)]})
    cid = rt.new_id()
    rt.bundles.append(b)
    env = dict(os.environ, PUNCKER_HOOK_LEAK="leaked")
    rt.run("create", "--bundle", b.path, cid, env=env)
    assert "PUNCKER_HOOK_LEAK" not in (hook_dir / "createRuntime.env").read_text()


def test_hook_args_passed(rt, bundle, hook_dir):
    script = f"tr '\\0' '|' < /proc/$$/cmdline > {hook_dir}/args"
    hook = {"path": "/bin/sh", "args": ["custom-argv0", "-c", script, "a b", "c"]}
    b = bundle(["true"], hooks={"prestart": [hook]})
    rt.create(b)
    assert (hook_dir / "args").read_text() == f"custom-argv0|-c|{script}|a b|c|"


def test_hook_namespaces(rt, bundle, hook_dir):
    cid, *_ = run_full_lifecycle(rt, bundle, hook_dir)
    ns = {n: (hook_dir / f"{n}.ns").read_text().strip() for n in ALL_HOOKS}
    host = os.readlink("/proc/self/ns/mnt")
    for name in ("prestart", "createRuntime", "poststart", "poststop"):
        assert ns[name] == host, name
    assert ns["createContainer"] != host
    assert ns["startContainer"] == ns["createContainer"]


def test_multiple_hooks_run_in_order(rt, bundle, hook_dir):
    hooks = [{"path": "/bin/sh", "args": ["sh", "-c", f"echo {i} >> {hook_dir}/multi"]}
             for i in range(5)]
    rt.create(bundle(["true"], hooks={"createRuntime": hooks}))
    assert (hook_dir / "multi").read_text().split() == ["0", "1", "2", "3", "4"]


# ---------------------------------------------------------------------------
# Failures
# ---------------------------------------------------------------------------

FAIL = {"path": "/bin/sh", "args": ["sh", "-c", "echo hook-said-no >&2; exit 3"]}


@pytest.mark.parametrize("kind", CREATE_PHASE)
def test_failing_create_phase_hook_fails_create(rt, bundle, hook_dir, kind):
    later = {"path": "/bin/sh", "args": ["sh", "-c", f"echo ran >> {hook_dir}/later"]}
    b = bundle(["sh", "-c", "echo started > /tmp/started; exec sleep 100"],
               hooks={kind: [FAIL, later]})
    cid = rt.new_id()
    rt.bundles.append(b)
    res = rt.run("create", "--bundle", b.path, cid, check=False)
    assert res.returncode != 0
    assert res.stderr.strip()
    assert not (hook_dir / "later").exists(), "hooks after a failed one must not run"
    assert not rt.exists(cid)
    assert not (b.rootfs / "tmp" / "started").exists()
    rt.assert_clean(cid, b)


@pytest.mark.puncker_only
def test_failing_hook_error_is_one_line(rt, bundle):
    b = bundle(["true"], hooks={"createRuntime": [FAIL]})
    res = rt.run("create", "--bundle", b.path, rt.new_id(), check=False)
    assert res.returncode != 0
    err = res.stderr.strip()
    assert err and "\n" not in err, err
    assert "createRuntime" in err or "hook" in err


def test_hook_timeout(rt, bundle):
    b = bundle(["true"], hooks={"prestart": [
        {"path": "/bin/sh", "args": ["sh", "-c", "exec sleep 10"], "timeout": 1}]})
    cid = rt.new_id()
    rt.bundles.append(b)
    t0 = time.monotonic()
    res = rt.run("create", "--bundle", b.path, cid, check=False)
    elapsed = time.monotonic() - t0
    assert res.returncode != 0
    assert elapsed < 8, f"hook was not killed at its timeout ({elapsed:.1f}s)"
    assert not rt.exists(cid)
    rt.assert_clean(cid, b)


def test_hook_within_timeout_succeeds(rt, bundle, hook_dir):
    b = bundle(["true"], hooks={"prestart": [
        {"path": "/bin/sh", "args": ["sh", "-c", f"sleep 0.2; echo ok > {hook_dir}/t"],
         "timeout": 5}]})
    cid = rt.create(b)
    assert rt.status(cid) == "created"
    assert (hook_dir / "t").read_text() == "ok\n"


def test_failing_start_container_hook_stops_container(rt, bundle):
    b = bundle(["sh", "-c", "echo started > /tmp/started; exec sleep 100"],
               hooks={"startContainer": [FAIL]})
    cid = rt.create(b)
    rt.start(cid, check=False)
    rt.wait_status(cid, "stopped")
    assert not (b.rootfs / "tmp" / "started").exists(), "process ran despite failed hook"


@pytest.mark.puncker_only  # runc 1.1 reports success
def test_failing_start_container_hook_fails_start(rt, bundle):
    b = bundle(["true"], hooks={"startContainer": [FAIL]})
    cid = rt.create(b)
    assert rt.start(cid, check=False).returncode != 0


def test_failing_poststop_hook_still_deletes(rt, bundle, hook_dir):
    later = {"path": "/bin/sh", "args": ["sh", "-c", f"echo ran > {hook_dir}/later"]}
    b = bundle(["true"], hooks={"poststop": [FAIL, later]})
    cid = rt.create_started(b)
    rt.wait_status(cid, "stopped")
    res = rt.delete(cid, check=False)
    assert res.returncode == 0, res
    assert not rt.exists(cid)
    rt.assert_clean(cid, b)


def test_poststop_runs_on_force_delete(rt, bundle, hook_dir):
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"cat > {hook_dir}/poststop.json"]}
    b = bundle(["sleep", "100"], hooks={"poststop": [hook]})
    cid = rt.create_started(b)
    rt.delete(cid, force=True)
    state = json.loads((hook_dir / "poststop.json").read_text())
    assert state["id"] == cid
    assert state["status"] == "stopped"


def test_hook_missing_binary_fails_create(rt, bundle):
    b = bundle(["true"], hooks={"prestart": [{"path": "/no/such/hook"}]})
    cid = rt.new_id()
    res = rt.run("create", "--bundle", b.path, cid, check=False)
    assert res.returncode != 0
    assert not rt.exists(cid)
