"""Model files: the extra entries stored next to the TorchScript code when
saving an :py:class:`AtomisticModel`, and the functions reading them back
without loading the model.

A saved model is a TorchScript archive (a ZIP file) created by
``torch.jit.save``, with these entries in ``<archive>/extra/``:

* ``torch-version``: ``torch.__version__`` when the model was saved;
* ``metatensor-torch-version``: ``metatensor_torch.__version__`` when the model
  was saved. This is the entry identifying models saved by this package; the
  reference C++ implementation (``metatomic``) writes ``metatomic-version``
  instead, and its models use C++ classes that this pure-Python package can not
  load;
* ``extensions`` and ``extensions-deps``: JSON lists of ``{"name", "path"}``
  objects, always empty here (the TorchScript classes of this package are
  written in Python and stored in the model file, there is no extension library
  to record);
* ``export-metadata``: JSON object with the ``date`` (ISO-8601, UTC) and the
  ``platform`` (``<machine>-<system>``) of the export, and the
  ``extensions_directory`` given to ``save``, if any;
* ``model-metadata``: the :py:class:`ModelMetadata` of the model, as JSON.
"""

import datetime
import json
import os
import pathlib
import platform
import warnings
import zipfile
from typing import Dict, Optional, Union

import torch

from .._version import __version__
from ._metadata import ModelMetadata


PathLike = Union[str, os.PathLike]

VERSION_ENTRY = "metatensor-torch-version"
REFERENCE_VERSION_ENTRY = "metatomic-version"


def extra_files(
    metadata: ModelMetadata, collect_extensions: Optional[PathLike]
) -> Dict[str, str]:
    """The extra entries to store in a model file.

    :param metadata: metadata of the model
    :param collect_extensions: the ``collect_extensions`` argument of ``save``
    """
    export_metadata = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "platform": f"{platform.machine()}-{platform.system()}",
    }
    if collect_extensions is not None:
        export_metadata["extensions_directory"] = str(collect_extensions)

    return {
        "torch-version": torch.__version__,
        VERSION_ENTRY: __version__,
        "extensions": json.dumps([]),
        "extensions-deps": json.dumps([]),
        "export-metadata": json.dumps(export_metadata),
        "model-metadata": metadata.__getstate__()[0],
    }


def _check_path(path: PathLike) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a string or a path, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"file at '{path}' does not exist")
    if not os.path.isfile(path):
        raise ValueError(f"'{path}' is not a file")
    return path


def _read_extra_entries(path: str) -> Dict[str, bytes]:
    """All ``<archive>/extra/<name>`` entries of the TorchScript archive at
    ``path``, by name."""
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"file at '{path}' is not a TorchScript archive (it is not a ZIP file), "
            "it does not contain an atomistic model"
        )
    entries = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            parts = info.filename.split("/")
            if len(parts) == 3 and parts[1] == "extra" and parts[2] != "":
                entries[parts[2]] = archive.read(info)
    return entries


def read_model_metadata(path: PathLike) -> ModelMetadata:
    """Read the metadata of the model saved at ``path``, without loading the
    model.

    :param path: path to a model file saved by :py:meth:`AtomisticModel.save`
    :return: the metadata of this model
    """
    path = _check_path(path)
    entries = _read_extra_entries(path)
    if "model-metadata" not in entries:
        raise ValueError(f"file at '{path}' does not contain model metadata")

    metadata = ModelMetadata()
    metadata.__setstate__((entries["model-metadata"].decode("utf8"),))
    return metadata


def _version_compatible(recorded: str, current: str) -> bool:
    """Same major version, and same minor version while the major is 0."""
    recorded_parts = recorded.split(".")
    current_parts = current.split(".")
    if len(recorded_parts) < 2 or len(current_parts) < 2:
        return False
    if recorded_parts[0] != current_parts[0]:
        return False
    if current_parts[0] == "0" and recorded_parts[1] != current_parts[1]:
        return False
    return True


def check_atomistic_model(path: PathLike) -> None:
    """Check that the file at ``path`` contains an atomistic model saved by this
    package (with :py:meth:`AtomisticModel.save`), and that it can be loaded
    with the current version of this package.

    A :py:class:`ValueError` is raised for files that are not such models
    (including models saved by the C++ ``metatomic`` implementation, which uses
    C++ classes this package can not load); a warning is emitted when the
    model was saved with an incompatible version of ``metatensor-torch``.

    :param path: path to the model file
    """
    path = _check_path(path)
    entries = _read_extra_entries(path)

    if VERSION_ENTRY not in entries:
        if REFERENCE_VERSION_ENTRY in entries:
            version = entries[REFERENCE_VERSION_ENTRY].decode("utf8")
            raise ValueError(
                f"file at '{path}' contains a model exported with the C++ metatomic "
                f"classes (metatomic-torch {version}): such models can not be loaded "
                "by this pure-Python implementation of metatensor.torch.atomistic, "
                "export the model again with metatensor.torch.atomistic"
            )
        raise ValueError(f"file at '{path}' does not contain an atomistic model")

    recorded = entries[VERSION_ENTRY].decode("utf8")
    if not _version_compatible(recorded, __version__):
        warnings.warn(
            f"the model at '{path}' was saved with metatensor-torch v{recorded}, "
            f"which is not compatible with the current version (v{__version__}); "
            "loading it might fail or give wrong results",
            stacklevel=2,
        )


def load_model_extensions(
    path: PathLike, extensions_directory: Optional[PathLike] = None
) -> None:
    """Load the TorchScript extensions used by the model at ``path``.

    The TorchScript classes of this package are written in Python and their
    code is stored inside the model file, so models saved by this package
    record no extension library (the ``extensions`` entry of the file is an
    empty list) and this function has nothing to load. It is kept for
    compatibility with the reference API, and only checks the arguments.

    :param path: path to the model file
    :param extensions_directory: folder where extensions were collected when
        saving the model (unused)
    """
    _check_path(path)
    if extensions_directory is not None and not isinstance(
        extensions_directory, (str, os.PathLike)
    ):
        raise TypeError(
            "`extensions_directory` must be a string or a path, got "
            f"{type(extensions_directory).__name__}"
        )


def write_atomically(path: PathLike, write) -> None:
    """Call ``write(temporary_path)``, then move the temporary file to
    ``path``: a failed save never leaves a half-written file behind."""
    path = pathlib.Path(os.fspath(path))
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(str(temporary))
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
