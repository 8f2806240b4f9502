"""The autoregressive prior's pieces that must be exact: PCA codes, the sampler's filters and draws, the KV cache."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unclip_toolchain.emoji.ar_prior import (BUCKETS, TEXT_LEN, ARPrior, ARSizes, SampleSettings, codes_from_state,
                                             filter_logits, fit_codes, pick, sample_codes)


def _low_rank(n: int = 4096, e: int = 16, rank: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(e, e, generator=g))[0][:rank]
    scales = torch.tensor([4.0, 2.0, 1.0, 0.5])[:rank]
    return 3.0 + (torch.randn(n, rank, generator=g) * scales) @ basis + 1e-4 * torch.randn(n, e, generator=g)


def test_codes_keep_the_low_rank_part_order_by_eigenvalue_and_round_trip():
    z = _low_rank()
    codes = fit_codes(z, z + 0.1, variance_kept=0.999)
    assert codes.k == 4
    assert bool((codes.eigenvalues[:-1] >= codes.eigenvalues[1:]).all())
    assert codes.edges.shape == (4, BUCKETS - 1) and codes.values.shape == (4, BUCKETS)
    c = codes.encode(z)
    assert c.dtype == torch.int64 and int(c.min()) >= 0 and int(c.max()) < BUCKETS
    # equal-mass buckets: every bucket of every component is used about n / BUCKETS times
    counts = torch.stack([torch.bincount(col, minlength=BUCKETS) for col in c.T])
    assert int(counts.min()) >= 2 and int(counts.max()) <= 6
    cos = F.cosine_similarity(codes.decode(c), z)
    assert float(cos.mean()) > 0.9999 and float(cos.min()) > 0.99      # the tail buckets are the wide ones
    again = codes_from_state(codes.state())
    assert torch.equal(again.encode(z[:10]), c[:10])


def test_filters_and_inverse_cdf_draw():
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    assert torch.isinf(filter_logits(logits, top_k=2)[0, :2]).all()
    p = logits.softmax(-1)[0]                           # [0.032, 0.087, 0.237, 0.644]
    kept = filter_logits(logits, top_p=0.8)              # 0.644 < 0.8 -> two ids needed
    assert torch.isinf(kept[0, :2]).all() and torch.isfinite(kept[0, 2:]).all()
    cum = p.cumsum(0)
    for u, want in ((0.0, 0), (float(cum[0]) + 1e-6, 1), (float(cum[2]) - 1e-6, 2), (0.999999, 3)):
        assert int(pick(logits, torch.tensor([u]))[0]) == want
    # never a filtered-out id, even for u ~ 1
    assert int(pick(filter_logits(torch.tensor([[3.0, 2.0, 1.0, 0.0]]), top_k=2), torch.tensor([0.9999999]))[0]) == 1


def test_kv_cache_sampling_equals_teacher_forced_logits():
    torch.manual_seed(0)
    s = ARSizes(embed=16, width=32, layers=2, heads=2, k=6, vocab=32, dot_buckets=8)
    m = ARPrior(s).eval()
    B, L = 3, 5
    h, e = torch.randn(B, L, 16), torch.randn(B, 16)
    mask = torch.ones(B, L, dtype=torch.bool)
    mask[0, 3:] = False
    dot = torch.tensor([1, 5, 7])
    with torch.no_grad():
        logits, cache, kmask = m.start(h, mask, e, dot)
        steps = [logits]
        codes = torch.randint(0, 32, (B, s.k))
        for j in range(s.k - 1):
            logits, cache, kmask = m.step(codes[:, j], j, cache, kmask)
            steps.append(logits)
        forced = m(h, mask, e, dot, codes[:, :-1])
        # padding to 77 text positions changes nothing (padded keys are masked, positions are absolute)
        h77 = torch.cat([h, torch.randn(B, TEXT_LEN - L, 16)], 1)
        m77 = torch.cat([mask, torch.zeros(B, TEXT_LEN - L, dtype=torch.bool)], 1)
        forced77 = m(h77, m77, e, dot, codes[:, :-1])
    assert torch.allclose(torch.stack(steps, 1), forced, atol=1e-5)
    assert torch.allclose(forced77, forced, atol=1e-5)
    # the sampler with guidance 1 and u = the cumulative probability of a fixed id reproduces teacher forcing
    empty = (torch.randn(1, 2, 16), torch.ones(1, 2, dtype=torch.bool), torch.randn(1, 16))
    u = torch.rand(B, s.k, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = sample_codes(m, h, mask, e, empty, dot, u, SampleSettings(guidance=1.0))
        re = m(h, mask, e, dot, out[:, :-1])
    assert torch.equal(pick(re.reshape(-1, 32), u.reshape(-1)).reshape(B, s.k), out)


def test_exported_graph_matches_pytorch_and_ignores_later_codes(tmp_path):
    import numpy as np
    import onnxruntime as ort

    from unclip_toolchain.emoji.ar_prior import ARGraph, export_onnx

    torch.manual_seed(0)
    s = ARSizes(embed=16, width=32, layers=2, heads=2, k=6, vocab=32, dot_buckets=8)
    m = ARPrior(s).eval()
    path = tmp_path / "ar.onnx"
    export_onnx(m, path, L=TEXT_LEN)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    B = 3
    h, e = torch.randn(B, TEXT_LEN, 16), torch.randn(B, 16)
    mask = torch.zeros(B, TEXT_LEN, dtype=torch.bool)
    mask[:, :7] = True
    dot, codes = torch.tensor([0, 4, 8]), torch.randint(0, 32, (B, s.k))
    feed = {"encoder_hidden_states": h.numpy(), "attention_mask": mask.numpy(), "text_embeds": e.numpy(),
            "dot_token": dot.numpy(), "codes": codes.numpy()}
    out = sess.run(None, feed)[0]
    with torch.no_grad():
        ref = ARGraph(m)(h, mask, e, dot, codes).numpy()
    assert out.shape == (B, s.k, 32) and np.abs(out - ref).max() < 1e-5
    later = codes.clone()
    later[:, 3:] = 0                         # logits of positions <= 3 only see codes 0..2
    out2 = sess.run(None, {**feed, "codes": later.numpy()})[0]
    assert np.abs(out2[:, :4] - out[:, :4]).max() < 1e-6
