"""Greedy and beam search: beam 1 == greedy, exhaustive optimum, batching."""

from __future__ import annotations

import itertools

import pytest
import torch

from captioning.decoder import TopDownDecoder
from captioning.decoding import beam_search, greedy_decode

PAD, BOS, EOS = 0, 1, 2


def _toy(vocab_size: int = 6, seed: int = 0, sharpness: float = 3.0):
    torch.manual_seed(seed)
    dec = TopDownDecoder(
        vocab_size, feature_dim=5, embed_dim=8, hidden_dim=12, attention_dim=6, dropout=0.5
    ).eval()
    with torch.no_grad():
        dec.out.weight.mul_(sharpness)
    features, mean = torch.randn(3, 4, 5), torch.randn(3, 5)
    return dec, features, mean


@torch.no_grad()
def _sequence_log_prob(dec, features, mean, seq: list[int]) -> float:
    captions = torch.tensor([[BOS, *seq]])
    logits, _ = dec(features[None], mean[None], captions)
    logp = torch.log_softmax(logits[0].float(), -1)
    return float(sum(logp[t, tok] for t, tok in enumerate(seq)))


@torch.no_grad()
def _brute_force(dec, features, mean, words: list[int], max_len: int):
    """Log-probability of every possible output sequence, in one teacher-forced batch."""
    seqs = [
        [*prefix, EOS]
        for length in range(1, max_len + 1)
        for prefix in itertools.product(words, repeat=length - 1)
    ]
    seqs += [list(seq) for seq in itertools.product(words, repeat=max_len)]  # no <eos>
    captions = torch.tensor([[BOS, *s] + [PAD] * (max_len - len(s)) for s in seqs])
    n = len(seqs)
    logits, _ = dec(features[None].expand(n, -1, -1), mean[None].expand(n, -1), captions)
    logp = torch.log_softmax(logits.float(), -1).gather(2, captions[:, 1:, None])[..., 0]
    scores = logp.masked_fill(captions[:, 1:] == PAD, 0.0).sum(1)
    best = int(scores.argmax())
    return float(scores[best]), seqs[best]


def _as_list(tokens: torch.Tensor) -> list[int]:
    return [t for t in tokens.tolist() if t != PAD]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_beam_one_equals_greedy(seed: int) -> None:
    dec, features, mean = _toy(vocab_size=9, seed=seed, sharpness=1.0)
    greedy = greedy_decode(dec, features, mean, max_len=12)
    beam = beam_search(dec, features, mean, beam_size=1, max_len=12)
    assert torch.equal(greedy.tokens, beam.tokens)
    torch.testing.assert_close(greedy.log_probs, beam.log_probs)
    assert torch.equal(greedy.lengths, beam.lengths)


def test_exhaustive_beam_finds_most_probable_sequence() -> None:
    """4 emittable tokens (<eos> + 3 words), max length 4: enumerate every sequence."""
    words, max_len = [3, 4, 5], 4
    found_beam_better = False
    for seed in range(4):
        dec, features, mean = _toy(vocab_size=6, seed=seed)
        wide = beam_search(dec, features, mean, beam_size=200, max_len=max_len)
        narrow = beam_search(dec, features, mean, beam_size=3, max_len=max_len)
        greedy = greedy_decode(dec, features, mean, max_len=max_len)
        for b in range(3):
            best, best_seq = _brute_force(dec, features[b], mean[b], words, max_len)
            assert _as_list(wide.tokens[b]) == best_seq
            assert float(wide.log_probs[b]) == pytest.approx(best, abs=1e-4)
            assert int(wide.lengths[b]) == len(best_seq)
            # returned log-probs are the model's log-probs of the returned sequences
            for out in (narrow, greedy):
                seq = _as_list(out.tokens[b])
                assert float(out.log_probs[b]) == pytest.approx(
                    _sequence_log_prob(dec, features[b], mean[b], seq), abs=1e-4
                )
                assert float(out.log_probs[b]) <= best + 1e-5
            found_beam_better |= float(greedy.log_probs[b]) < best - 1e-3
    assert found_beam_better, "toy models too easy: greedy was always optimal"


def test_batched_beam_equals_per_image_beam() -> None:
    dec, features, mean = _toy(vocab_size=10, seed=5, sharpness=1.5)
    batched = beam_search(dec, features, mean, beam_size=4, max_len=10)
    for b in range(3):
        single = beam_search(dec, features[b : b + 1], mean[b : b + 1], beam_size=4, max_len=10)
        assert _as_list(single.tokens[0]) == _as_list(batched.tokens[b])
        torch.testing.assert_close(single.log_probs[0], batched.log_probs[b])


def test_finished_beams_and_special_tokens() -> None:
    dec, features, mean = _toy(vocab_size=6, seed=0)
    with torch.no_grad():  # make <eos> overwhelmingly likely: every beam ends at step 1
        dec.out.bias[EOS] = 50.0
    out = beam_search(dec, features, mean, beam_size=3, max_len=7)
    assert out.tokens.shape[1] == 1 and (out.tokens[:, 0] == EOS).all()
    assert (out.lengths == 1).all()
    with torch.no_grad():  # pad/bos are never generated even when likeliest
        dec.out.bias[EOS] = -50.0
        dec.out.bias[PAD] = 50.0
        dec.out.bias[BOS] = 49.0
    for out in (beam_search(dec, features, mean, 3, 5), greedy_decode(dec, features, mean, 5)):
        assert not torch.isin(out.tokens, torch.tensor([PAD, BOS])).any()
        assert out.tokens.shape == (3, 5) and (out.lengths == 5).all()
    normalised = beam_search(dec, features, mean, 3, 5, length_normalize=True)
    assert normalised.tokens.shape == (3, 5)
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(dec, features, mean, beam_size=0)
