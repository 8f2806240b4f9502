#!/usr/bin/env bash
# The emoji unCLIP's from-scratch recipe on the device machine's GPU, the EMA weights left in $OUT: one device
# `run` call (models/README.md, "Training on a GPU", gives the call). Also runs anywhere with --device cpu (dry runs).
#
#   bash models/toolchain/gpu/train-on-device.sh [gpu-train options: --budget-minutes 6 --deadline-minutes 8.5
#                                                 --batch decoder=192 --device cpu --max-steps N ...]
#
# Environment: OUT (required: what comes back), PY (default python3), WHEELS (default .whl), SITE (where the wheels
# are installed, default /tmp/site), DATA (default models/work/emoji-data), FORCE_WHEELS=1 (install the wheels
# even where diffusers already imports), EMOJI_T0 (start of the wall-time deadline, default now).
# Exit status: 0 the bundle is in $OUT within the tool's limits; 1 no bundle; 3 wheels; 4 data; 5 python.
set -uo pipefail
export EMOJI_T0=${EMOJI_T0:-$(date +%s.%N)}
export PYTHONUNBUFFERED=1
cd "$(dirname "${BASH_SOURCE[0]}")/../../.." || exit 5
: "${OUT:?set OUT to the folder that comes back}"
PY=${PY:-python3}
WHEELS=${WHEELS:-.whl}
SITE=${SITE:-/tmp/site}
DATA=${DATA:-models/work/emoji-data}
mkdir -p "$OUT"
LOG="$OUT/device-log.txt"
say() { echo "[setup $(date -u +%H:%M:%S)] $*" | tee -a "$LOG"; }

say "host $(hostname), $(nproc) CPUs, $("$PY" -c 'import sys; print("python", sys.version.split()[0], sys.executable)')"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | sed 's/^/[setup] gpu: /' | tee -a "$LOG"
fi

# 1. the carried wheels (diffusers and what it needs that the machine lacks), unless diffusers already imports
if [ -z "${FORCE_WHEELS:-}" ] && "$PY" -c "import diffusers" 2>/dev/null; then
  say "diffusers $("$PY" -c 'import diffusers; print(diffusers.__version__)') already importable: wheels not installed"
else
  if ! ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    say "no wheels in $WHEELS and no diffusers: carry .whl (models/README.md, Training on a GPU)"; exit 3
  fi
  if ! "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
       "$WHEELS"/*.whl 2>&1 | tee -a "$LOG"; then
    say "pip install of $WHEELS/*.whl into $SITE failed"; exit 3
  fi
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  say "installed into $SITE: $(cd "$WHEELS" && ls *.whl | tr '\n' ' ')"
fi
export PYTHONPATH="$PWD/models/toolchain${PYTHONPATH:+:$PYTHONPATH}"

# 2. the data (models/work/emoji-data, carried: the npm packages it is built from are not on the machine)
if [ ! -f "$DATA/emoji64.npz" ] || [ ! -f "$DATA/emoji64.json" ]; then
  say "$DATA: emoji64.npz / emoji64.json missing: carry models/work/emoji-data"; exit 4
fi
"$PY" -c "import torch, diffusers, transformers; print('[setup] torch', torch.__version__, '| cuda', torch.cuda.is_available(), '| diffusers', diffusers.__version__, '| transformers', transformers.__version__)" 2>&1 | tee -a "$LOG" || exit 5

# 3. preflight, the recipe's stages within the deadline, the bundle (gpu.py)
"$PY" -m unclip_toolchain.emoji gpu-train --out "$OUT" --data "$DATA" "$@"
rc=$?
echo "[setup] gpu-train exit $rc; \$OUT:"; ls -l "$OUT"
exit $rc
