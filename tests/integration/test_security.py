"""Attacks on the runtime, each tried for real: the defence must make it fail."""

from __future__ import annotations

import pytest


@pytest.mark.puncker_only  # runc 1.1.5 predates the fix for this one
def test_cwd_through_a_host_fd_is_refused(rt, bundle, workdir):
    """CVE-2024-21626: a cwd of /proc/self/fd/N, N a descriptor of a host directory handed in
    with --preserve-fds, would start the program outside the rootfs."""
    secret = workdir / "host-dir"
    secret.mkdir()
    (secret / "secret").write_text("host secret\n")
    b = bundle(["sh", "-c", "cat secret; pwd"], process={"cwd": "/proc/self/fd/3"})
    cid = rt.new_id()
    rt.bundles.append(b)
    # A shell opens the host directory as fd 3 and execs the runtime with it.
    res = rt.raw(["sh", "-c", 'exec 3<"$0"; exec "$@"', str(secret),
                  *rt.cmd("run", "--preserve-fds", "1", "--bundle", b.path, cid)], check=False)
    assert res.returncode != 0, res
    assert "host secret" not in res.stdout
    assert "cwd" in res.stderr, res.stderr
    rt.assert_clean(cid, b)


@pytest.mark.puncker_only  # runc 1.1.5 predates the fix for this one
def test_masking_uses_the_real_null_device(bundle, rt):
    """CVE-2025-31133: masking with whatever the container calls /dev/null. Here the image's
    /dev/null is a symlink to a file of its own and /dev is not a fresh tmpfs."""
    def no_dev_tmpfs(cfg):
        cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] not in ("/dev", "/dev/pts", "/dev/shm", "/dev/mqueue")]
    b = bundle(["sh", "-c", "cat /etc/motd-masked; echo; stat -c '%F %t:%T' /etc/motd-masked"],
               mutate=no_dev_tmpfs, linux={"maskedPaths": ["/etc/motd-masked"]})
    (b.rootfs / "etc" / "motd-masked").write_text("should be hidden\n")
    (b.rootfs / "etc" / "not-null").write_text("attacker data\n")
    dev = b.rootfs / "dev"
    dev.mkdir(exist_ok=True)
    if (dev / "null").exists() or (dev / "null").is_symlink():
        (dev / "null").unlink()
    (dev / "null").symlink_to("/etc/not-null")
    res = rt.run_fg(b)
    assert res.returncode == 0, res
    assert "should be hidden" not in res.stdout and "attacker data" not in res.stdout, res
    assert "character special file 1:3" in res.stdout, res


@pytest.mark.puncker_only  # runc's defence differs: its init runs from a sealed memfd copy
def test_parked_init_binary_is_out_of_reach_of_a_neighbour(rt, bundle):
    """CVE-2019-5736: until it execs, a container's init is the runtime binary. A second
    container that joins its pid namespace (a pod sharing one) must not be able to open it
    through /proc/1/exe, the first step of overwriting the runtime on the host."""
    caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"]

    def capset(names):
        return {"capabilities": {k: names for k in ("bounding", "effective", "permitted")}}

    # Parked: pid 1 of its namespace is the runtime binary, already holding the container's
    # final capabilities. The neighbour holds the same and one more, so only the runtime's
    # own defence stands between it and /proc/1/exe.
    first = rt.create(bundle(["sleep", "100"], process=capset(caps)))
    pid = rt.state(first)["pid"]

    def join_first(cfg):
        for ns in cfg["linux"]["namespaces"]:
            if ns["type"] == "pid":
                ns["path"] = f"/proc/{pid}/ns/pid"

    neighbour = bundle(["sh", "-c", "cat /proc/1/exe > /dev/null && echo opened || echo refused"],
                       mutate=join_first, process=capset(caps + ["CAP_NET_RAW"]))
    res = rt.run_fg(neighbour)
    assert res.returncode == 0, res
    assert res.stdout.strip() == "refused", res
