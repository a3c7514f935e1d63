"""Root filesystem, mounts[], /dev, masked and read-only paths, sysctl."""

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import DEFAULT_TIMEOUT, mountinfo, parse_mountinfo


def ok(res):
    assert res.returncode == 0, res
    return res.stdout


def mounts_of(text):
    return {m.point: m for m in parse_mountinfo(text)}


def host_fs_path(path: Path) -> str:
    """Path of `path` relative to the root of the filesystem holding it."""
    path = Path(os.path.realpath(path))
    best = max((m for m in mountinfo() if path == Path(m.point) or
                str(path).startswith(m.point.rstrip("/") + "/")),
               key=lambda m: len(m.point))
    rel = os.path.relpath(path, best.point)
    return os.path.normpath(os.path.join(best.root, rel))


# ---------------------------------------------------------------------------
# Root
# ---------------------------------------------------------------------------

def test_root_is_the_bundle_rootfs(rt, bundle, session_dir):
    b = bundle(["cat", "/proc/self/mountinfo"])
    out = ok(rt.run_fg(b))
    entries = parse_mountinfo(out)
    roots = [m for m in entries if m.point == "/"]
    assert len(roots) == 1, "old root still mounted (no pivot_root?)"
    assert roots[0].root == host_fs_path(b.rootfs)
    for m in entries:
        assert str(session_dir) not in m.point, f"host path visible: {m.point}"


def test_cannot_see_host_files(run_sh, workdir):
    marker = workdir / "host-only-marker"
    marker.write_text("x")
    out = ok(run_sh(f"test -e {marker} && echo visible || echo hidden; ls /"))
    assert out.splitlines()[0] == "hidden"
    assert set(out.split()[1:]) >= {"bin", "etc", "proc", "dev", "sys", "tmp"}


def test_no_pivot(rt, bundle):
    b = bundle(["sh", "-c", "cat /etc/hostname; ls /; echo $$"])
    out = ok(rt.run_fg(b, None, "--no-pivot"))
    lines = out.split()
    assert lines[0] == "puncker-test"
    assert "bin" in lines and lines[-1] == "1"


def test_readonly_root(run_sh):
    res = run_sh("touch /x 2>&1; echo rc=$?; touch /tmp/y 2>&1; echo rc=$?",
                 root={"readonly": True})
    out = ok(res)
    lines = out.splitlines()
    assert "Read-only file system" in lines[0]
    assert lines[1] == "rc=1"


def test_readonly_root_keeps_tmpfs_mounts_writable(run_sh):
    out = ok(run_sh("touch /dev/shm/ok && echo writable", root={"readonly": True}))
    assert out == "writable\n"


def test_writable_root(rt, bundle):
    b = bundle(["sh", "-c", "echo data > /written"])
    ok(rt.run_fg(b))
    assert (b.rootfs / "written").read_text() == "data\n"


def test_root_path_absolute(rt, bundle, workdir):
    b = bundle(["sh", "-c", "cat /etc/hostname"])
    moved = workdir / "elsewhere-rootfs"
    b.rootfs.rename(moved)
    b.update(root={"path": str(moved)})
    assert ok(rt.run_fg(b)) == "puncker-test\n"


# ---------------------------------------------------------------------------
# mounts[]
# ---------------------------------------------------------------------------

def test_tmpfs_with_options(rt, bundle):
    b = bundle(["sh", "-c", "grep ' /data ' /proc/mounts; stat -c '%a' /data"])
    b.add_mount("/data", "tmpfs", "tmpfs", ["nosuid", "nodev", "size=1024k", "mode=750"])
    out = ok(rt.run_fg(b)).splitlines()
    fields = out[0].split()
    assert fields[2] == "tmpfs"
    opts = fields[3].split(",")
    assert "size=1024k" in opts
    assert "mode=750" in opts
    assert out[1] == "750"


def test_tmpcopyup_starts_the_tmpfs_with_what_it_covers(rt, bundle):
    """tmpcopyup (podman puts it on /run, /tmp and /var/tmp with --read-only): the tmpfs holds
    a copy of the covered directory: files, subdirectories, symlinks, modes and owners."""
    b = bundle(["sh", "-c", "stat -f -c %T /srv; cat /srv/a /srv/sub/b; readlink /srv/link; "
                "stat -c '%a %u:%g' /srv /srv/sub/b; echo new > /srv/c && cat /srv/c"])
    srv = b.rootfs / "srv"
    (srv / "sub").mkdir(parents=True)
    (srv / "a").write_text("first\n")
    (srv / "sub" / "b").write_text("second\n")
    (srv / "sub" / "b").chmod(0o604)
    os.chown(srv / "sub" / "b", 1000, 1000)
    (srv / "link").symlink_to("sub/b")
    srv.chmod(0o750)
    b.config["mounts"].append({"destination": "/srv", "type": "tmpfs", "source": "tmpfs",
                               "options": ["nosuid", "nodev", "tmpcopyup"]})
    b.write()
    res = rt.run_fg(b)
    assert res.returncode == 0, res
    assert res.stdout.split("\n")[:6] == ["tmpfs", "first", "second", "sub/b", "750 0:0", "604 1000:1000"], res
    assert "new" in res.stdout
    # The copy is the container's: the rootfs under it is untouched.
    assert not (srv / "c").exists()


@pytest.mark.puncker_only  # runc 1.1.5 copies into a read-only tmpfs and fails
def test_tmpcopyup_read_only(rt, bundle):
    b = bundle(["sh", "-c", "cat /srv/a; touch /srv/x 2>/dev/null || echo refused"])
    (b.rootfs / "srv").mkdir()
    (b.rootfs / "srv" / "a").write_text("kept\n")
    b.config["mounts"].append({"destination": "/srv", "type": "tmpfs", "source": "tmpfs",
                               "options": ["ro", "tmpcopyup"]})
    b.write()
    res = rt.run_fg(b)
    assert res.returncode == 0 and res.stdout.split() == ["kept", "refused"], res


def test_mount_flags_visible(rt, bundle):
    b = bundle(["cat", "/proc/self/mountinfo"])
    b.add_mount("/flags", "tmpfs", "tmpfs", ["nosuid", "nodev", "noexec", "ro"])
    b.add_mount("/plain", "tmpfs", "tmpfs", [])
    mounts = mounts_of(ok(rt.run_fg(b)))
    assert {"nosuid", "nodev", "noexec", "ro"} <= mounts["/flags"].options
    assert not {"nosuid", "nodev", "noexec", "ro"} & mounts["/plain"].options


def test_noexec_is_enforced(rt, bundle):
    b = bundle(["sh", "-c", "cp /bin/busybox /ne/bb && /ne/bb true; echo rc=$?"])
    b.add_mount("/ne", "tmpfs", "tmpfs", ["noexec"])
    assert ok(rt.run_fg(b)).splitlines()[-1] == "rc=126"


@pytest.fixture
def host_dir(workdir):
    d = workdir / "shared"
    d.mkdir()
    d.chmod(0o777)
    (d / "from-host.txt").write_text("hello from host\n")
    return d


def test_bind_mount_host_dir(rt, bundle, host_dir):
    b = bundle(["sh", "-c", "cat /mnt/host/from-host.txt; echo back > /mnt/host/from-ctr.txt"])
    b.add_mount("/mnt/host", "bind", str(host_dir), ["rbind", "rw"])
    assert ok(rt.run_fg(b)) == "hello from host\n"
    assert (host_dir / "from-ctr.txt").read_text() == "back\n"


def test_bind_mount_type_none(rt, bundle, host_dir):
    b = bundle(["cat", "/mnt/host/from-host.txt"])
    b.add_mount("/mnt/host", "none", str(host_dir), ["bind"])
    assert ok(rt.run_fg(b)) == "hello from host\n"


def test_readonly_bind_mount(rt, bundle, host_dir):
    b = bundle(["sh", "-c", "cat /ro/from-host.txt; touch /ro/new 2>&1; echo rc=$?; "
                            "grep ' /ro ' /proc/self/mountinfo"])
    b.add_mount("/ro", "bind", str(host_dir), ["bind", "ro"])
    lines = ok(rt.run_fg(b)).splitlines()
    assert lines[0] == "hello from host"
    assert "Read-only file system" in lines[1]
    assert lines[2] == "rc=1"
    assert "ro" in lines[3].split()[5].split(",")
    assert not (host_dir / "new").exists()


def test_bind_mount_file(rt, bundle, host_dir):
    b = bundle(["cat", "/etc/injected.conf"])
    b.add_mount("/etc/injected.conf", "bind", str(host_dir / "from-host.txt"), ["bind", "ro"])
    assert ok(rt.run_fg(b)) == "hello from host\n"
    assert (b.rootfs / "etc" / "injected.conf").is_file()


def test_rbind_includes_submounts(rt, bundle, host_dir):
    sub = host_dir / "sub"
    sub.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(sub)], check=True,
                   timeout=DEFAULT_TIMEOUT)
    (sub / "in-submount").write_text("deep\n")
    b = bundle(["sh", "-c", "cat /r/sub/in-submount; ls /b/sub | wc -l"])
    b.add_mount("/r", "bind", str(host_dir), ["rbind"])
    b.add_mount("/b", "bind", str(host_dir), ["bind"])
    out = ok(rt.run_fg(b)).split()
    assert out == ["deep", "0"]


def test_missing_destination_is_created(rt, bundle):
    b = bundle(["sh", "-c", "grep -c ' /new/nested/dir ' /proc/self/mountinfo"])
    b.add_mount("/new/nested/dir", "tmpfs", "tmpfs", [])
    assert ok(rt.run_fg(b)) == "1\n"
    assert (b.rootfs / "new" / "nested" / "dir").is_dir()


def test_relative_destination(rt, bundle):
    b = bundle(["sh", "-c", "grep -c ' /relative/dir ' /proc/self/mountinfo"])
    b.add_mount("relative/dir", "tmpfs", "tmpfs", [])
    assert ok(rt.run_fg(b)) == "1\n"


def test_mount_order_is_kept(rt, bundle, host_dir):
    b = bundle(["sh", "-c", "cat /stack/from-host.txt; ls /stack/inner"])
    b.add_mount("/stack", "bind", str(host_dir), ["bind"])
    b.add_mount("/stack/inner", "tmpfs", "tmpfs", [])
    out = ok(rt.run_fg(b))
    assert out == "hello from host\n"
    # The inner mount point was created on the host directory, under the bind.
    assert (host_dir / "inner").is_dir()


# ---------------------------------------------------------------------------
# Symlinks in mount destinations must not escape the rootfs
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("style", ["absolute", "relative"])
def test_symlink_destination_stays_in_rootfs(rt, bundle, workdir, style):
    victim = workdir / "victim"
    victim.mkdir()
    (victim / "keep").write_text("untouched\n")
    b = bundle(["sh", "-c", f"echo inside > /escape/sub/file; grep -c ' {victim}/sub ' "
                            "/proc/self/mountinfo"])
    if style == "absolute":
        target = str(victim)
    else:
        target = "../" * 20 + str(victim).lstrip("/")
    (b.rootfs / "escape").symlink_to(target)
    b.add_mount("/escape/sub", "tmpfs", "tmpfs", [])
    assert ok(rt.run_fg(b)) == "1\n"
    assert sorted(os.listdir(victim)) == ["keep"], "mount escaped the rootfs"
    assert (victim / "keep").read_text() == "untouched\n"
    landed = b.rootfs / str(victim).lstrip("/") / "sub"
    assert landed.is_dir(), "mount point not created at the in-root location"


def test_symlink_to_slash_destination_stays_in_rootfs(rt, bundle):
    name = f"puncker-escape-{uuid.uuid4().hex[:8]}"
    host_path = Path("/tmp") / name
    b = bundle(["sh", "-c", f"grep -c ' /tmp/{name} ' /proc/self/mountinfo"])
    (b.rootfs / "rootlink").symlink_to("/")
    b.add_mount(f"/rootlink/tmp/{name}", "tmpfs", "tmpfs", [])
    try:
        assert ok(rt.run_fg(b)) == "1\n"
        assert not host_path.exists(), "mount destination was created on the host"
        assert (b.rootfs / "tmp" / name).is_dir()
    finally:
        if host_path.is_dir():
            host_path.rmdir()


def test_bind_source_symlink_is_followed_on_host(rt, bundle, host_dir, workdir):
    link = workdir / "link-to-shared"
    link.symlink_to(host_dir)
    b = bundle(["cat", "/via-link/from-host.txt"])
    b.add_mount("/via-link", "bind", str(link), ["bind"])
    assert ok(rt.run_fg(b)) == "hello from host\n"


# ---------------------------------------------------------------------------
# /dev
# ---------------------------------------------------------------------------

DEVICES = {"null": "1:3", "zero": "1:5", "full": "1:7", "random": "1:8",
           "urandom": "1:9", "tty": "5:0"}


def test_default_devices(run_sh):
    script = "; ".join(f"stat -c '%n %F %t:%T %a' /dev/{d}" for d in DEVICES)
    out = ok(run_sh(script))
    assert len(out.splitlines()) == len(DEVICES), out
    for line in out.splitlines():
        path, rest = line.split(" ", 1)
        name = path.rsplit("/", 1)[1]
        assert rest.startswith("character special file"), line
        numbers, mode = rest.rsplit(" ", 2)[-2:]
        assert numbers == DEVICES[name], line
        assert mode == "666", line


def test_default_devices_work(run_sh):
    out = ok(run_sh("echo x > /dev/null && head -c 4 /dev/zero | wc -c && "
                    "head -c 8 /dev/urandom | wc -c; echo x > /dev/full; echo rc=$?"))
    assert out.split() == ["4", "8", "rc=1"]


def test_dev_symlinks(run_sh):
    out = ok(run_sh("for l in fd stdin stdout stderr ptmx; do echo $l $(readlink /dev/$l); done"))
    links = dict(line.split() for line in out.splitlines())
    assert links["fd"] == "/proc/self/fd"
    assert links["stdin"] == "/proc/self/fd/0"
    assert links["stdout"] == "/proc/self/fd/1"
    assert links["stderr"] == "/proc/self/fd/2"
    assert links["ptmx"] == "pts/ptmx"


def test_dev_submounts(run_sh):
    mounts = mounts_of(ok(run_sh("cat /proc/self/mountinfo")))
    assert mounts["/dev"].fstype == "tmpfs"
    assert mounts["/dev/pts"].fstype == "devpts"
    assert mounts["/dev/shm"].fstype == "tmpfs"
    assert mounts["/dev/mqueue"].fstype == "mqueue"
    assert "ptmxmode=666" in mounts["/dev/pts"].super_options
    assert "ro" in mounts["/sys"].options


def test_host_devices_not_exposed(run_sh):
    out = ok(run_sh("ls /dev"))
    names = set(out.split())
    assert {"null", "zero", "pts", "shm"} <= names, names
    assert not names & {"vda", "sda", "kmsg", "mem", "loop0"}, names


def test_linux_devices_entry(run_sh):
    devices = [{"path": "/dev/mydev", "type": "c", "major": 1, "minor": 7,
                "fileMode": 0o666, "uid": 1000, "gid": 29},
               {"path": "/dev/sub/blk", "type": "b", "major": 7, "minor": 0,
                "fileMode": 0o600, "uid": 0, "gid": 0}]
    out = ok(run_sh("stat -c '%F|%t:%T|%a|%u|%g' /dev/mydev /dev/sub/blk",
                    linux={"devices": devices}))
    lines = out.splitlines()
    assert lines[0] == "character special file|1:7|666|1000|29"
    assert lines[1] == "block special file|7:0|600|0|0"


def test_linux_device_is_usable(run_sh):
    devices = [{"path": "/dev/myzero", "type": "c", "major": 1, "minor": 5,
                "fileMode": 0o644}]
    out = ok(run_sh("head -c 3 /dev/myzero | od -An -tx1", linux={"devices": devices}))
    assert out.split() == ["00", "00", "00"]


# ---------------------------------------------------------------------------
# maskedPaths / readonlyPaths
# ---------------------------------------------------------------------------

def test_default_masked_paths(run_sh):
    # Each of these is non-empty on the host (/proc/kcore is absent on some kernels).
    out = ok(run_sh("wc -c < /proc/timer_list; ls -A /sys/firmware | wc -l; wc -c < /proc/keys"))
    assert out.split() == ["0", "0", "0"]


def test_custom_masked_file_and_dir(rt, bundle):
    b = bundle(["sh", "-c", "cat /etc/secret; echo; ls -A /secretdir | wc -l; "
                            "echo x > /etc/secret 2>/dev/null; cat /etc/secret"])
    (b.rootfs / "etc" / "secret").write_text("TOPSECRET")
    (b.rootfs / "secretdir").mkdir()
    (b.rootfs / "secretdir" / "a").write_text("a")
    b.config["linux"]["maskedPaths"] += ["/etc/secret", "/secretdir", "/does/not/exist"]
    b.write()
    out = ok(rt.run_fg(b))
    assert "TOPSECRET" not in out
    assert out.split() == ["0"]
    assert (b.rootfs / "etc" / "secret").read_text() == "TOPSECRET"


def test_default_readonly_paths(run_sh):
    out = ok(run_sh("echo 1 > /proc/sys/kernel/shm_rmid_forced; echo rc=$?; "
                    "echo 1 > /proc/sysrq-trigger; echo rc=$?"))
    assert out.split() == ["rc=1", "rc=1"]


def test_custom_readonly_path(rt, bundle):
    b = bundle(["sh", "-c", "cat /data/f; touch /data/g 2>/dev/null; echo rc=$?; "
                            "touch /other; echo rc=$?"])
    (b.rootfs / "data").mkdir()
    (b.rootfs / "data" / "f").write_text("readable\n")
    b.config["linux"]["readonlyPaths"].append("/data")
    b.write()
    assert ok(rt.run_fg(b)).split() == ["readable", "rc=1", "rc=0"]


# ---------------------------------------------------------------------------
# sysctl
# ---------------------------------------------------------------------------

def test_sysctl(run_sh):
    out = ok(run_sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced",
                    linux={"sysctl": {"net.ipv4.ip_forward": "1",
                                      "kernel.shm_rmid_forced": "1"}}))
    assert out.split() == ["1", "1"]


def test_sysctl_does_not_touch_host(run_sh):
    before = Path("/proc/sys/kernel/shm_rmid_forced").read_text()
    wanted = "0" if before.strip() == "1" else "1"
    out = ok(run_sh("cat /proc/sys/kernel/shm_rmid_forced",
                    linux={"sysctl": {"kernel.shm_rmid_forced": wanted}}))
    assert out.strip() == wanted
    assert Path("/proc/sys/kernel/shm_rmid_forced").read_text() == before
