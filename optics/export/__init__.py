"""Export a learned lens for fabrication and optical-design tools.

``python -m optics.export --ckpt runs/…/best.ckpt --out export/lens1`` (or ``--coefficients
lens.json``) writes one folder (atomically: built in a temporary folder next to the target, then
renamed) holding

* ``lens.json`` — schema-versioned coefficients (Noll, RMS-normalised, µm of height) with the
  normalisation radius, material, n(λ), geometry and the full CameraConfig;
  :func:`load_lens_json` rebuilds the exact camera from it;
* ``height_um.npy`` / ``height_um.csv`` / ``height_um.tif`` — the surface height (µm above its
  lowest point in the aperture; NaN, or 0 in the TIFF, outside), the TIFF 16-bit with the
  µm-per-level scale in its description and in lens.json;
* ``surface.dat`` — Zemax OpticStudio Grid Sag file (mm, analytic derivatives);
* ``zernike_standard_sag.txt`` — OpticStudio Zernike Standard Sag coefficients (mm);
* ``levels_<L>.png`` + ``levels_<L>.csv`` — multi-level maps for grayscale / multi-step
  lithography with their level → height tables, and the PSF change each quantisation causes;
* ``psf_<λ>nm.npy`` — PSFs at the sensor pitch, and ``psf.npz`` (all of them with their pitch,
  read as it is by the ``measured`` camera preset); figures (PSF, height, MTF, fabrication error);
* ``report.md`` (self-contained) and ``summary.json`` (the numbers :func:`export_lens` returns).

See ``optics/fabrication.py`` for the maths and the definitions of the figures of merit.

Modules: ``lens_file`` (lens.json), ``zemax`` (OpticStudio files), ``files`` (height / level /
PSF rasters), ``analysis`` (the report's numbers), ``figures``, ``report`` (report.md),
``package`` (:func:`export_lens`, the atomic folder write), ``cli`` (``python -m optics.export``).
"""

from .analysis import ProcessLimits
from .cli import main
from .lens_file import (
    NORMALISATION,
    ORDERING,
    SCHEMA,
    SCHEMA_VERSION,
    SUPPORTED_SCHEMA_VERSIONS,
    camera_from_lens_dict,
    lens_to_dict,
    load_lens_json,
)
from .package import DEFAULT_LEVELS, MARKER, export_lens
from .zemax import ZEMAX_MAX_STANDARD_TERMS, read_grid_sag

__all__ = [
    "DEFAULT_LEVELS",
    "MARKER",
    "NORMALISATION",
    "ORDERING",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SUPPORTED_SCHEMA_VERSIONS",
    "ZEMAX_MAX_STANDARD_TERMS",
    "ProcessLimits",
    "camera_from_lens_dict",
    "export_lens",
    "lens_to_dict",
    "load_lens_json",
    "main",
    "read_grid_sag",
]
