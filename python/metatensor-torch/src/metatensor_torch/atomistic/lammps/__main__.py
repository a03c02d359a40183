"""``python -m metatensor.torch.atomistic.lammps INPUT [--log FILE]``"""

import sys

from ._runner import main


sys.exit(main())
