#!/usr/bin/python3
"""Case 9 of bench/run.sh: `run` of /bin/true with --systemd-cgroup, where systemd holds the
cgroups (a transient scope made over D-Bus for every container).

This machine's pid 1 is not systemd, so the case boots the host's systemd as pid 1 of a
puncker container (tests/integration/systemd_host.py) and runs hyperfine inside it, each
runtime with --systemd-cgroup and cgroupsPath "system.slice:bench:c9", from a copy of the
script's busybox bundle. Writes hyperfine's JSON to --out; prints hyperfine's summary.

  case9.py --puncker P --runtime NAME=PATH ... --bundle DIR --out FILE [--mode hybrid|unified]
           [--warmup N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from systemd_host import booted_systemd  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--puncker", required=True, help="the puncker that boots systemd (and is measured)")
    ap.add_argument("--runtime", action="append", default=[], help="NAME=PATH of another runtime to measure")
    ap.add_argument("--bundle", required=True, help="a bundle running /bin/true")
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", default="hybrid", choices=("hybrid", "unified"))
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--runs", type=int, default=50)
    a = ap.parse_args()

    base = Path(tempfile.mkdtemp(prefix="pieces-bench-c9-"))
    with booted_systemd(base / "host", a.puncker, a.mode) as host:
        shutil.copytree(a.bundle, host.bundles_host / "true", symlinks=True)
        config_path = host.bundles_host / "true" / "config.json"
        config = json.loads(config_path.read_text())
        config.setdefault("linux", {})["cgroupsPath"] = "system.slice:bench:c9"
        config_path.write_text(json.dumps(config))
        bundle = f"{host.bundles}/true"
        contenders = [("puncker", host.puncker)] + [tuple(r.split("=", 1)) for r in a.runtime]
        args = []
        for name, path in contenders:
            cmd = f"{path} --systemd-cgroup --root /run/bench-{name} run -b {bundle} c9"
            # The same command once first: a runtime that fails here is left out, with its error.
            res = host.exec(["sh", "-c", cmd], check=False, timeout=60)
            if res.returncode != 0:
                print(f"case 9: {name} failed (exit {res.returncode}): {res.stderr.strip()}", file=sys.stderr)
                host.exec(["sh", "-c", f"{path} --root /run/bench-{name} delete -f c9"], check=False)
                continue
            args += ["-n", name, "--prepare", f"sh -c '{path} --root /run/bench-{name} delete -f c9 2>/dev/null; true'", cmd]
        if not args:
            print("case 9: no runtime ran", file=sys.stderr)
            return 1
        res = host.exec(["hyperfine", "--style", "basic", "-N", "-w", str(a.warmup), "-r", str(a.runs),
                         "--export-json", f"{host.bundles}/case9.json", *args], check=False, timeout=3600)
        print(res.stdout, end="")
        if res.returncode != 0:
            print(f"case 9: hyperfine failed: {res.stderr.strip()}", file=sys.stderr)
            return 1
        shutil.copy(host.bundles_host / "case9.json", a.out)
    shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
