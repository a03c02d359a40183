"""Import ``metatensor.torch.<name>`` as ``metatensor_torch.<name>``.

``metatensor.torch`` *is* the ``metatensor_torch`` module (the same object in
``sys.modules``), so without help ``import metatensor.torch.atomistic`` would
execute ``metatensor_torch/atomistic/__init__.py`` a second time under another
name, creating a second copy of every class. This finder makes every
``metatensor.torch.<name>`` import return the ``metatensor_torch.<name>``
module instead.
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from typing import Optional, Sequence


_ALIAS = "metatensor.torch."
_TARGET = "metatensor_torch."


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target
        self._target_spec: Optional[importlib.machinery.ModuleSpec] = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = importlib.import_module(self.target)
        self._target_spec = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        # the target module was executed by `import_module` already; the import
        # system replaced its `__spec__` by the alias' one, put the real one
        # back (relative imports compare `__spec__.parent` and `__package__`)
        if self._target_spec is not None:
            module.__spec__ = self._target_spec

    def get_code(self, fullname: str) -> Optional[types.CodeType]:
        """The code of the target module (used by ``python -m
        metatensor.torch.<name>``)."""
        spec = importlib.util.find_spec(self.target)
        if spec is None or spec.loader is None:
            return None
        return spec.loader.get_code(self.target)

    def is_package(self, fullname: str) -> bool:
        spec = importlib.util.find_spec(self.target)
        return spec is not None and spec.submodule_search_locations is not None


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Optional[Sequence[str]],
        target: Optional[types.ModuleType] = None,
    ) -> Optional[importlib.machinery.ModuleSpec]:
        if not fullname.startswith(_ALIAS):
            return None
        real_name = _TARGET + fullname[len(_ALIAS) :]
        if importlib.util.find_spec(real_name) is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(real_name))


def install_alias_finder() -> None:
    """Register the ``metatensor.torch.<name>`` finder (once)."""
    for finder in sys.meta_path:
        if isinstance(finder, _AliasFinder):
            return
    sys.meta_path.insert(0, _AliasFinder())
