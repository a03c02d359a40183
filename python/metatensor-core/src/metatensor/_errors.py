"""The error type raised for invalid metadata and malformed data."""


class MetatensorError(RuntimeError):
    """Error raised for invalid parameters, malformed ``.mts`` data and other
    failures inside metatensor.

    This is a :py:class:`RuntimeError` (and an :py:class:`Exception`): code
    written for the reference ``metatensor.torch``, which raises
    ``RuntimeError`` for these errors, catches it with ``except RuntimeError``.

    The message starts with a category prefix (``"invalid parameter: "``,
    ``"serialization format error: "``, ``"io error: "`` or ``"internal metatensor
    error (this is likely a bug, please report it): "``), like the reference
    implementation.

    :param message: the full error message
    :param status: a numeric status code, kept for compatibility (``-1`` for
        invalid parameters, ``-3`` for io, ``-4`` for serialization, ``-5`` for
        internal errors)
    """

    def __init__(self, message: str, status: int = -1):
        super().__init__(message)
        self.message = message
        self.status = status


def invalid_parameter(message: str) -> MetatensorError:
    """Build an ``invalid parameter`` :py:class:`MetatensorError`."""
    return MetatensorError("invalid parameter: " + message, -1)


def serialization_error(message: str) -> MetatensorError:
    """Build a ``serialization format error`` :py:class:`MetatensorError`."""
    return MetatensorError("serialization format error: " + message, -4)


def io_error(message: str) -> MetatensorError:
    """Build an ``io error`` :py:class:`MetatensorError`."""
    return MetatensorError("io error: " + message, -3)


def internal_error(message: str) -> MetatensorError:
    """Build an ``internal metatensor error`` :py:class:`MetatensorError`."""
    return MetatensorError(
        "internal metatensor error (this is likely a bug, please report it): "
        + message,
        -5,
    )
