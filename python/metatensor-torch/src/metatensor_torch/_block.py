"""TorchScript-compatible :py:class:`TensorBlock`.

TorchScript classes can not contain themselves, so the gradients of a block
(and gradients of gradients) are stored in a flat list of
:py:class:`_GradientData`, each with its *gradient path*: ``"positions"`` for
the gradient with respect to ``positions``, ``"positions/cell"`` for the
gradient of this gradient with respect to ``cell``, ... Parents always come
before their children in this list. Gradient blocks returned by
:py:meth:`TensorBlock.gradient` are views sharing this list.

The layout is kept small, since every object, list and dictionary is converted
attribute by attribute when crossing the Python/TorchScript boundary: a block
without gradients holds no gradient object (only an empty list), and there is
no dictionary (converting a Python ``dict`` costs ~3 µs, ten times more than a
``list``).

Model-file ABI: ``__torch__.metatensor_torch._block._GradientData`` with
attributes ``path: str``, ``values: Tensor``, ``samples: Labels``,
``components: List[Labels]`` and ``parameters: List[str]``;
``__torch__.metatensor_torch._block.TensorBlock`` with attributes ``_values:
Tensor``, ``_samples: Labels``, ``_components: List[Labels]``, ``_properties:
Labels``, ``_parameters: List[str]``, ``_gradients: List[_GradientData]``,
``_path: str`` and ``_is_view: bool``.
"""

import warnings
from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor

from . import _eager
from ._errors import InvalidParameterError
from ._labels import Labels, _not_in_torchscript, _spaces
from ._utils import dtype_name


def _check_block(
    values: Tensor, samples: Labels, components: List[Labels], properties: Labels
):
    """Check the shape and device of the block data against its metadata."""
    shape = values.shape
    if len(shape) != len(components) + 2:
        raise InvalidParameterError(
            "invalid parameter: invalid block: the values have "
            + str(len(shape))
            + " dimensions, but we have "
            + str(len(components) + 2)
            + " separate labels ("
            + "1 for samples, "
            + str(len(components))
            + " for components and 1 for properties)"
        )
    if shape[0] != samples.values.shape[0]:
        raise InvalidParameterError(
            "invalid parameter: invalid block: the values shape along axis 0 is "
            + str(shape[0])
            + " but we have "
            + str(samples.values.shape[0])
            + " sample label entries"
        )
    device = values.device
    if samples.values.device != device:
        raise InvalidParameterError(
            "cannot create TensorBlock: values and samples must be on the same "
            + "device, got "
            + str(device)
            + " and "
            + str(samples.values.device)
        )
    for i, component in enumerate(components):
        names = component.names
        if len(names) != 1:
            raise InvalidParameterError(
                "invalid parameter: component labels must have a single dimension, "
                + "got "
                + str(len(names))
                + ": ["
                + ", ".join(names)
                + "] for component "
                + str(i)
            )
        count = component.values.shape[0]
        if count == 0:
            raise InvalidParameterError(
                "invalid parameter: component '"
                + names[0]
                + "' must contain at least one entry, got 0"
            )
        if shape[i + 1] != count:
            raise InvalidParameterError(
                "invalid parameter: invalid block: the values shape along axis "
                + str(i + 1)
                + " is "
                + str(shape[i + 1])
                + " but we have "
                + str(count)
                + " entries for the corresponding component"
            )
        for j in range(i):
            if components[j].names[0] == names[0]:
                raise InvalidParameterError(
                    "invalid parameter: invalid block: some of the component "
                    + "dimensions appear more than once in component labels"
                )
        if component.values.device != device:
            raise InvalidParameterError(
                "cannot create TensorBlock: values and components must be on the "
                + "same device, got "
                + str(device)
                + " and "
                + str(component.values.device)
            )
    last = len(shape) - 1
    if shape[last] != properties.values.shape[0]:
        raise InvalidParameterError(
            "invalid parameter: invalid block: the values shape along axis "
            + str(last)
            + " is "
            + str(shape[last])
            + " but we have "
            + str(properties.values.shape[0])
            + " property label entries"
        )
    if properties.values.device != device:
        raise InvalidParameterError(
            "cannot create TensorBlock: values and properties must be on the same "
            + "device, got "
            + str(device)
            + " and "
            + str(properties.values.device)
        )


def _join_path(path: str, parameter: str) -> str:
    if path == "":
        return parameter
    if parameter == "":
        return path
    return path + "/" + parameter


def _descendants(gradients: List["_GradientData"], root: str) -> List["_GradientData"]:
    """All gradients below the gradient path ``root`` (excluded; ``""`` for the
    block itself), parents first."""
    if root == "":
        return [g for g in gradients]
    prefix = root + "/"
    result: List[_GradientData] = []
    for data in gradients:
        if data.path.startswith(prefix):
            result.append(data)
    return result


def _find_gradient(gradients: List["_GradientData"], path: str) -> "_GradientData":
    for data in gradients:
        if data.path == path:
            return data
    raise InvalidParameterError("internal error: missing gradient '" + path + "'")


def _relative(path: str, root: str) -> str:
    if root == "":
        return path
    return path[len(root) + 1 :]


class _GradientData:
    """Storage for one gradient (of any order) of a block, with its gradient
    ``path``. The properties are the ones of the block."""

    def __init__(
        self,
        path: str,
        values: Tensor,
        samples: Labels,
        components: List[Labels],
        parameters: List[str],
    ):
        self.path = path
        self.values = values
        self.samples = samples
        self.components = components
        self.parameters = parameters


class TensorBlock:
    """A block of data with its metadata: ``values`` of shape ``(samples,
    *components, properties)`` and the corresponding :py:class:`Labels`.

    :param values: tensor of data
    :param samples: Labels for the first dimension of ``values``
    :param components: list of single-dimension Labels, one for each
        intermediate dimension of ``values``
    :param properties: Labels for the last dimension of ``values``

    The Labels and the values are stored by reference. Blocks used to build a
    :py:class:`TensorMap` become views inside this map (gradients can no longer
    be added to them); blocks given to :py:meth:`add_gradient` are copied (the
    tensors are shared).
    """

    def __init__(
        self,
        values: Tensor,
        samples: Labels,
        components: List[Labels],
        properties: Labels,
    ):
        if not torch.jit.is_scripting():
            components = _eager.check_block_types(
                values, samples, components, properties
            )
        _check_block(values, samples, components, properties)
        self._values = values
        self._samples = samples
        self._components = components
        self._properties = properties
        # a bare empty literal would be turned into one constant list shared
        # by all instances by TorchScript's constant propagation when
        # `__init__` runs on its own (e.g. called from C++): the `clear()`
        # (a mutation) prevents this
        parameters: List[str] = []
        parameters.clear()
        self._parameters = parameters
        gradients: List[_GradientData] = []
        gradients.clear()
        self._gradients = gradients
        self._path = ""
        self._is_view = False

    # ------------------------------------------------------------------ #
    # data access                                                          #
    # ------------------------------------------------------------------ #

    @property
    def values(self) -> Tensor:
        """the data of this block"""
        return self._values

    @values.setter
    def values(self, value: Tensor):
        raise InvalidParameterError(
            "Direct assignment to `values` is not possible. "
            + "Please use `block.values[:] = new_values` instead."
        )

    @property
    def samples(self) -> Labels:
        """Labels describing the first dimension of the values"""
        return self._samples

    @property
    def components(self) -> List[Labels]:
        """Labels describing the intermediate dimensions of the values"""
        return self._components

    @property
    def properties(self) -> Labels:
        """Labels describing the last dimension of the values"""
        return self._properties

    @property
    def shape(self) -> List[int]:
        """shape of the values"""
        return list(self._values.shape)

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the values"""
        return self._values.dtype

    @property
    def device(self) -> torch.device:
        """device of the values"""
        return self._values.device

    @property
    def is_view(self) -> bool:
        """whether this block is a view inside a TensorMap or another block"""
        return self._is_view or self._path != ""

    def __len__(self) -> int:
        return self._values.shape[0]

    # ------------------------------------------------------------------ #
    # gradients                                                            #
    # ------------------------------------------------------------------ #

    def gradients_list(self) -> List[str]:
        """names of the parameters with gradients in this block"""
        return [p for p in self._parameters]

    def has_gradient(self, parameter: str) -> bool:
        """whether this block has gradients with respect to ``parameter``"""
        return parameter in self._parameters

    def gradient(self, parameter: str) -> "TensorBlock":
        """Get the gradient of this block with respect to ``parameter``, as a
        view sharing the data of this block."""
        if parameter not in self._parameters:
            raise InvalidParameterError(
                "invalid parameter: can not find gradients with respect to '"
                + parameter
                + "' in this block"
            )
        path = _join_path(self._path, parameter)
        data = _find_gradient(self._gradients, path)
        view = TensorBlock(data.values, data.samples, data.components, self._properties)
        view._parameters = data.parameters
        view._gradients = self._gradients
        view._path = path
        view._is_view = True
        return view

    def gradients(self) -> List[Tuple[str, "TensorBlock"]]:
        """all ``(parameter, gradient)`` pairs of this block"""
        return [(p, self.gradient(p)) for p in self._parameters]

    def add_gradient(self, parameter: str, gradient: "TensorBlock"):
        """Add a gradient with respect to ``parameter`` to this block.

        The gradient samples first dimension must be ``"sample"``; its
        components are extra gradient components followed by the block
        components; its properties must be the block properties. Gradients of
        the ``gradient`` block are copied along.
        """
        if self.is_view:
            raise InvalidParameterError(
                "cannot add gradient on this block since it is a view inside a "
                + "TensorMap or another TensorBlock"
            )
        if parameter in self._parameters:
            raise InvalidParameterError(
                "invalid parameter: gradient with respect to '"
                + parameter
                + "' already exists for this block"
            )
        values = self._values
        gradient_values = gradient._values
        if gradient_values.device != values.device:
            raise InvalidParameterError(
                "invalid parameter: the gradient values are on device '"
                + str(gradient_values.device)
                + "' but the block values are on device '"
                + str(values.device)
                + "'"
            )
        if gradient_values.dtype != values.dtype:
            raise InvalidParameterError(
                "invalid parameter: the gradient values have dtype '"
                + dtype_name(gradient_values.dtype)
                + "' but the block values have dtype '"
                + dtype_name(values.dtype)
                + "'"
            )
        samples = gradient._samples
        names = samples.names
        if len(names) == 0:
            raise InvalidParameterError(
                "invalid parameter: gradients samples must have at least one "
                + "dimension, named 'sample', we got none"
            )
        if names[0] != "sample":
            raise InvalidParameterError(
                "invalid parameter: '"
                + names[0]
                + "' is not valid for the first dimension in the gradients "
                + "samples labels, it should be 'sample'"
            )
        _check_gradient_samples(samples.values, values.shape[0])

        components = self._components
        gradient_components = gradient._components
        extra = len(gradient_components) - len(components)
        if extra < 0:
            raise InvalidParameterError(
                "invalid parameter: gradients components should contain at least "
                + "as many labels as the values components"
            )
        if not _labels_match(gradient._properties, self._properties):
            raise InvalidParameterError(
                "invalid parameter: gradient properties must be the same as values "
                + "properties"
            )
        for i, component in enumerate(components):
            if not _labels_match(gradient_components[extra + i], component):
                raise InvalidParameterError(
                    "invalid parameter: gradients and values components mismatch "
                    + "for values component "
                    + str(i)
                    + " (dimension name is '"
                    + component.names[0]
                    + "')"
                )

        self._gradients.append(
            _GradientData(
                parameter,
                gradient_values,
                samples,
                gradient_components,
                [p for p in gradient._parameters],
            )
        )
        root = gradient._path
        for data in _descendants(gradient._gradients, root):
            self._gradients.append(
                _GradientData(
                    _join_path(parameter, _relative(data.path, root)),
                    data.values,
                    data.samples,
                    data.components,
                    [p for p in data.parameters],
                )
            )
        self._parameters.append(parameter)

    # ------------------------------------------------------------------ #
    # copies and conversions                                               #
    # ------------------------------------------------------------------ #

    def _transform(
        self,
        deep: bool,
        dtype: Optional[torch.dtype],
        device: Optional[torch.device],
        non_blocking: bool,
    ) -> "TensorBlock":
        values = self._values
        samples = self._samples
        components = self._components
        properties = self._properties
        if dtype is not None or device is not None:
            values = values.to(device=device, dtype=dtype, non_blocking=non_blocking)
        if deep:
            values = values.clone()
        if device is not None:
            samples = samples.to(device, non_blocking)
            components = [c.to(device, non_blocking) for c in components]
            properties = properties.to(device, non_blocking)
        result = TensorBlock(values, samples, components, properties)

        root = self._path
        for data in _descendants(self._gradients, root):
            values = data.values
            samples = data.samples
            components = data.components
            if dtype is not None or device is not None:
                values = values.to(
                    device=device, dtype=dtype, non_blocking=non_blocking
                )
            if deep:
                values = values.clone()
            if device is not None:
                samples = samples.to(device, non_blocking)
                components = [c.to(device, non_blocking) for c in components]
            result._gradients.append(
                _GradientData(
                    _relative(data.path, root),
                    values,
                    samples,
                    components,
                    [p for p in data.parameters],
                )
            )
        for parameter in self._parameters:
            result._parameters.append(parameter)
        return result

    def copy(self, deep: bool = True) -> "TensorBlock":
        """Copy this block (and its gradients). With ``deep=False`` the new block
        shares the value tensors with this one."""
        return self._transform(deep, None, None, False)

    def to(
        self,
        arg0: Optional[Union[torch.dtype, torch.device, str]] = None,
        arg1: Optional[Union[torch.dtype, torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
        device: Optional[Union[torch.device, str]] = None,
        arrays: Optional[str] = None,
        non_blocking: bool = False,
    ) -> "TensorBlock":
        """Move this block (values, Labels and gradients) to a different dtype
        and/or device. ``arg0`` and ``arg1`` can be a dtype, a device or a device
        string; ``arrays`` must be ``None`` or ``"torch"``."""
        new_dtype, new_device = _parse_to(
            "`TensorBlock.to`", arg0, arg1, dtype, device, arrays
        )
        return self._transform(False, new_dtype, new_device, non_blocking)

    # ------------------------------------------------------------------ #
    # serialization                                                        #
    # ------------------------------------------------------------------ #

    @staticmethod
    def load(path: str) -> "TensorBlock":
        """Load a block from a file (see :py:func:`metatensor.torch.load_block`)."""
        if torch.jit.is_scripting():
            raise RuntimeError(_not_in_torchscript("TensorBlock.load"))
        else:
            return _eager.load_block(path)

    @staticmethod
    def load_buffer(buffer: Tensor) -> "TensorBlock":
        """Load a block from a buffer (see
        :py:func:`metatensor.torch.load_block_buffer`)."""
        if torch.jit.is_scripting():
            raise RuntimeError(_not_in_torchscript("TensorBlock.load_buffer"))
        else:
            return _eager.load_block_buffer(buffer)

    def save(self, path: str):
        """Save this block to a file (see :py:func:`metatensor.torch.save`)."""
        if torch.jit.is_scripting():
            raise RuntimeError(_not_in_torchscript("TensorBlock.save"))
        else:
            _eager.save(path, self)

    def save_buffer(self) -> Tensor:
        """Save this block to an in-memory buffer (1-D uint8 tensor)."""
        if torch.jit.is_scripting():
            raise RuntimeError(_not_in_torchscript("TensorBlock.save_buffer"))
        else:
            return _eager.save_buffer(self)

    # ------------------------------------------------------------------ #
    # printing                                                             #
    # ------------------------------------------------------------------ #

    def _shape_string(self) -> str:
        return "(" + ", ".join([str(s) for s in self.shape]) + ")"

    def __repr__(self) -> str:
        if self._path == "":
            text = "TensorBlock with shape " + self._shape_string()
        else:
            text = (
                "TensorBlock gradient for '"
                + self._path
                + "', with shape "
                + self._shape_string()
            )
        text += "\n    samples: [" + ", ".join(self._samples.names) + "]"
        components = self.components
        if len(components) != 0:
            names = [c.names[0] for c in components]
            text += "\n    components: [" + ", ".join(names) + "]"
        text += "\n    properties: [" + ", ".join(self.properties.names) + "]"
        parameters = self._parameters
        if len(parameters) != 0:
            width = 0
            for parameter in parameters:
                width = max(width, len(parameter))
            text += "\n\n    gradients:"
            for parameter in parameters:
                path = _join_path(self._path, parameter)
                shape = _find_gradient(self._gradients, path).values.shape
                text += (
                    "\n        "
                    + parameter
                    + _spaces(width - len(parameter))
                    + " => TensorBlock with shape ("
                    + ", ".join([str(s) for s in shape])
                    + ")"
                )
        return text

    def __str__(self) -> str:
        return self.__repr__()


def _labels_match(first: Labels, second: Labels) -> bool:
    """Labels equality, only comparing names and shapes while tracing with
    ``torch.compile``/``torch.export`` (the values are not available then)."""
    if first.names != second.names:
        return False
    if not torch.jit.is_scripting():
        if not _eager.data_checks_enabled(first.values):
            return first.values.shape == second.values.shape
    return first == second


def _check_gradient_samples(samples: Tensor, n_samples: int):
    if samples.shape[0] == 0 or samples.device.type == "meta":
        return
    if not torch.jit.is_scripting():
        if not _eager.data_checks_enabled(samples):
            return
    column = samples[:, 0]
    minimum = int(column.min())
    if minimum < 0:
        raise InvalidParameterError(
            "invalid parameter: invalid value for the 'sample' dimension in "
            + "gradient samples: all values should be positive, but we got "
            + str(minimum)
        )
    maximum = int(column.max())
    if maximum >= n_samples:
        raise InvalidParameterError(
            "invalid parameter: invalid value for the 'sample' dimension in "
            + "gradient samples: we got "
            + str(maximum)
            + ", but the values contain "
            + str(n_samples)
            + " samples"
        )


def _parse_to_argument(
    context: str,
    arg: Optional[Union[torch.dtype, torch.device, str]],
    dtype: Optional[torch.dtype],
    device: Optional[torch.device],
) -> Tuple[Optional[torch.dtype], Optional[torch.device]]:
    if arg is None:
        return dtype, device
    if isinstance(arg, str):
        if device is not None:
            raise InvalidParameterError("can not give a device twice in " + context)
        return dtype, torch.device(arg)
    elif isinstance(arg, torch.device):
        if device is not None:
            raise InvalidParameterError("can not give a device twice in " + context)
        return dtype, arg
    else:
        if not torch.jit.is_scripting():
            _eager.check_dtype_argument(context, arg)
        if dtype is not None:
            raise InvalidParameterError("can not give a dtype twice in " + context)
        return arg, device


def _parse_to(
    context: str,
    arg0: Optional[Union[torch.dtype, torch.device, str]],
    arg1: Optional[Union[torch.dtype, torch.device, str]],
    dtype: Optional[torch.dtype],
    device: Optional[Union[torch.device, str]],
    arrays: Optional[str],
) -> Tuple[Optional[torch.dtype], Optional[torch.device]]:
    """Parse the arguments of the ``to`` methods."""
    if arrays is not None and arrays != "torch":
        raise InvalidParameterError(
            "`arrays` must be None or 'torch', got '" + arrays + "' instead"
        )
    new_device: Optional[torch.device] = None
    if device is not None:
        if isinstance(device, str):
            new_device = torch.device(device)
        else:
            new_device = device
    new_dtype: Optional[torch.dtype] = dtype
    new_dtype, new_device = _parse_to_argument(context, arg0, new_dtype, new_device)
    new_dtype, new_device = _parse_to_argument(context, arg1, new_dtype, new_device)
    return new_dtype, new_device


# compile the class now (see `_classes.py`); TorchScript resolves names
# through the frame calling `torch.jit.script`, so this must stay here
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.jit.script(_GradientData)
    torch.jit.script(TensorBlock)
