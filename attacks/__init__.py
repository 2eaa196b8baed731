"""privcam attacks: can an attacker undo the lens blur?

Non-blind (known PSF): Wiener family and scikit-image references (``attacks.nonblind``, maths in
``attacks.functional``); blind: DeblurGAN-v2-style and U-Net attackers trained with Lightning
on (capture, original) pairs (``attacks.learned``); privacy metrics (``attacks.metrics``); the
harness that runs them all and writes the report (``attacks.harness.run_attacks``, CLI
``python evaluate.py attack``).
"""

from .harness import ATTACKS, run_attacks

__all__ = ["ATTACKS", "run_attacks"]
