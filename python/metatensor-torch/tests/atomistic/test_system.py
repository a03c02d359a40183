import copy
import math
import pickle
import warnings
from typing import List

import pytest
import torch

from metatensor.torch import Labels, TensorBlock, TensorMap
from metatensor.torch.atomistic import NeighborListOptions, System
from metatensor.torch.atomistic._formatting import _format_fixed, _format_general
from metatensor.torch.atomistic._system import _options_json

from ._models import neighbor_block


def _neighbors(n_pairs: int = 2, dtype=torch.float64, requires_grad=False):
    samples = torch.tensor([[0, 1, 0, 0, 0], [1, 0, 0, 0, 0], [0, 0, 1, 0, 0]])
    values = torch.zeros((n_pairs, 3, 1), dtype=dtype, requires_grad=requires_grad)
    return neighbor_block(values, samples[:n_pairs])


def _tensor(dtype=torch.float64, value: float = 1.0) -> TensorMap:
    block = TensorBlock(
        values=torch.full((4, 1), value, dtype=dtype),
        samples=Labels(["system", "atom"], torch.tensor([[0, i] for i in range(4)])),
        components=[],
        properties=Labels("mass", torch.tensor([[0]])),
    )
    return TensorMap(Labels("_", torch.tensor([[0]])), [block])


# ============================================================================ #
# NeighborListOptions


def test_options_api():
    options = NeighborListOptions(3.5, True, False, "first")
    assert options.cutoff == 3.5
    assert options.full_list is True
    assert options.strict is False
    assert options.length_unit == ""
    assert options.requestors() == ["first"]

    options.add_requestor("second")
    options.add_requestor("first")
    options.add_requestor("")
    assert options.requestors() == ["first", "second"]
    # the returned list is a copy
    options.requestors().append("third")
    assert options.requestors() == ["first", "second"]

    assert NeighborListOptions(3.5, True, False).requestors() == []

    with pytest.raises(AttributeError):
        options.cutoff = 3.0

    options.length_unit = "nm"
    assert options.length_unit == "nm"
    assert math.isclose(options.engine_cutoff("angstrom"), 35.0)
    assert options.engine_cutoff("") == 3.5

    with pytest.raises(ValueError, match="unknown unit 'foo'"):
        options.length_unit = "foo"
    with pytest.raises(ValueError, match="incompatible with 'length'"):
        options.length_unit = "eV"


def test_options_validation():
    message = "`cutoff` must be a positive finite number, got -1.0"
    with pytest.raises(ValueError, match=message):
        NeighborListOptions(-1.0, True, False)
    with pytest.raises(ValueError, match="`cutoff` must be a positive finite"):
        NeighborListOptions(math.nan, True, False)
    with pytest.raises(TypeError, match="`full_list` must be a bool"):
        NeighborListOptions(3.0, 1, False)
    with pytest.raises(TypeError, match="`cutoff` must be a float"):
        NeighborListOptions("3.0", True, False)

    # integers are accepted
    assert NeighborListOptions(3, True, False).cutoff == 3.0


def test_options_equality():
    first = NeighborListOptions(3.5, True, False, "a")
    second = NeighborListOptions(3.5, True, False, "b")
    second.length_unit = "nm"
    assert first == second
    assert not (first != second)
    assert first != NeighborListOptions(3.5, False, False)
    assert first != NeighborListOptions(3.5, True, True)
    assert first != NeighborListOptions(3.6, True, False)


def test_options_printing():
    options = NeighborListOptions(3.4, True, False, "hello")
    assert str(options) == (
        "NeighborListOptions(cutoff=3.400000, full_list=True, strict=False)"
    )
    options.add_requestor("another one")
    options.length_unit = "angstrom"
    assert repr(options) == (
        "NeighborListOptions\n"
        "    cutoff: 3.400000 angstrom\n"
        "    full_list: True\n"
        "    strict: False\n"
        "    requested by:\n"
        "        - hello\n"
        "        - another one\n"
    )
    options = NeighborListOptions(1e-7, False, True)
    assert repr(options) == (
        "NeighborListOptions\n"
        "    cutoff: 0.000000\n"
        "    full_list: False\n"
        "    strict: True\n"
    )


@pytest.mark.parametrize(
    "value", [0.0, 3.0, 3.4, 1e-7, 0.1 + 0.2, 1234.56789, 5e-7, 123456789.123]
)
def test_format_fixed(value):
    assert _format_fixed(value) == f"{value:.6f}"
    assert _format_fixed(-value) == f"{-value:.6f}"
    scripted = torch.jit.script(_format_fixed)
    assert scripted(value) == f"{value:.6f}"


@pytest.mark.parametrize(
    "value",
    [0.0, 3.57, 1.785, 1e-5, 1e-4, 123456.0, 1234567.0, 0.1 + 0.2, 2.5e-12, 7e22],
)
def test_format_general(value):
    assert _format_general(value) == f"{value:g}"
    assert _format_general(-value) == f"{-value:g}" or value == 0.0
    scripted = torch.jit.script(_format_general)
    assert scripted(value) == f"{value:g}"


def test_options_state():
    import json

    options = NeighborListOptions(0.1 + 0.2, True, False, "hello")
    options.add_requestor("ünïcode")
    options.length_unit = "nm"
    (state,) = options.__getstate__()

    data = json.loads(state)
    assert data == {
        "class": "NeighborListOptions",
        "cutoff": 4599075939470750516,
        "full_list": True,
        "length_unit": "nm",
        "requestors": ["hello", "ünïcode"],
        "strict": False,
    }
    # same text as Python's json module
    assert state == json.dumps(data, indent=4, sort_keys=True)

    restored = NeighborListOptions.__new__(NeighborListOptions)
    restored.__setstate__((state,))
    assert restored.cutoff == 0.1 + 0.2
    assert restored.requestors() == ["hello", "ünïcode"]
    assert restored.length_unit == "nm"
    assert repr(restored) == repr(options)

    # the TorchScript version produces the same text
    scripted = torch.jit.script(_options_json)
    assert scripted(0.1 + 0.2, True, False, "nm", ["hello", "ünïcode"]) == state

    with pytest.raises(ValueError, match="expected 'class' to be"):
        restored.__setstate__((state.replace("NeighborListOptions", "Other"),))


def test_options_pickle():
    options = NeighborListOptions(2.5, False, True, "model")
    options.length_unit = "angstrom"
    restored = pickle.loads(pickle.dumps(options))
    assert restored == options
    assert repr(restored) == repr(options)
    assert repr(copy.deepcopy(options)) == repr(options)


class OptionsModule(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.options = NeighborListOptions(0.1 + 0.2, True, False, "Module")
        self.options.length_unit = "nm"

    def forward(self, cutoff: float) -> NeighborListOptions:
        return NeighborListOptions(cutoff, False, True, "forward")

    @torch.jit.export
    def requested(self) -> List[NeighborListOptions]:
        return [self.options]


def test_options_torchscript(tmp_path):
    module = torch.jit.script(OptionsModule())
    created = module(2.0)
    assert isinstance(created, NeighborListOptions)
    assert str(created) == (
        "NeighborListOptions(cutoff=2.000000, full_list=False, strict=True)"
    )

    path = str(tmp_path / "module.pt")
    torch.jit.save(module, path)
    loaded = torch.jit.load(path)
    (options,) = loaded.requested()
    assert options.cutoff == 0.1 + 0.2
    assert options.length_unit == "nm"
    assert options.requestors() == ["Module"]
    assert options.engine_cutoff("angstrom") == pytest.approx(3.0)


# ============================================================================ #
# System construction


def test_system_construction(diamond_system):
    system = diamond_system
    assert len(system) == 4
    assert system.types.dtype == torch.int32
    assert system.dtype == torch.float64
    assert system.device == torch.device("cpu")
    assert system.pbc.tolist() == [True, True, True]
    assert system.known_neighbor_lists() == []
    assert system.known_data() == []

    system = System(
        types=torch.tensor([1, 2], dtype=torch.int64),
        positions=torch.zeros((2, 3), dtype=torch.float32),
        cell=torch.zeros((3, 3), dtype=torch.float32),
        pbc=torch.tensor([False, False, False]),
    )
    assert system.types.dtype == torch.int32
    assert system.dtype == torch.float32


def _arguments(**kwargs):
    arguments = {
        "types": torch.tensor([1, 2, 3]),
        "positions": torch.zeros((3, 3), dtype=torch.float64),
        "cell": torch.eye(3, dtype=torch.float64),
        "pbc": torch.tensor([True, True, True]),
    }
    arguments.update(kwargs)
    return arguments


@pytest.mark.parametrize(
    "arguments, message",
    [
        (
            {"types": torch.tensor([[1, 2, 3]])},
            "`types` must be a 1 dimensional tensor, got a tensor with 2 dimensions",
        ),
        (
            {"types": torch.tensor([1.0, 2.0, 3.0])},
            "`types` must be a tensor of integers, got torch.float32 instead",
        ),
        (
            {"positions": torch.zeros((3, 3, 1), dtype=torch.float64)},
            "`positions` must be a 2 dimensional tensor, got a tensor with 3 dim",
        ),
        (
            {"positions": torch.zeros((4, 3), dtype=torch.float64)},
            r"`positions` must be a \(len\(types\) x 3\) tensor, got a tensor with "
            r"shape \[4, 3\]",
        ),
        (
            {"positions": torch.zeros((3, 3), dtype=torch.int32)},
            "`positions` must be a tensor of floating point data, got torch.int32",
        ),
        (
            {"cell": torch.eye(4, dtype=torch.float64)},
            r"`cell` must be a \(3 x 3\) tensor, got a tensor with shape \[4, 4\]",
        ),
        (
            {"cell": torch.eye(3, dtype=torch.float32)},
            "`cell` must have the same dtype as `positions`, got torch.float32 and "
            "torch.float64",
        ),
        (
            {"pbc": torch.tensor([1, 1, 1])},
            "`pbc` must be a tensor of booleans, got torch.int64 instead",
        ),
        (
            {"pbc": torch.tensor([True, True])},
            "`pbc` must be a 1 dimensional tensor with 3 entries",
        ),
        (
            {"pbc": torch.tensor([True, False, True])},
            r"if `pbc` is False along any direction, the corresponding cell vector "
            r"must be zero, but `pbc\[1\]` is False and `cell\[1\]` is not zero",
        ),
        (
            {"positions": torch.zeros((3, 3), dtype=torch.float64, device="meta")},
            "`types`, `positions`, `cell`, and `pbc` must be on the same device, "
            "got cpu, meta, cpu, and cpu",
        ),
    ],
)
def test_system_validation(arguments, message):
    with pytest.raises(ValueError, match=message):
        System(**_arguments(**arguments))


def test_system_types_errors():
    with pytest.raises(TypeError, match="`positions` must be a torch.Tensor"):
        System(**_arguments(positions=[[0.0, 0.0, 0.0]] * 3))


def test_partial_pbc():
    cell = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.5, 3.0]])
    system = System(
        types=torch.tensor([1, 1]),
        positions=torch.zeros((2, 3)),
        cell=cell,
        pbc=torch.tensor([True, False, True]),
    )
    assert system.pbc.tolist() == [True, False, True]
    assert (
        str(system)
        == "System with 2 atoms, periodic cell: [2, 0, 0, 0, 0, 0, 0, 0.5, 3]"
    )
    # periodic directions may have zero cell vectors (no check)
    System(
        types=torch.tensor([1]),
        positions=torch.zeros((1, 3)),
        cell=torch.zeros((3, 3)),
        pbc=torch.tensor([True, True, True]),
    )


def test_setters(diamond_system):
    system = diamond_system
    positions = torch.rand((4, 3), dtype=torch.float64)
    system.positions = positions
    assert system.positions is positions

    system.types = torch.tensor([1, 2, 3, 4], dtype=torch.int64)
    assert system.types.dtype == torch.int32
    assert system.types.tolist() == [1, 2, 3, 4]

    cell = 2 * system.cell
    system.cell = cell
    assert system.cell is cell

    with pytest.raises(ValueError, match="new `positions` must have the same dtype"):
        system.positions = torch.rand((4, 3), dtype=torch.float32)
    with pytest.raises(ValueError, match=r"new `positions` must be a \(len\(types\)"):
        system.positions = torch.rand((5, 3), dtype=torch.float64)
    with pytest.raises(ValueError, match="new `positions` must be on the same device"):
        system.positions = torch.rand((4, 3), dtype=torch.float64, device="meta")
    with pytest.raises(ValueError, match="new `types` must contain 4 entries"):
        system.types = torch.tensor([1, 2, 3])
    with pytest.raises(ValueError, match="new `types` must be a tensor of integers"):
        system.types = torch.tensor([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match=r"new `cell` must be a \(3 x 3\) tensor"):
        system.cell = torch.eye(2, dtype=torch.float64)
    with pytest.raises(ValueError, match="new `cell` must have the same dtype"):
        system.cell = torch.eye(3)

    # pbc setter checks the cell again
    with pytest.raises(ValueError, match=r"`pbc\[0\]` is False"):
        system.pbc = torch.tensor([False, True, True])
    with pytest.raises(ValueError, match="new `pbc` must be a tensor of booleans"):
        system.pbc = torch.tensor([1, 1, 1])

    system.cell = torch.tensor(
        [[0.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]], dtype=torch.float64
    )
    system.pbc = torch.tensor([False, True, True])
    with pytest.raises(ValueError, match=r"`pbc\[0\]` is False"):
        system.cell = torch.eye(3, dtype=torch.float64)


def test_printing(diamond_system, methane_system):
    expected = (
        "System with 4 atoms, periodic cell: [0, 3.57, 3.57, 1.785, 0, 1.785, "
        "1.785, 1.785, 0]"
    )
    assert str(diamond_system) == expected
    assert repr(diamond_system) == expected
    assert str(methane_system) == "System with 5 atoms, non periodic"


# ============================================================================ #
# neighbor lists


def test_neighbor_lists(diamond_system):
    system = diamond_system
    options = [
        NeighborListOptions(3.0, True, True),
        NeighborListOptions(2.0, True, True),
        NeighborListOptions(4.0, False, True),
        NeighborListOptions(5.0, True, False),
        NeighborListOptions(1.0, False, False),
    ]
    blocks = [_neighbors() for _ in options]
    for o, b in zip(options, blocks):
        system.add_neighbor_list(o, b)

    # sorted by (strict, full_list, cutoff)
    known = system.known_neighbor_lists()
    assert [(o.strict, o.full_list, o.cutoff) for o in known] == [
        (False, False, 1.0),
        (False, True, 5.0),
        (True, False, 4.0),
        (True, True, 2.0),
        (True, True, 3.0),
    ]
    assert known[0] is options[4]

    for o, b in zip(options, blocks):
        assert system.get_neighbor_list(o) is b
    # only cutoff, full_list and strict are used in the lookup
    lookup = NeighborListOptions(3.0, True, True, "someone else")
    lookup.length_unit = "nm"
    assert system.get_neighbor_list(lookup) is blocks[0]

    message = (
        r"the neighbors list for NeighborListOptions\(cutoff=3.000000, "
        r"full_list=True, strict=True\) already exists in this system"
    )
    with pytest.raises(ValueError, match=message):
        system.add_neighbor_list(NeighborListOptions(3.0, True, True), _neighbors())

    message = (
        r"No neighbor list for NeighborListOptions\(cutoff=3.500000, "
        r"full_list=True, strict=True\) was found.\nIs it part of the "
        "`requested_neighbor_lists` for this model?"
    )
    with pytest.raises(ValueError, match=message):
        system.get_neighbor_list(NeighborListOptions(3.5, True, True))


def test_neighbor_list_validation(diamond_system):
    system = diamond_system
    options = NeighborListOptions(3.0, True, True)
    good = _neighbors()

    def modified(samples=None, components=None, properties=None, values=None):
        return TensorBlock(
            good.values if values is None else values,
            good.samples if samples is None else samples,
            good.components if components is None else components,
            good.properties if properties is None else properties,
        )

    with pytest.raises(ValueError, match="invalid samples for `neighbors`"):
        system.add_neighbor_list(
            options, modified(samples=good.samples.rename("first_atom", "first"))
        )
    message = "invalid components for `neighbors`: there should be a single 'xyz'"
    with pytest.raises(ValueError, match=message):
        system.add_neighbor_list(
            options,
            modified(components=[Labels("abc", torch.tensor([[0], [1], [2]]))]),
        )
    with pytest.raises(ValueError, match=message):
        system.add_neighbor_list(
            options,
            modified(components=[Labels("xyz", torch.tensor([[0], [1], [3]]))]),
        )
    message = "invalid properties for `neighbors`: there should be a single 'distance'"
    with pytest.raises(ValueError, match=message):
        system.add_neighbor_list(
            options, modified(properties=Labels("distance", torch.tensor([[1]])))
        )
    with pytest.raises(ValueError, match=message):
        system.add_neighbor_list(
            options, modified(properties=Labels("d", torch.tensor([[0]])))
        )

    with_gradient = _neighbors()
    with_gradient.add_gradient(
        "positions",
        TensorBlock(
            torch.zeros((1, 3, 1), dtype=torch.float64),
            Labels("sample", torch.tensor([[0]])),
            good.components,
            good.properties,
        ),
    )
    message = "the neighbor list block should not have any gradients"
    with pytest.raises(ValueError, match=message):
        system.add_neighbor_list(options, with_gradient)

    message = r"`neighbors` dtype \(torch.float32\) does not match this system's"
    with pytest.raises(ValueError, match=message):
        system.add_neighbor_list(options, _neighbors(dtype=torch.float32))
    message = r"`neighbors` device \(meta\) does not match this system's device"
    with pytest.raises(ValueError, match=message):
        system.add_neighbor_list(options, good.to("meta"))

    assert system.known_neighbor_lists() == []


def test_neighbor_list_autograd_warning(diamond_system):
    system = diamond_system
    system.positions.requires_grad_(True)
    message = "You should use `register_autograd_neighbors\\(\\)`"
    with pytest.warns(UserWarning, match=message):
        system.add_neighbor_list(NeighborListOptions(3.0, True, True), _neighbors())

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        system.add_neighbor_list(
            NeighborListOptions(4.0, True, True), _neighbors(requires_grad=True)
        )


# ============================================================================ #
# custom data


def test_data(diamond_system):
    system = diamond_system
    mass = _tensor()
    system.add_data("mass", mass)
    system.add_data("mtt::custom", _tensor())
    system.add_data("energy/variant", _tensor())
    assert sorted(system.known_data()) == ["energy/variant", "mass", "mtt::custom"]
    assert system.get_data("mass") is mass

    message = "custom data 'mass' is already present in this system"
    with pytest.raises(ValueError, match=message):
        system.add_data("mass", _tensor(value=2.0))
    system.add_data("mass", _tensor(value=2.0), override=True)
    assert system.get_data("mass").block().values[0, 0] == 2.0

    with pytest.raises(ValueError, match="no data for 'charge' found in this system"):
        system.get_data("charge")


@pytest.mark.parametrize(
    "name", ["types", "positions", "Position", "cell", "neighbors", "NEIGHBOR"]
)
def test_data_reserved_names(diamond_system, name):
    with pytest.raises(ValueError, match=f"custom data can not be named '{name}'"):
        diamond_system.add_data(name, _tensor())
    with pytest.raises(ValueError, match=f"custom data can not be named '{name}'"):
        diamond_system.get_data(name)


def test_data_names(diamond_system):
    message = "'not-a-quantity' is not a valid quantity name"
    with pytest.raises(ValueError, match=message):
        diamond_system.add_data("not-a-quantity", _tensor())
    with pytest.raises(ValueError, match="is not a valid quantity name"):
        diamond_system.add_data("energy/", _tensor())

    # deprecated names are accepted with a warning (unless silenced)
    with pytest.warns(DeprecationWarning, match="'velocities' is deprecated"):
        diamond_system.add_data("velocities", _tensor())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        diamond_system.add_data("charges", _tensor(), _private_warn_on_deprecated=False)
    assert sorted(diamond_system.known_data()) == ["charges", "velocities"]


def test_data_device_dtype(diamond_system):
    message = (
        r"dtype \(torch.float32\) of the custom data 'mass' does not match this "
        r"system dtype \(torch.float64\)"
    )
    with pytest.raises(ValueError, match=message):
        diamond_system.add_data("mass", _tensor(dtype=torch.float32))

    message = (
        r"device \(meta\) of the custom data 'mass' does not match this system "
        r"device \(cpu\)"
    )
    with pytest.raises(ValueError, match=message):
        diamond_system.add_data("mass", _tensor().to("meta"))

    # empty maps report the default dtype
    empty = TensorMap(Labels.empty("_"), [])
    float32 = diamond_system.to(torch.float32)
    float32.add_data("mtt::empty", empty)


# ============================================================================ #
# to()


def test_to(diamond_system):
    system = diamond_system
    system.add_neighbor_list(NeighborListOptions(3.0, True, True), _neighbors())
    system.add_data("mass", _tensor())

    converted = system.to(torch.float32)
    assert converted.dtype == torch.float32
    assert converted.types.dtype == torch.int32
    assert converted.pbc.dtype == torch.bool
    assert converted.cell.dtype == torch.float32
    (options,) = converted.known_neighbor_lists()
    assert converted.get_neighbor_list(options).values.dtype == torch.float32
    assert converted.get_data("mass").block().values.dtype == torch.float32
    torch.testing.assert_close(converted.positions, system.positions.float())

    moved = system.to("meta")
    assert moved.device.type == "meta"
    assert moved.dtype == torch.float64
    assert moved.types.device.type == "meta"
    assert moved.pbc.device.type == "meta"
    assert moved.get_data("mass").device.type == "meta"
    assert moved.get_neighbor_list(options).device.type == "meta"
    assert str(moved) == "System with 4 atoms, on the meta device"

    both = system.to(torch.device("meta"), torch.float16)
    assert both.device.type == "meta" and both.dtype == torch.float16
    both = system.to(dtype=torch.float32, device="cpu")
    assert both.dtype == torch.float32

    with pytest.raises(ValueError, match="can not give a dtype twice"):
        system.to(torch.float32, dtype=torch.float64)
    with pytest.raises(ValueError, match="can not give a device twice"):
        system.to("cpu", device="cpu")
    with pytest.raises(ValueError, match="must be a floating point dtype"):
        system.to(torch.int32)


# ============================================================================ #
# TorchScript


def _scripted_function(
    system: System, options: NeighborListOptions
) -> List[NeighborListOptions]:
    neighbors = system.get_neighbor_list(options)
    assert neighbors.values.shape[1] == 3
    new = System(system.types, system.positions * 2, system.cell * 2, system.pbc)
    new.add_neighbor_list(options, neighbors)
    new.add_data("mass", system.get_data("mass"))
    new = new.to(torch.float32)
    assert new.dtype == torch.float32
    assert len(new) == 4
    return new.known_neighbor_lists()


def test_torchscript(diamond_system):
    function = torch.jit.script(_scripted_function)
    system = diamond_system
    options = NeighborListOptions(3.0, True, True, "me")
    system.add_neighbor_list(options, _neighbors())
    system.add_data("mass", _tensor())
    (result,) = function(system, options)
    assert result == options
    assert result.requestors() == ["me"]

    @torch.jit.script
    def printing(system: System, options: NeighborListOptions) -> List[str]:
        return [str(system), system.__repr__(), str(options), options.__repr__()]

    assert printing(system, options) == [
        str(system),
        repr(system),
        str(options),
        repr(options),
    ]

    @torch.jit.script
    def invalid(system: System):
        system.add_data("positions", system.get_data("mass"))

    with pytest.raises(torch.jit.Error, match="custom data can not be named"):
        invalid(system)
