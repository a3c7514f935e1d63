"""pieces: Piecefile builds into an OCI-layout store, and containers run from its images.

The real binary, as root, with a store in a temporary directory; base images come from a busybox
rootfs tarball served as a file:// URL (nothing is downloaded)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from conftest import BUSYBOX, mountinfo, wait_for
from pty_session import PtySession

PIECES = os.environ.get("PIECES", "")


@pytest.fixture(scope="module")
def base_tarball(tmp_path_factory) -> Path:
    """A busybox root filesystem as a .tar.gz, with an unprivileged user."""
    d = tmp_path_factory.mktemp("base")
    root = d / "rootfs"
    for sub in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/app"):
        (root / sub).mkdir(parents=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    for applet in subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split():
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\napp:x:1000:\nstaff:x:50:app\n")
    tarball = d / "busybox-rootfs.tar.gz"
    subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-czf", str(tarball), "."], check=True)
    return tarball


class Pieces:
    """The pieces binary bound to a private store."""

    def __init__(self, store: Path):
        self.store = store

    def __call__(self, *args, input: str | None = None, timeout: float = 120, check: bool = False,
                 cwd: Path | None = None) -> subprocess.CompletedProcess:
        res = subprocess.run([PIECES, "--root", str(self.store), *map(str, args)], input=input, text=True,
                             capture_output=True, timeout=timeout, cwd=cwd,
                             stdin=None if input is not None else subprocess.DEVNULL)
        if check and res.returncode != 0:
            raise AssertionError(f"pieces {' '.join(map(str, args))} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res

    def ok(self, *args, **kw) -> str:
        return self(*args, check=True, **kw).stdout

    def names(self) -> list[str]:
        index = json.loads((self.store / "index.json").read_text())
        return sorted(m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"])

    def leftovers(self) -> list[str]:
        """Temporary files, half-made layers and mounts a failed command must not leave."""
        left = [str(p) for p in (self.store / "tmp").iterdir()] if (self.store / "tmp").exists() else []
        left += [m.point for m in mountinfo() if m.point.startswith(str(self.store))]
        return left


@pytest.fixture
def pieces(workdir) -> Pieces:
    if not PIECES or not Path(PIECES).exists():
        pytest.fail("PIECES must name the built pieces binary (CTest sets it)")
    p = Pieces(workdir / "store")
    yield p
    # Nothing of a test may outlive it: containers killed and removed, mounts gone.
    if (p.store / "containers").exists():
        for c in p("ps", "-a", "-q").stdout.split():
            p("rm", "-f", c)
    for m in mountinfo():
        if m.point.startswith(str(p.store)):
            subprocess.run(["umount", "-l", m.point])


def context(workdir: Path, piecefile: str, files: dict[str, str] | None = None, name: str = "ctx") -> Path:
    ctx = workdir / name
    ctx.mkdir()
    (ctx / "Piecefile").write_text(piecefile)
    for rel, text in (files or {}).items():
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        (ctx / rel).write_text(text)
    return ctx


def test_build_rebuild_from_cache_and_run(pieces, workdir, base_tarball):
    """The issue's offline build: FROM_URL, ENV, WORKDIR, COPY, RUN, CMD; a rebuild does no
    work; the image is named after the tarball; running it shows what each step made."""
    ctx = context(workdir, f"""# comment
FROM_URL file://{base_tarball}
ENV GREETING="hello from pieces"
WORKDIR /app
COPY hello.txt ./
RUN echo "$GREETING" > greeting && \\
    mkdir -p /data
CMD ["sh", "-c", "cat greeting hello.txt; pwd"]
""", {"hello.txt": "copied\n"})
    first = pieces.ok("build", ctx)
    assert "Step 6/6" in first and "Built busybox-rootfs:latest" in first, first
    second = pieces.ok("build", ctx)
    assert "6 steps, 6 from the cache" in second, second
    assert second.count("---> cached") == 6
    assert pieces.ok("run", "--rm", "busybox-rootfs") == "hello from pieces\ncopied\n/app\n"
    assert pieces.names() == ["busybox-rootfs:latest"]
    # A changed COPY source invalidates that step and the ones after it, not those before.
    (ctx / "hello.txt").write_text("changed\n")
    third = pieces.ok("build", ctx)
    assert "6 steps, 3 from the cache" in third, third
    assert "changed" in pieces.ok("run", "--rm", "busybox-rootfs")
    assert pieces.leftovers() == []


def test_ps_aux_shows_only_the_container(pieces, workdir, base_tarball):
    pieces.ok("build", "-t", "bb", context(workdir, f"FROM_URL file://{base_tarball}\nCMD [\"sh\"]\n"))
    out = pieces.ok("run", "--rm", "bb", "ps", "aux").splitlines()
    assert out[0].split()[0] == "PID"
    assert len(out) == 2 and out[1].split()[0] == "1" and out[1].split()[-2:] == ["ps", "aux"], out


def test_from_a_named_image_names_the_result_after_it(pieces, workdir, base_tarball):
    """FROM ubuntu:22.04 makes ubuntu-22.04 unless -t says otherwise; ENTRYPOINT and CMD
    combine as in Docker, and run's arguments replace CMD."""
    pieces.ok("build", "-t", "ubuntu:22.04", context(workdir, f"FROM_URL file://{base_tarball}\n", name="base"))
    ctx = context(workdir, "FROM ubuntu:22.04\nENTRYPOINT [\"echo\", \"entry\"]\nCMD [\"default\"]\n")
    assert "Built ubuntu-22.04:latest" in pieces.ok("build", ctx)
    assert pieces.ok("run", "--rm", "ubuntu-22.04") == "entry default\n"
    assert pieces.ok("run", "--rm", "ubuntu-22.04", "given") == "entry given\n"
    assert pieces.ok("run", "--rm", "--entrypoint", "echo", "ubuntu-22.04", "other") == "other\n"
    assert pieces.names() == ["ubuntu-22.04:latest", "ubuntu:22.04"]


def test_instructions_and_run_flags(pieces, workdir, base_tarball):
    """ARG with --build-arg, USER, LABEL, EXPOSE, COPY --chown and .piecesignore, ADD of a
    local archive; run's -e, -w, -u, --hostname, -v, --read-only."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as t:
        data = b"from the archive\n"
        info = tarfile.TarInfo("inside/file.txt")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    ctx = context(workdir, f"""FROM_URL file://{base_tarball}
ARG FLAVOUR=plain
LABEL org.example.flavour=$FLAVOUR
EXPOSE 8080 53/udp
COPY --chown=app:staff data/ /srv/data/
ADD stuff.tar.gz /opt/
RUN echo "$FLAVOUR" > /flavour
USER app
CMD ["id"]
""", {"data/keep.txt": "kept\n", "data/secret.key": "hidden\n", ".piecesignore": "data/*.key\n"})
    (ctx / "stuff.tar.gz").write_bytes(archive.getvalue())
    pieces.ok("build", "-t", "full", "--build-arg", "FLAVOUR=spicy", ctx)
    ident = pieces.ok("run", "--rm", "full").split()
    assert ident[:2] == ["uid=1000(app)", "gid=1000(app)"], ident
    assert set(ident[2].removeprefix("groups=").split(",")) == {"1000(app)", "50(staff)"}, ident
    out = pieces.ok("run", "--rm", "-u", "root", "full", "sh", "-c",
                    "cat /flavour /opt/inside/file.txt; stat -c '%U:%G' /srv/data/keep.txt; ls /srv/data")
    assert out == "spicy\nfrom the archive\napp:staff\nkeep.txt\n", out
    config = json.loads(pieces.ok("inspect", "full"))["Config"]["config"]
    assert config["Labels"] == {"org.example.flavour": "spicy"}
    assert set(config["ExposedPorts"]) == {"8080/tcp", "53/udp"}
    host_dir = workdir / "shared"
    host_dir.mkdir()
    (host_dir / "in").write_text("from the host\n")
    out = pieces.ok("run", "--rm", "-u", "0:0", "-e", "A=1", "-w", "/tmp", "--hostname", "boxy", "-v", f"{host_dir}:/mnt",
                    "-v", f"{host_dir}:/ro:ro", "--read-only", "full", "sh", "-c",
                    "echo $A; pwd; hostname; cat /mnt/in; echo out > /mnt/out; touch /ro/x 2>/dev/null || echo ro-refused;"
                    " touch /etc/x 2>/dev/null || echo root-refused")
    assert out.split() == ["1", "/tmp", "boxy", "from", "the", "host", "ro-refused", "root-refused"], out
    assert (host_dir / "out").read_text() == "out\n"


def test_detached_logs_exec_stop_rm(pieces, workdir, base_tarball):
    pieces.ok("build", "-t", "bb", context(workdir, f"FROM_URL file://{base_tarball}\n"))
    cid = pieces.ok("run", "-d", "--name", "svc", "bb", "sh", "-c",
                    "echo started; echo to-stderr >&2; trap 'echo terminated; exit 3' TERM; while :; do sleep 0.1; done").strip()
    assert len(cid) == 64
    wait_for(lambda: "started" in pieces.ok("logs", "svc"), 10, "the container's first output")
    assert "svc" in pieces.ok("ps") and "running" in pieces.ok("ps")
    assert pieces.ok("exec", "svc", "sh", "-c", "echo in the container; cat /proc/1/cmdline | tr '\\0' ' '").startswith("in the container\nsh -c echo started")
    res = pieces("exec", "svc", "sh", "-c", "exit 5")
    assert res.returncode == 5, res
    removal = pieces("rm", "svc")
    assert removal.returncode != 0 and "running" in removal.stderr, removal
    pieces.ok("stop", "-t", "5", "svc")
    assert "exited (3)" in pieces.ok("ps", "-a")
    logs = pieces.ok("logs", "svc")
    assert "started" in logs and "to-stderr" in logs and "terminated" in logs, logs
    assert pieces("rmi", "bb").returncode != 0  # a container uses it
    pieces.ok("rm", "svc")
    assert pieces.ok("ps", "-a", "-q") == ""
    pieces.ok("rmi", "bb")
    assert pieces.names() == []
    assert pieces.leftovers() == []


def test_exit_status_and_rm(pieces, workdir, base_tarball):
    pieces.ok("build", "-t", "bb", context(workdir, f"FROM_URL file://{base_tarball}\n"))
    assert pieces("run", "--rm", "bb", "sh", "-c", "exit 42").returncode == 42
    assert pieces.ok("ps", "-a", "-q") == ""
    res = pieces("run", "--name", "kept", "bb", "sh", "-c", "exit 7")
    assert res.returncode == 7
    assert "exited (7)" in pieces.ok("ps", "-a")
    assert pieces("run", "--name", "kept", "bb", "true").returncode != 0  # the name is taken


@pytest.mark.parametrize("case", ["missing-piecefile", "unknown-instruction", "failing-run", "bad-digest",
                                  "unknown-base", "bad-tag"])
def test_failed_builds_leave_the_store_as_it_was(pieces, workdir, base_tarball, case):
    pieces.ok("build", "-t", "keep", context(workdir, f"FROM_URL file://{base_tarball}\n", name="base"))
    names = pieces.names()
    blobs = sorted(os.listdir(pieces.store / "blobs" / "sha256"))
    expected = {
        "missing-piecefile": ("no Piecefile", None),
        "unknown-instruction": ("Piecefile:2:", "FROM keep\nFLY away\n"),
        "failing-run": ("exited with status 3", "FROM keep\nRUN echo partial > /p; echo failing-output; exit 3\n"),
        "bad-digest": ("digest mismatch", f"FROM_URL file://{base_tarball} sha256:{'0' * 64}\n"),
        "unknown-base": ("no such image", "FROM nothere:1\n"),
        "bad-tag": ("image name", "FROM keep\n"),
    }[case]
    ctx = workdir / "ctx"
    ctx.mkdir()
    if expected[1] is not None:
        (ctx / "Piecefile").write_text(expected[1])
    args = ["build", *(["-t", "Bad Name"] if case == "bad-tag" else []), ctx]
    res = pieces(*args)
    assert res.returncode != 0, res
    err = res.stderr.strip()
    assert "\n" not in err and expected[0] in err, err
    if case == "failing-run":
        assert "failing-output" in res.stdout + res.stderr  # the step's own output is shown
    assert pieces.names() == names
    assert pieces.leftovers() == []
    if case != "failing-run":  # a failing RUN keeps the steps before it cached
        assert sorted(os.listdir(pieces.store / "blobs" / "sha256")) == blobs


def test_run_errors(pieces, workdir, base_tarball):
    pieces.ok("build", "-t", "bb", context(workdir, f"FROM_URL file://{base_tarball}\n"))
    for args, words in [(["run", "nothere"], "not in the store"),
                        (["run", "bb"], "no command"),
                        (["run", "-v", "relative:/x", "bb", "true"], "absolute"),
                        (["run", "-u", "nobody", "bb", "true"], "nobody")]:
        res = pieces(*args)
        assert res.returncode != 0 and words in res.stderr and "\n" not in res.stderr.strip(), res
    assert pieces.ok("ps", "-a", "-q") == ""
    assert pieces.leftovers() == []


def test_store_round_trips_with_skopeo(pieces, workdir, base_tarball):
    """The store is an OCI image layout: skopeo copies an image out of it and back in under
    another name, and pieces runs what came back."""
    skopeo = shutil.which("skopeo")
    if not skopeo:
        pytest.fail("skopeo is installed by scripts/install-deps.sh")
    pieces.ok("build", "-t", "out:1", context(workdir, f"FROM_URL file://{base_tarball}\nRUN echo made > /made\n"))
    elsewhere = workdir / "layout"
    subprocess.run([skopeo, "copy", f"oci:{pieces.store}:out:1", f"oci:{elsewhere}:copy"], check=True,
                   capture_output=True, timeout=120)
    assert (elsewhere / "index.json").exists()
    subprocess.run([skopeo, "copy", f"oci:{elsewhere}:copy", f"oci:{pieces.store}:back:2"], check=True,
                   capture_output=True, timeout=120)
    assert "back:2" in pieces.names()
    assert pieces.ok("run", "--rm", "back:2", "cat", "/made") == "made\n"


def test_hostile_base_tarball_writes_nothing_outside(pieces, workdir, base_tarball):
    """A FROM_URL tarball with ../ names, an absolute symlink followed by a file through it, and
    a hardlink to a host file: the build stays inside the store's layer."""
    victim = workdir / "victim"
    victim.mkdir()
    (victim / "canary").write_text("untouched\n")
    evil = workdir / "evil.tar"
    with tarfile.open(evil, "w") as t:
        def add_file(name, data=b"pwned\n"):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        add_file("../../../../../../../" + str(victim / "dotdot").lstrip("/"))
        link = tarfile.TarInfo("escape")
        link.type = tarfile.SYMTYPE
        link.linkname = str(victim)
        t.addfile(link)
        add_file("escape/through-symlink")
        hard = tarfile.TarInfo("hard")
        hard.type = tarfile.LNKTYPE
        hard.linkname = str(victim / "canary")
        t.addfile(hard)
    res = pieces("build", "-t", "evil", context(workdir, f"FROM_URL file://{evil}\n"))
    assert sorted(os.listdir(victim)) == ["canary"], res
    assert (victim / "canary").read_text() == "untouched\n"


def test_run_it_gives_a_terminal(pieces, workdir, base_tarball):
    """`pieces run --rm -it IMG sh`: the shell has a controlling terminal of the caller's size,
    reads what is typed, follows a resize, and its exit status comes back."""
    pieces.ok("build", "-t", "bb", context(workdir, f"FROM_URL file://{base_tarball}\n"))
    session = PtySession([PIECES, "--root", str(pieces.store), "run", "--rm", "-it", "bb", "sh"], rows=33, cols=101)
    try:
        session.sendline("tty; stty size")
        session.expect(r"/dev/pts/\d+")
        session.expect(r"33 101")
        session.resize(40, 120)
        time.sleep(0.3)
        session.sendline("stty size")
        session.expect(r"40 120")
        session.sendline("exit 4")
        assert session.wait() == 4
    finally:
        session.close()


def test_exec_it_gives_a_terminal(pieces, workdir, base_tarball):
    pieces.ok("build", "-t", "bb", context(workdir, f"FROM_URL file://{base_tarball}\n"))
    pieces.ok("run", "-d", "--name", "box", "bb", "sleep", "100")
    session = PtySession([PIECES, "--root", str(pieces.store), "exec", "-it", "box", "sh"], rows=30, cols=90)
    try:
        session.sendline("tty; stty size; cat /proc/1/cmdline")
        session.expect(r"/dev/pts/\d+")
        session.expect(r"30 90")
        session.expect(r"sleep")
        session.sendline("exit 3")
        assert session.wait() == 3
    finally:
        session.close()


def test_prune_removes_only_what_nothing_uses(pieces, workdir, base_tarball):
    """prune drops the build cache and the blobs and layers no name or container reaches;
    named images and a container's image survive it and still run."""
    pieces.ok("build", "-t", "kept", context(workdir, f"FROM_URL file://{base_tarball}\nRUN echo kept > /k\n", name="a"))
    pieces.ok("build", "-t", "gone", context(workdir, f"FROM_URL file://{base_tarball}\nRUN echo gone > /g\n", name="b"))
    pieces.ok("build", "-t", "used", context(workdir, f"FROM_URL file://{base_tarball}\nRUN echo used > /u\n", name="c"))
    pieces.ok("run", "--name", "user", "used", "true")
    pieces.ok("rmi", "gone")
    pieces.ok("rmi", "-f", "used")
    blobs_before = len(os.listdir(pieces.store / "blobs" / "sha256"))
    layers_before = len(os.listdir(pieces.store / "layers"))
    out = pieces.ok("prune")
    assert "build cache entries" in out, out
    assert os.listdir(pieces.store / "cache") == []
    # "gone" had one layer and two images' worth of config and manifest blobs of its own.
    assert len(os.listdir(pieces.store / "layers")) == layers_before - 1
    assert len(os.listdir(pieces.store / "blobs" / "sha256")) < blobs_before
    assert pieces.ok("run", "--rm", "kept", "cat", "/k") == "kept\n"
    # The stopped container's image has no name left, but is still there by its id.
    (record,) = (pieces.store / "containers").glob("*/record.json")
    image_id = json.loads(record.read_text())["imageId"].removeprefix("sha256:")
    assert pieces.ok("run", "--rm", image_id, "cat", "/u") == "used\n"


def test_multi_stage_copy_from(pieces, workdir, base_tarball):
    """FROM ... AS name starts a stage; COPY --from takes files out of an earlier stage (by
    name or index) or an image; the last stage is the image, and a rebuild is all cached."""
    pieces.ok("build", "-t", "tools", context(workdir, f"FROM_URL file://{base_tarball}\nRUN echo tool > /tool\n", name="t"))
    ctx = context(workdir, f"""FROM_URL file://{base_tarball} AS build
RUN mkdir -p /out && echo compiled > /out/artifact
FROM_URL file://{base_tarball}
COPY --from=build /out/artifact /usr/local/bin/
COPY --from=0 /out /copied
COPY --from=tools /tool /
CMD ["sh", "-c", "cat /usr/local/bin/artifact /copied/artifact /tool; test -e /out || echo no-out"]
""")
    pieces.ok("build", "-t", "final", ctx)
    assert pieces.ok("run", "--rm", "final") == "compiled\ncompiled\ntool\nno-out\n"
    assert "7 steps, 7 from the cache" in pieces.ok("build", "-t", "final", ctx)
    bad = context(workdir, f"FROM_URL file://{base_tarball}\nCOPY --from=nowhere /x /x\n", name="bad")
    res = pieces("build", bad)
    assert res.returncode != 0 and "--from=nowhere" in res.stderr, res
    assert pieces.leftovers() == []
