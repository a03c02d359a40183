"""The ``metatensor.torch`` classes, serialization, conversions, ``Module`` and
operations work with data on any device.

Every test runs with data on ``device`` (``cpu``, and ``cuda`` when a GPU is
available) while torch's default device is another one (see the ``elsewhere``
fixture in ``conftest.py``): any tensor created without an explicit ``device=``
ends up on the wrong device and makes the test fail. The results are compared
with the same computation on the CPU, and must live entirely (values,
gradients and every Labels) on ``device``, with the input dtype.

TorchScript code does not see the default device of Python, so the operations
are also run as plain Python functions taking the TorchScript branches
(``torch_jit_is_scripting() == True``), which is the code running on the device
when the compiled operations are called.
"""

import functools
import io
from types import SimpleNamespace
from typing import Any, Callable, Dict, List

import pytest
import torch

import metatensor
import metatensor.torch as mtt
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatensor_torch._single_source import execute_with_backend

from device_checks import RANDOM_OPERATIONS, check, on_device, operation_calls


DTYPES = [torch.float64, torch.float32]

# float32 results are compared with a float64 computation; the float64
# tolerances are the defaults of `torch.testing.assert_close`
_check = functools.partial(
    check, tolerances={"float64": (1e-7, 1e-7), "float32": (1e-4, 1e-4)}
)


@pytest.fixture(scope="module", autouse=True)
def no_jit_optimization():
    """Calling each compiled operation a few times is much faster without the
    optimizations of the TorchScript graph executor."""
    previous = torch._C._get_graph_executor_optimize()
    torch._C._set_graph_executor_optimize(False)
    yield
    torch._C._set_graph_executor_optimize(previous)


# =========================================================================== #
# data, created on the CPU and then moved                                     #
# =========================================================================== #


def _labels(names: List[str], rows: List[List[int]]) -> Labels:
    return Labels(names, torch.tensor(rows, dtype=torch.int32).reshape(-1, len(names)))


def _block(
    generator: torch.Generator, n_samples: int, n_properties: int, components: bool
) -> TensorBlock:
    comps = [Labels.range("o3_mu", 3)] if components else []
    shape = [3] if components else []
    samples = _labels(["system", "atom"], [[i // 2, i % 2] for i in range(n_samples)])
    properties = Labels.range("n", n_properties)
    values = torch.rand([n_samples, *shape, n_properties], generator=generator)
    block = TensorBlock(values.to(torch.float64) + 0.5, samples, comps, properties)
    rows = [[s, s // 2, a] for s in range(1, n_samples) for a in range(2)]
    gradient = torch.randn([len(rows), 3, *shape, n_properties], generator=generator)
    block.add_gradient(
        "positions",
        TensorBlock(
            gradient.to(torch.float64),
            _labels(["sample", "system", "atom"], rows),
            [Labels.range("xyz", 3), *comps],
            properties,
        ),
    )
    return block


def _tensor(seed: int = 0, components: bool = False) -> TensorMap:
    """Three blocks with keys ``(key_1, key_2)``, samples ``(system, atom)``,
    three properties and ``positions`` gradients (float64, CPU)."""
    generator = torch.Generator().manual_seed(seed)
    keys = _labels(["key_1", "key_2"], [[0, 0], [1, 0], [1, 2]])
    blocks = [_block(generator, n, 3, components) for n in (4, 6, 2)]
    tensor = TensorMap(keys, blocks)
    tensor.set_info("unit", "eV")
    return tensor


def _single_block_tensor(values: torch.Tensor) -> TensorMap:
    """A map with one block without gradients, holding ``values``."""
    block = TensorBlock(
        values,
        Labels.range("sample", values.shape[0]),
        [],
        Labels.range("property", values.shape[1]),
    )
    return TensorMap(Labels.single(), [block])


def _cpu_inputs() -> Dict[str, Any]:
    """All the inputs of the tests (float64, on the CPU)."""
    generator = torch.Generator().manual_seed(1)

    def uniform(*shape):
        return 2 * torch.rand(shape, generator=generator, dtype=torch.float64) - 1

    tensor = _tensor()
    no_gradients = TensorMap(
        tensor.keys,
        [
            TensorBlock(b.values, b.samples, b.components, b.properties)
            for b in tensor.blocks()
        ],
    )
    return {
        "tensor": tensor,
        "other": _tensor(seed=2),
        "components": _tensor(components=True),
        "no_gradients": no_gradients,
        "block": tensor.block(1),
        "X": _single_block_tensor(uniform(8, 3)),
        "Y": _single_block_tensor(uniform(8, 2)),
        "square": _single_block_tensor(
            uniform(5, 5) + 5 * torch.eye(5, dtype=torch.float64)
        ),
        "rhs": _single_block_tensor(uniform(5, 2)),
        "array": uniform(2, 3, 4),
        "selection": _labels(["system"], [[0], [2]]),
        "other_selection": _labels(["system"], [[1]]),
        "properties_selection": Labels.range("n", 2),
        "keys": _labels(["key_1"], [[1]]),
        "labels": _labels(["atom", "type"], [[0, 6], [1, 1], [2, 6]]),
        "dimension": _labels(["type"], [[1], [6], [8]]),
        "new_values": torch.tensor([3, 4, 5], dtype=torch.int32),
        "a": _labels(["a", "b"], [[0, 1], [1, 2], [2, 3], [4, 1]]),
        "b": _labels(["a", "b"], [[1, 2], [5, 5], [0, 1]]),
        "column": torch.tensor([7, 8, 9, 10], dtype=torch.int32),
        "b_only": _labels(["b"], [[1]]),
        "key_2": _labels(["key_2"], [[2]]),
        "key_2_values": _labels(["key_2"], [[2], [0]]),
        "cpu_key_2_values": _labels(["key_2"], [[2], [0]]),
        "cpu_selection": _labels(["atom"], [[1]]),
        "empty_selection": Labels.empty(["system"]),
        "empty_labels": Labels.empty(["atom", "type"]),
        "empty_dimension": Labels.empty(["type"]),
    }


def _move(name: str, value: Any, dtype, device) -> Any:
    if isinstance(value, Labels) and name.startswith("cpu_"):
        return value
    elif isinstance(value, (TensorMap, TensorBlock)):
        return value.to(dtype=dtype, device=device)
    elif isinstance(value, Labels):
        return value.to(device)
    elif isinstance(value, torch.Tensor):
        if value.is_floating_point():
            value = value.to(dtype)
        return value.to(device)
    return value


def _inputs(dtype, device) -> SimpleNamespace:
    inputs = {k: _move(k, v, dtype, device) for k, v in _cpu_inputs().items()}
    return SimpleNamespace(**inputs, device=device)


def _expected_inputs() -> SimpleNamespace:
    return SimpleNamespace(**_cpu_inputs(), device=torch.device("cpu"))


# =========================================================================== #
# Labels                                                                      #
# =========================================================================== #

LABELS_CALLS: Dict[str, Callable[[SimpleNamespace], Any]] = {
    "union": lambda d: d.a.union(d.b),
    "union_and_mapping": lambda d: d.a.union_and_mapping(d.b),
    "intersection": lambda d: d.a.intersection(d.b),
    "intersection_and_mapping": lambda d: d.a.intersection_and_mapping(d.b),
    "difference": lambda d: d.a.difference(d.b),
    "difference_and_mapping": lambda d: d.a.difference_and_mapping(d.b),
    "select": lambda d: [
        d.a.select(d.b),
        d.a.select(d.b_only),
        d.a.select(Labels(["b"], d.a.values[:0, :1])),
    ],
    "position": lambda d: [
        d.a.position(d.b.entry(0)),
        d.a.position(d.b.values[1]),
        d.a.position([4, 1]),
        d.a.position((2, 3)),
    ],
    "__contains__": lambda d: [d.b.entry(0) in d.a, [5, 5] in d.a, (4, 1) in d.a],
    "__eq__": lambda d: [d.a == d.a, d.a == d.b, d.a != d.b, d.a[0] == d.a[0]],
    "entry": lambda d: [d.a.entry(1), d.a[-1], list(d.a)[2]],
    "column": lambda d: [d.a.column("b"), d.a["a"]],
    "permute": lambda d: d.a.permute([1, -2]),
    "append": lambda d: d.a.append("c", d.column),
    "insert": lambda d: d.a.insert(1, "c", d.column),
    "remove": lambda d: d.b.remove("b"),
    "rename": lambda d: d.a.rename("a", "z"),
    "to": lambda d: [d.a.to(d.device), d.a.to(str(d.device)), d.a.to()],
    "print": lambda d: [str(d.a), repr(d.b), d.a.entry(0).print()],
    "check_unique": lambda d: Labels(["a", "b"], d.a.values + 1),
}


@pytest.mark.parametrize("name", sorted(LABELS_CALLS))
def test_labels(name, device, elsewhere):
    expected = LABELS_CALLS[name](_expected_inputs())
    inputs = _inputs(torch.float64, device)
    with elsewhere(device):
        result = LABELS_CALLS[name](inputs)
    _check(result, expected, device, torch.float64)


def test_labels_static_constructors(device):
    # the static constructors create data on torch's default device (the CPU
    # unless changed by the user)
    with torch.device(device):
        for labels in [
            Labels.single(),
            Labels.empty(["a", "b"]),
            Labels.range("a", 4),
        ]:
            assert on_device(labels.values, device)


def test_labels_duplicated(device, elsewhere):
    values = torch.tensor([[0, 1], [1, 2], [0, 1]], dtype=torch.int32, device=device)
    with elsewhere(device):
        with pytest.raises(RuntimeError, match=r"\[0, 1\] is already present"):
            Labels(["a", "b"], values)


def test_labels_cpu_arguments(device, elsewhere):
    """CPU Labels and tensors can be used with Labels on another device."""
    d = _inputs(torch.float64, device)
    cpu = _expected_inputs()
    with elsewhere(device):
        results = [
            d.a.union(cpu.b),
            d.a.intersection_and_mapping(cpu.b),
            d.a.difference(cpu.b),
            d.a.select(cpu.b),
            d.a.position(cpu.b.entry(0)),
            cpu.b.entry(0) in d.a,
            d.a == cpu.a,
            d.a.append("c", cpu.column),
        ]
    expected = [
        cpu.a.union(cpu.b),
        cpu.a.intersection_and_mapping(cpu.b),
        cpu.a.difference(cpu.b),
        cpu.a.select(cpu.b),
        cpu.a.position(cpu.b.entry(0)),
        True,
        True,
        cpu.a.append("c", cpu.column),
    ]
    _check(results, expected, device, torch.float64)


# =========================================================================== #
# TensorBlock and TensorMap                                                   #
# =========================================================================== #


def _new_block(d) -> TensorBlock:
    block = TensorBlock(
        d.block.values * 2,
        d.block.samples,
        d.block.components,
        d.block.properties,
    )
    gradient = d.block.gradient("positions")
    block.add_gradient(
        "positions",
        TensorBlock(
            gradient.values, gradient.samples, gradient.components, gradient.properties
        ),
    )
    return block


def _tensor_map(d) -> TensorMap:
    return TensorMap(d.tensor.keys, [b.copy() for b in d.tensor.blocks()])


TENSOR_CALLS: Dict[str, Callable[[SimpleNamespace], Any]] = {
    "TensorBlock": _new_block,
    "TensorMap": _tensor_map,
    "block": lambda d: [
        d.tensor.block(1),
        d.tensor.block({"key_1": 1, "key_2": 2}),
        d.tensor.block(d.tensor.keys.entry(0)),
        d.tensor.block(d.key_2),
    ],
    "blocks": lambda d: [
        d.tensor.blocks({"key_1": 1}),
        d.tensor.blocks(d.keys),
        d.tensor.blocks([0, 2]),
    ],
    "items": lambda d: list(d.tensor.items()),
    "copy": lambda d: [d.tensor.copy(), d.block.copy()],
    "keys_to_samples": lambda d: [
        d.tensor.keys_to_samples("key_1"),
        d.tensor.keys_to_samples(["key_1", "key_2"], sort_samples=False),
    ],
    "keys_to_properties": lambda d: [
        d.tensor.keys_to_properties("key_2"),
        d.tensor.keys_to_properties(["key_1", "key_2"], fill_value=-1.0),
        d.tensor.keys_to_properties(d.key_2_values),
        d.tensor.keys_to_properties(d.cpu_key_2_values),
    ],
    "components_to_properties": lambda d: d.components.components_to_properties(
        "o3_mu"
    ),
    "to": lambda d: [
        d.tensor.to(torch.float64).to(d.block.dtype),
        d.tensor.to(device=d.device),
        d.block.to(d.device, d.block.dtype),
        d.tensor.keys.to(device=d.device),
    ],
    "print": lambda d: [str(d.tensor), str(d.block), repr(d.tensor.block(0))],
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", sorted(TENSOR_CALLS))
def test_tensor(name, dtype, device, elsewhere):
    expected = TENSOR_CALLS[name](_expected_inputs())
    inputs = _inputs(dtype, device)
    with elsewhere(device):
        result = TENSOR_CALLS[name](inputs)
    _check(result, expected, device, dtype, values=name != "print")


def test_to_device(device, elsewhere):
    cpu = _tensor()
    moved = cpu.to(torch.float32)
    with elsewhere(device):
        moved = moved.to(device)
    _check(moved, cpu, device, torch.float32)
    with elsewhere(device):
        back = moved.to("cpu", torch.float64)
    _check(back, cpu, "cpu", torch.float64)


def test_to_meta(device, elsewhere):
    tensor = _tensor(components=True).to(device)
    with elsewhere(device):
        meta = tensor.to("meta")
        assert meta.device.type == "meta"
        for block in meta.blocks():
            assert block.values.device.type == "meta"
            assert block.samples.values.device.type == "meta"
            assert block.gradient("positions").values.device.type == "meta"
        assert "<values on the 'meta' device>" in str(meta.keys)
        moved = meta.components_to_properties("o3_mu")
        assert moved.block(0).values.shape == (4, 9)
        assert moved.block(0).properties.values.device.type == "meta"


def test_autograd(device, elsewhere):
    tensor = _tensor(components=True).to(device)
    leaves = [block.values.detach().requires_grad_(True) for block in tensor]
    blocks = []
    for leaf, block in zip(leaves, tensor.blocks()):
        new = TensorBlock(leaf, block.samples, block.components, block.properties)
        blocks.append(new)
    tensor = TensorMap(tensor.keys, blocks)
    with elsewhere(device):
        merged = tensor.keys_to_samples("key_1").keys_to_properties("key_2")
        moved = merged.components_to_properties(["o3_mu"])
        loss = sum((block.values**2).sum() for block in moved)
        loss.backward()
    for leaf in leaves:
        assert leaf.grad is not None
        assert on_device(leaf.grad, device)
        torch.testing.assert_close(leaf.grad, 2 * leaf.detach())


# =========================================================================== #
# serialization and conversions                                               #
# =========================================================================== #


def test_save_load(device, elsewhere, tmp_path):
    cpu = _tensor(components=True)
    tensor = cpu.to(device=device, dtype=torch.float32)
    path = str(tmp_path / "data.mts")
    with elsewhere(device):
        tensor.save(path)
        mtt.save(str(tmp_path / "block.mts"), tensor.block(1))
        mtt.save(str(tmp_path / "labels.mts"), tensor.keys)
        buffers = [
            mtt.save_buffer(tensor),
            tensor.block(1).save_buffer(),
            tensor.keys.save_buffer(),
        ]
        file = io.BytesIO()
        mtt.save(file, tensor)
    for buffer in buffers:
        assert buffer.device.type == "cpu"
        assert buffer.dtype == torch.uint8

    # loading always gives CPU data
    with elsewhere("cpu"):
        loaded = [
            mtt.load(path),
            mtt.load_block(str(tmp_path / "block.mts")),
            mtt.load_labels(str(tmp_path / "labels.mts")),
            mtt.load_buffer(buffers[0]),
            TensorBlock.load_buffer(buffers[1]),
            Labels.load_buffer(buffers[2]),
            TensorMap.load(path),
            mtt.load(io.BytesIO(file.getvalue())),
        ]
    expected = [cpu, cpu.block(1), cpu.keys, cpu, cpu.block(1), cpu.keys, cpu, cpu]
    _check(loaded, expected, "cpu", torch.float32)


def test_pickle(device, elsewhere):
    import pickle

    tensor = _tensor().to(device)
    with elsewhere(device):
        data = pickle.dumps([tensor, tensor.block(0), tensor.keys])
    with elsewhere("cpu"):
        loaded = pickle.loads(data)
    cpu = _tensor()
    _check(loaded, [cpu, cpu.block(0), cpu.keys], "cpu", torch.float64)


def test_core_conversions(device, elsewhere):
    cpu = _tensor(components=True)
    tensor = cpu.to(device)
    with elsewhere(device):
        core = mtt.to_core(tensor)
        assert isinstance(core, metatensor.TensorMap)
        for block in core.blocks():
            assert on_device(block.values, device)
            assert on_device(block.samples.values, device)
            assert on_device(block.gradient("positions").samples.values, device)
        assert on_device(core.keys.values, device)

        back = [
            mtt.from_core(core),
            mtt.from_core(core.block(0)),
            mtt.from_core(core.keys),
            mtt.to_core(tensor.block(0)),
            mtt.to_core(tensor.keys),
        ]
    assert isinstance(back[3], metatensor.TensorBlock)
    assert on_device(back[3].values, device)
    assert on_device(back[4].values, device)
    _check(back[:3], [cpu, cpu.block(0), cpu.keys], device, torch.float64)

    # core data with numpy labels and torch values is converted to a single
    # device
    numpy_core = mtt.to_core(cpu).to(arrays="numpy")
    core = numpy_core.to(arrays="torch", device=device)
    with elsewhere(device):
        converted = mtt.from_core(core)
    _check(converted, cpu, device, torch.float64)


# =========================================================================== #
# Module and TorchScript                                                      #
# =========================================================================== #


class _Model(mtt.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("tensor", _tensor())
        self.register_buffer("labels", Labels.range("n", 3))
        self.register_buffer("blocks", {"first": _tensor().block(0)})
        self.linear = torch.nn.Linear(3, 3, dtype=torch.float64)

    def forward(self, tensor: TensorMap) -> TensorMap:
        blocks: List[TensorBlock] = []
        for block in tensor.blocks():
            values = self.linear(block.values) + self.tensor.block(0).values.sum()
            assert block.properties == self.labels
            blocks.append(
                TensorBlock(values, block.samples, block.components, block.properties)
            )
        keys = tensor.keys.union(self.tensor.keys)
        return TensorMap(keys, blocks)


def test_module(device, elsewhere):
    model = _Model()
    tensor = _tensor().to(device)
    with elsewhere(device):
        model = model.to(device)
        output = model(tensor)
    _check(model.tensor, _tensor(), device, torch.float64)
    _check(model.labels, Labels.range("n", 3), device, torch.float64)
    _check(model.blocks["first"], _tensor().block(0), device, torch.float64)
    assert on_device(output.keys.values, device)
    assert on_device(output.block(0).values, device)

    with elsewhere(device):
        model = model.to(torch.float32)
    _check(model.tensor, _tensor(), device, torch.float32)

    # the state dict of a model on a device (e.g. loaded with `map_location`)
    state = model.state_dict()
    state = {
        name: value.to(device) if isinstance(value, torch.Tensor) else value
        for name, value in state.items()
    }
    state["_extra_state"] = _map_tensors(state["_extra_state"], device)
    other = _Model().to(device)
    with elsewhere(device):
        other.load_state_dict(state)
    _check(other.tensor, _tensor(), device, torch.float32)
    _check(other.labels, Labels.range("n", 3), device, torch.float32)


def _map_tensors(value: Any, device) -> Any:
    """Move all the tensors in a nested structure of dict/list/tuple."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _map_tensors(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(v, device) for v in value)
    return value


def test_scripted_module(device):
    model = torch.jit.script(_Model())
    model = model.to(device)
    assert on_device(model.tensor.keys.values, device)
    assert on_device(model.labels.values, device)
    output = model(_tensor().to(device))
    assert on_device(output.keys.values, device)
    assert on_device(output.block(0).values, device)


def _scripted_function(tensor: TensorMap, selection: Labels) -> TensorMap:
    """Uses the classes from TorchScript, creating tensors on the data's
    device."""
    device = tensor.device
    blocks: List[TensorBlock] = []
    for key, block in tensor.items():
        mask = block.samples.column("system") >= key["key_1"]
        samples = Labels(block.samples.names, block.samples.values[mask])
        properties = block.properties.append(
            "key", torch.full((len(block.properties),), key["key_2"], device=device)
        )
        blocks.append(
            TensorBlock(block.values[mask], samples, block.components, properties)
        )
    keys = Labels(tensor.keys.names, tensor.keys.values)
    keys = keys.union(
        Labels.range("key_1", 1)
        .append("key_2", torch.tensor([4], device=device))
        .to(device)
    )
    blocks.append(blocks[0].copy())
    result = TensorMap(keys, blocks).keys_to_properties("key_2")
    return mtt.operations.slice(result, "samples", selection)


def test_scripted_function(device):
    function = torch.jit.script(_scripted_function)
    cpu = _tensor()
    expected = _scripted_function(cpu, cpu.block(0).samples)
    tensor = cpu.to(device)
    result = function(tensor, tensor.block(0).samples)
    _check(result, expected, device, torch.float64)


# =========================================================================== #
# operations                                                                  #
# =========================================================================== #

# the compiled operations, and the same source executed as plain Python taking
# the TorchScript branches (which are not affected by the default device when
# compiled)
SCRIPTED = mtt.operations
SCRIPT_BRANCHES = execute_with_backend(
    "_metatensor_operations_script_branches",
    "metatensor_operations",
    {
        "torch_jit_script": lambda function: function,
        "torch_jit_is_scripting": lambda: True,
    },
)


def _raises_not_equal(ops, function: Callable[[], Any]) -> str:
    # compiled operations raise `torch.jit.Error` wrapping the `NotEqualError`
    with pytest.raises((ops.NotEqualError, torch.jit.Error)) as error:
        function()
    if isinstance(error.value, torch.jit.Error):
        assert "NotEqualError" in str(error.value)
    return "raised"


# name -> function of the operations and inputs; the test checks every public
# name is here
OPERATIONS_CALLS = operation_calls(_raises_not_equal)

FLAVOURS = {"scripted": SCRIPTED, "script-branches": SCRIPT_BRANCHES}


def test_every_operation_is_called():
    public = {name for name in SCRIPTED.__all__ if name != "__version__"}
    assert set(OPERATIONS_CALLS) == public
    assert set(SCRIPT_BRANCHES.__all__) == set(SCRIPTED.__all__)


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", sorted(OPERATIONS_CALLS))
def test_operation(name, dtype, flavour, device, elsewhere):
    call = OPERATIONS_CALLS[name]
    expected = call(SCRIPTED, _expected_inputs())

    ops = FLAVOURS[flavour]
    inputs = _inputs(dtype, device)
    with elsewhere(device):
        result = call(ops, inputs)
    _check(result, expected, device, dtype, values=name not in RANDOM_OPERATIONS)


# operations with a gradient flowing from the input values to the output values
AUTOGRAD = [
    "abs",
    "add",
    "dot",
    "join",
    "keys_to_properties",
    "mean_over_samples",
    "slice",
    "sort",
    "std_over_properties",
    "sum_over_samples",
    "var_over_samples",
]


def _autograd_call(ops, name: str, tensor: TensorMap, selection: Labels) -> TensorMap:
    if name == "dot":
        return ops.dot(tensor, ops.remove_gradients(ops.detach(tensor)))
    elif name == "add":
        return ops.add(tensor, tensor)
    elif name == "join":
        return ops.join([tensor, tensor], "samples", add_dimension="copy")
    elif name == "keys_to_properties":
        return tensor.keys_to_properties("key_2")
    elif name == "slice":
        return ops.slice(tensor, "samples", selection)
    elif name == "sort":
        return ops.sort(tensor, descending=True)
    elif name in ["abs"]:
        return ops.abs(tensor)
    elif name.endswith("_over_samples"):
        return getattr(ops, name)(tensor, "atom")
    else:
        return getattr(ops, name)(tensor, "n")


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
@pytest.mark.parametrize("name", AUTOGRAD)
def test_operation_autograd(name, flavour, device, elsewhere):
    ops = FLAVOURS[flavour]
    tensor = SCRIPTED.requires_grad(_tensor().to(device=device, dtype=torch.float32))
    leaves = [block.values for block in tensor]
    selection = _labels(["atom"], [[1]]).to(device)
    with elsewhere(device):
        result = _autograd_call(ops, name, tensor, selection)
        loss = sum(block.values.sum() for block in result)
        loss.backward()
    for leaf in leaves:
        assert leaf.grad is not None
        assert on_device(leaf.grad, device)
        assert leaf.grad.dtype == torch.float32


META_OPERATIONS = {
    "abs": lambda ops, t: ops.abs(t),
    "add": lambda ops, t: ops.add(t, t),
    "multiply": lambda ops, t: ops.multiply(t, 3.0),
    "zeros_like": lambda ops, t: ops.zeros_like(t),
    "detach": lambda ops, t: ops.detach(t),
    "remove_gradients": lambda ops, t: ops.remove_gradients(t),
    "make_contiguous": lambda ops, t: ops.make_contiguous(t),
    "rename_dimension": lambda ops, t: ops.rename_dimension(t, "samples", "atom", "i"),
}


@pytest.mark.parametrize("name", sorted(META_OPERATIONS))
def test_operation_meta(name):
    """Shape-only operations work with data on the ``meta`` device."""
    tensor = _tensor().to("meta")
    expected = META_OPERATIONS[name](SCRIPTED, _tensor())
    result = META_OPERATIONS[name](SCRIPTED, tensor)
    assert result.keys.values.device.type == "meta"
    for block, expected_block in zip(result.blocks(), expected.blocks()):
        assert block.values.device.type == "meta"
        assert block.values.shape == expected_block.values.shape
        assert block.samples.values.device.type == "meta"
        for _, gradient in block.gradients():
            assert gradient.values.device.type == "meta"
            assert gradient.samples.values.device.type == "meta"
