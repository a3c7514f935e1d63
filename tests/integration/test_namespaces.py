"""Namespaces as seen from inside the container."""

import os
import subprocess

import pytest

from conftest import DEFAULT_TIMEOUT, HOSTNAME, read_status, release, spawn, wait_for

NS_TYPES = {  # config type -> /proc/PID/ns entry
    "pid": "pid", "mount": "mnt", "uts": "uts", "ipc": "ipc",
    "network": "net", "cgroup": "cgroup",
}


def drop_ns(kind):
    def mutate(cfg):
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != kind]
    return mutate


def ok(res):
    assert res.returncode == 0, res
    return res.stdout


@pytest.fixture
def ns_holder():
    """Start a host process in fresh namespaces; yields its pid."""
    procs = []

    def start(*flags):
        p = spawn(["unshare", *flags, "sleep", "100"], stdin=subprocess.DEVNULL,
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        # unshare execs sleep once the namespaces exist.
        wait_for(lambda: os.readlink(f"/proc/{p.pid}/exe").endswith("sleep"),
                 what="namespace holder")
        return p.pid

    yield start
    for p in procs:
        p.kill()
        p.wait(DEFAULT_TIMEOUT)
        release(p)


# ---------------------------------------------------------------------------
# PID namespace
# ---------------------------------------------------------------------------

def test_process_is_pid_1(run_sh):
    assert ok(run_sh("echo $$")) == "1\n"


def test_proc_shows_only_container_processes(run_sh):
    out = ok(run_sh("sleep 100 & ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '; "
                    "echo; cat /proc/1/comm; kill $!"))
    pids_line, comm = out.splitlines()
    pids = [int(p) for p in pids_line.split()]
    # sh, sleep and the pipeline: a handful of small pids, nothing from the host.
    assert pids[0] == 1
    assert len(pids) <= 8, pids
    assert max(pids) < 50, pids
    assert comm == "sh"


def test_ps_inside_sees_only_container(run_sh):
    out = ok(run_sh("ps -o pid,comm; true"))
    rows = [l.split() for l in out.splitlines()[1:]]
    assert ["1", "sh"] in rows
    assert len(rows) == 2, rows


# ---------------------------------------------------------------------------
# UTS
# ---------------------------------------------------------------------------

def test_hostname(run_sh):
    assert ok(run_sh("hostname")) == HOSTNAME + "\n"


def test_hostname_from_config(run_sh):
    assert ok(run_sh("cat /proc/sys/kernel/hostname", hostname="other-name")) == "other-name\n"


@pytest.mark.puncker_only  # runc 1.1 ignores "domainname"
def test_domainname(run_sh):
    assert ok(run_sh("cat /proc/sys/kernel/domainname",
                     domainname="example.test")) == "example.test\n"


def test_host_hostname_untouched(run_sh):
    before = open("/proc/sys/kernel/hostname").read()
    assert ok(run_sh("hostname")) == HOSTNAME + "\n"
    assert open("/proc/sys/kernel/hostname").read() == before


# ---------------------------------------------------------------------------
# Namespace identity
# ---------------------------------------------------------------------------

def test_namespaces_differ_from_host(run_sh):
    names = list(NS_TYPES.values())
    script = "; ".join(f"readlink /proc/self/ns/{n}" for n in names)
    inside = ok(run_sh(script)).split()
    assert len(inside) == len(names), inside
    for name, link in zip(names, inside):
        host = os.readlink(f"/proc/self/ns/{name}")
        assert link.startswith(f"{name}:["), link
        assert link != host, f"{name} namespace is shared with the host"


@pytest.mark.parametrize("kind", ["network", "ipc", "uts", "cgroup"])
def test_omitted_namespace_is_shared(run_sh, kind):
    name = NS_TYPES[kind]
    mutate = drop_ns(kind)
    if kind == "uts":
        def mutate(cfg):
            drop_ns("uts")(cfg)
            cfg.pop("hostname", None)
    inside = ok(run_sh(f"readlink /proc/self/ns/{name}", mutate=mutate)).strip()
    assert inside == os.readlink(f"/proc/self/ns/{name}")


def test_network_namespace_has_only_loopback(run_sh):
    out = ok(run_sh("ls /sys/class/net; cat /sys/class/net/lo/flags"))
    *ifaces, flags = out.split()
    assert ifaces == ["lo"]
    assert int(flags, 16) & 0x1, "loopback is not up"


def test_cgroup_namespace_root(run_sh):
    out = ok(run_sh("cat /proc/self/cgroup"))
    lines = out.splitlines()
    assert lines
    for line in lines:
        assert line.rsplit(":", 1)[1] == "/", line


@pytest.mark.parametrize("kind,flag", [("network", "--net"), ("ipc", "--ipc"), ("uts", "--uts")])
def test_join_namespace_by_path(run_sh, ns_holder, kind, flag):
    holder = ns_holder(flag)
    name = NS_TYPES[kind]
    path = f"/proc/{holder}/ns/{name}"
    expected = os.readlink(path)
    assert expected != os.readlink(f"/proc/self/ns/{name}")

    def join(cfg):
        for ns in cfg["linux"]["namespaces"]:
            if ns["type"] == kind:
                ns["path"] = path

    inside = ok(run_sh(f"readlink /proc/self/ns/{name}", mutate=join)).strip()
    assert inside == expected


def test_join_invalid_namespace_path_fails(rt, bundle, workdir):
    not_ns = workdir / "plain-file"
    not_ns.write_text("")

    def join(cfg):
        for ns in cfg["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = str(not_ns)

    b = bundle(["true"], mutate=join)
    cid = rt.new_id()
    res = rt.run_fg(b, cid)
    assert res.returncode != 0
    assert res.stderr.strip()


# ---------------------------------------------------------------------------
# User namespace
# ---------------------------------------------------------------------------

def userns(host_id=100000, size=65536):
    def mutate(cfg):
        cfg["linux"]["namespaces"].append({"type": "user"})
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": host_id, "size": size}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": host_id, "size": size}]
    return mutate


def test_user_namespace_maps_inside(run_sh):
    out = ok(run_sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g",
                    mutate=userns()))
    lines = out.splitlines()
    assert lines[0].split() == ["0", "100000", "65536"]
    assert lines[1].split() == ["0", "100000", "65536"]
    assert lines[2:] == ["0", "0"]


def test_user_namespace_host_view(rt, bundle):
    b = bundle(["sleep", "100"], mutate=userns())
    cid = rt.create_started(b)
    pid = rt.state(cid)["pid"]
    status = read_status(pid)
    assert status["Uid"].split() == ["100000"] * 4
    assert status["Gid"].split() == ["100000"] * 4
    assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")


def test_user_namespace_non_root_user(run_sh):
    out = ok(run_sh("id -u; id -g; cat /proc/self/uid_map",
                    mutate=userns(), process={"user": {"uid": 1000, "gid": 1000}}))
    assert out.split()[:2] == ["1000", "1000"]


def test_user_namespace_unmapped_files_are_overflow(run_sh):
    # The rootfs belongs to host root, which is not mapped into the container.
    out = ok(run_sh("stat -c '%u' /bin/busybox", mutate=userns()))
    assert out.strip() == "65534"


# ---------------------------------------------------------------------------
# Time namespace (runc 1.1 does not know it)
# ---------------------------------------------------------------------------

@pytest.mark.puncker_only
def test_time_namespace_offsets(run_sh):
    def timens(cfg):
        cfg["linux"]["namespaces"].append({"type": "time"})
        cfg["linux"]["timeOffsets"] = {
            "monotonic": {"secs": 100000, "nanosecs": 0},
            "boottime": {"secs": 200000, "nanosecs": 0},
        }

    host_uptime = float(open("/proc/uptime").read().split()[0])
    out = ok(run_sh("cat /proc/uptime; readlink /proc/self/ns/time", mutate=timens))
    uptime_line, link = out.splitlines()
    uptime = float(uptime_line.split()[0])
    assert 200000 + host_uptime - 5 < uptime < 200000 + host_uptime + 60
    assert link != os.readlink("/proc/self/ns/time")
