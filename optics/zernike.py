"""Zernike polynomials in Noll's convention (Noll 1976, JOSA 66, 207).

* Single index j >= 1 ↔ (n, m); within a radial order n, |m| increases with j and, for m != 0,
  even j carries cos(|m|θ) (m > 0) and odd j carries sin(|m|θ) (m < 0).
* Normalisation: the mean of Z_j·Z_k over the unit disk is δ_jk (RMS 1 on the disk):
  N = sqrt(2(n+1)) for m != 0 and sqrt(n+1) for m = 0.

Everything here is pure numpy in float64 (the basis is built once and cast by callers).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "nm_to_noll",
    "noll_to_nm",
    "num_terms_for_order",
    "radial_coefficients",
    "radial_polynomial",
    "rms_norm",
    "zernike_basis",
    "zernike_name",
]

_NAMES = {
    1: "piston",
    2: "tip (x tilt)",
    3: "tilt (y tilt)",
    4: "defocus",
    5: "oblique astigmatism",
    6: "vertical astigmatism",
    7: "vertical coma",
    8: "horizontal coma",
    9: "vertical trefoil",
    10: "oblique trefoil",
    11: "primary spherical",
}


def noll_to_nm(j: int) -> tuple[int, int]:
    """Noll index j (>= 1) → (n, m), m signed: m > 0 ↔ cos(mθ), m < 0 ↔ sin(|m|θ)."""
    if int(j) != j or j < 1:
        raise ValueError(f"Noll index must be an integer >= 1, got {j!r}")
    j = int(j)
    n = 0
    while (n + 1) * (n + 2) // 2 < j:
        n += 1
    k = j - n * (n + 1) // 2  # 1-based position within radial order n
    # |m| sequence of row n: n even → 0, 2, 2, 4, 4, ...; n odd → 1, 1, 3, 3, ...
    m_abs = 2 * (k // 2) if n % 2 == 0 else 2 * ((k - 1) // 2) + 1
    if m_abs == 0:
        return n, 0
    return n, (m_abs if j % 2 == 0 else -m_abs)


def nm_to_noll(n: int, m: int) -> int:
    """(n, m) → Noll index; inverse of :func:`noll_to_nm`."""
    if n < 0 or abs(m) > n or (n - abs(m)) % 2:
        raise ValueError(f"invalid Zernike order (n={n}, m={m}): need |m| <= n and n - |m| even")
    first = n * (n + 1) // 2 + 1
    for j in range(first, first + n + 1):
        if noll_to_nm(j) == (n, m):
            return j
    raise AssertionError("unreachable")  # pragma: no cover


def num_terms_for_order(n_max: int) -> int:
    """Number of Noll terms with radial order <= n_max."""
    return (n_max + 1) * (n_max + 2) // 2


def zernike_name(j: int) -> str:
    """Human-readable name of Noll term j (classical names up to j = 11)."""
    n, m = noll_to_nm(j)
    return _NAMES.get(j, f"Z{j} (n={n}, m={m})")


def radial_coefficients(n: int, m_abs: int) -> np.ndarray:
    """Coefficients a_s (s = 0..(n−|m|)/2) of R_n^|m|(ρ) = Σ_s a_s ρ^(n−2s), the explicit
    factorial sum (float64, exact enough to n≈30)."""
    return np.array(
        [
            (-1) ** s
            * math.factorial(n - s)
            / (
                math.factorial(s)
                * math.factorial((n + m_abs) // 2 - s)
                * math.factorial((n - m_abs) // 2 - s)
            )
            for s in range((n - m_abs) // 2 + 1)
        ]
    )


def rms_norm(n: int, m: int) -> float:
    """Noll's RMS normalisation of Z_n^m: sqrt(n + 1) for m = 0, sqrt(2 (n + 1)) otherwise."""
    return math.sqrt(n + 1) if m == 0 else math.sqrt(2 * (n + 1))


def radial_polynomial(n: int, m_abs: int, rho: np.ndarray) -> np.ndarray:
    """R_n^|m|(ρ) from :func:`radial_coefficients`, evaluated in float64."""
    rho = np.asarray(rho, dtype=np.float64)
    out = np.zeros_like(rho)
    for s, coef in enumerate(radial_coefficients(n, m_abs)):
        out += coef * rho ** (n - 2 * s)
    return out


def zernike_basis(
    num_terms: int, rho: np.ndarray, theta: np.ndarray, dtype: type = np.float64
) -> np.ndarray:
    """Noll-ordered, RMS-normalised Zernike terms Z_1..Z_num_terms.

    Args:
        num_terms: J >= 1.
        rho, theta: polar coordinates of shape S (ρ normalised to the unit disk; values with
            ρ > 1 are evaluated too, callers mask them).
        dtype: output dtype; each term is evaluated in float64 first.

    Returns:
        array of shape (J, *S).
    """
    if num_terms < 1:
        raise ValueError(f"num_terms must be >= 1, got {num_terms}: a lens needs Zernike terms")
    rho = np.asarray(rho, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    out = np.empty((num_terms, *rho.shape), dtype=dtype)
    key, radial = None, None  # cos/sin partners are adjacent in Noll order: cache one radial
    for j in range(1, num_terms + 1):
        n, m = noll_to_nm(j)
        if key != (n, abs(m)):
            key, radial = (n, abs(m)), radial_polynomial(n, abs(m), rho)
        if m == 0:
            out[j - 1] = rms_norm(n, m) * radial
        elif m > 0:
            out[j - 1] = rms_norm(n, m) * radial * np.cos(m * theta)
        else:
            out[j - 1] = rms_norm(n, m) * radial * np.sin(-m * theta)
    return out
