"""Building blocks shared by every model (tokenizer, LLM, flow matching, reward model, vocoder).

One implementation each: length masks, sinusoidal embeddings, rotary positions (RoPE), a
pre-norm transformer block (key-padding mask, optional causal mask, optional KV cache,
optional adaLN time conditioning), a stack of such blocks, a per-bin mel normalizer and
greedy CTC decoding.

Conventions used across the package:
- Sequences are (B, T, D), right-padded; lengths are passed explicitly as (B,) long tensors.
- A "valid" mask is bool (B, T), True at real frames/tokens.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LayerKV:
    """One layer's keys and values of the positions decoded so far, in buffers that grow by
    doubling (B, H, capacity, Dh). A decoding step writes its one position into the buffer
    and attends over a view of the first `length` positions: concatenating onto the past
    instead copied all of it at every step (aten::cat: 13 % of synthesis's LLM time).
    The view holds the same values as the concatenation, so the attention sees the same
    numbers (tests/test_speed_levers.py checks the bits)."""

    def __init__(self):
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self.length = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """k, v (B, H, T, Dh) of T new positions -> keys and values of every position so far,
        (B, H, length, Dh). The first call (the prompt) returns its own tensors."""
        n, T = self.length, k.shape[2]
        if self.k is None or n + T > self.k.shape[2]:
            capacity = max(2 * (n + T), 64)
            grown_k = k.new_empty(*k.shape[:2], capacity, k.shape[3])
            grown_v = v.new_empty(*v.shape[:2], capacity, v.shape[3])
            if n:
                grown_k[:, :, :n] = self.k[:, :, :n]
                grown_v[:, :, :n] = self.v[:, :, :n]
            self.k, self.v = grown_k, grown_v
        self.k[:, :, n:n + T] = k
        self.v[:, :, n:n + T] = v
        self.length = n + T
        if n == 0:
            return k, v
        return self.k[:, :, :n + T], self.v[:, :, :n + T]


KVCache = list[LayerKV]  # one per layer


def length_mask(lens: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """lens (B,) -> valid mask (B, max_len) bool, True where position < len."""
    if max_len is None:
        max_len = int(lens.max()) if lens.numel() else 0
    pos = torch.arange(max_len, device=lens.device)
    return pos[None, :] < lens[:, None]


def sinusoidal_embedding(x: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """x (...,) float (a time in [0, 1] scaled by the caller, or a position) -> (..., dim).

    Half sines, half cosines over geometrically spaced frequencies (Transformer / DDPM style).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=x.device) / half)
    args = x.float()[..., None] * freqs
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class TimestepEmbedding(nn.Module):
    """t (B,) in [0, 1] -> (B, dim): sinusoidal features (t scaled to [0, 1000]) then an MLP."""

    def __init__(self, dim: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        # x1000 so that the small t differences the ODE solver uses map to distinct features.
        return self.mlp(sinusoidal_embedding(t * 1000.0, self.freq_dim))


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (RoPE) for per-head q/k of size head_dim.

    Relative by construction, so a padded item and the same item unpadded see identical
    attention as long as each gets its own positions, and no maximum length is baked in.
    """

    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"RoPE needs an even head_dim, got {head_dim}")
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2).float() / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def cos_sin(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """positions (T,) or (B, T) -> cos, sin broadcastable to (B, H, T, head_dim/2)."""
        ang = positions.float()[..., None] * self.inv_freq  # (..., T, Dh/2)
        if ang.dim() == 2:
            ang = ang[None, None]  # (1, 1, T, Dh/2)
        else:
            ang = ang[:, None]  # (B, 1, T, Dh/2)
        return ang.cos(), ang.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, H, T, Dh): rotate pairs (x[2i], x[2i+1]) by the position angle."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return out.flatten(-2).type_as(x)


class Attention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = dropout
        # When set, forward keeps the rotated queries and keys (B, H, T, Dh) in `last_qk`:
        # an attention loss (the LLM's guided attention) reads them; off by default.
        self.keep_qk = False
        self.last_qk: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        attn_mask: torch.Tensor | None,
        cache: LayerKV | None = None,
    ) -> torch.Tensor:
        """x (B, T, D); attn_mask bool broadcastable to (B, H, T, T_past + T), True = attend.

        cache: keys/values of earlier positions (already rotated); this call's are appended
        to it. Returns out (B, T, D).
        """
        B, T, D = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        # Queries and keys rotated in one pass (half the kernels; the same element-wise
        # arithmetic, so the same bits as rotating each on its own).
        q, k = apply_rotary(qkv[:2], cos, sin).unbind(0)
        v = qkv[2]
        if self.keep_qk:
            self.last_qk = (q, k)
        if cache is not None:
            k, v = cache.append(k, v)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=p)
        y = y.transpose(1, 2).reshape(B, T, D)
        return self.proj(y)


class TransformerBlock(nn.Module):
    """Pre-norm block: x + Attn(LN(x)), x + MLP(LN(x)).

    With cond_dim set, the norms lose their affine parameters and take shift/scale/gate from
    a conditioning vector instead (adaLN-Zero, as in DiT): the flow-matching estimator is
    conditioned on the ODE time this way. Gates start at zero, so each block starts as the
    identity, which keeps deep stacks stable early in training.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        dropout: float = 0.0,
        ff_mult: int = 4,
        cond_dim: int | None = None,
        attention_dropout: float | None = None,
    ):
        super().__init__()
        affine = cond_dim is None
        self.norm1 = nn.LayerNorm(d_model, elementwise_affine=affine)
        self.attn = Attention(d_model, n_heads, dropout if attention_dropout is None else attention_dropout)
        self.norm2 = nn.LayerNorm(d_model, elementwise_affine=affine)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, ff_mult * d_model),
            nn.GELU(),
            nn.Linear(ff_mult * d_model, d_model),
        )
        self.drop = nn.Dropout(dropout)
        self.ada = None
        if cond_dim is not None:
            self.ada = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 6 * d_model))
            nn.init.zeros_(self.ada[1].weight)
            nn.init.zeros_(self.ada[1].bias)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        attn_mask: torch.Tensor | None,
        cond: torch.Tensor | None = None,
        cache: LayerKV | None = None,
    ) -> torch.Tensor:
        if self.ada is None:
            a = self.attn(self.norm1(x), cos, sin, attn_mask, cache)
            x = x + self.drop(a)
            x = x + self.drop(self.mlp(self.norm2(x)))
            return x
        # cond (B, cond_dim) -> six (B, 1, D) modulations
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(cond)[:, None].chunk(6, dim=-1)
        a = self.attn(self.norm1(x) * (1 + sc1) + sh1, cos, sin, attn_mask, cache)
        x = x + g1 * self.drop(a)
        x = x + g2 * self.drop(self.mlp(self.norm2(x) * (1 + sc2) + sh2))
        return x


def build_attn_mask(
    valid: torch.Tensor | None, causal: bool, T_q: int, T_k: int, device: torch.device
) -> torch.Tensor | None:
    """Bool mask (B or 1, 1, T_q, T_k), True = may attend.

    valid: (B, T_k) key validity or None. Queries are the last T_q of the T_k positions.
    Every query may always attend to itself: a padded query then never has an all-masked
    row, whose softmax would be NaN, and NaN would leak through 0 * NaN into valid rows of
    the next layer. Valid queries are unaffected (they attend to themselves anyway).
    """
    if valid is not None and not causal and bool(valid.all()):
        # Every key is real (one synthesized item, a flow batch of full crops): no mask. The
        # scores are the same bits (the kernel adds 0.0 where a mask allows), and SDPA
        # neither converts a (B, 1, T, T) mask per layer nor adds it per score.
        valid = None
    if valid is None and (not causal or T_q == 1):
        return None  # nothing to hide (one causal query is the last position: it sees all)
    q_pos = torch.arange(T_k - T_q, T_k, device=device)[:, None]
    k_pos = torch.arange(T_k, device=device)[None, :]
    mask = torch.ones(T_q, T_k, dtype=torch.bool, device=device)
    if causal:
        mask = k_pos <= q_pos
    mask = mask[None, None]
    if valid is not None:
        mask = mask & valid[:, None, None, :]
    return mask | (k_pos == q_pos)[None, None]


class Transformer(nn.Module):
    """A stack of TransformerBlocks with RoPE, a key-padding mask and a final LayerNorm.

    forward(x (B, T, D), valid (B, T) bool or None, positions (T,) or (B, T) or None,
    cond (B, cond_dim) or None, cache KVCache or None, use_cache) -> (y (B, T, D), cache or
    None). The cache is extended in place (use_cache without one starts one): a caller that
    needs the earlier state, e.g. to branch, cannot reuse the object it passed.

    attention_dropout: dropout on the attention probabilities (None: `dropout`, which the
    residual branches always use). At 0 the CPU's fused (flash) attention kernel serves
    training too, which never holds the (B, H, T, T) probabilities: dropout on them forces
    the unfused path.

    causal=True gives a decoder; with a cache, x holds only the new positions and
    `positions` must continue where the cache ends (the caller owns the offset).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        n_layers: int,
        dropout: float = 0.0,
        causal: bool = False,
        cond_dim: int | None = None,
        ff_mult: int = 4,
        attention_dropout: float | None = None,
    ):
        super().__init__()
        self.causal = causal
        self.rope = RotaryEmbedding(d_model // n_heads)
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, n_heads, dropout, ff_mult, cond_dim, attention_dropout)
            for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(
        self,
        x: torch.Tensor,
        valid: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
        cache: KVCache | None = None,
        use_cache: bool = False,
    ) -> tuple[torch.Tensor, KVCache | None]:
        B, T, _ = x.shape
        if use_cache and cache is None:
            cache = [LayerKV() for _ in self.blocks]
        past = cache[0].length if cache else 0
        if positions is None:
            positions = torch.arange(past, past + T, device=x.device)
        cos, sin = self.rope.cos_sin(positions)
        mask = build_attn_mask(valid, self.causal, T, past + T, x.device)
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, mask, cond, cache[i] if cache else None)
        return self.norm(x), (cache if use_cache else None)


class MelNormalizer(nn.Module):
    """Per-bin log-mel normalization, stored as buffers so it travels with checkpoints.

    Defaults (mean 0, std 1) are the identity; trainers call `set_normalization` with
    training-set statistics before training.
    """

    def __init__(self, n_mels: int):
        super().__init__()
        self.register_buffer("mel_mean", torch.zeros(n_mels))
        self.register_buffer("mel_std", torch.ones(n_mels))

    @torch.no_grad()
    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """mean, std: (n_mels,). std is floored at 1e-3 so silent bins cannot blow up."""
        self.mel_mean.copy_(mean.to(self.mel_mean))
        self.mel_std.copy_(std.to(self.mel_std).clamp_min(1e-3))

    def normalize(self, mel: torch.Tensor) -> torch.Tensor:
        return (mel - self.mel_mean) / self.mel_std

    def denormalize(self, mel: torch.Tensor) -> torch.Tensor:
        return mel * self.mel_std + self.mel_mean


def ctc_greedy_decode(logits: torch.Tensor, lens: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """logits (B, T, V), lens (B,) -> per item: argmax path, repeats merged, blanks removed."""
    best = logits.argmax(dim=-1).cpu()
    out = []
    for b, n in enumerate(lens.tolist()):
        path = best[b, :n].tolist()
        ids, prev = [], None
        for p in path:
            if p != prev and p != blank:
                ids.append(p)
            prev = p
        out.append(ids)
    return out


def ctc_loss(
    logits: torch.Tensor,
    lens: torch.Tensor,
    targets: torch.Tensor,
    target_lens: torch.Tensor,
    blank: int = 0,
) -> torch.Tensor:
    """Mean CTC loss (per-item loss divided by target length, then batch mean).

    logits (B, T, V); targets (B, L) padded. zero_infinity: an item too short for its text
    (T < L + repeats) contributes 0 instead of inf, so one bad row cannot kill a batch.
    """
    log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # (T, B, V)
    return F.ctc_loss(
        log_probs, targets, lens, target_lens, blank=blank, reduction="mean", zero_infinity=True
    )
