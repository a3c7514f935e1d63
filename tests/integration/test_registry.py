"""pieces pull, and FROM pulling what the store lacks, against a real registry on loopback.

Debian's docker-registry (the CNCF distribution registry) is started on 127.0.0.1 with a free
port and a storage directory of its own; images are made by `pieces build` from a busybox
rootfs tarball and pushed there by skopeo: an OCI manifest, a Docker schema2 manifest (skopeo
--format v2s2) and a multi-platform index built by hand (amd64, arm64 and an attestation-like
unknown/unknown entry). Nothing leaves the machine.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import wait_for
from pty_session import PtySession
from test_pieces import PIECES, Pieces, base_tarball, context, pieces  # noqa: F401 (base_tarball, pieces: fixtures)

REGISTRY = shutil.which("docker-registry")
SKOPEO = shutil.which("skopeo")
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(not OPENSSL, reason="needs the openssl command (certificates, token signatures)")



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """A docker-registry process serving plain http on 127.0.0.1."""

    def __init__(self, base: Path, data: Path | None = None, auth: str = "", tls: tuple[Path, Path] | None = None):
        """A registry storing under base/data, or serving another one's `data`; `auth` is the
        registry's auth: section (YAML flow form), `tls` a (certificate, key) pair."""
        self.base = base
        self.data = data or base / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        config = base / "registry.yml"
        http = f"addr: {self.host}" + (f", tls: {{certificate: {tls[0]}, key: {tls[1]}}}" if tls else "")
        config.write_text(f"""version: 0.1
log: {{level: error}}
storage: {{filesystem: {{rootdirectory: {self.data}}}}}
http: {{{http}}}
""" + (f"auth: {auth}\n" if auth else ""))
        self.log = open(base / "registry.log", "w")
        self.proc = subprocess.Popen([REGISTRY, "serve", str(config)], stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self.ready, 20, "the registry to listen")

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"docker-registry exited: {(self.base / 'registry.log').read_text()}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def push(self, source: str, name: str, *extra: str) -> None:
        subprocess.run([SKOPEO, "--insecure-policy", "copy", "-q", "--dest-tls-verify=false", *extra, source,
                        f"docker://{self.host}/{name}"], check=True, capture_output=True, text=True, timeout=120)

    def manifest(self, name: str, ref: str) -> tuple[str, bytes]:
        """(Content-Type, bytes) of a manifest as the registry serves it."""
        req = urllib.request.Request(f"http://{self.host}/v2/{name}/manifests/{ref}", headers={"Accept": ", ".join([
            "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.docker.distribution.manifest.v2+json"])})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.headers["Content-Type"], r.read()

    def blob_file(self, digest: str) -> Path:
        hexd = digest.removeprefix("sha256:")
        return self.data / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexd[:2] / hexd / "data"

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    if not REGISTRY or not SKOPEO:
        pytest.fail("docker-registry and skopeo are needed (scripts/install-deps.sh installs them)")
    reg = Registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


def source_store(d: Path, base_tarball: Path) -> Pieces:
    """A store under `d` with src:1 (two layers, ENV PLATFORM=native), as check_pulled_image
    expects it after a pull."""
    if not PIECES or not Path(PIECES).exists():
        pytest.fail("PIECES must name the built pieces binary (CTest sets it)")
    d.chmod(0o755)
    p = Pieces(d / "store")
    p.ok("build", "-t", "src:1", context(d, f"""FROM_URL file://{base_tarball}
ENV PLATFORM=native
RUN echo pulled-from-the-registry > /marker && mkdir -p /data && echo second > /data/second
CMD ["cat", "/marker"]
""", name="src"))
    return p


@pytest.fixture(scope="module")
def source(tmp_path_factory, base_tarball) -> Pieces:
    """A store with the images the tests push: src:1 (source_store) and
    two images whose top layers nothing else shares (to corrupt and truncate in the registry)."""
    d = tmp_path_factory.mktemp("source")
    p = source_store(d, base_tarball)
    # Four layers, the later ones deleting what earlier ones made (whiteouts through the registry).
    p.ok("build", "-t", "layered:1", context(d, f"""FROM_URL file://{base_tarball}
RUN mkdir -p /gone/deep && echo x > /gone/deep/f && echo keep > /keep && echo old > /replaced
RUN rm -rf /gone /bin/vi && echo new > /replaced
RUN mkdir /gone && echo again > /gone/other
""", name="layered"))
    for name in ("corrupt", "truncate"):
        p.ok("build", "-t", f"{name}:1", context(d, f"""FROM_URL file://{base_tarball}
RUN head -c 200000 /dev/urandom > /{name}.bin
""", name=name))
    yield p
    for m in open("/proc/self/mountinfo").read().splitlines():
        point = m.split()[4]
        if point.startswith(str(p.store)):
            subprocess.run(["umount", "-l", point])


def store_manifest(p: Pieces, name: str) -> dict:
    index = json.loads((p.store / "index.json").read_text())
    for m in index["manifests"]:
        if m["annotations"]["org.opencontainers.image.ref.name"] == name:
            return json.loads((p.store / "blobs" / "sha256" / m["digest"][7:]).read_text())
    raise KeyError(name)


def store_state(p: Pieces) -> tuple:
    """What a failed pull must not change: names, blobs, unpacked layers, temporary files."""
    def listing(sub: str) -> list[str]:
        path = p.store / sub
        return sorted(os.listdir(path)) if path.exists() else []
    return p.names() if (p.store / "index.json").exists() else [], listing("blobs/sha256"), listing("layers"), listing("tmp")


@pytest.fixture(scope="module")
def pushed(registry, source, tmp_path_factory) -> dict:
    """Pushes every image once; returns facts the tests compare with."""
    store = source.store
    registry.push(f"oci:{store}:src:1", "bb:1")
    registry.push(f"oci:{store}:src:1", "bb-docker:1", "--format", "v2s2")
    registry.push(f"oci:{store}:src:1", "library/alpine:3.18")
    registry.push(f"oci:{store}:layered:1", "layered-gzip:1")
    # Recompressed into a layout of its own first: pushing straight to the registry would reuse
    # the gzip blobs it already has.
    zstd_layout = tmp_path_factory.mktemp("zstd")
    subprocess.run([SKOPEO, "--insecure-policy", "copy", "-q", "--dest-compress-format", "zstd", f"oci:{store}:layered:1",
                    f"oci:{zstd_layout}:layered"], check=True, capture_output=True, timeout=120)
    registry.push(f"oci:{zstd_layout}:layered", "layered-zstd:1")
    registry.push(f"oci:{store}:corrupt:1", "corrupt:1")
    registry.push(f"oci:{store}:truncate:1", "truncate:1")

    # A multi-platform index by hand: an attestation-like unknown/unknown entry first, an arm64
    # image (another config: PLATFORM=arm64, architecture arm64) and this machine's image.
    layout = tmp_path_factory.mktemp("multi")
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (blobs / digest[7:]).write_bytes(data)
        return {"digest": digest, "size": len(data)}

    src_manifest = store_manifest(source, "src:1")
    for desc in [src_manifest["config"], *src_manifest["layers"]]:
        shutil.copy(store / "blobs" / "sha256" / desc["digest"][7:], blobs / desc["digest"][7:])
    native_bytes = json.dumps(src_manifest).encode()
    native = put(native_bytes)
    config = json.loads((store / "blobs" / "sha256" / src_manifest["config"]["digest"][7:]).read_text())
    host_arch = config["architecture"]
    other_arch = "arm64" if host_arch != "arm64" else "amd64"
    config["architecture"] = other_arch
    config["config"]["Env"] = [e for e in config["config"].get("Env", []) if not e.startswith("PLATFORM=")] + [f"PLATFORM={other_arch}"]
    other_config = put(json.dumps(config).encode())
    other_manifest = dict(src_manifest, config=dict(src_manifest["config"], **other_config))
    other = put(json.dumps(other_manifest).encode())
    statement = put(b'{"_type": "https://in-toto.io/Statement/v0.1", "predicateType": "https://slsa.dev/provenance/v0.2"}')
    empty_config = put(b"{}")
    attestation = put(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **empty_config},
        "layers": [{"mediaType": "application/vnd.in-toto+json", **statement}]}).encode())
    manifest_type = "application/vnd.oci.image.manifest.v1+json"
    index = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": manifest_type, **attestation, "platform": {"os": "unknown", "architecture": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": native["digest"]}},
        {"mediaType": manifest_type, **other, "platform": {"os": "linux", "architecture": other_arch}},
        {"mediaType": manifest_type, **native, "platform": {"os": "linux", "architecture": host_arch}},
    ]}).encode())
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", **index,
         "annotations": {"org.opencontainers.image.ref.name": "multi"}}]}))
    registry.push(f"oci:{layout}:multi", "multi:1", "--all")
    return {"host_arch": host_arch, "other_arch": other_arch, "native": native["digest"], "index": index["digest"],
            "source": store}


def check_pulled_image(p: Pieces, name: str) -> None:
    assert p.ok("run", "--rm", name) == "pulled-from-the-registry\n"
    assert p.ok("run", "--rm", name, "sh", "-c", "cat /data/second; echo $PLATFORM") == "second\nnative\n"


def test_pull_oci_manifest_and_run(pieces, registry, pushed):
    content_type, _ = registry.manifest("bb", "1")
    assert content_type == "application/vnd.oci.image.manifest.v1+json"
    name = f"{registry.host}/bb:1"
    out = pieces.ok("pull", name)
    lines = out.splitlines()
    # Not a terminal: one line per layer, then the digest and the name.
    assert sum(": pulled " in line for line in lines) == 2, out
    assert lines[-2].startswith("Digest: sha256:") and lines[-1].startswith(f"Pulled {name} (id "), out
    assert pieces.names() == [name]
    check_pulled_image(pieces, name)
    # A single-platform image is what it is: another --platform is refused.
    expect_failure(pieces, ["pull", "--platform", "linux/s390x", name], "not linux/s390x")
    # Pulling again fetches no layer.
    again = pieces.ok("pull", name)
    assert again.count(": already exists") == 2 and ": pulled " not in again, again
    assert pieces.leftovers() == []


def test_pull_docker_schema2_is_stored_as_oci(pieces, registry, pushed):
    content_type, raw = registry.manifest("bb-docker", "1")
    assert content_type == "application/vnd.docker.distribution.manifest.v2+json"
    name = f"{registry.host}/bb-docker:1"
    pieces.ok("pull", name)
    stored = store_manifest(pieces, name)
    assert stored["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert stored["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert {l["mediaType"] for l in stored["layers"]} == {"application/vnd.oci.image.layer.v1.tar+gzip"}
    # The registry's own bytes are kept beside the converted manifest.
    assert (pieces.store / "blobs" / "sha256" / hashlib.sha256(raw).hexdigest()).exists()
    check_pulled_image(pieces, name)
    # The store stays readable by skopeo.
    subprocess.run([SKOPEO, "inspect", f"oci:{pieces.store}:{name}"], check=True, capture_output=True, timeout=60)


def test_pull_by_digest_checks_it(pieces, registry, pushed):
    _, raw = registry.manifest("bb", "1")
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    out = pieces.ok("pull", f"{registry.host}/bb@{digest}")
    assert f"Digest: {digest}" in out, out
    image_id = out.split("(id ")[1].split(";")[0]
    assert len(image_id) == 64 and pieces.names() == [], out  # kept by id: a digest is no name
    assert pieces.ok("run", "--rm", image_id) == "pulled-from-the-registry\n"
    wrong = pieces("pull", f"{registry.host}/bb@sha256:{'1' * 64}")
    assert wrong.returncode != 0 and "\n" not in wrong.stderr.strip(), wrong


def test_multi_platform_index_chooses_this_machine(pieces, registry, pushed):
    content_type, raw = registry.manifest("multi", "1")
    assert content_type == "application/vnd.oci.image.index.v1+json"
    assert len(json.loads(raw)["manifests"]) == 3
    name = f"{registry.host}/multi:1"
    out = pieces.ok("pull", name)
    assert f"Digest: {pushed['index']}" in out, out
    assert store_manifest(pieces, name)["config"]["digest"] != ""
    check_pulled_image(pieces, name)
    # Another platform from the same index: its own config.
    pieces.ok("pull", "--platform", f"linux/{pushed['other_arch']}", name)
    config = json.loads(pieces.ok("inspect", name))["Config"]
    assert config["architecture"] == pushed["other_arch"]
    assert pieces.ok("run", "--rm", name, "sh", "-c", "echo $PLATFORM") == f"{pushed['other_arch']}\n"
    # No image for the platform asked for: one line naming what there is; the store unchanged.
    before = store_state(pieces)
    res = pieces("pull", "--platform", "linux/s390x", name)
    err = res.stderr.strip()
    assert res.returncode != 0 and "\n" not in err and "no image for linux/s390x" in err, res
    assert f"linux/{pushed['host_arch']}" in err and "unknown" not in err, err
    assert store_state(pieces) == before


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_layers_with_whiteouts_gzip_and_zstd(pieces, registry, pushed, compression):
    name = f"{registry.host}/layered-{compression}:1"
    out = pieces.ok("pull", name)
    assert out.count(": pulled ") == 4, out
    types = {l["mediaType"] for l in store_manifest(pieces, name)["layers"]}
    if compression == "zstd":
        assert "application/vnd.oci.image.layer.v1.tar+zstd" in types, types
    else:
        assert types == {"application/vnd.oci.image.layer.v1.tar+gzip"}, types
    out = pieces.ok("run", "--rm", name, "sh", "-c", "cat /keep /replaced; ls /gone; test -e /bin/vi || echo no-vi")
    assert out == "keep\nnew\nother\nno-vi\n", out


def test_docker_manifest_list(pieces, registry, pushed):
    """A Docker manifest list (made with the registry's own API): this machine's entry is chosen."""
    registry.push(f"oci:{pushed['source']}:src:1", "dlist:native", "--format", "v2s2")
    _, child = registry.manifest("dlist", "native")
    child_digest = "sha256:" + hashlib.sha256(child).hexdigest()
    list_type = "application/vnd.docker.distribution.manifest.list.v2+json"
    entry = {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": child_digest, "size": len(child)}
    body = json.dumps({"schemaVersion": 2, "mediaType": list_type, "manifests": [
        dict(entry, platform={"architecture": "s390x", "os": "linux"}),
        dict(entry, platform={"architecture": pushed["host_arch"], "os": "linux"})]}).encode()
    req = urllib.request.Request(f"http://{registry.host}/v2/dlist/manifests/1", data=body, method="PUT",
                                 headers={"Content-Type": list_type})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 201
    assert registry.manifest("dlist", "1")[0] == list_type
    name = f"{registry.host}/dlist:1"
    out = pieces.ok("pull", name)
    assert "Digest: sha256:" + hashlib.sha256(body).hexdigest() in out, out
    check_pulled_image(pieces, name)
    res = pieces("pull", "--platform", "linux/riscv64", name)
    assert res.returncode != 0 and "the index has linux/s390x, linux/" in res.stderr, res


def test_piecefile_from_the_registry_builds_and_runs(pieces, registry, pushed, workdir):
    ctx = context(workdir, f"FROM {registry.host}/bb:1\nRUN echo built-on-top >> /marker\n")
    out = pieces.ok("build", "-t", "ontop", ctx)
    assert ": pulled " in out, out
    assert pieces.ok("run", "--rm", "ontop") == "pulled-from-the-registry\nbuilt-on-top\n"
    assert pieces.names() == sorted([f"{registry.host}/bb:1", "ontop:latest"])


def test_docker_hub_names_through_a_mirror(pieces, registry, pushed, workdir, monkeypatch):
    """With a mirror configured for docker.io, alpine:3.18 is docker.io/library/alpine:3.18,
    fetched from the mirror (the real Docker Hub is unreachable here)."""
    config = workdir / "registries.json"
    config.write_text(json.dumps({"registries": {"docker.io": {"mirrors": [f"http://{registry.host}"]}}}))
    monkeypatch.setenv("PIECES_REGISTRIES_CONFIG", str(config))
    out = pieces.ok("pull", "alpine:3.18")
    assert out.splitlines()[-1].startswith("Pulled alpine:3.18 (id "), out
    assert pieces.names() == ["alpine:3.18"]
    check_pulled_image(pieces, "alpine:3.18")
    # FROM alpine:3.18 in a fresh store pulls through the mirror too.
    fresh = Pieces(workdir / "fresh")
    try:
        fresh.ok("build", "-t", "onalpine", context(workdir, "FROM alpine:3.18\nCMD [\"cat\", \"/data/second\"]\n"))
        assert fresh.ok("run", "--rm", "onalpine") == "second\n"
    finally:
        for c in fresh("ps", "-a", "-q").stdout.split():
            fresh("rm", "-f", c)
    # Without the mirror, Docker Hub itself is asked (and cannot be reached from here).
    monkeypatch.setenv("PIECES_REGISTRIES_CONFIG", str(workdir / "none.json"))
    res = pieces("pull", "alpine:3.17")
    assert res.returncode != 0 and "registry-1.docker.io" in res.stderr and "\n" not in res.stderr.strip(), res


def expect_failure(p: Pieces, args: list[str], words: str) -> str:
    before = store_state(p)
    res = p(*args)
    err = res.stderr.strip()
    assert res.returncode != 0 and err.count("\n") == 0 and words in err, res
    assert store_state(p) == before
    assert p.leftovers() == []
    return err


def test_unknown_tag_and_repository(pieces, registry, pushed):
    pieces.ok("pull", f"{registry.host}/bb:1")
    expect_failure(pieces, ["pull", f"{registry.host}/bb:nope"], "manifest unknown")
    expect_failure(pieces, ["pull", f"{registry.host}/nothere:1"], "unknown")
    expect_failure(pieces, ["pull", "Not/Valid"], "invalid image reference")


def test_corrupted_blob_is_caught(pieces, registry, pushed, source):
    top = store_manifest(source, "corrupt:1")["layers"][-1]
    blob = registry.blob_file(top["digest"])
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    err = expect_failure(pieces, ["pull", f"{registry.host}/corrupt:1"], "digest mismatch")
    assert top["digest"][:19] in err, err
    assert pieces.names() == []


def test_truncated_blob_is_caught(pieces, registry, pushed, source):
    top = store_manifest(source, "truncate:1")["layers"][-1]
    blob = registry.blob_file(top["digest"])
    blob.write_bytes(blob.read_bytes()[: top["size"] // 2])
    expect_failure(pieces, ["pull", f"{registry.host}/truncate:1"], "truncated")


def test_registry_down(pieces, workdir):
    port = free_port()
    err = expect_failure(pieces, ["pull", f"127.0.0.1:{port}/bb:1"], "unreachable")
    assert f"127.0.0.1:{port}" in err
    # FROM keeps its own message and adds why the pull failed.
    ctx = context(workdir, f"FROM 127.0.0.1:{port}/bb:1\n")
    err = expect_failure(pieces, ["build", ctx], "no such image in the store, and pulling it failed")
    assert "unreachable" in err


# ---- authentication and TLS: more registries serving the same storage ----

# bcrypt of "s3cret" for user "tester" (made once with `htpasswd -nbB tester s3cret`).
HTPASSWD = "tester:$2y$05$I79wetMMhrgA2J8kWOl/wOAZa7uepcF.EKya0UAn1Z1SognwlRFty\n"


@pytest.fixture
def other_registry(registry, pushed, workdir):
    """Factory: another registry process over the pushed images, with auth or TLS."""
    made: list[Registry] = []

    def make(**kw) -> Registry:
        d = workdir / f"registry{len(made)}"
        d.mkdir()
        made.append(Registry(d, data=registry.data, **kw))
        return made[-1]
    yield make
    for r in made:
        r.stop()


def auth_file(workdir: Path, host: str, creds: str) -> str:
    path = workdir / f"auth-{len(list(workdir.glob('auth-*')))}.json"
    path.write_text(json.dumps({"auths": {host: {"auth": base64.b64encode(creds.encode()).decode()}}}))
    return str(path)


def openssl(*args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["openssl", *args], input=input, capture_output=True, check=True, timeout=60).stdout


def test_basic_auth_with_htpasswd(pieces, other_registry, workdir, monkeypatch):
    (workdir / "htpasswd").write_text(HTPASSWD)
    reg = other_registry(auth=f"{{htpasswd: {{realm: pieces-test, path: {workdir / 'htpasswd'}}}}}")
    name = f"{reg.host}/bb:1"
    monkeypatch.setenv("PIECES_AUTH_FILE", str(workdir / "absent.json"))
    expect_failure(pieces, ["pull", name], "authentication required")
    monkeypatch.setenv("PIECES_AUTH_FILE", auth_file(workdir, reg.host, "tester:wrong"))
    expect_failure(pieces, ["pull", name], "authentication refused")
    monkeypatch.setenv("PIECES_AUTH_FILE", auth_file(workdir, f"http://{reg.host}/", "tester:s3cret"))
    pieces.ok("pull", name)
    check_pulled_image(pieces, name)


@needs_openssl
def test_tls_with_a_self_signed_ca(pieces, other_registry, workdir, monkeypatch):
    """https checked against the CA file the settings name; without it the certificate is refused
    (loopback would otherwise fall back to unverified https and plain http)."""
    d = workdir / "tls"
    d.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"),
            "-days", "2", "-subj", "/CN=pieces test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"),
            "-subj", "/CN=127.0.0.1")
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
            "-CAcreateserial", "-out", str(d / "server.pem"), "-days", "2", "-extfile", str(d / "ext"))
    reg = other_registry(tls=(d / "server.pem", d / "server.key"))
    name = f"{reg.host}/bb:1"
    config = workdir / "registries.json"
    monkeypatch.setenv("PIECES_REGISTRIES_CONFIG", str(config))
    config.write_text(json.dumps({"registries": {reg.host: {"insecure": False}}}))
    err = expect_failure(pieces, ["pull", name], "unreachable")
    assert "certificate" in err and f"https://{reg.host}" in err, err
    config.write_text(json.dumps({"registries": {reg.host: {"ca_file": str(d / "ca.pem"), "insecure": False}}}))
    pieces.ok("pull", name)
    check_pulled_image(pieces, name)


class TokenServer:
    """A small token server as the registry's `auth: token` delegates to: grants pull to
    anonymous callers, pull and push to tester:s3cret, refuses other credentials; signs RS256
    JWTs whose x5c certificate is the registry's rootcertbundle. Also an OAuth2 endpoint at the
    same realm: a POSTed refresh_token grant of REFRESH_TOKEN (tester's identity token) is
    answered with an access token, any other grant with 400 invalid_grant."""

    REFRESH_TOKEN = "tester-identity-token/+="

    def __init__(self, d: Path):
        self.key, self.cert = d / "token.key", d / "token.pem"
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key), "-out", str(self.cert),
                "-days", "2", "-subj", "/CN=pieces test token signer")
        self.der = base64.b64encode(openssl("x509", "-in", str(self.cert), "-outform", "DER")).decode()
        self.requests: list[dict] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                user = None
                auth = self.headers.get("Authorization", "")
                if auth:
                    user, _, password = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
                    if (user, password) != ("tester", "s3cret"):
                        self.send_response(401)
                        self.end_headers()
                        return
                server.requests.append({"service": query.get("service"), "scope": query.get("scope"), "user": user})
                body = json.dumps({"token": server.token(query["service"][0], query.get("scope", []), user or "")}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
                server.requests.append({"method": "POST", "content_type": self.headers.get("Content-Type"),
                                        "authorization": self.headers.get("Authorization"),
                                        **{k: v[0] for k, v in form.items()}})
                ok = form.get("grant_type") == ["refresh_token"] and form.get("refresh_token") == [server.REFRESH_TOKEN]
                answer = {"access_token": server.token(form["service"][0], form.get("scope", []), "tester"),
                          "expires_in": 300, "scope": form.get("scope", [""])[0]} if ok else {"error": "invalid_grant"}
                body = json.dumps(answer).encode()
                self.send_response(200 if ok else 400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def token(self, service: str, scopes: list[str], subject: str) -> str:
        """Pull for anyone; push too for tester."""
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
        access = []
        granted = ("pull", "push") if subject == "tester" else ("pull",)
        for scope in " ".join(scopes).split():
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a in granted]})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.der]}
        claims = {"iss": "pieces-test-issuer", "sub": subject, "aud": service, "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": os.urandom(8).hex(), "access": access}
        signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
        signature = openssl("dgst", "-sha256", "-sign", str(self.key), input=signing_input.encode())
        return signing_input + "." + b64(signature)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def token_registry(other_registry, workdir):
    """(TokenServer, Registry): a registry process over the pushed images whose `auth: token`
    sends clients to a TokenServer of the test."""
    tokens = TokenServer(workdir)
    try:
        yield tokens, other_registry(auth=f"{{token: {{realm: '{tokens.realm}', service: pieces-registry, "
                                          f"issuer: pieces-test-issuer, rootcertbundle: {tokens.cert}}}}}")
    finally:
        tokens.stop()


@needs_openssl
def test_bearer_tokens_from_a_token_server(pieces, token_registry, workdir, monkeypatch):
    tokens, reg = token_registry
    name = f"{reg.host}/bb:1"
    # Anonymous: a token without credentials, for the repository's pull scope.
    monkeypatch.setenv("PIECES_AUTH_FILE", str(workdir / "absent.json"))
    pieces.ok("pull", name)
    check_pulled_image(pieces, name)
    assert tokens.requests and tokens.requests[0] == {"service": ["pieces-registry"], "scope": ["repository:bb:pull"],
                                                      "user": None}, tokens.requests
    # With credentials: they go to the token server, which knows the user.
    monkeypatch.setenv("PIECES_AUTH_FILE", auth_file(workdir, reg.host, "tester:s3cret"))
    pieces.ok("pull", f"{reg.host}/bb-docker:1")
    assert tokens.requests[-1]["user"] == "tester", tokens.requests
    # Refused credentials: one line, nothing stored.
    monkeypatch.setenv("PIECES_AUTH_FILE", auth_file(workdir, reg.host, "tester:wrong"))
    expect_failure(pieces, ["pull", f"{reg.host}/multi:1"], "authentication refused by the token server")


@needs_openssl
def test_identity_token_from_dockers_config(pieces, source, token_registry, workdir, monkeypatch):
    """An `identitytoken` in Docker's config.json (what `docker login` keeps when a token server
    gives it a refresh token) is exchanged at the realm by an OAuth2 refresh_token POST, never
    sent as a password; it carries pulls and pushes. A refused token is one line, nothing stored."""
    tokens, reg = token_registry
    monkeypatch.delenv("PIECES_AUTH_FILE", raising=False)
    monkeypatch.setenv("HOME", str(workdir / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(workdir / "xdg"))
    monkeypatch.setenv("DOCKER_CONFIG", str(workdir / "docker"))
    (workdir / "docker").mkdir()
    config = workdir / "docker" / "config.json"
    # The user and (empty) password beside the token are not what counts.
    entry = {"auth": base64.b64encode(b"tester:").decode(), "identitytoken": TokenServer.REFRESH_TOKEN}
    config.write_text(json.dumps({"auths": {reg.host: entry}}))
    name = f"{reg.host}/bb:1"
    pieces.ok("pull", name)
    check_pulled_image(pieces, name)
    posted = [r for r in tokens.requests if r.get("method") == "POST"]
    assert posted == [{"method": "POST", "content_type": "application/x-www-form-urlencoded", "authorization": None,
                       "grant_type": "refresh_token", "client_id": "pieces", "refresh_token": TokenServer.REFRESH_TOKEN,
                       "service": "pieces-registry", "scope": "repository:bb:pull"}], tokens.requests
    assert len(posted) == len(tokens.requests), "a GET with the token as a password"

    # Push needs tester's rights: anonymous would get pull only.
    tokens.requests.clear()
    source.ok("push", "src:1", f"{reg.host}/idtoken:1")
    assert [r["scope"] for r in tokens.requests] == ["repository:idtoken:pull,push"], tokens.requests
    pieces.ok("pull", f"{reg.host}/idtoken:1")

    entry["identitytoken"] = "revoked"
    config.write_text(json.dumps({"auths": {reg.host: entry}}))
    expect_failure(pieces, ["pull", f"{reg.host}/multi:1"], "authentication refused by the token server")


@needs_openssl
def test_identity_token_refused_where_basic_auth_is_asked(pieces, other_registry, workdir, monkeypatch):
    (workdir / "htpasswd").write_text(HTPASSWD)
    reg = other_registry(auth=f"{{htpasswd: {{realm: pieces-test, path: {workdir / 'htpasswd'}}}}}")
    path = workdir / "idtoken.json"
    path.write_text(json.dumps({"auths": {reg.host: {"identitytoken": TokenServer.REFRESH_TOKEN}}}))
    monkeypatch.setenv("PIECES_AUTH_FILE", str(path))
    err = expect_failure(pieces, ["pull", f"{reg.host}/bb:1"], "identity token")
    assert "Basic authentication" in err, err


def serve(handler_class) -> tuple[http.server.ThreadingHTTPServer, int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, httpd.server_address[1]


def relay(handler: http.server.BaseHTTPRequestHandler, upstream: str) -> None:
    """Answers a GET with what `upstream` answers to it."""
    headers = {k: v for k, v in handler.headers.items() if k in ("Accept", "Authorization")}
    try:
        with urllib.request.urlopen(urllib.request.Request(f"http://{upstream}{handler.path}", headers=headers)) as r:
            status, reply, body = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, reply, body = e.code, e.headers, e.read()
    handler.send_response(status)
    for k in ("Content-Type", "Docker-Content-Digest", "WWW-Authenticate"):
        if reply.get(k):
            handler.send_header(k, reply[k])
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def test_a_broken_download_resumes_with_range(pieces, registry, pushed, workdir):
    """A front breaks off each blob download halfway the first time; the pull resumes each from
    where it stopped (Range) and the image is intact."""
    ranges: dict[str, list[str | None]] = {}

    class Flaky(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if "/blobs/" not in self.path:
                relay(self, registry.host)
                return
            digest = self.path.rsplit("/", 1)[1]
            data = registry.blob_file(digest).read_bytes()
            asked = self.headers.get("Range")
            ranges.setdefault(digest, []).append(asked)
            if asked is None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True  # broken off: fewer bytes than announced
                return
            start = int(asked.removeprefix("bytes=").rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            self.wfile.write(data[start:])

        def log_message(self, *args):
            pass

    front, port = serve(Flaky)
    try:
        name = f"127.0.0.1:{port}/bb:1"
        pieces.ok("pull", name)
        check_pulled_image(pieces, name)
        layers = [l["digest"] for l in store_manifest(pieces, name)["layers"]]
        for digest in layers:
            half = registry.blob_file(digest).stat().st_size // 2
            assert ranges[digest] == [None, f"bytes={half}-"], ranges
    finally:
        front.shutdown()


def test_layers_are_unpacked_while_they_download(pieces, registry, pushed):
    """A front holds back the last tenth of the base layer until the files from its first part
    are on disk in the store: only a pull that unpacks as it downloads gets past that."""
    unpacked_early: list[bool] = []

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if "/blobs/" not in self.path:
                relay(self, registry.host)
                return
            data = registry.blob_file(self.path.rsplit("/", 1)[1]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if len(data) < 100_000:
                self.wfile.write(data)
                return
            cut = len(data) * 9 // 10
            self.wfile.write(data[:cut])
            self.wfile.flush()
            seen = False
            deadline = time.monotonic() + 15
            while not seen and time.monotonic() < deadline:
                seen = any((d / "bin" / "busybox").exists() for d in (pieces.store / "tmp").glob("layer-*"))
                time.sleep(0.05)
            unpacked_early.append(seen)
            self.wfile.write(data[cut:])

        def log_message(self, *args):
            pass

    front, port = serve(Slow)
    try:
        name = f"127.0.0.1:{port}/bb:1"
        pieces.ok("pull", name)
        check_pulled_image(pieces, name)
        assert unpacked_early == [True]
    finally:
        front.shutdown()


def test_credentials_are_not_sent_to_a_redirect_on_another_host(pieces, other_registry, registry, workdir, monkeypatch):
    """A front for an htpasswd registry redirects blob downloads to another origin (as registries
    redirect to object storage): the blobs arrive, and no Authorization header goes there."""
    (workdir / "htpasswd").write_text(HTPASSWD)
    reg = other_registry(auth=f"{{htpasswd: {{realm: pieces-test, path: {workdir / 'htpasswd'}}}}}")
    seen: list[str | None] = []

    class Storage(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            data = registry.blob_file(self.path.rsplit("/", 1)[1]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    storage, storage_port = serve(Storage)

    class Front(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if "/blobs/" in self.path:
                self.send_response(307)
                self.send_header("Location", f"http://localhost:{storage_port}/data/{self.path.rsplit('/', 1)[1]}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            relay(self, reg.host)

        def log_message(self, *args):
            pass

    front, front_port = serve(Front)
    try:
        monkeypatch.setenv("PIECES_AUTH_FILE", auth_file(workdir, f"127.0.0.1:{front_port}", "tester:s3cret"))
        name = f"127.0.0.1:{front_port}/bb:1"
        pieces.ok("pull", name)
        check_pulled_image(pieces, name)
        assert len(seen) == 3 and seen == [None, None, None], seen  # the config and two layers, no credentials
    finally:
        front.shutdown()
        storage.shutdown()


def test_a_mirror_gets_its_own_credentials_not_docker_hubs(pieces, other_registry, workdir, monkeypatch):
    (workdir / "htpasswd").write_text(HTPASSWD)
    mirror = other_registry(auth=f"{{htpasswd: {{realm: pieces-test, path: {workdir / 'htpasswd'}}}}}")
    config = workdir / "registries.json"
    config.write_text(json.dumps({"registries": {"docker.io": {"mirrors": [f"http://{mirror.host}"]}}}))
    monkeypatch.setenv("PIECES_REGISTRIES_CONFIG", str(config))
    monkeypatch.setenv("PIECES_AUTH_FILE", auth_file(workdir, "https://index.docker.io/v1/", "tester:s3cret"))
    err = expect_failure(pieces, ["pull", "alpine:3.18"], "authentication required")
    assert f"required by {mirror.host}" in err, err
    monkeypatch.setenv("PIECES_AUTH_FILE", auth_file(workdir, mirror.host, "tester:s3cret"))
    pieces.ok("pull", "alpine:3.18")
    check_pulled_image(pieces, "alpine:3.18")


def test_progress_rows_on_a_terminal(pieces, registry, pushed):
    """On a terminal each layer has a row redrawn in place (a bar while it downloads, then what
    happened); piped output has plain lines and no terminal control codes."""
    name = f"{registry.host}/layered-gzip:1"
    session = PtySession([PIECES, "--root", str(pieces.store), "pull", name])
    try:
        assert session.wait(60) == 0, session.text()
    finally:
        session.close()
    shown = session.shown.decode(errors="replace")
    layers = [l["digest"][7:19] for l in store_manifest(pieces, name)["layers"]]
    assert "\x1b[K" in shown and "\x1b[4A" in shown, shown  # rows cleared and redrawn: 4 layers
    for layer in layers:
        assert f"{layer}: [" in shown and f"{layer}: pulled " in shown, shown
    piped = pieces.ok("pull", f"{registry.host}/bb:1")
    assert "\x1b" not in piped and "[" not in piped, piped


# ---- push, login, logout ----

def store_digest(p: Pieces, name: str) -> str:
    index = json.loads((p.store / "index.json").read_text())
    return next(m["digest"] for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == name)


def registry_has(reg: Registry, name: str, tag: str) -> bool:
    try:
        reg.manifest(name, tag)
        return True
    except urllib.error.HTTPError as e:
        assert e.code == 404, e
        return False


def test_push_then_pull_back_and_run(pieces, registry, pushed, source, workdir):
    """An image built here is pushed (its blobs uploaded, then its manifest as stored, so the
    digest is kept), pulled back into another store and run; skopeo reads what was pushed."""
    name = f"{registry.host}/pushed:1"
    digest = store_digest(source, "src:1")
    out = source.ok("push", "src:1", name)
    lines = out.splitlines()
    assert lines[-2:] == [f"Digest: {digest}", f"Pushed {name}"], out
    assert out.count(": pushed ") == 3, out  # the config and two layers: this repository had none
    content_type, raw = registry.manifest("pushed", "1")
    assert content_type == "application/vnd.oci.image.manifest.v1+json"
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    assert raw == (source.store / "blobs" / "sha256" / digest[7:]).read_bytes()

    pieces.ok("pull", name)
    assert store_digest(pieces, name) == digest
    check_pulled_image(pieces, name)
    # Again: the registry has every blob of this repository, so nothing is uploaded.
    again = source.ok("push", "src:1", name)
    assert again.count(": already exists") == 3 and ": pushed " not in again, again

    inspected = json.loads(subprocess.run([SKOPEO, "inspect", "--tls-verify=false", f"docker://{name}"], check=True,
                                          capture_output=True, text=True, timeout=60).stdout)
    assert inspected["Digest"] == digest and inspected["Layers"] == [l["digest"] for l in store_manifest(source, "src:1")["layers"]]
    copy = workdir / "copied"
    subprocess.run([SKOPEO, "--insecure-policy", "copy", "-q", "--src-tls-verify=false", f"docker://{name}", f"oci:{copy}:x"],
                   check=True, capture_output=True, timeout=120)
    layers = [l["digest"] for l in store_manifest(source, "src:1")["layers"]]
    copied = json.loads((copy / "index.json").read_text())["manifests"][0]["digest"]
    assert copied == digest
    assert [l["digest"] for l in json.loads((copy / "blobs" / "sha256" / copied[7:]).read_text())["layers"]] == layers


@pytest.mark.parametrize("remembers", [True, False], ids=["status-known", "status-lost"])
def test_a_broken_upload_is_resumed_or_sent_again(pieces, registry, pushed, source, remembers):
    """A front passes on only the first half of each blob's first PATCH to the registry and
    then drops the connection without an answer.

    status-known: the front keeps the Location the registry gave for that half (as registries
    that hold an upload's state themselves do), so the upload's status says how much arrived:
    the push sends the rest with a Content-Range from exactly there.
    status-lost: plain relaying; docker-registry's upload URL carries a state that is stale
    after the lost answer and its status request fails, so the push starts a new upload and
    sends the whole blob again. Either way the image pulls back intact."""
    import http.client

    patches: list[tuple[str, str | None, int]] = []  # (upload, Content-Range, bytes passed on)
    cut_sizes: set[int] = set()
    fresh: dict[str, str] = {}  # upload -> the registry's Location after the half that arrived

    class Breaking(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def forward(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            upload = urllib.parse.urlsplit(self.path).path
            target = self.path
            if remembers and upload in fresh and self.command in ("GET", "PATCH"):
                target = fresh[upload]
            cut = False
            if self.command == "PATCH":
                cut = self.headers.get("Content-Range") is None and len(body) not in cut_sizes and len(body) > 1
                if cut:
                    cut_sizes.add(len(body))
                    body = body[: len(body) // 2]
                patches.append((upload, self.headers.get("Content-Range"), len(body)))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "expect")}
            headers["Content-Length"] = str(len(body))
            conn = http.client.HTTPConnection(registry.host, timeout=60)
            conn.request(self.command, target, body=body, headers=headers)
            r = conn.getresponse()
            reply = r.read()
            conn.close()
            if cut:
                # What arrived stays with the registry; the client hears nothing.
                fresh[upload] = urllib.parse.urlsplit(r.getheader("Location")).path + "?" + \
                    urllib.parse.urlsplit(r.getheader("Location")).query
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() in ("content-length", "connection", "transfer-encoding"):
                    continue
                self.send_header(k, v.replace(f"http://{registry.host}", f"http://127.0.0.1:{port}"))
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply)

        do_GET = do_HEAD = do_POST = do_PATCH = do_PUT = forward

        def log_message(self, *args):
            pass

    front, port = serve(Breaking)
    repo = f"resumed-{'known' if remembers else 'lost'}"
    try:
        name = f"127.0.0.1:{port}/{repo}:1"
        digest = store_digest(source, "src:1")
        out = source.ok("push", "src:1", name)
        assert out.count(": pushed ") == 3 and f"Digest: {digest}" in out, out
    finally:
        front.shutdown()
    manifest = store_manifest(source, "src:1")
    sizes = sorted(b["size"] for b in [manifest["config"], *manifest["layers"]])
    uploads: dict[str, list] = {}
    for upload, content_range, n in patches:
        uploads.setdefault(upload, []).append((content_range, n))
    assert len(cut_sizes) == 3, patches
    if remembers:
        # Per blob, one upload: half, then the rest from exactly where the registry had got to.
        assert sorted(sum(n for _, n in u) for u in uploads.values()) == sizes, patches
        for u in uploads.values():
            (first_range, half), (rest_range, rest) = u
            assert first_range is None and rest_range == f"{half}-{half + rest - 1}", u
    else:
        # Per blob, a broken upload with half and a new one with everything.
        assert sorted(u for u in uploads.values()) == sorted([[(None, n // 2)] for n in sizes] + [[(None, n)] for n in sizes])
    pieces.ok("pull", f"{registry.host}/{repo}:1")
    assert store_digest(pieces, f"{registry.host}/{repo}:1") == digest
    check_pulled_image(pieces, f"{registry.host}/{repo}:1")


def test_push_mounts_blobs_another_repository_has(pieces, registry, pushed):
    """Pushed to another repository of the registry the image came from: every blob is mounted
    from there, none uploaded. Without a destination, the image's own name is where it goes."""
    pieces.ok("pull", f"{registry.host}/bb:1")
    out = pieces.ok("push", f"{registry.host}/bb:1", f"{registry.host}/mounted:1")
    assert out.count(": mounted from bb") == 3 and ": pushed " not in out, out
    digest = store_digest(pieces, f"{registry.host}/bb:1")
    assert "sha256:" + hashlib.sha256(registry.manifest("mounted", "1")[1]).hexdigest() == digest
    pieces.ok("tag", f"{registry.host}/bb:1", f"{registry.host}/own:2")
    out = pieces.ok("push", f"{registry.host}/own:2")
    assert out.splitlines()[-1] == f"Pushed {registry.host}/own:2", out
    assert "sha256:" + hashlib.sha256(registry.manifest("own", "2")[1]).hexdigest() == digest


def test_push_errors(pieces, registry, pushed):
    pieces.ok("pull", f"{registry.host}/bb:1")
    pieces.ok("tag", f"{registry.host}/bb:1", "local-only:1")
    err = expect_failure(pieces, ["push", "local-only:1"], "names no registry")
    assert "pieces push local-only:1 HOST[:PORT]/NAME[:TAG]" in err, err
    expect_failure(pieces, ["push", "absent:1", f"{registry.host}/absent:1"], 'no image "absent:1" in the store')
    assert not registry_has(registry, "absent", "1")
    expect_failure(pieces, ["push", "local-only:1", f"127.0.0.1:{free_port()}/x:1"], "unreachable")


def test_push_refused_without_credentials(source, other_registry, registry, workdir, monkeypatch):
    """An htpasswd registry: without credentials the push is one line and nothing changes, in the
    store or in the registry; with them (Basic) it goes through."""
    (workdir / "htpasswd").write_text(HTPASSWD)
    reg = other_registry(auth=f"{{htpasswd: {{realm: pieces-test, path: {workdir / 'htpasswd'}}}}}")
    name = f"{reg.host}/refused:1"
    monkeypatch.setenv("PIECES_AUTH_FILE", str(workdir / "absent.json"))
    err = expect_failure(source, ["push", "src:1", name], "authentication required by")
    assert err.startswith(f"pieces: push {name}: "), err
    assert not registry_has(registry, "refused", "1")
    monkeypatch.setenv("PIECES_AUTH_FILE", auth_file(workdir, reg.host, "tester:s3cret"))
    source.ok("push", "src:1", name)
    assert registry_has(registry, "refused", "1")


@needs_openssl
def test_push_through_a_token_server(pieces, source, token_registry, registry, workdir, monkeypatch):
    """The token asked for names the push scope; anonymous callers get pull only, and the push
    is refused. One token serves every request of a push."""
    tokens, reg = token_registry
    name = f"{reg.host}/tokpush:1"
    monkeypatch.setenv("PIECES_AUTH_FILE", str(workdir / "absent.json"))
    expect_failure(source, ["push", "src:1", name], "authentication refused")
    assert not registry_has(registry, "tokpush", "1")
    assert tokens.requests[0]["scope"] == ["repository:tokpush:pull,push"], tokens.requests

    monkeypatch.setenv("PIECES_AUTH_FILE", auth_file(workdir, reg.host, "tester:s3cret"))
    tokens.requests.clear()
    out = source.ok("push", "src:1", name)
    assert out.count(": pushed ") + out.count(": already exists") == 3, out
    assert tokens.requests == [{"service": ["pieces-registry"], "scope": ["repository:tokpush:pull,push"], "user": "tester"}]
    pieces.ok("pull", name)
    check_pulled_image(pieces, name)


def test_login_logout_and_pull_with_what_login_stored(pieces, other_registry, workdir, monkeypatch):
    """login checks the password before it writes anything; then the auth file at its default
    place (0600, other entries kept) is what pull uses; logout takes the entry out again."""
    (workdir / "htpasswd").write_text(HTPASSWD)
    reg = other_registry(auth=f"{{htpasswd: {{realm: pieces-test, path: {workdir / 'htpasswd'}}}}}")
    home = workdir / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("PIECES_AUTH_FILE", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    auth = home / ".config" / "pieces" / "auth.json"
    auth.parent.mkdir(parents=True)
    auth.write_text(json.dumps({"auths": {"other.example": {"auth": base64.b64encode(b"other:pw").decode()}}}))
    before = auth.read_bytes()

    res = pieces("login", "-u", "tester", "-p", "wrong", reg.host)
    err = res.stderr.strip()
    assert res.returncode != 0 and "\n" not in err and "authentication refused" in err, res
    assert auth.read_bytes() == before and sorted(os.listdir(auth.parent)) == ["auth.json"]
    expect_failure(pieces, ["pull", f"{reg.host}/bb:1"], "authentication required")

    out = pieces.ok("login", "-u", "tester", "--password-stdin", reg.host, input="s3cret\n")
    assert reg.host in out, out
    assert auth.stat().st_mode & 0o777 == 0o600
    auths = json.loads(auth.read_text())["auths"]
    assert auths == {"other.example": {"auth": base64.b64encode(b"other:pw").decode()},
                     reg.host: {"auth": base64.b64encode(b"tester:s3cret").decode()}}, auths
    pieces.ok("pull", f"{reg.host}/bb:1")
    check_pulled_image(pieces, f"{reg.host}/bb:1")

    pieces.ok("logout", reg.host)
    assert json.loads(auth.read_text())["auths"] == {"other.example": {"auth": base64.b64encode(b"other:pw").decode()}}
    expect_failure(pieces, ["pull", f"{reg.host}/bb:1"], "authentication required")
    res = pieces("logout", reg.host)
    assert res.returncode != 0 and "not logged in" in res.stderr and "\n" not in res.stderr.strip(), res


@needs_openssl
def test_login_through_a_token_server(pieces, source, token_registry, workdir, monkeypatch):
    """The token flow checks the credentials (refused: nothing written); what login stored is
    then good for a push, which needs the user's push grant."""
    tokens, reg = token_registry
    auth = workdir / "login-auth.json"
    monkeypatch.setenv("PIECES_AUTH_FILE", str(auth))
    res = pieces("login", "-u", "tester", "-p", "wrong", reg.host)
    assert res.returncode != 0 and "authentication refused by the token server" in res.stderr, res
    assert not auth.exists()
    pieces.ok("login", "-u", "tester", "-p", "s3cret", reg.host)
    assert tokens.requests[-1] == {"service": ["pieces-registry"], "scope": None, "user": "tester"}, tokens.requests
    source.ok("push", "src:1", f"{reg.host}/after-login:1")
    assert tokens.requests[-1]["user"] == "tester"
