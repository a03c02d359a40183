"""Reductions (sum, mean, variance and standard deviation) over some of the
dimensions of the samples or properties: ``{sum,mean,var,std}_over_samples``
and ``{sum,mean,var,std}_over_properties``, with their ``_block`` variants.

The entries sharing the same values for the dimensions that are *not* reduced
are grouped together; the groups come out sorted. Gradients are propagated with
the chain rule:

- sum: the gradients of the entries of a group are summed;
- mean: the summed gradients are divided by the number of entries in the group
  (the reference divided by the number of merged gradient rows instead, which
  is wrong for sparse gradients, see S2 in the specification);
- var (population variance): ``2/N sum_i (x_i - mean) grad x_i``;
- std: ``grad var / (2 std)``, set to 0 where ``std`` is 0.

Reductions over properties broadcast the group sizes along the properties axis,
so they work for blocks with components (S3/S10 in the specification).
"""

from typing import List, Tuple, Union

from . import _dispatch
from ._backend import (
    Array,
    Labels,
    TensorBlock,
    TensorMap,
    torch_jit_annotate,
    torch_jit_is_scripting,
    torch_jit_script,
)
from ._utils import (
    _check_block_type,
    _check_no_gradients_of_gradients,
    _check_tensor_type,
)


def _normalize_names(names: Union[str, List[str]], argument: str) -> List[str]:
    result = torch_jit_annotate(List[str], [])
    if isinstance(names, str):
        result.append(names)
        return result

    if not torch_jit_is_scripting():
        if not isinstance(names, (list, tuple)):
            raise TypeError(
                f"`{argument}` must be a string or a list of strings, not {type(names)}"
            )
        for name in names:
            if not isinstance(name, str):
                raise TypeError(
                    f"`{argument}` must be a string or a list of strings, got "
                    f"an element of type {type(name)}"
                )

    for name in names:
        result.append(name)
    return result


def _check_names(
    names: List[str], existing: List[str], kind: str, container: str
) -> None:
    for name in names:
        if name not in existing:
            raise ValueError(
                f"one of the requested {kind} name ({name}) is not part of "
                f"this {container}"
            )


def _grouping(labels: Labels, reduced: List[str]) -> Tuple[Labels, Array]:
    """Group the entries of ``labels`` on the dimensions not in ``reduced``.

    Returns the Labels of the groups (sorted) and, for each entry, the index of
    its group.
    """
    values = labels.values
    columns = torch_jit_annotate(List[int], [])
    remaining = torch_jit_annotate(List[str], [])
    for i, name in enumerate(labels.names):
        if name not in reduced:
            columns.append(i)
            remaining.append(name)

    count = values.shape[0]
    if len(remaining) == 0:
        if count == 0:
            groups = _dispatch.full_like(values, 0, [0, 1])
        else:
            groups = _dispatch.full_like(values, 0, [1, 1])
        inverse = _dispatch.index_like(_dispatch.arange_like(count, values) * 0, values)
        return Labels(["_"], groups, assume_unique=True), inverse

    kept = _dispatch.take_list(values, columns, 1)
    if count == 0:
        inverse = _dispatch.index_like(_dispatch.arange_like(0, values), values)
        return Labels(remaining, kept, assume_unique=True), inverse

    groups, inverse = _dispatch.unique_rows(kept)
    return Labels(remaining, groups, assume_unique=True), inverse


def _broadcast_first(array: Array, ndim: int) -> Array:
    """Reshape a 1-D array to broadcast along the first axis of an array with
    ``ndim`` dimensions."""
    shape = [int(array.shape[0])]
    for _ in range(ndim - 1):
        shape.append(1)
    return _dispatch.reshape(array, shape)


def _expand_rows(array: Array, n_gradient_components: int) -> Array:
    """Add ``n_gradient_components`` axes of size 1 after the first axis of
    ``array``, to broadcast it against a gradient array."""
    shape = [int(s) for s in array.shape]
    new_shape = [shape[0]]
    for _ in range(n_gradient_components):
        new_shape.append(1)
    for s in shape[1:]:
        new_shape.append(s)
    return _dispatch.reshape(array, new_shape)


def _safe_sqrt(array: Array) -> Array:
    """``sqrt(array)``, written such that the autograd derivative is 0 (instead
    of infinite) where ``array`` is 0, like the explicit gradients of ``std``."""
    zero = array == 0
    root = _dispatch.sqrt(_dispatch.where(zero, array + 1, array))
    return _dispatch.where(zero, array * 0, root)


def _safe_divide(numerator: Array, denominator: Array) -> Array:
    """``numerator / denominator``, with 0 where ``denominator`` is 0."""
    zero = denominator == 0
    safe = _dispatch.where(zero, denominator + 1, denominator)
    return _dispatch.where(zero, numerator * 0, numerator / safe)


# ======================================================================== #
# over samples                                                             #
# ======================================================================== #


def _reduce_samples_block(
    block: TensorBlock, reduced: List[str], reduction: str
) -> TensorBlock:
    _check_no_gradients_of_gradients(block)
    values = block.values
    ndim = len(values.shape)
    samples, inverse = _grouping(block.samples, reduced)
    n_groups = len(samples)

    if values.shape[0] == 0:
        shape = [int(s) for s in values.shape]
        result = TensorBlock(
            _dispatch.zeros_like(values, shape),
            samples,
            block.components,
            block.properties,
        )
        for parameter, gradient in block.gradients():
            result.add_gradient(
                parameter,
                TensorBlock(
                    _dispatch.zeros_like(gradient.values),
                    gradient.samples,
                    gradient.components,
                    gradient.properties,
                ),
            )
        return result

    summed = _dispatch.segment_sum(values, inverse, n_groups, 0)
    counts = summed
    if reduction != "sum":
        counts = _dispatch.bincount(inverse, n_groups, values)
        counts = _broadcast_first(counts, ndim)

    mean = summed
    centered = values
    std = summed
    if reduction == "sum":
        new_values = summed
    else:
        mean = summed / counts
        new_values = mean
        if reduction == "var" or reduction == "std":
            centered = values - _dispatch.take(mean, inverse, 0)
            new_values = (
                _dispatch.segment_sum(centered * centered, inverse, n_groups, 0)
                / counts
            )
            if reduction == "std":
                std = _safe_sqrt(new_values)
                new_values = std

    result = TensorBlock(new_values, samples, block.components, block.properties)

    for parameter, gradient in block.gradients():
        gradient_values = gradient.values
        gradient_samples = gradient.samples.values
        n_gradient_components = len(gradient.components) - len(block.components)

        # group of each gradient row, then merge rows with the same group and
        # the same values for the other dimensions
        new_samples, merged_inverse = _dispatch.merge_gradient_rows(
            gradient_samples, inverse
        )
        n_rows = new_samples.shape[0]

        if reduction == "sum":
            new_gradient = _dispatch.segment_sum(
                gradient_values, merged_inverse, n_rows, 0
            )
        else:
            # group of each of the new gradient rows
            new_rows_group = _dispatch.index_like(new_samples[:, 0], values)
            rows_counts = _dispatch.take(counts, new_rows_group, 0)
            rows_counts = _expand_rows(rows_counts, n_gradient_components)
            if reduction == "mean":
                new_gradient = (
                    _dispatch.segment_sum(gradient_values, merged_inverse, n_rows, 0)
                    / rows_counts
                )
            else:
                # (x - mean) for the sample of each gradient row
                row_samples = _dispatch.index_like(gradient_samples[:, 0], values)
                rows_centered = _expand_rows(
                    _dispatch.take(centered, row_samples, 0), n_gradient_components
                )
                # 1/N sum_i (x_i - mean) grad x_i
                half = (
                    _dispatch.segment_sum(
                        rows_centered * gradient_values, merged_inverse, n_rows, 0
                    )
                    / rows_counts
                )
                if reduction == "var":
                    new_gradient = 2 * half
                else:
                    rows_std = _expand_rows(
                        _dispatch.take(std, new_rows_group, 0), n_gradient_components
                    )
                    new_gradient = _safe_divide(half, rows_std)

        result.add_gradient(
            parameter,
            TensorBlock(
                new_gradient,
                Labels(gradient.samples.names, new_samples, assume_unique=True),
                gradient.components,
                gradient.properties,
            ),
        )

    return result


def _reduce_samples(
    tensor: TensorMap, sample_names: Union[str, List[str]], reduction: str
) -> TensorMap:
    _check_tensor_type(tensor, "tensor")
    names = _normalize_names(sample_names, "sample_names")
    if len(tensor) != 0:
        _check_names(names, tensor.sample_names, "sample", "TensorMap")

    blocks = torch_jit_annotate(List[TensorBlock], [])
    for block in tensor.blocks():
        blocks.append(_reduce_samples_block(block, names, reduction))
    return TensorMap(tensor.keys, blocks)


def _reduce_samples_block_checked(
    block: TensorBlock, sample_names: Union[str, List[str]], reduction: str
) -> TensorBlock:
    _check_block_type(block, "block")
    names = _normalize_names(sample_names, "sample_names")
    _check_names(names, block.samples.names, "sample", "TensorBlock")
    return _reduce_samples_block(block, names, reduction)


# ======================================================================== #
# over properties                                                          #
# ======================================================================== #


def _reduce_properties_block(
    block: TensorBlock, reduced: List[str], reduction: str
) -> TensorBlock:
    _check_no_gradients_of_gradients(block)
    values = block.values
    axis = len(values.shape) - 1
    properties, inverse = _grouping(block.properties, reduced)
    n_groups = len(properties)

    if values.shape[axis] == 0:
        result = TensorBlock(
            _dispatch.zeros_like(values), block.samples, block.components, properties
        )
        for parameter, gradient in block.gradients():
            result.add_gradient(
                parameter,
                TensorBlock(
                    _dispatch.zeros_like(gradient.values),
                    gradient.samples,
                    gradient.components,
                    properties,
                ),
            )
        return result

    summed = _dispatch.segment_sum(values, inverse, n_groups, axis)
    # broadcast along the last axis
    counts = summed
    if reduction != "sum":
        counts = _dispatch.bincount(inverse, n_groups, values)

    centered = values
    std = summed
    if reduction == "sum":
        new_values = summed
    else:
        mean = summed / counts
        new_values = mean
        if reduction == "var" or reduction == "std":
            centered = values - _dispatch.take(mean, inverse, axis)
            new_values = (
                _dispatch.segment_sum(centered * centered, inverse, n_groups, axis)
                / counts
            )
            if reduction == "std":
                std = _safe_sqrt(new_values)
                new_values = std

    result = TensorBlock(new_values, block.samples, block.components, properties)

    for parameter, gradient in block.gradients():
        gradient_values = gradient.values
        gradient_axis = len(gradient_values.shape) - 1
        n_gradient_components = len(gradient.components) - len(block.components)

        summed_gradient = _dispatch.segment_sum(
            gradient_values, inverse, n_groups, gradient_axis
        )
        if reduction == "sum":
            new_gradient = summed_gradient
        elif reduction == "mean":
            new_gradient = summed_gradient / counts
        else:
            row_samples = _dispatch.index_like(gradient.samples.values[:, 0], values)
            rows_centered = _expand_rows(
                _dispatch.take(centered, row_samples, 0), n_gradient_components
            )
            half = (
                _dispatch.segment_sum(
                    rows_centered * gradient_values, inverse, n_groups, gradient_axis
                )
                / counts
            )
            if reduction == "var":
                new_gradient = 2 * half
            else:
                rows_std = _expand_rows(
                    _dispatch.take(std, row_samples, 0), n_gradient_components
                )
                new_gradient = _safe_divide(half, rows_std)

        result.add_gradient(
            parameter,
            TensorBlock(
                new_gradient, gradient.samples, gradient.components, properties
            ),
        )

    return result


def _reduce_properties(
    tensor: TensorMap, property_names: Union[str, List[str]], reduction: str
) -> TensorMap:
    _check_tensor_type(tensor, "tensor")
    names = _normalize_names(property_names, "property_names")
    if len(tensor) != 0:
        _check_names(names, tensor.property_names, "property", "TensorMap")

    blocks = torch_jit_annotate(List[TensorBlock], [])
    for block in tensor.blocks():
        blocks.append(_reduce_properties_block(block, names, reduction))
    return TensorMap(tensor.keys, blocks)


def _reduce_properties_block_checked(
    block: TensorBlock, property_names: Union[str, List[str]], reduction: str
) -> TensorBlock:
    _check_block_type(block, "block")
    names = _normalize_names(property_names, "property_names")
    _check_names(names, block.properties.names, "property", "TensorBlock")
    return _reduce_properties_block(block, names, reduction)


@torch_jit_script
def sum_over_samples(
    tensor: TensorMap, sample_names: Union[str, List[str]]
) -> TensorMap:
    """Sum over the sample dimensions ``sample_names`` of all the blocks of a
    :py:class:`TensorMap`.

    The samples of each block are grouped by their values for the other dimensions,
    and the result contains the sum of the values of the entries in each group, with
    one entry per group (sorted). When all dimensions are reduced, the result has a
    single entry ``Labels("_", [[0]])``; with ``[]``, each entry is its own group
    (this sorts the samples). Gradients are propagated.

    :param tensor: input tensor
    :param sample_names: name(s) of the sample dimension(s) to reduce over
    :return: a new tensor with the same keys
    """
    return _reduce_samples(tensor, sample_names, "sum")


@torch_jit_script
def sum_over_samples_block(
    block: TensorBlock, sample_names: Union[List[str], str]
) -> TensorBlock:
    """Sum over the sample dimensions ``sample_names`` of a :py:class:`TensorBlock`,
    see :py:func:`sum_over_samples`.

    :param block: input block
    :param sample_names: name(s) of the sample dimension(s) to reduce over
    :return: a new block
    """
    return _reduce_samples_block_checked(block, sample_names, "sum")


@torch_jit_script
def sum_over_properties(
    tensor: TensorMap, property_names: Union[str, List[str]]
) -> TensorMap:
    """Sum over the property dimensions ``property_names`` of all the blocks of a
    :py:class:`TensorMap`.

    The properties of each block are grouped by their values for the other
    dimensions, and the result contains the sum of the values of the entries in each
    group, with one entry per group (sorted). When all dimensions are reduced, the
    result has a single entry ``Labels("_", [[0]])``; with ``[]``, each entry is its
    own group (this sorts the properties). Gradients are propagated.

    :param tensor: input tensor
    :param property_names: name(s) of the property dimension(s) to reduce over
    :return: a new tensor with the same keys
    """
    return _reduce_properties(tensor, property_names, "sum")


@torch_jit_script
def sum_over_properties_block(
    block: TensorBlock, property_names: Union[List[str], str]
) -> TensorBlock:
    """Sum over the property dimensions ``property_names`` of a
    :py:class:`TensorBlock`, see :py:func:`sum_over_properties`.

    :param block: input block
    :param property_names: name(s) of the property dimension(s) to reduce over
    :return: a new block
    """
    return _reduce_properties_block_checked(block, property_names, "sum")


@torch_jit_script
def mean_over_samples(
    tensor: TensorMap, sample_names: Union[str, List[str]]
) -> TensorMap:
    """Average over the sample dimensions ``sample_names`` of all the blocks of a
    :py:class:`TensorMap`.

    The samples of each block are grouped by their values for the other dimensions,
    and the result contains the mean of the values of the entries in each group,
    with one entry per group (sorted). When all dimensions are reduced, the result
    has a single entry ``Labels("_", [[0]])``; with ``[]``, each entry is its own
    group (this sorts the samples). Gradients are propagated.

    :param tensor: input tensor
    :param sample_names: name(s) of the sample dimension(s) to reduce over
    :return: a new tensor with the same keys
    """
    return _reduce_samples(tensor, sample_names, "mean")


@torch_jit_script
def mean_over_samples_block(
    block: TensorBlock, sample_names: Union[List[str], str]
) -> TensorBlock:
    """Average over the sample dimensions ``sample_names`` of a
    :py:class:`TensorBlock`, see :py:func:`mean_over_samples`.

    :param block: input block
    :param sample_names: name(s) of the sample dimension(s) to reduce over
    :return: a new block
    """
    return _reduce_samples_block_checked(block, sample_names, "mean")


@torch_jit_script
def mean_over_properties(
    tensor: TensorMap, property_names: Union[str, List[str]]
) -> TensorMap:
    """Average over the property dimensions ``property_names`` of all the blocks of a
    :py:class:`TensorMap`.

    The properties of each block are grouped by their values for the other
    dimensions, and the result contains the mean of the values of the entries in
    each group, with one entry per group (sorted). When all dimensions are reduced,
    the result has a single entry ``Labels("_", [[0]])``; with ``[]``, each entry is
    its own group (this sorts the properties). Gradients are propagated.

    :param tensor: input tensor
    :param property_names: name(s) of the property dimension(s) to reduce over
    :return: a new tensor with the same keys
    """
    return _reduce_properties(tensor, property_names, "mean")


@torch_jit_script
def mean_over_properties_block(
    block: TensorBlock, property_names: Union[List[str], str]
) -> TensorBlock:
    """Average over the property dimensions ``property_names`` of a
    :py:class:`TensorBlock`, see :py:func:`mean_over_properties`.

    :param block: input block
    :param property_names: name(s) of the property dimension(s) to reduce over
    :return: a new block
    """
    return _reduce_properties_block_checked(block, property_names, "mean")


@torch_jit_script
def var_over_samples(
    tensor: TensorMap, sample_names: Union[str, List[str]]
) -> TensorMap:
    """Variance over the sample dimensions ``sample_names`` of all the blocks of a
    :py:class:`TensorMap`.

    The samples of each block are grouped by their values for the other dimensions,
    and the result contains the (population) variance of the values of the entries
    in each group, with one entry per group (sorted). When all dimensions are
    reduced, the result has a single entry ``Labels("_", [[0]])``; with ``[]``, each
    entry is its own group (this sorts the samples). Gradients are propagated.

    :param tensor: input tensor
    :param sample_names: name(s) of the sample dimension(s) to reduce over
    :return: a new tensor with the same keys
    """
    return _reduce_samples(tensor, sample_names, "var")


@torch_jit_script
def var_over_samples_block(
    block: TensorBlock, sample_names: Union[List[str], str]
) -> TensorBlock:
    """Variance over the sample dimensions ``sample_names`` of a
    :py:class:`TensorBlock`, see :py:func:`var_over_samples`.

    :param block: input block
    :param sample_names: name(s) of the sample dimension(s) to reduce over
    :return: a new block
    """
    return _reduce_samples_block_checked(block, sample_names, "var")


@torch_jit_script
def var_over_properties(
    tensor: TensorMap, property_names: Union[str, List[str]]
) -> TensorMap:
    """Variance over the property dimensions ``property_names`` of all the blocks of a
    :py:class:`TensorMap`.

    The properties of each block are grouped by their values for the other
    dimensions, and the result contains the (population) variance of the values of
    the entries in each group, with one entry per group (sorted). When all
    dimensions are reduced, the result has a single entry ``Labels("_", [[0]])``;
    with ``[]``, each entry is its own group (this sorts the properties). Gradients
    are propagated.

    :param tensor: input tensor
    :param property_names: name(s) of the property dimension(s) to reduce over
    :return: a new tensor with the same keys
    """
    return _reduce_properties(tensor, property_names, "var")


@torch_jit_script
def var_over_properties_block(
    block: TensorBlock, property_names: Union[List[str], str]
) -> TensorBlock:
    """Variance over the property dimensions ``property_names`` of a
    :py:class:`TensorBlock`, see :py:func:`var_over_properties`.

    :param block: input block
    :param property_names: name(s) of the property dimension(s) to reduce over
    :return: a new block
    """
    return _reduce_properties_block_checked(block, property_names, "var")


@torch_jit_script
def std_over_samples(
    tensor: TensorMap, sample_names: Union[str, List[str]]
) -> TensorMap:
    """Standard deviation over the sample dimensions ``sample_names`` of all the blocks
    of a :py:class:`TensorMap`.

    The samples of each block are grouped by their values for the other dimensions,
    and the result contains the (population) standard deviation of the values of the
    entries in each group, with one entry per group (sorted). When all dimensions
    are reduced, the result has a single entry ``Labels("_", [[0]])``; with ``[]``,
    each entry is its own group (this sorts the samples). Gradients are propagated.

    :param tensor: input tensor
    :param sample_names: name(s) of the sample dimension(s) to reduce over
    :return: a new tensor with the same keys
    """
    return _reduce_samples(tensor, sample_names, "std")


@torch_jit_script
def std_over_samples_block(
    block: TensorBlock, sample_names: Union[List[str], str]
) -> TensorBlock:
    """Standard deviation over the sample dimensions ``sample_names`` of a
    :py:class:`TensorBlock`, see :py:func:`std_over_samples`.

    :param block: input block
    :param sample_names: name(s) of the sample dimension(s) to reduce over
    :return: a new block
    """
    return _reduce_samples_block_checked(block, sample_names, "std")


@torch_jit_script
def std_over_properties(
    tensor: TensorMap, property_names: Union[str, List[str]]
) -> TensorMap:
    """Standard deviation over the property dimensions ``property_names`` of all the
    blocks of a :py:class:`TensorMap`.

    The properties of each block are grouped by their values for the other
    dimensions, and the result contains the (population) standard deviation of the
    values of the entries in each group, with one entry per group (sorted). When all
    dimensions are reduced, the result has a single entry ``Labels("_", [[0]])``;
    with ``[]``, each entry is its own group (this sorts the properties). Gradients
    are propagated.

    :param tensor: input tensor
    :param property_names: name(s) of the property dimension(s) to reduce over
    :return: a new tensor with the same keys
    """
    return _reduce_properties(tensor, property_names, "std")


@torch_jit_script
def std_over_properties_block(
    block: TensorBlock, property_names: Union[List[str], str]
) -> TensorBlock:
    """Standard deviation over the property dimensions ``property_names`` of a
    :py:class:`TensorBlock`, see :py:func:`std_over_properties`.

    :param block: input block
    :param property_names: name(s) of the property dimension(s) to reduce over
    :return: a new block
    """
    return _reduce_properties_block_checked(block, property_names, "std")


__all__ = [
    "mean_over_properties",
    "mean_over_properties_block",
    "mean_over_samples",
    "mean_over_samples_block",
    "std_over_properties",
    "std_over_properties_block",
    "std_over_samples",
    "std_over_samples_block",
    "sum_over_properties",
    "sum_over_properties_block",
    "sum_over_samples",
    "sum_over_samples_block",
    "var_over_properties",
    "var_over_properties_block",
    "var_over_samples",
    "var_over_samples_block",
]
