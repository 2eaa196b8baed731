"""environment.yml (conda, GPU boxes) names every dependency of pyproject.toml, same bounds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib")  # standard library from Python 3.11

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda package name → PyPI name
_REQ = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(\[[^\]]*\])?\s*(.*)$")


def _parse(requirement: str) -> tuple[str, str, str]:
    """'jsonargparse[signatures]>=4.27' → ('jsonargparse', '[signatures]', '>=4.27')."""
    match = _REQ.match(requirement.split("#")[0])
    assert match, requirement
    name, extras, spec = match.groups()
    name = re.sub(r"[-_.]+", "-", name).lower()
    spec = spec.replace(" ", "")
    if spec.startswith("=") and not spec.startswith("=="):  # conda's "=3.11"
        spec = "=" + spec
    return CONDA_NAMES.get(name, name), extras or "", spec


def _pyproject() -> dict[str, tuple[str, str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [
        d for group in project.get("optional-dependencies", {}).values() for d in group
    ]
    return {name: (extras, spec) for name, extras, spec in map(_parse, deps)}


def _environment() -> dict[str, tuple[str, str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        entries = dep["pip"] if isinstance(dep, dict) else [dep]
        for entry in entries:
            if entry.startswith("-"):  # pip options (-e ., --extra-index-url …)
                continue
            name, extras, spec = _parse(entry)
            out[name] = (extras, spec)
    return out


def test_environment_names_every_pyproject_dependency():
    env = _environment()
    missing = sorted(set(_pyproject()) - set(env))
    assert not missing, f"environment.yml lacks {missing} (pyproject.toml dependencies)"


def test_environment_keeps_extras_and_lower_bounds():
    env = _environment()
    for name, (extras, spec) in _pyproject().items():
        assert env[name] == (extras, spec), (
            f"{name}: pyproject.toml {extras}{spec}, environment.yml {''.join(env[name])}"
        )


def test_environment_installs_the_project_and_a_cuda_torch():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip
    assert any("download.pytorch.org/whl/cu" in p for p in pip)
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    version = tuple(int(v) for v in python.split("=")[-1].split("."))
    assert version >= tuple(int(v) for v in required.lstrip(">=").split("."))


def test_weights_enum_resolves_offline_from_torch_home(tmp_path, monkeypatch):
    """README: a torchvision `.pth` put in $TORCH_HOME/hub/checkpoints/<file name of the weights
    enum's url> is what `--model.weights IMAGENET1K_V1` loads, without a download."""
    import torch
    import torchvision

    from captioning.encoder import build_resnet

    url = torchvision.models.get_model_weights("resnet18")["IMAGENET1K_V1"].url
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    state = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(state, checkpoints / url.rsplit("/", 1)[-1])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download the weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    model = build_resnet("resnet18", "IMAGENET1K_V1")
    assert torch.equal(model.conv1.weight, state["conv1.weight"])
