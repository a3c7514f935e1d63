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
