#!/bin/sh
# clean.sh RUNTIME ROOT — force-delete every container left under a runtime's --root.
# Used as hyperfine's --prepare so that a failed iteration cannot break the next one.
# Always exits 0.
rt=$1 root=$2
[ -d "$root" ] || exit 0
for d in "$root"/*/; do
  [ -d "$d" ] || continue
  id=$(basename "$d")
  "$rt" --root "$root" delete -f "$id" >/dev/null 2>&1 || true
done
exit 0
