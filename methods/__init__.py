"""Transfer methods, one module per family, each a plugin on the contract in ``benchmark.method``.

Importing this package registers them all; ``benchmark.method.METHODS`` does so on its first lookup.
"""

from methods import (  # noqa: F401  (importing registers each family)
    adafm,
    adam,
    cdc,
    dcl,
    finetune,
    freeze,
    hypermod,
    minegan,
    reconstruction,
    regularized,
    rick,
    rssa,
    scaleshift,
)
