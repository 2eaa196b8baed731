"""The band the shapes need, against the band SSIM rewards; one JSON line.

A trained camera's captioner reads the test split's scenes low-passed by an ideal (brick-wall,
radial) filter at cutoff f, through that camera; per cutoff: its shape F1 and grounding F1
(the captions checked against the generator's ground truth) and the SSIM of the low-passed
scenes against the scenes (``band_ssim.py``: what an attacker who recovered every frequency
below f exactly would score). Run on the ideal camera's checkpoint it is the frontier of a
perfect band-limited camera: how much shape naming survives when everything above f is gone,
and how much SSIM the band left is worth.

The captioner was not trained on band-limited images, so its F1 at a cutoff is what that band
holds for a captioner that never adapted to it: a lens trained end to end with its captioner
does at least as well with the same band (compare the privacy and defocus rows of the demo).

    python benchmarks/band_shapes.py --ckpt runs/demo/ideal/checkpoints/best.ckpt \\
        [--cutoffs 0.03125,0.0625,0.125,0.25,0.5] [--beam 3] [--max-images N] [--data-root D]
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from optics.cli_config import ArgumentParser

CUTOFFS = "0.03125,0.0625,0.09375,0.125,0.1875,0.25,0.5"  # cycles per pixel (as band_ssim.py)


def band_shapes(
    ckpt: str | Path,
    cutoffs: list[float],
    beam: int = 3,
    max_images: int | None = None,
    split: str = "test",
    data_root: str | None = None,
) -> dict[str, Any]:
    """Shape F1, grounding F1 and band SSIM of ``ckpt``'s camera on low-passed scenes, per
    cutoff (cycles/px; ``inf``: the scenes as they are); ``data_root``: where the
    checkpoint's data set is (default: the path it was trained with)."""
    from band_ssim import lowpass  # benchmarks/ is on the path (run as a script)

    from attacks.metrics import ssim
    from captioning.grounding import grounding_scores
    from endtoend.checkpoints import load_trained

    module, data = load_trained(ckpt, data_root=data_root, max_images=max_images)
    module.eval()
    data.setup("test")
    data.test_split = split
    scenes = data.scenes(split)
    if not scenes:
        raise ValueError(
            f"{ckpt}: its data set has no ground-truth scenes (shape F1 needs the embedded "
            "data set, captioning.synthetic)"
        )
    rows: dict[str, Any] = {}
    for cutoff in cutoffs:
        captions: dict[int, str] = {}
        ssims = []
        torch.manual_seed(0)  # the same sensor noise draw at every cutoff
        with torch.no_grad():
            for batch in data.test_dataloader():
                images = batch.float_images()
                seen = images if cutoff == float("inf") else lowpass(images, cutoff)
                ssims.append(ssim(seen, images))
                captured, _ = module.capture(seen)
                out = module.captioner.generate(
                    module.cnn_input(captured),
                    beam_size=beam,
                    max_len=module.hparams.max_decode_len,
                )
                texts = out.captions or module.vocab.decode_batch(out.tokens)
                captions.update(zip(batch.image_ids.tolist(), texts, strict=True))
        scores = grounding_scores(scenes, captions)
        rows["inf" if cutoff == float("inf") else f"{cutoff:.4f}"] = {
            "shape_f1": scores["shape_f1"],
            "grounding_f1": scores["grounding_f1"],
            "band_ssim": float(torch.cat(ssims).mean()),
            "images": len(captions),
        }
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, help="training checkpoint (the ideal camera's)")
    parser.add_argument("--cutoffs", default=CUTOFFS, help="cycles/px, comma-separated")
    parser.add_argument("--beam", type=int, default=3)
    parser.add_argument("--max-images", type=int, default=None)
    parser.add_argument(
        "--data-root", default=None, help="the checkpoint's data set (default: its own path)"
    )
    args = parser.parse_args(argv)
    try:
        cutoffs = [float(c) for c in args.cutoffs.split(",")]
    except ValueError:
        parser.error(f"--cutoffs {args.cutoffs!r}: comma-separated numbers (cycles/px)")
    if not all(0 < c <= 0.5**0.5 for c in cutoffs):
        parser.error(f"--cutoffs {args.cutoffs!r}: each in (0, 0.707] cycles/px")
    t = time.perf_counter()
    result = {
        "benchmark": "band_shapes",
        "ckpt": str(args.ckpt),
        "beam": args.beam,
        "cutoffs": band_shapes(
            args.ckpt,
            [*cutoffs, float("inf")],
            args.beam,
            args.max_images,
            data_root=args.data_root,
        ),
    }
    result["seconds"] = time.perf_counter() - t
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
