"""Tokenizer (vs. the Java PTB tokenizer) and vocabulary."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from captioning.metrics import java_available, ptb_tokenize
from captioning.vocab import Vocabulary, tokenize

SENTENCES = [
    "A man's dog doesn't like the \"red\" ball.",
    "Two people (a man and a woman) are sitting on a bench, eating.",
    "The cat is on the table... it's sleeping!",
    "A well-known 3.5 inch screen costs $100 -- really?",
    "Kids can't play; they won't go; I'm sure we'll see. We've been, they'd gone",
    "A sign that says 'STOP' at the U.S. border at 10:30 and 1,000 people 50% off",
    "A plate with food [rice] & {beans} #1 / 2 @home e-mail",
    "People's bikes parked at 5 o'clock. Rock 'n' roll isn't  dead  ",
    "A GIRAFFE standing next to a tree: tall, and   brown.",
    "a large blue square above a small green triangle on a striped background",
]


def test_tokenize_examples() -> None:
    assert tokenize("A Man's dog, running.") == ["a", "man", "'s", "dog", "running"]
    assert tokenize("It doesn't (really) matter!") == [
        "it",
        "does",
        "n't",
        "-lrb-",
        "really",
        "-rrb-",
        "matter",
    ]
    assert tokenize("") == []


@pytest.mark.skipif(not java_available(), reason="needs Java for the Stanford PTB tokenizer")
def test_tokenize_matches_stanford_ptb() -> None:
    expected = ptb_tokenize({i: [s] for i, s in enumerate(SENTENCES)})
    for i, sentence in enumerate(SENTENCES):
        assert " ".join(tokenize(sentence)) == expected[i][0], sentence


def test_vocabulary_build_and_round_trip(tmp_path: Path) -> None:
    captions = ["a red circle"] * 5 + ["a blue square"] * 5 + ["a green star"] * 4
    vocab = Vocabulary.build(captions, min_count=5)
    assert vocab.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert vocab.itos[4:] == ["a", "blue", "circle", "red", "square"]  # count desc, then a-z
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2, 3)
    ids = vocab.encode("A red star.")
    assert ids == [1, vocab.stoi["a"], vocab.stoi["red"], 3, 2]
    assert vocab.decode(ids) == "a red <unk>"
    path = tmp_path / "vocab.json"
    vocab.save(path)
    loaded = Vocabulary.load(path)
    assert loaded.itos == vocab.itos and loaded.max_caption_len == 16
    assert loaded.encode("a blue square") == vocab.encode("a blue square")
    assert len(Vocabulary.build(captions, min_count=1)) == 4 + 7


def test_truncation_and_padding() -> None:
    vocab = Vocabulary.build(["w"] * 5, min_count=1, max_caption_len=16)
    ids = vocab.encode(" ".join(["w"] * 30))
    assert len(ids) == 18 and ids[0] == vocab.bos_id and ids[-1] == vocab.eos_id
    batch = vocab.encode_batch(["w w", "w"])
    assert batch.tolist() == [[1, 4, 4, 2], [1, 4, 2, 0]]
    assert vocab.decode_batch(torch.tensor([[4, 4, 2, 4], [1, 4, 0, 0]])) == ["w w", "w"]


def test_bad_vocabulary_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.json"):
        Vocabulary.load(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json is not valid JSON"):
        Vocabulary.load(bad)
    with pytest.raises(ValueError, match="must start with"):
        Vocabulary(["a", "b"])
