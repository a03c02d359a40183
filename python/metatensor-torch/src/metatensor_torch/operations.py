"""``metatensor.torch.operations``: the operations of ``metatensor-operations``
compiled with TorchScript for the classes of ``metatensor.torch``.

There is a single implementation of the operations: the source files of
``metatensor_operations`` are executed a second time, under the module name
``metatensor_torch.operations``, after a ``_backend`` module providing the torch
classes and ``torch.jit.script`` has been registered as
``metatensor_torch.operations._backend``. Every public operation is then a
``torch.jit.ScriptFunction``, usable from TorchScript code and savable with
``torch.jit.save``.

Importing this module replaces it in ``sys.modules`` by the compiled operations.
"""

import sys

from ._single_source import execute_with_backend


_NAME = "metatensor_torch.operations"

_operations = execute_with_backend(_NAME, "metatensor_operations", {})

# `import metatensor_torch.operations` gives the compiled operations
sys.modules[_NAME] = _operations
sys.modules["metatensor.torch.operations"] = _operations
