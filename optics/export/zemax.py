"""Zemax OpticStudio surface files: Grid Sag (``surface.dat``, analytic derivatives) and
Zernike Standard Sag coefficients (``zernike_standard_sag.txt``), plus a Grid Sag reader."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .. import fabrication as fab
from ..lens import ZernikeLens

__all__ = [
    "ZEMAX_MAX_STANDARD_TERMS",
    "grid_sag_samples",
    "read_grid_sag",
    "write_grid_sag",
    "write_zernike_standard_sag",
]

ZEMAX_MAX_STANDARD_TERMS = 231  # OpticStudio Zernike Standard Sag: terms up to radial order 20


def grid_sag_samples(model: fab.SurfaceModel, n: int, pitch_um: float) -> np.ndarray:
    """Analytic sag on the Grid Sag grid: (n+1)² points centred on the vertex, x, y =
    (i − n/2)·pitch — the lens's n² pupil samples (rows/columns 0..n−1) plus one column at +x
    and one row at −y, all outside the aperture, so the grid is symmetric as OpticStudio
    expects and needs no decentre.

    Returns:
        (5, n+1, n+1): z (mm), dz/dx, dz/dy (mm/mm), d²z/dxdy (1/mm), nodata (1 outside the
        aperture, where the rest is 0); row 0 = +y, column 0 = −x.
    """
    m = n + 1
    i = np.arange(m) - n / 2
    coords = i * pitch_um * 1e-3
    x, y = np.meshgrid(coords, coords[::-1])
    inside = 4 * (i[None, :] ** 2 + i[:, None] ** 2) < n * n
    out = np.zeros((5, m, m))
    out[4] = 1.0
    out[:4, inside] = np.stack(model.sag_mm(x[inside], y[inside]))
    out[4, inside] = 0.0
    return out


def write_grid_sag(path: Path, samples: np.ndarray, pitch_um: float) -> None:
    """Zemax Grid Sag file from :func:`grid_sag_samples` (lens units mm, unitflag 0)."""
    m = samples.shape[-1]
    pitch_mm = pitch_um * 1e-3
    with open(path, "w") as f:
        f.write(f"{m} {m} {pitch_mm:.12g} {pitch_mm:.12g} 0 0 0\n")
        np.savetxt(f, samples.reshape(5, -1).T, fmt=["%.12e", "%.12e", "%.12e", "%.12e", "%d"])


def read_grid_sag(path: str | Path) -> dict[str, Any]:
    """Parse a Grid Sag file into ``z``, ``dzdx``, ``dzdy``, ``d2zdxdy`` (ny, nx) arrays in file
    order (row 0 = first data row = +y), ``nodata`` (ny, nx) bool and the header values."""
    with open(path) as f:
        head = f.readline().split()
        data = np.loadtxt(f, ndmin=2)
    nx, ny = int(head[0]), int(head[1])
    cols = data.reshape(ny, nx, 5)
    return {
        "nx": nx,
        "ny": ny,
        "delx": float(head[2]),
        "dely": float(head[3]),
        "unitflag": int(head[4]),
        "xdec": float(head[5]),
        "ydec": float(head[6]),
        "z": cols[..., 0],
        "dzdx": cols[..., 1],
        "dzdy": cols[..., 2],
        "d2zdxdy": cols[..., 3],
        "nodata": cols[..., 4] != 0,
    }


def write_zernike_standard_sag(path: Path, model: fab.SurfaceModel, lens: ZernikeLens) -> str:
    """Write the Zernike Standard Sag coefficients (mm); returns a note when terms beyond
    OpticStudio's limit were left out ("" otherwise)."""
    coeffs = model.coefficients_um[: lens.num_zernike]
    q = len(coeffs)
    tail = coeffs[ZEMAX_MAX_STANDARD_TERMS:]
    tail_rms_um = float(np.sqrt(np.sum(tail**2)))  # RMS-normalised → RMS of the dropped part
    note = ""
    if q > ZEMAX_MAX_STANDARD_TERMS:
        note = (
            f"OpticStudio's Zernike Standard Sag surface takes at most {ZEMAX_MAX_STANDARD_TERMS}"
            f" terms; this lens has {q}. Entering only Z1..Z{ZEMAX_MAX_STANDARD_TERMS} leaves out"
            f" {tail_rms_um * 1e3:.3g} nm RMS of surface height — use surface.dat (Grid Sag,"
            " full surface) when that matters."
        )
    radius = model.base_radius_mm
    lines = [
        "# privcam export: OpticStudio 'Zernike Standard Sag' surface coefficients",
        "# sag z(x, y) = c r^2 / (1 + sqrt(1 - (1 + k) c^2 r^2)) + sum_i Zi * Z_i(rho, theta),",
        "#   c = 1/radius_mm, k = conic (the base lens is the paraboloid h = r^2/(2 radius)),",
        "#   rho = r / normalization_radius_mm, theta measured from +x towards +y.",
        "# Zernike Standard (OpticStudio) = Noll order and Noll RMS normalisation (Z2 = 2 rho",
        "#   cos theta, Z3 = 2 rho sin theta, Z5 = sqrt6 rho^2 sin 2theta, Z7 = sqrt8 (3 rho^3 - 2",
        "#   rho) sin theta, ...): identical to privcam's convention, so no reordering or",
        "#   renormalisation; only the unit changes, um -> mm (lens units, mm).",
        "# Sign: z = glass height h (more glass = larger z), i.e. the sag of the structured",
        "#   face when it is the exit face of a plano element (glass on the -z side). For the",
        "#   structured face as entrance face (glass on +z), negate the radius and every Zi.",
        "# Extrapolate = 0: the surface is defined inside the normalization radius only.",
    ]
    if note:
        lines.append("# NOTE: " + note)
    lines += [
        f"normalization_radius_mm {model.normalisation_radius_mm:.12g}",
        f"radius_mm {radius:.12g}" if math.isfinite(radius) else "radius_mm inf",
        "conic -1" if math.isfinite(radius) else "conic 0",
        f"number_of_terms {q}",
    ]
    lines += [f"Z{j} {c * 1e-3:.12e}" for j, c in enumerate(coeffs, start=1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return note
