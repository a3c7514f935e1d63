#!/usr/bin/env bash
# Benchmarks puncker side by side with crun and runc, pieces with docker, podman and buildah
# (issue #3), pieces' pull with podman's and skopeo's (issue #8), and run with --systemd-cgroup
# under a real systemd (issue #5).
#
#   bench/run.sh                 all cases (1-9)
#   bench/run.sh case1 case4     only these cases ("4" works too)
#   BENCH_CASES="1 2" bench/run.sh
#   BENCH_SKIP_DOCKER=1 bench/run.sh   everything but cases 6 and 7
#
# Writes bench/results/latest.md and bench/results/latest.png; the raw hyperfine JSON and the
# other measurements go to bench/results/tmp/ (gitignored) and bench/report.py builds the
# report from them. See bench/README.md.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
RESULTS=$BENCH/results
TMPR=$RESULTS/tmp

WARMUP=${BENCH_WARMUP:-3}          # hyperfine warm-up runs, every contender
RUNS=${BENCH_RUNS:-100}            # timed runs for cases 1, 2, 3
RUNS_CONC=${BENCH_RUNS_CONC:-5}    # timed runs for case 5
RUNS_DOCKER=${BENCH_RUNS_DOCKER:-15}  # timed runs for case 6
RUNS_PIECES=${BENCH_RUNS_PIECES:-20}  # timed runs for case 7 (run --rm, and cached rebuild)
RUNS_PULL=${BENCH_RUNS_PULL:-10}   # timed runs for case 8 (each a pull into an empty store)
RUNS_SYSTEMD=${BENCH_RUNS_SYSTEMD:-50}  # timed runs for case 9
C8_LAYERS=${BENCH_PULL_LAYERS:-3}  # case 8: random-data layers on top of the busybox one
C8_LAYER_MB=${BENCH_PULL_LAYER_MB:-4}  # case 8: MiB of random data in each
CONC=${BENCH_CONCURRENCY:-50}      # containers at once in case 5
RSS_RUNS=${BENCH_RSS_RUNS:-20}     # /usr/bin/time samples per runtime in case 4
MEM_FLOOR_KIB=${BENCH_MEM_FLOOR_KIB:-64}  # case 4 bisects memory limits between this and 64 MiB
DOCKER=/usr/bin/docker             # Debian's client, matching dockerd 20.10
PODMAN=/usr/bin/podman
BUILDAH=/usr/bin/buildah

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (containers, cgroups and dockerd need it)"

# ---------------------------------------------------------------- which cases
all_cases="1 2 3 4 5 6 7 8 9"
sel=""
if (($#)); then
  for a in "$@"; do
    case $a in
      all) sel="$all_cases" ;;
      case[1-9] | [1-9]) sel="$sel ${a#case}" ;;
      -h | --help) sed -n '2,/^set -euo/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
      *) die "unknown argument '$a' (expected case1..case9, 1..9 or all)" ;;
    esac
  done
else
  sel=${BENCH_CASES:-$all_cases}
  sel=${sel//case/}
fi
if [ "${BENCH_SKIP_DOCKER:-0}" = 1 ]; then sel=$(for c in $sel; do [ "$c" = 6 ] || [ "$c" = 7 ] || echo "$c"; done); fi
sel=$(printf '%s\n' $sel | sort -un | tr '\n' ' ')
sel=${sel% }
want() { [[ " $sel " == *" $1 "* ]]; }
log "cases: ${sel:-none}"

# ---------------------------------------------------------------- dependencies
need_pkgs=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in hyperfine jq runc crun busybox-static time gnuplot-nox python3 util-linux procps; do
  have_pkg "$p" || need_pkgs+=("$p")
done
if want 6 || want 7; then have_pkg docker.io || need_pkgs+=(docker.io); fi
if want 7; then for p in podman buildah conmon; do have_pkg "$p" || need_pkgs+=("$p"); done; fi
if want 8; then for p in docker-registry skopeo podman conmon umoci; do have_pkg "$p" || need_pkgs+=("$p"); done; fi
if want 9; then for p in systemd dbus python3-pytest; do have_pkg "$p" || need_pkgs+=("$p"); done; fi
if ((${#need_pkgs[@]})); then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
PY=/usr/bin/python3

# ---------------------------------------------------------------- puncker
BUILD_NOTE=""
mkdir -p "$TMPR"
# the binaries to build: puncker always; pieces for cases 7 and 8 (unless PIECES names one)
targets=()
[ -n "${PUNCKER:-}" ] || targets+=(puncker)
if (want 7 || want 8) && [ -z "${PIECES:-}" ]; then targets+=(pieces); fi
if ((${#targets[@]})); then
  if [ -f "$REPO/build/build.ninja" ] || [ -f "$REPO/build/Makefile" ]; then
    log "building ${targets[*]} (cmake --build build --target ${targets[*]})"
    if ! cmake --build "$REPO/build" --target "${targets[@]}" >"$RESULTS/tmp/build.log" 2>&1; then
      for t in "${targets[@]}"; do
        [ -x "$REPO/build/src/$t" ] || { cat "$RESULTS/tmp/build.log" >&2; die "$t does not build"; }
      done
      BUILD_NOTE="cmake --build failed ($(tail -n 1 "$RESULTS/tmp/build.log" | cut -c1-200)); measured the binaries already in build/"
      log "warning: $BUILD_NOTE"
    fi
    rm -f "$RESULTS/tmp/build.log"
  else
    log "no build/ yet: installing build deps and building"
    "$REPO/scripts/install-deps.sh"
    "$REPO/scripts/build.sh" >/dev/null
  fi
fi
PUNCKER=${PUNCKER:-$REPO/build/src/puncker}
PUNCKER=$(readlink -f "$PUNCKER")
[ -x "$PUNCKER" ] || die "puncker not found at $PUNCKER"
PIECES_SRC=""
if want 7 || want 8; then
  PIECES=${PIECES:-$REPO/build/src/pieces}
  PIECES_SRC=$(readlink -f "$PIECES")
  [ -x "$PIECES_SRC" ] || die "pieces not found at $PIECES"
fi
CRUN=$(command -v crun)
RUNC=$(command -v runc)
RUNTIMES=(puncker crun runc)
declare -A BIN=([puncker]=$PUNCKER [crun]=$CRUN [runc]=$RUNC)

# ---------------------------------------------------------------- scratch space
mkdir -p "$TMPR"
rm -f "$TMPR"/*.json "$TMPR"/*.jsonl "$TMPR"/*.dat "$TMPR"/*.gp "$TMPR"/*.log
WORK=$(mktemp -d /tmp/pieces-bench.XXXXXX)
# Measure a snapshot: a rebuild of build/ during the run (another shell, another engineer)
# must not swap the binary between cases or between the runs of one case.
PUNCKER_SRC=$PUNCKER
mkdir -p "$WORK/bin"
cp "$PUNCKER_SRC" "$WORK/bin/puncker"
PUNCKER=$WORK/bin/puncker
if [ -n "$PIECES_SRC" ]; then cp "$PIECES_SRC" "$WORK/bin/pieces"; PIECES=$WORK/bin/pieces; fi
BIN[puncker]=$PUNCKER
declare -A ROOT
for r in "${RUNTIMES[@]}"; do ROOT[$r]=$WORK/root-$r; mkdir -p "${ROOT[$r]}"; done
NOTES=$TMPR/notes.jsonl
: >"$NOTES"

DOCKERD_STARTED=0
DOCKERD_PID=
DAEMON_JSON=/etc/docker/daemon.json
DAEMON_JSON_BACKUP=
DAEMON_JSON_TOUCHED=0
C7_DIRTY=0
C8_DIRTY=0
cleanup() {
  set +e
  for r in "${RUNTIMES[@]}"; do "$BENCH/lib/clean.sh" "${BIN[$r]}" "${ROOT[$r]}"; done
  [ "$C7_DIRTY" = 0 ] || case7_clean
  [ "$C8_DIRTY" = 0 ] || case8_clean
  if [ "$DOCKERD_STARTED" = 1 ] && [ -n "$DOCKERD_PID" ]; then
    log "stopping the dockerd this script started (pid $DOCKERD_PID)"
    kill "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
  fi
  if [ "$DAEMON_JSON_TOUCHED" = 1 ]; then
    if [ -n "$DAEMON_JSON_BACKUP" ]; then cp "$DAEMON_JSON_BACKUP" "$DAEMON_JSON"; else rm -f "$DAEMON_JSON"; fi
    # a dockerd that was running before us gets its own config back
    if [ "$DOCKERD_STARTED" = 0 ] && pid=$(pidof dockerd); then kill -HUP $pid; fi
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# note CASE CONTENDER STATUS TEXT [PART] — a fact for the report (failed / not-available /
# info); PART tells the tables of one case apart (case 7: run, build)
note() {
  jq -nc --arg case "$1" --arg who "$2" --arg status "$3" --arg text "$4" --arg part "${5:-}" \
    '{case: ($case|tonumber), who: $who, status: $status, text: $text}
     + (if $part == "" then {} else {part: $part} end)' >>"$NOTES"
}
# last non-empty line of a file, trimmed
last_line() { grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 1 | cut -c1-400 || true; }

# ---------------------------------------------------------------- bundles
# The rootfs: Debian's static busybox and its applet links, nothing downloaded.
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{bin,proc,sys,dev,etc,tmp}
cp /bin/busybox "$ROOTFS/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$ROOTFS/bin/$a"; done
"$RUNC" spec -b "$WORK" 2>/dev/null || (cd "$WORK" && "$RUNC" spec)
BASE_CONFIG=$WORK/config.base.json
mv "$WORK/config.json" "$BASE_CONFIG"
# make_bundle DIR JQ-FILTER — a bundle whose config is runc's default spec, edited for the
# benchmark (no terminal, ociVersion 1.0.2 for crun 1.8, read-only root) and then by FILTER.
make_bundle() {
  mkdir -p "$1"
  [ -e "$1/rootfs" ] || cp -a "$ROOTFS" "$1/rootfs"
  jq ".process.terminal = false | .ociVersion = \"1.0.2\" | .root.readonly = true
      | .process.args = [\"/bin/true\"] | $2" "$BASE_CONFIG" >"$1/config.json"
}
B_TRUE=$WORK/b-true
B_SLEEP=$WORK/b-sleep
B_MEM=$WORK/b-mem
make_bundle "$B_TRUE" '.'
make_bundle "$B_SLEEP" '.process.args = ["/bin/sleep", "3600"]'

# ---------------------------------------------------------------- crun on a hybrid host
if [ -d /sys/fs/cgroup/unified ] && ! mountpoint -q /sys/fs/cgroup/hugetlb 2>/dev/null \
   && grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; then
  log "moving hugetlb to a v1 hierarchy so that crun accepts this hybrid host"
  mkdir -p /sys/fs/cgroup/hugetlb
  mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
fi

# ---------------------------------------------------------------- meta
ver() { "$@" 2>&1 | head -n 1 || true; }
jq -n \
  --arg date "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" \
  --arg nproc "$(nproc)" \
  --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
  --arg mem "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)" \
  --arg kernel "$(uname -r)" \
  --arg os "$(. /etc/os-release && echo "$PRETTY_NAME")" \
  --arg cgroups "$(if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then echo "hybrid (v1 controllers + cgroup2 at /sys/fs/cgroup/unified)"; elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo "v2"; else echo "v1"; fi)" \
  --arg puncker "$(ver "$PUNCKER" --version)" \
  --arg puncker_path "$PUNCKER_SRC" \
  --arg puncker_sha "$(sha256sum "$PUNCKER" | cut -c1-12)" \
  --arg load_start "$(cut -d' ' -f1-3 /proc/loadavg)" \
  --arg build_note "$BUILD_NOTE" \
  --arg commit "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$REPO" diff --quiet HEAD -- src 2>/dev/null || echo ' (src modified)')" \
  --arg crun "$(ver "$CRUN" --version)" \
  --arg runc "$(ver "$RUNC" --version)" \
  --arg docker "$(if want 6 || want 7; then ver dockerd --version; else echo 'not used (cases 6 and 7 not run)'; fi)" \
  --arg pieces "$(if want 7 || want 8; then ver "$PIECES" --version; else echo 'not used (cases 7 and 8 not run)'; fi)" \
  --arg pieces_path "$PIECES_SRC" \
  --arg pieces_sha "$(if want 7 || want 8; then sha256sum "$PIECES" | cut -c1-12; fi)" \
  --arg podman "$(if want 7 || want 8; then ver "$PODMAN" --version; else echo 'not used (cases 7 and 8 not run)'; fi)" \
  --arg buildah "$(if want 7; then ver "$BUILDAH" --version; else echo 'not used (case 7 not run)'; fi)" \
  --arg hyperfine "$(ver hyperfine --version)" \
  --arg cases "$sel" \
  --arg warmup "$WARMUP" --arg runs "$RUNS" --arg runs_conc "$RUNS_CONC" \
  --arg runs_docker "$RUNS_DOCKER" --arg runs_pieces "$RUNS_PIECES" --arg runs_pull "$RUNS_PULL" --arg runs_systemd "$RUNS_SYSTEMD" --arg conc "$CONC" \
  --arg rss_runs "$RSS_RUNS" \
  --arg mem_floor_kib "$MEM_FLOOR_KIB" \
  '$ARGS.named' >"$TMPR/meta.json"

# preflight CASE NAME LOGFILE CMD... — run a contender's command once; on failure, record the
# error line for the report and return 1 so that the contender is left out of hyperfine (which
# would otherwise abort the whole case).
# (PREFLIGHT_PART, when set, goes with the note: which table of the case failed)
preflight() {
  local c=$1 who=$2 errf=$3; shift 3
  local rc=0
  timeout 120 "$@" </dev/null >"$errf" 2>&1 || rc=$?
  [ "$rc" = 0 ] && return 0
  local line; line=$(last_line "$errf")
  [ "$rc" = 124 ] && line="timed out after 120 s${line:+: $line}"
  note "$c" "$who" failed "exit $rc: ${line:-no output}" "${PREFLIGHT_PART:-}"
  log "case $c${PREFLIGHT_PART:+ ($PREFLIGHT_PART)}: $who failed (exit $rc): ${line:-no output}"
  return 1
}

declare -A CASE_SECONDS
# hf CASE ARGS... — one hyperfine invocation for a case, JSON into results/tmp/caseN.json
# (CASE may carry a part: "7-run" writes case7-run.json and notes part "run")
hf() {
  local c=$1; shift
  local part=""; [[ $c == *-* ]] && part=${c#*-}
  hyperfine --style basic --export-json "$TMPR/case$c.json" "$@" >"$TMPR/case$c.log" 2>&1 || {
    note "${c%%-*}" all failed "hyperfine failed: $(last_line "$TMPR/case$c.log")" "$part"
    log "case $c: hyperfine failed, see $TMPR/case$c.log"
    return 0
  }
  grep -E '^\s+([0-9.]+ ± [0-9.]+ times faster|Time \(mean|Benchmark)' "$TMPR/case$c.log" | sed 's/^/    /' >&2 || true
}

clean() { "$BENCH/lib/clean.sh" "${BIN[$1]}" "${ROOT[$1]}"; }

# ---------------------------------------------------------------- case 1: run /bin/true
case1() {
  local args=() r
  for r in "${RUNTIMES[@]}"; do
    clean "$r"
    preflight 1 "$r" "$WORK/pf1-$r" "${BIN[$r]}" --root "${ROOT[$r]}" run -b "$B_TRUE" c1 || { clean "$r"; continue; }
    args+=(-n "$r" --prepare "$BENCH/lib/clean.sh ${BIN[$r]} ${ROOT[$r]}"
           "${BIN[$r]} --root ${ROOT[$r]} run -b $B_TRUE c1")
  done
  if preflight 1 floor "$WORK/pf1-floor" unshare -pfmuin --mount-proc /bin/true; then
    args+=(-n floor --prepare true "unshare -pfmuin --mount-proc /bin/true")
  fi
  hf 1 -N -w "$WARMUP" -r "$RUNS" "${args[@]}"
}

# ---------------------------------------------------------------- case 2: create, start, delete
case2() {
  local args=() r cmd
  for r in "${RUNTIMES[@]}"; do
    local R="${BIN[$r]} --root ${ROOT[$r]}"
    cmd="$R create -b $B_TRUE c2 && $R start c2 && $R delete -f c2"
    clean "$r"
    preflight 2 "$r" "$WORK/pf2-$r" sh -c "$cmd" || { clean "$r"; continue; }
    args+=(-n "$r" --prepare "$BENCH/lib/clean.sh ${BIN[$r]} ${ROOT[$r]}" "$cmd")
  done
  # default shell (sh), whose start-up hyperfine measures and subtracts
  hf 2 -w "$WARMUP" -r "$RUNS" "${args[@]}"
}

# ---------------------------------------------------------------- case 3: exec into a running container
# (the help is read whole first: grep -q closing the pipe early would make the runtime die of
# SIGPIPE, and pipefail turn that into "no exec")
has_exec() {
  local help; help=$("${BIN[$1]}" --help 2>&1 || true)
  grep -qE '^[[:space:]]+exec[[:space:]]' <<<"$help"
}
case3() {
  local args=() r started=()
  for r in "${RUNTIMES[@]}"; do
    clean "$r"
    if ! has_exec "$r"; then
      # show what happens when one tries, against a running container of its own
      local what="no exec subcommand in \"$r --help\""
      if "${BIN[$r]}" --root "${ROOT[$r]}" run -d -b "$B_SLEEP" c3 </dev/null >/dev/null 2>"$WORK/pf3-$r"; then
        local rc=0
        "${BIN[$r]}" --root "${ROOT[$r]}" exec c3 /bin/true </dev/null >"$WORK/pf3-$r" 2>&1 || rc=$?
        what="$what; \"$r exec c3 /bin/true\" into a running $r container exits $rc: $(last_line "$WORK/pf3-$r")"
      fi
      clean "$r"
      note 3 "$r" not-available "$what"
      log "case 3: $r: not available yet: $what"
      continue
    fi
    if ! preflight 3 "$r" "$WORK/pf3-$r" "${BIN[$r]}" --root "${ROOT[$r]}" run -d -b "$B_SLEEP" c3; then
      clean "$r"; continue
    fi
    started+=("$r")
    preflight 3 "$r" "$WORK/pf3e-$r" "${BIN[$r]}" --root "${ROOT[$r]}" exec c3 /bin/true || continue
    args+=(-n "$r" "${BIN[$r]} --root ${ROOT[$r]} exec c3 /bin/true")
  done
  if ((${#args[@]})); then hf 3 -N -w "$WARMUP" -r "$RUNS" "${args[@]}"; fi
  for r in "${started[@]}"; do clean "$r"; done
}

# ---------------------------------------------------------------- case 4: memory
MIB=$((1024 * 1024))
# mem_probe RUNTIME LIMIT — does `run` of /bin/true exit 0 under this memory limit, 3 times out of 3?
mem_probe() {
  local r=$1 limit=$2
  make_bundle "$B_MEM" ".linux.resources.memory = {limit: $limit}"
  for _ in 1 2 3; do
    clean "$r"
    local rc=0
    timeout 30 "${BIN[$r]}" --root "${ROOT[$r]}" run -b "$B_MEM" c4m </dev/null >/dev/null 2>"$WORK/mem-$r.out" || rc=$?
    if [ "$rc" != 0 ]; then
      local why="exit $rc"
      [ "$rc" = 124 ] && why="$why (timed out)"
      ((rc > 128 && rc != 124)) && why="$why (killed by SIG$(kill -l $((rc - 128))))"
      local msg; msg=$(last_line "$WORK/mem-$r.out")
      echo "$why: ${msg:-no message}" >"$WORK/mem-$r.err"
      clean "$r"; return 1
    fi
  done
  return 0
}
case4() {
  local out=$TMPR/case4.json r
  echo '{}' >"$out"
  local who
  for who in "${RUNTIMES[@]}" floor; do
    # peak RSS: /usr/bin/time's %M is the largest maximum resident set size among the runtime
    # process and the descendants it waited for (its init helper, the container process)
    local samples=() cmd
    if [ "$who" = floor ]; then cmd=(unshare -pfmuin --mount-proc /bin/true)
    else cmd=("${BIN[$who]}" --root "${ROOT[$who]}" run -b "$B_TRUE" c4); fi
    local fail=""
    for _ in $(seq "$RSS_RUNS"); do
      [ "$who" = floor ] || clean "$who"
      if /usr/bin/time -f %M -o "$WORK/rss" "${cmd[@]}" </dev/null >/dev/null 2>"$WORK/rss.err"; then
        samples+=("$(tail -n 1 "$WORK/rss")")
      else
        fail=$(last_line "$WORK/rss.err"); break
      fi
    done
    if [ -n "$fail" ] || ((${#samples[@]} == 0)); then
      note 4 "$who" failed "peak RSS: run failed: ${fail:-no output}"
      jq --arg w "$who" --arg e "$fail" '.[$w].rss_error = $e' "$out" >"$out.new" && mv "$out.new" "$out"
    else
      jq --arg w "$who" --argjson s "[$(IFS=,; echo "${samples[*]}")]" '.[$w].rss_kib = $s' "$out" >"$out.new" && mv "$out.new" "$out"
      log "case 4: $who peak RSS samples (KiB): ${samples[*]}"
    fi
  done

  for r in "${RUNTIMES[@]}"; do
    # Is a memory limit applied at all? Run a sleeping container with 64 MiB and read its
    # memory cgroup's memory.limit_in_bytes from the host.
    clean "$r"
    make_bundle "$B_MEM" ".linux.resources.memory = {limit: $((64 * MIB))} | .process.args = [\"/bin/sleep\", \"3600\"]"
    local applied=false observed="" cgpath=""
    if "${BIN[$r]}" --root "${ROOT[$r]}" run -d -b "$B_MEM" c4a </dev/null >/dev/null 2>"$WORK/mem-$r.err"; then
      local pid; pid=$("${BIN[$r]}" --root "${ROOT[$r]}" state c4a | jq -r .pid)
      cgpath=$(awk -F: '$2 == "memory" {print $3}' "/proc/$pid/cgroup" 2>/dev/null || true)
      if [ -n "$cgpath" ] && [ -r "/sys/fs/cgroup/memory$cgpath/memory.limit_in_bytes" ]; then
        observed=$(cat "/sys/fs/cgroup/memory$cgpath/memory.limit_in_bytes")
      elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        cgpath=$(awk -F: '$1 == "0" {print $3}' "/proc/$pid/cgroup")
        observed=$(cat "/sys/fs/cgroup$cgpath/memory.max" 2>/dev/null || echo unreadable)
      fi
      [ "$observed" = $((64 * MIB)) ] && applied=true
    else
      note 4 "$r" failed "memory limit: run -d with a 64 MiB limit failed: $(last_line "$WORK/mem-$r.err")"
      observed="run failed"
    fi
    clean "$r"
    jq --arg w "$r" --argjson a "$applied" --arg o "$observed" --arg p "$cgpath" \
      '.[$w].limit_applied = $a | .[$w].limit_observed = $o | .[$w].limit_cgroup = $p' "$out" >"$out.new" && mv "$out.new" "$out"
    if [ "$applied" != true ]; then
      if [ "$observed" = "run failed" ]; then log "case 4: $r: run -d with a memory limit failed, limit not checked"
      else log "case 4: $r: limits not applied (asked 64 MiB, memory.limit_in_bytes = $observed)"; fi
      continue
    fi
    # Bisect, 4 KiB steps, between MEM_FLOOR_KIB and 64 MiB, for the smallest limit that still works.
    local lo=$((MEM_FLOOR_KIB * 1024)) hi=$((64 * MIB)) min="" lo_err="" fails_at=null
    if ! mem_probe "$r" "$hi"; then
      note 4 "$r" failed "does not start under 64 MiB: $(last_line "$WORK/mem-$r.err")"
      jq --arg w "$r" '.[$w].min_limit = null | .[$w].min_limit_note = "> 64 MiB"' "$out" >"$out.new" && mv "$out.new" "$out"
      continue
    fi
    if mem_probe "$r" "$lo"; then
      min=$lo
      log "case 4: $r starts even under the lowest limit probed, $MEM_FLOOR_KIB KiB"
    else
      lo_err=$(last_line "$WORK/mem-$r.err")
      while ((hi - lo > 4096)); do
        local mid=$(((lo + hi) / 2 / 4096 * 4096))
        ((mid > lo)) || mid=$((lo + 4096))
        if mem_probe "$r" "$mid"; then hi=$mid; else lo=$mid; lo_err=$(last_line "$WORK/mem-$r.err"); fi
      done
      min=$hi
      fails_at=$lo
      log "case 4: $r starts under $((min / 1024)) KiB (fails under $((lo / 1024)) KiB: $lo_err)"
    fi
    jq --arg w "$r" --argjson m "$min" --argjson f "$fails_at" --arg e "$lo_err" --argjson floor "$((MEM_FLOOR_KIB * 1024))" \
      '.[$w].min_limit = $m | .[$w].fails_at = $f | .[$w].fail_error = $e | .[$w].probe_floor = $floor' "$out" >"$out.new" && mv "$out.new" "$out"
    clean "$r"
  done
}

# ---------------------------------------------------------------- case 5: N containers at once
case5() {
  local args=() r
  for r in "${RUNTIMES[@]}"; do
    clean "$r"
    preflight 5 "$r" "$WORK/pf5-$r" "$BENCH/lib/concurrent.sh" "${BIN[$r]}" "${ROOT[$r]}" "$B_TRUE" "$CONC" c5- \
      || { clean "$r"; continue; }
    args+=(-n "$r" --prepare "$BENCH/lib/clean.sh ${BIN[$r]} ${ROOT[$r]}"
           "$BENCH/lib/concurrent.sh ${BIN[$r]} ${ROOT[$r]} $B_TRUE $CONC c5-")
  done
  hf 5 -N -w "$WARMUP" -r "$RUNS_CONC" "${args[@]}"
}

# ---------------------------------------------------------------- case 6: docker end to end
docker_up() { [ -S /var/run/docker.sock ] && timeout 10 "$DOCKER" version >/dev/null 2>&1; }
# docker_start CASE — once per invocation: puncker and crun in daemon.json's runtimes, and a
# dockerd (the running one, reloaded; else one started here and stopped by cleanup).
# Returns 1 (with a note for CASE) when no dockerd answers.
DOCKER_READY=0
docker_start() {
  [ "$DOCKER_READY" = 1 ] && return 0
  local want_rt
  want_rt=$(jq -n --arg p "$PUNCKER" --arg c "$CRUN" '{puncker: {path: $p}, crun: {path: $c}}')
  mkdir -p /etc/docker
  local cur='{}'
  if [ -s "$DAEMON_JSON" ]; then
    cur=$(cat "$DAEMON_JSON")
    if [ "$DAEMON_JSON_TOUCHED" = 0 ]; then
      DAEMON_JSON_BACKUP=$WORK/daemon.json.orig
      cp "$DAEMON_JSON" "$DAEMON_JSON_BACKUP"
    fi
  fi
  local merged; merged=$(jq --argjson rt "$want_rt" '.runtimes = ((.runtimes // {}) + $rt)' <<<"$cur")
  if [ "$(jq -S . <<<"$merged")" != "$(jq -S . <<<"$cur")" ]; then
    echo "$merged" >"$DAEMON_JSON"
    DAEMON_JSON_TOUCHED=1
  fi
  if docker_up; then
    log "case $1: using the running dockerd"
    if [ "$DAEMON_JSON_TOUCHED" = 1 ]; then kill -HUP "$(pidof dockerd)"; sleep 1; fi
  elif [ "$DOCKERD_STARTED" = 1 ]; then
    note "$1" all failed "the dockerd started for an earlier case does not answer"; return 1
  else
    log "case $1: starting dockerd (log: $TMPR/dockerd.log)"
    dockerd >"$TMPR/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    DOCKERD_STARTED=1
    for _ in $(seq 120); do docker_up && break; sleep 0.5; done
    docker_up || { note "$1" all failed "dockerd did not come up: $(last_line "$TMPR/dockerd.log")"; return 1; }
  fi
  DOCKER_READY=1
}
case6() {
  docker_start 6 || return 0
  local img=pieces-bench-bb:latest
  tar -C "$ROOTFS" -c . | "$DOCKER" import - "$img" >/dev/null
  local args=() r
  for r in "${RUNTIMES[@]}"; do
    local dcmd="$DOCKER run --rm --runtime=$r $img true"
    preflight 6 "$r" "$WORK/pf6-$r" $dcmd || continue
    args+=(-n "$r" "$dcmd")
  done
  if ((${#args[@]})); then hf 6 -N -w "$WARMUP" -r "$RUNS_DOCKER" "${args[@]}"; fi
  "$DOCKER" image rm "$img" >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------- case 7: pieces vs docker vs podman/buildah
# The same busybox rootfs as a tar.gz: pieces builds its base image from it (FROM_URL file://),
# docker and podman import it. Everything lives under $WORK/c7 (pieces' store, podman's and
# buildah's storage, the build contexts) or in dockerd under the pieces-bench-c7-* names, and
# case7_clean removes it all.
C7=$WORK/c7
C7_IMG=pieces-bench-c7-bb:latest      # docker's and podman's name of the imported rootfs
C7_X=pieces-bench-c7-x:latest         # what the rebuild tags, everywhere
PM_ARGS=()                             # podman's and buildah's global flags (their own storage)
BA_ARGS=()
C7_LIBPOD_CG_BEFORE=""
C7_PIECES_CG_BEFORE=""
case7_clean() {
  # pieces' containers (a --rm run interrupted by a failure) and its store
  if [ -n "${PIECES:-}" ] && [ -d "$C7/store" ]; then
    "$PIECES" --root "$C7/store" ps -a -q 2>/dev/null | xargs -r "$PIECES" --root "$C7/store" rm -f >/dev/null 2>&1 || true
  fi
  if ((${#PM_ARGS[@]})); then
    timeout 120 "$PODMAN" "${PM_ARGS[@]}" rm --all --force --time 0 >/dev/null 2>&1 || true
    timeout 60 "$BUILDAH" "${BA_ARGS[@]}" rm --all >/dev/null 2>&1 || true
    timeout 120 "$PODMAN" "${PM_ARGS[@]}" rmi --all --force >/dev/null 2>&1 || true
  fi
  if [ "$DOCKER_READY" = 1 ]; then
    "$DOCKER" image rm -f "$C7_X" "$C7_IMG" >/dev/null 2>&1 || true
  fi
  # anything still mounted under our directory (overlay of a container, podman's shm), then the directory
  "$BENCH/lib/wipe.sh" "$C7"
  # podman's cgroupfs parents (conmon's), if this case created them and nothing uses them now
  if [ -z "$C7_LIBPOD_CG_BEFORE" ]; then
    for d in /sys/fs/cgroup/*/libpod_parent/conmon /sys/fs/cgroup/*/libpod_parent; do
      [ -d "$d" ] && rmdir "$d" 2>/dev/null || true
    done
  fi
  # pieces' parent cgroups (it removes a container's own group, not the "pieces" parent), likewise
  if [ -z "$C7_PIECES_CG_BEFORE" ]; then
    for d in /sys/fs/cgroup/*/pieces; do [ -d "$d" ] && rmdir "$d" 2>/dev/null || true; done
  fi
  C7_DIRTY=0
}
# fully_cached WHO LOG — did this rebuild take every step from the cache? (a note if not)
fully_cached() {
  local who=$1 f=$2 ok=1
  case $who in
    pieces) grep -qE "\(id [0-9a-f]+; ([0-9]+) steps, \1 from the cache\)" "$f" || ok=0 ;;
    # FROM + 5 steps: the legacy builder and buildah say "Using cache" for each of the 5
    docker | buildah) [ "$(grep -c 'Using cache' "$f")" -ge 5 ] || ok=0 ;;
  esac
  if [ "$ok" = 0 ]; then
    note 7 "$who" info "the rebuild was not fully cached: $(grep -v 'Using cache' "$f" | grep -iE 'step|cache' | tail -n 3 | tr '\n' ' ')" build
    log "case 7: $who: the rebuild was not fully cached (see $f)"
  fi
}
case7() {
  C7_DIRTY=1
  mkdir -p "$C7"/{base,ctx,dctx,containers/tmp}
  ls -d /sys/fs/cgroup/*/libpod_parent >/dev/null 2>&1 && C7_LIBPOD_CG_BEFORE=yes
  ls -d /sys/fs/cgroup/*/pieces >/dev/null 2>&1 && C7_PIECES_CG_BEFORE=yes
  local tgz=$C7/busybox-rootfs.tar.gz
  tar -C "$ROOTFS" --numeric-owner -czf "$tgz" .
  local P="$PIECES --root $C7/store"
  PM_ARGS=(--root "$C7/containers/root" --runroot "$C7/containers/runroot" --tmpdir "$C7/containers/tmp"
           --storage-driver overlay --cgroup-manager cgroupfs --events-backend file --runtime "$RUNC")
  BA_ARGS=(--root "$C7/containers/root" --runroot "$C7/containers/runroot" --storage-driver overlay)
  local PM="$PODMAN ${PM_ARGS[*]}" BA="$BUILDAH ${BA_ARGS[*]}"

  # the images: pieces builds bb from the tarball; docker and podman import it
  echo "FROM_URL file://$tgz" >"$C7/base/Piecefile"
  local have_pieces=1 have_docker=1 have_podman=1
  PREFLIGHT_PART=run
  preflight 7 pieces "$WORK/pf7-pieces-base" $P build -t bb "$C7/base" || have_pieces=0
  if docker_start 7; then
    preflight 7 docker "$WORK/pf7-docker-import" "$DOCKER" import "$tgz" "$C7_IMG" || have_docker=0
  else
    have_docker=0
  fi
  preflight 7 podman "$WORK/pf7-podman-import" $PM import "$tgz" "$C7_IMG" || have_podman=0

  # ---- run --rm of /bin/true
  local args=() cmd
  if [ "$have_pieces" = 1 ]; then
    cmd="$P run --rm bb true"
    preflight 7 pieces "$WORK/pf7-pieces-run" $cmd && args+=(-n pieces "$cmd")
    cmd="$P run --rm --network none bb true"
    preflight 7 "pieces --network none" "$WORK/pf7-pieces-run-nn" $cmd && args+=(-n "pieces --network none" "$cmd")
  fi
  if [ "$have_docker" = 1 ]; then
    cmd="$DOCKER run --rm $C7_IMG true"
    preflight 7 docker "$WORK/pf7-docker-run" $cmd && args+=(-n docker "$cmd")
  fi
  if [ "$have_podman" = 1 ]; then
    cmd="$PM run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 $C7_IMG true"
    preflight 7 podman "$WORK/pf7-podman-run" $cmd && args+=(-n podman "$cmd")
  fi
  if ((${#args[@]})); then hf 7-run -N -w "$WARMUP" -r "$RUNS_PIECES" "${args[@]}"; fi

  # ---- a fully cached rebuild: the same steps for all three
  echo "copied in by COPY" >"$C7/ctx/motd.txt"
  cp "$C7/ctx/motd.txt" "$C7/dctx/motd.txt"
  local steps
  steps=$(cat <<'STEPS'
ENV GREETING="hello from pieces-bench"
WORKDIR /app
COPY motd.txt ./
RUN echo "$GREETING" > greeting && ls -l /app > listing
CMD ["cat", "/app/greeting"]
STEPS
)
  printf 'FROM_URL file://%s\n%s\n' "$tgz" "$steps" >"$C7/ctx/Piecefile"
  printf 'FROM %s\n%s\n' "$C7_IMG" "$steps" >"$C7/dctx/Dockerfile"
  PREFLIGHT_PART=build
  args=()
  # each: one uncached build (preflight), one rebuild checked to be fully cached, then hyperfine
  if [ "$have_pieces" = 1 ]; then
    cmd="$P build -t $C7_X $C7/ctx"
    if preflight 7 pieces "$WORK/pf7-pieces-build" $cmd && preflight 7 pieces "$WORK/pf7-pieces-rebuild" $cmd; then
      fully_cached pieces "$WORK/pf7-pieces-rebuild"
      args+=(-n pieces "$cmd")
    fi
  fi
  if [ "$have_docker" = 1 ]; then
    # the legacy builder of dockerd 20.10 (DOCKER_BUILDKIT=0 is in hyperfine's environment)
    cmd="$DOCKER build -t $C7_X $C7/dctx"
    if DOCKER_BUILDKIT=0 preflight 7 docker "$WORK/pf7-docker-build" $cmd &&
       DOCKER_BUILDKIT=0 preflight 7 docker "$WORK/pf7-docker-rebuild" $cmd; then
      fully_cached docker "$WORK/pf7-docker-rebuild"
      args+=(-n docker "$cmd")
    fi
  fi
  if [ "$have_podman" = 1 ]; then
    cmd="$BA bud --layers -t $C7_X $C7/dctx"
    local built=1
    if ! timeout 120 $cmd </dev/null >"$WORK/pf7-buildah-build" 2>&1; then
      # RUN with the default (oci) isolation failed: chroot isolation needs no runtime
      local why; why=$(last_line "$WORK/pf7-buildah-build")
      log "case 7 (build): buildah with the default isolation failed ($why); trying --isolation chroot"
      cmd="$BA bud --layers --isolation chroot -t $C7_X $C7/dctx"
      if preflight 7 buildah "$WORK/pf7-buildah-build" $cmd; then
        note 7 buildah info "--isolation chroot: the default isolation failed: $why" build
      else
        built=0
      fi
    fi
    if [ "$built" = 1 ] && preflight 7 buildah "$WORK/pf7-buildah-rebuild" $cmd; then
      fully_cached buildah "$WORK/pf7-buildah-rebuild"
      args+=(-n buildah "$cmd")
    fi
  fi
  PREFLIGHT_PART=
  if ((${#args[@]})); then DOCKER_BUILDKIT=0 hf 7-build -N -w "$WARMUP" -r "$RUNS_PIECES" "${args[@]}"; fi

  # what the report says about the set-up
  local drt=""; [ "$have_docker" = 1 ] && drt=$("$DOCKER" info --format '{{.DefaultRuntime}}' 2>/dev/null || true)
  jq -n --arg docker_runtime "$drt" --arg podman_runtime "$RUNC" --arg tgz_bytes "$(stat -c %s "$tgz")" \
    '$ARGS.named' >"$TMPR/case7.json"
  case7_clean
}

# ---------------------------------------------------------------- case 8: pull from a local registry
# Debian's docker-registry on 127.0.0.1 (a free port, storage under $WORK/c8) serves one image,
# pushed there by skopeo from an OCI layout made here: the busybox rootfs as one gzip layer and
# C8_LAYERS layers of C8_LAYER_MB MiB of random data each. Every timed run starts from an empty
# store (pieces), storage (podman) or layout (skopeo): hyperfine's --prepare wipes it.
C8=$WORK/c8
C8_REG_PID=
case8_clean() {
  if [ -n "$C8_REG_PID" ]; then
    kill "$C8_REG_PID" 2>/dev/null || true
    wait "$C8_REG_PID" 2>/dev/null || true  # 143: ended by our SIGTERM
    C8_REG_PID=
  fi
  "$BENCH/lib/wipe.sh" "$C8"
  C8_DIRTY=0
}
# c8_blob FILE — moves FILE into the layout's blobs under its digest; prints the digest
c8_blob() {
  local d; d=$(sha256sum "$1" | cut -d' ' -f1)
  mv "$1" "$C8/layout/blobs/sha256/$d"
  echo "sha256:$d"
}
# c8_layout — the image as an OCI layout at $C8/layout, named bb
c8_layout() {
  local L=$C8/layout dirs=("$ROOTFS") descs=() diffs=() i d size
  mkdir -p "$L/blobs/sha256"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
  for i in $(seq 1 "$C8_LAYERS"); do
    mkdir -p "$C8/random$i/data"
    head -c "$((C8_LAYER_MB * 1024 * 1024))" /dev/urandom >"$C8/random$i/data/random$i.bin"
    dirs+=("$C8/random$i")
  done
  for d in "${dirs[@]}"; do
    tar -C "$d" --numeric-owner -cf "$C8/layer.tar" .
    diffs+=("sha256:$(sha256sum "$C8/layer.tar" | cut -d' ' -f1)")
    gzip -n "$C8/layer.tar"
    size=$(stat -c %s "$C8/layer.tar.gz")
    descs+=("$(jq -nc --arg d "$(c8_blob "$C8/layer.tar.gz")" --argjson s "$size" \
      '{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $d, size: $s}')")
  done
  jq -nc --arg arch "$(dpkg --print-architecture)" '{architecture: $arch, os: "linux", config: {Cmd: ["/bin/sh"]},
    rootfs: {type: "layers", diff_ids: $ARGS.positional}}' --args "${diffs[@]}" >"$C8/config.json"
  size=$(stat -c %s "$C8/config.json")
  local config; config=$(jq -nc --arg d "$(c8_blob "$C8/config.json")" --argjson s "$size" \
    '{mediaType: "application/vnd.oci.image.config.v1+json", digest: $d, size: $s}')
  printf '%s\n' "${descs[@]}" | jq -sc --argjson c "$config" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: $c, layers: .}' >"$C8/manifest.json"
  size=$(stat -c %s "$C8/manifest.json")
  jq -nc --arg d "$(c8_blob "$C8/manifest.json")" --argjson s "$size" '{schemaVersion: 2, manifests: [{
    mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
    annotations: {"org.opencontainers.image.ref.name": "bb"}}]}' >"$L/index.json"
}
case8() {
  C8_DIRTY=1
  mkdir -p "$C8"
  c8_layout
  local port
  port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' \
    "$C8/registry" "$port" >"$C8/registry.yml"
  docker-registry serve "$C8/registry.yml" >"$C8/registry.log" 2>&1 &
  C8_REG_PID=$!
  local up=0
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
    sleep 0.1
  done
  if [ "$up" = 0 ]; then
    note 8 all failed "docker-registry did not start: $(last_line "$C8/registry.log")"
    case8_clean
    return 0
  fi
  local ref=127.0.0.1:$port/bench/bb:1
  if ! skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$C8/layout:bb" "docker://$ref" >"$C8/push.log" 2>&1; then
    note 8 all failed "skopeo could not push the image: $(last_line "$C8/push.log")"
    case8_clean
    return 0
  fi

  local args=() cmd wipe="$BENCH/lib/wipe.sh"
  local PM="$PODMAN --root $C8/podman/root --runroot $C8/podman/runroot --tmpdir $C8/podman/tmp --storage-driver overlay"
  PM="$PM --cgroup-manager cgroupfs --events-backend file"
  cmd="$PIECES --root $C8/pieces pull -q $ref"
  preflight 8 pieces "$WORK/pf8-pieces" $cmd && args+=(-n pieces --prepare "$wipe $C8/pieces" "$cmd")
  cmd="$PM pull -q --tls-verify=false $ref"
  preflight 8 podman "$WORK/pf8-podman" $cmd && args+=(-n podman --prepare "$wipe $C8/podman" "$cmd")
  cmd="skopeo --insecure-policy copy -q --src-tls-verify=false docker://$ref oci:$C8/skopeo:bb"
  preflight 8 skopeo "$WORK/pf8-skopeo" $cmd && args+=(-n skopeo --prepare "$wipe $C8/skopeo" "$cmd")
  # skopeo downloads only; umoci unpack then makes the root filesystem, as pieces and podman do
  "$wipe" "$C8/skopeo"
  cmd="$cmd && umoci unpack --image $C8/skopeo:bb $C8/bundle"
  preflight 8 "skopeo + umoci" "$WORK/pf8-umoci" bash -c "$cmd" &&
    args+=(-n "skopeo + umoci" --prepare "$wipe $C8/skopeo $C8/bundle" "$cmd")
  # not -N: the last command needs a shell, whose start-up hyperfine measures and subtracts
  if ((${#args[@]})); then hf 8 -w 1 -r "$RUNS_PULL" "${args[@]}"; fi

  jq -n --arg layers "$((C8_LAYERS + 1))" --arg layer_mb "$C8_LAYER_MB" \
    --arg bytes "$(du -sb "$C8/layout/blobs" | cut -f1)" \
    --arg registry "$(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null)" \
    --arg skopeo "$(ver skopeo --version)" --arg umoci "$(ver umoci --version)" '$ARGS.named' >"$TMPR/case8-setup.json"
  case8_clean
}

# ---------------------------------------------------------------- case 9: --systemd-cgroup under systemd
# This machine's pid 1 is not systemd: bench/lib/case9.py boots the host's systemd as pid 1 of
# a puncker container and runs hyperfine in there, each runtime making a transient scope over
# D-Bus for every container (see that script).
case9() {
  local rts=() r
  for r in "${RUNTIMES[@]}"; do [ "$r" = puncker ] || rts+=(--runtime "$r=${BIN[$r]}"); done
  "$PY" "$BENCH/lib/case9.py" --puncker "$PUNCKER" "${rts[@]}" --bundle "$B_TRUE" \
    --out "$TMPR/case9.json" --warmup "$WARMUP" --runs "$RUNS_SYSTEMD" >"$TMPR/case9.log" 2>&1 || {
    note 9 all failed "bench/lib/case9.py failed: $(last_line "$TMPR/case9.log")"
    log "case 9: failed, see $TMPR/case9.log"
    return 0
  }
  # a runtime that failed its trial run is left out there, with its error on a line of its own
  while IFS= read -r line; do
    r=${line#case 9: }; r=${r%% failed*}
    note 9 "$r" failed "${line#*: }"
  done < <(grep -E '^case 9: [^ ]+ failed' "$TMPR/case9.log" || true)
  grep -E '^\s+([0-9.]+ ± [0-9.]+ times faster|Time \(mean|Benchmark)' "$TMPR/case9.log" | sed 's/^/    /' >&2 || true
}

# ---------------------------------------------------------------- run
T0=$SECONDS
for c in $sel; do
  log "case $c"
  t=$SECONDS
  "case$c"
  CASE_SECONDS[$c]=$((SECONDS - t))
  log "case $c took ${CASE_SECONDS[$c]} s"
done
secs='{}'
for c in "${!CASE_SECONDS[@]}"; do secs=$(jq --arg c "$c" --argjson s "${CASE_SECONDS[$c]}" '.[$c] = $s' <<<"$secs"); done
jq --argjson s "$secs" --argjson total "$((SECONDS - T0))" --arg load_end "$(cut -d' ' -f1-3 /proc/loadavg)" \
  '.case_seconds = $s | .total_seconds = $total | .load_end = $load_end' \
  "$TMPR/meta.json" >"$TMPR/meta.json.new" && mv "$TMPR/meta.json.new" "$TMPR/meta.json"

"$PY" "$BENCH/report.py" "$TMPR" "$RESULTS/latest.md" "$RESULTS/latest.png"
log "wrote $RESULTS/latest.md and $RESULTS/latest.png ($((SECONDS - T0)) s)"
