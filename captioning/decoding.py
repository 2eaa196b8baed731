"""Greedy and batched beam-search decoding for :class:`~captioning.decoder.TopDownDecoder`.

Both are batched over images (and beams): the only Python loop is over time steps. A sequence
ends at ``<eos>`` (counted in its log-probability and length) or after ``max_len`` words.
``<pad>`` and ``<bos>`` are never generated. Finished beams stay in the beam with a frozen
score and only extend with ``<pad>`` at log-probability 0, so they compete fairly with
unfinished ones; the result is the highest-scoring beam (optionally score / length). Without
length normalisation the search stops as soon as, for every image, a finished beam scores at
least as high as every open beam (log-probabilities only decrease, so nothing can overtake it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from captioning.decoder import TopDownDecoder
from captioning.vocab import Vocabulary

__all__ = ["DecodeOutput", "beam_search", "greedy_decode"]


@dataclass
class DecodeOutput:
    """Decoded captions for B images.

    Attributes:
        tokens: ``(B, L)`` generated ids (no ``<bos>``; ``<eos>`` then ``<pad>`` after the end).
        log_probs: ``(B,)`` total log-probability of each sequence (``<eos>`` included).
        lengths: ``(B,)`` number of generated tokens including ``<eos>``.
        captions: decoded strings when a vocabulary was given.
    """

    tokens: torch.Tensor
    log_probs: torch.Tensor
    lengths: torch.Tensor
    captions: list[str] | None = None


def _banned_mask(vocab_size: int, banned: Sequence[int], device: torch.device) -> torch.Tensor:
    mask = torch.zeros(vocab_size, dtype=torch.bool, device=device)
    mask[list(banned)] = True
    return mask


def _finish(
    tokens: torch.Tensor, scores: torch.Tensor, eos_id: int, pad_id: int, vocab: Vocabulary | None
) -> DecodeOutput:
    is_eos = tokens == eos_id
    has_eos = is_eos.any(dim=1)
    first_eos = torch.where(has_eos, is_eos.float().argmax(dim=1), tokens.shape[1] - 1)
    lengths = first_eos + 1
    positions = torch.arange(tokens.shape[1], device=tokens.device)
    tokens = tokens.masked_fill(positions[None, :] >= lengths[:, None], pad_id)
    captions = vocab.decode_batch(tokens.cpu()) if vocab is not None else None
    return DecodeOutput(tokens, scores, lengths, captions)


@torch.no_grad()
def greedy_decode(
    decoder: TopDownDecoder,
    features: torch.Tensor,
    mean: torch.Tensor,
    max_len: int = 20,
    bos_id: int = 1,
    eos_id: int = 2,
    pad_id: int = 0,
    vocab: Vocabulary | None = None,
) -> DecodeOutput:
    """Arg-max decoding.

    Args:
        features: ``(B, R, C)`` region features; mean: ``(B, C)``.
        max_len: maximum generated tokens (``<eos>`` included).
    """
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    b = features.shape[0]
    projected = decoder.project(features)
    state = decoder.init_state(b, features)
    tokens = torch.full((b,), bos_id, dtype=torch.long, device=features.device)
    scores = torch.zeros(b, dtype=torch.float32, device=features.device)
    finished = torch.zeros(b, dtype=torch.bool, device=features.device)
    banned = None
    out = []
    for _ in range(max_len):
        logits, _, state = decoder.step(tokens, state, features, projected, mean)
        logp = torch.log_softmax(logits.float(), dim=-1)
        if banned is None:
            banned = _banned_mask(logp.shape[-1], (pad_id, bos_id), logp.device)
        logp = logp.masked_fill(banned, float("-inf"))
        best, word = logp.max(dim=-1)
        word = word.masked_fill(finished, pad_id)
        scores = scores + best.masked_fill(finished, 0.0)
        finished = finished | (word == eos_id)
        out.append(word)
        tokens = word
        if bool(finished.all()):
            break
    return _finish(torch.stack(out, dim=1), scores, eos_id, pad_id, vocab)


@torch.no_grad()
def beam_search(
    decoder: TopDownDecoder,
    features: torch.Tensor,
    mean: torch.Tensor,
    beam_size: int = 3,
    max_len: int = 20,
    bos_id: int = 1,
    eos_id: int = 2,
    pad_id: int = 0,
    length_normalize: bool = False,
    vocab: Vocabulary | None = None,
) -> DecodeOutput:
    """Beam search, batched over images and beams (``B*K`` rows per step).

    Args:
        features: ``(B, R, C)`` region features; mean: ``(B, C)``.
        beam_size: K (1 is greedy decoding).
        max_len: maximum generated tokens (``<eos>`` included).
        length_normalize: rank the final beams by log-probability / length.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    b, k, device = features.shape[0], beam_size, features.device
    projected = decoder.project(features)
    expand = torch.arange(b, device=device).repeat_interleave(k)
    features_k = features.index_select(0, expand)
    projected_k = projected.index_select(0, expand)
    mean_k = mean.index_select(0, expand)
    state = decoder.init_state(b * k, features)
    tokens = torch.full((b * k,), bos_id, dtype=torch.long, device=device)
    scores = torch.full((b, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: keep one so the first step has no duplicates
    finished = torch.zeros(b, k, dtype=torch.bool, device=device)
    seqs = torch.zeros(b, k, 0, dtype=torch.long, device=device)
    offsets = (torch.arange(b, device=device) * k).unsqueeze(1)
    banned = pad_row = None
    for t in range(max_len):
        logits, _, state = decoder.step(tokens, state, features_k, projected_k, mean_k)
        logp = torch.log_softmax(logits.float(), dim=-1)
        v = logp.shape[-1]
        if banned is None:
            banned = _banned_mask(v, (pad_id, bos_id), device)
            pad_row = torch.full((v,), float("-inf"), device=device)
            pad_row[pad_id] = 0.0
        logp = logp.masked_fill(banned, float("-inf")).view(b, k, v)
        logp = torch.where(finished.unsqueeze(-1), pad_row, logp)
        candidates = (scores.unsqueeze(-1) + logp).view(b, k * v)
        scores, flat_idx = candidates.topk(k, dim=1)
        beam_idx, word = flat_idx // v, flat_idx % v
        rows = (beam_idx + offsets).view(-1)
        state = tuple(s.index_select(0, rows) for s in state)
        seqs = torch.cat(
            [seqs.gather(1, beam_idx.unsqueeze(-1).expand(-1, -1, t)), word.unsqueeze(-1)], dim=-1
        )
        finished = finished.gather(1, beam_idx) | (word == eos_id)
        tokens = word.view(-1)
        if length_normalize:
            if bool(finished.all()):
                break
        else:  # scores only decrease: stop once a finished beam beats every open one
            best_done = scores.masked_fill(~finished, float("-inf")).amax(dim=1)
            best_open = scores.masked_fill(finished, float("-inf")).amax(dim=1)
            if bool((best_done >= best_open).all()):
                break
    is_eos = seqs == eos_id
    lengths = torch.where(is_eos.any(-1), is_eos.float().argmax(-1) + 1, seqs.shape[-1])
    ranking = scores / lengths.clamp(min=1) if length_normalize else scores
    best = ranking.argmax(dim=1)
    pick = torch.arange(b, device=device)
    return _finish(seqs[pick, best], scores[pick, best], eos_id, pad_id, vocab)
