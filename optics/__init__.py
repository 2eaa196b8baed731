"""privcam optics: differentiable Zernike-lens camera (lens → PSF → linear convolution → sensor)."""

from .camera import PRESETS, Camera, CameraConfig, load_camera, save_camera
from .lens import LensConfig, ZernikeLens
from .losses import band_mtf_loss, distortion_loss, psf_mask_loss
from .materials import Material, get_material
from .sensor import Sensor
from .zernike import nm_to_noll, noll_to_nm, zernike_basis

__all__ = [
    "PRESETS",
    "Camera",
    "CameraConfig",
    "LensConfig",
    "Material",
    "Sensor",
    "ZernikeLens",
    "band_mtf_loss",
    "distortion_loss",
    "get_material",
    "load_camera",
    "nm_to_noll",
    "noll_to_nm",
    "psf_mask_loss",
    "save_camera",
    "zernike_basis",
]
