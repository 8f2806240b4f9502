"""Check a model pack: `python -m unclip_toolchain.verify PACKDIR [--no-hashes] [--load]`.

Validates manifest.json (schema v1 + contract checks), that every file is listed with the right sha256 and nothing
else is there, and with --load that every graph opens in onnxruntime with the manifest's inputs and outputs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .errors import PackError, run_cli
from .manifest import verify_pack

ORT_TYPES = {"float32": "tensor(float)", "int64": "tensor(int64)", "bool": "tensor(bool)"}


def check_sessions(pack: Path, manifest: dict) -> None:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    for name, comp in manifest["components"].items():
        path = pack / comp["file"]
        try:
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001
            raise PackError(path, f"onnxruntime cannot load it ({str(e).splitlines()[0] if str(e) else e!r})") from e
        for kind, values in (("inputs", sess.get_inputs()), ("outputs", sess.get_outputs())):
            got = [(v.name, v.type, [d if isinstance(d, int) else "batch" for d in v.shape]) for v in values]
            want = [(t["name"], ORT_TYPES[t["dtype"]], t["shape"]) for t in comp[kind]]
            if got != want:
                raise PackError(path, f"graph {kind} {got} differ from manifest.json {want}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m unclip_toolchain.verify", description=__doc__.split("\n")[0])
    p.add_argument("pack", type=Path)
    p.add_argument("--no-hashes", dest="hashes", action="store_false", help="skip sha256 (fast)")
    p.add_argument("--load", action="store_true", help="also open every graph in onnxruntime")
    a = p.parse_args(argv)
    if not a.pack.is_dir():
        raise PackError(a.pack, "folder not found")
    manifest = verify_pack(a.pack, check_hashes=a.hashes)
    if a.load:
        check_sessions(a.pack, manifest)
    print(f"{a.pack}: pack {manifest['name']!r} OK ({len(manifest['components'])} components, "
          f"{len(manifest['files'])} files)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
