"""Refractive index models n(λ) for lens materials.

Sellmeier: n² − 1 = Σ_i B_i λ² / (λ² − C_i), λ in µm.
* Fused silica: Malitson 1965, JOSA 55, 1205 (0.21–3.71 µm).
* PMMA: Szczurowski 2013 single-term fit (0.40–1.62 µm), n_d = 1.4905.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Material", "get_material"]


@dataclass(frozen=True)
class Material:
    """A dispersive (Sellmeier) or constant-index lens material."""

    name: str
    sellmeier_b: tuple[float, ...] = ()
    sellmeier_c_um2: tuple[float, ...] = ()
    constant_index: float | None = None
    valid_range_nm: tuple[float, float] = (0.0, float("inf"))

    def refractive_index(self, wavelengths_nm: np.ndarray | float) -> np.ndarray:
        """n(λ) for wavelengths in nm (array or scalar → float64 array)."""
        lam_nm = np.asarray(wavelengths_nm, dtype=np.float64)
        if np.any(lam_nm <= 0):
            raise ValueError(f"wavelengths_nm must be positive, got {lam_nm.tolist()}")
        if self.constant_index is not None:
            return np.full_like(lam_nm, self.constant_index)
        lo, hi = self.valid_range_nm
        if np.any((lam_nm < lo) | (lam_nm > hi)):
            raise ValueError(
                f"wavelengths_nm {lam_nm.tolist()} outside the {self.name} Sellmeier model's "
                f"range {lo:g}–{hi:g} nm; use a constant refractive index instead"
            )
        lam2 = (lam_nm * 1e-3) ** 2
        n2 = 1.0 + sum(
            b * lam2 / (lam2 - c)
            for b, c in zip(self.sellmeier_b, self.sellmeier_c_um2, strict=True)
        )
        return np.sqrt(n2)


FUSED_SILICA = Material(
    name="fused_silica",
    sellmeier_b=(0.6961663, 0.4079426, 0.8974794),
    sellmeier_c_um2=(0.0684043**2, 0.1162414**2, 9.896161**2),
    valid_range_nm=(210.0, 3710.0),
)
PMMA = Material(
    name="pmma",
    sellmeier_b=(1.1819,),
    sellmeier_c_um2=(0.011313,),
    valid_range_nm=(400.0, 1620.0),
)
_MATERIALS = {"fused_silica": FUSED_SILICA, "pmma": PMMA}


def get_material(spec: str | float) -> Material:
    """'fused_silica', 'pmma', or a number (constant index, e.g. 1.5)."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        if not spec > 1.0:
            raise ValueError(f"constant refractive index must be > 1, got {spec}")
        return Material(name=f"constant_{spec:g}", constant_index=float(spec))
    key = str(spec).strip().lower().replace(" ", "_").replace("-", "_")
    try:
        return _MATERIALS[key]
    except KeyError:
        try:
            return get_material(float(key))
        except ValueError:
            pass
        raise ValueError(
            f"unknown material {spec!r}: use one of {sorted(_MATERIALS)} or a constant index > 1"
        ) from None
