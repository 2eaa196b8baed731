"""Refractive indices against published values."""

import pytest

from optics.materials import get_material


@pytest.mark.parametrize(
    ("wavelength_nm", "n_ref"),
    [(486.13, 1.46313), (587.56, 1.45846), (656.27, 1.45637)],  # Malitson 1965, F/d/C lines
)
def test_fused_silica_malitson(wavelength_nm, n_ref):
    assert float(get_material("fused_silica").refractive_index(wavelength_nm)) == pytest.approx(
        n_ref, abs=2e-5
    )


def test_pmma_nd():
    assert float(get_material("pmma").refractive_index(589.3)) == pytest.approx(1.4905, abs=1e-3)


def test_constant_and_errors():
    assert float(get_material(1.5).refractive_index(700)) == 1.5
    assert float(get_material("1.6").refractive_index(500)) == 1.6
    with pytest.raises(ValueError, match="unknown material 'glass'"):
        get_material("glass")
    with pytest.raises(ValueError, match="wavelengths_nm"):
        get_material("pmma").refractive_index(-1.0)
    with pytest.raises(ValueError, match="outside"):
        get_material("pmma").refractive_index(5000.0)
