#!/usr/bin/env bash
# The device run rehearsed here on the CPU: train-on-device.sh exactly as the device call runs it (the wheels
# installed into a temporary --target, the packages the device lacks made unimportable), with the device forced to
# cpu and a tiny budget; then gpu-import of what it wrote, status, and (unless NO_EVAL=1) eval + export of it.
#   bash models/toolchain/gpu/dry-run.sh            # ~1 min + ~4.5 min eval/export on the 2-core VM
# Environment: DRY (work folder, default /tmp/emoji-gpu-dry, emptied first), PY (default models/.venv/bin/python),
# BUDGET (training minutes, default 0.5), EMOJI_THREADS (default 1), NO_EVAL=1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
D=${DRY:-/tmp/emoji-gpu-dry}
PY=${PY:-$PWD/models/.venv/bin/python}
rm -rf "$D" && mkdir -p "$D"
OUT="$D/OUT" FORCE_WHEELS=1 SITE="$D/site" PY="$PY" PYTHONPATH="$PWD/models/toolchain/gpu/dry-run" \
  EMOJI_THREADS=${EMOJI_THREADS:-1} \
  bash models/toolchain/gpu/train-on-device.sh --device cpu --budget-minutes "${BUDGET:-0.5}" --deadline-minutes 4 \
  --run "$D/run"
"$PY" -m unclip_toolchain.emoji gpu-import --from "$D/OUT" --run "$D/imported"
"$PY" -m unclip_toolchain.emoji status --run "$D/imported"
if [ -z "${NO_EVAL:-}" ]; then
  "$PY" -m unclip_toolchain.emoji eval --run "$D/imported" --prompts 8 --sheet-prompts 2
  "$PY" -m unclip_toolchain.emoji export --run "$D/imported" --out "$D/pack"
fi
echo "dry run: ok ($D)"
