"""Refractive lens with a learned Zernike surface, and its PSF per wavelength.

Surface height h = h_base + Σ_j c_j Z_j (c_j in µm), where h_base is an optional thin
plano-convex base lens of focal length f at the design wavelength,
h_base(r) = −r² / (2 f (n(λ_d) − 1)). At wavelength λ the transmitted phase is
φ_λ = 2π/λ · (n(λ) − 1) · h  (+ k r²/2d for a point source at distance d), so the base lens
shows its natural chromatic focal shift.

The Zernike sum is evaluated on 1/8 of the aperture: the sampled disk is invariant under the
8 symmetries of the square (D4), and each symmetry maps a Zernike term to a signed mix of its
cos/sin partner. So the basis is stored only on the fundamental domain 0 <= y <= x (≈ 1/8 of
the ~0.8·N² aperture samples), every symmetry gets its own transformed coefficient vector, and
one gather places the 8 partial height maps on the aperture. Same values as the full basis,
≈ 10× less memory and memory traffic.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from . import functional as fn
from .materials import get_material
from .zernike import nm_to_noll, noll_to_nm, zernike_basis

__all__ = ["ZernikeLens", "aperture_layout"]

log = logging.getLogger(__name__)

# D4 elements as (s, k): reflect y → s·y, then rotate by k·π/2.
_D4 = [(s, k) for s in (1, -1) for k in range(4)]


def _apply_d4(s: int, k: int, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = s * y
    for _ in range(k):
        x, y = -y, x
    return x, y


def aperture_layout(n: int) -> dict[str, np.ndarray]:
    """Integer geometry of an n×n FFT-centred pupil grid with a circular aperture of radius n/2.

    Returns a dict of numpy arrays:
        ``aperture_index`` (P,): flat (row-major) indices of samples strictly inside the disk;
        ``x``, ``y`` (P,): their integer coordinates (x = col − n//2, y = n//2 − row);
        ``domain_x``, ``domain_y`` (P_F,): the fundamental-domain samples (0 <= y <= x);
        ``source`` (P,): for each aperture sample, g·P_F + f with D4 element g mapping domain
            sample f onto it; ``elements`` (8, 2): (s, k) of each g.
    """
    if n < 2 or n % 2:
        raise ValueError(f"pupil_grid must be an even integer >= 2, got {n}")
    c = n // 2
    cols, rows = np.meshgrid(np.arange(n), np.arange(n))
    x_all, y_all = cols - c, c - rows
    inside = 4 * (x_all**2 + y_all**2) < n * n
    aperture_index = np.flatnonzero(inside.ravel())
    x, y = x_all.ravel()[aperture_index], y_all.ravel()[aperture_index]

    u, v = np.maximum(np.abs(x), np.abs(y)), np.minimum(np.abs(x), np.abs(y))
    in_domain = (y >= 0) & (y <= x)
    domain_x, domain_y = x[in_domain], y[in_domain]
    lookup = np.full((c + 1, c + 1), -1, dtype=np.int64)
    lookup[domain_x, domain_y] = np.arange(domain_x.size)
    f = lookup[u, v]
    source = np.full(x.size, -1, dtype=np.int64)
    for g, (s, k) in enumerate(_D4):
        px, py = _apply_d4(s, k, u, v)
        hit = (source < 0) & (px == x) & (py == y)
        source[hit] = g * domain_x.size + f[hit]
    assert (source >= 0).all() and (f >= 0).all()
    return {
        "aperture_index": aperture_index,
        "x": x,
        "y": y,
        "domain_x": domain_x,
        "domain_y": domain_y,
        "source": source,
        "elements": np.array(_D4),
    }


def _symmetry_coefficient_maps(num_terms: int) -> np.ndarray:
    """(8, J, J) matrices M_g with h(g·q) = Σ_k (c @ M_g)_k Z_k(q) for q in the fundamental domain.

    For a cos/sin pair of angular order m and g = (s, α): c'_cos = c_cos cos mα + c_sin sin mα,
    c'_sin = s(c_sin cos mα − c_cos sin mα). J must include every partner (see _complete_terms).
    """
    maps = np.zeros((8, num_terms, num_terms))
    nm = [noll_to_nm(j) for j in range(1, num_terms + 1)]
    index = {v: i for i, v in enumerate(nm)}
    for g, (s, k) in enumerate(_D4):
        for i, (n, m) in enumerate(nm):
            if m == 0:
                maps[g, i, i] = 1.0
                continue
            ma = abs(m) * k * math.pi / 2
            cos_ma, sin_ma = round(math.cos(ma)), round(math.sin(ma))
            i_cos, i_sin = index[(n, abs(m))], index[(n, -abs(m))]
            if m > 0:  # row i = c_cos contributes to c'_cos and c'_sin
                maps[g, i, i_cos] += cos_ma
                maps[g, i, i_sin] += -s * sin_ma
            else:
                maps[g, i, i_cos] += sin_ma
                maps[g, i, i_sin] += s * cos_ma
    return maps


def _complete_terms(num_terms: int) -> int:
    """Smallest J' >= J such that every cos term has its sin partner (and vice versa)."""
    n, m = noll_to_nm(num_terms)
    return max(num_terms, nm_to_noll(n, -m))


class ZernikeLens(nn.Module):
    """Thin refractive lens: base focusing surface + learned Zernike height (µm).

    Shapes: Λ wavelengths, N pupil samples per side, K sensor pixels per side of the PSF.
    ``forward()`` returns the PSF (Λ, K, K), each wavelength summing to 1, centre at K//2.
    """

    def __init__(
        self,
        *,
        wavelengths_nm: Sequence[float] = (460.0, 550.0, 640.0),
        pupil_grid: int = 896,
        pupil_pitch_um: float = 3.0,
        pad_factor: float = 2.0,
        sensor_distance_mm: float = 25.0,
        focal_length_mm: float | None = None,
        base_lens: bool = True,
        design_wavelength_nm: float = 550.0,
        object_distance_mm: float | None = None,
        num_zernike: int = 350,
        trainable_indices: Sequence[int] | None = None,
        initial_coefficients_um: Mapping[int, float] | Sequence[float] | None = None,
        initial_defocus_um: float = 0.0,
        init_std_um: float = 0.0,
        init_seed: int = 0,
        material: str | float = "fused_silica",
        fabrication_tolerance_um: float = 0.02,
        propagation: str = "fresnel",
        psf_size_px: int = 256,
        sensor_pitch_um: float | None = None,
        sampling_check: str = "error",
    ) -> None:
        super().__init__()
        _positive("pupil_pitch_um", pupil_pitch_um)
        _positive("sensor_distance_mm", sensor_distance_mm)
        _positive("pad_factor", pad_factor)
        _positive("psf_size_px", psf_size_px)
        if focal_length_mm is not None:
            _positive("focal_length_mm", focal_length_mm)
        if object_distance_mm is not None:
            _positive("object_distance_mm", object_distance_mm)
        if sensor_pitch_um is not None:
            _positive("sensor_pitch_um", sensor_pitch_um)
        if len(wavelengths_nm) == 0:
            raise ValueError("wavelengths_nm is empty: give at least one wavelength, e.g. [550]")
        for lam in (*wavelengths_nm, design_wavelength_nm):
            _positive("wavelengths_nm", lam)
        if int(pupil_grid) != pupil_grid or pupil_grid < 2 or pupil_grid % 2:
            raise ValueError(f"pupil_grid must be an even integer >= 2, got {pupil_grid}")
        if int(num_zernike) != num_zernike or num_zernike < 1:
            raise ValueError(
                f"num_zernike must be an integer >= 1, got {num_zernike}: a lens needs "
                "Zernike terms"
            )
        if fabrication_tolerance_um < 0:
            raise ValueError(
                f"fabrication_tolerance_um must be >= 0, got {fabrication_tolerance_um}"
            )
        if propagation not in ("fresnel", "angular_spectrum"):
            raise ValueError(
                f"propagation must be 'fresnel' or 'angular_spectrum', got {propagation!r}"
            )
        if sampling_check not in ("error", "warn", "off"):
            raise ValueError(
                f"sampling_check must be 'error', 'warn' or 'off', got {sampling_check!r}"
            )
        if pad_factor < 1:
            raise ValueError(
                f"pad_factor must be >= 1 (zero padding of the pupil), got {pad_factor}"
            )

        n = int(pupil_grid)
        n_pad = 2 * math.ceil(n * pad_factor / 2)
        self.wavelengths_nm = tuple(float(w) for w in wavelengths_nm)
        self.pupil_grid, self.n_pad = n, n_pad
        self.pupil_pitch_um = float(pupil_pitch_um)
        self.sensor_distance_mm = float(sensor_distance_mm)
        self.object_distance_mm = None if object_distance_mm is None else float(object_distance_mm)
        self.design_wavelength_nm = float(design_wavelength_nm)
        self.num_zernike = int(num_zernike)
        self.material = get_material(material)
        self.fabrication_tolerance_um = float(fabrication_tolerance_um)
        self.propagation = propagation
        self.psf_size_px = int(psf_size_px)
        self.sampling_check = sampling_check
        self.base_lens = bool(base_lens)
        if focal_length_mm is None:  # focus the design wavelength on the sensor
            inv = 1.0 / self.sensor_distance_mm
            if self.object_distance_mm is not None:
                inv += 1.0 / self.object_distance_mm
            focal_length_mm = 1.0 / inv
        self.focal_length_mm = float(focal_length_mm)
        self.sensor_pitch_um = (
            float(sensor_pitch_um)
            if sensor_pitch_um is not None
            else n * self.pupil_pitch_um / self.psf_size_px
        )
        if self.sensor_pitch_um < self.pupil_pitch_um * (1 - 1e-9):
            raise ValueError(
                f"sensor_pitch_um={self.sensor_pitch_um:g} is finer than pupil_pitch_um="
                f"{self.pupil_pitch_um:g}: the field is only sampled at the pupil pitch; "
                "lower pupil_pitch_um or raise sensor_pitch_um"
            )

        pitch_m = self.pupil_pitch_um * 1e-6
        lam_m = np.array(self.wavelengths_nm) * 1e-9
        z_m = self.sensor_distance_mm * 1e-3
        # Output window: enough field samples to cover the K sensor pixels around the axis.
        half = math.ceil(
            (self.psf_size_px // 2 + 0.5) * self.sensor_pitch_um / self.pupil_pitch_um - 0.5 - 1e-9
        )
        self.n_out = 2 * max(half, 1)
        if self.n_out > n_pad:
            raise ValueError(
                f"PSF larger than the field: psf_size_px={self.psf_size_px} × sensor_pitch_um="
                f"{self.sensor_pitch_um:g} = {self.psf_size_px * self.sensor_pitch_um:g} µm "
                "exceeds "
                f"the propagated field (pupil_grid × pad_factor = {n_pad} samples × "
                f"{self.pupil_pitch_um:g} µm = {n_pad * self.pupil_pitch_um:g} µm); lower "
                "psf_size_px or sensor_pitch_um, or raise pad_factor"
            )
        if propagation == "fresnel" and sampling_check != "off":
            msg = fn.check_fresnel_sampling(pitch_m, n_pad, lam_m, z_m)
            if msg:
                if sampling_check == "error":
                    raise ValueError(msg + " (or set sampling_check='warn')")
                log.warning(msg)

        # --- geometry and basis on the fundamental domain
        layout = aperture_layout(n)
        j_ext = _complete_terms(self.num_zernike)
        radius = n / 2.0  # aperture radius in samples = the Zernike normalisation radius
        dx, dy = layout["domain_x"].astype(np.float64), layout["domain_y"].astype(np.float64)
        basis = zernike_basis(j_ext, np.hypot(dx, dy) / radius, np.arctan2(dy, dx), np.float32)
        self.register_buffer("domain_basis", torch.from_numpy(basis), persistent=False)
        maps = _symmetry_coefficient_maps(j_ext)
        self.register_buffer("symmetry_maps", torch.from_numpy(maps).float(), persistent=False)
        self.register_buffer("source_index", torch.from_numpy(layout["source"]), persistent=False)
        self.register_buffer(
            "aperture_index", torch.from_numpy(layout["aperture_index"]), persistent=False
        )
        self.num_aperture = int(layout["aperture_index"].size)
        rows, cols = np.divmod(layout["aperture_index"], n)
        self.register_buffer(
            "padded_aperture_index", torch.from_numpy(rows * n_pad + cols), persistent=False
        )

        # --- per-wavelength constants: base phase (wrapped in float64) and height→phase scale
        r2_m2 = (
            layout["x"].astype(np.float64) ** 2 + layout["y"].astype(np.float64) ** 2
        ) * pitch_m**2
        n_lam = self.material.refractive_index(np.array(self.wavelengths_nm))
        n_design = float(self.material.refractive_index(self.design_wavelength_nm))
        k = 2 * math.pi / lam_m
        h_base_m = (
            -r2_m2 / (2 * self.focal_length_mm * 1e-3 * (n_design - 1))
            if self.base_lens
            else 0 * r2_m2
        )
        phase = k[:, None] * (n_lam[:, None] - 1) * h_base_m[None, :]
        if self.object_distance_mm is not None:
            phase = phase + k[:, None] * r2_m2[None, :] / (2 * self.object_distance_mm * 1e-3)
        self.register_buffer(
            "base_phase",
            torch.from_numpy(np.remainder(phase, 2 * math.pi)).float(),
            persistent=False,
        )
        self.register_buffer(
            "phase_per_um", torch.from_numpy(k * (n_lam - 1) * 1e-6).float(), persistent=False
        )
        self.register_buffer("wavelengths_m", torch.from_numpy(lam_m).float(), persistent=False)
        self.register_buffer(
            "resample_matrix",
            fn.area_resample_matrix(
                self.n_out, pitch_m, self.psf_size_px, self.sensor_pitch_um * 1e-6
            ),
            persistent=False,
        )
        # float64 copies for reports and sampling checks only (numpy, not buffers)
        self._base_height_m = h_base_m
        self._base_phase_unwrapped = phase
        self.refractive_indices = tuple(float(v) for v in n_lam)

        # --- coefficients: frozen values in a buffer, trainable ones in a parameter
        init = np.zeros(j_ext)
        if initial_coefficients_um is not None:
            if isinstance(initial_coefficients_um, Mapping):
                for j, value in initial_coefficients_um.items():
                    self._check_index(int(j), "initial_coefficients_um")
                    init[int(j) - 1] = float(value)
            else:
                values = np.asarray(list(initial_coefficients_um), dtype=np.float64)
                if values.size > self.num_zernike:
                    raise ValueError(
                        f"initial_coefficients_um has {values.size} values but num_zernike="
                        f"{self.num_zernike}; give at most num_zernike values (Noll order from Z1)"
                    )
                init[: values.size] = values
        if initial_defocus_um:
            if self.num_zernike < 4:
                raise ValueError("initial_defocus_um needs num_zernike >= 4 (Z4 is defocus)")
            init[3] += initial_defocus_um
        if trainable_indices is None:
            trainable_indices = range(4, self.num_zernike + 1)
        trainable = sorted({int(j) for j in trainable_indices})
        for j in trainable:
            self._check_index(j, "trainable_indices")
        if init_std_um > 0 and trainable:
            gen = torch.Generator().manual_seed(init_seed)
            noise = torch.randn(len(trainable), generator=gen, dtype=torch.float64).numpy()
            init[np.array(trainable) - 1] += init_std_um * noise
        self.trainable_indices = tuple(trainable)
        self.register_buffer("fixed_coefficients_um", torch.from_numpy(init).float())
        self.register_buffer(
            "trainable_index",
            torch.tensor([j - 1 for j in trainable], dtype=torch.long),
            persistent=False,
        )
        self.trainable_coefficients_um = nn.Parameter(
            torch.from_numpy(init[[j - 1 for j in trainable]]).float()
        )
        if sampling_check != "off":
            self.check_phase_sampling(raise_error=sampling_check == "error")

    # ------------------------------------------------------------------ coefficients / height

    def _check_index(self, j: int, option: str) -> None:
        if not 1 <= j <= self.num_zernike:
            raise ValueError(f"{option}: Noll index {j} outside 1..num_zernike={self.num_zernike}")

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
        field = torch.zeros((*values.shape[:-1], n * n_pad), dtype=values.dtype,
                            device=values.device)
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

    @torch.no_grad()
    def check_phase_sampling(self, raise_error: bool = False) -> float:
        """Largest phase step (rad) between neighbouring pupil samples for the current surface.

        More than π means the lens phase aliases on the pupil grid. Raises (``raise_error``) or
        logs a warning naming the fix; returns the step.
        """
        h_um = self.zernike_height_um().double()
        base = torch.from_numpy(self._base_phase_unwrapped).to(h_um)
        full = base + self.phase_per_um.double()[:, None] * h_um[None, :]
        mask = self.to_grid(torch.ones(self.num_aperture, dtype=torch.bool, device=h_um.device))
        step = float(fn.max_phase_step(self.to_grid(full), mask).max())
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


def _positive(name: str, value: float) -> None:
    try:
        ok = float(value) > 0 and math.isfinite(float(value))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
