"""The :py:class:`TensorBlock` class: one dense array with its metadata.

Ownership model
---------------
A block stores the user's ``values`` array by reference and shares its
:py:class:`Labels` with copies, maps and gradients (Labels are immutable).
The only mutable piece of metadata is the set of gradients, so the blocks stored
*inside* another object (a gradient added with :py:meth:`TensorBlock.add_gradient`,
a block stored in a :py:class:`TensorMap`) are cheap private wrappers, made when
they are stored. Unlike the reference implementation the objects given by the
user are never consumed: they stay usable, and adding gradients to them later does
not change the containers they were put in. Blocks obtained from containers
(:py:meth:`TensorMap.block`, :py:meth:`TensorBlock.gradient`, ...) are *views*:
fresh wrappers around the same values, labels and gradients, which refuse
:py:meth:`TensorBlock.add_gradient`.

Internal fast paths (for code inside the package that already has valid pieces):

* :py:meth:`TensorBlock._unchecked` builds a block without any check;
* :py:meth:`TensorBlock._add_gradient_unchecked` attaches a gradient without any
  check.
"""

import html
from typing import Any, Dict, Generator, List, Optional, Sequence, Tuple

import numpy as np

from . import _array, _to
from ._errors import invalid_parameter
from ._labels import Labels


_CPU = "CPU:0"


def _values_device_name(values: Any) -> str:
    if type(values) is np.ndarray:
        return _CPU
    return _array.device_name(values)


def _labels_device_name(labels: Labels) -> str:
    values = labels._values
    if type(values) is np.ndarray:
        return _CPU
    return _array.device_name(values)


def _names_list(names: Sequence[str]) -> str:
    return "[" + ", ".join(names) + "]"


def _check_components_rules(components: Sequence[Labels]) -> None:
    """Each component has exactly one dimension and at least one entry."""
    for i, component in enumerate(components):
        names = component._names
        if len(names) != 1:
            raise invalid_parameter(
                "component labels must have a single dimension, got "
                f"{len(names)}: {_names_list(names)} for component {i}"
            )
        if component._values.shape[0] == 0:
            raise invalid_parameter(
                f"component '{names[0]}' must contain at least one entry, got 0"
            )


def _check_block(
    values: Any,
    samples: Labels,
    components: Sequence[Labels],
    properties: Labels,
) -> None:
    """The metadata checks of the reference, in the same order and with the same
    messages. This is on the hot path of block creation: it only looks at
    shapes, names and array types (``Labels._values``/``Labels._names`` are the
    stored array and names tuple)."""
    shape = values.shape
    ndim = len(shape)
    n_components = len(components)
    if ndim != n_components + 2:
        raise invalid_parameter(
            f"invalid block: the values have {ndim} dimensions, but we have "
            f"{n_components + 2} separate labels (1 for samples, {n_components} "
            "for components and 1 for properties)"
        )

    n_samples = samples._values.shape[0]
    if shape[0] != n_samples:
        raise invalid_parameter(
            f"invalid block: the values shape along axis 0 is {shape[0]} but we "
            f"have {n_samples} sample label entries"
        )

    if n_components != 0:
        if n_components > 1:
            all_names = [name for c in components for name in c._names]
            if len(set(all_names)) != len(all_names):
                raise invalid_parameter(
                    "invalid block: some of the component dimensions appear more "
                    "than once in component labels"
                )
        for i, component in enumerate(components):
            count = component._values.shape[0]
            if shape[i + 1] != count:
                raise invalid_parameter(
                    f"invalid block: the values shape along axis {i + 1} is "
                    f"{shape[i + 1]} but we have {count} entries for the "
                    "corresponding component"
                )

    n_properties = properties._values.shape[0]
    if shape[-1] != n_properties:
        raise invalid_parameter(
            f"invalid block: the values shape along axis {ndim - 1} is "
            f"{shape[-1]} but we have {n_properties} property label entries"
        )

    ndarray = np.ndarray
    if (
        type(values) is not ndarray
        or type(samples._values) is not ndarray
        or type(properties._values) is not ndarray
        or any(type(c._values) is not ndarray for c in components)
    ):
        device = _values_device_name(values)
        to_check = [("samples", samples)]
        to_check += [("components", component) for component in components]
        to_check.append(("properties", properties))
        for what, labels in to_check:
            labels_device = _labels_device_name(labels)
            if labels_device != device:
                raise invalid_parameter(
                    f"invalid block: values and {what} must be on the same device, "
                    f"got '{device}' and '{labels_device}'"
                )

    if n_components != 0:
        _check_components_rules(components)


def _same_origin(a: Any, b: Any) -> bool:
    if type(a) is type(b):
        return True
    return _array.origin(a) == _array.origin(b)


def _same_device(a: Any, b: Any) -> bool:
    if type(a) is np.ndarray and type(b) is np.ndarray:
        return True
    return _values_device_name(a) == _values_device_name(b)


def _labels_equal(a: Labels, b: Labels) -> bool:
    return a is b or a == b


def _sample_range(samples: Labels) -> Optional[Tuple[int, int]]:
    """Minimum and maximum of the first column of non-empty samples, or ``None``
    if the data can not be read (e.g. torch ``meta`` tensors)."""
    values = samples._values
    if type(values) is not np.ndarray:
        try:
            values = _array.to_numpy(values)
        except Exception:  # noqa: BLE001 - data-less devices
            return None
    column = values[:, 0]
    if column.shape[0] <= 64:
        # faster than numpy reductions for small arrays
        column = column.tolist()
        return min(column), max(column)
    return int(column.min()), int(column.max())


def _convert_labels(labels: Labels, values: Any, parsed, cache: Dict) -> Labels:
    """Convert ``labels`` to live next to the (already converted) ``values``,
    following the ``arrays`` and ``device`` arguments of ``to()``. ``cache`` maps
    ``id(labels)`` to the converted labels, so that labels shared before the
    conversion stay shared after it."""
    key = id(labels)
    cached = cache.get(key)
    if cached is not None:
        return cached[1]

    labels_torch = _array.is_torch(labels.values)
    kind = _array.array_kind(values)
    new = labels
    if kind == _array.TORCH:
        if labels_torch or parsed.arrays == "torch" or values.device.type != "cpu":
            new = labels.to(
                arrays="torch", device=values.device, non_blocking=parsed.non_blocking
            )
    elif kind == _array.NUMPY:
        if labels_torch and parsed.arrays == "numpy":
            new = labels.to(arrays="numpy")
    elif parsed.arrays is not None:
        new = labels.to(arrays=parsed.arrays)

    # keep a reference to `labels` so the id can not be reused during the call
    cache[key] = (labels, new)
    return new


def _operations(operator: str):
    try:
        import metatensor_operations
    except ModuleNotFoundError as e:
        if e.name != "metatensor_operations":
            raise
        raise ImportError(
            f"the `{operator}` operator requires the metatensor-operations package, "
            "install it with `pip install metatensor-operations`"
        ) from None
    return metatensor_operations


class TensorBlock:
    """Basic building block of a :py:class:`TensorMap`: a dense array of values
    with metadata describing each of its dimensions.

    The values have shape ``(len(samples), len(components[0]), ...,
    len(properties))``. The array is stored by reference (no copy): it can be a
    numpy array, a torch tensor or any array implementing the Python array API
    standard.

    :param values: array of values
    :param samples: metadata of the first dimension
    :param components: metadata of the intermediate dimensions, each with a single
        dimension
    :param properties: metadata of the last dimension
    """

    __slots__ = (
        "_values",
        "_samples",
        "_components",
        "_properties",
        "_gradients",
        "_is_view",
        "_path",
        "__weakref__",
    )

    def __init__(
        self,
        values: Any,
        samples: Labels,
        components: Sequence[Labels],
        properties: Labels,
    ):
        if not isinstance(samples, Labels):
            raise TypeError(f"`samples` must be metatensor Labels, not {type(samples)}")

        components = tuple(components)
        for component in components:
            if not isinstance(component, Labels):
                raise TypeError(
                    "`components` elements must be metatensor Labels, "
                    f"not {type(component)}"
                )

        if not isinstance(properties, Labels):
            raise TypeError(
                f"`properties` must be metatensor Labels, not {type(properties)}"
            )

        if _array.array_kind(values) is None:
            raise TypeError(
                "`values` must be a numpy array, a torch tensor or an array API "
                f"array, not {type(values)}"
            )

        _check_block(values, samples, components, properties)

        self._values = values
        self._samples = samples
        self._components = components
        self._properties = properties
        self._gradients: Dict[str, TensorBlock] = {}
        self._is_view = False
        self._path: Tuple[str, ...] = ()

    # ------------------------------------------------------------------ #
    # internal constructors                                                #
    # ------------------------------------------------------------------ #

    @classmethod
    def _unchecked(
        cls,
        values: Any,
        samples: Labels,
        components: Sequence[Labels],
        properties: Labels,
    ) -> "TensorBlock":
        """Build a block without any check. Only for code inside metatensor that
        already knows the pieces are valid (right types, shapes and devices)."""
        block = cls.__new__(cls)
        block._values = values
        block._samples = samples
        block._components = tuple(components)
        block._properties = properties
        block._gradients = {}
        block._is_view = False
        block._path = ()
        return block

    def _owned(self) -> "TensorBlock":
        """A private wrapper around the same data, to be stored inside a
        container. The gradients themselves are already private wrappers, and
        are shared."""
        block = TensorBlock.__new__(TensorBlock)
        block._values = self._values
        block._samples = self._samples
        block._components = self._components
        block._properties = self._properties
        block._gradients = dict(self._gradients)
        block._is_view = False
        block._path = ()
        return block

    def _view(self, path: Tuple[str, ...] = ()) -> "TensorBlock":
        """A view of this (private) block, for the users of a container."""
        block = TensorBlock.__new__(TensorBlock)
        block._values = self._values
        block._samples = self._samples
        block._components = self._components
        block._properties = self._properties
        block._gradients = self._gradients
        block._is_view = True
        block._path = path
        return block

    def _add_gradient_unchecked(self, parameter: str, gradient: "TensorBlock"):
        """Attach a gradient without any check. Only for code inside metatensor
        that already knows the gradient is valid."""
        self._gradients[parameter] = gradient._owned()

    # ------------------------------------------------------------------ #
    # data and metadata                                                    #
    # ------------------------------------------------------------------ #

    @property
    def values(self) -> Any:
        """The values of this block (the array given to the constructor)."""
        return self._values

    @values.setter
    def values(self, value: Any):
        raise AttributeError(
            "Direct assignment to `values` is not possible. "
            "Please use block.values[:] = new_values instead."
        )

    @property
    def samples(self) -> Labels:
        """Metadata of the first dimension of the values."""
        return self._samples

    @property
    def components(self) -> List[Labels]:
        """Metadata of the intermediate dimensions of the values."""
        return list(self._components)

    @property
    def properties(self) -> Labels:
        """Metadata of the last dimension of the values."""
        return self._properties

    @property
    def shape(self) -> Tuple[int, ...]:
        """Shape of the values."""
        return tuple(self._values.shape)

    def __len__(self) -> int:
        return self._values.shape[0]

    @property
    def dtype(self) -> Any:
        """dtype of the values (a numpy, torch or array API dtype)."""
        return self._values.dtype

    @property
    def device(self) -> Any:
        """Device of the values: ``"cpu"`` for numpy, a ``torch.device`` for
        torch."""
        return _array.device(self._values)

    @property
    def is_view(self) -> bool:
        """Is this block a view inside a :py:class:`TensorMap` or another
        :py:class:`TensorBlock`?"""
        return self._is_view

    # ------------------------------------------------------------------ #
    # copies and conversions                                               #
    # ------------------------------------------------------------------ #

    def copy(self, deep: bool = True) -> "TensorBlock":
        """Copy this block.

        :param deep: with ``True``, the values and gradients are copied; with
            ``False`` the new block uses the same values arrays. Labels are always
            shared (they are immutable).
        """
        if not deep:
            block = self._owned()
            return block
        return self._deep_copy()

    def _deep_copy(self) -> "TensorBlock":
        block = TensorBlock._unchecked(
            _array.copy(self._values),
            self._samples,
            self._components,
            self._properties,
        )
        for parameter, gradient in self._gradients.items():
            block._gradients[parameter] = gradient._deep_copy()
        return block

    def __copy__(self) -> "TensorBlock":
        return self.copy(deep=False)

    def __deepcopy__(self, memo) -> "TensorBlock":
        return self.copy(deep=True)

    def to(
        self,
        *args,
        dtype: Any = None,
        device: Any = None,
        arrays: Optional[str] = None,
        non_blocking: bool = False,
    ) -> "TensorBlock":
        """Move this block (values, labels and gradients) to another dtype,
        device or array backend. A new block is always returned.

        :param args: positional device (``str`` or ``torch.device``) and/or dtype
        :param dtype: new dtype of the values
        :param device: new device of the values and labels
        :param arrays: new array backend, ``"numpy"`` or ``"torch"`` (``None``
            keeps the current one)
        :param non_blocking: passed on to torch when moving between devices
        """
        parsed = _to.parse_to_arguments(
            "`TensorBlock.to`", args, dtype, device, arrays, non_blocking
        )
        return self._to(parsed, {})

    def _to(self, parsed, cache: Dict) -> "TensorBlock":
        values = _to.convert_array(
            self._values,
            parsed.dtype,
            parsed.device,
            parsed.arrays,
            parsed.non_blocking,
        )
        block = TensorBlock._unchecked(
            values,
            _convert_labels(self._samples, values, parsed, cache),
            [_convert_labels(c, values, parsed, cache) for c in self._components],
            _convert_labels(self._properties, values, parsed, cache),
        )
        for parameter, gradient in self._gradients.items():
            block._gradients[parameter] = gradient._to(parsed, cache)
        return block

    # ------------------------------------------------------------------ #
    # gradients                                                            #
    # ------------------------------------------------------------------ #

    def add_gradient(self, parameter: str, gradient: "TensorBlock") -> None:
        """Add the gradient of the values with respect to ``parameter``.

        The gradient block's samples must start with a ``"sample"`` dimension
        (the row of the values this gradient row refers to), its components are
        any extra gradient components followed by the block's components, and its
        properties must be the block's properties. Gradients of the gradient
        must be added to it *before* calling this function.

        The ``gradient`` object stays usable afterwards (it is not consumed); the
        block keeps its own reference to the gradient data.

        :param parameter: name of the parameter
        :param gradient: the gradient data and metadata
        """
        if self._is_view:
            raise ValueError(
                "cannot add gradient on this block since it is a view inside a "
                "TensorMap or another TensorBlock"
            )
        if not isinstance(gradient, TensorBlock):
            raise TypeError(
                f"`gradient` must be a metatensor TensorBlock, not {type(gradient)}"
            )
        if not isinstance(parameter, str):
            raise TypeError(f"`parameter` must be a string, not {type(parameter)}")

        self._check_gradient(parameter, gradient)
        self._gradients[parameter] = gradient._owned()

    def _check_gradient(self, parameter: str, gradient: "TensorBlock") -> None:
        if parameter in self._gradients:
            raise invalid_parameter(
                f"gradient with respect to '{parameter}' already exists for this block"
            )

        values = self._values
        gradient_values = gradient._values
        if not _same_origin(gradient_values, values):
            raise invalid_parameter(
                "the gradient data has a different origin "
                f"('{_array.origin(gradient_values)}') than the value data "
                f"('{_array.origin(values)}')"
            )

        if not _same_device(gradient_values, values):
            raise invalid_parameter(
                "the gradient values are on device "
                f"'{_values_device_name(gradient_values)}' but the block values are "
                f"on device '{_values_device_name(values)}'"
            )

        if gradient_values.dtype != values.dtype:
            raise invalid_parameter(
                "the gradient values have dtype "
                f"'{_array.dtype_name(gradient_values.dtype)}' but the block values "
                f"have dtype '{_array.dtype_name(values.dtype)}'"
            )

        samples = gradient._samples
        sample_names = samples._names
        if len(sample_names) == 0:
            raise invalid_parameter(
                "gradients samples must have at least one dimension, named "
                "'sample', we got none"
            )
        if sample_names[0] != "sample":
            raise invalid_parameter(
                f"'{sample_names[0]}' is not valid for the first dimension in the "
                "gradients samples labels, it should be 'sample'"
            )

        n_samples = values.shape[0]
        if len(samples) != 0:
            sample_range = _sample_range(samples)
            if sample_range is not None:
                minimum, maximum = sample_range
                if minimum < 0:
                    raise invalid_parameter(
                        "invalid value for the 'sample' dimension in gradient "
                        "samples: all values should be positive, but we got "
                        f"{minimum}"
                    )
                if maximum >= n_samples:
                    raise invalid_parameter(
                        "invalid value for the 'sample' dimension in gradient "
                        f"samples: we got {maximum}, but the values contain "
                        f"{n_samples} samples"
                    )

        gradient_components = gradient._components
        _check_components_rules(gradient_components)

        n_extra = len(gradient_components) - len(self._components)
        if n_extra < 0:
            raise invalid_parameter(
                "gradients components should contain at least as many labels as "
                "the values components"
            )

        if not _labels_equal(gradient._properties, self._properties):
            raise invalid_parameter(
                "gradient properties must be the same as values properties"
            )

        for i, component in enumerate(self._components):
            if not _labels_equal(gradient_components[n_extra + i], component):
                raise invalid_parameter(
                    f"gradients and values components mismatch for values component "
                    f"{i} (dimension name is '{component._names[0]}'). Components "
                    "which are specific to the gradients must come first, and be "
                    "followed by the exact same components as the values."
                )

    def gradient(self, parameter: str) -> "TensorBlock":
        """Get the gradient of the values with respect to ``parameter``, as a
        view.

        :param parameter: name of the parameter
        """
        try:
            gradient = self._gradients[parameter]
        except (KeyError, TypeError):
            raise invalid_parameter(
                f"can not find gradients with respect to '{parameter}' in this block"
            ) from None
        return gradient._view(self._path + (parameter,))

    def gradients_list(self) -> List[str]:
        """Names of the parameters of the gradients, in insertion order."""
        return list(self._gradients)

    def has_gradient(self, parameter: str) -> bool:
        """Does this block have gradients with respect to ``parameter``?

        :param parameter: name of the parameter
        """
        return parameter in self._gradients

    def gradients(self) -> Generator[Tuple[str, "TensorBlock"], None, None]:
        """Iterate over ``(parameter, gradient)`` pairs, gradients being views."""
        for parameter, gradient in list(self._gradients.items()):
            yield parameter, gradient._view(self._path + (parameter,))

    # ------------------------------------------------------------------ #
    # printing                                                             #
    # ------------------------------------------------------------------ #

    def _shape_str(self) -> str:
        return str(tuple(int(s) for s in self._values.shape))

    def __repr__(self) -> str:
        if self._path:
            header = (
                f"TensorBlock gradient for '{'/'.join(self._path)}', "
                f"with shape {self._shape_str()}"
            )
        else:
            header = f"TensorBlock with shape {self._shape_str()}"

        lines = [header, f"    samples: {_names_list(self._samples.names)}"]
        if len(self._components) != 0:
            names = [name for c in self._components for name in c.names]
            lines.append(f"    components: {_names_list(names)}")
        lines.append(f"    properties: {_names_list(self._properties.names)}")

        if len(self._gradients) != 0:
            lines.append("")
            lines.append("    gradients:")
            width = max(len(name) for name in self._gradients)
            for name, gradient in self._gradients.items():
                lines.append(
                    f"        {name.ljust(width)} => TensorBlock with shape "
                    f"{gradient._shape_str()}"
                )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.__repr__()

    def _repr_html_(self) -> str:
        esc = html.escape
        if self._path:
            title = f"TensorBlock gradient for '{esc('/'.join(self._path))}'"
        else:
            title = "TensorBlock"

        rows = [
            ("samples", self._samples.names, len(self._samples)),
        ]
        for component in self._components:
            rows.append(("component", component.names, len(component)))
        rows.append(("properties", self._properties.names, len(self._properties)))

        out = [
            "<div>",
            f"<p><b>{title}</b> with shape {esc(self._shape_str())}, "
            f"dtype {esc(str(self.dtype))}, device {esc(str(self.device))}</p>",
            "<table>",
            "<tr><th>dimension</th><th>names</th><th>entries</th></tr>",
        ]
        for what, names, count in rows:
            out.append(
                f"<tr><td>{what}</td><td>{esc(', '.join(names))}</td>"
                f"<td>{count}</td></tr>"
            )
        out.append("</table>")
        if self._gradients:
            out.append("<p>gradients:</p><ul>")
            for name, gradient in self._gradients.items():
                out.append(f"<li>{esc(name)}: shape {esc(gradient._shape_str())}</li>")
            out.append("</ul>")
        out.append("</div>")
        return "".join(out)

    # ------------------------------------------------------------------ #
    # operators                                                            #
    # ------------------------------------------------------------------ #

    def __eq__(self, other: Any) -> bool:
        operations = _operations("==")
        if not isinstance(other, TensorBlock):
            raise AttributeError(
                f"can not compare a TensorBlock with an object of type {type(other)}"
            )
        return operations.equal_block(self, other)

    def __ne__(self, other: Any) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    # ------------------------------------------------------------------ #
    # serialization                                                        #
    # ------------------------------------------------------------------ #

    def save(self, file: Any, use_numpy: bool = False) -> None:
        """Save this block to a file, see :py:func:`metatensor.save`.

        :param file: path or binary file-like object
        :param use_numpy: write the file with numpy instead of the native writer
        """
        from .io import save

        save(file, self, use_numpy=use_numpy)

    def save_buffer(self, use_numpy: bool = False) -> memoryview:
        """Save this block to an in-memory buffer.

        :param use_numpy: write the data with numpy instead of the native writer
        """
        from .io import save_buffer

        return save_buffer(self, use_numpy=use_numpy)

    @staticmethod
    def load(file: Any, use_numpy: bool = False) -> "TensorBlock":
        """Load a block from a file, see :py:func:`metatensor.load_block`.

        :param file: path or binary file-like object
        :param use_numpy: read the file with numpy instead of the native reader
        """
        from .io import load_block

        return load_block(file, use_numpy=use_numpy)

    @staticmethod
    def load_buffer(buffer: Any, use_numpy: bool = False) -> "TensorBlock":
        """Load a block from an in-memory buffer.

        :param buffer: ``bytes``, ``bytearray`` or ``memoryview``
        :param use_numpy: ignored, kept for compatibility
        """
        from .io import load_block_buffer

        return load_block_buffer(buffer)

    def __reduce_ex__(self, protocol: int):
        buffer = self.save_buffer()
        if protocol >= 5:
            import pickle

            return TensorBlock._from_pickle, (pickle.PickleBuffer(buffer),)
        return TensorBlock._from_pickle, (bytes(buffer),)

    @staticmethod
    def _from_pickle(buffer: Any) -> "TensorBlock":
        from .io import load_block_buffer

        return load_block_buffer(memoryview(buffer))
