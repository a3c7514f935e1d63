#!/usr/bin/env bash
# wipe.sh DIR... — unmounts whatever is mounted under each DIR (deepest first), then removes it:
# the empty start of each timed pull in case 8, and the end of cases 7 and 8.
for d in "$@"; do
  [ -e "$d" ] || continue
  awk -v d="$d" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$d"
done
