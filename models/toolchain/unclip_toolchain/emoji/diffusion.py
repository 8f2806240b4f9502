"""Training-side diffusion maths matching diffusers' UnCLIPScheduler (squaredcos_cap_v2, 1000 steps).

The decoder is trained with the "hybrid" objective of Nichol & Dhariwal (improved DDPM): eps MSE plus the
variational bound term for the learned-range variance (eps detached inside the bound), so its channels 3-5 are
the interpolation value v in [-1, 1] that UnCLIPScheduler's `learned_range` expects:
log var = (v+1)/2 * log(beta_t) + (1-(v+1)/2) * log(posterior variance_t).
"""

from __future__ import annotations

import math

import torch


class Schedule:
    def __init__(self, num_train_timesteps: int = 1000) -> None:
        from diffusers import UnCLIPScheduler

        sch = UnCLIPScheduler(num_train_timesteps=num_train_timesteps, beta_schedule="squaredcos_cap_v2")
        self.T = num_train_timesteps
        self.betas = sch.betas.double()
        self.ac = sch.alphas_cumprod.double()
        self.ac_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.ac[:-1]])
        self.post_var = self.betas * (1 - self.ac_prev) / (1 - self.ac)
        self.post_c1 = self.betas * self.ac_prev.sqrt() / (1 - self.ac)          # coefficient of x0
        self.post_c2 = (1 - self.ac_prev) * (1 - self.betas).sqrt() / (1 - self.ac)  # coefficient of x_t

    def to(self, device) -> "Schedule":
        """The tables on `device` (indexed by timesteps living there); a no-op on the CPU."""
        if torch.device(device).type != "cpu":
            for k in ("betas", "ac", "ac_prev", "post_var", "post_c1", "post_c2"):
                setattr(self, k, getattr(self, k).to(device))
        return self

    def _g(self, arr: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
        return arr[t].float().view(-1, *([1] * (ndim - 1)))

    def min_snr_weight(self, t: torch.Tensor, gamma: float) -> torch.Tensor:
        """Min-SNR-gamma loss weight for eps prediction (Hang et al. 2023), min(SNR_t, gamma) / SNR_t per sample.

        Uniform eps-MSE is dominated by the low-noise steps, where eps is hardest to see; the high-noise steps
        that fix an image's colours and layout get little of the gradient, and with few sampling steps their
        small eps errors become large x0 errors (a tinted background, a colour cast after super-resolution).
        """
        snr = self.ac / (1 - self.ac)
        return (snr.clamp(max=gamma) / snr)[t].float()

    def q_sample_first_step_garbage(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, t_min: int,
                                    p: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_t, eps target) where, for a share p of the samples with t >= t_min, part of x_t's signal is replaced
        by what DDPM sampling actually feeds the network after its first step.

        At t = 999 (alpha_bar ~ 2e-9) any eps error becomes an x0 estimate of +-1e3, clipped to a random +-1
        pattern, and the step to the next timestep makes that pattern the whole "signal" of x_t. A network trained
        only on q(x_t | x0) takes it for the image (a grey or purple cast). Here the signal is
        (1 - m) x0 + m g, g = random signs, m ~ U(0, 1), and the target eps is the one whose x0 estimate is the true
        x0, so the network learns to take the colours from its conditioning. Sampling itself is unchanged.
        """
        a = self._g(self.ac, t, x0.ndim)
        # the draws come from the CPU's generator whatever the device (train.DEVICES)
        dev = (lambda x: x) if x0.device.type == "cpu" else (lambda x: x.to(x0.device))
        pick = (t >= t_min) & dev(torch.rand(len(t)) < p)
        m = (dev(torch.rand(len(t))) * pick).view(-1, *([1] * (x0.ndim - 1)))
        g = dev(torch.randint(0, 2, x0.shape, dtype=x0.dtype)) * 2 - 1
        xt = a.sqrt() * ((1 - m) * x0 + m * g) + (1 - a).sqrt() * noise
        return xt, noise + (a / (1 - a)).sqrt() * m * (g - x0)   # = (x_t - sqrt(a) x0) / sqrt(1 - a)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        a = self._g(self.ac, t, x0.ndim)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def hybrid_loss(self, out6: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor,
                    noise: torch.Tensor, weight: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(eps MSE, variational-bound term in bits/dim) for a 6-channel eps + learned-range output; `weight`
        (per sample) weights the eps MSE only."""
        eps, v = out6[:, :3], out6[:, 3:]
        mse = (eps - noise).pow(2).mean(dim=list(range(1, out6.ndim)))
        mse = (mse * weight).mean() if weight is not None else mse.mean()
        nd = x0.ndim
        a = self._g(self.ac, t, nd)
        x0_pred = (xt - (1 - a).sqrt() * eps.detach()) / a.sqrt()
        c1, c2 = self._g(self.post_c1, t, nd), self._g(self.post_c2, t, nd)
        mean_true = c1 * x0 + c2 * xt
        mean_pred = c1 * x0_pred + c2 * xt
        tt = t.clamp(min=1)  # t = 0 has zero posterior variance: masked out below
        rows = torch.arange(len(t), device=t.device)
        min_log = self._g(self.post_var[tt].log(), rows, nd)
        max_log = self._g(self.betas[tt].log(), rows, nd)
        frac = (v + 1) / 2
        logvar = frac * max_log + (1 - frac) * min_log
        kl = 0.5 * (-1.0 + logvar - min_log + torch.exp(min_log - logvar)
                    + (mean_true - mean_pred).pow(2) * torch.exp(-logvar))
        kl = kl.mean(dim=list(range(1, nd))) / math.log(2.0)
        kl = torch.where(t > 0, kl, torch.zeros_like(kl))
        return mse, kl.mean()


class EMA:
    """Exponential moving average of a model's parameters with the usual warm-up (decay grows to `decay`)."""

    def __init__(self, model: torch.nn.Module, decay: float = 0.999) -> None:
        self.decay = decay
        self.n = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.n += 1
        d = min(self.decay, (1 + self.n) / (10 + self.n))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                self.shadow[k].copy_(v)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "n": self.n, "shadow": self.shadow}

    def load_state_dict(self, sd: dict) -> None:
        self.decay, self.n, self.shadow = sd["decay"], sd["n"], sd["shadow"]

    def to(self, device) -> "EMA":
        """The shadow weights on `device` (they update against the model's own there); a no-op on the CPU."""
        if torch.device(device).type != "cpu":
            self.shadow = {k: v.to(device) for k, v in self.shadow.items()}
        return self
