"""Creation of new TensorMaps and TensorBlocks: ``*_like`` functions (same
metadata, new values), ``block_from_array`` and ``one_hot``."""

from typing import List, Optional, Union

from . import _dispatch
from ._backend import (
    Labels,
    TensorBlock,
    TensorMap,
    torch_jit_annotate,
    torch_jit_script,
)
from ._utils import (
    _check_block_type,
    _check_gradient_presence_raise,
    _check_labels_type,
    _check_tensor_type,
)


# ======================================================================== #
# *_like                                                                   #
# ======================================================================== #


def _gradients_to_fill(
    block: TensorBlock, gradients: Optional[Union[List[str], str]], fname: str
) -> List[str]:
    """Normalize the ``gradients`` argument of the ``*_like`` functions, and
    check that all requested gradients exist in ``block``."""
    if gradients is None:
        return block.gradients_list()
    if isinstance(gradients, str):
        parameters = [gradients]
    else:
        parameters = torch_jit_annotate(List[str], [])
        for parameter in gradients:
            parameters.append(parameter)
    _check_gradient_presence_raise(block, parameters, fname)
    return parameters


def _fill(kind: str, array, requires_grad: bool):
    if kind == "zeros":
        return _dispatch.zeros_like(array, None, requires_grad)
    elif kind == "ones":
        return _dispatch.ones_like(array, None, requires_grad)
    elif kind == "empty":
        return _dispatch.empty_like(array, None, requires_grad)
    else:
        return _dispatch.rand_like(array, None, requires_grad)


def _like_block(
    block: TensorBlock,
    gradients: Optional[Union[List[str], str]],
    requires_grad: bool,
    kind: str,
    fname: str,
) -> TensorBlock:
    parameters = _gradients_to_fill(block, gradients, fname)
    result = TensorBlock(
        _fill(kind, block.values, requires_grad),
        block.samples,
        block.components,
        block.properties,
    )
    # random values require gradients on the gradients too
    gradients_requires_grad = requires_grad and kind == "random"
    for parameter in parameters:
        gradient = block.gradient(parameter)
        if len(gradient.gradients_list()) != 0:
            raise NotImplementedError("gradients of gradients are not supported")
        result.add_gradient(
            parameter,
            TensorBlock(
                _fill(kind, gradient.values, gradients_requires_grad),
                gradient.samples,
                gradient.components,
                gradient.properties,
            ),
        )
    return result


def _like_tensor(
    tensor: TensorMap,
    gradients: Optional[Union[List[str], str]],
    requires_grad: bool,
    kind: str,
    fname: str,
) -> TensorMap:
    _check_tensor_type(tensor, "tensor")
    blocks = torch_jit_annotate(List[TensorBlock], [])
    for block in tensor.blocks():
        blocks.append(_like_block(block, gradients, requires_grad, kind, fname))
    return TensorMap(tensor.keys, blocks)


@torch_jit_script
def zeros_like(
    tensor: TensorMap,
    gradients: Optional[Union[List[str], str]] = None,
    requires_grad: bool = False,
) -> TensorMap:
    """A :py:class:`TensorMap` with the same metadata as ``tensor`` (and the same
    array kind, dtype and device), filled with zeros.

    :param tensor: input :py:class:`TensorMap`
    :param gradients: which gradients to keep (filled with zeros too): ``None``
        for all of them, a single parameter name or a list of names. ``[]``
        gives no gradients.
    :param requires_grad: should autograd record operations on the returned
        values? Only relevant for torch tensors.
    """
    return _like_tensor(tensor, gradients, requires_grad, "zeros", "zeros_like")


@torch_jit_script
def zeros_like_block(
    block: TensorBlock,
    gradients: Optional[Union[List[str], str]] = None,
    requires_grad: bool = False,
) -> TensorBlock:
    """A :py:class:`TensorBlock` with the same metadata as ``block``, filled with
    zeros. See :py:func:`zeros_like`.

    :param block: input :py:class:`TensorBlock`
    :param gradients: which gradients to keep, see :py:func:`zeros_like`
    :param requires_grad: see :py:func:`zeros_like`
    """
    _check_block_type(block, "block")
    return _like_block(block, gradients, requires_grad, "zeros", "zeros_like")


@torch_jit_script
def ones_like(
    tensor: TensorMap,
    gradients: Optional[Union[List[str], str]] = None,
    requires_grad: bool = False,
) -> TensorMap:
    """A :py:class:`TensorMap` with the same metadata as ``tensor`` (and the same
    array kind, dtype and device), filled with ones.

    :param tensor: input :py:class:`TensorMap`
    :param gradients: which gradients to keep (filled with ones too): ``None``
        for all of them, a single parameter name or a list of names. ``[]``
        gives no gradients.
    :param requires_grad: should autograd record operations on the returned
        values? Only relevant for torch tensors.
    """
    return _like_tensor(tensor, gradients, requires_grad, "ones", "ones_like")


@torch_jit_script
def ones_like_block(
    block: TensorBlock,
    gradients: Optional[Union[List[str], str]] = None,
    requires_grad: bool = False,
) -> TensorBlock:
    """A :py:class:`TensorBlock` with the same metadata as ``block``, filled with
    ones. See :py:func:`ones_like`.

    :param block: input :py:class:`TensorBlock`
    :param gradients: which gradients to keep, see :py:func:`ones_like`
    :param requires_grad: see :py:func:`ones_like`
    """
    _check_block_type(block, "block")
    return _like_block(block, gradients, requires_grad, "ones", "ones_like")


@torch_jit_script
def empty_like(
    tensor: TensorMap,
    gradients: Optional[Union[List[str], str]] = None,
    requires_grad: bool = False,
) -> TensorMap:
    """A :py:class:`TensorMap` with the same metadata as ``tensor`` (and the same
    array kind, dtype and device), with uninitialized values.

    :param tensor: input :py:class:`TensorMap`
    :param gradients: which gradients to keep (uninitialized too): ``None`` for
        all of them, a single parameter name or a list of names. ``[]`` gives no
        gradients.
    :param requires_grad: should autograd record operations on the returned
        values? Only relevant for torch tensors.
    """
    return _like_tensor(tensor, gradients, requires_grad, "empty", "empty_like")


@torch_jit_script
def empty_like_block(
    block: TensorBlock,
    gradients: Optional[Union[List[str], str]] = None,
    requires_grad: bool = False,
) -> TensorBlock:
    """A :py:class:`TensorBlock` with the same metadata as ``block``, with
    uninitialized values. See :py:func:`empty_like`.

    :param block: input :py:class:`TensorBlock`
    :param gradients: which gradients to keep, see :py:func:`empty_like`
    :param requires_grad: see :py:func:`empty_like`
    """
    _check_block_type(block, "block")
    return _like_block(block, gradients, requires_grad, "empty", "empty_like")


@torch_jit_script
def random_uniform_like(
    tensor: TensorMap,
    gradients: Optional[Union[List[str], str]] = None,
    requires_grad: bool = False,
) -> TensorMap:
    """A :py:class:`TensorMap` with the same metadata as ``tensor`` (and the same
    array kind, dtype and device), filled with random numbers uniformly
    distributed in ``[0, 1)`` (``numpy.random.rand`` or ``torch.rand``).

    :param tensor: input :py:class:`TensorMap`
    :param gradients: which gradients to keep (random too): ``None`` for all of
        them, a single parameter name or a list of names. ``[]`` gives no
        gradients.
    :param requires_grad: should autograd record operations on the returned
        values and gradients? Only relevant for torch tensors.
    """
    return _like_tensor(
        tensor, gradients, requires_grad, "random", "random_uniform_like"
    )


@torch_jit_script
def random_uniform_like_block(
    block: TensorBlock,
    gradients: Optional[Union[List[str], str]] = None,
    requires_grad: bool = False,
) -> TensorBlock:
    """A :py:class:`TensorBlock` with the same metadata as ``block``, filled with
    random numbers uniformly distributed in ``[0, 1)``. See
    :py:func:`random_uniform_like`.

    :param block: input :py:class:`TensorBlock`
    :param gradients: which gradients to keep, see :py:func:`random_uniform_like`
    :param requires_grad: see :py:func:`random_uniform_like`
    """
    _check_block_type(block, "block")
    return _like_block(block, gradients, requires_grad, "random", "random_uniform_like")


# ======================================================================== #
# block_from_array                                                         #
# ======================================================================== #


def _grid_labels(names: List[str], shape: List[int], like) -> Labels:
    """Labels with one entry per point of the ``shape`` grid (row-major order),
    on the device of ``like``."""
    values = _dispatch.index_grid(shape, like)
    return Labels(names, values, assume_unique=True)


@torch_jit_script
def block_from_array(
    array,
    sample_names: Optional[List[str]] = None,
    component_names: Optional[List[str]] = None,
    property_names: Optional[List[str]] = None,
) -> TensorBlock:
    """Create a :py:class:`TensorBlock` from an array (numpy or torch), with
    automatically generated metadata.

    The first axes of the array are the samples (one axis per sample name), the
    last ones the properties (one axis per property name), and the axes in
    between are components. With several sample (or property) names, the
    corresponding axes are flattened in row-major order, and the labels contain
    the index of each entry along each of these axes. Each label entry is the
    position along its axis, on the device of ``array``.

    :param array: array with at least two dimensions
    :param sample_names: names of the sample dimensions, default ``["sample"]``
    :param component_names: names of the components, default ``["component_1",
        "component_2", ...]``
    :param property_names: names of the property dimensions, default
        ``["property"]``
    :return: a new :py:class:`TensorBlock` sharing data with ``array`` (when the
        reshape does not need a copy)
    """
    shape = [int(s) for s in array.shape]
    if len(shape) < 2:
        raise ValueError(f"`array` must have at least two dimensions, got {len(shape)}")

    if sample_names is None:
        sample_names = ["sample"]
    if property_names is None:
        property_names = ["property"]

    n_samples = len(sample_names)
    n_properties = len(property_names)
    if n_samples == 0 or n_properties == 0:
        raise ValueError(
            "`sample_names` and `property_names` must contain at least one name"
        )
    n_components = len(shape) - n_samples - n_properties
    if n_components < 0:
        raise ValueError(
            f"the array has {len(shape)} dimensions, which is not enough for "
            f"{n_samples} sample names and {n_properties} property names"
        )

    if component_names is None:
        component_names = [f"component_{i + 1}" for i in range(n_components)]
    elif len(component_names) != n_components:
        raise ValueError(
            f"got {len(component_names)} component names but the array has "
            f"{n_components} component dimensions (array shape: {shape}, "
            f"{n_samples} sample names and {n_properties} property names)"
        )

    sample_shape = shape[:n_samples]
    component_shape = shape[n_samples : n_samples + n_components]
    property_shape = shape[n_samples + n_components :]

    samples = _grid_labels(sample_names, sample_shape, array)
    properties = _grid_labels(property_names, property_shape, array)
    components = torch_jit_annotate(List[Labels], [])
    for i in range(n_components):
        components.append(
            _grid_labels([component_names[i]], [component_shape[i]], array)
        )

    new_shape = [len(samples)] + component_shape + [len(properties)]
    values = _dispatch.reshape(array, new_shape)
    return TensorBlock(values, samples, components, properties)


# ======================================================================== #
# one_hot                                                                  #
# ======================================================================== #


@torch_jit_script
def one_hot(labels: Labels, dimension: Labels):
    """One-hot encoding of one dimension of ``labels``.

    ``dimension`` contains a single name and the possible values of this
    dimension; the result is an array of shape ``(len(labels),
    len(dimension))`` (with the integer dtype and the device of the labels
    values) where each row contains a single ``1``, at the position of the
    corresponding entry of ``labels`` in ``dimension``.

    >>> import numpy as np
    >>> from metatensor import Labels
    >>> labels = Labels(["atom", "type"], np.array([[0, 6], [1, 1], [2, 6]]))
    >>> dimension = Labels(["type"], np.array([[1], [6]]))
    >>> one_hot(labels, dimension)
    array([[0, 1],
           [1, 0],
           [0, 1]], dtype=int32)

    :param labels: the labels to encode
    :param dimension: Labels with a single dimension, which must also be a
        dimension of ``labels``, and all its possible values
    """
    _check_labels_type(labels, "labels")
    _check_labels_type(dimension, "dimension")
    if len(dimension.names) != 1:
        raise ValueError(
            "only one label dimension can be extracted as one-hot encoding, "
            f"but `dimension` contains {len(dimension.names)} names"
        )
    name = dimension.names[0]
    if name not in labels.names:
        raise ValueError(f"'{name}' not found in the dimensions of these Labels")

    positions, missing = _dispatch.find_positions(
        labels.column(name), dimension.values[:, 0]
    )
    if missing is not None:
        raise ValueError(
            f"{name}={missing} is present in the labels, but was not found in "
            "the dimension"
        )

    # on the device of `labels`, even if `dimension` lives somewhere else
    eye = _dispatch.eye_like(labels.values, len(dimension))
    return _dispatch.take(eye, positions, 0)


__all__ = [
    "block_from_array",
    "empty_like",
    "empty_like_block",
    "one_hot",
    "ones_like",
    "ones_like_block",
    "random_uniform_like",
    "random_uniform_like_block",
    "zeros_like",
    "zeros_like_block",
]
