"""Offline caption tokenizer and word vocabulary.

The tokenizer reproduces, in pure Python, what the evaluation pipeline feeds the metrics:
Stanford CoreNLP 3.4.1's ``PTBTokenizer -preserveLines -lowerCase`` (as called by
pycocoevalcap) followed by pycocoevalcap's punctuation filter. Its quirks are kept on purpose so
training targets and evaluation references are tokenised identically: contractions are split
(``doesn't`` -> ``does n't``, ``man's`` -> ``man 's``), brackets become ``-lrb-``/``-rrb-``/
``-lsb-``/... (pycocoevalcap filters the *upper-case* ``-LRB-`` only, so the lower-cased form
survives), numbers such as ``3.5``, ``1,000`` and ``10:30`` stay whole, and the punctuation
tokens ``'' ' `` ` . ? ! , : - -- ... ;`` are removed.

The vocabulary maps tokens to ids with ``<pad>=0 <bos>=1 <eos>=2 <unk>=3`` and is built from
the training split only (words seen at least ``min_count`` times).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch

__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "PTB_PUNCTUATION",
    "SPECIAL_TOKENS",
    "UNK",
    "Vocabulary",
    "tokenize",
]

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, BOS, EOS, UNK)

# Tokens removed by pycocoevalcap after PTB tokenisation (its PUNCTUATIONS list; the upper-case
# bracket names never match the lower-cased tokenizer output, so they are not listed here).
PTB_PUNCTUATION: frozenset[str] = frozenset(
    ["''", "'", "``", "`", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
_APOSTROPHE_TOKENS = frozenset(["'s", "'re", "'ve", "'ll", "'d", "'m", "n't", "'n'"])
_ACRONYM = re.compile(r"^(?:[a-z]\.)+$")


def tokenize(text: str) -> list[str]:
    """Tokenise one caption like pycocoevalcap's PTBTokenizer + punctuation filter.

    >>> tokenize("A man's dog doesn't like the \\"red\\" ball.")
    ['a', 'man', "'s", 'dog', 'does', "n't", 'like', 'the', 'red', 'ball']
    """
    s = text.lower().replace("\n", " ").replace('"', " ")
    s = s.replace("\u2019", "'").replace("\u2018", "'")
    for bracket, name in _BRACKETS.items():
        s = s.replace(bracket, f" {name} ")
    s = s.replace("...", " ... ").replace("--", " -- ")
    s = re.sub(r"([;!?*+/#$%&])", r" \1 ", s)
    s = re.sub(r",(?!\d)|(?<!\d),", " , ", s)
    s = re.sub(r":(?!\d)|(?<!\d):", " : ", s)
    s = re.sub(r"(\w)n't\b", r"\1 n't", s)
    s = re.sub(r"(\w)'(s|re|ve|ll|d|m)\b", r"\1 '\2", s)
    tokens: list[str] = []
    for raw in s.split():
        word = raw
        if word not in _APOSTROPHE_TOKENS:
            word = word.lstrip("'`")
            word = word.rstrip("'")
        if word.endswith(".") and word != "..." and not _ACRONYM.match(word):
            word = word.rstrip(".")
        if word and word not in PTB_PUNCTUATION:
            tokens.append(word)
    return tokens


@dataclass
class Vocabulary:
    """Word <-> id mapping with the four special tokens first.

    Attributes:
        itos: id -> token, ``itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]``.
        max_caption_len: words kept per caption (without ``<bos>``/``<eos>``).
    """

    itos: list[str]
    max_caption_len: int = 16
    stoi: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if tuple(self.itos[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(
                f"vocabulary must start with {list(SPECIAL_TOKENS)}, got {self.itos[:4]}; "
                "build it with Vocabulary.build()"
            )
        if len(set(self.itos)) != len(self.itos):
            raise ValueError("vocabulary has duplicate tokens")
        if self.max_caption_len < 1:
            raise ValueError(f"max_caption_len must be >= 1, got {self.max_caption_len}")
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    pad_id: ClassVar[int] = 0
    bos_id: ClassVar[int] = 1
    eos_id: ClassVar[int] = 2
    unk_id: ClassVar[int] = 3

    def __len__(self) -> int:
        return len(self.itos)

    @classmethod
    def build(
        cls,
        captions: Iterable[str | Sequence[str]],
        min_count: int = 5,
        max_caption_len: int = 16,
    ) -> Vocabulary:
        """Build from training captions (raw strings are tokenised with :func:`tokenize`).

        Words seen at least ``min_count`` times are kept, sorted by decreasing count then
        alphabetically (deterministic).
        """
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        counts: Counter[str] = Counter()
        for caption in captions:
            counts.update(tokenize(caption) if isinstance(caption, str) else caption)
        words = sorted(
            (w for w, c in counts.items() if c >= min_count and w not in SPECIAL_TOKENS),
            key=lambda w: (-counts[w], w),
        )
        return cls([*SPECIAL_TOKENS, *words], max_caption_len=max_caption_len)

    def encode(self, caption: str | Sequence[str], add_special: bool = True) -> list[int]:
        """Caption -> ids ``[<bos>, w_1 .. w_L, <eos>]`` with ``L <= max_caption_len``."""
        tokens = tokenize(caption) if isinstance(caption, str) else list(caption)
        ids = [self.stoi.get(w, self.unk_id) for w in tokens[: self.max_caption_len]]
        return [self.bos_id, *ids, self.eos_id] if add_special else ids

    def encode_batch(self, captions: Sequence[str | Sequence[str]]) -> torch.Tensor:
        """Captions -> padded ids ``(N, T)``, ``T = longest + 2`` (``<pad>`` = 0)."""
        encoded = [self.encode(c) for c in captions]
        length = max((len(e) for e in encoded), default=2)
        out = torch.full((len(encoded), length), self.pad_id, dtype=torch.long)
        for i, e in enumerate(encoded):
            out[i, : len(e)] = torch.tensor(e, dtype=torch.long)
        return out

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> caption string; stops at ``<eos>``/``<pad>``, skips ``<bos>``."""
        words: list[str] = []
        for i in ids:
            i = int(i)
            if i in (self.eos_id, self.pad_id):
                break
            if i == self.bos_id:
                continue
            words.append(self.itos[i] if 0 <= i < len(self.itos) else UNK)
        return " ".join(words)

    def decode_batch(self, ids: torch.Tensor) -> list[str]:
        """``(B, L)`` ids -> B caption strings."""
        return [self.decode(row) for row in ids.tolist()]

    def to_dict(self) -> dict:
        return {"itos": list(self.itos), "max_caption_len": self.max_caption_len}

    @classmethod
    def from_dict(cls, data: dict) -> Vocabulary:
        if not isinstance(data, dict) or "itos" not in data:
            raise ValueError("vocabulary data must be a dict with an 'itos' list")
        return cls(list(data["itos"]), max_caption_len=int(data.get("max_caption_len", 16)))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=0))

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"vocabulary file {path} not found; build one with Vocabulary.build(...).save(path)"
            )
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"vocabulary file {path} is not valid JSON ({err})") from err
        return cls.from_dict(data)
