"""The open-licensed npm packages the emoji dataset is built from (exact versions) and where they live.

They are installed into a git-ignored work folder with npm's own client, never into the app's package.json.
Apple and Facebook artwork (in the base `emoji-datasource` package) is not open and is never used.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[4]
WORK_DIR = REPO_ROOT / "models" / "work"
NPM_PREFIX = WORK_DIR / "emoji-npm"
DATA_DIR = WORK_DIR / "emoji-data"
RUN_DIR = WORK_DIR / "emoji-run"

PACKAGES = {
    "emoji-datasource-google": "16.0.0",          # Noto PNGs 64 px, Apache-2.0 (package metadata MIT)
    "emoji-datasource-twitter": "16.0.0",         # Twemoji PNGs 64 px, CC-BY 4.0 (package metadata MIT)
    "emojibase-data": "17.0.0",                   # CLDR 48 labels + tags, MIT
    "@iconify-json/fluent-emoji-flat": "1.2.6",   # Fluent Emoji Flat SVG, MIT (Microsoft)
    "@resvg/resvg-js": "2.6.2",                   # SVG rasteriser (MPL-2.0), tool only
}


def node_modules(prefix: Path = NPM_PREFIX) -> Path:
    return prefix / "node_modules"


def ensure_npm_packages(prefix: Path = NPM_PREFIX) -> None:
    """Install the pinned packages into `prefix` unless exactly those versions are already there."""
    missing = []
    for name, version in PACKAGES.items():
        pj = node_modules(prefix) / name / "package.json"
        if not pj.is_file() or json.loads(pj.read_text())["version"] != version:
            missing.append(f"{name}@{version}")
    if not missing:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm not found on PATH: needed to fetch the emoji packages")
    prefix.mkdir(parents=True, exist_ok=True)
    cmd = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--save-exact", *missing]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
