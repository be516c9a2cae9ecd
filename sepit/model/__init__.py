"""SEPIT model components (DESIGN section 2). Never imports from train/ or serve/.

Importing this package registers the sepit configs and models with the transformers Auto classes.
"""

from sepit.model import auto  # noqa: F401  (registration side effect)
