"""The end-to-end model with the ideal camera as a captioner alone: a 10-image overfit run, and
its option checks and helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from captioning.data import CaptionDataset, collate_captions, load_records
from captioning.optim import warmup_then_decay
from captioning.vocab import Vocabulary, tokenize
from endtoend.eval_outputs import fixed_width
from endtoend.options import CAPTIONER_FIELDS, DEFAULT_ATTACK_KS
from endtoend.privacy_captioner import PrivacyCaptioner

# no optics and a noiseless, unquantised sensor: the captioner sees the scenes themselves
IDEAL = {"preset": "ideal", "read_noise_std": 0.0, "quantize_bits": None}


@pytest.mark.slow
def test_overfit_ten_images(synthetic_root: Path) -> None:
    """The loss goes to ~0 and greedy decoding reproduces the captions."""
    torch.manual_seed(0)
    records = load_records(synthetic_root, "train")[:10]
    records = [type(r)(r.image_id, r.path, r.split, r.captions[:1]) for r in records]
    vocab = Vocabulary.build([c for r in records for c in r.captions], min_count=1)
    dataset = CaptionDataset(records, vocab, image_size=32, captions_per_image=1)
    batch = collate_captions([dataset[i] for i in range(len(dataset))])
    # frozen random CNN (cheap steps); the decoder must tell the 10 images apart from its
    # features. Cosine-decayed LR: a large constant Adam step near zero loss can undo the fit.
    model = PrivacyCaptioner(
        vocab_size=len(vocab), camera=IDEAL, backbone="resnet18", grid_size=1,
        trainable_from=None, embed_dim=32, hidden_dim=128, attention_dim=16, dropout=0.0,
        cnn_input_size=None, w_dec=1.0, dsr_lambda=0.0, w_distortion=0.0, w_psf_mask=0.0,
        lr_decoder=1e-2,
    )  # fmt: skip
    model.captioner.vocab = vocab
    steps = 400
    optimizer = torch.optim.Adam(model.param_groups())
    scheduler = warmup_then_decay(optimizer, steps, 0, "cosine")
    first = None
    for _ in range(steps):
        terms = model.losses(batch)
        optimizer.zero_grad()
        terms["loss"].backward()
        optimizer.step()
        scheduler.step()
        first = float(terms["ce"].detach()) if first is None else first
    with torch.no_grad():
        final = float(model.losses(batch)["ce"])
    assert first > 2.0
    assert final < 0.01, f"loss only went from {first:.2f} to {final:.3f}"
    out = model.captioner.generate(model.cnn_input(batch.float_images()), beam_size=1, max_len=20)
    expected = [" ".join(tokenize(r.captions[0])) for r in records]
    assert out.captions == expected


def test_captioner_settings_make_the_typed_config() -> None:
    model = PrivacyCaptioner(vocab_size=12, camera=IDEAL, backbone="resnet18", embed_dim=24,
                             hidden_dim=20, attention_dim=8, weights=None)  # fmt: skip
    config = model.captioner_config
    assert config.vocab_size == 12 and config.embed_dim == 24 and config.backbone == "resnet18"
    assert {f: getattr(config, f) for f in CAPTIONER_FIELDS} == {
        f: model.hparams[f] for f in CAPTIONER_FIELDS
    }


@pytest.mark.parametrize(
    ("options", "names"),
    [
        ({"lr_decoder": float("nan")}, "model.lr_decoder"),
        ({"w_scene_labels": -1.0}, "model.w_scene_labels"),
        ({"attack_ks": []}, "model.attack_ks"),
        ({"scheduler": "step"}, "model.scheduler"),
        ({"adversary": "gan"}, "model.adversary"),
        ({"w_adversary": 1.0}, "needs an attacker"),
        ({"w_otf_band": -1.0}, "model.w_otf_band"),
        ({"otf_band_cpp": [0.3, 0.1]}, r"model.otf_band_cpp .*\[0.3, 0.1\]"),
        ({"otf_band_cpp": [0.1]}, "model.otf_band_cpp"),
    ],
)
def test_bad_options_are_named(options, names) -> None:
    with pytest.raises(ValueError, match=names):
        PrivacyCaptioner(vocab_size=12, camera=IDEAL, backbone="resnet18", **options)


def test_a_psf_mask_larger_than_the_psf_is_refused_naming_both_options() -> None:
    from endtoend.options import check_camera_options

    options = {"psf_mask_radius_px": 500.0, "w_psf_mask": 30.0}
    with pytest.raises(ValueError, match=r"psf_mask_radius_px=500 .*camera\.lens\.psf_size_px=64"):
        check_camera_options(options, psf_size_px=64, has_lens=True)
    check_camera_options({**options, "psf_mask_radius_px": 44.0}, 64, True)  # corners outside
    check_camera_options({**options, "w_psf_mask": 0.0}, 64, True)  # no mask loss: no matter
    check_camera_options(options, 64, has_lens=False)  # no lens, no PSF to mask
    with pytest.raises(ValueError, match=r"model\.psf_mask_radius_px"):
        PrivacyCaptioner(vocab_size=12, camera={"preset": "defocus", "pupil_grid": 64,
                         "pupil_pitch_um": 4.0, "pad_factor": 4.0, "sensor_distance_mm": 6.0,
                         "psf_size_px": 32, "sensor_pitch_um": 8.0, "num_zernike": 15},
                         backbone="resnet18", weights=None, psf_mask_radius_px=500.0)  # fmt: skip


def test_training_k_grid_is_the_attacks_grid_per_decade() -> None:
    from attacks.nonblind import default_k_grid

    grid = default_k_grid("constant").tolist()
    assert all(k in grid for k in DEFAULT_ATTACK_KS)
    assert DEFAULT_ATTACK_KS == pytest.approx((1e-4, 1e-3, 1e-2, 1e-1, 1.0), rel=1e-12)


def test_fixed_width_pads_and_cuts() -> None:
    tokens = torch.tensor([[5, 6, 2], [7, 2, 0]])
    assert fixed_width(tokens, 5, 0).tolist() == [[5, 6, 2, 0, 0], [7, 2, 0, 0, 0]]
    assert fixed_width(tokens, 2, 0).tolist() == [[5, 6], [7, 2]]


def test_otf_band_term_alone_digs_the_lens_mtf_down(tiny_cli_args, tiny_data_root, tmp_path):
    """model.w_otf_band: the term is the PSF's mean MTF over the band, and the lens's steps on
    it lower that MTF (only the lens moves; every other loss is off)."""
    from optics import band_mtf_loss
    from train import cli_main

    only_band = [
        "--model.w_dec", "0", "--model.w_distortion", "0", "--model.w_psf_mask", "0",
        "--model.w_attack", "0", "--model.w_scene_labels", "0", "--model.w_otf_band", "1",
        "--model.otf_band_cpp", "[0.125, 0.5]",
    ]  # fmt: skip
    cli = cli_main(tiny_cli_args(tiny_data_root, tmp_path, *only_band), run=False)
    model = cli.model
    batch = next(iter(cli.datamodule.train_dataloader()))
    lens = [p for p in model.camera.parameters() if p.requires_grad]
    opt = torch.optim.Adam(lens, lr=0.01)
    history = []
    for _ in range(6):
        torch.manual_seed(0)
        terms = model.losses(batch)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        history.append(float(terms["otf_band_mtf"].detach()))
    assert float(terms["loss"].detach()) == pytest.approx(history[-1], abs=1e-6)  # nothing else
    with torch.no_grad():
        _, psf = model.capture(batch.float_images())
    assert float(band_mtf_loss(psf, (0.125, 0.5))) < 0.85 * history[0], history
