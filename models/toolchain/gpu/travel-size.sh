#!/usr/bin/env bash
# What a device `run` call would send: tracked files present in the working tree, untracked files git does not
# ignore, and the carried paths given as arguments; the tool refuses more than 64 MiB (/work/.library/device).
#   bash models/toolchain/gpu/travel-size.sh .whl models/work/emoji-data
# Prints the total and the largest folders; exit 1 when over the limit.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.." || exit 2
LIMIT=$((64 * 1024 * 1024))
list() {
  git ls-files -z --cached --others --exclude-standard
  for p in "$@"; do [ -e "$p" ] && find "$p" -type f -print0; done
}
list "$@" | python3 -c '
import os, sys, collections
limit = int(sys.argv[1]); carried = sys.argv[2:]
seen, total, by = set(), 0, collections.Counter()
for p in sys.stdin.buffer.read().split(b"\0"):
    if not p or p in seen or not os.path.isfile(p):
        continue                                  # a tracked file moved away does not travel
    seen.add(p)
    n = os.path.getsize(p)
    total += n
    parts = p.decode().split("/")
    key = next((c for c in carried if p.decode().startswith(c.rstrip("/") + "/") or p.decode() == c), None)
    by[key + " (carried)" if key else "/".join(parts[:2]) if len(parts) > 2 else parts[0]] += n
for k, n in by.most_common(8):
    print(f"{n / 2**20:8.1f} MiB  {k}")
print(f"{total / 2**20:8.1f} MiB  in all, {len(seen)} files; limit {limit / 2**20:.0f} MiB:",
      "fits" if total <= limit else "OVER: the call would be refused")
sys.exit(0 if total <= limit else 1)
' "$LIMIT" "$@"
