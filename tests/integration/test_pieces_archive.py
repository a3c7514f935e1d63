"""pieces save and load: images out of the store as one tar (an OCI layout, or what `docker load`
reads) and back in, checked against skopeo and a private dockerd; a damaged archive changes nothing.

The real binary, as root, with stores in temporary directories; the image is built from the busybox
rootfs tarball of test_pieces.py (nothing is downloaded)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from conftest import mountinfo
from docker_daemon import IMAGE as DOCKER_TEST_IMAGE, docker_daemon
from test_pieces import PIECES, Pieces, base_tarball, context, pieces  # noqa: F401  (fixtures)

SKOPEO = shutil.which("skopeo")


@pytest.fixture
def fresh(workdir) -> Pieces:
    """A second, empty store to load into."""
    p = Pieces(workdir / "fresh")
    p.ok("images")  # makes the layout, so "unchanged" has something to compare with
    yield p
    for m in mountinfo():
        if m.point.startswith(str(p.store)):
            subprocess.run(["umount", "-l", m.point])


@pytest.fixture
def built(pieces, workdir, base_tarball) -> str:
    """An image with two names whose Cmd prints what its RUN step wrote."""
    pieces.ok("build", "-t", "arch:1", context(workdir, f"""FROM_URL file://{base_tarball}
RUN echo made by the build > /made
CMD ["cat", "/made"]
""", name="built"))
    pieces.ok("tag", "arch:1", "other/name:2")
    return "arch:1"


def need_skopeo() -> str:
    if not SKOPEO:
        pytest.fail("skopeo is installed by scripts/install-deps.sh")
    return SKOPEO


def skopeo(*args) -> None:
    res = subprocess.run([need_skopeo(), *map(str, args)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"skopeo {' '.join(map(str, args))}: {res.stderr}"


def manifest_of(p: Pieces, name: str) -> str:
    return json.loads(p.ok("inspect", name))["Id"]


def state(p: Pieces) -> tuple:
    """What a failed load must not change: the blobs, the names, and nothing left in tmp/."""
    blobs = sorted(os.listdir(p.store / "blobs" / "sha256"))
    return blobs, (p.store / "index.json").read_text(), sorted(os.listdir(p.store / "tmp"))


def load(p: Pieces, archive: Path) -> subprocess.CompletedProcess:
    with open(archive, "rb") as f:
        return subprocess.run([PIECES, "--root", str(p.store), "load"], stdin=f, capture_output=True, text=True, timeout=120)


def test_save_load_round_trip(pieces, fresh, built, workdir):
    """save -o and save to a pipe give the same OCI archive; loading it into another store gives the
    same manifests under the same names, and the image runs there."""
    archive = workdir / "images.tar"
    pieces.ok("save", "-o", archive, built, "other/name:2")
    with open(workdir / "piped.tar", "wb") as out:
        subprocess.run([PIECES, "--root", str(pieces.store), "save", built, "other/name:2"], stdout=out, check=True, timeout=120)
    assert (workdir / "piped.tar").read_bytes() == archive.read_bytes()

    # The archive is an OCI layout whose blobs are what their names say.
    with tarfile.open(archive) as t:
        names = t.getnames()
        assert "oci-layout" in names and "index.json" in names
        index = json.load(t.extractfile("index.json"))
        refs = sorted(m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"])
        assert refs == ["arch:1", "other/name:2"]
        blobs = [n for n in names if n.startswith("blobs/sha256/") and t.getmember(n).isfile()]
        assert len(blobs) >= 3
        for n in blobs:
            assert hashlib.sha256(t.extractfile(n).read()).hexdigest() == n.rsplit("/", 1)[1]

    out = load(fresh, archive)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "Loaded image: arch:1\nLoaded image: other/name:2\n"
    assert fresh.names() == ["arch:1", "other/name:2"]
    assert manifest_of(fresh, "arch:1") == manifest_of(pieces, "arch:1") == manifest_of(fresh, "other/name:2")
    assert fresh.ok("run", "--rm", "other/name:2") == "made by the build\n"
    assert fresh.leftovers() == []
    # Loading the same archive again changes nothing but says so again.
    before = state(fresh)
    assert fresh.ok("load", "-i", archive) == "Loaded image: arch:1\nLoaded image: other/name:2\n"
    assert state(fresh) == before


def test_save_piped_into_load_of_the_same_store(pieces, built):
    """`pieces save IMG | pieces load` on one store, as `docker save | docker load` works: load
    reads under a shared lock, beside save's, and takes the store only to commit."""
    pipe = subprocess.run(f"{PIECES} --root {pieces.store} save {built} | {PIECES} --root {pieces.store} load",
                          shell=True, capture_output=True, text=True, timeout=60)
    assert pipe.returncode == 0, pipe.stderr
    assert pipe.stdout == f"Loaded image: {built}\n"
    assert pieces.leftovers() == []


def test_save_by_id_and_refusals(pieces, built, workdir):
    """An image saved by id goes unnamed; an unknown image, an unknown format and a terminal as
    stdout are refused, and -o leaves no file behind then."""
    image_id = manifest_of(pieces, built)
    archive = workdir / "by-id.tar"
    pieces.ok("save", "-o", archive, image_id[7:19])
    with tarfile.open(archive) as t:
        index = json.load(t.extractfile("index.json"))
    assert [m["digest"] for m in index["manifests"]] == [image_id]
    assert "annotations" not in index["manifests"][0]

    missing = pieces("save", "-o", workdir / "none.tar", "nosuch:1")
    assert missing.returncode != 0 and "no image \"nosuch:1\"" in missing.stderr
    bad = pieces("save", "--format", "zip", "-o", workdir / "none.tar", built)
    assert bad.returncode != 0 and "oci-archive or docker-archive" in bad.stderr
    assert not (workdir / "none.tar").exists() and list(workdir.glob("none.tar*")) == []

    leader, follower = os.openpty()
    try:
        res = subprocess.run([PIECES, "--root", str(pieces.store), "save", built], stdout=follower, stderr=subprocess.PIPE,
                             text=True, timeout=60)
    finally:
        os.close(follower)
        os.close(leader)
    assert res.returncode != 0 and "terminal" in res.stderr, res.stderr


def test_oci_archive_with_skopeo(pieces, fresh, built, workdir):
    """skopeo reads what pieces saves, and pieces loads what skopeo writes."""
    archive = workdir / "pieces.tar"
    pieces.ok("save", "-o", archive, built)
    skopeo("copy", f"oci-archive:{archive}:arch:1", f"oci:{workdir / 'layout'}:x")
    assert json.loads((workdir / "layout" / "index.json").read_text())["manifests"][0]["digest"] == manifest_of(pieces, built)

    theirs = workdir / "skopeo.tar"
    skopeo("copy", f"oci:{pieces.store}:arch:1", f"oci-archive:{theirs}:from-skopeo:3")
    assert fresh.ok("load", "-i", theirs) == "Loaded image: from-skopeo:3\n"
    assert fresh.names() == ["from-skopeo:3"]
    assert fresh.ok("run", "--rm", "from-skopeo:3") == "made by the build\n"


def test_docker_archive_with_skopeo(pieces, fresh, built, workdir):
    """skopeo reads pieces' docker archive; skopeo's docker archive (uncompressed layers, names in
    docker.io/ form) loads into pieces, converted to OCI, under its short name."""
    archive = workdir / "docker.tar"
    pieces.ok("save", "--format", "docker-archive", "-o", archive, built)
    with tarfile.open(archive) as t:
        manifest = json.load(t.extractfile("manifest.json"))
        assert "repositories" in t.getnames()
        layer = t.extractfile(manifest[0]["Layers"][0]).read()
        config = json.load(t.extractfile(manifest[0]["Config"]))
    assert manifest[0]["RepoTags"] == ["arch:1"]
    assert f"sha256:{hashlib.sha256(layer).hexdigest()}" == config["rootfs"]["diff_ids"][0]  # uncompressed tars
    skopeo("copy", f"docker-archive:{archive}:arch:1", f"oci:{workdir / 'layout'}:x")

    theirs = workdir / "skopeo-docker.tar"
    skopeo("copy", f"oci:{pieces.store}:arch:1", f"docker-archive:{theirs}:sko/name:4")
    assert fresh.ok("load", "-i", theirs) == "Loaded image: sko/name:4\n"
    loaded = json.loads(fresh.ok("inspect", "sko/name:4"))
    ours = json.loads(pieces.ok("inspect", built))
    assert [layer["mediaType"] for layer in loaded["Manifest"]["layers"]] == ["application/vnd.oci.image.layer.v1.tar"] * len(
        ours["Manifest"]["layers"])
    assert loaded["Config"]["rootfs"] == ours["Config"]["rootfs"]
    assert fresh.ok("run", "--rm", "sko/name:4") == "made by the build\n"


@pytest.fixture(scope="module")
def docker(runtime_binary, tmp_path_factory):
    """A private dockerd with no bridge network, puncker as a runtime."""
    base = tmp_path_factory.mktemp("dockerd")
    with docker_daemon(base, runtime_binary, "--bridge=none", "--iptables=false", "--ip-masq=false") as client:
        yield client


def test_docker_archive_with_dockerd(pieces, fresh, built, workdir, docker):
    """docker load reads pieces' docker archive and runs the image; docker save's archive loads
    into pieces (same config digest as Docker's image id) and runs."""
    archive = workdir / "for-docker.tar"
    pieces.ok("save", "--format", "docker-archive", "-o", archive, built, "other/name:2")
    loaded = docker.ok("load", "-i", archive)
    assert "Loaded image: arch:1" in loaded and "Loaded image: other/name:2" in loaded, loaded
    config_digest = json.loads(pieces.ok("inspect", built))["Manifest"]["config"]["digest"]
    assert docker.inspect("arch:1", "{{.Id}}") == config_digest
    assert docker.ok("run", "--rm", "--runtime=puncker", "--network=none", "other/name:2") == "made by the build"

    saved = workdir / "from-docker.tar"
    docker.ok("save", "-o", saved, DOCKER_TEST_IMAGE, "arch:1", timeout=120)
    out = fresh.ok("load", "-i", saved)
    assert sorted(out.splitlines()) == sorted([f"Loaded image: {DOCKER_TEST_IMAGE}", "Loaded image: arch:1"]), out
    assert json.loads(fresh.ok("inspect", "arch:1"))["Manifest"]["config"]["digest"] == config_digest
    assert fresh.ok("run", "--rm", "arch:1") == "made by the build\n"
    assert fresh.ok("run", "--rm", DOCKER_TEST_IMAGE, "sh", "-c", "echo from the docker image") == "from the docker image\n"


def flip_byte_in_largest(archive: Path, prefix: str = "") -> str:
    """Flips one byte in the middle of the archive's largest file (a layer); returns its name."""
    with tarfile.open(archive) as t:
        member = max((m for m in t.getmembers() if m.isfile() and m.name.startswith(prefix)), key=lambda m: m.size)
    with open(archive, "r+b") as f:
        f.seek(member.offset_data + member.size // 2)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 0xFF]))
    return member.name


@pytest.mark.parametrize("fmt", ["oci-archive", "docker-archive"])
def test_corrupted_layer_changes_nothing(pieces, fresh, built, workdir, fmt):
    archive = workdir / "corrupt.tar"
    pieces.ok("save", "--format", fmt, "-o", archive, built)
    flip_byte_in_largest(archive)
    before = state(fresh)
    res = load(fresh, archive)
    assert res.returncode != 0 and "digest mismatch" in res.stderr, res
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert res.stdout == ""
    assert state(fresh) == before


def test_damaged_archives_change_nothing(pieces, fresh, built, workdir):
    """A truncated archive, bytes that are not a tar, a tar without a manifest, and a layout missing
    a blob: one clear line each, the store as it was."""
    good = workdir / "good.tar"
    pieces.ok("save", "-o", good, built)
    data = good.read_bytes()
    cases = {}
    (workdir / "truncated.tar").write_bytes(data[: len(data) * 2 // 3])
    cases["truncated.tar"] = "truncated"
    (workdir / "garbage.tar").write_bytes(os.urandom(4096))
    cases["garbage.tar"] = "not a tar archive"
    with tarfile.open(workdir / "empty.tar", "w") as t:
        info = tarfile.TarInfo("hello.txt")
        t.addfile(info)
    cases["empty.tar"] = "no image manifest"
    with tarfile.open(good) as src, tarfile.open(workdir / "missing.tar", "w") as dst:
        layer = max((m for m in src.getmembers() if m.isfile()), key=lambda m: m.size)
        for m in src.getmembers():
            if m.name != layer.name:
                dst.addfile(m, src.extractfile(m) if m.isfile() else None)
    cases["missing.tar"] = "missing blob " + layer.name.replace("blobs/sha256/", "sha256:")

    before = state(fresh)
    for name, expected in cases.items():
        res = load(fresh, workdir / name)
        assert res.returncode != 0 and expected in res.stderr.lower(), (name, res)
        assert len(res.stderr.strip().splitlines()) == 1, (name, res.stderr)
        assert state(fresh) == before, name
    # The same archive, whole, still loads: nothing of the failures was in the way.
    assert fresh.ok("load", "-i", good) == "Loaded image: arch:1\n"
