"""Rebuild diffusers' UnCLIPPipeline from an exported pack: module configs from the pack's diffusers-config.json,
weights from the ONNX graphs' initializers, schedulers from the manifest.

This is what lets `unclip bench --vs-diffusers` time diffusers on exactly the pack's weights when the PyTorch
checkpoint is not at hand (the shipped emoji pack: its weights live only in git as ONNX).

Weights named like the module's parameters ("model.<key>", the export wrapper's prefix) load directly. Constant
folding renamed others ("onnx::MatMul_607") and torch.onnx stores equal tensors once, so every initializer is also
placed through the nodes that consume it: a node's name gives the module path
("/model/text_model/encoder/layers.0/self_attn/q_proj/MatMul") and (module type, op, input slot) the parameter
(a Linear's MatMul -> its weight, transposed; a GroupNorm's Mul / Add -> weight / bias; ...). The few left (embeddings
used by Add / Expand / Where) go to the one still-empty parameter of that module subtree with as many elements.
Every parameter must end up filled, with one value, or it is an error.
"""

from __future__ import annotations

import json
from pathlib import Path

from .clip_tokenizer import BOS_TOKEN, EOS_TOKEN, PAD_TOKEN
from .errors import PackError
from .manifest import verify_pack

CONFIG_FILE = "diffusers-config.json"
PIPELINE_COMPONENTS = ("text_encoder", "prior", "text_proj", "decoder", "super_res_first", "super_res_last")


def module_config(module) -> dict:
    """{"class", "config"} of a diffusers or transformers module, what `build_module` needs to rebuild it."""
    # transformers' PretrainedConfig or diffusers' FrozenDict; private keys ("_name_or_path": where it was loaded
    # from) would make the pack depend on the machine that exported it
    cfg = module.config.to_dict() if hasattr(module.config, "to_dict") else dict(module.config)
    cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
    return {"class": type(module).__name__, "config": json.loads(json.dumps(cfg, default=list))}


def build_module(entry: dict):
    import diffusers
    import transformers
    from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel

    name, cfg = entry["class"], entry["config"]
    if name == "UnCLIPTextProjModel":
        return UnCLIPTextProjModel.from_config(cfg)
    if hasattr(diffusers, name):
        return getattr(diffusers, name).from_config(cfg)
    if name in ("CLIPTextModelWithProjection", "CLIPVisionModelWithProjection"):
        cls = getattr(transformers, name)
        return cls(cls.config_class.from_dict(cfg))
    raise PackError(CONFIG_FILE, f"unknown module class {name!r}")


def _consumers(graph) -> dict[str, list]:
    out: dict[str, list] = {}
    for node in graph.node:
        for slot, i in enumerate(node.input):
            out.setdefault(i, []).append((node, slot))
    return out


# (module type, consuming op, input slot) -> parameter name and whether the initializer is its transpose
_ROLES = {
    ("Linear", "MatMul", 1): ("weight", True), ("Linear", "Add", 0): ("bias", False),
    ("Linear", "Add", 1): ("bias", False), ("Linear", "Gemm", 1): ("weight", False),
    ("Linear", "Gemm", 2): ("bias", False), ("Conv2d", "Conv", 1): ("weight", False),
    ("Conv2d", "Conv", 2): ("bias", False), ("GroupNorm", "Mul", 1): ("weight", False),
    ("GroupNorm", "Add", 1): ("bias", False), ("LayerNorm", "LayerNormalization", 1): ("weight", False),
    ("LayerNorm", "LayerNormalization", 2): ("bias", False), ("Embedding", "Gather", 0): ("weight", False),
}


def _module_path(module, node_name: str) -> str | None:
    """'/model/a/b.0/c/MatMul' -> 'a.b.0.c' when that submodule exists ('' for the root)."""
    parts = node_name.strip("/").split("/")
    if parts[0] != "model":
        return ""
    path = ".".join(parts[1:-1])
    try:
        module.get_submodule(path)
    except AttributeError:
        return None
    return path


def load_onnx_weights(module, onnx_path: Path, prefilled: dict | None = None) -> None:
    """Fill `module`'s parameters (and the buffers the graph keeps) from `onnx_path`'s initializers."""
    import onnx
    import torch
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path), load_external_data=True)
    params = dict(module.named_parameters())
    state = module.state_dict()
    values: dict[str, torch.Tensor] = dict(prefilled or {})
    consumers = _consumers(model.graph)

    def put(key: str, arr, where: str) -> None:
        target = state[key]
        t = torch.from_numpy(arr.copy()).to(target.dtype)
        if t.numel() != target.numel():
            raise PackError(onnx_path, f"{where}: {key} has {target.numel()} elements, the initializer {t.numel()}")
        t = t.reshape(target.shape)
        if key in values and not torch.equal(values[key], t):
            raise PackError(onnx_path, f"{where}: {key} would be filled twice with different values")
        values[key] = t

    aliases: dict[str, list[str]] = {}  # torch.onnx stores equal tensors once: the others are Identity outputs
    for node in model.graph.node:
        if node.op_type == "Identity":
            aliases.setdefault(node.input[0], []).append(node.output[0])

    def names_of(name: str) -> list[str]:
        return [name] + [n for a in aliases.get(name, []) for n in names_of(a)]

    unplaced = []
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        placed = False
        names = names_of(init.name)
        for name in names:
            if name.startswith("model.") and name[6:] in state:
                put(name[6:], arr, name)
                placed = True
        for node, slot in (c for name in names for c in consumers.get(name, [])):
            if node.op_type == "Identity":
                continue
            path = _module_path(module, node.name)
            if path is None:
                continue
            role = _ROLES.get((type(module.get_submodule(path)).__name__, node.op_type, slot))
            if role and arr.ndim >= 1:
                key = f"{path}.{role[0]}" if path else role[0]
                if key in state:
                    put(key, arr.T if role[1] else arr, init.name)
                    placed = True
        if not placed and init.name.startswith("onnx::") and len(consumers.get(init.name, [])) == 1:
            unplaced.append((init, arr))
    # What no rule covers (the prior's positional / prd embeddings, text_proj's learned CFG embedding, consumed by
    # Add / Expand / Where): the one still-empty parameter of that module subtree with as many elements.
    for init, arr in unplaced:
        node = consumers[init.name][0][0]
        path = _module_path(module, node.name) or ""
        prefix = f"{path}." if path else ""
        free = [k for k, p in params.items() if k.startswith(prefix) and k not in values and p.numel() == arr.size]
        if len(free) == 1:
            put(free[0], arr, init.name)
        elif len(free) > 1:
            raise PackError(onnx_path, f"cannot place initializer {init.name} (consumed by {node.name}): "
                                       f"{len(free)} candidate parameters")
    missing = [k for k in params if k not in values]
    if missing:
        raise PackError(onnx_path, f"{len(missing)} parameters have no initializer, e.g. {missing[0]}")
    module.load_state_dict(values, strict=False)


def load_pack_pipeline(pack_dir: Path):
    """diffusers UnCLIPPipeline with the pack's weights, float32, eval mode, progress bar off."""
    import torch
    from diffusers import UnCLIPScheduler
    from diffusers.pipelines.deprecated.unclip import UnCLIPPipeline
    from transformers import PreTrainedTokenizerFast

    pack_dir = Path(pack_dir)
    manifest = verify_pack(pack_dir, check_hashes=False)
    cfg_path = pack_dir / CONFIG_FILE
    if not cfg_path.is_file():
        raise PackError(cfg_path, "missing: this pack predates it; re-export the pack, or pass the diffusers folder")
    configs = json.loads(cfg_path.read_text(encoding="utf-8"))
    modules = {}
    for name in PIPELINE_COMPONENTS:
        if name not in manifest["components"]:
            raise PackError(pack_dir / "manifest.json", f"no {name}: diffusers' UnCLIPPipeline needs it")
        m = build_module(configs[name])
        pre = {}
        if name == "prior":  # the normalisation statistics live in the manifest, not in the graph
            stats = manifest["prior_stats"]
            pre = {k: torch.tensor(stats[k], dtype=torch.float32).reshape(getattr(m, k).shape)
                   for k in ("clip_mean", "clip_std")}
        load_onnx_weights(m, pack_dir / manifest["components"][name]["file"], pre)
        modules[name] = m.float().eval().requires_grad_(False)
    t = manifest["tokenizer"]
    tok = PreTrainedTokenizerFast(tokenizer_file=str(pack_dir / t["file"]), model_max_length=t["max_length"],
                                  bos_token=BOS_TOKEN, eos_token=EOS_TOKEN, unk_token=EOS_TOKEN, pad_token=PAD_TOKEN)
    if (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) != (t["pad_token_id"], t["bos_token_id"],
                                                                   t["eos_token_id"]):
        raise PackError(pack_dir / t["file"], "special token ids differ from manifest.json's tokenizer entry")
    sch = {k: UnCLIPScheduler(**v) for k, v in manifest["schedulers"].items()}
    pipe = UnCLIPPipeline(**modules, tokenizer=tok, prior_scheduler=sch["prior"], decoder_scheduler=sch["decoder"],
                          super_res_scheduler=sch["super_res"])
    pipe.set_progress_bar_config(disable=True)
    return pipe
