"""Container images for the client tests (Docker, containerd, podman), made offline.

No registry is reachable, so the tests build their image from Debian's busybox-static and
our static probe: build_rootfs() lays out the root filesystem, rootfs_tar() packs it as one
layer, and write_docker_archive() wraps that layer in the `docker save` archive format,
which `docker load`, `ctr images import` and `podman load` all read.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from conftest import BUSYBOX, GROUP, PASSWD

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def probe_binary() -> str:
    """The static probe program (tests/probe), named by $PIECES_PROBE."""
    probe = os.environ.get("PIECES_PROBE", "")
    if not probe or not Path(probe).exists():
        raise RuntimeError("PIECES_PROBE must name the built tests/probe binary (CTest sets it)")
    return probe


def build_rootfs(root: Path) -> Path:
    """A busybox root filesystem with /bin/probe, users root/app/nobody, a sticky /tmp."""
    for d in ("bin", "proc", "sys", "dev", "etc", "tmp", "root", "home/app", "var", "run"):
        (root / d).mkdir(parents=True, exist_ok=True)
        (root / d).chmod(0o755)
    (root / "tmp").chmod(0o1777)
    (root / "root").chmod(0o700)
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout
    for applet in applets.split():
        if applet != "busybox" and "/" not in applet:
            (root / "bin" / applet).symlink_to("busybox")
    shutil.copy(probe_binary(), root / "bin" / "probe")
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    os.chown(root / "home" / "app", 1000, 1000)
    return root


def rootfs_tar(root: Path) -> bytes:
    """The root filesystem as an uncompressed tar layer (owned by root, symlinks kept)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(root.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(root)))
            info.uname = info.gname = ""
            if info.isfile():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()


def write_docker_archive(root: Path, archive: Path, ref: str,
                         cmd: tuple[str, ...] = ("sh",), extra_config: dict | None = None) -> Path:
    """Writes a one-layer image of `root`, tagged `ref` (name:tag), as a docker-archive tar;
    `extra_config` adds to its runtime config (StopSignal, Volumes, ...)."""
    layer = rootfs_tar(root)
    layer_digest = hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": [PATH_ENV], "Cmd": list(cmd), "WorkingDir": "/", **(extra_config or {})},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "pieces tests: busybox + probe"}],
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = f"{layer_digest}/layer.tar"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [ref], "Layers": [layer_name]}]).encode()
    name, _, tag = ref.rpartition(":")
    repositories = json.dumps({name: {tag: layer_digest}}).encode()
    with tarfile.open(archive, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dir_info = tarfile.TarInfo(layer_digest)
        dir_info.type = tarfile.DIRTYPE
        dir_info.mode = 0o755
        tar.addfile(dir_info)
        for member, data in ((layer_name, layer), (config_name, config),
                             ("manifest.json", manifest), ("repositories", repositories)):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return archive
