#!/usr/bin/env bash
# Set up the model toolchain's Python environment in models/.venv (git-ignored), from scratch or incrementally.
#   bash models/toolchain/setup.sh          (npm run models:setup)
# Idempotent: skipped when the venv exists and was built from the current requirements.txt (sha256 stamp).
# Makes `python -m unclip_toolchain.*` importable through a .pth file pointing at models/toolchain.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/models/.venv"
REQ="$ROOT/models/toolchain/requirements.txt"
STAMP="$VENV/.requirements.sha256"
PYTHON="${PYTHON:-python3}"

want="$(sha256sum "$REQ" | cut -d' ' -f1)"

link_package() {
  local site
  site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  printf '%s\n' "$ROOT/models/toolchain" > "$site/unclip_toolchain.pth"
}

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  link_package
  echo "models/.venv is up to date (requirements sha256 ${want:0:12})"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -c 'import sys; assert sys.version_info[:2] >= (3, 10), "Python >= 3.10 needed"' \
    || { echo "error: $PYTHON: Python 3.10 or newer is needed" >&2; exit 1; }
  echo "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

echo "installing models/toolchain/requirements.txt into models/.venv"
"$VENV/bin/python" -m pip install --disable-pip-version-check --quiet -r "$REQ"
link_package
"$VENV/bin/python" -c 'import unclip_toolchain, torch, diffusers, transformers, onnx, onnxruntime' \
  || { echo "error: models/.venv: toolchain imports failed after install" >&2; exit 1; }
printf '%s\n' "$want" > "$STAMP"
echo "models/.venv ready (requirements sha256 ${want:0:12})"
