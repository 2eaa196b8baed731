"""D4 symmetry of the sampled aperture: the Zernike sum is evaluated on 1/8 of the disk.

The sampled disk is invariant under the 8 symmetries of the square (D4), and each symmetry maps
a Zernike term to a signed mix of its cos/sin partner. So the basis is stored only on the
fundamental domain 0 <= y <= x, every symmetry gets its own transformed coefficient vector, and
one gather places the 8 partial height maps on the aperture (see ``ZernikeLens``).
"""

from __future__ import annotations

import math

import numpy as np

from .zernike import nm_to_noll, noll_to_nm

__all__ = ["aperture_layout", "complete_terms", "symmetry_coefficient_maps"]

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


def symmetry_coefficient_maps(num_terms: int) -> np.ndarray:
    """(8, J, J) matrices M_g with h(g·q) = Σ_k (c @ M_g)_k Z_k(q) for q in the fundamental domain.

    For a cos/sin pair of angular order m and g = (s, α): c'_cos = c_cos cos mα + c_sin sin mα,
    c'_sin = s(c_sin cos mα − c_cos sin mα). J must include every partner (see complete_terms).
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


def complete_terms(num_terms: int) -> int:
    """Smallest J' >= J such that every cos term has its sin partner (and vice versa)."""
    n, m = noll_to_nm(num_terms)
    return max(num_terms, nm_to_noll(n, -m))
