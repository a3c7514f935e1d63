"""Command line surface: spec, --version, --help, global flags and flag syntax."""

import json
import os
import re
import shutil

import pytest

from conftest import DEFAULT_TIMEOUT


# ---------------------------------------------------------------------------
# spec
# ---------------------------------------------------------------------------

def _spec(rt, target, *flags):
    rt.run("spec", *flags, "--bundle", target)
    return json.loads((target / "config.json").read_text())


def test_spec_writes_runc_like_config(rt, workdir):
    cfg = _spec(rt, workdir)
    proc = cfg["process"]
    assert cfg["ociVersion"].startswith("1.")
    assert proc["args"] == ["sh"]
    assert proc["terminal"] is True
    assert proc["cwd"] == "/"
    assert proc["user"] == {"uid": 0, "gid": 0}
    assert any(e.startswith("PATH=") for e in proc["env"])
    assert cfg["root"]["path"] == "rootfs"
    for kind in ("bounding", "effective", "permitted"):
        assert set(proc["capabilities"][kind]) >= {"CAP_KILL", "CAP_AUDIT_WRITE",
                                                   "CAP_NET_BIND_SERVICE"}, kind
    dests = {m["destination"]: m for m in cfg["mounts"]}
    for d in ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"):
        assert d in dests, f"spec lacks the {d} mount"
    assert dests["/proc"]["type"] == "proc"
    assert dests["/dev/pts"]["type"] == "devpts"
    assert dests["/sys/fs/cgroup"]["type"] == "cgroup"
    assert "ro" in dests["/sys"]["options"]
    ns = {n["type"] for n in cfg["linux"]["namespaces"]}
    assert ns >= {"pid", "network", "ipc", "uts", "mount"}
    assert "user" not in ns
    assert "/proc/kcore" in cfg["linux"]["maskedPaths"]
    assert "/sys/firmware" in cfg["linux"]["maskedPaths"]
    assert "/proc/sys" in cfg["linux"]["readonlyPaths"]
    assert "/proc/sysrq-trigger" in cfg["linux"]["readonlyPaths"]


def test_spec_defaults_to_current_directory(rt, workdir):
    rt.run("spec", cwd=workdir)
    cfg = json.loads((workdir / "config.json").read_text())
    assert cfg["process"]["args"] == ["sh"]


def test_spec_short_bundle_flag(rt, workdir):
    rt.run("spec", "-b", workdir)
    assert json.loads((workdir / "config.json").read_text())["root"]["path"] == "rootfs"


def test_spec_rootless(rt, workdir):
    cfg = _spec(rt, workdir, "--rootless")
    linux = cfg["linux"]
    ns = {n["type"] for n in linux["namespaces"]}
    assert "user" in ns
    assert "network" not in ns
    assert ns >= {"pid", "ipc", "uts", "mount"}
    for key, host_id in (("uidMappings", os.geteuid()), ("gidMappings", os.getegid())):
        maps = linux[key]
        assert maps, key
        assert maps[0]["containerID"] == 0
        assert maps[0]["hostID"] == host_id
        assert maps[0]["size"] >= 1


def test_spec_refuses_to_overwrite(rt, workdir):
    existing = workdir / "config.json"
    existing.write_text('{"keep": "me"}')
    res = rt.run("spec", "--bundle", workdir, check=False)
    assert res.returncode != 0
    assert "exists" in res.stderr
    assert existing.read_text() == '{"keep": "me"}'


def test_spec_output_runs(rt, workdir, rootfs_template):
    target = workdir / "from-spec"
    target.mkdir()
    cfg = _spec(rt, target)
    shutil.copytree(rootfs_template, target / "rootfs", symlinks=True)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", "echo spec-bundle-ok; echo $$"]
    (target / "config.json").write_text(json.dumps(cfg))
    res = rt.run("run", "--bundle", target, rt.new_id(), check=False)
    assert res.returncode == 0, res
    assert res.stdout.split() == ["spec-bundle-ok", "1"]


# ---------------------------------------------------------------------------
# version / help / unknown commands
# ---------------------------------------------------------------------------

def test_version_mentions_spec(rt):
    res = rt.raw([rt.binary, "--version"], check=True)
    assert re.search(r"^spec: 1\.\d+\.\d+", res.stdout, re.M), res


@pytest.mark.puncker_only
def test_version_shape(rt):
    lines = rt.raw([rt.binary, "--version"], check=True).stdout.splitlines()
    assert re.fullmatch(r"puncker version \S+", lines[0]), lines
    assert any(re.fullmatch(r"spec: 1\.\d+\.\d+\S*", l) for l in lines[1:]), lines


def test_help_lists_commands(rt):
    res = rt.raw([rt.binary, "--help"], check=True)
    for command in ("create", "start", "run", "state", "kill", "delete", "list", "ps", "spec"):
        assert re.search(rf"^\s+{command}\b", res.stdout, re.M), f"{command} missing in help"


def test_unknown_command_fails(rt):
    res = rt.run("frobnicate", check=False)
    assert res.returncode != 0
    assert "frobnicate" in res.stderr


# ---------------------------------------------------------------------------
# Global flags
# ---------------------------------------------------------------------------

def test_root_flag_keeps_state_there(rt, bundle, workdir):
    b = bundle(["sleep", "100"])
    cid = rt.create(b)
    assert rt.root.is_dir()
    assert any(cid in name for _, dirs, files in os.walk(rt.root) for name in dirs + files)
    other = rt.raw([rt.binary, "--root", str(workdir / "other-root"), "state", cid])
    assert other.returncode != 0
    assert "does not exist" in other.stderr


def test_log_json_on_error(rt, workdir):
    log = workdir / "runtime.log"
    res = rt.run("state", "no-such-container", check=False,
                 global_args=["--log", log, "--log-format", "json"])
    assert res.returncode != 0
    records = [json.loads(l) for l in log.read_text().splitlines() if l.strip()]
    errors = [r for r in records if r.get("level") == "error"]
    assert errors, records
    assert "does not exist" in errors[-1]["msg"]
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", errors[-1]["time"])


def test_log_flag_equals_syntax(rt, workdir):
    log = workdir / "eq.log"
    res = rt.run("state", "no-such-container", check=False,
                 global_args=[f"--log={log}", "--log-format=json"])
    assert res.returncode != 0
    assert any(json.loads(l).get("level") == "error"
               for l in log.read_text().splitlines() if l.strip())


def test_debug_flag_accepted(rt, bundle):
    cid = rt.create(bundle(["sleep", "100"]))
    res = rt.run("state", cid, global_args=["--debug"])
    assert json.loads(res.stdout)["id"] == cid


def test_systemd_cgroup_flag_accepted(rt, bundle):
    cid = rt.create(bundle(["sleep", "100"]))
    res = rt.run("list", "-q", global_args=["--systemd-cgroup"])
    assert res.stdout.split() == [cid]


# ---------------------------------------------------------------------------
# Flag syntax: --flag value, --flag=value, single-dash long names
# ---------------------------------------------------------------------------

def test_containerd_style_create(rt, bundle, workdir):
    """The exact argument order containerd's shim uses."""
    b = bundle(["sleep", "100"])
    cid = rt.new_id()
    log = workdir / "shim.log"
    pid_file = workdir / "init.pid"
    rt.raw([rt.binary, "--root", str(rt.root), "--log", str(log), "--log-format", "json",
            "create", "--bundle", str(b.path), "--pid-file", str(pid_file), cid], check=True)
    rt.bundles.append(b)
    st = rt.state(cid)
    assert st["status"] == "created"
    assert int(pid_file.read_text()) == st["pid"]
    rt.raw([rt.binary, "--root", str(rt.root), "--log", str(log), "--log-format", "json",
            "start", cid], check=True)
    assert rt.status(cid) == "running"
    rt.raw([rt.binary, "--root", str(rt.root), "kill", cid, "9"], check=True)
    rt.wait_status(cid, "stopped")
    rt.raw([rt.binary, "--root", str(rt.root), "delete", "--force", cid], check=True)
    assert not rt.exists(cid)


@pytest.mark.parametrize("form", ["--bundle=", "-bundle", "-b", "--bundle"])
def test_bundle_flag_forms(rt, bundle, form):
    b = bundle(["sleep", "100"])
    cid = rt.new_id()
    args = [form + str(b.path)] if form.endswith("=") else [form, b.path]
    rt.bundles.append(b)
    rt.run("create", *args, cid)
    assert rt.state(cid)["bundle"] == str(b.path)


@pytest.mark.parametrize("form", ["--root=", "-root", "--root"])
def test_root_flag_forms(rt, bundle, workdir, form):
    root = workdir / f"root{len(form)}"
    b = bundle(["sleep", "100"])
    cid = rt.new_id()
    root_args = [form + str(root)] if form.endswith("=") else [form, str(root)]
    rt.raw([rt.binary, *root_args, "create", "--bundle", str(b.path), cid], check=True)
    try:
        res = rt.raw([rt.binary, "--root", str(root), "state", cid], check=True)
        assert json.loads(res.stdout)["status"] == "created"
    finally:
        rt.raw([rt.binary, "--root", str(root), "delete", "--force", cid],
               timeout=DEFAULT_TIMEOUT)


def test_single_dash_pid_file_and_log(rt, bundle, workdir):
    b = bundle(["sleep", "100"])
    cid = rt.new_id()
    pid_file = workdir / "p.pid"
    log = workdir / "single.log"
    rt.bundles.append(b)
    rt.run("create", "-bundle", b.path, "-pid-file", pid_file, cid,
           global_args=["-log", log, "-log-format", "json"])
    assert int(pid_file.read_text()) == rt.state(cid)["pid"]


def test_bundle_defaults_to_current_directory(rt, bundle):
    b = bundle(["sleep", "100"])
    cid = rt.new_id()
    rt.bundles.append(b)
    rt.run("create", cid, cwd=b.path)
    assert rt.state(cid)["bundle"] == str(b.path)


def test_relative_bundle_path_is_made_absolute(rt, bundle):
    b = bundle(["sleep", "100"])
    cid = rt.new_id()
    rt.bundles.append(b)
    rt.run("create", "--bundle", b.path.name, cid, cwd=b.path.parent)
    assert rt.state(cid)["bundle"] == str(b.path)


@pytest.mark.puncker_only  # runc 1.1.5's `features` is experimental and differs
def test_features_document(rt):
    """`features` tells clients what works here; each claim is checked against this machine."""
    doc = json.loads(rt.run("features").stdout)
    assert doc["ociVersionMax"].startswith("1.2")
    assert set(doc["hooks"]) == {"prestart", "createRuntime", "createContainer", "startContainer",
                                 "poststart", "poststop"}
    linux = doc["linux"]
    assert {"pid", "network", "mount", "user", "time", "cgroup"} <= set(linux["namespaces"])
    assert "CAP_CHECKPOINT_RESTORE" in linux["capabilities"]
    assert {"rbind", "ro", "nosuid", "rprivate", "rro"} <= set(doc["mountOptions"])
    seccomp = linux["seccomp"]
    assert seccomp["enabled"] is True
    assert "SCMP_ACT_NOTIFY" in seccomp["actions"] and "SCMP_CMP_MASKED_EQ" in seccomp["operators"]
    assert set(seccomp["supportedFlags"]) <= set(seccomp["knownFlags"])
    assert "SECCOMP_FILTER_FLAG_LOG" in seccomp["supportedFlags"]  # every kernel since 4.14
    # Nothing is claimed that does not work yet.
    assert linux["mountExtensions"]["idmap"]["enabled"] is False
    assert linux["cgroup"]["systemd"] is True  # through D-Bus where systemd runs (test_systemd_cgroup)
