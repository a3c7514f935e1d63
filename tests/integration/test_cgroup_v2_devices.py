"""linux.resources.devices on a pure cgroup2 host: the eBPF device program, enforced for real.

This host is hybrid. Each runtime call runs in a private mount namespace with the v1 cgroup
hierarchies unmounted, so the runtime sees a pure cgroup2 host (/sys/fs/cgroup/unified) and
takes its v2 path. The v1 devices cgroup the container stays in is the root one, which allows
everything: a refusal can only come from the BPF program.
"""

from __future__ import annotations

import ctypes
import json
import os

import pytest

from conftest import cgroup_dirs_named

pytestmark = pytest.mark.puncker_only  # runc will not run on a hybrid host with v1 hidden this way

UNIFIED = "/sys/fs/cgroup/unified"
# Hide every v1 hierarchy from the command that follows, in this mount namespace only.
HIDE_V1 = ("awk '{for (i = 7; i <= NF; i++) if ($i == \"-\") { if ($(i+1) == \"cgroup\") print $5; break }}' "
           "/proc/self/mountinfo | while read m; do umount \"$m\" || exit 1; done; exec \"$@\"")
LOOP = {"path": "/dev/loop-probe", "type": "b", "major": 7, "minor": 0, "fileMode": 0o666}
DENY_ALL = {"allow": False, "access": "rwm"}
READ_LOOP = "head -c 0 /dev/loop-probe && echo read-ok; true > /dev/loop-probe && echo write-ok; echo done"


def on_pure_v2(rt, *args, **kw):
    argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", HIDE_V1, "sh",
            *rt.cmd(*args)]
    return rt.raw(argv, **kw)


def run_v2(rt, bundle, script, devices=None):
    linux = {"devices": [LOOP]}
    if devices is not None:
        linux["resources"] = {"devices": devices}
    b = bundle(["sh", "-c", script], linux=linux)
    rt.bundles.append(b)
    return on_pure_v2(rt, "run", "--bundle", b.path, rt.new_id())


def device_programs(cgroup_dir: str) -> int:
    """How many BPF device programs are attached to the cgroup itself (BPF_PROG_QUERY)."""
    class QueryAttr(ctypes.Structure):
        _fields_ = [("target_fd", ctypes.c_uint32), ("attach_type", ctypes.c_uint32),
                    ("query_flags", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32),
                    ("prog_ids", ctypes.c_uint64), ("prog_cnt", ctypes.c_uint32)]

    sys_bpf, bpf_prog_query, bpf_cgroup_device = 321, 16, 6  # x86_64
    libc = ctypes.CDLL(None, use_errno=True)
    ids = (ctypes.c_uint32 * 64)()
    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        attr = QueryAttr(target_fd=fd, attach_type=bpf_cgroup_device,
                         prog_ids=ctypes.addressof(ids), prog_cnt=64)
        if libc.syscall(sys_bpf, bpf_prog_query, ctypes.byref(attr), ctypes.sizeof(attr)) != 0:
            raise OSError(ctypes.get_errno(), "BPF_PROG_QUERY " + cgroup_dir)
        return attr.prog_cnt
    finally:
        os.close(fd)


@pytest.fixture(autouse=True)
def needs_x86_64_and_cgroup2():
    if os.uname().machine != "x86_64" or not os.path.exists(UNIFIED + "/cgroup.procs"):
        pytest.skip("needs x86_64 and a cgroup2 hierarchy at " + UNIFIED)


def test_without_device_rules_the_device_opens(rt, bundle):
    # The baseline: the refusals below come from the rules, not from this set-up.
    res = run_v2(rt, bundle, READ_LOOP)
    assert res.returncode == 0, res
    assert "read-ok" in res.stdout and "write-ok" in res.stdout, res


def test_deny_all_refuses_the_device_but_keeps_the_runtime_defaults(rt, bundle):
    res = run_v2(rt, bundle, READ_LOOP + "; head -c 1 /dev/zero >/dev/null && echo zero-ok", [DENY_ALL])
    assert res.returncode == 0, res
    assert "read-ok" not in res.stdout and "write-ok" not in res.stdout, res
    assert "Operation not permitted" in res.stderr + res.stdout, res
    assert "zero-ok" in res.stdout, res


def test_read_only_rule(rt, bundle):
    res = run_v2(rt, bundle, READ_LOOP,
                 [DENY_ALL, {"allow": True, "type": "b", "major": 7, "minor": 0, "access": "r"}])
    assert res.returncode == 0, res
    assert "read-ok" in res.stdout and "write-ok" not in res.stdout, res


def test_update_replaces_the_program(rt, bundle, workdir):
    b = bundle(["sleep", "60"], linux={"devices": [LOOP], "resources": {"devices": [DENY_ALL]}})
    rt.bundles.append(b)
    cid = rt.new_id()
    created = on_pure_v2(rt, "create", "--bundle", b.path, cid)
    assert created.returncode == 0, created
    assert on_pure_v2(rt, "start", cid).returncode == 0
    [cgroup_dir] = cgroup_dirs_named(cid, base=UNIFIED)
    assert device_programs(cgroup_dir) == 1

    probe = ["exec", cid, "sh", "-c", READ_LOOP]
    before = on_pure_v2(rt, *probe)
    assert "read-ok" not in before.stdout and "done" in before.stdout, before

    rules = workdir / "resources.json"
    rules.write_text(json.dumps({"devices": [DENY_ALL, {"allow": True, "type": "b", "major": 7,
                                                        "minor": 0, "access": "rw"}]}))
    updated = on_pure_v2(rt, "update", "-r", rules, cid)
    assert updated.returncode == 0, updated
    assert device_programs(cgroup_dir) == 1  # replaced, not stacked
    after = on_pure_v2(rt, *probe)
    assert "read-ok" in after.stdout and "write-ok" in after.stdout, after

    on_pure_v2(rt, "kill", cid, "KILL")
    assert on_pure_v2(rt, "delete", "--force", cid).returncode == 0
    rt.assert_clean(cid, b)
