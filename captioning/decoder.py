"""Top-down attention caption decoder (Anderson et al., CVPR 2018).

At step t, with region features ``v_i`` (R regions), their mean ``v̄`` and the previous word
``w_t``:

* attention LSTM:  ``h¹_t = LSTM₁([h²_{t-1}, v̄, E w_t], h¹_{t-1})``
* attention:       ``a_{t,i} = w_aᵀ tanh(W_v v_i + W_h h¹_t)``, ``α_t = softmax_i(a_t)``,
  ``v̂_t = Σ_i α_{t,i} v_i``
* language LSTM:   ``h²_t = LSTM₂([v̂_t, h¹_t], h²_{t-1})``
* output:          ``p(y_t) = softmax(W_p dropout(h²_t) + b)``

``W_v v_i`` is computed once per image (not per step, not per caption) and shared by the
image's captions. The maths lives in pure functions; :class:`TopDownDecoder` owns the weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DecoderState",
    "GridPositions",
    "TopDownDecoder",
    "attend",
    "caption_loss",
    "doubly_stochastic_loss",
    "grid_coordinates",
]

DecoderState = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # h1, c1, h2, c2


def attend(
    features: torch.Tensor,
    projected: torch.Tensor,
    query: torch.Tensor,
    w_a: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Additive attention.

    Args:
        features: ``(N, R, C)`` region features ``v_i``.
        projected: ``(N, R, A)`` precomputed ``W_v v_i``.
        query: ``(N, A)`` ``W_h h¹_t``.
        w_a: ``(A,)`` scoring vector.

    Returns:
        attended ``(N, C)`` = Σ_i α_i v_i and weights α ``(N, R)`` (softmax over regions).
    """
    scores = torch.tanh(projected + query.unsqueeze(1)) @ w_a  # (N, R)
    alpha = torch.softmax(scores.float(), dim=-1).to(features.dtype)
    attended = torch.bmm(alpha.unsqueeze(1), features).squeeze(1)
    return attended, alpha


def doubly_stochastic_loss(alphas: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Doubly stochastic attention regulariser Σ_i (τ − Σ_t α_{t,i})², mean over captions.

    Xu et al. (2015) ask every region to receive attention τ ≥ L/R in total over a caption
    of L steps and R regions, written with τ = 1 for their 196 regions. With τ = 1 and fewer
    regions than steps (e.g. a 2×2 grid) the term cannot fall below (L/R − 1)²·R and only
    adds a constant that dwarfs the caption loss, so here τ = max(1, L/R): the published form
    whenever R ≥ L.

    Args:
        alphas: ``(N, T, R)`` attention weights.
        mask: ``(N, T)`` 1 for real steps, 0 for padded ones (their α are ignored).

    Returns:
        scalar (multiply by λ outside).
    """
    n, t, r = alphas.shape
    if mask is not None:
        alphas = alphas * mask.unsqueeze(-1).to(alphas.dtype)
        steps = mask.float().sum(dim=1)
    else:
        steps = alphas.new_full((n,), float(t))
    tau = (steps / r).clamp_min(1.0).unsqueeze(-1)
    return ((tau - alphas.float().sum(dim=1)) ** 2).sum(dim=-1).mean()


def caption_loss(logits: torch.Tensor, targets: torch.Tensor, pad_id: int = 0) -> torch.Tensor:
    """Mean token cross entropy, padded targets ignored.

    Args:
        logits: ``(N, T, V)``.
        targets: ``(N, T)`` token ids.
    """
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=pad_id
    )


def grid_coordinates(regions: int, frequencies: tuple[int, ...] = (1, 2, 4)) -> torch.Tensor:
    """Fourier features of the cell centres of a square grid of ``regions`` = G² cells, row
    major (the order of ``fmap.flatten(2)``): ``(R, 4·F)``, sin and cos of π·f·x and π·f·y
    with x, y in (-1, 1) left → right, top → bottom."""
    g = round(regions**0.5)
    if g * g != regions:
        raise ValueError(f"grid positions need a square grid of regions, got {regions}")
    centres = (torch.arange(g, dtype=torch.float32) + 0.5) / g * 2 - 1
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    angles = (
        torch.stack([x.flatten(), y.flatten()], -1)[:, None, :]
        * torch.tensor(frequencies, dtype=torch.float32).view(1, -1, 1)
        * torch.pi
    )  # (R, F, 2)
    return torch.cat([angles.sin(), angles.cos()], dim=1).flatten(1)


class GridPositions(nn.Module):
    """Adds a learned embedding of each grid cell's position to its feature, ``(B, R, C)`` →
    ``(B, R, C)``.

    Region features of a CNN grid carry little of where they are, and the decoder needs it
    for relations ("a star above a ring") and to move its attention to the *other* object:
    without it the demo's captioner named the first object twice ("a red diamond below a red
    diamond"). Bottom-up features carry their boxes' geometry the same way. Initialised at
    zero: a captioner starts as without it.
    """

    def __init__(self, feature_dim: int, frequencies: tuple[int, ...] = (1, 2, 4)) -> None:
        super().__init__()
        self.frequencies = frequencies
        self.proj = nn.Linear(4 * len(frequencies), feature_dim, bias=False)
        nn.init.zeros_(self.proj.weight)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        coords = grid_coordinates(features.shape[1], self.frequencies).to(features)
        return features + self.proj(coords)


class TopDownDecoder(nn.Module):
    """Two-LSTM top-down attention decoder.

    Args:
        vocab_size: V.
        feature_dim: C, channels of the region features.
        embed_dim: word embedding size (default 1000).
        hidden_dim: size of both LSTMs (default 1000).
        attention_dim: A (default 512).
        dropout: dropout on h² before the output layer (default 0.5).
    """

    def __init__(
        self,
        vocab_size: int,
        feature_dim: int,
        embed_dim: int = 1000,
        hidden_dim: int = 1000,
        attention_dim: int = 512,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.hidden_dim = hidden_dim
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.att_lstm = nn.LSTMCell(hidden_dim + feature_dim + embed_dim, hidden_dim)
        self.lang_lstm = nn.LSTMCell(feature_dim + hidden_dim, hidden_dim)
        self.feat_proj = nn.Linear(feature_dim, attention_dim)  # W_v
        self.query_proj = nn.Linear(hidden_dim, attention_dim, bias=False)  # W_h
        self.att_score = nn.Parameter(torch.empty(attention_dim))  # w_a
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_dim, vocab_size)  # W_p, b
        nn.init.normal_(self.att_score, std=attention_dim**-0.5)

    def init_state(self, n: int, like: torch.Tensor) -> DecoderState:
        """Zero state for ``n`` sequences, dtype/device of ``like``."""
        z = like.new_zeros(n, self.hidden_dim)
        return z, z, z, z

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, R, C)`` -> ``W_v v`` ``(B, R, A)`` (once per image)."""
        return self.feat_proj(features)

    def step(
        self,
        tokens: torch.Tensor,
        state: DecoderState,
        features: torch.Tensor,
        projected: torch.Tensor,
        mean: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, DecoderState]:
        """One decoding step for N sequences.

        Args:
            tokens: ``(N,)`` previous words.
            state: ``(h1, c1, h2, c2)``, each ``(N, H)``.
            features: ``(N, R, C)``; projected: ``(N, R, A)``; mean: ``(N, C)``.

        Returns:
            logits ``(N, V)``, attention ``(N, R)``, new state.
        """
        h1, c1, h2, c2 = state
        x1 = torch.cat([h2, mean, self.embed(tokens)], dim=-1)
        h1, c1 = self.att_lstm(x1, (h1, c1))
        attended, alpha = attend(features, projected, self.query_proj(h1), self.att_score)
        h2, c2 = self.lang_lstm(torch.cat([attended, h1], dim=-1), (h2, c2))
        logits = self.out(self.dropout(h2))
        return logits, alpha, (h1, c1, h2, c2)

    def forward(
        self,
        features: torch.Tensor,
        mean: torch.Tensor,
        captions: torch.Tensor,
        caption_to_image: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced pass.

        Args:
            features: ``(B, R, C)`` region features, one row per *image*.
            mean: ``(B, C)``.
            captions: ``(N, T)`` ``<bos> w_1 .. <eos> <pad>..``; inputs are ``captions[:, :-1]``.
            caption_to_image: ``(N,)`` image index of each caption (default ``arange(N)``,
                i.e. one caption per image).

        Returns:
            logits ``(N, T-1, V)`` predicting ``captions[:, 1:]`` and attention
            weights ``(N, T-1, R)``.
        """
        projected = self.project(features)
        if caption_to_image is not None:
            features = features.index_select(0, caption_to_image)
            projected = projected.index_select(0, caption_to_image)
            mean = mean.index_select(0, caption_to_image)
        elif features.shape[0] != captions.shape[0]:
            raise ValueError(
                f"{captions.shape[0]} captions for {features.shape[0]} images: "
                "pass caption_to_image"
            )
        n, steps = captions.shape[0], captions.shape[1] - 1
        state = self.init_state(n, features)
        logits, alphas = [], []
        for t in range(steps):
            step_logits, alpha, state = self.step(captions[:, t], state, features, projected, mean)
            logits.append(step_logits)
            alphas.append(alpha)
        return torch.stack(logits, dim=1), torch.stack(alphas, dim=1)
