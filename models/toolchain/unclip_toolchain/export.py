"""Export a diffusers unCLIP pipeline folder to a model pack (pack v1, see models/README.md).

    python -m unclip_toolchain.export --pipeline DIR [--image-variation DIR] --out PACKDIR
        [--name NAME] [--fp16] [--external-data] [--force] [--no-check]

DIR is an `UnCLIPPipeline.save_pretrained` folder (e.g. a local copy of kakaobrain/karlo-v1-alpha). The image encoder
and its feature extractor come from --image-variation (an `UnCLIPImageVariationPipeline` folder, e.g.
kakaobrain/karlo-v1-alpha-image-variations) or from DIR itself when it has an image_encoder folder.

The pack is written to a temporary folder beside PACKDIR and renamed into place only when complete and verified.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .errors import PackError, run_cli

OPSET = 17
EXTERNAL_DATA_THRESHOLD = 1_800_000_000  # bytes of weights; protobuf's hard limit is 2 GiB
CHECK_TOL_FP32 = 1e-3
CHECK_FLOP_BUDGET = 3e12  # FLOPs of one verification call (batch 3 unless that costs more; then batch 1)
MAX_LENGTH = 77

REQUIRED = {
    "UnCLIPPipeline": ["prior", "decoder", "text_encoder", "tokenizer", "text_proj", "prior_scheduler",
                       "decoder_scheduler"],
    "UnCLIPImageVariationPipeline": ["image_encoder", "feature_extractor"],
}
WEIGHT_GLOBS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")


@dataclass
class Loaded:
    """Torch modules and configs of one pipeline, everything in float32 eval mode."""

    text_encoder: object
    prior: object
    text_proj: object
    decoder: object
    super_res_first: object | None
    super_res_last: object | None
    image_encoder: object | None
    schedulers: dict
    image_preprocess: dict
    pipeline_dir: Path
    image_variation_dir: Path | None
    readme: str | None = None
    readme_variation: str | None = None
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------------------------
# Reading a pipeline folder


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise PackError(path, "file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise PackError(path, f"not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise PackError(path, "expected a JSON object")
    return data


def _check_pipeline_folder(root: Path, expected_class: str) -> dict:
    if not root.is_dir():
        raise PackError(root, "folder not found")
    index_path = root / "model_index.json"
    if not index_path.is_file():
        raise PackError(index_path, "file not found: not a diffusers pipeline folder (save_pretrained layout)")
    index = _read_json(index_path)
    cls = index.get("_class_name")
    accepted = {expected_class}
    if expected_class == "UnCLIPImageVariationPipeline":
        accepted.add("UnCLIPPipeline")  # a text-to-image folder that also carries an image encoder
    if cls not in accepted:
        raise PackError(index_path, f"_class_name is {cls!r}, expected {expected_class} (not an unCLIP pipeline)")
    for name in REQUIRED[expected_class]:
        if name not in index:
            raise PackError(index_path, f"component {name!r} is missing")
        sub = root / name
        if not sub.is_dir():
            raise PackError(sub, "component folder not found")
        if name.endswith("scheduler"):
            _read_json(sub / "scheduler_config.json")
        elif name == "feature_extractor":
            _read_json(sub / "preprocessor_config.json")
        elif name == "tokenizer":
            if not any((sub / f).is_file() for f in ("tokenizer.json", "vocab.json")):
                raise PackError(sub / "vocab.json", "file not found (need vocab.json + merges.txt or tokenizer.json)")
        else:
            _read_json(sub / "config.json")
            if not any(any(sub.glob(g)) for g in WEIGHT_GLOBS):
                raise PackError(sub / "diffusion_pytorch_model.safetensors", "weights file not found")
    return index


def _load(kind: str, folder: Path):
    """Load one component (fp32, eval) with a one-line error naming the folder."""
    import torch

    try:
        if kind == "text_encoder":
            from transformers import CLIPTextModelWithProjection as cls
        elif kind == "image_encoder":
            from transformers import CLIPVisionModelWithProjection as cls
        elif kind == "prior":
            from diffusers import PriorTransformer as cls
        elif kind == "text_proj":
            from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel as cls
        elif kind == "decoder":
            from diffusers import UNet2DConditionModel as cls
        else:
            from diffusers import UNet2DModel as cls
        model = cls.from_pretrained(str(folder), torch_dtype=torch.float32)
    except PackError:
        raise
    except Exception as e:  # noqa: BLE001 - any loader failure is reported as one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PackError(folder, f"cannot load {kind} ({type(e).__name__}: {first})") from e
    return model.eval()


_CLASSES = {
    "text_encoder": ("transformers", "CLIPTextModelWithProjection"),
    "image_encoder": ("transformers", "CLIPVisionModelWithProjection"),
    "prior": ("diffusers", "PriorTransformer"),
    "text_proj": ("diffusers.pipelines.deprecated.unclip.text_proj", "UnCLIPTextProjModel"),
    "decoder": ("diffusers", "UNet2DConditionModel"),
    "super_res": ("diffusers", "UNet2DModel"),
}


def _skeleton(kind: str, folder: Path):
    """The component built from its config.json on torch's meta device: its config (with the class defaults filled
    in) and class, no weights, no memory."""
    import importlib

    import torch

    mod, name = _CLASSES[kind]
    cls = getattr(importlib.import_module(mod), name)
    try:
        with torch.device("meta"):
            if mod == "transformers":
                return cls(cls.config_class.from_pretrained(str(folder)))
            return cls.from_config(cls.load_config(str(folder)))
    except Exception as e:  # noqa: BLE001 - any config problem is reported as one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PackError(folder / "config.json", f"cannot build {kind} from it ({type(e).__name__}: {first})") from e


class LazyModule:
    """A pipeline component that is not loaded yet (issue 18: Karlo's 15 GB do not fit at once).

    `.config` comes from config.json (a meta-device skeleton); `load()` reads the weights and returns a fresh module
    that the caller frees; any other attribute (`state_dict`, calling it, ...) loads the module once and keeps it,
    so code written for loaded modules keeps working on small pipelines."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind, self.folder = kind, Path(folder)
        self._skel = _skeleton(kind, self.folder)
        self._module = None

    @property
    def config(self):
        return (self._module or self._skel).config

    @property
    def class_name(self) -> str:
        return type(self._skel).__name__

    def load(self):
        return self._module if self._module is not None else _load(self.kind, self.folder)

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("kind", "folder", "_skel", "_module"):
            raise AttributeError(name)
        if self._module is None:
            self._module = _load(self.kind, self.folder)
        return getattr(self._module, name)

    def __call__(self, *args, **kwargs):
        return self.__getattr__("forward")(*args, **kwargs)


def materialize(module):
    """The torch module behind a component (loading a LazyModule's weights; the caller drops it when done)."""
    return module.load() if isinstance(module, LazyModule) else module


def _scheduler_entry(path: Path) -> dict:
    cfg = _read_json(path)
    if cfg.get("_class_name") != "UnCLIPScheduler":
        raise PackError(path, f"_class_name is {cfg.get('_class_name')!r}, expected UnCLIPScheduler")
    entry = {
        "num_train_timesteps": int(cfg.get("num_train_timesteps", 1000)),
        "beta_schedule": cfg.get("beta_schedule", "squaredcos_cap_v2"),
        "variance_type": cfg.get("variance_type", "fixed_small_log"),
        "prediction_type": cfg.get("prediction_type", "epsilon"),
        "clip_sample": bool(cfg.get("clip_sample", True)),
        "clip_sample_range": float(cfg.get("clip_sample_range", 1.0)),
    }
    if entry["beta_schedule"] != "squaredcos_cap_v2":
        raise PackError(path, f"beta_schedule {entry['beta_schedule']!r} is not supported (squaredcos_cap_v2)")
    if entry["variance_type"] not in ("fixed_small_log", "learned_range"):
        raise PackError(path, f"variance_type {entry['variance_type']!r} is not supported")
    if entry["prediction_type"] not in ("epsilon", "sample"):
        raise PackError(path, f"prediction_type {entry['prediction_type']!r} is not supported")
    return entry


RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}


def _image_preprocess(path: Path | None) -> dict:
    from transformers import CLIPImageProcessorPil

    cfg = _read_json(path) if path is not None else CLIPImageProcessorPil().to_dict()
    size = cfg.get("size", 224)
    size = size.get("shortest_edge", size.get("height")) if isinstance(size, dict) else size
    crop = cfg.get("crop_size", 224)
    if isinstance(crop, dict):
        if crop.get("height") != crop.get("width"):
            raise PackError(path, f"crop_size {crop} is not square")
        crop = crop.get("height")
    resample = RESAMPLE.get(cfg.get("resample", 3))
    if not isinstance(size, int) or not isinstance(crop, int) or resample is None:
        raise PackError(path, "size, crop_size or resample has an unsupported value")
    if cfg.get("do_center_crop", True) is False or cfg.get("do_resize", True) is False:
        raise PackError(path, "do_resize and do_center_crop must be true (the engine always resizes and crops)")
    return {
        "size": size,
        "crop_size": crop,
        "resample": resample,
        "rescale_factor": float(cfg.get("rescale_factor", 1 / 255)),
        "mean": [float(x) for x in cfg.get("image_mean", [0.48145466, 0.4578275, 0.40821073])],
        "std": [float(x) for x in cfg.get("image_std", [0.26862954, 0.26130258, 0.27577711])],
    }


def _check_tokenizer(folder: Path) -> None:
    """The pipeline's tokenizer must be the CLIP BPE vocabulary with Karlo's special tokens (we ship our own copy)."""
    from transformers import CLIPTokenizer

    from .clip_tokenizer import BOS_ID, EOS_ID, PAD_ID, load_vocab_and_merges

    try:
        tok = CLIPTokenizer.from_pretrained(str(folder))
    except Exception as e:  # noqa: BLE001
        raise PackError(folder, f"cannot load tokenizer ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
    vocab, _ = load_vocab_and_merges()
    if tok.get_vocab() != vocab:
        raise PackError(folder, "tokenizer vocabulary is not the CLIP BPE vocabulary (49408 tokens)")
    ids = (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id)
    if ids != (PAD_ID, BOS_ID, EOS_ID):
        raise PackError(folder, f"pad/bos/eos ids are {ids}, expected ({PAD_ID}, {BOS_ID}, {EOS_ID}) as Karlo")


def _readme(folder: Path) -> str | None:
    p = folder / "README.md"
    return p.read_text(encoding="utf-8") if p.is_file() else None


def _front_matter(readme: str | None, key: str) -> str | None:
    if not readme or not readme.startswith("---"):
        return None
    block = readme.split("---", 2)[1]
    m = re.search(rf"^{key}:\s*(.+)$", block, re.M)
    return m.group(1).strip().strip("'\"") if m else None


def load_pipeline(pipeline_dir: Path, image_variation_dir: Path | None = None, lazy: bool = True) -> Loaded:
    """Check the folders and read every component's config; with `lazy` (default) the weights are read only when
    a component is exported, one at a time (write_pack), so the peak memory is one component, not the pipeline."""
    pipeline_dir = Path(pipeline_dir)
    index = _check_pipeline_folder(pipeline_dir, "UnCLIPPipeline")
    if image_variation_dir is None and "image_encoder" in index and (pipeline_dir / "image_encoder").is_dir():
        image_variation_dir = pipeline_dir
    if image_variation_dir is not None:
        image_variation_dir = Path(image_variation_dir)
        _check_pipeline_folder(image_variation_dir, "UnCLIPImageVariationPipeline")

    import torch

    from .errors import quiet_libraries

    torch.set_num_threads(2)
    quiet_libraries()
    _check_tokenizer(pipeline_dir / "tokenizer")
    has_sr = "super_res_first" in index and (pipeline_dir / "super_res_first").is_dir()
    if has_sr:
        for name in ("super_res_first", "super_res_last", "super_res_scheduler"):
            if not (pipeline_dir / name).is_dir():
                raise PackError(pipeline_dir / name, "component folder not found (super_res_first needs it)")

    schedulers = {
        "prior": _scheduler_entry(pipeline_dir / "prior_scheduler" / "scheduler_config.json"),
        "decoder": _scheduler_entry(pipeline_dir / "decoder_scheduler" / "scheduler_config.json"),
    }
    if has_sr:
        schedulers["super_res"] = _scheduler_entry(pipeline_dir / "super_res_scheduler" / "scheduler_config.json")
    get = LazyModule if lazy else _load
    loaded = Loaded(
        text_encoder=get("text_encoder", pipeline_dir / "text_encoder"),
        prior=get("prior", pipeline_dir / "prior"),
        text_proj=get("text_proj", pipeline_dir / "text_proj"),
        decoder=get("decoder", pipeline_dir / "decoder"),
        super_res_first=get("super_res", pipeline_dir / "super_res_first") if has_sr else None,
        super_res_last=get("super_res", pipeline_dir / "super_res_last") if has_sr else None,
        image_encoder=get("image_encoder", image_variation_dir / "image_encoder") if image_variation_dir else None,
        schedulers=schedulers,
        image_preprocess=_image_preprocess(
            image_variation_dir / "feature_extractor" / "preprocessor_config.json" if image_variation_dir else None),
        pipeline_dir=pipeline_dir,
        image_variation_dir=image_variation_dir,
        readme=_readme(pipeline_dir),
        readme_variation=_readme(image_variation_dir) if image_variation_dir else None,
    )
    check_dimensions(loaded)
    return loaded


def dims(lp: Loaded) -> dict:
    te = lp.text_encoder.config
    d = {
        "E": int(lp.prior.config.embedding_dim),
        "H": int(te.hidden_size),
        "L": int(te.max_position_embeddings),
        "C": int(lp.text_proj.config.cross_attention_dim),
        "T": int(lp.text_proj.config.time_embed_dim),
        "X": int(lp.text_proj.config.clip_extra_context_tokens),
        "D": int(lp.decoder.config.sample_size),
    }
    d["O"] = int(lp.super_res_first.config.sample_size) if lp.super_res_first is not None else d["D"]
    d["S"] = int(lp.image_preprocess["crop_size"])
    return d


def check_dimensions(lp: Loaded) -> None:
    """Cross-component sizes must agree; a mismatch names the config file at fault."""
    d = dims(lp)
    p = lp.pipeline_dir
    te = lp.text_encoder.config

    def need(cond: bool, where: Path, what: str) -> None:
        if not cond:
            raise PackError(where, what)

    need(d["L"] == MAX_LENGTH, p / "text_encoder/config.json", f"max_position_embeddings is {d['L']}, expected 77")
    need(int(te.projection_dim) == d["E"], p / "text_encoder/config.json",
         f"projection_dim {te.projection_dim} differs from prior embedding_dim {d['E']}")
    need(d["H"] == d["E"], p / "text_encoder/config.json",
         f"hidden_size {d['H']} differs from prior embedding_dim {d['E']} (the prior projects both with one width)")
    need(int(lp.prior.config.num_embeddings) == d["L"], p / "prior/config.json",
         f"num_embeddings {lp.prior.config.num_embeddings} differs from the text length {d['L']}")
    need(int(lp.text_proj.config.clip_embeddings_dim) == d["E"], p / "text_proj/config.json",
         f"clip_embeddings_dim {lp.text_proj.config.clip_embeddings_dim} differs from embedding_dim {d['E']}")
    dc = lp.decoder.config
    need(int(dc.in_channels) == 3 and int(dc.out_channels) == 6, p / "decoder/config.json",
         f"in/out channels are {dc.in_channels}/{dc.out_channels}, expected 3/6 (learned variance)")
    need(int(dc.cross_attention_dim) == d["C"], p / "decoder/config.json",
         f"cross_attention_dim {dc.cross_attention_dim} differs from text_proj's {d['C']}")
    need(dc.class_embed_type == "identity", p / "decoder/config.json",
         f"class_embed_type is {dc.class_embed_type!r}, expected 'identity'")
    need(int(dc.block_out_channels[0]) * 4 == d["T"], p / "decoder/config.json",
         f"time embedding width {dc.block_out_channels[0] * 4} differs from text_proj time_embed_dim {d['T']}")
    for name in ("super_res_first", "super_res_last"):
        m = getattr(lp, name)
        if m is None:
            continue
        need(int(m.config.in_channels) == 6 and int(m.config.out_channels) == 3, p / name / "config.json",
             f"in/out channels are {m.config.in_channels}/{m.config.out_channels}, expected 6/3")
        need(int(m.config.sample_size) == d["O"], p / name / "config.json",
             f"sample_size {m.config.sample_size} differs from super_res_first's {d['O']}")
    if lp.image_encoder is not None:
        ic = lp.image_encoder.config
        need(int(ic.projection_dim) == d["E"], lp.image_variation_dir / "image_encoder/config.json",
             f"projection_dim {ic.projection_dim} differs from embedding_dim {d['E']}")
        need(int(ic.image_size) == d["S"], lp.image_variation_dir / "feature_extractor/preprocessor_config.json",
             f"crop_size {d['S']} differs from the image encoder's image_size {ic.image_size}")


# --------------------------------------------------------------------------------------------------------------------
# Component specifications (names, shapes, example inputs)


WRAPPERS = {"text_encoder": "TextEncoder", "image_encoder": "ImageEncoder", "prior": "Prior", "text_proj": "TextProj",
            "decoder": "Decoder", "super_res_first": "SuperRes", "super_res_last": "SuperRes"}


def component_names(lp: Loaded) -> list[str]:
    """The pack's networks in pack order."""
    names = ["text_encoder"] + (["image_encoder"] if lp.image_encoder is not None else [])
    names += ["prior", "text_proj", "decoder"]
    return names + (["super_res_first", "super_res_last"] if lp.super_res_first is not None else [])


def component_io(lp: Loaded, name: str) -> tuple[list, list]:
    """([(input name, dtype, shape)], [(output name, dtype, shape)]) of one network, from the configs alone."""
    d = dims(lp)
    E, H, L, C, T, X, D, O, S = (d[k] for k in "EHLCTXDOS")
    b = "batch"
    return {
        "text_encoder": ([("input_ids", "int64", [b, L])],
                         [("text_embeds", "float32", [b, E]), ("last_hidden_state", "float32", [b, L, H])]),
        "image_encoder": ([("pixel_values", "float32", [b, 3, S, S])], [("image_embeds", "float32", [b, E])]),
        "prior": ([("hidden_states", "float32", [b, E]), ("timestep", "int64", [b]),
                   ("proj_embedding", "float32", [b, E]), ("encoder_hidden_states", "float32", [b, L, H]),
                   ("attention_mask", "bool", [b, L])],
                  [("predicted_image_embedding", "float32", [b, E])]),
        "text_proj": ([("image_embeddings", "float32", [b, E]), ("uncond_mask", "bool", [b]),
                       ("prompt_embeds", "float32", [b, E]), ("text_encoder_hidden_states", "float32", [b, L, H])],
                      [("encoder_hidden_states", "float32", [b, X + L, C]),
                       ("additive_clip_time_embeddings", "float32", [b, T])]),
        "decoder": ([("sample", "float32", [b, 3, D, D]), ("timestep", "int64", [b]),
                     ("encoder_hidden_states", "float32", [b, X + L, C]), ("class_labels", "float32", [b, T]),
                     ("attention_mask", "bool", [b, X + L])],
                    [("out_sample", "float32", [b, 6, D, D])]),
        "super_res_first": ([("sample", "float32", [b, 6, O, O]), ("timestep", "int64", [b])],
                            [("out_sample", "float32", [b, 3, O, O])]),
    }[name if name != "super_res_last" else "super_res_first"]


def component_spec(lp: Loaded, name: str, module=None) -> tuple:
    """(wrapper module, inputs, outputs) of one network; `module` is the loaded torch module (default: the
    component itself, loaded and kept when lazy)."""
    from . import components as W

    inputs, outputs = component_io(lp, name)
    if module is None:
        module = getattr(lp, name)
        if isinstance(module, LazyModule):
            module.config  # noqa: B018
            module = module.__getattr__("eval")()  # loads once and keeps it
    return getattr(W, WRAPPERS[name])(module), inputs, outputs


def component_specs(lp: Loaded) -> dict:
    """name -> (wrapper module, [(input name, dtype, shape)], [(output name, dtype, shape)]) in pack order, every
    module loaded (and kept). The exporter itself goes one component at a time (write_pack)."""
    return {name: component_spec(lp, name) for name in component_names(lp)}


def example_inputs(inputs: list, batch: int = 2, seed: int = 0) -> list:
    """Deterministic inputs for tracing and checks: realistic token ids, masks with padding, mixed timesteps."""
    import torch

    from .clip_tokenizer import BOS_ID, EOS_ID

    g = torch.Generator().manual_seed(seed)
    out = []
    for name, dtype, shape in inputs:
        shp = [batch if s == "batch" else s for s in shape]
        if name == "input_ids":
            ids = torch.zeros(shp, dtype=torch.int64)
            for i in range(batch):
                n = 3 + 5 * i
                ids[i, 0] = BOS_ID
                ids[i, 1:n] = torch.randint(300, 40000, (n - 1,), generator=g)
                ids[i, n] = EOS_ID
            out.append(ids)
        elif name == "timestep":
            out.append(torch.tensor([[999, 500, 0, 42][i % 4] for i in range(batch)], dtype=torch.int64))
        elif dtype == "bool":
            if name == "uncond_mask":
                out.append(torch.tensor([i % 2 == 0 for i in range(batch)]))
            else:
                m = torch.zeros(shp, dtype=torch.bool)
                extra = shp[1] - MAX_LENGTH  # decoder mask: leading true for the extra tokens
                for i in range(batch):
                    m[i, : extra + 2 + 5 * i] = True
                out.append(m)
        else:
            out.append(torch.randn(shp, generator=g))
    return out


# --------------------------------------------------------------------------------------------------------------------
# Export


def _param_bytes(module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def _use_classic_attention(module) -> None:
    """Swap SDPA attention processors for the classic ones (dossier §6: SDPA export failures)."""
    for m in module.modules():
        if hasattr(m, "set_default_attn_processor"):
            try:
                m.set_default_attn_processor()
            except Exception:  # noqa: BLE001 - models with mixed processors: set per attention module below
                pass
    from diffusers.models.attention_processor import (Attention, AttnAddedKVProcessor, AttnProcessor)

    for m in module.modules():
        if isinstance(m, Attention):
            m.set_processor(AttnAddedKVProcessor() if m.added_kv_proj_dim is not None else AttnProcessor())


def _torch_export(wrapper, args, inputs, outputs, path: Path) -> None:
    import torch

    names_in = [n for n, _, _ in inputs]
    names_out = [n for n, _, _ in outputs]
    axes = {n: {0: "batch"} for n in names_in + names_out}
    torch.onnx.export(wrapper, tuple(args), str(path), input_names=names_in, output_names=names_out,
                      dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True, dynamo=False)


def export_component(name: str, spec: tuple, out_dir: Path, scratch: Path, fp16: bool, external: bool) -> dict:
    """Export one component into out_dir; returns its manifest entry (without flops)."""
    import warnings

    import onnx
    import torch

    wrapper, inputs, outputs = spec
    # decided from the weights, not the proto: protobuf cannot even measure a message over 2 GiB reliably
    external = external or _param_bytes(wrapper) > EXTERNAL_DATA_THRESHOLD
    args = example_inputs(inputs, batch=2)
    raw = scratch / name / f"{name}.onnx"
    raw.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _torch_export(wrapper, args, inputs, outputs, raw)
        except Exception as first:  # noqa: BLE001
            try:
                _use_classic_attention(wrapper)
                shutil.rmtree(raw.parent)
                raw.parent.mkdir(parents=True)
                _torch_export(wrapper, args, inputs, outputs, raw)
            except Exception as e:  # noqa: BLE001
                raise PackError(f"{name}.onnx", f"ONNX export failed ({type(first).__name__}: "
                                f"{str(first).splitlines()[0] if str(first) else ''}; with classic attention: "
                                f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
    model = onnx.load(str(raw), load_external_data=True)
    shutil.rmtree(raw.parent)
    if fp16:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        _constants_to_initializers(model)
        model = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=True)
    model.producer_name = "unclip_toolchain"
    model.producer_version = __version__
    target = out_dir / f"{name}.onnx"
    entry = {
        "file": target.name,
        "inputs": [{"name": n, "dtype": t, "shape": s} for n, t, s in inputs],
        "outputs": [{"name": n, "dtype": t, "shape": s} for n, t, s in outputs],
    }
    if external:
        data_name = f"{name}.onnx.data"
        # small tensors (shape constants) stay inline so shape inference works without the data file
        onnx.save_model(model, str(target), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data_name, size_threshold=1024, convert_attribute=False)
        entry["external_data"] = [data_name]
    else:
        onnx.save_model(model, str(target))
    del model
    if external:
        gc.collect()  # multi-GB protos: free them before the next component
    return entry


def _constants_to_initializers(model) -> None:
    """Turn Constant nodes into initializers before fp16 conversion: the converter keeps initializers that must stay
    float (e.g. Resize scales) in fp32, but it would convert a Constant node's value and break Resize."""
    keep = []
    for node in model.graph.node:
        value = next((a for a in node.attribute if a.name == "value"), None)
        if node.op_type == "Constant" and value is not None and len(node.attribute) == 1:
            tensor = value.t
            tensor.name = node.output[0]
            model.graph.initializer.append(tensor)
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)


def check_component(name: str, spec: tuple, onnx_path: Path, batch: int = 3, seed: int = 1) -> float:
    """Max abs difference between onnxruntime and PyTorch on deterministic inputs (batch != export batch)."""
    import numpy as np
    import onnxruntime as ort
    import torch

    wrapper, inputs, _ = spec
    args = example_inputs(inputs, batch=batch, seed=seed)
    with torch.no_grad():
        ref = wrapper(*args)
    ref = ref if isinstance(ref, tuple) else (ref,)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    got = sess.run(None, {n: a.numpy() for (n, _, _), a in zip(inputs, args)})
    return float(max(np.abs(g - r.numpy()).max() for g, r in zip(got, ref)))


def _notice(lp: Loaded, license_: str, attribution: str) -> str:
    return (
        "# Notices for this model pack\n\n"
        f"Model weights: {attribution}\nLicence: {license_}\n\n"
        "Converted to ONNX by unCLIP Studio's toolchain (models/toolchain) from the diffusers pipeline folder "
        f"`{lp.pipeline_dir.name}`"
        + (f" and `{lp.image_variation_dir.name}`" if lp.image_variation_dir and lp.image_variation_dir != lp.pipeline_dir
           else "")
        + ".\n\n"
        "tokenizer.json: CLIP byte-pair-encoding vocabulary `bpe_simple_vocab_16e6.txt.gz` by OpenAI (CLIP), as shipped "
        "in open_clip (MIT licence: Copyright (c) 2012-2021 Gabriel Ilharco, Mitchell Wortsman, Nicholas Carlini, "
        "Rohan Taori, Achal Dave, Vaishaal Shankar, John Miller, Hongseok Namkoong, Hannaneh Hajishirzi, Ali Farhadi, "
        "Ludwig Schmidt; OpenAI CLIP: MIT licence, Copyright (c) 2021 OpenAI).\n"
    )


def _prior_stats(prior) -> dict:
    return {"clip_mean": [float(x) for x in prior.clip_mean.detach().reshape(-1).tolist()],
            "clip_std": [float(x) for x in prior.clip_std.detach().reshape(-1).tolist()]}


def _peak_rss_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux


def build_manifest(lp: Loaded, entries: dict, args, prior_stats: dict | None = None) -> dict:
    d = dims(lp)
    license_ = args.license or _front_matter(lp.readme, "license")
    if not license_:
        raise PackError(lp.pipeline_dir / "README.md", "no licence found in the model card; pass --license")
    attribution = args.attribution or f"{args.source_pipeline or lp.pipeline_dir.name} (diffusers unCLIP pipeline)"
    source = {"kind": "diffusers", "pipeline": args.source_pipeline or lp.pipeline_dir.name,
              "exporter_version": __version__, "precision": "fp16" if args.fp16 else "fp32"}
    if lp.image_variation_dir is not None and lp.image_variation_dir != lp.pipeline_dir:
        source["image_variation_pipeline"] = args.source_image_variation or lp.image_variation_dir.name
    return {
        "schema_version": 1,
        "name": args.name,
        "title": args.title or args.name,
        "description": args.description or f"unCLIP pack exported from {source['pipeline']}",
        "license": license_,
        "attribution": attribution,
        "source": source,
        "embedding_dim": d["E"],
        "text": {"max_length": d["L"], "hidden_size": d["H"]},
        "tokenizer": {"file": "tokenizer.json", "max_length": d["L"], "pad_token_id": 0, "bos_token_id": 49406,
                      "eos_token_id": 49407},
        "image_preprocess": lp.image_preprocess,
        "prior_stats": prior_stats or _prior_stats(materialize(lp.prior)),
        "resolution": {"decoder": d["D"], "output": d["O"]},
        "schedulers": lp.schedulers,
        "defaults": {"prior_steps": args.prior_steps, "decoder_steps": args.decoder_steps,
                     "super_res_steps": args.super_res_steps, "prior_guidance": args.prior_guidance,
                     "decoder_guidance": args.decoder_guidance},
        "components": entries,
        "files": {},
    }


def write_pack(lp: Loaded, out: Path, args, log=print) -> dict:
    """Export everything into a temp folder beside `out`, verify it, then rename it to `out`. Returns a report."""
    import onnx

    from .clip_tokenizer import save_tokenizer_json
    from .flops import count_flops
    from .from_pack import CONFIG_FILE, module_config
    from .manifest import sha256_file, verify_pack

    out = Path(out).resolve()
    if out.exists() and not args.force:
        raise PackError(out, "already exists (pass --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    tmp.chmod(0o755)
    scratch = Path(tempfile.mkdtemp(prefix="unclip-export-"))
    report: dict = {"components": {}}
    try:
        entries, configs, stats = {}, {}, None
        for name in component_names(lp):
            # one component at a time: its weights are read here and freed before the next (Karlo: 15 GB in all)
            t0 = time.perf_counter()
            module = materialize(getattr(lp, name))
            configs[name] = module_config(module)
            if name == "prior":
                stats = _prior_stats(module)
            spec = component_spec(lp, name, module)
            entry = export_component(name, spec, tmp, scratch, args.fp16, args.external_data)
            entry["flops"] = count_flops(onnx.load(str(tmp / entry["file"]), load_external_data=False))
            # key order as in the contract
            entries[name] = {k: entry[k] for k in ("file", "inputs", "outputs", "flops", "external_data") if k in entry}
            rep = {"flops": entry["flops"], "bytes": sum((tmp / f).stat().st_size
                                                         for f in [entry["file"], *entry.get("external_data", [])]),
                   "export_s": round(time.perf_counter() - t0, 1)}
            if args.check:
                t1 = time.perf_counter()
                # a few inputs: batch 3 (≠ the traced batch 2; timesteps 999, 500, 0), batch 1 when that would
                # cost more than CHECK_FLOP_BUDGET (Karlo's super-resolution UNets: ~5 TFLOP per row)
                batch = 3 if 3 * entry["flops"] <= CHECK_FLOP_BUDGET else 1
                err = check_component(name, spec, tmp / entry["file"], batch=batch)
                tol = CHECK_TOL_FP32 if not args.fp16 else float("inf")
                if err > tol:
                    raise PackError(tmp / entry["file"], f"onnxruntime differs from PyTorch by {err:.3g} (> {tol})")
                rep["max_abs_err"] = err
                rep["check_batch"] = batch
                rep["check_s"] = round(time.perf_counter() - t1, 1)
            del spec, module
            gc.collect()
            rep["peak_rss_gb"] = round(_peak_rss_gb(), 2)
            report["components"][name] = rep
            log(f"  {name}: {rep['bytes'] / 1e6:.2f} MB" + (" (external data)" if "external_data" in entry else "")
                + f", {entry['flops'] / 1e9:.3f} GFLOP/call"
                + (f", max|onnx-torch| {rep['max_abs_err']:.2e} (batch {rep['check_batch']})"
                   if "max_abs_err" in rep else "")
                + f", {rep['export_s'] + rep.get('check_s', 0):.0f} s, peak RSS {rep['peak_rss_gb']} GB")
        save_tokenizer_json(tmp / "tokenizer.json")
        # what from_pack needs to rebuild the PyTorch modules around the graphs' weights (bench --vs-diffusers)
        (tmp / CONFIG_FILE).write_text(json.dumps(configs, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        manifest = build_manifest(lp, entries, args, stats)
        (tmp / "NOTICE.md").write_text(_notice(lp, manifest["license"], manifest["attribution"]), encoding="utf-8")
        if lp.readme:
            (tmp / "MODEL_CARD.md").write_text(lp.readme, encoding="utf-8")
        files = sorted(p.name for p in tmp.iterdir() if p.is_file() and p.name != "manifest.json")
        for f in files:
            (tmp / f).chmod(0o644)  # onnx writes external data 0600
        manifest["files"] = {f: sha256_file(tmp / f) for f in files}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        verify_pack(tmp)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            old.rmdir()
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
        report["bytes"] = sum(p.stat().st_size for p in out.iterdir())
        return report
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m unclip_toolchain.export", description=__doc__.split("\n")[0])
    p.add_argument("--pipeline", required=True, type=Path, help="UnCLIPPipeline folder (save_pretrained layout)")
    p.add_argument("--image-variation", type=Path, help="UnCLIPImageVariationPipeline folder (image encoder source)")
    p.add_argument("--out", required=True, type=Path, help="pack folder to create")
    p.add_argument("--name", default=None, help="pack name, [a-z0-9-]+ (default: from --out)")
    p.add_argument("--title")
    p.add_argument("--description")
    p.add_argument("--license", help="licence (default: `license:` of the pipeline's README.md front matter)")
    p.add_argument("--attribution", help="free text shown in the About box")
    p.add_argument("--source-pipeline", help="hub id recorded in source.pipeline (default: folder name)")
    p.add_argument("--source-image-variation", help="hub id recorded in source.image_variation_pipeline")
    p.add_argument("--fp16", action="store_true", help="fp16 weights for GPU packs (I/O stays fp32)")
    p.add_argument("--external-data", action="store_true", help="always use ONNX external data (else only > 2 GB)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the onnxruntime-vs-PyTorch check")
    p.add_argument("--prior-steps", type=int, default=25)
    p.add_argument("--decoder-steps", type=int, default=25)
    p.add_argument("--super-res-steps", type=int, default=7)
    p.add_argument("--prior-guidance", type=float, default=4.0)
    p.add_argument("--decoder-guidance", type=float, default=8.0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.name is None:
        args.name = re.sub(r"[^a-z0-9-]+", "-", args.out.name.lower()).strip("-") or "pack"
    if not re.fullmatch(r"[a-z0-9-]+", args.name):
        raise PackError("--name", f"{args.name!r} must match [a-z0-9-]+")
    lp = load_pipeline(args.pipeline, args.image_variation)
    print(f"exporting {args.pipeline} -> {args.out}")
    report = write_pack(lp, args.out, args)
    print(f"wrote {args.out} ({report['bytes'] / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
