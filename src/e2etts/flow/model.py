"""Flow-matching decoder (OT-CFM, Lipman et al. 2023 / CosyVoice): speech tokens -> log-mel.

token vectors (B, T', d_fsq) -> Linear + small transformer (token encoder)
-> repeat each token 4x (mel rate, 100 frames/s) -> "cond" (B, 4T', d_model), and
"mu" = Linear(cond) (B, 4T', n_mels): a direct mel estimate from the tokens alone.
Estimator v(x_t, t, cond, mu, prompt): a transformer over Linear(concat[x_t, cond, mu, prompt_mel])
with RoPE positions and adaLN-Zero time conditioning. prompt_mel is the ground-truth mel on
a prefix (the voice prompt) and zeros elsewhere.

Frame rule: tokens cover 4 * token_lens mel frames (see tokenizer.model: token_lens =
ceil(mel_lens / 4)); training frames beyond min(mel_lens, 4 * token_lens) are masked.

mu is trained toward the normalized mel (the "prior" loss of Grad-TTS / Matcha-TTS,
weight prior_weight): it makes the token encoder carry the frame content explicitly, so
the estimator only has to add detail. Measured on the default corpus it is what made the
flow usable within a CPU budget (docs/design-decisions.md).

Works in normalized mel space (per-bin buffers mel_mean / mel_std, `set_normalization`);
`sample` returns un-normalized log-mel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..nn import MelNormalizer, TimestepEmbedding, Transformer, length_mask


@dataclass
class FlowMatchingConfig:
    n_mels: int = 80
    fsq_dim: int = 4
    d_model: int = 256
    n_layers: int = 6  # estimator
    n_heads: int = 4
    dropout: float = 0.1
    # Dropout on the attention probabilities; None: `dropout` (nn.Transformer).
    attention_dropout: float | None = None
    cond_drop_prob: float = 0.2  # classifier-free guidance: drop tokens + prompt together
    sigma_min: float = 1e-4
    upsample: int = 4
    token_encoder_layers: int = 2
    prompt_zero_prob: float = 0.3  # fraction of training items with no prompt prefix
    prompt_max_frac: float = 0.5  # otherwise the prefix is uniform in [0, frac * length]
    prior_weight: float = 1.0  # MSE of mu against the normalized mel; 0 leaves mu unsupervised
    # Global speaker condition for the token encoder (so mu is speaker-specific): an MLP over
    # the per-bin mean and std of a reference mel (training: the whole utterance; synthesis:
    # the prompt). CosyVoice conditions its flow on a speaker embedding for the same reason.
    speaker_cond: bool = False
    # Residual depthwise-conv blocks (ConvNeXt-style, kernel 7) at mel rate after the 4x
    # repeat, so cond and mu can change within a token; without them mu is constant over
    # each token's 4 frames (the block-average oracle's ceiling). CosyVoice's flow likewise
    # keeps encoding after upsampling.
    frame_encoder_layers: int = 0
    # The same conv blocks on the estimator's input (x_t, cond, mu, prompt) before its
    # transformer: local spectro-temporal detail at mel rate.
    estimator_conv_layers: int = 0


class FrameConvBlock(nn.Module):
    """x + MLP(LN(depthwise conv k7 (x))) over (B, T, d), ConvNeXt style."""

    def __init__(self, d: int, kernel: int = 7, mult: int = 2):
        super().__init__()
        self.dwconv = nn.Conv1d(d, d, kernel, padding=kernel // 2, groups=d)
        self.norm = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, mult * d), nn.GELU(), nn.Linear(mult * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x.transpose(1, 2)).transpose(1, 2)
        return x + self.mlp(self.norm(h))


class FlowMatchingDecoder(nn.Module):
    def __init__(self, cfg: FlowMatchingConfig | None = None):
        super().__init__()
        cfg = cfg or FlowMatchingConfig()
        self.cfg = cfg
        d = cfg.d_model
        self.norm = MelNormalizer(cfg.n_mels)
        self.token_in = nn.Linear(cfg.fsq_dim, d)
        self.token_encoder = Transformer(d, cfg.n_heads, cfg.token_encoder_layers, cfg.dropout,
                                         attention_dropout=cfg.attention_dropout)
        self.frame_encoder = nn.ModuleList(FrameConvBlock(d) for _ in range(cfg.frame_encoder_layers))
        self.prior_proj = nn.Linear(d, cfg.n_mels)
        if cfg.speaker_cond:
            self.speaker_proj = nn.Sequential(nn.Linear(2 * cfg.n_mels, d), nn.GELU(), nn.Linear(d, d))
        self.in_proj = nn.Linear(3 * cfg.n_mels + d, d)
        self.time_emb = TimestepEmbedding(d)
        self.estimator_conv = nn.ModuleList(FrameConvBlock(d) for _ in range(cfg.estimator_conv_layers))
        self.estimator = Transformer(d, cfg.n_heads, cfg.n_layers, cfg.dropout, cond_dim=d,
                                     attention_dropout=cfg.attention_dropout)
        self.out_proj = nn.Linear(d, cfg.n_mels)
        # Zero output at init: the first velocity guess is 0, a stable start for the ODE loss.
        nn.init.zeros_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-bin log-mel statistics (n_mels,) of the training set."""
        self.norm.set_normalization(mean, std)

    @staticmethod
    def reference_stats(mel: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """mel (B, T, n_mels) log-mel, lens (B,) -> per-bin mean and std over the valid
        frames (B, 2 * n_mels); zeros for items with no frames."""
        valid = length_mask(lens, mel.shape[1])[..., None].to(mel.dtype)
        n = valid.sum(1).clamp_min(1.0)
        mean = (mel * valid).sum(1) / n
        var = (((mel - mean[:, None]) ** 2) * valid).sum(1) / n
        stats = torch.cat([mean, var.clamp_min(1e-6).sqrt()], dim=-1)
        return stats * (lens > 0)[:, None].to(mel.dtype)

    def speaker_vector(self, stats: torch.Tensor | None, batch: int, device) -> torch.Tensor | None:
        """Raw reference statistics (B, 2 * n_mels) -> (B, d_model) in normalized units;
        None when the model has no speaker condition."""
        if not self.cfg.speaker_cond:
            return None
        if stats is None:
            return torch.zeros(batch, self.cfg.d_model, device=device)
        n = self.cfg.n_mels
        present = (stats.abs().sum(-1, keepdim=True) > 0).to(stats.dtype)
        mean = (stats[:, :n] - self.norm.mel_mean) / self.norm.mel_std
        std = stats[:, n:] / self.norm.mel_std
        return self.speaker_proj(torch.cat([mean, std], -1)) * present

    def encode_tokens(
        self, token_vectors: torch.Tensor, token_lens: torch.Tensor, speaker: torch.Tensor | None = None
    ) -> torch.Tensor:
        """token_vectors (B, T', d_fsq), speaker (B, d_model) or None -> cond
        (B, upsample * T', d_model) at mel rate."""
        valid = length_mask(token_lens, token_vectors.shape[1])
        h = self.token_in(token_vectors)
        if speaker is not None:
            h = h + speaker[:, None, :].to(h.dtype)
        h, _ = self.token_encoder(h, valid)
        h = h * valid[..., None]
        h = h.repeat_interleave(self.cfg.upsample, dim=1)
        frame_valid = valid.repeat_interleave(self.cfg.upsample, dim=1)[..., None].to(h.dtype)
        for block in self.frame_encoder:
            h = block(h) * frame_valid
        return h

    def velocity(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor,
        mu: torch.Tensor,
        prompt: torch.Tensor,
        valid: torch.Tensor,
    ) -> torch.Tensor:
        """x (B, T, n_mels) at time t (B,); cond (B, T, d); mu (B, T, n_mels); prompt
        (B, T, n_mels) zeros outside the prefix; valid (B, T) -> velocity (B, T, n_mels)."""
        h = self.in_proj(torch.cat([x, cond, mu, prompt], dim=-1))
        for block in self.estimator_conv:
            h = block(h) * valid[..., None].to(h.dtype)
        h, _ = self.estimator(h, valid, cond=self.time_emb(t))
        return self.out_proj(h)

    def loss(
        self,
        mel: torch.Tensor,
        mel_lens: torch.Tensor,
        token_vectors: torch.Tensor,
        token_lens: torch.Tensor,
        generator: torch.Generator | None = None,
        parts: dict | None = None,
        ref_stats: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """OT-CFM loss (mean squared velocity error over valid, non-prompt frames and bins)
        + prior_weight * mean squared error of mu against the normalized mel (same frames).

        mel (B, T, n_mels) log-mel; token_vectors (B, T', d_fsq) hard / straight-through /
        soft code vectors (differentiable). The mel is truncated or zero-padded to 4 * T'.
        generator draws t, noise, prompt lengths and CFG drops (default: global RNG).
        parts, if given, receives the two terms as floats ("fm", "prior") for logging.
        ref_stats (B, 2 * n_mels): reference statistics for the speaker condition (default:
        those of ``mel`` itself, the whole utterance).
        """
        cfg = self.cfg
        B, Tt, _ = token_vectors.shape
        T = cfg.upsample * Tt
        dev = mel.device
        x1 = self.norm.normalize(mel[:, :T])
        if x1.shape[1] < T:
            x1 = torch.nn.functional.pad(x1, (0, 0, 0, T - x1.shape[1]))
        lens = torch.minimum(mel_lens, cfg.upsample * token_lens)
        valid = length_mask(lens, T)
        x1 = x1 * valid[..., None]

        # Prompt prefix per item: none with prob prompt_zero_prob, else U[0, frac * len].
        u = torch.rand(B, device=dev, generator=generator)
        frac = torch.rand(B, device=dev, generator=generator) * cfg.prompt_max_frac
        prompt_lens = torch.where(u < cfg.prompt_zero_prob, 0, (frac * lens.float()).floor().long())
        in_prompt = length_mask(prompt_lens, T)
        prompt = x1 * in_prompt[..., None]

        # CFG: the unconditional model sees neither tokens, speaker nor prompt. (The draw
        # comes before the token encoder only with a speaker condition, which it gates, so
        # models without one keep their random stream.)
        keep, speaker = None, None
        if cfg.speaker_cond:
            keep = torch.rand(B, device=dev, generator=generator) >= cfg.cond_drop_prob
            if ref_stats is None:
                ref_stats = self.reference_stats(mel, mel_lens)
            speaker = self.speaker_vector(ref_stats, B, dev) * keep[:, None].to(mel.dtype)
        cond = self.encode_tokens(token_vectors, token_lens, speaker)
        mu = self.prior_proj(cond)
        w = (valid & ~in_prompt)[..., None].to(mu.dtype)
        denom = (w.sum() * cfg.n_mels).clamp_min(1.0)
        prior = ((mu - x1) ** 2 * w).sum() / denom
        if keep is None:
            keep = torch.rand(B, device=dev, generator=generator) >= cfg.cond_drop_prob
        keep = keep[:, None, None].to(cond.dtype)
        cond, mu, prompt = cond * keep, mu * keep, prompt * keep

        t = torch.rand(B, device=dev, generator=generator)
        x0 = torch.randn(x1.shape, device=dev, generator=generator, dtype=x1.dtype)
        tt = t[:, None, None]
        xt = (1 - (1 - cfg.sigma_min) * tt) * x0 + tt * x1
        target = x1 - (1 - cfg.sigma_min) * x0
        v = self.velocity(xt, t, cond, mu, prompt, valid)
        fm = ((v - target) ** 2 * w.to(v.dtype)).sum() / denom
        if parts is not None:
            parts.update(fm=float(fm.detach()), prior=float(prior.detach()))
        return fm + cfg.prior_weight * prior

    @torch.no_grad()
    def _solve(
        self,
        token_vectors: torch.Tensor,
        token_lens: torch.Tensor,
        prompt_mel: torch.Tensor | None,
        prompt_lens: torch.Tensor,
        n_steps: int,
        cfg_strength: float,
        generator: torch.Generator | None,
        noise_scale: float = 1.0,
        start_t: float = 0.0,
        sway: float = 0.0,
    ) -> torch.Tensor:
        """Euler ODE from N(0, noise_scale^2 I) at t=0 to t=1 (or from the OT path point
        between that noise and mu at t=start_t: the flow then refines the prior's estimate) -> normalized mel canvas (B, 4T', n_mels)
        with the prompt frames overwritten by the prompt. sway: the steps' time grid
        (`euler_steps`)."""
        B, Tt, _ = token_vectors.shape
        T = self.cfg.upsample * Tt
        dev = token_vectors.device
        valid = length_mask(self.cfg.upsample * token_lens, T)
        prompt = torch.zeros(B, T, self.cfg.n_mels, device=dev)
        in_prompt = length_mask(prompt_lens, T)[..., None]
        if prompt_mel is not None and prompt_mel.shape[1] > 0:
            p = self.norm.normalize(prompt_mel[:, :T].float())
            prompt[:, : p.shape[1]] = p
            prompt = prompt * in_prompt
        speaker = None
        if self.cfg.speaker_cond and prompt_mel is not None and prompt_mel.shape[1] > 0:
            stats = self.reference_stats(prompt_mel[:, :T].float(), prompt_lens)
            speaker = self.speaker_vector(stats, B, dev)
        cond = self.encode_tokens(token_vectors.float(), token_lens, speaker)
        mu = self.prior_proj(cond)
        # noise_scale < 1 starts nearer the mean path (Matcha-TTS's "temperature"): less
        # detail, more intelligible when the estimator is young.
        x = noise_scale * torch.randn(B, T, self.cfg.n_mels, device=dev, generator=generator)
        x = (1 - (1 - self.cfg.sigma_min) * start_t) * x + start_t * mu
        use_cfg = cfg_strength != 0.0
        if use_cfg:  # one batched pass: conditional rows, then unconditional rows
            cond2 = torch.cat([cond, torch.zeros_like(cond)])
            mu2 = torch.cat([mu, torch.zeros_like(mu)])
            prompt2 = torch.cat([prompt, torch.zeros_like(prompt)])
            valid2 = torch.cat([valid, valid])
        for t_i, dt in euler_steps(n_steps, start_t, sway):
            t = torch.full((B,), t_i, device=dev)
            if use_cfg:
                v = self.velocity(torch.cat([x, x]), torch.cat([t, t]), cond2, mu2, prompt2, valid2)
                vc, vu = v.chunk(2)
                v = vc + cfg_strength * (vc - vu)
            else:
                v = self.velocity(x, t, cond, mu, prompt, valid)
            x = x + dt * v
        return torch.where(in_prompt, prompt, x)

    @torch.no_grad()
    def sample(
        self,
        token_vectors: torch.Tensor,
        prompt_mel: torch.Tensor | None = None,
        n_steps: int = 10,
        cfg_strength: float = 0.7,
        generator: torch.Generator | None = None,
        noise_scale: float = 1.0,
        start_t: float = 0.0,
        sway: float = 0.0,
    ) -> torch.Tensor:
        """token_vectors (B, T', d_fsq) covering prompt + target (all items full length),
        prompt_mel (B, Tp, n_mels) log-mel or None -> log-mel (B, 4T' - Tp, n_mels): only the
        frames after the prompt. cfg_strength w: v = v_cond + w (v_cond - v_uncond).
        Runs in eval mode (no dropout)."""
        B, Tt, _ = token_vectors.shape
        Tp = 0 if prompt_mel is None else prompt_mel.shape[1]
        if Tp > self.cfg.upsample * Tt:
            raise ValueError(f"prompt ({Tp} frames) longer than the tokens cover")
        dev = token_vectors.device
        lens = torch.full((B,), Tt, device=dev, dtype=torch.long)
        plens = torch.full((B,), Tp, device=dev, dtype=torch.long)
        x = self._eval_solve(
            token_vectors, lens, prompt_mel, plens, n_steps, cfg_strength, generator, noise_scale,
            start_t, sway,
        )
        return self.norm.denormalize(x[:, Tp:])

    @torch.no_grad()
    def sample_batch(
        self,
        token_vectors: torch.Tensor,
        token_lens: torch.Tensor,
        prompt_mel: torch.Tensor | None = None,
        prompt_lens: torch.Tensor | None = None,
        n_steps: int = 10,
        cfg_strength: float = 0.7,
        generator: torch.Generator | None = None,
        noise_scale: float = 1.0,
        start_t: float = 0.0,
        sway: float = 0.0,
    ) -> list[torch.Tensor]:
        """Padded batch: token_vectors (B, T', d_fsq), token_lens (B,), prompt_mel
        (B, Tp, n_mels) right-padded, prompt_lens (B,) -> per item log-mel
        (4 * token_lens[b] - prompt_lens[b], n_mels)."""
        B = token_vectors.shape[0]
        if prompt_lens is None:
            Tp = 0 if prompt_mel is None else prompt_mel.shape[1]
            prompt_lens = torch.full((B,), Tp, device=token_vectors.device, dtype=torch.long)
        x = self._eval_solve(
            token_vectors, token_lens, prompt_mel, prompt_lens, n_steps, cfg_strength, generator,
            noise_scale, start_t, sway,
        )
        x = self.norm.denormalize(x)
        ends = (self.cfg.upsample * token_lens).tolist()
        return [
            x[b, int(p) : e]
            for b, (p, e) in enumerate(zip(prompt_lens.tolist(), ends, strict=True))
        ]

    def _eval_solve(self, *args) -> torch.Tensor:
        was_training = self.training
        self.eval()
        try:
            return self._solve(*args)
        finally:
            self.train(was_training)


def euler_steps(n_steps: int, start_t: float = 0.0, sway: float = 0.0) -> list[tuple[float, float]]:
    """The Euler solver's n_steps (time, step size) pairs from start_t to 1.

    sway s bends the uniform grid u_i = i / n_steps into t = u + s (cos(pi u / 2) - 1 + u)
    (F5-TTS's "sway sampling"), rescaled onto [start_t, 1]. s < 0 spends the steps early,
    near the noise, where the path is decided (at s = -1, t = 1 - cos(pi u / 2): the first of
    3 steps is 0.13 long, the last 0.50); s = 0 is the uniform grid, computed as it always
    was (the same bits). The grid is monotone for s in [-1, 1], the range allowed.
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    if not -1.0 <= sway <= 1.0:
        raise ValueError(f"sway must lie in [-1, 1] (a monotone time grid), got {sway}")
    if sway == 0.0:
        dt = (1.0 - start_t) / n_steps
        return [(start_t + i * dt, dt) for i in range(n_steps)]
    u = [i / n_steps for i in range(n_steps + 1)]
    t = [start_t + (1.0 - start_t) * (x + sway * (math.cos(math.pi / 2 * x) - 1.0 + x)) for x in u]
    t[-1] = 1.0  # cos(pi / 2) is 6e-17, not 0
    return [(t[i], t[i + 1] - t[i]) for i in range(n_steps)]


def load_flow(path: str | Path) -> FlowMatchingDecoder:
    from ..checkpoint import load_model

    model, _ = load_model(path, "flow", FlowMatchingDecoder, FlowMatchingConfig)
    return model
