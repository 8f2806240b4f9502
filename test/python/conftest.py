"""Shared fixtures for the model toolchain tests (models/toolchain). Run: models/.venv/bin/python -m pytest test/python"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLCHAIN = ROOT / "models" / "toolchain"
if str(TOOLCHAIN) not in sys.path:
    sys.path.insert(0, str(TOOLCHAIN))

import torch  # noqa: E402

torch.set_num_threads(2)

TINY_PACK = ROOT / "test" / "fixtures" / "tiny-pack"
TINY_FIXTURE = ROOT / "test" / "fixtures" / "tiny-fixture"
CORPUS = ROOT / "test" / "fixtures" / "tokenizer-corpus.json"

# Smallest arguments that still cover every code path (CFG, batching, SR first/last, variation).
SMALL_ARGS = ["--seed", "3", "--layers", "1", "--prompts", "a red rocket, twemoji style", "--n", "1",
              "--steps-prior", "2", "--steps-decoder", "2", "--steps-sr", "2", "--no-check"]


def python_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(TOOLCHAIN) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture(scope="session")
def small_builds(tmp_path_factory):
    """The tiny builder run twice with the same small arguments (determinism), keeping run 1's pipeline folders."""
    from unclip_toolchain import tiny

    base = tmp_path_factory.mktemp("small")
    runs = []
    for i in (1, 2):
        a = tiny.build_parser().parse_args(SMALL_ARGS + ["--out-pack", str(base / f"run{i}" / "pack"),
                                                         "--out-fixture", str(base / f"run{i}" / "fixture")])
        tiny.build(a, log=lambda *_: None, keep_pipelines=base / "pipelines" if i == 1 else None)
        runs.append(base / f"run{i}")
    return {"runs": runs, "pipeline": base / "pipelines" / "pipeline",
            "image_variation": base / "pipelines" / "image_variation"}
