"""``make demo`` (``evaluate.py demo``): train every camera on the embedded data set, evaluate
them on its test split and write ``report.md`` with the table, figures, export and attacks."""

from __future__ import annotations

import logging
import shutil
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from endtoend.checkpoints import load_trained
from endtoend.evaluation import compare
from endtoend.train_run import Option, TrainRun, train
from optics.lenses import has_surface
from optics.plots import lens_figure, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "ADVERSARY_CONFIG",
    "DEMO_BLIND_EPOCHS",
    "DEMO_CAMERAS",
    "DEMO_LENS_EPOCHS",
    "DEMO_OPTIONS",
    "captions_grid",
    "demo_run",
    "run_demo",
]

progress = logging.getLogger("privcam.demo")

# cameras of `evaluate.py demo`; lens presets train this many epochs from the ideal captioner
DEMO_CAMERAS = ("ideal", "blind", "privacy", "defocus", "lowres")
DEMO_LENS_EPOCHS = 2
DEMO_BLIND_EPOCHS = 2  # the language prior is learnt in two epochs (then it only overfits)
# min–max against an in-loop Wiener+U-Net attacker (configs/adversary.yaml)
ADVERSARY_CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "adversary.yaml")
# per camera, on top of demo_argv: the demo's privacy lens is the adversarially trained one
# (without it a fresh U-Net recovered SSIM 0.58 from the Wiener-trained lens). Its attacker is
# half as wide as the study's, so `make demo` stays within 20 minutes on a 2-core CPU (12 demo
# steps, measured: 49 s without an attacker, 81 s with 16 channels, 65 s with 8).
DEMO_OPTIONS: dict[str, tuple[Option, ...]] = {
    "privacy": (("config", ADVERSARY_CONFIG), ("model.adversary_channels", 8))
}
# the demo's fast subset: the Wiener family, Richardson–Lucy and two fresh learned attackers on
# the lenses; the ideal camera's capture is the scene, so Wiener alone shows that
DEMO_ATTACKS = {
    "privacy": "wiener,richardson_lucy,unet,wiener_unet",
    "defocus": "wiener,richardson_lucy,unet,wiener_unet",
    "ideal": "wiener",
}

INTRO = (
    "Cameras trained end to end on the embedded data set (`captioning.synthetic`), "
    "config `{config}`: the ideal camera's captioner first, then every lens preset "
    "starting from it; test split, beam 3. Caption metrics ×100; SSIM/PSNR of the "
    "captured test images against the originals (mean ± std). Published COCO figures "
    "(Arguello et al.) are shown for reference only: different data, backbone and scale.",
    "Grounding (fractions): the shapes, colours and background a caption names, checked "
    "against the generator's ground truth (precision P, recall R; relation acc = share of "
    "checkable left/right/above/below relations that are right; shape F1 = harmonic mean of "
    "shape P and R, the shapes being what blur takes first; grounding F1 pools shapes, "
    "colours and background). The **blind** row is the same captioner trained on a grey "
    "image: what the references' shared template scores without looking. n-gram metrics "
    "(CIDEr-D above all) reward that template; read utility from the grounding columns.",
)


def demo_run(camera: str, config: str, run_dir: Path, **values: Any) -> TrainRun:
    """The training run of one demo camera ("blind": the ideal preset, no image), with its
    :data:`DEMO_OPTIONS`; ``values``: further :class:`TrainRun` fields (init_from, …)."""
    preset = "ideal" if camera == "blind" else camera
    return TrainRun(config, run_dir, preset, blind=camera == "blind", **values)


def run_demo(
    out: Path,
    config: str,
    presets: Sequence[str],
    max_epochs: int | None = None,
    attacks: bool = True,
    export: bool = True,
    lens_epochs: int | None = None,
    seed: int | None = None,
    blind_epochs: int | None = None,
) -> Path:
    """Train every camera on the embedded data, evaluate them, write ``out/report.md``.

    The ideal camera's captioner trains first (``max_epochs``, default the config's); every
    lens preset then starts from it (``model.init_from``) and trains ``lens_epochs``, so each
    lens is shaped by a captioner that already reads the image. ``blind`` trains the same
    captioner on a grey image for ``blind_epochs``: the row that says what the references'
    template alone scores.
    Each camera trains in ``out/<camera>``; a previous demo run there is replaced (otherwise
    Lightning would add best-v1.ckpt beside the old best.ckpt, and the report's checkpoints
    would not be the ones the README names)."""
    out.mkdir(parents=True, exist_ok=True)
    epochs = {"ideal": max_epochs, "blind": blind_epochs or max_epochs}
    ckpts, timings, (data_root, image_size) = train_cameras(
        out, config, presets, epochs, lens_epochs, seed
    )
    progress.info("[demo] evaluating %d cameras on the test split (beam 3)", len(ckpts))
    t0 = time.perf_counter()
    results = compare(list(ckpts.values()), out, "test", beam=3)
    timings["evaluation"] = time.perf_counter() - t0
    sections = [
        "# privcam demo report",
        "",
        INTRO[0].format(config=config),
        "",
        INTRO[1],
        "",
        (out / "comparison.md").read_text(),
        "Wall time (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()),
        "",
        f"Machine: {machine_line()}. The same seed gives the same table digit for digit on "
        "the same machine; another CPU (another vector instruction set) can move it by a few "
        "hundredths.",
        "",
    ]
    sections += _demo_figures(out, results)
    if export and "privacy" in ckpts:
        sections += _demo_export(out, ckpts["privacy"])
    if attacks:
        sections += _demo_attacks(out, ckpts, data_root, image_size)
        sections += _demo_tradeoff(out)
    report = out / "report.md"
    report.write_text("\n".join(sections) + "\n")
    return report


def machine_line() -> str:
    """The CPU (model, the vector instructions torch dispatches to), torch's threads and
    version, and the CUDA device if any: what a digit-for-digit rerun must match."""
    import platform

    import torch

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    text = (
        f"{model}, torch CPU kernels {torch.backends.cpu.get_cpu_capability()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    if torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name(0)}"
    return text


def train_cameras(
    out: Path,
    config: str,
    presets: Sequence[str],
    epochs: dict[str, int | None],
    lens_epochs: int | None,
    seed: int | None,
) -> tuple[dict[str, str], dict[str, float], tuple[Path, int]]:
    """Train each camera in ``out/<camera>`` (ideal first: the lens presets start from its
    captioner); ``epochs``: per camera (None: the config's), ``lens_epochs`` for lens presets.
    Returns camera → checkpoint, camera → seconds, and (data root, image size)."""
    timings: dict[str, float] = {}
    ckpts: dict[str, str] = {}
    cameras = sorted(presets, key=lambda c: (c != "ideal", c != "blind"))
    for i, camera in enumerate(cameras):
        t0 = time.perf_counter()
        if (out / camera).is_dir():
            print(f"replacing the previous demo run in {out / camera}", file=sys.stderr)
            shutil.rmtree(out / camera)
        run = demo_run(
            camera,
            config,
            out / camera,
            options=DEMO_OPTIONS.get(camera, ()),
            init_from=ckpts["ideal"] if camera not in epochs and "ideal" in ckpts else None,
            max_epochs=epochs.get(camera, lens_epochs),
            seed=seed,
        )
        spent = sum(timings.values())
        progress.info(
            "[demo] training camera %d/%d: %s (%.0f s so far)", i + 1, len(cameras), camera, spent
        )
        cli = train(run)
        data = (cli.datamodule.root, cli.datamodule.hparams.image_size)
        best = cli.trainer.checkpoint_callback.best_model_path
        ckpts[camera] = best or str(out / camera / "checkpoints" / "last.ckpt")
        timings[camera] = time.perf_counter() - t0
    return ckpts, timings, data


def _demo_figures(out: Path, results: Sequence[dict]) -> list[str]:
    """PSF / height-map figures for lens cameras and an originals / captures / captions grid."""
    lines = ["## Lenses and captures", ""]
    columns = []
    for r in results:
        module, data = load_trained(r["checkpoint"], max_images=4)
        if has_surface(module.camera.lens):
            name = f"lens_{r['camera']}.png"
            save_figure(lens_figure(module.camera.lens), out / name, dpi=80)
            lines += [f"![{r['camera']} lens]({name})", ""]
        batch = next(iter(data.test_dataloader()))
        images = batch.float_images()
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            captured, _ = module.camera.eval().capture(images, gen)
            seen = module.cnn_input(captured)
            caps = module.captioner.generate(seen, beam_size=3).captions
        # the blind captioner's column shows what it sees (grey), not the scene
        shown = seen if module.hparams.get("blind", False) else captured
        columns.append((r["camera"], images, shown, caps))
    fig = captions_grid(columns[0][1], [(cam, cap, text) for cam, _, cap, text in columns])
    save_figure(fig, out / "captures.png", dpi=100)
    return [*lines, "![originals, captures and captions](captures.png)", ""]


CAPTION_WIDTH = 28  # characters per caption line: about the width of a 2.2 in image at 8 pt
CAPTION_LINES = 4  # a longer caption (up to max_decode_len words) ends in "…"


def captions_grid(
    originals: torch.Tensor, columns: Sequence[tuple[str, torch.Tensor, Sequence[str]]]
) -> Figure:
    """Originals, captures and captions: one row per image, the original then one column per
    camera, each camera's caption wrapped under its capture and its name over the top row.

    Args:
        originals: (N, 3, H, W) scenes in [0, 1].
        columns: per camera, (name, (N, 3, H, W) captures, N captions).
    """
    import matplotlib

    matplotlib.use("Agg", force=True)  # files only: no display needed
    import matplotlib.pyplot as plt

    n, n_cols = originals.shape[0], len(columns) + 1
    # constrained layout leaves room for each axes' x label (the caption) before the next
    # row; the row height keeps CAPTION_LINES lines of 8 pt text under a 2.2 in image
    fig, axes = plt.subplots(
        n, n_cols, figsize=(2.2 * n_cols, 3.0 * n), squeeze=False, layout="constrained"
    )
    panels = [("original", originals, None), *columns]
    for j, (name, images, captions) in enumerate(panels):
        axes[0, j].set_title(name, fontsize=9)
        for i in range(n):
            ax = axes[i, j]
            ax.imshow(images[i].detach().permute(1, 2, 0).clamp(0, 1).cpu().numpy())
            # ticks and frame hidden, not axis("off"): that would hide the caption too
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if captions is not None:
                lines = textwrap.wrap(
                    captions[i], CAPTION_WIDTH, max_lines=CAPTION_LINES, placeholder=" …"
                )
                ax.set_xlabel("\n".join(lines), fontsize=8, linespacing=1.1)
    return fig


def _demo_export(out: Path, ckpt: str) -> list[str]:
    try:
        from optics.export import export_lens
    except ImportError:
        return []
    from optics import load_camera

    export_dir = out / "export_privacy"
    export_lens(load_camera(ckpt), export_dir, overwrite=True, quick=True)
    return [
        "## Export (privacy lens)",
        "",
        f"Fabrication files in `{export_dir.name}/`.",
        "",
        (export_dir / "report.md").read_text(),
        "",
    ]


def _demo_attacks(out: Path, ckpts: dict[str, str], data_root: Path, image_size: int) -> list[str]:
    """Attack the two lenses and the ideal camera on the demo's test images with fresh
    attackers (:data:`DEMO_ATTACKS`; `evaluate.py attack --attack all` or `evaluate.py study`
    run everything); an adversarially trained lens's own in-loop attacker is one more row."""
    from attacks import run_attacks
    from attacks.adversary import camera_and_in_loop_attacker

    lines = ["## Attacks", ""]
    for preset, attacks in DEMO_ATTACKS.items():
        if preset not in ckpts:
            continue
        folder = out / f"attacks_{preset}"
        camera, in_loop = camera_and_in_loop_attacker(ckpts[preset])
        run_attacks(
            camera,
            str(data_root),
            folder,
            attacks,
            in_loop=in_loop,
            image_size=image_size,
            max_images=150,
            epochs=2,
            backbone_weights=None,
            title=f"demo, {preset} camera",
        )
        report = (folder / "attack_report.md").read_text().replace("](", f"]({folder.name}/")
        lines += [f"### {preset} camera", "", report, ""]
    return lines


def _demo_tradeoff(out: Path) -> list[str]:
    """The privacy–utility frontier of the attacked cameras (``endtoend.tradeoff``)."""
    from endtoend.tradeoff import tradeoff_report

    specs = [
        f"{p.parent.name.removeprefix('attacks_')}={p}"
        for p in sorted(out.glob("attacks_*/attack_results.json"))
    ]
    if not specs:
        return []
    paths = tradeoff_report(out / "comparison.csv", specs, out)
    table = (
        paths["md"]
        .read_text()
        .replace("# Privacy–utility trade-off", "## Privacy–utility trade-off", 1)
    )
    return [table, "", f"![privacy–utility trade-off]({paths['png'].name})", ""]
