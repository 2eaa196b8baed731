"""Fixtures shared across test folders: tiny embedded data sets, a tiny model config and the
small, fast camera of the optics and attack tests."""

from pathlib import Path
from types import MappingProxyType

import pytest

# A physically valid small camera (64² pupil at 4 µm, Fresnel-sampled at 6 mm with 4× padding)
# and a tiny captioner, as LightningCLI arguments.
TINY_MODEL_ARGS = [
    "--model.backbone", "resnet18", "--model.grid_size", "2", "--model.embed_dim", "32",
    "--model.hidden_dim", "32", "--model.attention_dim", "16", "--model.cnn_input_size", "64",
    "--model.dropout", "0.0", "--model.psf_mask_radius_px", "4", "--model.weights", "null",
    "--model.camera.lens.pupil_grid", "64", "--model.camera.lens.pupil_pitch_um", "4",
    "--model.camera.lens.pad_factor", "4", "--model.camera.lens.sensor_distance_mm", "6",
    "--model.camera.lens.psf_size_px", "32", "--model.camera.lens.sensor_pitch_um", "8",
    "--model.camera.lens.num_zernike", "15", "--model.camera.lens.initial_defocus_um", "0.5",
    "--model.trainable_from", "layer1",
]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory) -> Path:
    from captioning.synthetic import write_dataset

    root = tmp_path_factory.mktemp("embedded") / "data"
    write_dataset(root, seed=0, train=40, val=10, test=10, size=32)
    return root


def _tiny_cli_args(data_root: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        "--config", str(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"),
        *TINY_MODEL_ARGS,
        "--data.root", str(data_root), "--data.generate_embedded", "false",
        "--data.image_size", "32", "--data.batch_size", "8", "--data.eval_batch_size", "5",
        "--data.num_workers", "0", "--data.min_word_count", "1", "--data.captions_per_image", "5",
        "--trainer.default_root_dir", str(run_dir), "--trainer.enable_progress_bar", "false",
        "--trainer.log_every_n_steps", "1", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 train (3 of them restval) / 6 val / 6 test images of 32 x 32 px."""
    from captioning.synthetic import write_dataset

    root = tmp_path_factory.mktemp("synthetic")
    return write_dataset(root, seed=0, train=30, val=6, test=6, size=32)


@pytest.fixture
def fresh_root(tmp_path: Path) -> Path:
    """A small data set that a test may modify (corrupt, delete, ...)."""
    from captioning.synthetic import write_dataset

    return write_dataset(tmp_path / "data", seed=1, train=8, val=3, test=3, size=32)


@pytest.fixture
def tiny_cli_args():
    """Builder of LightningCLI arguments for a tiny run: (data_root, run_dir, *extra) → argv."""
    return _tiny_cli_args


def _tiny_unet(base_channels: int, depth: int, **_):
    from attacks.models import UNet

    return UNet(base_channels, depth)


@pytest.fixture
def extra_attacker(monkeypatch):
    """A fake extra learned attacker registered for one test: a U-Net under its own name."""
    from attacks.attackers import ATTACKERS, AttackerSpec

    spec = AttackerSpec(
        name="tiny_unet",
        label="Tiny U-Net",
        column="tiny U-Net",
        lightning_module="attacks.learned.UNetAttacker",
        option_example="depth=2",
        in_loop=_tiny_unet,
    )
    monkeypatch.setitem(ATTACKERS, spec.name, spec)
    return spec


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.gpu`` tests are skipped on machines without CUDA."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# 64² pupil at 4 µm (D = 256 µm), 8× padding, lens–sensor 12 mm: Fresnel transfer function
# well sampled for 460–640 nm (λz/L ≤ 3.75 µm ≤ 4 µm), the Airy ring spans 6–9 samples.
SMALL_LENS = dict(
    pupil_grid=64,
    pupil_pitch_um=4.0,
    pad_factor=8,
    sensor_distance_mm=12.0,
    psf_size_px=64,
    sensor_pitch_um=4.0,
    num_zernike=15,
    material=1.5,
)
# The attack tests' camera: the same lens imaged on a 32 px PSF at 8 µm pixels, with a random
# 0.1 µm Zernike init (0.2 µm aliases).
SMALL_ATTACK_CAMERA = {**SMALL_LENS, "psf_size_px": 32, "sensor_pitch_um": 8.0, "init_std_um": 0.1}


@pytest.fixture(scope="session")
def small_lens_kwargs():
    """CameraConfig / ZernikeLens options of the small lens (read-only: shared by every test)."""
    return MappingProxyType(SMALL_LENS)


@pytest.fixture
def small_camera():
    """A fresh privacy camera with the small lens, 32 px PSF and a random Zernike init."""
    from optics import Camera

    return Camera("privacy", **SMALL_ATTACK_CAMERA)


def _tiny_demo_config(argv: list[str], path: Path) -> Path:
    """configs/demo.yaml with a tiny run's CLI overrides (``tiny_cli_args``) written in: for
    jobs that take a config file (the demo, the study) rather than LightningCLI arguments."""
    import yaml

    demo_yaml = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
    config = yaml.safe_load(demo_yaml.read_text())
    overrides = argv[2:]  # past "--config demo.yaml"
    for key, value in zip(overrides[::2], overrides[1::2], strict=True):
        *parents, leaf = key.removeprefix("--").split(".")
        node = config
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = yaml.safe_load(value)
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def tiny_demo_config():
    """Writer of a tiny demo config: (tiny_cli_args argv, path) → path."""
    return _tiny_demo_config
