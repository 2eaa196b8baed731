"""Validated lens settings and the pure helpers that build a lens from them.

:class:`LensConfig` checks every option (and the sampling limits of the grids) once and
resolves the defaults (focal length, sensor pitch, padded and output field sizes);
:func:`initial_coefficients` and :func:`base_phase_rad` are the numpy parts of
``ZernikeLens.__init__`` (conventions in ``optics/thin_lens.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from . import functional as fn
from . import thin_lens
from .materials import Material

__all__ = ["LensConfig", "base_phase_rad", "initial_coefficients"]

log = logging.getLogger("optics.lens")  # the sampling warnings keep their logger name

_PROPAGATIONS = ("fresnel", "angular_spectrum")
_SAMPLING_CHECKS = ("error", "warn", "off")


@dataclass(frozen=True)
class LensConfig:
    """Validated lens settings (units in the names). ``focal_length_mm`` None focuses the design
    wavelength on the sensor; ``sensor_pitch_um`` None spreads the aperture width over the
    ``psf_size_px`` pixels; both are resolved in :attr:`focal_length_resolved_mm` /
    :attr:`sensor_pitch_resolved_um`. Raises ValueError naming the option and the fix."""

    wavelengths_nm: Sequence[float] = (460.0, 550.0, 640.0)
    pupil_grid: int = 896
    pupil_pitch_um: float = 3.0
    pad_factor: float = 2.0
    sensor_distance_mm: float = 25.0
    focal_length_mm: float | None = None
    base_lens: bool = True
    design_wavelength_nm: float = 550.0
    object_distance_mm: float | None = None
    num_zernike: int = 350
    trainable_indices: Sequence[int] | None = None
    initial_coefficients_um: Mapping[int, float] | Sequence[float] | None = None
    initial_defocus_um: float = 0.0
    init_std_um: float = 0.0
    init_seed: int = 0
    material: str | float = "fused_silica"
    fabrication_tolerance_um: float = 0.02
    propagation: Literal["fresnel", "angular_spectrum"] = "fresnel"
    psf_size_px: int = 256
    sensor_pitch_um: float | None = None
    sampling_check: Literal["error", "warn", "off"] = "error"

    def __post_init__(self) -> None:
        for name in ("pupil_pitch_um", "sensor_distance_mm", "pad_factor", "psf_size_px"):
            _positive(name, getattr(self, name))
        for name in ("focal_length_mm", "object_distance_mm", "sensor_pitch_um"):
            if getattr(self, name) is not None:
                _positive(name, getattr(self, name))
        if len(self.wavelengths_nm) == 0:
            raise ValueError("wavelengths_nm is empty: give at least one wavelength, e.g. [550]")
        for lam in (*self.wavelengths_nm, self.design_wavelength_nm):
            _positive("wavelengths_nm", lam)
        n = self.pupil_grid
        if int(n) != n or n < 2 or n % 2:
            raise ValueError(f"pupil_grid must be an even integer >= 2, got {n}")
        if int(self.num_zernike) != self.num_zernike or self.num_zernike < 1:
            raise ValueError(
                f"num_zernike must be an integer >= 1, got {self.num_zernike}: a lens needs "
                "Zernike terms"
            )
        if self.fabrication_tolerance_um < 0:
            raise ValueError(
                f"fabrication_tolerance_um must be >= 0, got {self.fabrication_tolerance_um}"
            )
        if self.propagation not in _PROPAGATIONS:
            raise ValueError(
                f"propagation must be 'fresnel' or 'angular_spectrum', got {self.propagation!r}"
            )
        if self.sampling_check not in _SAMPLING_CHECKS:
            raise ValueError(
                f"sampling_check must be 'error', 'warn' or 'off', got {self.sampling_check!r}"
            )
        if self.pad_factor < 1:
            raise ValueError(
                f"pad_factor must be >= 1 (zero padding of the pupil), got {self.pad_factor}"
            )
        set_ = object.__setattr__  # frozen: normalise the types once
        set_(self, "wavelengths_nm", tuple(float(w) for w in self.wavelengths_nm))
        set_(self, "pupil_grid", int(n))
        set_(self, "num_zernike", int(self.num_zernike))
        set_(self, "psf_size_px", int(self.psf_size_px))
        _check_grids(self)

    def to_dict(self) -> dict[str, Any]:
        """The options as plain types (lists and dicts, never tuples): YAML and JSON files
        (hyper-parameters, lens.json) read them back."""

        def plain(value: Any) -> Any:
            if isinstance(value, Mapping):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, (tuple, list, range)):
                return [plain(v) for v in value]
            return value

        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> LensConfig:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def focal_length_resolved_mm(self) -> float:
        if self.focal_length_mm is not None:
            return float(self.focal_length_mm)
        return thin_lens.focus_focal_length_mm(self.sensor_distance_mm, self.object_distance_mm)

    @property
    def sensor_pitch_resolved_um(self) -> float:
        if self.sensor_pitch_um is not None:
            return float(self.sensor_pitch_um)
        return self.pupil_grid * float(self.pupil_pitch_um) / self.psf_size_px

    @property
    def n_pad(self) -> int:
        """Zero-padded field size (even) of the propagation."""
        return 2 * math.ceil(self.pupil_grid * self.pad_factor / 2)

    @property
    def n_out(self) -> int:
        """Field samples (even) around the axis covering the K sensor pixels of the PSF."""
        ratio = self.sensor_pitch_resolved_um / float(self.pupil_pitch_um)
        half = math.ceil((self.psf_size_px // 2 + 0.5) * ratio - 0.5 - 1e-9)
        return 2 * max(half, 1)


def _check_grids(c: LensConfig) -> None:
    """Sampling limits of a valid config: sensor pixels no finer than the pupil samples, the PSF
    window inside the propagated field, the Fresnel transfer function sampled (per
    ``sampling_check``)."""
    pitch_um, sensor_um = float(c.pupil_pitch_um), c.sensor_pitch_resolved_um
    if sensor_um < pitch_um * (1 - 1e-9):
        raise ValueError(
            f"sensor_pitch_um={sensor_um:g} is finer than pupil_pitch_um={pitch_um:g}: the "
            "field is only sampled at the pupil pitch; lower pupil_pitch_um or raise "
            "sensor_pitch_um"
        )
    if c.n_out > c.n_pad:
        raise ValueError(
            f"PSF larger than the field: psf_size_px={c.psf_size_px} × sensor_pitch_um="
            f"{sensor_um:g} = {c.psf_size_px * sensor_um:g} µm exceeds "
            f"the propagated field (pupil_grid × pad_factor = {c.n_pad} samples × "
            f"{pitch_um:g} µm = {c.n_pad * pitch_um:g} µm); lower "
            "psf_size_px or sensor_pitch_um, or raise pad_factor"
        )
    if c.propagation == "fresnel" and c.sampling_check != "off":
        lam_m = np.array(c.wavelengths_nm) * 1e-9
        msg = fn.check_fresnel_sampling(
            pitch_um * 1e-6, c.n_pad, lam_m, float(c.sensor_distance_mm) * 1e-3
        )
        if msg:
            if c.sampling_check == "error":
                raise ValueError(msg + " (or set sampling_check='warn')")
            log.warning(msg)


def initial_coefficients(config: LensConfig, num_terms: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """Initial coefficients (num_terms,) µm, Noll from Z1 (given values + defocus + seeded
    Gaussian noise on the trainable terms), and the sorted trainable Noll indices
    (default Z4..Z_num_zernike)."""
    j_max = config.num_zernike

    def check(j: int, option: str) -> None:
        if not 1 <= j <= j_max:
            raise ValueError(f"{option}: Noll index {j} outside 1..num_zernike={j_max}")

    init = np.zeros(num_terms)
    given = config.initial_coefficients_um
    if isinstance(given, Mapping):
        for j, value in given.items():
            check(int(j), "initial_coefficients_um")
            init[int(j) - 1] = float(value)
    elif given is not None:
        values = np.asarray(list(given), dtype=np.float64)
        if values.size > j_max:
            raise ValueError(
                f"initial_coefficients_um has {values.size} values but num_zernike="
                f"{j_max}; give at most num_zernike values (Noll order from Z1)"
            )
        init[: values.size] = values
    if config.initial_defocus_um:
        if j_max < 4:
            raise ValueError("initial_defocus_um needs num_zernike >= 4 (Z4 is defocus)")
        init[3] += config.initial_defocus_um
    indices = config.trainable_indices
    trainable = sorted({int(j) for j in (range(4, j_max + 1) if indices is None else indices)})
    for j in trainable:
        check(j, "trainable_indices")
    if config.init_std_um > 0 and trainable:
        gen = torch.Generator().manual_seed(config.init_seed)
        noise = torch.randn(len(trainable), generator=gen, dtype=torch.float64).numpy()
        init[np.array(trainable) - 1] += config.init_std_um * noise
    return init, tuple(trainable)


def base_phase_rad(
    config: LensConfig, material: Material, r2_m2: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Phase of the base lens and the object distance (Λ, P), unwrapped float64, at squared
    radii ``r2_m2`` (P,); also the base height (P,) in m and n(λ) (Λ,)."""
    n_lam = material.refractive_index(np.array(config.wavelengths_nm))
    n_design = float(material.refractive_index(config.design_wavelength_nm))
    a_per_mm = thin_lens.base_sag_per_mm(
        config.focal_length_resolved_mm, n_design, bool(config.base_lens)
    )
    h_base_m = 1e3 * a_per_mm * r2_m2
    per_m = thin_lens.height_phase_per_m(config.wavelengths_nm, n_lam)
    phase = per_m[:, None] * h_base_m[None, :]
    if config.object_distance_mm is not None:
        phase = phase + thin_lens.object_phase_rad(
            r2_m2, config.wavelengths_nm, float(config.object_distance_mm)
        )
    return phase, h_base_m, np.asarray(n_lam, dtype=np.float64)


def _positive(name: str, value: float) -> None:
    try:
        ok = float(value) > 0 and math.isfinite(float(value))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
