"""pieces' container-management commands: kill, wait, inspect of a container, run --label and
--label-file, and ps --filter, --no-trunc and --format; each bad input one clear error.

The image is a busybox root filesystem written as a docker-archive and `pieces load`-ed, so its
config can carry Labels."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from conftest import wait_for
from images import build_rootfs, write_docker_archive
from test_pieces import PIECES, Pieces, pieces  # noqa: F401  (fixtures)

IMAGE = "labelled:1"
OTHER = "plain:1"


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> tuple[Path, Path]:
    """Two images of busybox: one labelled tier=base and team=core, one without labels."""
    d = tmp_path_factory.mktemp("containers-image")
    root = build_rootfs(d / "rootfs")
    labelled = write_docker_archive(root, d / "labelled.tar", IMAGE,
                                    extra_config={"Labels": {"tier": "base", "team": "core"}})
    plain = write_docker_archive(root, d / "plain.tar", OTHER)
    return labelled, plain


@pytest.fixture
def p(pieces, archives) -> Pieces:
    for a in archives:
        pieces.ok("load", "-i", a)
    return pieces


def detached(p: Pieces, *args: str) -> str:
    return p.ok("run", "-d", *args).strip()


def inspect(p: Pieces, name: str) -> dict:
    doc = json.loads(p.ok("inspect", name))
    assert isinstance(doc, list) and len(doc) == 1, doc
    return doc[0]


def ready(p: Pieces, name: str) -> None:
    wait_for(lambda: "ready" in p.ok("logs", name), 10, f"{name} to set its trap")


def trapping(signal: str, code: int) -> list[str]:
    return ["sh", "-c", f"trap 'echo caught {signal}; exit {code}' {signal}; echo ready; while :; do sleep 0.1; done"]


# ---- kill ----

def test_kill_defaults_to_sigkill(p):
    detached(p, "--name", "victim", IMAGE, *trapping("TERM", 3))
    ready(p, "victim")
    assert p.ok("kill", "victim") == "victim\n"
    assert p.ok("wait", "victim") == "137\n"  # 128 + SIGKILL: the trap never ran
    assert "exited (137)" in p.ok("ps", "-a")


@pytest.mark.parametrize("signal", ["HUP", "SIGHUP", "1"])
def test_kill_delivers_the_named_signal(p, signal):
    detached(p, "--name", "hup", IMAGE, "sh", "-c",
             "trap 'echo got-hup > /tmp/hup; exit 9' HUP; echo ready; while :; do sleep 0.1; done")
    ready(p, "hup")
    p.ok("kill", "-s", signal, "hup")
    assert p.ok("wait", "hup") == "9\n"
    assert "exited (9)" in p.ok("ps", "-a")


def test_kill_long_flag_and_several_containers(p):
    detached(p, "--name", "u1", IMAGE, *trapping("USR1", 11))
    detached(p, "--name", "u2", IMAGE, *trapping("USR1", 12))
    ready(p, "u1")
    ready(p, "u2")
    assert p.ok("kill", "--signal", "SIGUSR1", "u1", "u2") == "u1\nu2\n"
    assert p.ok("wait", "u1", "u2") == "11\n12\n"


def test_kill_a_stopped_one_fails_but_the_others_are_killed(p):
    p.ok("run", "--name", "done", IMAGE, "true")
    detached(p, "--name", "alive", IMAGE, "sleep", "1000")
    res = p("kill", "done", "ghost", "alive")
    assert res.returncode != 0
    assert res.stdout == "alive\n"
    errors = res.stderr.strip().splitlines()
    assert len(errors) == 2, res.stderr
    assert '"done"' in errors[0] and "not running" in errors[0]
    assert '"ghost"' in errors[1]
    assert p.ok("wait", "alive") == "137\n"


def test_kill_with_a_bad_signal_is_one_error(p):
    detached(p, "--name", "calm", IMAGE, "sleep", "1000")
    res = p("kill", "-s", "NOPE", "calm")
    assert res.returncode != 0
    assert res.stderr.strip().splitlines() == ['pieces: --signal "NOPE": not a signal (a name such as SIGTERM or USR1, or a number)']
    assert "running" in p.ok("ps")  # nothing was sent


# ---- wait ----

def test_wait_blocks_until_the_detached_container_exits(p):
    detached(p, "--name", "slow", IMAGE, "sh", "-c", "sleep 1; exit 42")
    start = time.monotonic()
    assert p.ok("wait", "slow") == "42\n"
    assert time.monotonic() - start >= 0.5, "wait returned before the container ended"
    assert "exited (42)" in p.ok("ps", "-a")
    assert p.ok("wait", "slow") == "42\n"  # an ended container answers at once


def test_wait_for_a_foreground_container(p):
    run = subprocess.Popen([PIECES, "--root", str(p.store), "run", "--name", "fg", IMAGE, "sh", "-c", "sleep 1; exit 5"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: "fg" in p.ok("ps"), 10, "the foreground container")
        assert p.ok("wait", "fg") == "5\n"
    finally:
        assert run.wait(timeout=30) == 5


def test_wait_reads_a_removed_containers_status(p):
    detached(p, "--rm", "--name", "gone", IMAGE, "sh", "-c", "sleep 1; exit 7")
    assert p.ok("wait", "gone") == "7\n"
    wait_for(lambda: p.ok("ps", "-a", "-q") == "", 10, "the --rm container to go")


def test_wait_for_an_unknown_container(p):
    res = p("wait", "ghost")
    assert res.returncode != 0 and res.stdout == ""
    assert res.stderr.strip().splitlines() == ['pieces: no container "ghost" (pieces ps -a lists them)']


# ---- labels ----

def test_labels_from_image_file_and_flag(p, tmp_path):
    labels = tmp_path / "labels"
    labels.write_text("# ours\n\nteam=platform\nowner=ops\n")
    cid = detached(p, "--name", "lab", "--label-file", labels, "-l", "owner=me", "--label", "flag",
                   IMAGE, "sleep", "1000")
    want = {"tier": "base", "team": "platform", "owner": "me", "flag": ""}
    assert inspect(p, "lab")["Config"]["Labels"] == want
    # The same labels reach the runtime's config as annotations.
    config = json.loads((p.store / "containers" / cid / "config.json").read_text())
    for k, v in want.items():
        assert config["annotations"][k] == v
    assert config["annotations"]["org.pieces.image"] == IMAGE


@pytest.mark.parametrize("args, message", [
    (["-l", "=value"], '--label "=value": no label name'),
    (["--label-file", "/nonexistent.labels"], '--label-file "/nonexistent.labels": No such file or directory'),
])
def test_bad_labels_are_one_error_and_leave_nothing(p, args, message):
    res = p("run", "-d", *args, IMAGE, "true")
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert p.ok("ps", "-a", "-q") == ""
    assert not (p.store / "containers").exists() or not any((p.store / "containers").iterdir())


# ---- inspect ----

def test_inspect_a_container(p):
    cid = detached(p, "--name", "insp", "-e", "GREETING=hi", "-w", "/tmp", "-u", "1000:1000", "--memory", "64m",
                   "--pids-limit", "30", "--stop-signal", "USR1", "-v", "/etc:/host-etc:ro",
                   "--entrypoint", "sh", IMAGE, "-c", "sleep 1000")
    doc = inspect(p, "insp")
    assert doc["Id"] == cid and doc["Name"] == "/insp"
    assert doc["Image"].startswith("sha256:") and doc["Config"]["Image"] == IMAGE
    state = doc["State"]
    assert state["Status"] == "running" and state["Running"] is True and state["Pid"] > 0
    assert Path(f"/proc/{state['Pid']}").exists()
    assert "StartedAt" in state and "FinishedAt" not in state
    config = doc["Config"]
    assert config["Entrypoint"] == ["sh"] and config["Cmd"] == ["-c", "sleep 1000"]
    assert "GREETING=hi" in config["Env"]
    assert config["WorkingDir"] == "/tmp" and config["User"] == "1000:1000"
    assert config["StopSignal"] == "SIGUSR1"
    assert doc["HostConfig"]["Memory"] == 64 << 20 and doc["HostConfig"]["PidsLimit"] == 30
    assert {"Type": "bind", "Source": "/etc", "Destination": "/host-etc", "Mode": "ro", "RW": False,
            "Propagation": "rprivate"} in doc["Mounts"]
    # By id prefix too; then its end is recorded.
    assert inspect(p, cid[:10])["Id"] == cid
    p.ok("kill", "insp")
    p.ok("wait", "insp")
    state = inspect(p, "insp")["State"]
    assert state["Status"] == "exited" and state["Running"] is False and state["ExitCode"] == 137
    assert state["FinishedAt"] >= state["StartedAt"]


def test_inspect_type_chooses_and_images_stay_as_they_were(p):
    detached(p, "--name", OTHER.split(":")[0], IMAGE, "sleep", "1000")  # a container named like an image
    assert inspect(p, "plain")["Name"] == "/plain"
    image = json.loads(p.ok("inspect", "--type", "image", OTHER))
    assert isinstance(image, dict) and image["Names"] == [OTHER] and "Manifest" in image
    image = json.loads(p.ok("inspect", IMAGE))  # no container by that name: the image
    assert isinstance(image, dict) and image["Names"] == [IMAGE]
    res = p("inspect", "--type", "container", IMAGE)
    assert res.returncode != 0 and res.stderr.strip().splitlines() == [f'pieces: no container "{IMAGE}" (pieces ps -a lists them)']
    res = p("inspect", "nothing")
    assert res.returncode != 0 and res.stdout == ""
    assert res.stderr.strip().splitlines() == ['pieces: no container or image "nothing" (pieces ps -a and pieces images list them)']
    res = p("inspect", "--type", "network", "plain")
    assert res.returncode != 0 and len(res.stderr.strip().splitlines()) == 1 and "--type" in res.stderr


# ---- ps ----

@pytest.fixture
def fleet(p) -> dict[str, str]:
    """web (running, tier=front, from IMAGE), db (running, from OTHER), old (exited 3)."""
    ids = {"web": detached(p, "--name", "web", "-l", "tier=front", "-l", "env=prod", IMAGE, "sleep", "1000"),
           "db": detached(p, "--name", "db", "-l", "env=prod", OTHER, "sleep", "1000"),
           "old": p("run", "--name", "old", IMAGE, "sh", "-c", "exit 3")}
    assert ids["old"].returncode == 3
    ids["old"] = inspect(p, "old")["Id"]
    return ids


def names(p: Pieces, *args: str) -> set[str]:
    return set(p.ok("ps", "--format", "{{.Names}}", *args).split())


def test_ps_filters_include_and_exclude(p, fleet):
    assert names(p) == {"web", "db"}
    assert names(p, "-a") == {"web", "db", "old"}
    assert names(p, "--filter", "status=exited") == {"old"}  # a status filter looks at stopped ones too
    assert names(p, "-f", "status=running") == {"web", "db"}
    assert names(p, "-a", "-f", "label=tier") == {"web", "old"}  # old has the image's tier=base
    assert names(p, "-f", "label=tier=front") == {"web"}
    assert names(p, "-f", "label=env=prod", "-f", "label=tier") == {"web"}
    assert names(p, "-f", "name=web", "-f", "name=db") == {"web", "db"}
    assert names(p, "-f", "name=web", "-f", "status=exited") == set()
    assert names(p, "-f", f"id={fleet['db'][:8]}") == {"db"}
    assert names(p, "-a", "-f", f"ancestor={IMAGE}") == {"web", "old"}
    assert names(p, "-f", f"ancestor={OTHER}") == {"db"}
    image_id = inspect(p, "db")["Image"]
    assert names(p, "-f", f"ancestor={image_id}") == {"db"}
    assert p.ok("ps", "-q", "-f", "name=db") == fleet["db"][:12] + "\n"


def test_ps_format_and_no_trunc(p, fleet):
    line = p.ok("ps", "-f", "name=web", "--format", '{{.ID}}|{{.Names}}|{{.Image}}|{{.Command}}|{{.Status}}|{{.Label "tier"}}|{{.Labels}}')
    assert line == f'{fleet["web"][:12]}|web|{IMAGE}|"sleep 1000"|running|front|env=prod,team=core,tier=front\n'
    assert p.ok("ps", "--no-trunc", "-q", "-f", "name=web") == fleet["web"] + "\n"
    assert p.ok("ps", "--no-trunc", "-f", "name=web", "--format", "{{.ID}}") == fleet["web"] + "\n"
    table = p.ok("ps", "--no-trunc", "-f", "name=web")
    assert fleet["web"] in table and table.startswith("CONTAINER ID")
    assert p.ok("ps", "-a", "-f", "name=old", "--format", "{{.Names}}\\t{{.Status}}") == "old\texited (3)\n"


@pytest.mark.parametrize("args, message", [
    (["--filter", "colour=red"], '--filter "colour=red": unknown key "colour"'),
    (["-f", "status=sleeping"], '--filter "status=sleeping": unknown status'),
    (["-f", "name"], '--filter "name": expected KEY=VALUE'),
    (["--format", "{{.Ports}}"], '--format "{{.Ports}}": pieces knows {{.ID}}'),
])
def test_ps_bad_flags_are_one_error(p, args, message):
    res = p("ps", *args)
    assert res.returncode != 0 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr
