"""privcam attacks: can an attacker undo the lens blur?

Non-blind (known PSF): Wiener family and scikit-image references (``attacks.nonblind``, maths in
``attacks.functional``); blind: DeblurGAN-v2-style and U-Net attackers trained with Lightning
on (capture, original) pairs (``attacks.learned``, registered in ``attacks.attackers``); privacy
metrics (``attacks.metrics``); the harness that runs them all and writes the report
(``attacks.harness.run_attacks``, CLI ``python evaluate.py attack``).
"""

from typing import Any

from .harness import run_attacks

__all__ = ["ATTACKS", "run_attacks"]


def __getattr__(name: str) -> Any:
    """``ATTACKS``: every ``--attack`` name, in report order, read from the registry."""
    if name == "ATTACKS":
        from .registry import attack_names

        return attack_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
