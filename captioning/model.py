"""Captioner = image encoder (ResNet, EfficientNet-Lite0) + top-down attention decoder, and its
checkpoint format.

The encoder input is any float image tensor ``(B, 3, H, W)`` in [0, 1], so an optical camera
model can sit in front of it. Checkpoints are ``{"model_config", "state_dict", "vocab"}``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from captioning.decoder import GridPositions, TopDownDecoder
from captioning.decoding import DecodeOutput, beam_search, greedy_decode
from captioning.encoder import build_encoder
from captioning.vocab import Vocabulary
from optics.checkpoint_file import register_format

__all__ = ["Captioner", "CaptionerConfig", "load_checkpoint", "save_checkpoint"]


@dataclass
class CaptionerConfig:
    """Hyper-parameters of :class:`Captioner` (all JSON-serialisable)."""

    vocab_size: int
    backbone: str = "resnet101"
    weights: str | None = None
    grid_size: int | None = 7
    trainable_from: str | None = "layer4"
    channels_last: bool = False
    feature_stage: str | None = None
    embed_dim: int = 1000
    hidden_dim: int = 1000
    attention_dim: int = 512
    dropout: float = 0.5
    grid_positions: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaptionerConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"unknown CaptionerConfig fields {sorted(unknown)}; known: {sorted(known)}"
            )
        return cls(**data)


class Captioner(nn.Module):
    """Image captioner.

    Args:
        config: hyper-parameters.
        vocab: optional vocabulary, used to turn generated ids into strings.
    """

    def __init__(self, config: CaptionerConfig, vocab: Vocabulary | None = None) -> None:
        super().__init__()
        if vocab is not None and len(vocab) != config.vocab_size:
            raise ValueError(
                f"vocabulary has {len(vocab)} words but config.vocab_size is {config.vocab_size}"
            )
        self.config = config
        self.vocab = vocab
        self.encoder = build_encoder(
            config.backbone,
            config.weights,
            config.grid_size,
            config.trainable_from,
            config.channels_last,
            config.feature_stage,
        )
        # a learned embedding of each grid cell's position, added to its feature (decoder.py)
        self.positions = GridPositions(self.encoder.out_channels) if config.grid_positions else None
        self.decoder = TopDownDecoder(
            config.vocab_size,
            self.encoder.out_channels,
            config.embed_dim,
            config.hidden_dim,
            config.attention_dim,
            config.dropout,
        )

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 3, H, W)`` in [0, 1] -> grid ``(B, R, C)``, mean ``(B, C)``."""
        grid, mean = self.encoder(images)
        if self.positions is not None:
            grid = self.positions(grid)
        return grid, mean

    def forward(
        self,
        images: torch.Tensor,
        captions: torch.Tensor,
        caption_to_image: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced pass; the CNN runs once per image.

        Args:
            images: ``(B, 3, H, W)`` float in [0, 1].
            captions: ``(N, T)`` token ids ``<bos> .. <eos> <pad>..``.
            caption_to_image: ``(N,)`` image index of every caption (default one per image).

        Returns:
            logits ``(N, T-1, V)`` for targets ``captions[:, 1:]``, attention ``(N, T-1, R)``.
        """
        grid, mean = self.encode(images)
        return self.decoder(grid, mean, captions, caption_to_image)

    @torch.no_grad()
    def generate(
        self,
        images: torch.Tensor,
        beam_size: int = 3,
        max_len: int = 20,
        length_normalize: bool = False,
    ) -> DecodeOutput:
        """Caption ``(B, 3, H, W)`` images in [0, 1] (greedy when ``beam_size == 1``).

        Runs in eval mode (dropout off) and restores the previous mode.
        """
        was_training = self.training
        self.eval()
        try:
            grid, mean = self.encode(images)
            ids = {
                "bos_id": Vocabulary.bos_id,
                "eos_id": Vocabulary.eos_id,
                "pad_id": Vocabulary.pad_id,
            }
            if beam_size == 1:
                return greedy_decode(self.decoder, grid, mean, max_len, vocab=self.vocab, **ids)
            return beam_search(
                self.decoder,
                grid,
                mean,
                beam_size,
                max_len,
                length_normalize=length_normalize,
                vocab=self.vocab,
                **ids,
            )
        finally:
            self.train(was_training)


register_format(
    "captioner",
    "a captioner-only checkpoint (captioning.model.save_checkpoint)",
    lambda ckpt: {"model_config", "vocab"} <= set(ckpt),
)


def save_checkpoint(path: str | Path, model: Captioner, vocab: Vocabulary, **extra: Any) -> None:
    """Write ``{"model_config", "state_dict", "vocab", **extra}`` with ``torch.save``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model_config": asdict(model.config),
            "state_dict": model.state_dict(),
            "vocab": vocab.to_dict(),
            **extra,
        },
        path,
    )


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[Captioner, Vocabulary]:
    """Rebuild a :class:`Captioner` (eval mode) and its vocabulary from a checkpoint file."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint {path} is a directory; pass the captioner.pt file")
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} not found; write one with save_checkpoint "
            "(training runs write …/checkpoints/best.ckpt: "
            "endtoend.checkpoints.load_model reads those)"
        )
    if path.stat().st_size == 0:
        raise ValueError(
            f"checkpoint {path} is empty (0 bytes): the run that wrote it was "
            "interrupted; retrain or use another checkpoint"
        )
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # zip/pickle errors of truncated or foreign files
        raise ValueError(
            f"cannot read checkpoint {path} ({type(err).__name__}: {err}); the file "
            "is truncated, not a PyTorch checkpoint or not a captioner"
        ) from err
    if not isinstance(ckpt, dict):
        raise ValueError(
            f"{path} is not a captioner checkpoint (it holds a "
            f"{type(ckpt).__name__}, expected a dict)"
        )
    if ("kind" in ckpt and "hparams" in ckpt) or "camera_config" in ckpt:
        what = "an attacker checkpoint" if "kind" in ckpt else "a camera file"
        raise ValueError(
            f"{path} is {what}, not a captioner; pass a captioner checkpoint "
            "(captioner.pt) or an end-to-end training checkpoint (best.ckpt)"
        )
    missing = [k for k in ("model_config", "state_dict", "vocab") if k not in ckpt]
    if missing:
        raise ValueError(
            f"checkpoint {path} lacks {missing}; expected a captioner checkpoint "
            '{"model_config", "state_dict", "vocab"}'
        )
    vocab = Vocabulary.from_dict(ckpt["vocab"])
    config = CaptionerConfig.from_dict(dict(ckpt["model_config"], weights=None))
    model = Captioner(config, vocab)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), vocab
