"""``python -m optics.export ...`` (see :mod:`optics.export.cli`)."""

import sys

from .cli import main

sys.exit(main())
