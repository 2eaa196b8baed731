"""Refractive lens with a learned Zernike surface, and its PSF per wavelength.

Surface height h = h_base + Σ_j c_j Z_j (c_j in µm), where h_base is an optional thin
plano-convex base lens of focal length f at the design wavelength,
h_base(r) = −r² / (2 f (n(λ_d) − 1)). At wavelength λ the transmitted phase is
φ_λ = 2π/λ · (n(λ) − 1) · h  (+ k r²/2d for a point source at distance d), so the base lens
shows its natural chromatic focal shift (conventions in ``optics/thin_lens.py``).

The Zernike sum is evaluated on 1/8 of the aperture (``optics/symmetry.py``): the basis is
stored only on the fundamental domain 0 <= y <= x, every D4 symmetry gets its own transformed
coefficient vector, and one gather places the 8 partial height maps on the aperture. Same
values as the full basis, ≈ 10× less memory and memory traffic.

:class:`LensConfig` (``optics/lens_config.py``) validates the settings and resolves the
defaults; its pure helpers compute the base phase and the initial coefficients.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from . import functional as fn
from . import thin_lens
from .lens_config import LensConfig, base_phase_rad, initial_coefficients
from .materials import get_material
from .symmetry import aperture_layout, complete_terms, symmetry_coefficient_maps
from .zernike import zernike_basis

# the training guard's limit: 10 % under π, where the phase between pupil samples aliases
ALIASING_GUARD_RAD = 0.9 * math.pi

__all__ = [
    "LensConfig",
    "ZernikeLens",
    "aperture_layout",
    "initial_coefficients",
    "lens_from_camera_config",
]

log = logging.getLogger(__name__)


class ZernikeLens(nn.Module):
    """Thin refractive lens: base focusing surface + learned Zernike height (µm).

    ``ZernikeLens(LensConfig(...))`` or ``ZernikeLens(**LensConfig fields)``.
    Shapes: Λ wavelengths, N pupil samples per side, K sensor pixels per side of the PSF.
    ``forward()`` returns the PSF (Λ, K, K), each wavelength summing to 1, centre at K//2.
    """

    has_surface = True  # a height map: fabricable, and it can alias on the pupil grid

    def __init__(self, config: LensConfig | None = None, **options: Any) -> None:
        super().__init__()
        if config is None:
            config = LensConfig(**options)
        elif options:
            config = config.replace(**options)
        self.config = config
        n, n_pad = config.pupil_grid, config.n_pad
        self.wavelengths_nm = config.wavelengths_nm
        self.pupil_grid, self.n_pad, self.n_out = n, n_pad, config.n_out
        self.pupil_pitch_um = float(config.pupil_pitch_um)
        self.sensor_distance_mm = float(config.sensor_distance_mm)
        self.object_distance_mm = (
            None if config.object_distance_mm is None else float(config.object_distance_mm)
        )
        self.design_wavelength_nm = float(config.design_wavelength_nm)
        self.num_zernike = config.num_zernike
        self.material = get_material(config.material)
        self.fabrication_tolerance_um = float(config.fabrication_tolerance_um)
        self.propagation = config.propagation
        self.psf_size_px = config.psf_size_px
        self.sampling_check = config.sampling_check
        self.base_lens = bool(config.base_lens)
        self.focal_length_mm = config.focal_length_resolved_mm
        self.sensor_pitch_um = config.sensor_pitch_resolved_um
        self._register_geometry(config)
        init, trainable = initial_coefficients(config, self.symmetry_maps.shape[-1])
        self.trainable_indices = trainable
        self.register_buffer("fixed_coefficients_um", torch.from_numpy(init).float())
        index = torch.tensor([j - 1 for j in trainable], dtype=torch.long)
        self.register_buffer("trainable_index", index, persistent=False)
        self.trainable_coefficients_um = nn.Parameter(
            torch.from_numpy(init[[j - 1 for j in trainable]]).float()
        )
        if config.sampling_check != "off":
            self.check_phase_sampling(raise_error=config.sampling_check == "error")

    def _register_geometry(self, config: LensConfig) -> None:
        """Buffers that depend on the geometry only: the Zernike basis on the fundamental
        domain, the D4 maps and gathers, the base phase (wrapped) and height→phase scale per
        wavelength, the area-resampling matrix to the sensor pixels."""
        n, n_pad = self.pupil_grid, self.n_pad
        layout = aperture_layout(n)
        j_ext = complete_terms(self.num_zernike)
        radius = n / 2.0  # aperture radius in samples = the Zernike normalisation radius
        dx, dy = layout["domain_x"].astype(np.float64), layout["domain_y"].astype(np.float64)
        basis = zernike_basis(j_ext, np.hypot(dx, dy) / radius, np.arctan2(dy, dx), np.float32)
        self.register_buffer("domain_basis", torch.from_numpy(basis), persistent=False)
        maps = symmetry_coefficient_maps(j_ext)
        self.register_buffer("symmetry_maps", torch.from_numpy(maps).float(), persistent=False)
        self.register_buffer("source_index", torch.from_numpy(layout["source"]), persistent=False)
        self.register_buffer(
            "aperture_index", torch.from_numpy(layout["aperture_index"]), persistent=False
        )
        self.num_aperture = int(layout["aperture_index"].size)
        inside = np.zeros(n * n, dtype=bool)
        inside[layout["aperture_index"]] = True  # the sampling checks' (N, N) aperture
        self.register_buffer(
            "aperture_mask", torch.from_numpy(inside.reshape(n, n)), persistent=False
        )
        rows, cols = np.divmod(layout["aperture_index"], n)
        self.register_buffer(
            "padded_aperture_index", torch.from_numpy(rows * n_pad + cols), persistent=False
        )
        pitch_m = self.pupil_pitch_um * 1e-6
        r2_m2 = layout["x"].astype(np.float64) ** 2 + layout["y"].astype(np.float64) ** 2
        phase, h_base_m, n_lam = base_phase_rad(config, self.material, r2_m2 * pitch_m**2)
        wrapped = torch.from_numpy(np.remainder(phase, 2 * math.pi)).float()
        self.register_buffer("base_phase", wrapped, persistent=False)
        per_um = thin_lens.height_phase_per_m(self.wavelengths_nm, n_lam) * 1e-6
        self.register_buffer("phase_per_um", torch.from_numpy(per_um).float(), persistent=False)
        lam_m = torch.from_numpy(np.array(self.wavelengths_nm) * 1e-9).float()
        self.register_buffer("wavelengths_m", lam_m, persistent=False)
        matrix = fn.area_resample_matrix(
            self.n_out, pitch_m, self.psf_size_px, self.sensor_pitch_um * 1e-6
        )
        self.register_buffer("resample_matrix", matrix, persistent=False)
        # float64 copies for reports and sampling checks only (numpy, not buffers)
        self._base_height_m = h_base_m
        self._base_phase_unwrapped = phase
        # float32 copy for the training-time aliasing guard (the unwrapped phase is large,
        # but its neighbour differences are what count and stay well within float32)
        self.register_buffer(
            "_base_phase_tensor", torch.from_numpy(phase).float(), persistent=False
        )
        self.refractive_indices = tuple(float(v) for v in n_lam)

    # ------------------------------------------------------------------ coefficients / height

    def coefficients_um(self) -> torch.Tensor:
        """All coefficients (J',) in µm of height, Noll order from Z1 (J' >= num_zernike pads a
        missing sin/cos partner with 0)."""
        return self.fixed_coefficients_um.index_copy(
            0, self.trainable_index, self.trainable_coefficients_um
        )

    def zernike_height_um(self, coefficients_um: torch.Tensor | None = None) -> torch.Tensor:
        """Zernike height (P,) in µm on the aperture samples (see ``aperture_index``)."""
        c = self.coefficients_um() if coefficients_um is None else coefficients_um
        per_element = torch.einsum("j,gjk->gk", c, self.symmetry_maps) @ self.domain_basis
        return per_element.reshape(-1).index_select(0, self.source_index)

    def to_grid(self, values: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        """Scatter aperture values (..., P) onto the (..., N, N) pupil grid."""
        n = self.pupil_grid
        out = torch.full(
            (*values.shape[:-1], n * n), fill, dtype=values.dtype, device=values.device
        )
        return out.index_copy(-1, self.aperture_index, values).reshape(*values.shape[:-1], n, n)

    def height_map_um(self, include_base: bool = True) -> torch.Tensor:
        """Surface height (N, N) in µm (0 outside the aperture), row 0 = +y."""
        h = self.zernike_height_um()
        if include_base and self.base_lens:
            h = h + torch.from_numpy(self._base_height_m * 1e6).to(h)
        return self.to_grid(h)

    # ------------------------------------------------------------------ phase / PSF

    def phase(self, height_noise: bool | None = None) -> torch.Tensor:
        """Transmitted phase (Λ, P) on the aperture samples, rad (base part wrapped)."""
        h = self.zernike_height_um()
        noisy = self.training if height_noise is None else height_noise
        if noisy and self.fabrication_tolerance_um > 0:
            tol = self.fabrication_tolerance_um
            h = h + (torch.rand_like(h) * 2 - 1) * tol
        return self.base_phase + self.phase_per_um[:, None] * h[None, :]

    def pupil_field(self, height_noise: bool | None = None) -> torch.Tensor:
        """Complex field just after the lens (Λ, N, N)."""
        phi = self.phase(height_noise)
        return self.to_grid(torch.polar(torch.ones_like(phi), phi))

    def field_intensity(self, height_noise: bool | None = None) -> torch.Tensor:
        """Intensity on the sensor plane (Λ, M, M) at the pupil pitch, M = ``n_out``."""
        if self.propagation != "fresnel":
            return self.intensity_from_field(self.pupil_field(height_noise))
        # scatter the aperture straight into rows already zero-padded along x
        phi = self.phase(height_noise)
        values = torch.polar(torch.ones_like(phi), phi)
        n, n_pad = self.pupil_grid, self.n_pad
        field = torch.zeros(
            (*values.shape[:-1], n * n_pad), dtype=values.dtype, device=values.device
        )
        field = field.index_copy(-1, self.padded_aperture_index, values)
        return self.intensity_from_field(field.view(-1, n, n_pad))

    def intensity_from_field(self, field: torch.Tensor) -> torch.Tensor:
        """Propagate any pupil field (Λ, N, N) — or (Λ, N, n_pad) already zero-padded along x
        (Fresnel only) — to the sensor: intensity |u|² (Λ, M, M) at the pupil pitch. Not
        normalised: the propagation is unitary, so over the whole periodic plane
        Σ|u|² = Σ|field|². Used for the lens's own field and for fabricated surfaces."""
        pitch_m = self.pupil_pitch_um * 1e-6
        z_m = self.sensor_distance_mm * 1e-3
        wavelengths_m = self.wavelengths_m.to(field.device)
        if self.propagation == "fresnel":
            u = fn.propagate_fresnel_separable(
                field, pitch_m, wavelengths_m, z_m, self.n_pad, self.n_out
            )
        else:
            pad = self.n_pad - self.pupil_grid
            u = fn.propagate(
                torch.nn.functional.pad(field, (0, pad, 0, pad)),
                pitch_m,
                wavelengths_m,
                z_m,
                method="angular_spectrum",
            )
            idx = fn._centered_indices(self.pupil_grid, self.n_pad, self.n_out, field.device)
            u = u.index_select(-1, idx).index_select(-2, idx)
        return u.real.square() + u.imag.square()

    def forward(self, height_noise: bool | None = None) -> torch.Tensor:
        """PSF (Λ, K, K) on the sensor pixels, each wavelength normalised to sum 1."""
        return fn.psf_intensity_to_sensor(self.field_intensity(height_noise), self.resample_matrix)

    # ------------------------------------------------------------------ checks

    def phase_step_excess(self, limit_rad: float = ALIASING_GUARD_RAD) -> torch.Tensor:
        """Differentiable aliasing guard (rad², 0 while well sampled): Σ relu(|Δφ| − limit)²
        over neighbouring pupil samples of the full surface (base lens + Zernike) at every
        wavelength. The trainer adds it to the loss (``model.w_sampling``): pushed hard by a
        privacy term, the optimiser otherwise drives the surface past π per sample, where the
        simulated PSF is no longer the lens's and the lens exploits the simulator."""
        h_um = self.zernike_height_um().float()  # call with autocast off (see the trainer)
        full = self._unwrapped_phase_grid(h_um, self._base_phase_tensor.to(h_um))
        return fn.phase_step_excess(full, self.aperture_mask, limit_rad)

    def _unwrapped_phase_grid(self, h_um: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """Unwrapped surface phase (Λ, N, N), rad: base lens (P,) + Zernike height (P,) µm."""
        return self.to_grid(base + self.phase_per_um.to(h_um)[:, None] * h_um[None, :])

    @torch.no_grad()
    def check_phase_sampling(self, raise_error: bool = False) -> float:
        """Largest phase step (rad) between neighbouring pupil samples for the current surface.

        More than π means the lens phase aliases on the pupil grid. Raises (``raise_error``) or
        logs a warning naming the fix; returns the step.
        """
        h_um = self.zernike_height_um().double()
        base = torch.from_numpy(self._base_phase_unwrapped).to(h_um)  # float64 for reports
        full = self._unwrapped_phase_grid(h_um, base)
        step = float(fn.max_phase_step(full, self.aperture_mask).max())
        if step > math.pi:
            msg = (
                "lens phase aliases on the pupil grid: neighbouring samples differ by "
                f"{step:.2f} rad "
                f"(> π) at pupil_pitch_um={self.pupil_pitch_um:g}. Fix: lower pupil_pitch_um (and "
                "raise pupil_grid to keep the aperture), use a longer focal_length_mm / "
                "sensor_distance_mm, or shrink the Zernike coefficients"
            )
            if raise_error:
                raise ValueError(msg + " (or set sampling_check='warn')")
            log.warning(msg)
        return step


def lens_from_camera_config(config: Any) -> ZernikeLens:
    """The Zernike lens of a ``CameraConfig`` (registry entry ``zernike``): its ``lens``
    options, and the preset's trainable terms when ``lens.trainable_indices`` is null
    (defocus: Z4; privacy: Z4..Z_num_zernike)."""
    lens: LensConfig = config.lens
    trainable = lens.trainable_indices
    if trainable is None:
        trainable = [4] if config.preset == "defocus" else range(4, lens.num_zernike + 1)
    return ZernikeLens(lens.replace(trainable_indices=trainable))
