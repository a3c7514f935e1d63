"""Bad input: a clear error, a non-zero exit, and nothing left behind."""

import os
import shutil

import pytest



# Each case prepares a broken bundle and returns (bundle dir to pass, Bundle or
# None, words a puncker error message must contain, one of them at least).

def _missing_bundle(bundle, workdir):
    path = workdir / "no-such-bundle"
    return path, None, [str(path)]


def _invalid_json(bundle, workdir):
    b = bundle()
    b.config_path.write_text('{"ociVersion": "1.0.2", "process": ')
    return b.path, b, ["config.json", "json", "JSON"]


def _no_config(bundle, workdir):
    b = bundle()
    b.config_path.unlink()
    return b.path, b, ["config.json"]


def _unknown_namespace(bundle, workdir):
    b = bundle(mutate=lambda c: c["linux"]["namespaces"].append({"type": "bogus"}))
    return b.path, b, ["bogus"]


def _duplicate_namespace(bundle, workdir):
    b = bundle(mutate=lambda c: c["linux"]["namespaces"].append({"type": "pid"}))
    return b.path, b, ["pid"]


def _rootfs_is_a_file(bundle, workdir):
    b = bundle()
    shutil.rmtree(b.rootfs)
    b.rootfs.write_text("not a directory")
    return b.path, b, ["rootfs", "directory"]


def _rootfs_missing(bundle, workdir):
    b = bundle()
    shutil.rmtree(b.rootfs)
    return b.path, b, ["rootfs"]


def _empty_args(bundle, workdir):
    b = bundle([])
    return b.path, b, ["args"]


def _no_process(bundle, workdir):
    b = bundle(mutate=lambda c: c.pop("process"))
    return b.path, b, ["process"]


def _unknown_rlimit(bundle, workdir):
    b = bundle(process={"rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]})
    return b.path, b, ["RLIMIT_BOGUS"]


def _missing_bind_source(bundle, workdir):
    b = bundle()
    b.add_mount("/x", "bind", "/no/such/source/dir", ["bind"])
    return b.path, b, ["/no/such/source/dir"]


def _unknown_fs_type(bundle, workdir):
    b = bundle()
    b.add_mount("/x", "bogusfs", "bogusfs", [])
    return b.path, b, ["bogusfs"]


def _bad_mount_with_resources(bundle, workdir):
    # The init fails at its first mount while the runtime is still placing it in its cgroups
    # (slower with limits to write): the error must still be the init's, not "broken pipe".
    b = bundle(linux={"resources": {"memory": {"limit": 256 * 1024 * 1024}, "pids": {"limit": 100},
                                    "cpu": {"shares": 512}}})
    b.config["mounts"].insert(0, {"destination": "/early", "type": "tmpfs", "source": "tmpfs",
                                  "options": ["size=not-a-size"]})
    b.write()
    return b.path, b, ["/early"]


def _userns_without_mappings(bundle, workdir):
    b = bundle(mutate=lambda c: c["linux"]["namespaces"].append({"type": "user"}))
    return b.path, b, ["mapping"]


def _failing_hook(bundle, workdir):
    b = bundle(hooks={"createRuntime": [{"path": "/bin/false"}]})
    return b.path, b, ["hook"]


def _missing_executable(bundle, workdir):
    b = bundle(["/no/such/program"])
    return b.path, b, ["/no/such/program"]


CASES = {
    "missing-bundle": _missing_bundle,
    "invalid-json": _invalid_json,
    "no-config": _no_config,
    "unknown-namespace": _unknown_namespace,
    "duplicate-namespace": _duplicate_namespace,
    "rootfs-is-a-file": _rootfs_is_a_file,
    "rootfs-missing": _rootfs_missing,
    "empty-args": _empty_args,
    "no-process": _no_process,
    "unknown-rlimit": _unknown_rlimit,
    "missing-bind-source": _missing_bind_source,
    "unknown-fs-type": _unknown_fs_type,
    "bad-mount-with-resources": _bad_mount_with_resources,
    "userns-without-mappings": _userns_without_mappings,
    "failing-hook": _failing_hook,
}


def _create_broken(rt, bundle, workdir, case):
    path, b, words = CASES[case](bundle, workdir)
    cid = rt.new_id()
    if b is not None:
        rt.bundles.append(b)
    res = rt.run("create", "--bundle", path, cid, check=False)
    return cid, b, words, res


def _assert_state_root_empty(rt):
    leftover = os.listdir(rt.root) if rt.root.exists() else []
    assert not leftover, f"state root not empty: {leftover}"


@pytest.mark.parametrize("case", CASES)
def test_bad_create_fails_cleanly(rt, bundle, workdir, case):
    cid, b, _, res = _create_broken(rt, bundle, workdir, case)
    assert res.returncode != 0
    assert res.stderr.strip(), "no error message"
    assert not rt.exists(cid)
    assert cid not in rt.run("list", "-q").stdout
    _assert_state_root_empty(rt)
    rt.assert_clean(cid, b)


@pytest.mark.parametrize("case", CASES)
def test_bad_run_fails_cleanly(rt, bundle, workdir, case):
    path, b, _ = CASES[case](bundle, workdir)
    cid = rt.new_id()
    res = rt.run("run", "--bundle", path, cid, check=False)
    assert res.returncode != 0
    assert res.stderr.strip()
    assert not rt.exists(cid)
    rt.assert_clean(cid, b)


@pytest.mark.puncker_only
@pytest.mark.parametrize("case", CASES)
def test_bad_create_error_is_one_clear_line(rt, bundle, workdir, case):
    cid, b, words, res = _create_broken(rt, bundle, workdir, case)
    err = res.stderr.strip()
    assert "\n" not in err, f"error spans several lines:\n{err}"
    assert any(w in err for w in words), f"error does not mention any of {words}: {err}"


def test_missing_executable_fails_at_start_or_create(rt, bundle, workdir):
    """A missing program is an error by `start` at the latest; nothing is left."""
    path, b, _ = _missing_executable(bundle, workdir)
    cid = rt.new_id()
    rt.bundles.append(b)
    res = rt.run("create", "--bundle", path, cid, check=False)
    if res.returncode == 0:
        res = rt.start(cid, check=False)
        if res.returncode == 0:
            rt.wait_status(cid, "stopped")
        rt.delete(cid, force=True)
    else:
        assert res.stderr.strip()
    rt.assert_clean(cid, b)


# ---------------------------------------------------------------------------
# Container ids
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("bad_id", ["../escape", "a/b", "x y", ".", ".."])
def test_invalid_container_id(rt, bundle, workdir, bad_id):
    b = bundle(["true"])
    res = rt.run("create", "--bundle", b.path, bad_id, check=False)
    assert res.returncode != 0
    assert res.stderr.strip()
    _assert_state_root_empty(rt)
    assert not (workdir / "escape").exists()
    assert not (rt.root.parent / "escape").exists()


def test_empty_container_id(rt, bundle):
    b = bundle(["true"])
    res = rt.run("create", "--bundle", b.path, "", check=False)
    assert res.returncode != 0
    assert res.stderr.strip()


def test_missing_container_id(rt, bundle):
    b = bundle(["true"])
    res = rt.run("create", "--bundle", b.path, check=False)
    assert res.returncode != 0
    assert res.stderr.strip()


def test_duplicate_id(rt, bundle):
    first = bundle(["sh", "-c", "echo started > /tmp/started; exec sleep 100"])
    cid = rt.create(first)
    pid = rt.state(cid)["pid"]
    second = bundle(["sh", "-c", "echo started > /tmp/started; exec sleep 100"])
    res = rt.run("create", "--bundle", second.path, cid, check=False)
    assert res.returncode != 0
    assert res.stderr.strip()
    st = rt.state(cid)
    assert st["status"] == "created"
    assert st["pid"] == pid
    assert st["bundle"] == str(first.path)
    assert rt.run("list", "-q").stdout.split() == [cid]
    rt.start(cid)
    assert rt.status(cid) == "running"
    assert not (second.rootfs / "tmp" / "started").exists()
    assert rt.leftovers("unused", second) == []


@pytest.mark.puncker_only
def test_duplicate_id_error_mentions_id(rt, bundle):
    cid = rt.create(bundle(["sleep", "100"]))
    res = rt.run("create", "--bundle", bundle(["true"]).path, cid, check=False)
    err = res.stderr.strip()
    assert "\n" not in err and cid in err, err


@pytest.mark.parametrize("command", ["state ID", "start ID", "kill ID", "kill ID KILL",
                                     "delete ID", "ps ID", "ps -f json ID"])
def test_unknown_id(rt, command):
    cid = rt.new_id()
    res = rt.run(*[cid if word == "ID" else word for word in command.split()], check=False)
    assert res.returncode != 0
    assert "does not exist" in res.stderr


@pytest.mark.puncker_only
@pytest.mark.parametrize("command", ["state", "start", "kill", "delete"])
def test_unknown_id_error_is_one_line_with_id(rt, command):
    cid = rt.new_id()
    err = rt.run(command, cid, check=False).stderr.strip()
    assert "\n" not in err and "does not exist" in err and cid in err, err


def test_force_delete_unknown_id_succeeds(rt):
    cid = rt.new_id()
    assert rt.run("delete", cid, check=False).returncode != 0
    assert rt.run("delete", "--force", cid, check=False).returncode == 0


def test_unknown_flag_fails(rt, bundle):
    b = bundle(["true"])
    cid = rt.new_id()
    res = rt.run("create", "--no-such-flag", "--bundle", b.path, cid, check=False)
    assert res.returncode != 0
    assert "no-such-flag" in res.stderr
    assert not rt.exists(cid)
