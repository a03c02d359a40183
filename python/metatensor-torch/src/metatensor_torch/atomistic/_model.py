"""Atomistic models: :py:class:`ModelInterface` (what model authors write) and
:py:class:`AtomisticModel` (the wrapper that engines run), with the functions
saving, checking and loading model files.

Model-file ABI: a saved model is the TorchScript version of
:py:class:`AtomisticModel`, a module with ``original_name == "AtomisticModel"``
and these methods and attributes (engines and :py:func:`load_atomistic_model`
rely on them, they must not change):

* ``forward(systems: List[System], options: ModelEvaluationOptions,
  check_consistency: bool) -> Dict[str, TensorMap]``;
* ``capabilities() -> ModelCapabilities``, ``metadata() -> ModelMetadata``,
  ``requested_neighbor_lists() -> List[NeighborListOptions]`` and
  ``requested_inputs(use_new_names: bool = False) -> Dict[str, ModelOutput]``;
* ``module``: the wrapped model;
* ``_capabilities: ModelCapabilities``, ``_metadata: ModelMetadata``,
  ``_requested_neighbor_lists: List[NeighborListOptions]``;
* ``_declared_outputs: List[str]`` (output names declared by the wrapped model),
  ``_output_names: Dict[str, str]`` (every output name of the capabilities,
  including the aliases added for deprecated names, to the name the wrapped
  model declared), ``_output_units: Dict[str, str]``;
* ``_requested_inputs: Dict[str, ModelOutput]`` (keyed by the name the wrapped
  model used), ``_input_aliases: Dict[str, str]`` (the other spelling of each
  requested input name, or ``""``);
* ``_new_names: Dict[str, str]`` (deprecated names to new names),
  ``_outputs: Dict[str, ModelOutput]`` (the outputs of the capabilities),
  ``_atomic_types: List[int]``, ``_length_unit: str``, ``_dtype_name: str``
  and the ``_warned`` / ``_factors`` / ``_known_types`` caches
  (``Dict[str, bool]`` / ``Dict[str, float]`` / ``Dict[str, Tensor]``).

The TorchScript classes are referred to by their qualified names
(``__torch__.metatensor_torch.atomistic._system.System``, ...), see the
modules defining them.
"""

import os
import threading
import warnings
from typing import Dict, List, Optional, Tuple

import torch

from .._block import TensorBlock
from .._errors import ModelFileError
from .._labels import Labels
from .._module import Module
from .._tensor import TensorMap
from .._utils import dtype_name
from ._metadata import ModelMetadata
from ._model_files import (
    check_atomistic_model,
    extra_files,
    load_model_extensions,
    write_atomically,
)
from ._model_forward import check_selected_atoms, scaled_tensor_map
from ._model_setup import (
    TORCHSCRIPT_DEPRECATION,
    check_capabilities,
    check_forward_signature,
    copy_neighbor_lists,
    current_name,
    deprecated_name,
    gather_inputs,
    gather_neighbor_lists,
    output_aliases,
    scripted_for_saving,
    uses_foreign_classes,
    warn_deprecated,
)
from ._outputs import ModelCapabilities, ModelEvaluationOptions, ModelOutput
from ._quantities import check_quantities
from ._system import NeighborListOptions, System
from ._units import _unit_conversion_factor


_SAVE_LOCK = threading.RLock()


class ModelInterface(torch.nn.Module):
    """Interface of the models that can be wrapped in :py:class:`AtomisticModel`.

    This class documents what model authors write; models do not need to
    inherit from it. A model is a ``torch.nn.Module`` whose ``forward`` has
    exactly the signature below (argument names and type annotations are
    checked by :py:class:`AtomisticModel`), and which may define
    ``requested_neighbor_lists`` and ``requested_inputs`` (on the model itself or
    on any of its sub-modules).
    """

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        """Compute the ``outputs`` for all the ``systems``.

        :param systems: the systems to run the model on. Their positions, cells
            and neighbor lists are in the length unit of the model's
            capabilities, and they contain the inputs requested by
            :py:meth:`requested_inputs`, in the requested units.
        :param outputs: the outputs to compute, with the unit and sample kind
            the engine asked for. The values must be returned in the unit
            declared in the model's capabilities, :py:class:`AtomisticModel`
            converts them.
        :param selected_atoms: the atoms to compute per-atom outputs for (and
            to include in per-system outputs), as Labels with the names
            ``["system", "atom"]``; ``None`` means all atoms. The other atoms
            are only neighbors of the selected ones.
        :return: one :py:class:`TensorMap` for each requested output
        """
        raise NotImplementedError("`ModelInterface.forward` must be implemented")

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        """The neighbor lists that must be in the systems given to
        ``forward``. The cutoffs are in the length unit of the model."""
        return []

    def requested_inputs(self) -> Dict[str, ModelOutput]:
        """Additional inputs (masses, velocities, charges, ...) that must be
        stored as data in the systems given to ``forward``, with the unit and
        sample kind they should have."""
        return {}


class AtomisticModel(Module):
    """Wrap an atomistic model with its metadata and capabilities, so that
    simulation engines can run it, and save it to a file.

    The wrapper checks the model's ``forward`` signature and capabilities,
    collects the neighbor lists and inputs requested by the model and its
    sub-modules, and on each call converts the systems and the requested
    inputs to the model's units, checks the requests (optionally, everything
    with ``check_consistency``) and converts the outputs to the units the engine
    asked for.

    :param module: the model, following :py:class:`ModelInterface`. It must be
        in evaluation mode (``module.eval()``); its parameters are frozen
        (``requires_grad = False``). It can also be another (Python or
        TorchScript) ``AtomisticModel``, whose wrapped model is re-used.
    :param metadata: information about the model (name, authors, ...)
    :param capabilities: what the model can do: outputs, atomic types, units,
        interaction range, devices and dtype
    """

    _capabilities: ModelCapabilities
    _metadata: ModelMetadata
    _requested_neighbor_lists: List[NeighborListOptions]
    _declared_outputs: List[str]
    _output_names: Dict[str, str]
    _output_units: Dict[str, str]
    _outputs: Dict[str, ModelOutput]
    _requested_inputs: Dict[str, ModelOutput]
    _input_aliases: Dict[str, str]
    _new_names: Dict[str, str]
    _atomic_types: List[int]
    _length_unit: str
    _dtype_name: str
    _warned: Dict[str, bool]
    _factors: Dict[str, float]
    _known_types: Dict[str, torch.Tensor]

    def __init__(
        self,
        module: torch.nn.Module,
        metadata: ModelMetadata,
        capabilities: ModelCapabilities,
    ):
        super().__init__()
        if not isinstance(module, torch.nn.Module):
            raise TypeError(
                f"`module` should be a torch.nn.Module, not {type(module).__name__}"
            )
        if not isinstance(metadata, ModelMetadata):
            raise TypeError(
                f"`metadata` should be a ModelMetadata, not {type(metadata).__name__}"
            )
        if not isinstance(capabilities, ModelCapabilities):
            raise TypeError(
                "`capabilities` should be a ModelCapabilities, not "
                f"{type(capabilities).__name__}"
            )
        if module.training:
            raise ValueError("module should not be in training mode")

        check_capabilities(capabilities)
        length_unit = capabilities.length_unit

        if is_atomistic_model(module):
            # re-wrapping an existing model (this is how `load_atomistic_model`
            # works): re-use what was recorded when it was first wrapped
            inner = module.module
            declared_outputs = list(module._declared_outputs)
            aliases = dict(module._output_names)
            outputs = {
                name: output
                for name, output in capabilities.outputs.items()
                if aliases.get(name, name) == name
            }
            neighbor_lists = copy_neighbor_lists(
                module.requested_neighbor_lists(), length_unit
            )
            inputs = dict(module._requested_inputs)
        else:
            inner = module
            check_forward_signature(module)
            outputs = dict(capabilities.outputs)
            declared_outputs = list(outputs.keys())
            neighbor_lists = gather_neighbor_lists(module, length_unit)
            inputs = gather_inputs(module)

        for parameter in inner.parameters():
            parameter.requires_grad_(False)

        # a model loaded with `torch.jit.load` uses its own copy of the
        # TorchScript classes, and can not be compiled together with code using
        # the classes of this process: `save` stores it directly
        if isinstance(module, torch.jit.RecursiveScriptModule):
            if uses_foreign_classes(module):
                object.__setattr__(self, "_loaded_model", module)
        elif isinstance(module, AtomisticModel):
            loaded = module.__dict__.get("_loaded_model")
            if loaded is not None:
                object.__setattr__(self, "_loaded_model", loaded)

        self.module = inner
        self._metadata = metadata

        # outputs, with the aliases for the deprecated/new names
        output_names, new_names = output_aliases(outputs)
        all_outputs = {name: outputs[target] for name, target in output_names.items()}
        with warnings.catch_warnings():
            # the user already got the warnings when creating `capabilities`
            warnings.simplefilter("ignore")
            self._capabilities = ModelCapabilities(
                outputs=all_outputs,
                atomic_types=list(capabilities.atomic_types),
                interaction_range=capabilities.interaction_range,
                length_unit=length_unit,
                supported_devices=list(capabilities.supported_devices),
                dtype=capabilities.dtype,
            )
        self._declared_outputs = declared_outputs
        self._output_names = output_names
        self._outputs = all_outputs
        self._output_units = {name: out.unit for name, out in all_outputs.items()}

        # inputs
        self._requested_inputs = inputs
        self._input_aliases = {}
        for name in inputs:
            new_name = current_name(name)
            if new_name != name:
                new_names[name] = new_name
                self._input_aliases[name] = new_name
            else:
                old_name = deprecated_name(name)
                if old_name is None:
                    self._input_aliases[name] = ""
                else:
                    new_names[old_name] = name
                    self._input_aliases[name] = old_name
        self._new_names = new_names

        self._requested_neighbor_lists = neighbor_lists
        self._atomic_types = [int(t) for t in capabilities.atomic_types]
        self._length_unit = length_unit
        self._dtype_name = capabilities.dtype

        self._warned = {}
        self._factors = {}
        self._known_types = {}

        # the wrapped module is in evaluation mode, so is the wrapper
        self.eval()

    # ------------------------------------------------------------------ #
    # exported methods                                                     #
    # ------------------------------------------------------------------ #

    @torch.jit.export
    def capabilities(self) -> ModelCapabilities:
        """The capabilities of the model (including the aliases of the
        outputs using deprecated names)."""
        return self._capabilities

    @torch.jit.export
    def metadata(self) -> ModelMetadata:
        """The metadata of the model."""
        return self._metadata

    @torch.jit.export
    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        """The neighbor lists the engine must compute and store in the systems
        (for the model and all its sub-modules, merged). Their ``length_unit``
        is the length unit of the model; use
        ``options.engine_cutoff(engine_length_unit)`` to get the cutoff in the
        engine's unit."""
        result: List[NeighborListOptions] = []
        for options in self._requested_neighbor_lists:
            result.append(options)
        return result

    @torch.jit.export
    def requested_inputs(self, use_new_names: bool = False) -> Dict[str, ModelOutput]:
        """The additional inputs the engine must store as data in the systems,
        with their unit and sample kind.

        :param use_new_names: use the current names of the quantities
            (``"mass"``, ``"velocity"``, ...). The default (``False``) uses the
            deprecated names (``"masses"``, ``"velocities"``, ...) where one
            exists, for older engines, and warns: engines should pass ``True``.
        """
        if not use_new_names and "requested_inputs" not in self._warned:
            self._warned["requested_inputs"] = True
            message = (
                "calling `requested_inputs()` without `use_new_names=True` is "
                + "deprecated, the names of the inputs will change in the future"
            )
            if torch.jit.is_scripting():
                warnings.warn(message)
            else:
                warn_deprecated(message)

        result: Dict[str, ModelOutput] = {}
        for name, output in self._requested_inputs.items():
            alias = self._input_aliases[name]
            new_name = name
            old_name = name
            if alias != "":
                if name in self._new_names:
                    new_name = alias
                else:
                    old_name = alias
            if use_new_names:
                result[new_name] = output
            else:
                result[old_name] = output
        return result

    # ------------------------------------------------------------------ #
    # forward                                                              #
    # ------------------------------------------------------------------ #

    def forward(
        self,
        systems: List[System],
        options: ModelEvaluationOptions,
        check_consistency: bool,
    ) -> Dict[str, TensorMap]:
        """Run the wrapped model on ``systems``.

        :param systems: the systems, with positions and cell in
            ``options.length_unit``, containing the neighbor lists and inputs
            the model requested
        :param options: the outputs to compute (with the units they should be
            returned in), the length unit of the systems and the selected atoms
        :param check_consistency: run additional checks on the systems, the
            requests and the outputs (slower, to debug models and engines)
        :return: the requested outputs, converted to the requested units
        """
        if not torch.jit.is_scripting():
            if not torch.autograd._profiler_enabled():
                # entering the profiler scopes costs ~10 µs each in Python,
                # only pay for them when profiling
                return self._forward_unprofiled(systems, options, check_consistency)

        with torch.profiler.record_function("AtomisticModel::prepare_inputs"):
            requested, renames = self._module_outputs(options.outputs)
            if check_consistency:
                self._check_inputs(systems, options)
            with torch.profiler.record_function("AtomisticModel::check_atomic_types"):
                self._check_atomic_types(systems)
            with torch.profiler.record_function("AtomisticModel::convert_units_input"):
                systems = self._convert_systems(systems, options.length_unit)

        with torch.profiler.record_function("Model::forward"):
            outputs = self.module(
                systems=systems,
                outputs=requested,
                selected_atoms=options.selected_atoms,
            )

        with torch.profiler.record_function("AtomisticModel::prepare_outputs"):
            if check_consistency:
                self._check_outputs(systems, outputs, requested, options)
            with torch.profiler.record_function("AtomisticModel::convert_units_output"):
                result = self._convert_outputs(outputs, requested, renames)

        return result

    def _forward_unprofiled(
        self,
        systems: List[System],
        options: ModelEvaluationOptions,
        check_consistency: bool,
    ) -> Dict[str, TensorMap]:
        """``forward`` without the profiler scopes"""
        requested, renames = self._prepare_inputs(systems, options, check_consistency)
        systems = self._convert_systems(systems, options.length_unit)
        outputs = self.module(
            systems=systems,
            outputs=requested,
            selected_atoms=options.selected_atoms,
        )
        return self._prepare_outputs(
            systems, outputs, requested, renames, options, check_consistency
        )

    def _prepare_inputs(
        self,
        systems: List[System],
        options: ModelEvaluationOptions,
        check_consistency: bool,
    ) -> Tuple[Dict[str, ModelOutput], Dict[str, str]]:
        """Check the systems and the requests, and get the outputs to request
        from the wrapped model and their renaming"""
        requested, renames = self._module_outputs(options.outputs)
        if check_consistency:
            self._check_inputs(systems, options)
        self._check_atomic_types(systems)
        return requested, renames

    def _prepare_outputs(
        self,
        systems: List[System],
        outputs: Dict[str, TensorMap],
        requested: Dict[str, ModelOutput],
        renames: Dict[str, str],
        options: ModelEvaluationOptions,
        check_consistency: bool,
    ) -> Dict[str, TensorMap]:
        """Check the outputs of the wrapped model, convert and rename them"""
        if check_consistency:
            self._check_outputs(systems, outputs, requested, options)
        return self._convert_outputs(outputs, requested, renames)

    def _warn_once(self, key: str, message: str):
        if key not in self._warned:
            self._warned[key] = True
            if torch.jit.is_scripting():
                warnings.warn(message)
            else:
                warn_deprecated(message)

    def _module_outputs(
        self, outputs: Dict[str, ModelOutput]
    ) -> Tuple[Dict[str, ModelOutput], Dict[str, str]]:
        """The outputs to request from the wrapped model (under the names it
        declared), and the renaming to apply to its results."""
        requested: Dict[str, ModelOutput] = {}
        renames: Dict[str, str] = {}
        for name, output in outputs.items():
            module_name = name
            if name in self._output_names:
                module_name = self._output_names[name]
            if name in self._new_names:
                self._warn_once(
                    "output:" + name,
                    "the '"
                    + name
                    + "' output name is deprecated, please use '"
                    + self._new_names[name]
                    + "' instead",
                )
            if module_name in requested:
                first = module_name
                if module_name in renames:
                    first = renames[module_name]
                raise ValueError(
                    "the same output was requested twice, as '"
                    + first
                    + "' and '"
                    + name
                    + "'"
                )
            requested[module_name] = output
            if module_name != name:
                renames[module_name] = name
        return requested, renames

    def _model_dtype(self) -> torch.dtype:
        if self._dtype_name == "float32":
            return torch.float32
        return torch.float64

    def _conversion_factor(self, from_unit: str, to_unit: str) -> float:
        key = from_unit + "\n" + to_unit
        if key in self._factors:
            return self._factors[key]
        factor = _unit_conversion_factor(from_unit, to_unit)
        self._factors[key] = factor
        return factor

    def _check_atomic_types(self, systems: List[System]):
        if len(systems) == 0:
            return
        if not torch.jit.is_scripting():
            if torch.compiler.is_compiling():
                # this check depends on the data, it can not be part of a
                # graph exported with `torch.export`
                return
        all_types: List[torch.Tensor] = []
        for system in systems:
            all_types.append(system.types)
        atomic_types = torch.cat(all_types)
        if atomic_types.device.type == "meta":
            # shape-only evaluation: there are no values to check
            return

        device = str(atomic_types.device)
        if device in self._known_types:
            known = self._known_types[device]
        else:
            known = torch.tensor(
                self._atomic_types, dtype=torch.int32, device=atomic_types.device
            )
            self._known_types[device] = known

        if known.shape[0] <= 8:
            # faster than `isin` for a few atomic types
            supported = (atomic_types.reshape(-1, 1) == known.reshape(1, -1)).any(dim=1)
        else:
            supported = torch.isin(atomic_types, known)

        if not bool(torch.all(supported)):
            unsupported = atomic_types[torch.logical_not(supported)]
            raise ValueError(
                "this model does not support the atomic type '"
                + str(int(unsupported[0]))
                + "' which is present in the input systems"
            )

    def _check_inputs(self, systems: List[System], options: ModelEvaluationOptions):
        dtype = self._model_dtype()
        for system in systems:
            if system.dtype != dtype:
                raise ValueError(
                    "wrong dtype for the systems: the model wants "
                    + dtype_name(dtype)
                    + ", we got "
                    + dtype_name(system.dtype)
                )
        if len(systems) != 0:
            device = systems[0].device
            for system in systems:
                if system.device != device:
                    raise ValueError(
                        "all systems must be on the same device, got "
                        + str(device)
                        + " and "
                        + str(system.device)
                    )

        # requested outputs
        for name, requested in options.outputs.items():
            if name not in self._outputs:
                implemented = [n for n in self._outputs.keys()]
                implemented.sort()
                raise ValueError(
                    "this model can not compute '"
                    + name
                    + "', the implemented outputs are "
                    + ", ".join(implemented)
                )
            declared = self._outputs[name]
            for parameter in requested.explicit_gradients:
                if parameter not in declared.explicit_gradients:
                    raise ValueError(
                        "this model can not compute explicit gradients of '"
                        + name
                        + "' with respect to '"
                        + parameter
                        + "', the available explicit gradients are ["
                        + ", ".join(declared.explicit_gradients)
                        + "]"
                    )
            if requested.sample_kind == "atom" and declared.sample_kind == "system":
                raise ValueError(
                    "this model can not compute '"
                    + name
                    + "' per atom (sample_kind='atom'), it only computes it "
                    + "per system"
                )
            if (requested.sample_kind == "atom_pair") != (
                declared.sample_kind == "atom_pair"
            ):
                raise ValueError(
                    "the engine requested '"
                    + name
                    + "' with sample_kind='"
                    + requested.sample_kind
                    + "', but the model computes it with sample_kind='"
                    + declared.sample_kind
                    + "'"
                )

        selected_atoms = options.selected_atoms
        if selected_atoms is not None:
            check_selected_atoms(systems, selected_atoms)

        for system in systems:
            known = system.known_neighbor_lists()
            for request in self._requested_neighbor_lists:
                found = False
                for candidate in known:
                    if candidate == request:
                        found = True
                if not found:
                    raise ValueError(
                        "missing neighbors list in the system: the model requested "
                        + "a list for "
                        + str(request)
                        + ", but it was not computed and stored in the system"
                    )

            known_data = system.known_data()
            data: Dict[str, TensorMap] = {}
            requested_inputs: Dict[str, ModelOutput] = {}
            for name, requested in self._requested_inputs.items():
                stored = self._stored_input_name(name, known_data)
                public_name = name
                if name in self._new_names:
                    public_name = self._new_names[name]
                if stored == "":
                    raise ValueError(
                        "missing input '"
                        + public_name
                        + "' in the system: the model requested it, but it was "
                        + "not computed and stored in the system"
                    )
                data[public_name] = system.get_data(stored)
                requested_inputs[public_name] = requested
            if len(requested_inputs) != 0:
                check_quantities([system], data, requested_inputs, None, dtype, "input")

    def _check_outputs(
        self,
        systems: List[System],
        outputs: Dict[str, TensorMap],
        requested: Dict[str, ModelOutput],
        options: ModelEvaluationOptions,
    ):
        values: Dict[str, TensorMap] = {}
        for name, tensor in outputs.items():
            new_name = name
            if name in self._new_names:
                new_name = self._new_names[name]
            values[new_name] = tensor
        requested_new: Dict[str, ModelOutput] = {}
        for name, output in requested.items():
            new_name = name
            if name in self._new_names:
                new_name = self._new_names[name]
            requested_new[new_name] = output
        check_quantities(
            systems,
            values,
            requested_new,
            options.selected_atoms,
            self._model_dtype(),
            "output",
        )

    def _stored_input_name(self, name: str, known_data: List[str]) -> str:
        """The name under which the input ``name`` is stored in a system (the
        name itself or its other spelling), ``""`` if it is missing."""
        if name in known_data:
            return name
        alias = self._input_aliases[name]
        if alias != "" and alias in known_data:
            return alias
        return ""

    def _convert_systems(self, systems: List[System], length_unit: str) -> List[System]:
        factor = self._conversion_factor(length_unit, self._length_unit)
        if factor == 1.0 and len(self._requested_inputs) == 0:
            return systems

        result: List[System] = []
        for system in systems:
            result.append(self._convert_system(system, factor))
        return result

    def _convert_system(self, system: System, factor: float) -> System:
        if factor == 1.0:
            new_system = System(system.types, system.positions, system.cell, system.pbc)
        else:
            new_system = System(
                system.types,
                system.positions * factor,
                system.cell * factor,
                system.pbc,
            )

        for options in system.known_neighbor_lists():
            neighbors = system.get_neighbor_list(options)
            if factor != 1.0:
                neighbors = TensorBlock(
                    neighbors.values * factor,
                    neighbors.samples,
                    neighbors.components,
                    neighbors.properties,
                )
            new_system.add_neighbor_list(options, neighbors)

        known_data = system.known_data()
        used: List[str] = []
        for name, requested in self._requested_inputs.items():
            stored = self._stored_input_name(name, known_data)
            if stored == "":
                # missing inputs are only an error with `check_consistency`, the
                # model might deal with them itself
                continue
            data = self._convert_input(system.get_data(stored), requested.unit)
            new_system.add_data(name, data, _private_warn_on_deprecated=False)
            used.append(stored)

        for name in known_data:
            if name not in used and name not in self._requested_inputs:
                new_system.add_data(
                    name, system.get_data(name), _private_warn_on_deprecated=False
                )

        return new_system

    def _convert_input(self, tensor: TensorMap, unit: str) -> TensorMap:
        stored_unit = tensor.get_info("unit")
        from_unit = ""
        if stored_unit is not None:
            from_unit = stored_unit
        if unit == "" or from_unit == unit:
            return tensor

        factor = self._conversion_factor(from_unit, unit)
        return scaled_tensor_map(tensor, factor, unit)

    def _convert_outputs(
        self,
        outputs: Dict[str, TensorMap],
        requested: Dict[str, ModelOutput],
        renames: Dict[str, str],
    ) -> Dict[str, TensorMap]:
        result: Dict[str, TensorMap] = {}
        for name, tensor in outputs.items():
            engine_name = name
            if name in renames:
                engine_name = renames[name]

            if name in requested and name in self._output_units:
                to_unit = requested[name].unit
                from_unit = self._output_units[name]
                if to_unit != "" and from_unit != "":
                    factor = self._conversion_factor(from_unit, to_unit)
                    if factor != 1.0:
                        for block in tensor.blocks():
                            block.values.mul_(factor)
                            for parameter in block.gradients_list():
                                block.gradient(parameter).values.mul_(factor)
                    if tensor.get_info("unit") is not None:
                        tensor.set_info("unit", to_unit)

            result[engine_name] = tensor
        return result

    # ------------------------------------------------------------------ #
    # saving                                                               #
    # ------------------------------------------------------------------ #

    def save(self, file, collect_extensions=None):
        """Save this model to ``file``, as a TorchScript archive with the
        metadata of the model (see :py:mod:`._model_files` for the entries).

        The model is converted to TorchScript (``torch.jit.script``) in
        evaluation mode and moved to the CPU before saving. Saving to a path is
        atomic: the file is written to a temporary file next to it, flushed to
        the disk and renamed. Saves are serialized between the threads of a
        process. With the ``SOURCE_DATE_EPOCH`` environment variable set (the
        export date), saving the same model gives the same bytes.

        :param file: path (string or ``pathlib.Path``) or binary file object
            to save the model to
        :param collect_extensions: folder where the TorchScript extensions used
            by the model would be collected. This package has no extension
            library, so nothing is copied; the folder is only recorded in the
            ``export-metadata`` of the file.
        """
        if os.environ.get("PYTORCH_JIT", "1") == "0":
            raise RuntimeError(
                "found PYTORCH_JIT=0 in the environment, models can not be saved "
                "when TorchScript is disabled"
            )

        if self._capabilities.length_unit == "":
            warnings.warn(
                "No length unit was provided for the model: the engines will not "
                "be able to convert the positions to the model's length unit",
                stacklevel=2,
            )

        # TorchScript compilation and the changes to this model below are not
        # thread safe: saves are serialized
        with _SAVE_LOCK:
            self._save(file, collect_extensions)

    def _save(self, file, collect_extensions):
        scripted = scripted_for_saving(self.eval())

        # start with empty caches in the file
        scripted._warned = {}
        scripted._factors = {}
        scripted._known_types = {}

        extra = extra_files(self._metadata, collect_extensions)

        # the TorchScript module shares its parameters with this model: move
        # this model back to its device after saving
        device = self._mts_helper.device
        try:
            scripted = scripted.to("cpu")

            def write(destination):
                # always give a file object to `torch.jit.save`: with a path,
                # the name of the file becomes the root folder of the archive
                # (here "archive", the same bytes for the same model)
                with warnings.catch_warnings():
                    warnings.filterwarnings(
                        "ignore", TORCHSCRIPT_DEPRECATION, DeprecationWarning
                    )
                    torch.jit.save(scripted, destination, _extra_files=extra)

            if isinstance(file, (str, os.PathLike)):
                write_atomically(file, write)
            else:
                write(file)
        finally:
            if device.type != "cpu":
                self.to(device)

    def export(self, file, collect_extensions=None):
        """Deprecated alias of :py:meth:`save`.

        :param file: see :py:meth:`save`
        :param collect_extensions: see :py:meth:`save`
        """
        warnings.warn(
            "`AtomisticModel.export()` is deprecated, use `AtomisticModel.save()` "
            "instead",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.save(file, collect_extensions=collect_extensions)


# ============================================================================ #
# functions


def is_atomistic_model(module: torch.nn.Module) -> bool:
    """Check whether ``module`` is an :py:class:`AtomisticModel`, in Python or
    TorchScript (for example loaded with ``torch.jit.load``).

    :param module: the module to check
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"`module` should be a torch.nn.Module, not {type(module).__name__}"
        )
    if isinstance(module, AtomisticModel):
        return True
    if isinstance(module, torch.jit.RecursiveScriptModule):
        return module.original_name == "AtomisticModel"
    return False


def load_atomistic_model(path, extensions_directory=None) -> AtomisticModel:
    """Load an atomistic model saved with :py:meth:`AtomisticModel.save`.

    The file is checked (see :py:func:`check_atomistic_model`: the checksums
    of all the members of the archive are verified before TorchScript reads
    them), loaded with ``torch.jit.load`` and the resulting TorchScript module
    is wrapped in a Python :py:class:`AtomisticModel`. Errors are raised as
    :py:class:`ModelFileError` (a ``ValueError`` and a ``RuntimeError``)
    naming the file.

    :param path: path to the model file
    :param extensions_directory: folder with the TorchScript extensions used
        by the model (unused, see :py:func:`load_model_extensions`)
    """
    load_model_extensions(path, extensions_directory)
    check_atomistic_model(path)
    path = os.fspath(path)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", TORCHSCRIPT_DEPRECATION, DeprecationWarning
            )
            module = torch.jit.load(path, map_location="cpu")
        metadata = module.metadata()
        capabilities = module.capabilities()
    except Exception as e:
        # the checksums are valid: this file was written like this
        raise ModelFileError(
            f"failed to load the model at '{path}': the file contains a TorchScript "
            f"archive that can not be loaded ({type(e).__name__}: {_first_line(e)})"
        ) from e
    return AtomisticModel(module, metadata, capabilities)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""
