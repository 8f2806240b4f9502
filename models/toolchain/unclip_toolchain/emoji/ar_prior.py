"""The autoregressive prior of unCLIP (Ramesh et al. 2022, §2.1) for the emoji pack: PCA codes + causal Transformer.

    python -m unclip_toolchain.emoji ar-prior codes     # fit PCA + buckets on the training z_i, round-trip report
    python -m unclip_toolchain.emoji ar-prior train --minutes 18
    python -m unclip_toolchain.emoji ar-prior eval      # the paper's comparison table (AR / diffusion, 1 or 2 samples)

Everything is built on the shipped pack's own networks (rebuilt from its ONNX weights by from_pack.py): the CLIP
image encoder gives the training z_i, the text encoder the caption's hidden states and z_t.

Codes. z_i (the raw image embedding, what the decoder consumes) is centred on the training mean and projected on the
leading principal components of the training z_i, ordered by decreasing eigenvalue; each projection is quantised into
BUCKETS (1,024, the paper's count) buckets whose edges are that component's training quantiles (equal-mass buckets).
Quantiles rather than equal-width bins because the projections are peaked with long tails: equal-width bins spend
most buckets on the tails where there are no samples, while equal-mass buckets make every token equally frequent
(the softmax sees no dead classes) and put the resolution where z_i actually lies. A bucket decodes to the mean of the
training projections that fell into it (the least-squares value for that bucket). The training z_i are the pack's
image encoder on random training compositions (Batches with a fixed seed: colours, scales, positions).

Sequence. [text hidden states (positions 0..L-1, padding masked), z_t, quantised z_i·z_t, code_1 .. code_K]; a
causal Transformer predicts code_j from everything before it. Text positions are absolute (a caption padded to 77
or to the batch's longest gives the same result), z_t sits at position 77, the dot token at 78, code j at 79 + j.
The dot-product token is the cosine of z_i and z_t quantised into DOT_BUCKETS training quantiles; at sampling time
it is drawn uniformly from the upper half of those buckets (= the top half of its training distribution). With
probability P_DROP the text conditioning is replaced by the empty caption's and the dot token by a null token, so
classifier-free guidance on the logits works.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .sources import DATA_DIR

BUCKETS = 1024
DOT_BUCKETS = 64
TEXT_LEN = 77
P_DROP = 0.1
VARIANCE_KEPT = 0.995      # the leading components holding at least this share of the variance are kept
POOL = 65536               # training (composition, caption, z_i) samples: PCA, buckets and the AR training set
POOL_SEED = 4242
WORK_DIR = Path(__file__).resolve().parents[3] / "work" / "ar-prior"
PACK_DIR = Path(__file__).resolve().parents[4] / "models" / "emoji-tiny"


# ----------------------------------------------------------------------------------------------------------- encoders

def load_pack_models(pack_dir: Path = PACK_DIR):
    """(diffusers UnCLIPPipeline with the pack's weights, the pack's CLIP image encoder), float32, eval mode."""
    from ..from_pack import CONFIG_FILE, build_module, load_onnx_weights, load_pack_pipeline

    pipe = load_pack_pipeline(pack_dir)
    cfg = json.loads((Path(pack_dir) / CONFIG_FILE).read_text(encoding="utf-8"))
    vision = build_module(cfg["image_encoder"])
    load_onnx_weights(vision, Path(pack_dir) / "image_encoder.onnx")
    return pipe, vision.float().eval().requires_grad_(False)


@torch.no_grad()
def build_pool(data, vision, n: int = POOL, seed: int = POOL_SEED, batch: int = 512) -> dict:
    """n training samples (random training caption + composition of a weighted random image) and their z_i."""
    from .batches import Batches
    from .models import clip_pixels

    b = Batches(data, seed)
    zs, caps, keys = [], [], []
    for _ in range(0, n, batch):
        imgs, c, k = b.sample(batch)
        zs.append(vision(pixel_values=clip_pixels(imgs)).image_embeds)
        caps += c
        keys += k
    return {"z": torch.cat(zs)[:n], "captions": caps[:n], "keys": keys[:n], "seed": seed}


def pool_cached(data, vision, path: Path | None = None) -> dict:
    path = path or WORK_DIR / "pool.pt"
    if path.is_file():
        return torch.load(path, weights_only=False)
    pool = build_pool(data, vision)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(pool, path)
    return pool


# -------------------------------------------------------------------------------------------------------------- codes

@dataclass
class Codes:
    mean: torch.Tensor          # [E]
    components: torch.Tensor    # [K, E], rows = principal axes by decreasing eigenvalue
    eigenvalues: torch.Tensor   # [K]
    edges: torch.Tensor         # [K, BUCKETS - 1] inner bucket edges (training quantiles)
    values: torch.Tensor        # [K, BUCKETS] decoded value of each bucket (mean of its training projections)
    variance_kept: float
    dot_edges: torch.Tensor     # [DOT_BUCKETS - 1] quantiles of cos(z_i, z_t) over the training pool

    @property
    def k(self) -> int:
        return self.components.shape[0]

    def project(self, z: torch.Tensor) -> torch.Tensor:
        return (z.double() - self.mean.double()) @ self.components.double().T

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """z_i [N,E] -> codes [N,K] (int64 in 0..BUCKETS-1)."""
        p = self.project(z)
        return torch.stack([torch.bucketize(p[:, j].contiguous(), self.edges[j].double(), right=True)
                            for j in range(self.k)], 1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [N,K] -> z_i [N,E] (float32): bucket values, inverse PCA."""
        vals = torch.gather(self.values.double().expand(len(codes), -1, -1), 2, codes[:, :, None]).squeeze(2)
        return (self.mean.double() + vals @ self.components.double()).float()

    def dot_token(self, cos: torch.Tensor) -> torch.Tensor:
        return torch.bucketize(cos.double().contiguous(), self.dot_edges.double(), right=True)

    def state(self) -> dict:
        return {k: v for k, v in asdict(self).items()}


def fit_codes(z: torch.Tensor, z_t: torch.Tensor, variance_kept: float = VARIANCE_KEPT,
              buckets: int = BUCKETS) -> Codes:
    zd = z.double()
    mean = zd.mean(0)
    cov = (zd - mean).T @ (zd - mean) / (len(zd) - 1)
    ev, vec = torch.linalg.eigh(cov)
    ev, vec = ev.flip(0), vec.flip(1)
    share = ev.cumsum(0) / ev.sum()
    k = int((share < variance_kept).sum()) + 1
    comps = vec[:, :k].T.contiguous()
    # sign convention: the largest-magnitude entry of each axis is positive (reproducible across eigh versions)
    comps *= torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))
    p = (zd - mean) @ comps.T
    qs = torch.linspace(0, 1, buckets + 1, dtype=torch.float64)[1:-1]
    edges = torch.quantile(p, qs, dim=0).T.contiguous()                          # [K, B-1]
    values = torch.empty(k, buckets, dtype=torch.float64)
    for j in range(k):
        idx = torch.bucketize(p[:, j].contiguous(), edges[j], right=True)
        s = torch.zeros(buckets, dtype=torch.float64).index_add_(0, idx, p[:, j])
        c = torch.zeros(buckets, dtype=torch.float64).index_add_(0, idx, torch.ones_like(p[:, j]))
        lo = torch.cat([p[:, j].min()[None], edges[j]])
        hi = torch.cat([edges[j], p[:, j].max()[None]])
        values[j] = torch.where(c > 0, s / c.clamp(min=1), (lo + hi) / 2)
    cos = F.cosine_similarity(zd, z_t.double(), dim=-1)
    dq = torch.linspace(0, 1, DOT_BUCKETS + 1, dtype=torch.float64)[1:-1]
    return Codes(mean.float(), comps.float(), ev[:k].float(), edges.float(), values.float(),
                 float(share[k - 1]), torch.quantile(cos, dq).float())


def codes_from_state(st: dict) -> Codes:
    return Codes(**st)


# -------------------------------------------------------------------------------------------------------------- model

@dataclass(frozen=True)
class ARSizes:
    embed: int = 128       # E: CLIP embedding width = text hidden width
    width: int = 128
    layers: int = 4
    heads: int = 4
    k: int = 40            # code sequence length (PCA components kept)
    vocab: int = BUCKETS
    dot_buckets: int = DOT_BUCKETS

    @property
    def seq(self) -> int:
        return TEXT_LEN + 2 + self.k


class Block(torch.nn.Module):
    def __init__(self, w: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = torch.nn.LayerNorm(w), torch.nn.LayerNorm(w)
        self.qkv, self.out = torch.nn.Linear(w, 3 * w), torch.nn.Linear(w, w)
        self.fc1, self.fc2 = torch.nn.Linear(w, 4 * w), torch.nn.Linear(4 * w, w)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, past: tuple | None = None):
        """x [B,T,W]; bias additive attention mask [B|1,1,T,S] (S = past + T); returns (x, (k, v)) with S keys."""
        B, T, W = x.shape
        h, d = self.heads, W // self.heads
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, h, d).permute(2, 0, 3, 1, 4)
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(d) + bias
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, W)
        x = x + self.out(y)
        x = x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
        return x, (k, v)


class ARPrior(torch.nn.Module):
    def __init__(self, s: ARSizes) -> None:
        super().__init__()
        self.s = s
        w = s.width
        self.text_in = torch.nn.Linear(s.embed, w)
        self.embed_in = torch.nn.Linear(s.embed, w)
        self.dot_emb = torch.nn.Embedding(s.dot_buckets + 1, w)        # last id: null (dropped conditioning)
        self.code_emb = torch.nn.Embedding(s.vocab, w)
        self.pos = torch.nn.Parameter(torch.randn(s.seq, w) * 0.02)
        self.blocks = torch.nn.ModuleList([Block(w, s.heads) for _ in range(s.layers)])
        self.ln_f = torch.nn.LayerNorm(w)
        self.head = torch.nn.Linear(w, s.vocab)

    @property
    def null_dot(self) -> int:
        return self.s.dot_buckets

    def prefix_embeddings(self, hidden, text_emb, dot) -> torch.Tensor:
        L = hidden.shape[1]
        x = torch.cat([self.text_in(hidden), self.embed_in(text_emb)[:, None], self.dot_emb(dot)[:, None]], 1)
        pos = torch.cat([self.pos[:L], self.pos[TEXT_LEN:TEXT_LEN + 2]])
        return x + pos

    def forward(self, hidden, mask, text_emb, dot, codes_in) -> torch.Tensor:
        """Teacher-forced logits [B, n+1, vocab] for code_0..code_n, given codes_in [B, n] (n may be 0).

        hidden [B,L,E] text encoder hidden states, mask [B,L] bool (real tokens), text_emb [B,E], dot [B] int64."""
        B, L, _ = hidden.shape
        n = codes_in.shape[1]
        x = self.prefix_embeddings(hidden, text_emb, dot)
        if n:
            x = torch.cat([x, self.code_emb(codes_in) + self.pos[TEXT_LEN + 2:TEXT_LEN + 2 + n]], 1)
        T = x.shape[1]
        keep = torch.ones(T, T, dtype=torch.bool).tril()[None] & torch.cat(
            [mask, torch.ones(B, T - L, dtype=torch.bool)], 1)[:, None, :]
        bias = torch.zeros(B, 1, T, T).masked_fill(~keep[:, None], -1e9)
        for blk in self.blocks:
            x, _ = blk(x, bias)
        return self.head(self.ln_f(x[:, L + 1:]))

    # incremental decoding (KV cache) -----------------------------------------------------------------------------
    def start(self, hidden, mask, text_emb, dot):
        """Prefix pass: (logits for code_0 [B,vocab], cache, key mask [B,S])."""
        B, L, _ = hidden.shape
        x = self.prefix_embeddings(hidden, text_emb, dot)
        T = x.shape[1]
        kmask = torch.cat([mask, torch.ones(B, 2, dtype=torch.bool)], 1)
        keep = torch.ones(T, T, dtype=torch.bool).tril()[None] & kmask[:, None, :]
        bias = torch.zeros(B, 1, T, T).masked_fill(~keep[:, None], -1e9)
        cache = []
        for blk in self.blocks:
            x, kv = blk(x, bias)
            cache.append(kv)
        return self.head(self.ln_f(x[:, -1])), cache, kmask

    def step(self, code, j: int, cache, kmask):
        """Feed code_j [B]; returns (logits for code_{j+1}, cache, kmask)."""
        x = self.code_emb(code)[:, None] + self.pos[TEXT_LEN + 2 + j]
        kmask = torch.cat([kmask, torch.ones(len(code), 1, dtype=torch.bool)], 1)
        bias = torch.zeros(len(code), 1, 1, kmask.shape[1]).masked_fill(~kmask[:, None, None], -1e9)
        new = []
        for blk, kv in zip(self.blocks, cache):
            x, kv = blk(x, bias, kv)
            new.append(kv)
        return self.head(self.ln_f(x[:, -1])), new, kmask


def filter_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Temperature, then top-k (0 = off), then top-p (1 = off): filtered logits, -inf outside."""
    logits = logits / temperature
    if top_k and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        srt, idx = logits.sort(-1, descending=True)
        cum = srt.softmax(-1).cumsum(-1)
        drop = cum - srt.softmax(-1) >= top_p            # keep the smallest prefix whose mass reaches top_p
        logits = logits.masked_fill(drop.scatter(-1, idx, drop), float("-inf"))
    return logits


def pick(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw with injected uniforms u [B] in [0,1): the token whose cumulative probability first
    exceeds u (ids in increasing order), so the engine can reproduce a draw from the same u."""
    p = logits.softmax(-1).double()
    cum = p.cumsum(-1)
    idx = (cum <= u.double()[:, None]).sum(-1)
    # never land on a filtered-out id through rounding at the top end
    last = (p > 0).double().cumsum(-1).argmax(-1)
    return torch.minimum(idx, last)


@dataclass
class SampleSettings:
    guidance: float = 2.0
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0


@torch.no_grad()
def sample_codes(model: ARPrior, hidden, mask, text_emb, empty, dot, uniforms, st: SampleSettings) -> torch.Tensor:
    """codes [B,K] with classifier-free guidance on the logits. empty = (hidden, mask, text_emb) of "" (1 row);
    dot [B] the conditioning dot token; uniforms [B, K] the draws."""
    B = len(hidden)
    eh, em, ee = empty
    L = max(hidden.shape[1], eh.shape[1])

    def pad(h, m):
        return F.pad(h, (0, 0, 0, L - h.shape[1])), F.pad(m, (0, L - m.shape[1]))

    h, m = pad(hidden, mask)
    eh, em = pad(eh, em)
    guided = st.guidance != 1.0
    if guided:
        h = torch.cat([h, eh.expand(B, -1, -1)])
        m = torch.cat([m, em.expand(B, -1)])
        e = torch.cat([text_emb, ee.expand(B, -1)])
        d = torch.cat([dot, torch.full_like(dot, model.null_dot)])
    else:
        e, d = text_emb, dot
    logits, cache, kmask = model.start(h, m, e, d)
    out = []
    for j in range(model.s.k):
        if guided:
            c, u = logits.chunk(2)
            logits = u + st.guidance * (c - u)
        code = pick(filter_logits(logits, st.temperature, st.top_k, st.top_p), uniforms[:, j])
        out.append(code)
        if j + 1 < model.s.k:
            logits, cache, kmask = model.step(torch.cat([code, code]) if guided else code, j, cache, kmask)
    return torch.stack(out, 1)


def top_half_dot(n: int, g: torch.Generator) -> torch.Tensor:
    return DOT_BUCKETS // 2 + torch.randint(0, DOT_BUCKETS - DOT_BUCKETS // 2, (n,), generator=g)


# ---------------------------------------------------------------------------------------------------------- training

def log(msg: str, path: Path | None = None) -> None:
    line = time.strftime("%Y-%m-%dT%H:%M:%S ") + msg
    print(line, flush=True)
    if path is not None:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def train(minutes: float, work: Path = WORK_DIR, data_dir: Path = DATA_DIR, pack_dir: Path = PACK_DIR,
          seed: int = 0, batch: int = 128, lr: float = 5e-4, sizes: ARSizes | None = None,
          max_steps: int | None = None, total_minutes: float | None = None,
          precision: str = "auto", threads: int = 2) -> dict:
    """Train `minutes` more (resuming from work/ckpt.pt). `total_minutes`: the whole budget, for the cosine lr."""
    from .batches import TextEncoder
    from .dataset import EmojiData
    from .diffusion import EMA

    # threads: 2 on an idle 2-core VM; on a shared, oversubscribed one (load ~8) one thread measured 0.93 s per bf16
    # step at batch 128 against 4.35 s with two (OpenMP threads waiting on each other), so `--threads 1` there
    torch.set_num_threads(threads)
    work.mkdir(parents=True, exist_ok=True)
    logf = work / "train.log"
    data = EmojiData(data_dir)
    pipe, vision = load_pack_models(pack_dir)
    te = TextEncoder(pipe.text_encoder)
    pool = pool_cached(data, vision, work / "pool.pt")
    codes = load_or_fit_codes(pool, te, work)
    with torch.no_grad():
        empty = te.encode([""])
    all_codes = codes.encode(pool["z"])
    sizes = sizes or ARSizes(k=codes.k)
    ck_path = work / "ckpt.pt"
    model = ARPrior(sizes)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    ema = EMA(model, 0.999)
    step, elapsed = 0, 0.0
    g = torch.Generator().manual_seed(seed)
    if ck_path.is_file():
        ck = torch.load(ck_path, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        ema.load_state_dict(ck["ema"])
        step, elapsed = ck["step"], ck["elapsed"]
        g.set_state(ck["gen"])
        log(f"ar-prior: resumed at step {step} ({elapsed / 60:.1f} min)", logf)
    else:
        torch.manual_seed(seed)
        model = ARPrior(sizes)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
        ema = EMA(model, 0.999)
        log(f"ar-prior: fresh start {sizes} params={sum(p.numel() for p in model.parameters())}", logf)
    budget = (total_minutes or minutes) * 60

    def save():
        tmp = ck_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "ema": ema.state_dict(), "step": step,
                    "elapsed": elapsed, "gen": g.get_state(), "sizes": asdict(sizes), "seed": seed}, tmp)
        os.replace(tmp, ck_path)

    import contextlib

    from .train import resolve_precision

    # bf16 autocast where the CPU has it natively (train.py's PRECISIONS): 1.36 -> 0.36 s per step at batch 128 on
    # the 2-core dev VM; weights, optimiser, EMA and the loss stay float32
    prec = resolve_precision(precision)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if prec == "bf16" else contextlib.nullcontext()
    log(f"ar-prior: precision {prec}, {threads} thread(s)", logf)
    model.train()
    start = last_save = last_log = t_prev = time.time()
    acc, cnt = 0.0, 0
    while time.time() - start < minutes * 60 and (max_steps is None or step < max_steps):
        idx = torch.randint(0, len(pool["z"]), (batch,), generator=g)
        drop = torch.rand(batch, generator=g) < P_DROP
        caps = ["" if dr else pool["captions"][i] for i, dr in zip(idx.tolist(), drop.tolist())]
        with torch.no_grad():
            e, h, m = te.encode(caps)
            # dropped rows get the null dot token, so their (empty-caption) z_t does not matter here
            dot = codes.dot_token(F.cosine_similarity(pool["z"][idx], e, dim=-1))
            dot = torch.where(drop, torch.full_like(dot, model.null_dot), dot)
        c = all_codes[idx]
        warm = min(1.0, (step + 1) / 100)
        prog = min(1.0, elapsed / budget)
        for grp in opt.param_groups:
            grp["lr"] = lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * prog)))
        with autocast:
            logits = model(h, m, e, dot, c[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, sizes.vocab), c.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update(model)
        step += 1
        now = time.time()
        elapsed += now - t_prev
        t_prev = now
        acc += float(loss.detach())
        cnt += 1
        if now - last_log > 30 or step == 1:
            log(f"ar-prior step {step} loss={acc / cnt:.4f} (nats/token; uniform {math.log(sizes.vocab):.3f}) "
                f"lr={opt.param_groups[0]['lr']:.2e} ({elapsed / 60:.1f} min)", logf)
            acc, cnt, last_log = 0.0, 0, now
        if now - last_save > 120:
            save()
            last_save = now
    save()
    log(f"ar-prior: saved at step {step} ({elapsed / 60:.1f} min trained)", logf)
    return {"steps": step, "minutes": round(elapsed / 60, 1)}


def load_or_fit_codes(pool: dict, te, work: Path = WORK_DIR) -> Codes:
    p = work / "codes.pt"
    if p.is_file():
        return codes_from_state(torch.load(p, weights_only=False))
    with torch.no_grad():
        zt = torch.cat([te.encode(pool["captions"][i:i + 1024])[0] for i in range(0, len(pool["z"]), 1024)])
    codes = fit_codes(pool["z"], zt)
    torch.save(codes.state(), p)
    return codes


def load_model(work: Path = WORK_DIR) -> tuple[ARPrior, Codes]:
    ck = torch.load(work / "ckpt.pt", weights_only=False)
    model = ARPrior(ARSizes(**ck["sizes"]))
    model.load_state_dict(ck["ema"]["shadow"])
    return model.eval().requires_grad_(False), codes_from_state(torch.load(work / "codes.pt", weights_only=False))


# -------------------------------------------------------------------------------------------------------- evaluation

@torch.no_grad()
def heldout_set(data, vision, te, n: int = 200, offset: int = 0):
    """eval_prior's held-out captions (same concepts, images and compositions when offset = 0): keys, captions,
    true z_i, text encodings. offset > 0 takes the next concepts in the same hash order (a tuning set)."""
    from .batches import compose
    from .captions import heldout_example
    from .evaluate import _hash, image_embeds

    keys = sorted(data.concept_keys, key=lambda k: _hash("prior-eval:" + k))[offset:offset + n]
    caps, imgs = [], []
    for i, key in enumerate(keys):
        entries = [j for j, e in enumerate(data.images) if key in e["keys"]]
        j = entries[i % len(entries)]
        cap, comp = heldout_example(key, data.concepts[key], data.images[j]["style"])
        caps.append(cap)
        imgs.append(compose(data.rgba[j:j + 1], [comp]))
    z_true = image_embeds(vision, torch.cat(imgs))
    return keys, caps, z_true, te.encode(caps)


@torch.no_grad()
def codes_report(work: Path = WORK_DIR, data_dir: Path = DATA_DIR, pack_dir: Path = PACK_DIR) -> dict:
    from .batches import TextEncoder
    from .dataset import EmojiData
    from .evaluate import Gallery, concept_hits

    torch.set_num_threads(2)
    data = EmojiData(data_dir)
    pipe, vision = load_pack_models(pack_dir)
    te = TextEncoder(pipe.text_encoder)
    pool = pool_cached(data, vision, work / "pool.pt")
    codes = load_or_fit_codes(pool, te, work)
    gallery = Gallery(data, vision)
    keys, caps, z_true, _ = heldout_set(data, vision, te)
    z_rt = codes.decode(codes.encode(z_true))
    z_pca = (codes.mean.double() + codes.project(z_true) @ codes.components.double()).float()
    used = torch.stack([torch.bincount(c, minlength=BUCKETS) for c in codes.encode(pool["z"]).T])
    zd = pool["z"].double()
    cov_ev = torch.linalg.eigvalsh(((zd - zd.mean(0)).T @ (zd - zd.mean(0))) / (len(zd) - 1)).flip(0)
    share = (cov_ev.cumsum(0) / cov_ev.sum()).tolist()
    kk = [[k] for k in keys]
    rep = {
        "pool": len(pool["z"]), "embedding_dim": int(pool["z"].shape[1]), "components": codes.k,
        "variance_kept": codes.variance_kept, "buckets": BUCKETS, "bucket_edges": "per-component training quantiles",
        "variance_at": {str(k): share[k - 1] for k in (8, 16, 24, 32, 40, 48, 64, 96)},
        "heldout_examples": len(keys),
        "cos_roundtrip": float(F.cosine_similarity(z_rt, z_true).mean()),
        "cos_roundtrip_min": float(F.cosine_similarity(z_rt, z_true).min()),
        "cos_pca_only": float(F.cosine_similarity(z_pca, z_true).mean()),
        "cos_roundtrip_centred": float(F.cosine_similarity(z_rt - codes.mean, z_true - codes.mean).mean()),
        "retrieval_top5_true": concept_hits(data, gallery, z_true, kk, 5),
        "retrieval_top5_roundtrip": concept_hits(data, gallery, z_rt, kk, 5),
        "retrieval_top1_true": concept_hits(data, gallery, z_true, kk, 1),
        "retrieval_top1_roundtrip": concept_hits(data, gallery, z_rt, kk, 1),
        "bucket_use_min": int(used.min()), "bucket_use_max": int(used.max()),
    }
    (work / "codes_report.json").write_text(json.dumps(rep, indent=1) + "\n")
    print(json.dumps(rep, indent=1))
    return rep
