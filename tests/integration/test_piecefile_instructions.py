"""pieces build: VOLUME, STOPSIGNAL, HEALTHCHECK, MAINTAINER and ONBUILD end up in the image config
as a `docker build` of the same file puts them there, read back from the store (an OCI layout:
index.json -> manifest -> config blob); ONBUILD triggers run in a child build; bad ones are a
one-line error that leaves the store as it was.

The real binary, as root, with a store in a temporary directory; base images come from the busybox
rootfs tarball of test_pieces.py (nothing is downloaded)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import wait_for
from test_pieces import PIECES, Pieces, base_tarball, context, pieces  # noqa: F401  (fixtures)

SECOND = 1_000_000_000


def blob(store: Path, digest: str) -> dict:
    algorithm, hex_ = digest.split(":", 1)
    return json.loads((store / "blobs" / algorithm / hex_).read_text())


def image_config(store: Path, name: str) -> dict:
    """The OCI config document of the image tagged `name` (name:tag), straight from the layout."""
    index = json.loads((store / "index.json").read_text())
    found = [m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == name]
    assert len(found) == 1, (name, index)
    manifest = blob(store, found[0]["digest"])
    return blob(store, manifest["config"]["digest"])


def created_by(config: dict) -> list[str]:
    return [h["created_by"] for h in config["history"]]


def blobs(p: Pieces) -> list[str]:
    return sorted(os.listdir(p.store / "blobs" / "sha256"))


def test_volume_stopsignal_healthcheck_maintainer(pieces, workdir, base_tarball):
    """Each instruction sets what Docker sets: Volumes merged with the base's (variables expanded),
    StopSignal as written, Healthcheck in nanoseconds without the unset fields, author at the top."""
    pieces.ok("build", "-t", "base:1", context(workdir, f"""FROM_URL file://{base_tarball}
VOLUME /data
HEALTHCHECK --interval=1m CMD ["true"]
""", name="base"))
    base = image_config(pieces.store, "base:1")
    assert base["config"]["Volumes"] == {"/data": {}}
    assert base["config"]["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 60 * SECOND}

    pieces.ok("build", "-t", "app:1", context(workdir, """FROM base:1
ENV CACHE=/var/cache/app
VOLUME ["/logs", "$CACHE"]
VOLUME /srv "/with space"
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=1m30s --start-period=1.5s --retries=3 CMD wget -q -O- http://localhost/ || exit 1
MAINTAINER Jane Doe <jane@example.com>
"""))
    config = image_config(pieces.store, "app:1")
    runtime = config["config"]
    assert runtime["Volumes"] == {"/data": {}, "/logs": {}, "/var/cache/app": {}, "/srv": {}, "/with space": {}}
    assert runtime["StopSignal"] == "SIGQUIT"
    # A later HEALTHCHECK replaces the base's whole; unset fields (StartInterval) are left out.
    assert runtime["Healthcheck"] == {
        "Test": ["CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"],
        "Interval": 30 * SECOND, "Timeout": 90 * SECOND, "StartPeriod": 1_500_000_000, "Retries": 3}
    assert config["author"] == "Jane Doe <jane@example.com>"
    steps = created_by(config)[-5:]
    assert steps[0] == 'VOLUME ["/logs","/var/cache/app"]', steps
    assert steps[2] == "STOPSIGNAL SIGQUIT", steps
    assert steps[3].startswith("HEALTHCHECK ") and "CMD-SHELL" in steps[3], steps
    assert steps[4] == "MAINTAINER Jane Doe <jane@example.com>", steps
    assert all(h.get("empty_layer") for h in config["history"][-5:])
    # The other spellings: a number, a name without SIG, HEALTHCHECK NONE turning the base's off.
    pieces.ok("build", "-t", "other:1", context(workdir, """FROM base:1
STOPSIGNAL 3
STOPSIGNAL quit
HEALTHCHECK NONE
""", name="other"))
    other = image_config(pieces.store, "other:1")["config"]
    assert other["StopSignal"] == "quit"
    assert other["Healthcheck"] == {"Test": ["NONE"]}
    assert "author" not in image_config(pieces.store, "other:1")


def test_built_stopsignal_and_volume_take_effect_when_run(pieces, workdir, base_tarball):
    """What the build wrote is what `pieces run` and `pieces stop` read: a volume is a mount of its
    own in the container, and stop sends the image's signal."""
    pieces.ok("build", "-t", "svc:1", context(workdir, f"""FROM_URL file://{base_tarball}
STOPSIGNAL usr1
VOLUME /state
CMD ["sh", "-c", "trap 'echo caught; exit 41' USR1; echo ready; while :; do sleep 0.1; done"]
"""))
    assert " /state " in pieces.ok("run", "--rm", "svc:1", "cat", "/proc/self/mountinfo")
    pieces.ok("run", "-d", "--name", "svc", "svc:1")
    wait_for(lambda: "ready" in pieces.ok("logs", "svc"), 10, "the container's trap")
    pieces.ok("stop", "-t", "10", "svc")
    assert "caught" in pieces.ok("logs", "svc")
    assert "exited (41)" in pieces.ok("ps", "-a")
    pieces.ok("rm", "svc")


def test_changed_instructions_are_not_served_from_the_cache(pieces, workdir, base_tarball):
    piecefile = f"""FROM_URL file://{base_tarball}
VOLUME /data
STOPSIGNAL SIGQUIT
HEALTHCHECK --retries=2 CMD true
MAINTAINER first
ONBUILD RUN true
"""
    ctx = context(workdir, piecefile)
    pieces.ok("build", "-t", "c:1", ctx)
    again = pieces.ok("build", "-t", "c:1", ctx)
    assert "6 steps, 6 from the cache" in again, again
    for old, new, field in [("SIGQUIT", "SIGTERM", lambda c: c["config"]["StopSignal"]),
                            ("/data", "/other", lambda c: sorted(c["config"]["Volumes"])),
                            ("--retries=2", "--retries=5", lambda c: c["config"]["Healthcheck"]["Retries"]),
                            ("first", "second", lambda c: c["author"]),
                            ("RUN true", "RUN false", lambda c: c["config"]["OnBuild"])]:
        before = field(image_config(pieces.store, "c:1"))
        piecefile = piecefile.replace(old, new)
        (ctx / "Piecefile").write_text(piecefile)
        out = pieces.ok("build", "-t", "c:1", ctx)
        assert "6 steps, 6 from the cache" not in out, (old, out)
        after = field(image_config(pieces.store, "c:1"))
        assert after != before, (old, new, after)
    assert image_config(pieces.store, "c:1")["config"]["OnBuild"] == ["RUN false"]


def test_onbuild_triggers_run_in_the_child_only(pieces, workdir, base_tarball):
    """The base records its triggers and does not run them; a child built FROM it runs them right
    after FROM (a RUN, an ENV, a COPY from the child's context) and does not pass them on."""
    pieces.ok("build", "-t", "onbase:1", context(workdir, f"""FROM_URL file://{base_tarball}
ONBUILD RUN echo ran >> /triggered
ONBUILD ENV TRIGGERED=yes
ONBUILD COPY app.txt /app/
""", name="base"))
    base = image_config(pieces.store, "onbase:1")
    assert base["config"]["OnBuild"] == ["RUN echo ran >> /triggered", "ENV TRIGGERED=yes", "COPY app.txt /app/"]
    assert created_by(base)[-3:] == ["ONBUILD RUN echo ran >> /triggered", "ONBUILD ENV TRIGGERED=yes",
                                     "ONBUILD COPY app.txt /app/"]
    assert pieces("run", "--rm", "onbase:1", "cat", "/triggered").returncode != 0  # not run in the base

    child_ctx = context(workdir, 'FROM onbase:1\nCMD ["sh", "-c", "cat /triggered /app/app.txt; echo $TRIGGERED"]\n',
                        {"app.txt": "from the child\n"}, name="child")
    out = pieces.ok("build", "-t", "child:1", child_ctx)
    assert "Executing 3 build triggers" in out, out
    assert pieces.ok("run", "--rm", "child:1") == "ran\nfrom the child\nyes\n"
    child = image_config(pieces.store, "child:1")
    assert "OnBuild" not in child["config"], child["config"]
    assert "RUN echo ran >> /triggered" in created_by(child)

    # A grandchild does not run them again.
    out = pieces.ok("build", "-t", "grandchild:1", context(workdir, "FROM child:1\nRUN true\n", name="grandchild"))
    assert "build trigger" not in out, out
    assert pieces.ok("run", "--rm", "grandchild:1", "cat", "/triggered") == "ran\n"

    # Rebuilding the child takes its triggers from the cache too.
    again = pieces.ok("build", "-t", "child:1", child_ctx)
    assert again.count("---> cached") >= 4, again


def test_onbuild_triggers_that_commit_nothing_still_clear_onbuild(pieces, workdir, base_tarball):
    pieces.ok("build", "-t", "argbase:1", context(workdir, f"FROM_URL file://{base_tarball}\nONBUILD ARG X=1\n",
                                                  name="base"))
    pieces.ok("build", "-t", "argchild:1", context(workdir, "FROM argbase:1\n"))
    assert image_config(pieces.store, "argbase:1")["config"]["OnBuild"] == ["ARG X=1"]
    assert "OnBuild" not in image_config(pieces.store, "argchild:1")["config"]


def test_a_failing_trigger_names_the_from_line(pieces, workdir, base_tarball):
    pieces.ok("build", "-t", "badbase:1", context(workdir, f"FROM_URL file://{base_tarball}\nONBUILD RUN exit 3\n",
                                                  name="base"))
    res = pieces("build", "-t", "x:1", context(workdir, "# a comment\nFROM badbase:1\n"))
    err = res.stderr.strip()
    assert res.returncode != 0 and "\n" not in err, res
    assert "Piecefile:2:" in err and "ONBUILD trigger" in err and "exited with status 3" in err, err
    assert "x:1" not in pieces.names()


@pytest.mark.parametrize("line, words", [
    ("STOPSIGNAL SIGNOPE", ["Piecefile:3:", "unknown signal", "SIGNOPE"]),
    ("STOPSIGNAL 0", ["Piecefile:3:", "invalid signal 0"]),
    ("STOPSIGNAL $SIG", ["Piecefile:3:", "unknown signal", "NOPE"]),  # known only after expansion
    ("HEALTHCHECK --intervall=5s CMD true", ["Piecefile:3:", "no flag --intervall"]),
    ("HEALTHCHECK --interval=10 CMD true", ["Piecefile:3:", "missing unit"]),
    ("HEALTHCHECK --timeout=100us CMD true", ["Piecefile:3:", "at least 1ms"]),
    ("HEALTHCHECK --retries=-1 CMD true", ["Piecefile:3:", "cannot be negative"]),
    ("HEALTHCHECK CMD", ["Piecefile:3:", "needs a command"]),
    ("ONBUILD ONBUILD RUN true", ["Piecefile:3:", "ONBUILD ONBUILD"]),
    ("ONBUILD FROM keep", ["Piecefile:3:", "not allowed as an ONBUILD trigger"]),
    ("VOLUME \"\"", ["Piecefile:3:", "cannot be empty"]),
])
def test_bad_instructions_are_one_line_errors_and_change_nothing(pieces, workdir, base_tarball, line, words):
    pieces.ok("build", "-t", "keep", context(workdir, f"FROM_URL file://{base_tarball}\n", name="base"))
    names, before = pieces.names(), blobs(pieces)
    res = pieces("build", "-t", "bad", context(workdir, f"FROM keep\nARG SIG=NOPE\n{line}\nCMD [\"true\"]\n"))
    err = res.stderr.strip()
    assert res.returncode != 0 and "\n" not in err, res
    assert all(w in err for w in words), err
    assert pieces.names() == names
    assert blobs(pieces) == before
    assert pieces.leftovers() == []
