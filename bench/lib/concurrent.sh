#!/bin/sh
# concurrent.sh RUNTIME ROOT BUNDLE N PREFIX — start N containers at once with
# `RUNTIME run` (foreground: each run waits for its container, reaps it and deletes it),
# wait for all of them. Exits 1 (with a count on stderr) if any of them failed.
rt=$1 root=$2 bundle=$3 n=$4 prefix=$5
i=1
pids=
while [ "$i" -le "$n" ]; do
  "$rt" --root "$root" run -b "$bundle" "$prefix$i" </dev/null >/dev/null &
  pids="$pids $!"
  i=$((i + 1))
done
fail=0
for p in $pids; do
  wait "$p" || fail=$((fail + 1))
done
if [ "$fail" -ne 0 ]; then
  echo "concurrent.sh: $fail of $n containers failed ($rt)" >&2
  exit 1
fi
