"""diffusers' UnCLIPPipeline on the same weights as an unCLIP Studio pack, timed for `unclip bench --vs-diffusers`.

    models/.venv/bin/python main/cli/bench_diffusers.py --fixture test/fixtures/tiny-fixture/fixture.json [...]
    models/.venv/bin/python main/cli/bench_diffusers.py --pipeline DIR [...]
    models/.venv/bin/python main/cli/bench_diffusers.py --pack DIR [...]

--fixture: the tiny pack's weights are rebuilt from the fixture's recorded arguments with the toolchain's
  build_tiny_components (the same deterministic function that made the pack; weights are identical).
--pipeline: a diffusers UnCLIPPipeline folder (save_pretrained layout), the one the pack was exported from.
--pack: the pack itself; the toolchain's from_pack rebuilds the modules from its diffusers-config.json and fills
  them with the ONNX graphs' weights (the way to time packs whose PyTorch weights are not at hand).
Prints one JSON object: per-run seconds, per-component milliseconds (forward hooks), and the prompt's CLIP text
embedding (so the caller can check the weights really are the pack's).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "models" / "toolchain"))


def load_pipeline(a):
    import torch

    if a.fixture:
        from unclip_toolchain.tiny_models import build_pipelines, build_tiny_components

        args = json.loads(Path(a.fixture).read_text(encoding="utf-8"))["args"]
        comps = build_tiny_components(args["seed"], args["width"], args["layers"], args["prior_layers"])
        return build_pipelines(comps)[0]
    if a.pack:
        from unclip_toolchain.from_pack import load_pack_pipeline

        return load_pack_pipeline(Path(a.pack))
    from unclip_toolchain.tiny import load_reference_pipelines

    d = Path(a.pipeline)
    return load_reference_pipelines(d, d)[0] if (d / "image_encoder").is_dir() else _plain(d, torch)


def _plain(d: Path, torch):
    from diffusers import PriorTransformer, UNet2DConditionModel, UNet2DModel, UnCLIPScheduler
    from diffusers.pipelines.deprecated.unclip import UnCLIPPipeline
    from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer

    f32 = dict(torch_dtype=torch.float32)
    p = str(d)
    pipe = UnCLIPPipeline(
        prior=PriorTransformer.from_pretrained(p, subfolder="prior", **f32).eval(),
        decoder=UNet2DConditionModel.from_pretrained(p, subfolder="decoder", **f32).eval(),
        text_encoder=CLIPTextModelWithProjection.from_pretrained(f"{p}/text_encoder", **f32).eval(),
        tokenizer=CLIPTokenizer.from_pretrained(f"{p}/tokenizer"),
        text_proj=UnCLIPTextProjModel.from_pretrained(p, subfolder="text_proj", **f32).eval(),
        super_res_first=UNet2DModel.from_pretrained(p, subfolder="super_res_first", **f32).eval(),
        super_res_last=UNet2DModel.from_pretrained(p, subfolder="super_res_last", **f32).eval(),
        prior_scheduler=UnCLIPScheduler.from_pretrained(p, subfolder="prior_scheduler"),
        decoder_scheduler=UnCLIPScheduler.from_pretrained(p, subfolder="decoder_scheduler"),
        super_res_scheduler=UnCLIPScheduler.from_pretrained(p, subfolder="super_res_scheduler"),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--fixture", help="fixture.json of the tiny pack (weights rebuilt from its args)")
    src.add_argument("--pipeline", help="diffusers UnCLIPPipeline folder the pack was exported from")
    src.add_argument("--pack", help="the pack (needs its diffusers-config.json)")
    p.add_argument("--prompt", default="a red rocket, twemoji style")
    p.add_argument("--n", type=int, default=1)
    p.add_argument("--steps-prior", type=int, required=True)
    p.add_argument("--steps-decoder", type=int, required=True)
    p.add_argument("--steps-sr", type=int, required=True)
    p.add_argument("--guidance-prior", type=float, default=4.0)
    p.add_argument("--guidance-decoder", type=float, default=8.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()

    import torch

    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    pipe = load_pipeline(a)
    load_s = time.perf_counter() - t0

    stages = {"text_encoder": "text", "prior": "prior", "text_proj": "decoder", "decoder": "decoder",
              "super_res_first": "superRes", "super_res_last": "superRes"}
    acc: dict[str, float] = {}
    starts: dict[int, float] = {}

    def pre(module, *_):
        starts[id(module)] = time.perf_counter()

    def post(name):
        def hook(module, *_):
            acc[name] = acc.get(name, 0.0) + (time.perf_counter() - starts.pop(id(module))) * 1000

        return hook

    for comp, stage in stages.items():
        m = getattr(pipe, comp, None)
        if m is not None:
            m.register_forward_pre_hook(pre)
            m.register_forward_hook(post(stage))

    def once(seed: int) -> float:
        g = torch.Generator().manual_seed(seed)
        t = time.perf_counter()
        pipe(a.prompt, num_images_per_prompt=a.n, prior_num_inference_steps=a.steps_prior,
             decoder_num_inference_steps=a.steps_decoder, super_res_num_inference_steps=a.steps_sr,
             prior_guidance_scale=a.guidance_prior, decoder_guidance_scale=a.guidance_decoder, generator=g,
             output_type="pil")
        return time.perf_counter() - t

    with torch.no_grad():
        once(0)  # warm-up
        acc.clear()
        runs = [once(i + 1) for i in range(a.runs)]
        ids = pipe.tokenizer([a.prompt], padding="max_length", max_length=77, truncation=True,
                             return_tensors="pt").input_ids
        text_embeds = pipe.text_encoder(ids).text_embeds[0].tolist()
    print(json.dumps({
        "torch": torch.__version__, "threads": torch.get_num_threads(), "load_s": load_s, "runs_s": runs,
        "mean_s": sum(runs) / len(runs), "stages_ms": {k: v / a.runs for k, v in acc.items()},
        "text_embeds": text_embeds,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
