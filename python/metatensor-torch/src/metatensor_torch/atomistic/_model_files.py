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

The archive's root folder is always ``archive``, and the export date comes from
the ``SOURCE_DATE_EPOCH`` environment variable when it is set: with it, saving
the same model twice gives the same bytes.

Before ``torch.jit.load`` sees a file, :py:func:`check_atomistic_model` reads
every member of the archive and verifies its checksum (CRC-32): a corrupted or
truncated file raises :py:class:`ModelFileError` (a ``ValueError`` and a
``RuntimeError``) naming the file and the problem, instead of reaching
TorchScript's deserializer, which can hang or crash on corrupted code.
"""

import datetime
import json
import os
import platform
import time
import warnings
import zipfile
import zlib
from typing import Dict, Optional, Union

import torch

from .._errors import ModelFileError
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
        "date": _export_date(),
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


def _export_date() -> str:
    """The current date (ISO-8601, UTC), or the one given by the
    ``SOURCE_DATE_EPOCH`` environment variable (for reproducible files)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None:
        try:
            seconds = int(epoch)
        except ValueError:
            raise ValueError(
                f"SOURCE_DATE_EPOCH must be an integer, got {epoch!r}"
            ) from None
    else:
        seconds = time.time()
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat()


def _check_path(path: PathLike) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a string or a path, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"file at '{path}' does not exist")
    if not os.path.isfile(path):
        raise ValueError(f"'{path}' is not a file")
    return path


# members that every TorchScript archive contains, under its root folder
_REQUIRED_MEMBERS = ("data.pkl", "version")


def _corrupted(path: str, what: str) -> ModelFileError:
    return ModelFileError(f"file at '{path}' is corrupted or truncated: {what}")


def _read_archive(path: str, verify: bool) -> Dict[str, bytes]:
    """All ``<archive>/extra/<name>`` entries of the TorchScript archive at
    ``path``, by name. With ``verify``, every member is read and its checksum
    verified, and the layout of the archive is checked."""
    try:
        is_zip = zipfile.is_zipfile(path)
    except OSError as e:
        raise ModelFileError(f"can not read the file at '{path}': {e}") from e
    if not is_zip:
        raise ModelFileError(
            f"file at '{path}' is not a TorchScript archive (it is not a ZIP file), "
            "it does not contain an atomistic model"
        )
    entries = {}
    name = None
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if verify:
                _check_layout(path, infos)
            for info in infos:
                name = info.filename
                parts = name.split("/")
                is_extra = len(parts) == 3 and parts[1] == "extra" and parts[2] != ""
                if is_extra:
                    entries[parts[2]] = archive.read(info)
                elif verify:
                    with archive.open(info) as member:
                        while member.read(1024 * 1024):
                            pass
    except ModelFileError:
        raise
    except zipfile.BadZipFile as e:
        if name is not None and "CRC" in str(e):
            raise _corrupted(
                path, f"bad checksum (CRC-32) of the archive member '{name}'"
            ) from e
        where = "" if name is None else f" (archive member '{name}')"
        raise _corrupted(path, f"invalid ZIP archive{where}: {e}") from e
    except zlib.error as e:
        raise _corrupted(
            path, f"invalid compressed data in the archive member '{name}' ({e})"
        ) from e
    except (
        EOFError,
        NotImplementedError,
        OverflowError,
        ValueError,
        RuntimeError,
        OSError,
    ) as e:
        where = "" if name is None else f"the archive member '{name}': "
        raise _corrupted(path, f"{where}{type(e).__name__}: {e}") from e
    return entries


def _check_layout(path: str, infos) -> None:
    """Check that the members of a ZIP archive look like a TorchScript
    archive: unique names, all in the same root folder, with the members that
    TorchScript needs."""
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise _corrupted(path, "the ZIP archive contains duplicated members")
    roots = {name.split("/", 1)[0] for name in names}
    if len(roots) != 1 or any("/" not in name for name in names):
        raise ModelFileError(
            f"file at '{path}' is not a TorchScript archive (its members are not "
            "all in the same folder), it does not contain an atomistic model"
        )
    root = roots.pop()
    missing = [
        member for member in _REQUIRED_MEMBERS if f"{root}/{member}" not in names
    ]
    if missing:
        raise ModelFileError(
            f"file at '{path}' is not a TorchScript archive (it does not contain "
            f"{', '.join(missing)}), it does not contain an atomistic model"
        )


def _read_extra_entries(path: str) -> Dict[str, bytes]:
    """The ``extra/`` entries of the archive at ``path`` (only those are
    read and verified)."""
    return _read_archive(path, verify=False)


def _decode(path: str, entries: Dict[str, bytes], name: str) -> str:
    try:
        return entries[name].decode("utf8")
    except UnicodeDecodeError as e:
        raise _corrupted(path, f"the '{name}' entry is not valid UTF-8") from e


def read_model_metadata(path: PathLike) -> ModelMetadata:
    """Read the metadata of the model saved at ``path``, without loading the
    model.

    :param path: path to a model file saved by :py:meth:`AtomisticModel.save`
    :return: the metadata of this model
    """
    path = _check_path(path)
    entries = _read_extra_entries(path)
    if "model-metadata" not in entries:
        raise ModelFileError(f"file at '{path}' does not contain model metadata")

    metadata = ModelMetadata()
    try:
        metadata.__setstate__((_decode(path, entries, "model-metadata"),))
    except ModelFileError:
        raise
    except Exception as e:
        raise ModelFileError(
            f"file at '{path}' contains invalid model metadata: {e}"
        ) from e
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

    Every member of the archive is read and its checksum (CRC-32) verified.
    A :py:class:`ModelFileError` (a :py:class:`ValueError` and a
    :py:class:`RuntimeError`) naming the file and the problem is raised for
    corrupted or truncated files and for files that are not such models
    (including models saved by the C++ ``metatomic`` implementation, which uses
    C++ classes this package can not load); a warning is emitted when the
    model was saved with an incompatible version of ``metatensor-torch``.

    :param path: path to the model file
    """
    path = _check_path(path)
    entries = _read_archive(path, verify=True)

    if VERSION_ENTRY not in entries:
        if REFERENCE_VERSION_ENTRY in entries:
            version = _decode(path, entries, REFERENCE_VERSION_ENTRY)
            raise ModelFileError(
                f"file at '{path}' contains a model exported with the C++ metatomic "
                f"classes (metatomic-torch {version}): such models can not be loaded "
                "by this pure-Python implementation of metatensor.torch.atomistic, "
                "export the model again with metatensor.torch.atomistic"
            )
        raise ModelFileError(
            f"file at '{path}' does not contain an atomistic model (no "
            f"extra/{VERSION_ENTRY} entry)"
        )

    recorded = _decode(path, entries, VERSION_ENTRY)
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
    """Call ``write(file)`` with a binary file object on a new temporary file
    next to ``path``, ``fsync`` it, then move it to ``path``: a failed save
    never leaves a half-written file behind (see ``metatensor.io._atomic``
    for the temporary files)."""
    from metatensor.io._atomic import write_atomically as write_file

    write_file(os.fspath(path), write)
