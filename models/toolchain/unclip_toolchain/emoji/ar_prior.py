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
SOFT_SIGMA = 8.0           # training targets: Gaussian over neighbouring buckets, in buckets (see train)
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
        # Buckets are ordered (equal-mass quantiles of one component), but a 1,024-way softmax knows nothing of
        # that: from a random init, 240 steps at batch 128 stayed at the uniform loss (6.936 nats). Starting the
        # head's class vectors and the code embeddings as Fourier features of the bucket's quantile makes
        # neighbouring buckets similar from the start (both stay trainable).
        with torch.no_grad():
            u = (torch.arange(s.vocab, dtype=torch.float32) + 0.5) / s.vocab
            f = torch.arange(1, w // 2 + 1, dtype=torch.float32)
            basis = torch.cat([torch.cos(math.pi * f * u[:, None]), torch.sin(math.pi * f * u[:, None])], 1)
            self.head.weight.copy_(basis * 0.05)
            self.head.bias.zero_()
            self.code_emb.weight.copy_(basis * 0.5)

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
    ids = torch.arange(sizes.vocab, dtype=torch.float32)
    model.train()
    start = last_save = last_log = t_prev = time.time()
    acc, acc8, cnt = 0.0, 0.0, 0
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
        lf = logits.float().reshape(-1, sizes.vocab)
        hard = F.cross_entropy(lf, c.reshape(-1))
        # soft targets: a Gaussian over neighbouring buckets (SOFT_SIGMA of 1,024, i.e. +-0.8 % of a component's
        # training quantiles) shares each example's gradient with its neighbours; `loss` logs the hard CE
        soft = torch.exp(-0.5 * ((ids[None] - c.reshape(-1, 1)) / SOFT_SIGMA) ** 2)
        loss = -(soft / soft.sum(1, keepdim=True) * lf.log_softmax(-1)).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update(model)
        step += 1
        now = time.time()
        elapsed += now - t_prev
        t_prev = now
        acc += float(hard.detach())
        acc8 += float(F.cross_entropy(logits[:, :8].float().reshape(-1, sizes.vocab), c[:, :8].reshape(-1)))
        cnt += 1
        if now - last_log > 30 or step == 1:
            log(f"ar-prior step {step} loss={acc / cnt:.4f} first8={acc8 / cnt:.4f} (nats/token; uniform "
                f"{math.log(sizes.vocab):.3f}) "
                f"lr={opt.param_groups[0]['lr']:.2e} ({elapsed / 60:.1f} min)", logf)
            acc, acc8, cnt, last_log = 0.0, 0.0, 0, now
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


@torch.no_grad()
def ar_samples(model: ARPrior, codes: Codes, te, caps: list[str], n: int, st: SampleSettings, seed: int,
               chunk: int = 800) -> torch.Tensor:
    """n z_i per caption [len(caps), n, E]: dot token from the top half, uniforms from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    e0, h0, m0 = te.encode([""])
    empty = (h0, m0, e0)
    rows = [c for c in caps for _ in range(n)]
    out = []
    for i in range(0, len(rows), chunk):
        e, h, m = te.encode(rows[i:i + chunk])
        b = len(e)
        dot = top_half_dot(b, g)
        u = torch.rand(b, model.s.k, generator=g)
        out.append(codes.decode(sample_codes(model, h, m, e, empty, dot, u, st)))
    return torch.cat(out).view(len(caps), n, -1)


@torch.no_grad()
def diffusion_samples(pipe, caps: list[str], n: int, seed: int, chunk: int = 400) -> torch.Tensor:
    from .evaluate import sample_prior

    g = torch.Generator().manual_seed(seed)
    rows = [c for c in caps for _ in range(n)]
    return torch.cat([sample_prior(pipe, rows[i:i + chunk], g) for i in range(0, len(rows), chunk)]).view(
        len(caps), n, -1)


def best_of(z: torch.Tensor, z_t: torch.Tensor, k: int) -> torch.Tensor:
    """[C, n, E] -> [C, n // k, E]: of each group of k samples, the one with the highest cos(z_i, z_t)."""
    C, n, E = z.shape
    g = z.view(C, n // k, k, E)
    score = F.cosine_similarity(g, z_t[:, None, None, :], dim=-1)
    return g.gather(2, score.argmax(2)[:, :, None, None].expand(-1, -1, 1, E)).squeeze(2)


def prior_metrics(data, gallery, keys, z: torch.Tensor, z_true: torch.Tensor, mean: torch.Tensor) -> dict:
    """z [C, S, E] (S samples per caption): mean cosine to the true z_i, retrieval top-5 (mean over samples),
    diversity = mean pairwise cosine of the S samples of a caption (lower = more diverse)."""
    from .evaluate import concept_hits

    C, S, E = z.shape
    flat = z.reshape(C * S, E)
    zt = z_true.repeat_interleave(S, 0)
    zn = F.normalize(z, dim=-1)
    pair = (zn @ zn.transpose(1, 2))[:, ~torch.eye(S, dtype=torch.bool)].mean() if S > 1 else torch.tensor(float("nan"))
    return {"samples_per_caption": S,
            "cos_true": float(F.cosine_similarity(flat, zt).mean()),
            "cos_true_centred": float(F.cosine_similarity(flat - mean, zt - mean).mean()),
            "retrieval_top5": concept_hits(data, gallery, flat, [[k] for k in keys for _ in range(S)], 5),
            "diversity_pairwise_cos": float(pair)}


def evaluate(work: Path = WORK_DIR, data_dir: Path = DATA_DIR, pack_dir: Path = PACK_DIR, n: int = 200,
             samples: int = 8, guidance: float | None = None, threads: int = 1) -> dict:
    """The paper's comparison on eval_prior's 200 held-out captions. Every prior draws 2 x `samples` z_i per
    caption: the single-sample rows use the first `samples`, the two-sample rows keep the better of each pair."""
    from .batches import TextEncoder
    from .dataset import EmojiData
    from .evaluate import Gallery, concept_hits

    torch.set_num_threads(threads)
    t0 = time.time()
    data = EmojiData(data_dir)
    pipe, vision = load_pack_models(pack_dir)
    te = TextEncoder(pipe.text_encoder)
    gallery = Gallery(data, vision)
    model, codes = load_model(work)
    mean = pipe.prior.clip_mean[0]
    res: dict = {"heldout_captions": n, "sample_settings": {}}
    if guidance is None:   # tuned on the next 100 concepts' held-out captions (not the evaluation set)
        tk, tc, tz, (te_e, _, _) = heldout_set(data, vision, te, 100, offset=n)
        sweep = {}
        for gs in (1.0, 2.0, 3.0, 5.0):
            z = ar_samples(model, codes, te, tc, 2, SampleSettings(guidance=gs), seed=7)
            sweep[str(gs)] = prior_metrics(data, gallery, tk, z, tz, mean)
            print("guidance", gs, sweep[str(gs)], flush=True)
        score = lambda k: (sweep[k]["retrieval_top5"], sweep[k]["cos_true"])  # noqa: E731
        guidance = float(max(sweep, key=score))
        temperature = 1.0
        for t in (0.8,):
            key = f"{guidance} T={t}"
            z = ar_samples(model, codes, te, tc, 2, SampleSettings(guidance=guidance, temperature=t), seed=7)
            sweep[key] = prior_metrics(data, gallery, tk, z, tz, mean)
            print("guidance", guidance, "temperature", t, sweep[key], flush=True)
            if score(key) > score(str(guidance)):
                temperature = t
        res["guidance_sweep"] = sweep
    else:
        temperature = 1.0
    st = SampleSettings(guidance=guidance, temperature=temperature)
    res["sample_settings"] = asdict(st)
    keys, caps, z_true, (z_t, _, _) = heldout_set(data, vision, te, n)
    kk = [[k] for k in keys]
    res["baselines"] = {"text_embedding": {"cos_true": float(F.cosine_similarity(z_t, z_true).mean()),
                                           "retrieval_top5": concept_hits(data, gallery, z_t, kk, 5)},
                        "true_z_i": {"retrieval_top5": concept_hits(data, gallery, z_true, kk, 5)}}
    t = time.time()
    za = ar_samples(model, codes, te, caps, 2 * samples, st, seed=0)
    res["ar_seconds_per_sample_torch"] = (time.time() - t) / za[:, :, 0].numel()
    t = time.time()
    zd = diffusion_samples(pipe, caps, 2 * samples, seed=0)
    res["diffusion_seconds_per_sample_torch"] = (time.time() - t) / zd[:, :, 0].numel()
    rows = {"ar": za[:, :samples], "ar_2": best_of(za, z_t, 2), "diffusion": zd[:, :samples], "diffusion_2": best_of(zd, z_t, 2)}
    res["priors"] = {k: prior_metrics(data, gallery, keys, v, z_true, mean) for k, v in rows.items()}
    res["seconds"] = round(time.time() - t0, 1)
    (work / "comparison.json").write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))
    return res


# ------------------------------------------------------------------------------------------------------------ export

AR_FILE = "ar_prior.onnx"
TABLES_FILE = "ar_prior_codes.safetensors"
AR_IO = (["encoder_hidden_states", "attention_mask", "text_embeds", "dot_token", "codes"], ["logits"])


class ARGraph(torch.nn.Module):
    """The exported graph: the whole sequence at once (no KV cache, see models/README.md for the measurement).
    codes [B,K]: entry j only reaches logits[:, j+1:] (causal mask), so unsampled entries may hold anything."""

    def __init__(self, model: ARPrior) -> None:
        super().__init__()
        self.model = model

    def forward(self, encoder_hidden_states, attention_mask, text_embeds, dot_token, codes):
        return self.model(encoder_hidden_states, attention_mask, text_embeds, dot_token, codes[:, :-1])


def export_onnx(model: ARPrior, path: Path, L: int = TEXT_LEN) -> None:
    from ..export import OPSET

    s = model.s
    B = 2
    args = (torch.randn(B, L, s.embed), torch.ones(B, L, dtype=torch.bool), torch.randn(B, s.embed),
            torch.zeros(B, dtype=torch.int64), torch.zeros(B, s.k, dtype=torch.int64))
    names_in, names_out = AR_IO
    torch.onnx.export(ARGraph(model).eval(), args, str(path), input_names=names_in, output_names=names_out,
                      dynamic_axes={n: {0: "batch"} for n in names_in + names_out}, opset_version=OPSET,
                      do_constant_folding=True, dynamo=False)


def manifest_entries(model: ARPrior, codes: Codes, settings: SampleSettings, samples: int, L: int, H: int) -> tuple:
    s = model.s
    comp = {"file": AR_FILE,
            "inputs": [{"name": "encoder_hidden_states", "dtype": "float32", "shape": ["batch", L, H]},
                       {"name": "attention_mask", "dtype": "bool", "shape": ["batch", L]},
                       {"name": "text_embeds", "dtype": "float32", "shape": ["batch", s.embed]},
                       {"name": "dot_token", "dtype": "int64", "shape": ["batch"]},
                       {"name": "codes", "dtype": "int64", "shape": ["batch", s.k]}],
            "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", s.k, s.vocab]}]}
    section = {"tables": TABLES_FILE, "sequence_length": s.k, "buckets": s.vocab, "vocabulary": s.vocab,
               "dot_buckets": s.dot_buckets, "null_dot_token": model.null_dot,
               "variance_kept": round(codes.variance_kept, 6),
               "sampling": {"guidance": settings.guidance, "temperature": settings.temperature,
                            "top_k": settings.top_k, "top_p": settings.top_p, "samples": samples}}
    return comp, section


def write_tables(codes: Codes, path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"pca_mean": codes.mean.float().contiguous(), "pca_components": codes.components.float().contiguous(),
               "bucket_values": codes.values.float().contiguous()}, str(path))


def add_to_pack(pack_dir: Path = PACK_DIR, work: Path = WORK_DIR, settings: SampleSettings | None = None,
                samples: int = 1) -> dict:
    """Writes ar_prior.onnx + ar_prior_codes.safetensors into the pack and the v2 manifest entries."""
    from ..flops import count_flops
    from ..manifest import read_manifest, sha256_file, validate_manifest
    import onnx

    pack_dir = Path(pack_dir)
    m = read_manifest(pack_dir)
    model, codes = load_model(work)
    L, H = m["text"]["max_length"], m["text"]["hidden_size"]
    export_onnx(model, pack_dir / AR_FILE, L)
    write_tables(codes, pack_dir / TABLES_FILE)
    os.chmod(pack_dir / TABLES_FILE, 0o644)
    comp, section = manifest_entries(model, codes, settings or SampleSettings(), samples, L, H)
    comp["flops"] = count_flops(onnx.load(str(pack_dir / AR_FILE)))
    m["schema_version"] = 2
    m["components"]["ar_prior"] = comp
    m["ar_prior"] = section
    for f in (AR_FILE, TABLES_FILE):
        m["files"][f] = sha256_file(pack_dir / f)
    m["files"] = dict(sorted(m["files"].items()))
    validate_manifest(m)
    (pack_dir / "manifest.json").write_text(json.dumps(m, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return m


def dot_from_uniform(u: torch.Tensor, dot_buckets: int = DOT_BUCKETS) -> torch.Tensor:
    """The engine's rule (stages/ar-prior.ts): a uniform -> a dot token in the upper half of the buckets."""
    half = dot_buckets // 2
    return (half + torch.floor(u.double() * (dot_buckets - half))).long().clamp(max=dot_buckets - 1)


@torch.no_grad()
def check_onnx(pack_dir: Path = PACK_DIR, work: Path = WORK_DIR, batch: int = 3, seed: int = 1) -> float:
    """Max |logits| difference of the exported graph vs the PyTorch model on random inputs (with padding)."""
    import onnxruntime as ort

    model, _ = load_model(work)
    g = torch.Generator().manual_seed(seed)
    s = model.s
    h = torch.randn(batch, TEXT_LEN, s.embed, generator=g)
    m = torch.ones(batch, TEXT_LEN, dtype=torch.bool)
    m[:, 9:] = False
    e = torch.randn(batch, s.embed, generator=g)
    d = torch.randint(0, s.dot_buckets + 1, (batch,), generator=g)
    c = torch.randint(0, s.vocab, (batch, s.k), generator=g)
    ref = ARGraph(model)(h, m, e, d, c).numpy()
    sess = ort.InferenceSession(str(Path(pack_dir) / AR_FILE), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"encoder_hidden_states": h.numpy(), "attention_mask": m.numpy(), "text_embeds": e.numpy(),
                          "dot_token": d.numpy(), "codes": c.numpy()})[0]
    return float(np.abs(out - ref).max())


@torch.no_grad()
def parity_fixture(out: Path, pack_dir: Path = PACK_DIR, work: Path = WORK_DIR, seed: int = 5,
                   captions: tuple[str, ...] = ("a red apple, noto style", "an emoji of a rocket, on a blue background"),
                   settings: SampleSettings | None = None) -> dict:
    """The PyTorch AR prior on injected uniforms: what the engine must reproduce (test/integration/engine)."""
    from .batches import TextEncoder

    model, codes = load_model(work)
    pipe, _ = load_pack_models(pack_dir)
    te = TextEncoder(pipe.text_encoder)
    st = settings or SampleSettings()
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(len(captions), 1 + model.s.k, generator=g, dtype=torch.float64)
    e, h, m = te.encode(list(captions))
    e0, h0, m0 = te.encode([""])
    c = sample_codes(model, h, m, e, (h0, m0, e0), dot_from_uniform(u[:, 0]), u[:, 1:], st)
    z = codes.decode(c)
    fx = {"captions": list(captions), "settings": asdict(st), "uniforms": u.tolist(), "codes": c.tolist(),
          "image_embeddings": z.tolist(), "onnx_vs_torch_max_abs_logits": check_onnx(pack_dir, work)}
    # more cases: other captions, seeds and every filter (unguided, top-k, top-p, hot and cold temperatures)
    fx["cases"] = []
    for i, (cap, case) in enumerate((("a yellow star, fluent style", SampleSettings(1.0, 1.2, 0, 1.0)),
                                     ("a cat face, small, in the top left corner", SampleSettings(3.0, 1.0, 50, 1.0)),
                                     ("green heart emoji", SampleSettings(5.0, 0.7, 0, 0.9)),
                                     ("a blue car, twemoji style", SampleSettings(2.0, 1.0, 20, 0.8)))):
        gi = torch.Generator().manual_seed(100 + i)
        ui = torch.rand(1, 1 + model.s.k, generator=gi, dtype=torch.float64)
        e, h, m = te.encode([cap])
        ci = sample_codes(model, h, m, e, (h0, m0, e0), dot_from_uniform(ui[:, 0]), ui[:, 1:], case)
        fx["cases"].append({"caption": cap, "settings": asdict(case), "uniforms": ui[0].tolist(),
                            "codes": ci[0].tolist(), "image_embedding": codes.decode(ci)[0].tolist()})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(fx) + "\n")
    return fx


PARITY_FIXTURE = Path(__file__).resolve().parents[4] / "test" / "integration" / "engine" / "ar-prior-parity.json"


def default_settings(work: Path = WORK_DIR) -> SampleSettings:
    """The sampling settings the comparison picked (comparison.json), else the defaults."""
    p = work / "comparison.json"
    if p.is_file():
        return SampleSettings(**json.loads(p.read_text())["sample_settings"])
    return SampleSettings()


def default_samples(work: Path = WORK_DIR) -> int:
    """2 when two-sample selection measured better (prior retrieval top-5, then cosine) in comparison.json."""
    p = work / "comparison.json"
    if not p.is_file():
        return 1
    r = json.loads(p.read_text())["priors"]
    key = lambda k: (r[k]["retrieval_top5"], r[k]["cos_true"])  # noqa: E731
    return 2 if key("ar_2") > key("ar") else 1


def comparison_table(res: dict) -> str:
    """The paper's comparison (Table 2 / §5 analogue) as a Markdown table, from comparison.json."""
    names = {"diffusion": "diffusion prior", "diffusion_2": "diffusion prior, 2 samples (keep higher z_i·z_t)",
             "ar": "AR prior", "ar_2": "AR prior, 2 samples (keep higher z_i·z_t)"}
    lines = ["| prior | cos(z_i, true z_i) | same, mean removed | prior retrieval top-5 | "
             "diversity (mean pairwise cos of 8 samples; lower = more diverse) |", "|---|---|---|---|---|"]
    for k in ("diffusion", "diffusion_2", "ar", "ar_2"):
        p = res["priors"][k]
        lines.append(f"| {names[k]} | {p['cos_true']:.3f} | {p['cos_true_centred']:.3f} | {p['retrieval_top5']:.1%} | "
                     f"{p['diversity_pairwise_cos']:.3f} |")
    b = res["baselines"]
    lines.append(f"| baseline: caption's text embedding z_t as z_i | {b['text_embedding']['cos_true']:.3f} | | "
                 f"{b['text_embedding']['retrieval_top5']:.1%} | |")
    lines.append(f"| ceiling: the true z_i | 1 | 1 | {b['true_z_i']['retrieval_top5']:.1%} | |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------- KV-cache graphs (start + step)

START_FILE = "ar_prior_start.onnx"
STEP_FILE = "ar_prior_step.onnx"
START_IO = (["encoder_hidden_states", "attention_mask", "text_embeds", "dot_token"], ["logits", "present"])
STEP_IO = (["code", "position", "past", "key_mask"], ["logits", "present"])


class ARStart(torch.nn.Module):
    """Prefix pass with a fixed-size cache: logits of code_0 [B,V] and present [B, 2·layers, heads, S, d]
    (S = 77 + 2 + K; keys/values of the text positions 0..L-1, z_t at 77, the dot token at 78; the rest 0)."""

    def __init__(self, model: ARPrior) -> None:
        super().__init__()
        self.model = model

    def forward(self, encoder_hidden_states, attention_mask, text_embeds, dot_token):
        m = self.model
        B, L, _ = encoder_hidden_states.shape
        logits, cache, _ = m.start(encoder_hidden_states, attention_mask, text_embeds, dot_token)
        S = m.s.seq
        kv = []
        for k, v in cache:                                           # [B, h, L+2, d]
            for t in (k, v):
                text, tail = t[:, :, :L], t[:, :, L:]
                pad = torch.zeros(B, t.shape[1], TEXT_LEN - L, t.shape[3])
                rest = torch.zeros(B, t.shape[1], S - TEXT_LEN - 2, t.shape[3])
                kv.append(torch.cat([text, pad, tail, rest], 2))
        return logits, torch.stack(kv, 1)


class ARStep(torch.nn.Module):
    """Feed code_j at sequence slot 79 + j: logits of code_{j+1} and the cache with that slot written.
    key_mask [B,S]: the valid keys including slot 79 + j (text padding and later slots False)."""

    def __init__(self, model: ARPrior) -> None:
        super().__init__()
        self.model = model

    def forward(self, code, position, past, key_mask):
        m = self.model
        S = m.s.seq
        slot = position + TEXT_LEN + 2                                 # [B]
        x = (m.code_emb(code) + m.pos[slot])[:, None]                  # [B,1,W]
        onehot = (torch.arange(S)[None] == slot[:, None]).to(past.dtype)[:, None, :, None]  # [B,1,S,1]
        bias = torch.zeros(key_mask.shape, dtype=past.dtype).masked_fill(~key_mask, -1e9)[:, None, None, :]
        out = []
        for i, blk in enumerate(m.blocks):
            B, T, W = x.shape
            h, d = blk.heads, W // blk.heads
            q, k, v = blk.qkv(blk.ln1(x)).view(B, T, 3, h, d).permute(2, 0, 3, 1, 4)
            pk = past[:, 2 * i] * (1 - onehot) + k * onehot
            pv = past[:, 2 * i + 1] * (1 - onehot) + v * onehot
            att = (q @ pk.transpose(-1, -2)) / math.sqrt(d) + bias
            y = (att.softmax(-1) @ pv).transpose(1, 2).reshape(B, T, W)
            x = x + blk.out(y)
            x = x + blk.fc2(F.gelu(blk.fc1(blk.ln2(x))))
            out += [pk, pv]
        return m.head(m.ln_f(x[:, -1])), torch.stack(out, 1)


def export_cached(model: ARPrior, out_dir: Path, L: int = TEXT_LEN) -> None:
    from ..export import OPSET

    s = model.s
    B = 2
    d = s.width // s.heads
    start_args = (torch.randn(B, L, s.embed), torch.ones(B, L, dtype=torch.bool), torch.randn(B, s.embed),
                  torch.zeros(B, dtype=torch.int64))
    step_args = (torch.zeros(B, dtype=torch.int64), torch.zeros(B, dtype=torch.int64),
                 torch.randn(B, 2 * s.layers, s.heads, s.seq, d), torch.ones(B, s.seq, dtype=torch.bool))
    for mod, args, io, f in ((ARStart(model), start_args, START_IO, START_FILE),
                             (ARStep(model), step_args, STEP_IO, STEP_FILE)):
        torch.onnx.export(mod.eval(), args, str(Path(out_dir) / f), input_names=io[0], output_names=io[1],
                          dynamic_axes={n: {0: "batch"} for n in io[0] + io[1]}, opset_version=OPSET,
                          do_constant_folding=True, dynamo=False)


def cached_entries(model: ARPrior, L: int, H: int) -> dict:
    s = model.s
    d = s.width // s.heads
    cache = ["batch", 2 * s.layers, s.heads, s.seq, d]
    f32 = lambda n, shape: {"name": n, "dtype": "float32", "shape": shape}  # noqa: E731
    return {
        "ar_prior_start": {"file": START_FILE,
                           "inputs": [f32("encoder_hidden_states", ["batch", L, H]),
                                      {"name": "attention_mask", "dtype": "bool", "shape": ["batch", L]},
                                      f32("text_embeds", ["batch", s.embed]),
                                      {"name": "dot_token", "dtype": "int64", "shape": ["batch"]}],
                           "outputs": [f32("logits", ["batch", s.vocab]), f32("present", cache)]},
        "ar_prior_step": {"file": STEP_FILE,
                          "inputs": [{"name": "code", "dtype": "int64", "shape": ["batch"]},
                                     {"name": "position", "dtype": "int64", "shape": ["batch"]},
                                     f32("past", cache),
                                     {"name": "key_mask", "dtype": "bool", "shape": ["batch", s.seq]}],
                          "outputs": [f32("logits", ["batch", s.vocab]), f32("present", cache)]},
    }


def add_cached_to_pack(pack_dir: Path = PACK_DIR, work: Path = WORK_DIR) -> dict:
    """Adds the KV-cache graphs (ar_prior_start + ar_prior_step) to a pack that has the AR prior."""
    import onnx

    from ..flops import count_flops
    from ..manifest import read_manifest, sha256_file, validate_manifest

    pack_dir = Path(pack_dir)
    m = read_manifest(pack_dir)
    model, _ = load_model(work)
    L, H = m["text"]["max_length"], m["text"]["hidden_size"]
    export_cached(model, pack_dir, L)
    for role, comp in cached_entries(model, L, H).items():
        comp["flops"] = count_flops(onnx.load(str(pack_dir / comp["file"])))
        m["components"][role] = comp
        m["files"][comp["file"]] = sha256_file(pack_dir / comp["file"])
    m["files"] = dict(sorted(m["files"].items()))
    validate_manifest(m)
    (pack_dir / "manifest.json").write_text(json.dumps(m, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return m


@torch.no_grad()
def check_cached(pack_dir: Path = PACK_DIR, work: Path = WORK_DIR, seed: int = 2) -> float:
    """Max |logits| difference of start + step graphs (onnxruntime) against the full PyTorch graph, all positions."""
    import onnxruntime as ort

    model, _ = load_model(work)
    s = model.s
    g = torch.Generator().manual_seed(seed)
    B = 2
    h, e = torch.randn(B, TEXT_LEN, s.embed, generator=g), torch.randn(B, s.embed, generator=g)
    mask = torch.zeros(B, TEXT_LEN, dtype=torch.bool)
    mask[0, :5], mask[1, :11] = True, True
    dot = torch.tensor([3, s.dot_buckets])
    codes = torch.randint(0, s.vocab, (B, s.k), generator=g)
    ref = ARGraph(model)(h, mask, e, dot, codes).numpy()
    opt = ["CPUExecutionProvider"]
    start = ort.InferenceSession(str(Path(pack_dir) / START_FILE), providers=opt)
    step = ort.InferenceSession(str(Path(pack_dir) / STEP_FILE), providers=opt)
    logits, past = start.run(None, {"encoder_hidden_states": h.numpy(), "attention_mask": mask.numpy(),
                                    "text_embeds": e.numpy(), "dot_token": dot.numpy()})
    err = float(np.abs(logits - ref[:, 0]).max())
    km = torch.cat([mask, torch.ones(B, 2, dtype=torch.bool), torch.zeros(B, s.k, dtype=torch.bool)], 1)
    for j in range(s.k - 1):
        km[:, TEXT_LEN + 2 + j] = True
        logits, past = step.run(None, {"code": codes[:, j].numpy(), "position": np.full(B, j, dtype=np.int64),
                                       "past": past, "key_mask": km.numpy()})
        err = max(err, float(np.abs(logits - ref[:, j + 1]).max()))
    return err
