"""Exception classes of metatensor-torch.

The reference ``metatensor.torch`` (a C++ extension) raises ``RuntimeError``
for most errors. This package raises :py:class:`ValueError` for invalid
arguments, as Python code does; the classes below derive from both, so that
``except ValueError`` and code written for the reference (``except
RuntimeError``) both catch them. The errors of ``metatensor.torch.load*`` are
:py:class:`metatensor.MetatensorError`, which is also a ``RuntimeError``.

Inside TorchScript code, errors surface as ``torch.jit.Error`` whatever the
class raised.
"""


class InvalidParameterError(ValueError, RuntimeError):
    """Invalid arguments given to a constructor of metatensor-torch (for
    example values of a :py:class:`metatensor.torch.TensorBlock` with a shape
    that does not match its labels)."""


class ModelFileError(ValueError, RuntimeError):
    """A model file can not be loaded: it is corrupted or truncated (bad
    checksum, broken archive), it does not contain an atomistic model, or it was
    written by another implementation. The message names the file and what is
    wrong."""
