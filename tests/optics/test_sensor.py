"""optics.sensor.Sensor: response, quantisation levels, noise-free pass-through, binning,
validation."""

import numpy as np
import pytest
import torch

from optics import functional as fn
from optics.sensor import RESPONSES, Sensor


@pytest.mark.parametrize("response", RESPONSES)
def test_decode_inverts_encode(response):
    sensor = Sensor(response=response, gamma=2.2)
    x = torch.linspace(0, 1, 257, dtype=torch.float64)
    np.testing.assert_allclose(sensor.decode(sensor.encode(x)), x, atol=1e-12)


def test_gamma_response_is_the_offset_power_law():
    sensor = Sensor(response="gamma", gamma=2.0)
    x = torch.tensor([0.0, 0.25, 1.0], dtype=torch.float64)
    eps = fn._GAMMA_EPS  # ((x + ε)^(1/γ) − ε^(1/γ)) / ((1 + ε)^(1/γ) − ε^(1/γ))
    expected = ((x + eps).sqrt() - eps**0.5) / ((1 + eps) ** 0.5 - eps**0.5)
    np.testing.assert_allclose(sensor.encode(x), expected, atol=1e-12)
    assert float(sensor.encode(x)[[0, 2]].sum()) == pytest.approx(1.0)  # 0 → 0, 1 → 1


def test_noise_free_linear_sensor_only_quantises():
    sensor = Sensor(response="linear", read_noise_std=0.0, quantize_bits=4)
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    out = sensor(x)
    np.testing.assert_allclose(out, torch.round(x * 15) / 15, atol=1e-12)  # 2⁴ − 1 steps
    assert len(torch.unique(out)) <= 16


def test_binning_averages_blocks_and_keeps_the_size():
    sensor = Sensor(
        response="linear",
        read_noise_std=0.0,
        quantize_bits=None,
        lowres_size=2,
        upsample_mode="nearest",
    )
    x = torch.arange(16, dtype=torch.float64).reshape(1, 1, 4, 4) / 16
    out = sensor(x)
    assert out.shape == x.shape
    np.testing.assert_allclose(out[0, 0, 0, 0], x[0, 0, :2, :2].mean(), atol=1e-12)


@pytest.mark.parametrize(
    "option, value, match",
    [
        ("response", "film", "response"),
        ("gamma", 0.0, "gamma"),
        ("read_noise_std", -0.1, "noise"),
        ("quantize_bits", 17, "quantize_bits"),
        ("lowres_size", 0, "lowres_size"),
        ("upsample_mode", "area", "upsample_mode"),
    ],
)
def test_invalid_options_name_the_field(option, value, match):
    with pytest.raises(ValueError, match=match):
        Sensor(**{option: value})
