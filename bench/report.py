#!/usr/bin/python3
"""Builds bench/results/latest.md and latest.png from what bench/run.sh left in results/tmp/.

    report.py TMPDIR OUT.md OUT.png

Reads (all optional but meta.json): meta.json, notes.jsonl, caseN.json (hyperfine
--export-json for cases 1, 2, 3, 5, 6, 8, 9; case7-run.json and case7-build.json for case 7's two
tables), case4.json (peak RSS samples, memory-limit findings), case7.json and case8-setup.json (the
set-up of cases 7 and 8). Standard library only; the chart is drawn by gnuplot (pngcairo).
"""
import json
import math
import os
import shutil
import statistics
import subprocess
import sys

COLORS = {"puncker": 0xE66100, "crun": 0x1F78B4, "runc": 0x33A02C, "floor": 0x888888,
          "pieces": 0xE66100, "pieces --network none": 0xF4A460, "docker": 0x1F78B4,
          "podman": 0x6A3D9A, "buildah": 0x6A3D9A, "skopeo": 0x33A02C, "skopeo + umoci": 0x8FBC5A}
# shorter x-axis labels in the chart, where the table's name would not fit under its bar
CHART_LABEL = {"pieces --network none": "--net none"}
ORDER = ["puncker", "crun", "runc", "floor", "pieces", "pieces --network none", "docker", "podman", "buildah", "skopeo",
         "skopeo + umoci"]

CASES = {
    1: {
        "title": "Case 1: `run` of /bin/true in a busybox bundle",
        "short": "1. run /bin/true",
        "how": "`R --root DIR run -b BUNDLE c1`, hyperfine `-N`; `--prepare` force-deletes leftovers. "
               "`floor` is `unshare -pfmuin --mount-proc /bin/true`: the namespaces alone, no runtime.",
        "target": 0.5,
        "target_text": "puncker mean ≤ 0.5 × crun mean",
    },
    2: {
        "title": "Case 2: create → start → delete as separate commands (what containerd does)",
        "short": "2. create+start+delete",
        "how": "`R create -b BUNDLE c2 && R start c2 && R delete -f c2` (container process /bin/true), "
               "one shell command per iteration; hyperfine subtracts the shell's own start-up.",
        "target": 0.5,
        "target_text": "puncker mean ≤ 0.5 × crun mean",
    },
    3: {
        "title": "Case 3: exec of /bin/true into a running container",
        "short": "3. exec /bin/true",
        "how": "`R exec c3 /bin/true` into a container whose init is `sleep 3600`, hyperfine `-N`.",
        "target": None,
        "target_text": "no numeric target in the issue; puncker must have exec to be compared",
    },
    5: {
        "title": "Case 5: containers started concurrently, all reaped and deleted",
        "short": "5. {conc} containers at once",
        "how": "`bench/lib/concurrent.sh`: {conc} × `R run -b BUNDLE c5-i` (/bin/true) started at once in "
               "the background, then `wait` for all (each `run` reaps and deletes its container). "
               "Wall time of the whole batch.",
        "target": 0.5,
        "target_text": "puncker mean ≤ 0.5 × crun mean",
    },
    6: {
        "title": "Case 6: Docker end to end",
        "short": "6. docker run --rm",
        "how": "`docker run --rm --runtime=R pieces-bench-bb:latest true` (dockerd 20.10 started by the "
               "script, image imported from the same busybox rootfs), hyperfine `-N`.",
        "target": None,
        "target_text": "no numeric target in the issue",
    },
    "7-run": {
        "title": "Case 7a: pieces vs Docker vs podman: `run --rm` of /bin/true",
        "short": "7. run --rm true",
        "how": "One hyperfine `-N` invocation. `pieces --root STORE run --rm bb true` (image built from a Piecefile "
               "`FROM_URL file://busybox-rootfs.tar.gz`; the container runs in-process, host network, pieces' default); "
               "the same with `--network none` (a new network namespace, as podman's row); "
               "`docker run --rm pieces-bench-c7-bb true` (dockerd 20.10, default runtime {docker_runtime}, "
               "default bridge network; the same tarball `docker import`ed); "
               "`podman --root/--runroot/--tmpdir (own storage) --storage-driver overlay --cgroup-manager cgroupfs "
               "--events-backend file --runtime {podman_runtime} run --rm --network none --ulimit nofile=1024:1024 "
               "--ulimit nproc=4096:4096 pieces-bench-c7-bb true` (the tarball `podman import`ed; the ulimits because "
               "podman's default RLIMIT_NOFILE is above this VM's hard limit).",
        "target": 0.1,
        "target_text": "pieces run --rm mean ≤ 0.1 × docker run --rm mean",
        "subject": "pieces",
        "peer": "docker",
        "case": 7,
        "part": "run",
    },
    "7-build": {
        "title": "Case 7b: pieces vs Docker vs buildah: a fully cached rebuild",
        "short": "7. cached rebuild",
        "how": "The same five steps after the base (`ENV`, `WORKDIR`, `COPY`, `RUN`, `CMD`), built once uncached, once "
               "more to check that every step comes from the cache, then timed: `pieces build -t pieces-bench-c7-x CTX` "
               "(Piecefile, `FROM_URL file://…tar.gz`); `docker build -t … DCTX` with `DOCKER_BUILDKIT=0` (the legacy "
               "builder of dockerd 20.10; Dockerfile `FROM pieces-bench-c7-bb:latest`, the imported tarball); "
               "`buildah --root/--runroot (podman's storage) bud --layers -t … DCTX` (same Dockerfile, the podman-imported "
               "image). hyperfine `-N`.",
        "target": None,
        "target_text": "no numeric target in the issue",
        "subject": "pieces",
        "peer": "docker",
        "case": 7,
        "part": "build",
    },
    8: {
        "title": "Case 8: pull from a registry on 127.0.0.1 into an empty store",
        "short": "8. pull (empty store)",
        "how": "Debian's docker-registry {registry} on 127.0.0.1 serves one image of {layers} gzip layers ({bytes} bytes of "
               "blobs: the busybox rootfs and layers of {layer_mb} MiB of random data), pushed there by skopeo. "
               "`pieces --root STORE pull -q REF` (downloads and unpacks each layer into the store); `podman --root/--runroot "
               "(own storage) --storage-driver overlay pull -q --tls-verify=false REF` (downloads and unpacks into overlay "
               "layers); `skopeo copy docker://REF oci:DIR:bb` ({skopeo}; downloads only); the same followed by "
               "`umoci unpack --image DIR:bb BUNDLE` ({umoci}; downloads, then unpacks a root filesystem). Each run starts "
               "from an empty store, storage or directory (hyperfine `--prepare` removes it); hyperfine with a shell "
               "(for the `&&`), whose start-up it subtracts.",
        "target": None,
        "target_text": "no numeric target in the issue",
        "subject": "pieces",
        "peer": "podman",
    },
    9: {
        "title": "Case 9: `run` of /bin/true with `--systemd-cgroup` under systemd",
        "short": "9. run --systemd-cgroup",
        "how": "This machine's pid 1 is not systemd, so `bench/lib/case9.py` boots the host's systemd 252 as pid 1 of a "
               "puncker container (hybrid cgroups, dbus-daemon as the system bus; tests/integration/systemd_host.py) and "
               "runs hyperfine `-N` inside it: `R --systemd-cgroup --root DIR run -b BUNDLE c9` with cgroupsPath "
               "`system.slice:bench:c9`, so every run asks systemd over D-Bus for a transient scope and stops it again; "
               "`--prepare` force-deletes leftovers.",
        "target": None,
        "target_text": "no numeric target in the issue",
    },
}


def load_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def load_notes(tmp):
    notes = []
    try:
        with open(os.path.join(tmp, "notes.jsonl")) as f:
            for line in f:
                line = line.strip()
                if line:
                    notes.append(json.loads(line))
    except OSError:
        pass
    return notes


def order_key(name):
    return ORDER.index(name) if name in ORDER else len(ORDER)


def hf_results(tmp, case):
    data = load_json(os.path.join(tmp, f"case{case}.json"))
    if not data:
        return None
    out = {}
    for r in data.get("results", []):
        times = r.get("times") or []
        out[r["command"]] = {
            "mean": r["mean"],
            "stddev": r.get("stddev") or 0.0,
            "min": r["min"],
            "max": r["max"],
            "median": r.get("median", r["mean"]),
            "runs": len(times),
        }
    return out


def unit_for(seconds):
    return ("s", 1.0) if seconds >= 1.0 else ("ms", 1000.0)


def fmt(v, scale):
    x = v * scale
    return f"{x:.1f}" if x >= 100 else f"{x:.2f}"


def esc(text):
    return text.replace("|", "\\|").replace("\n", " ")


def verdict(ok):
    return "**met**" if ok else "**missed**"


def case_notes(notes, case, part=None):
    """The notes of a case; with a part (case 7: "run", "build"), those of that table and the
    case-wide ones without a part."""
    if part is None:
        return [n for n in notes if n["case"] == case]
    return [n for n in notes if n["case"] == case and n.get("part") in (part, None)]


def contenders_of(res, notes):
    names = set(res or {}) | {n["who"] for n in notes if n["who"] != "all"}
    return sorted(names, key=order_key)


def hf_section(case, spec, res, notes, meta, lines, extra=None):
    fmtargs = {"conc": meta.get("conc", "50"), **(extra or {})}
    subject, peer = spec.get("subject", "puncker"), spec.get("peer", "crun")
    lines.append(f"## {spec['title'].format(**fmtargs)}")
    lines.append("")
    lines.append(spec["how"].format(**fmtargs))
    lines.append("")
    cn = case_notes(notes, spec.get("case", case), spec.get("part"))
    if res is None and not cn:
        lines.append("_Not run in this invocation._")
        lines.append("")
        return None
    alls = [n for n in cn if n["who"] == "all"]
    for n in alls:
        lines.append(f"- {n['status']}: `{esc(n['text'])}`")
    if alls:
        lines.append("")
    res = res or {}
    best = min((r["mean"] for r in res.values()), default=None)
    unit, scale = unit_for(best if best is not None else 0)
    crun = res.get(peer, {}).get("mean")
    lines.append(f"| contender | mean ({unit}) | σ ({unit}) | median ({unit}) | min ({unit}) | max ({unit}) | runs | × best | × {peer} |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    after = []
    for name in contenders_of(res, cn):
        if name in res:
            r = res[name]
            ratio = r["mean"] / best
            vs_crun = f"{r['mean'] / crun:.2f}" if crun else "—"
            lines.append(
                f"| {name} | {fmt(r['mean'], scale)} | {fmt(r['stddev'], scale)} | {fmt(r['median'], scale)} | {fmt(r['min'], scale)} "
                f"| {fmt(r['max'], scale)} | {r['runs']} | {ratio:.2f}{' (best)' if r['mean'] == best else ''} "
                f"| {vs_crun} |"
            )
        else:
            mine = [n for n in cn if n["who"] == name and n["status"] != "info"]
            na = any(n["status"] == "not-available" for n in mine)
            label = "not available yet" if na else "**failed**"
            lines.append(f"| {name} | {label} | | | | | | | |")
            for n in mine:
                if n["status"] == "not-available":
                    after.append(f"- {name}: not available yet: {esc(n['text'])}")
                else:
                    after.append(f"- {name}: {n['status']}: `{esc(n['text'])}`")
    for n in cn:
        if n["status"] == "info" and n["who"] != "all":
            after.append(f"- {n['who']}: {esc(n['text'])}")
    if after:
        lines.append("")
        lines.extend(after)
    lines.append("")
    # target
    tgt = spec["target"]
    if tgt is not None:
        if subject in res and peer in res:
            ratio = res[subject]["mean"] / res[peer]["mean"]
            lines.append(f"Target: {spec['target_text']}: measured {ratio:.2f} × {peer} → {verdict(ratio <= tgt)}.")
        else:
            missing = " and ".join(n for n in (subject, peer) if n not in res)
            lines.append(f"Target: {spec['target_text']}: **not measured** ({missing} has no number) → **missed**.")
    else:
        if subject in res and peer in res:
            ratio = res[subject]["mean"] / res[peer]["mean"]
            lines.append(f"Target: {spec['target_text']}. {subject} / {peer} = {ratio:.2f}.")
        else:
            lines.append(f"Target: {spec['target_text']}.")
    lines.append("")
    return res


def short_error(text, width=180):
    """The useful end of an error line: the msg="..." of a logrus line, else the last characters."""
    i = text.find('msg="')
    if i >= 0:
        text = text[i + 5:].rstrip('"')
    return text if len(text) <= width else "…" + text[-width:]


def human_bytes(n):
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MiB"
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.2f} MiB ({n // 1024} KiB)"
    return f"{n // 1024} KiB"


def case4_section(tmp, notes, meta, lines):
    lines.append("## Case 4: memory: peak RSS of the runtime, smallest memory limit a container starts under")
    lines.append("")
    lines.append(
        f"Peak RSS: `/usr/bin/time -f %M R run -b BUNDLE c4` (/bin/true), {meta.get('rss_runs', '20')} runs each; "
        "%M is the largest maximum RSS among the runtime process and the children it waited for "
        "(its init helper, the container process). Smallest limit: `linux.resources.memory.limit` set in "
        f"config.json, bisected in 4 KiB steps between {meta.get('mem_floor_kib', '64')} KiB and 64 MiB for the smallest limit under "
        "which `run` of /bin/true exits 0 three times out of three. Before bisecting, a `sleep` container "
        "with a 64 MiB limit is started and its cgroup's `memory.limit_in_bytes` is read from the host: "
        "a runtime that does not apply the limit gets \"limits not applied\", not a number."
    )
    lines.append("")
    data = load_json(os.path.join(tmp, "case4.json"))
    cn = case_notes(notes, 4)
    if data is None:
        lines.append("_Not run in this invocation._")
        lines.append("")
        return None
    med = {}
    for name, d in data.items():
        if d.get("rss_kib"):
            med[name] = statistics.median(d["rss_kib"])
    best = min(med.values(), default=None)
    lines.append("| contender | peak RSS median (MiB) | min (MiB) | max (MiB) | samples | × best | smallest memory limit that starts |")
    lines.append("|---|---:|---:|---:|---:|---:|---|")
    for name in sorted(data, key=order_key):
        d = data[name]
        if d.get("rss_kib"):
            s = d["rss_kib"]
            rss = (f"{med[name] / 1024:.2f} | {min(s) / 1024:.2f} | {max(s) / 1024:.2f} | {len(s)} "
                   f"| {med[name] / best:.2f}{' (best)' if med[name] == best else ''}")
        else:
            rss = f"failed: {esc(d.get('rss_error', ''))} | | | | "
        if name == "floor":
            lim = "n/a (no runtime)"
        elif d.get("limit_observed") == "run failed":
            lim = "not checked: `run -d` with a 64 MiB limit failed (see below)"
        elif not d.get("limit_applied"):
            obs = d.get("limit_observed", "")
            lim = f"limits not applied (asked 64 MiB, memory.limit_in_bytes = {obs})"
        elif d.get("min_limit") is None:
            lim = "does not start under 64 MiB"
        elif d.get("fails_at") is None:
            lim = f"≤ {human_bytes(d['min_limit'])} (starts under the lowest limit probed)"
        else:
            lim = f"{human_bytes(d['min_limit'])}"
            err = short_error(d.get("fail_error") or "no message")
            lim += f" (fails under {human_bytes(d['fails_at'])}: `{esc(err)}`)"
        lines.append(f"| {name} | {rss} | {lim} |")
    lines.append("")
    for n in cn:
        lines.append(f"- {n['who']}: {n['status']}: `{esc(n['text'])}`")
    if cn:
        lines.append("")
    # targets
    p, c = data.get("puncker", {}), data.get("crun", {})
    if "puncker" in med and "crun" in med:
        lines.append(
            f"Target: puncker peak RSS ≤ crun's: {med['puncker'] / 1024:.2f} MiB vs {med['crun'] / 1024:.2f} MiB "
            f"→ {verdict(med['puncker'] <= med['crun'])}."
        )
    else:
        lines.append("Target: puncker peak RSS ≤ crun's: **not measured** → **missed**.")
    if not p:
        lines.append("Target: starts under 1 MiB: **not measured** → **missed**.")
    elif p.get("limit_observed") == "run failed":
        lines.append("Target: starts under 1 MiB: not measured (puncker `run -d` failed) → **missed**.")
    elif not p.get("limit_applied"):
        lines.append("Target: starts under 1 MiB: puncker does not apply memory limits yet (limits not applied) → **missed**.")
    elif p.get("min_limit") is None:
        lines.append("Target: starts under 1 MiB: puncker does not start even under 64 MiB → **missed**.")
    else:
        lines.append(
            f"Target: starts under 1 MiB: smallest limit {human_bytes(p['min_limit'])} → "
            f"{verdict(p['min_limit'] < 1024 * 1024)}."
        )
    lines.append("")
    return {"med": med, "data": data}


def write_md(tmp, out_md):
    meta = load_json(os.path.join(tmp, "meta.json"), {})
    notes = load_notes(tmp)
    L = []
    L.append("# Pieces benchmark: puncker vs crun vs runc; pieces vs docker, podman and buildah")
    L.append("")
    L.append("Made by `bench/run.sh` (see bench/README.md); every table comes from one hyperfine invocation, "
             "so the ratios within a table are comparable; the absolute numbers move from run to run.")
    L.append("")
    L.append(f"- Date: {meta.get('date', '?')}")
    L.append(f"- Machine: {meta.get('nproc', '?')} CPUs ({meta.get('cpu', '?')}), {meta.get('mem', '?')} memory, "
             f"kernel {meta.get('kernel', '?')}, {meta.get('os', '?')}, cgroups {meta.get('cgroups', '?')}")
    L.append(f"- Load average (1, 5, 15 min) at start: {meta.get('load_start', '?')}; at end: {meta.get('load_end', '?')} "
             f"(a 2-CPU machine: anything well above 2 means other work competed with the benchmark)")
    L.append(f"- puncker: {meta.get('puncker', '?')} (commit {meta.get('commit', '?')}, `{meta.get('puncker_path', '?')}`, "
             f"sha256 {meta.get('puncker_sha', '?')}…, measured from a copy taken at the start)")
    if meta.get("build_note"):
        L.append(f"- **Warning**: {meta['build_note']}")
    L.append(f"- crun: {meta.get('crun', '?')}")
    L.append(f"- runc: {meta.get('runc', '?')}")
    L.append(f"- docker: {meta.get('docker', '?')}")
    if meta.get("pieces_path"):
        L.append(f"- pieces: {meta.get('pieces', '?')} (`{meta.get('pieces_path', '?')}`, sha256 {meta.get('pieces_sha', '?')}…, "
                 "measured from a copy taken at the start)")
    else:
        L.append(f"- pieces: {meta.get('pieces', 'not used (case 7 not run)')}")
    L.append(f"- podman: {meta.get('podman', 'not used (case 7 not run)')}; buildah: {meta.get('buildah', 'not used (case 7 not run)')}")
    L.append(f"- hyperfine: {meta.get('hyperfine', '?')}; warm-up {meta.get('warmup', '?')} runs per contender, "
             f"{meta.get('runs', '?')} timed runs (case 5: {meta.get('runs_conc', '?')}, case 6: {meta.get('runs_docker', '?')}, "
             f"case 7: {meta.get('runs_pieces', '?')}, case 8: {meta.get('runs_pull', '?')}, "
             f"case 9: {meta.get('runs_systemd', '?')})")
    L.append(f"- Cases run: {meta.get('cases', '?') or 'none'}")
    L.append("- Bundle: busybox-static rootfs, config from `runc spec` with terminal false, ociVersion 1.0.2 "
             "(crun 1.8 rejects 1.2.0), read-only root; the same config.json for every runtime, each runtime "
             "with its own `--root` in a temporary directory.")
    L.append("")

    summary = []
    results = {}
    for case in (1, 2, 3):
        results[case] = hf_section(case, CASES[case], hf_results(tmp, case), notes, meta, L)
    c4 = case4_section(tmp, notes, meta, L)
    for case in (5, 6):
        results[case] = hf_section(case, CASES[case], hf_results(tmp, case), notes, meta, L)
    c7 = load_json(os.path.join(tmp, "case7.json"), {})
    extra = {"docker_runtime": c7.get("docker_runtime") or "runc", "podman_runtime": c7.get("podman_runtime") or "runc"}
    for key in ("7-run", "7-build"):
        results[key] = hf_section(key, CASES[key], hf_results(tmp, key), notes, meta, L, extra)

    c8 = load_json(os.path.join(tmp, "case8-setup.json"), {})
    extra = {k: c8.get(k) or "?" for k in ("registry", "layers", "bytes", "layer_mb", "skopeo", "umoci")}
    results[8] = hf_section(8, CASES[8], hf_results(tmp, 8), notes, meta, L, extra)
    results[9] = hf_section(9, CASES[9], hf_results(tmp, 9), notes, meta, L)

    # summary of targets
    L.append("## Targets at a glance")
    L.append("")
    L.append("| case | target | measured | verdict |")
    L.append("|---|---|---|---|")
    for case in (1, 2, 5):
        res = results.get(case)
        t = CASES[case]["target_text"]
        if res and "puncker" in res and "crun" in res:
            ratio = res["puncker"]["mean"] / res["crun"]["mean"]
            L.append(f"| {case} | {t} | {ratio:.2f} × crun | {verdict(ratio <= CASES[case]['target'])} |")
        elif res is None and not case_notes(notes, case):
            L.append(f"| {case} | {t} | not run | — |")
        else:
            L.append(f"| {case} | {t} | no puncker/crun number | **missed** |")
    if c4:
        med, data = c4["med"], c4["data"]
        if "puncker" in med and "crun" in med:
            L.append(f"| 4 | peak RSS ≤ crun's | {med['puncker'] / 1024:.2f} MiB vs {med['crun'] / 1024:.2f} MiB "
                     f"| {verdict(med['puncker'] <= med['crun'])} |")
        else:
            L.append("| 4 | peak RSS ≤ crun's | not measured | **missed** |")
        p = data.get("puncker", {})
        if p.get("limit_observed") == "run failed":
            L.append("| 4 | starts under 1 MiB | not measured (run -d failed) | **missed** |")
        elif p.get("limit_applied") and p.get("min_limit") is not None:
            L.append(f"| 4 | starts under 1 MiB | {human_bytes(p['min_limit'])} | {verdict(p['min_limit'] < 1024 * 1024)} |")
        elif p.get("limit_applied"):
            L.append("| 4 | starts under 1 MiB | does not start under 64 MiB | **missed** |")
        else:
            L.append("| 4 | starts under 1 MiB | limits not applied | **missed** |")
    else:
        L.append("| 4 | peak RSS ≤ crun's; starts under 1 MiB | not run | — |")
    res = results.get("7-run")
    t = CASES["7-run"]["target_text"]
    if res and "pieces" in res and "docker" in res:
        ratio = res["pieces"]["mean"] / res["docker"]["mean"]
        L.append(f"| 7 | {t} | {ratio:.3f} × docker ({fmt(res['pieces']['mean'], 1000)} ms vs "
                 f"{fmt(res['docker']['mean'], 1000)} ms) | {verdict(ratio <= CASES['7-run']['target'])} |")
    elif res is None and not case_notes(notes, 7, "run"):
        L.append(f"| 7 | {t} | not run | — |")
    else:
        L.append(f"| 7 | {t} | no pieces/docker number | **missed** |")
    r3 = results.get(3)
    if r3 is not None or case_notes(notes, 3):
        st = "measured" if r3 and "puncker" in r3 else "puncker: not available yet"
        L.append(f"| 3 | (exec; no numeric target) | {st} | — |")
    L.append("")

    secs = meta.get("case_seconds") or {}
    if secs:
        L.append("## Where the time went")
        L.append("")
        parts = ", ".join(f"case {k}: {v} s" for k, v in sorted(secs.items(), key=lambda kv: int(kv[0])))
        L.append(f"{parts}; total {meta.get('total_seconds', '?')} s (plus set-up).")
        L.append("")
    L.append("![chart](latest.png)")
    L.append("")
    with open(out_md, "w") as f:
        f.write("\n".join(L))
    return meta, notes, results, c4


def gp_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_png(tmp, out_png, meta, notes, results, c4):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        print("report.py: gnuplot not found, no chart", file=sys.stderr)
        return False
    panels = []  # (title, ylabel, rows) with rows = (label, value, low, high, color, text)
    conc = meta.get("conc", "50")
    for case in (1, 2, 3, 4, 5, 6, "7-run", "7-build", 8, 9):
        spec = CASES.get(case, {})
        if case == 4:
            if not c4:
                continue
            rows = []
            for name in sorted(c4["data"], key=order_key):
                s = c4["data"][name].get("rss_kib")
                if s:
                    m = statistics.median(s) / 1024
                    rows.append((name, m, min(s) / 1024, max(s) / 1024, COLORS.get(name, 0), f"{m:.1f}"))
                else:
                    rows.append((name, 0, 0, 0, COLORS.get(name, 0), "failed"))
            tgt = None
            if "crun" in c4["med"]:
                tgt = (c4["med"]["crun"] / 1024, "puncker target: ≤ crun")
            panels.append(("4. peak RSS of run", "MiB (median, min–max)", rows, tgt))
            continue
        res = results.get(case)
        cn = case_notes(notes, spec.get("case", case), spec.get("part"))
        cn = [n for n in cn if n["status"] != "info"]
        if res is None and not cn:
            continue
        res = res or {}
        best = min((r["mean"] for r in res.values()), default=0)
        unit, scale = unit_for(best)
        rows = []
        for name in contenders_of(res, cn):
            if name in res:
                r = res[name]
                m, sd = r["mean"] * scale, r["stddev"] * scale
                rows.append((name, m, max(m - sd, 0), m + sd, COLORS.get(name, 0),
                             f"{m:.1f}" if m >= 10 else f"{m:.2f}"))
            else:
                na = any(n["status"] == "not-available" for n in cn if n["who"] == name)
                rows.append((name, 0, 0, 0, COLORS.get(name, 0), "n/a yet" if na else "failed"))
        tgt = None
        subject, peer = spec.get("subject", "puncker"), spec.get("peer", "crun")
        if spec["target"] is not None and peer in res:
            tgt = (res[peer]["mean"] * scale * spec["target"], f"{subject} target: ≤ {spec['target']} × {peer}")
        panels.append((CASES[case]["short"].format(conc=conc), f"{unit} (mean ± σ)", rows, tgt))
    if not panels:
        return False
    cols = 3 if len(panels) > 2 else len(panels)
    nrows = math.ceil(len(panels) / cols)
    g = []
    g.append(f"set terminal pngcairo size {460 * cols + 40},{380 * nrows + 70} font 'DejaVu Sans,11'")
    g.append(f"set output {gp_str(out_png)}")
    g.append("set encoding utf8")
    title = f"Pieces benchmark — {meta.get('date', '')} — {meta.get('nproc', '?')} CPUs, kernel {meta.get('kernel', '?')}"
    g.append(f"set multiplot layout {nrows},{cols} title {gp_str(title)} font ',13'")
    g.append("set style fill solid 0.85 border rgb 'black'")
    g.append("set boxwidth 0.6")
    g.append("set grid ytics lc rgb '#dddddd'")
    g.append("set key off")
    g.append("set xtics nomirror scale 0")
    g.append("set ytics nomirror")
    g.append("set border 3")
    g.append("set style textbox opaque noborder margins 1,1")
    for i, (ptitle, ylabel, rows, tgt) in enumerate(panels):
        top = max((r[3] for r in rows), default=1) or 1
        g.append(f"$d{i} << EOD")
        for j, (label, v, lo, hi, color, text) in enumerate(rows):
            label = CHART_LABEL.get(label, label)
            g.append(f"{j} {gp_str(label)} {v:.6f} {lo:.6f} {hi:.6f} {color} {gp_str(text)}")
        g.append("EOD")
        g.append(f"set title {gp_str(ptitle)} font ',12'")
        g.append(f"set ylabel {gp_str(ylabel)}")
        g.append(f"set xrange [-0.6:{len(rows) - 0.4}]")
        g.append(f"set yrange [0:{top * 1.22:.6f}]")
        g.append("unset arrow; unset label")
        if tgt:
            y, text = tgt
            g.append(f"set arrow from -0.6,{y:.6f} to {len(rows) - 0.4},{y:.6f} nohead dt 2 lw 1.5 lc rgb '#E66100' front")
            g.append(f"set label {gp_str(text)} at {len(rows) - 0.45},{y:.6f} right offset 0,0.8 font ',9' tc rgb '#E66100' boxed front")
        g.append(
            f"plot $d{i} using 1:3:6:xtic(2) with boxes lc rgb variable, "
            f"$d{i} using 1:3:4:5 with yerrorbars lc rgb 'black' lw 1.5 pt 7 ps 0.4, "
            f"$d{i} using 1:5:7 with labels offset 0,0.9 font ',10'"
        )
    g.append("unset multiplot")
    gp = os.path.join(tmp, "chart.gp")
    with open(gp, "w") as f:
        f.write("\n".join(g) + "\n")
    r = subprocess.run([gnuplot, gp], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"report.py: gnuplot failed: {r.stderr.strip()}", file=sys.stderr)
        return False
    return True


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    tmp, out_md, out_png = sys.argv[1:]
    meta, notes, results, c4 = write_md(tmp, out_md)
    if not write_png(tmp, out_png, meta, notes, results, c4):
        with open(out_md, "a") as f:
            f.write("\n_The chart could not be drawn (gnuplot missing or failed); see the tables above._\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
