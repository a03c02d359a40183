"""The core classes holding torch tensors work on any device, and never create
CPU arrays behind the user's back.

Every test runs with data on ``device`` (``cpu``, and ``cuda`` when a GPU is
available) while torch's default device is another one (see the ``elsewhere``
fixture in ``conftest.py``): any tensor created without an explicit ``device=``
makes the test fail. The results are compared with the same computation on
numpy data, and must live entirely (values, gradients and every Labels) on
``device``, with the input dtype.
"""

import functools
import io
import os
import pickle
from types import SimpleNamespace
from typing import Any, Callable, Dict

import numpy as np
import pytest

import metatensor
from metatensor import Labels, TensorBlock, TensorMap

from device_checks import check, numpy_tensor, on_device, to_numpy


if os.environ.get("METATENSOR_TESTS_REQUIRE_TORCH") == "1":
    import torch
else:
    torch = pytest.importorskip("torch")


DTYPES = [torch.float64, torch.float32]

# float32 results are compared with a float64 numpy computation; the positions
# and mappings of Labels are numpy arrays for all backends
_check = functools.partial(
    check,
    tolerances={"float64": (1e-12, 1e-12), "float32": (1e-5, 1e-5)},
    numpy_arrays=True,
)


# =========================================================================== #
# data                                                                        #
# =========================================================================== #


def _numpy_inputs() -> Dict[str, Any]:
    return {
        "tensor": numpy_tensor(),
        "other": numpy_tensor(seed=3),
        "components": numpy_tensor(components=True),
        "block": numpy_tensor().block(1),
        "a": Labels(["a", "b"], np.array([[0, 1], [1, 2], [2, 3], [4, 1]])),
        "b": Labels(["a", "b"], np.array([[1, 2], [5, 5], [0, 1]])),
        "b_only": Labels(["b"], np.array([[1]])),
        "column": np.array([7, 8, 9, 10], dtype=np.int32),
        "key_2": Labels(["key_2"], np.array([[2]])),
        "key_2_values": Labels(["key_2"], np.array([[2], [0]])),
        # stays on the CPU, as numpy arrays
        "numpy_key_2_values": Labels(["key_2"], np.array([[2], [0]])),
    }


def _move(name: str, value: Any, dtype, device) -> Any:
    if name.startswith("numpy_"):
        return value
    if isinstance(value, (TensorMap, TensorBlock)):
        return value.to(arrays="torch", dtype=dtype, device=device)
    elif isinstance(value, Labels):
        return value.to(arrays="torch", device=device)
    elif isinstance(value, np.ndarray):
        return torch.from_numpy(value).to(device)
    return value


def _inputs(dtype, device) -> SimpleNamespace:
    inputs = {k: _move(k, v, dtype, device) for k, v in _numpy_inputs().items()}
    return SimpleNamespace(**inputs, device=device)


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
    "select": lambda d: [d.a.select(d.b), d.a.select(d.b_only)],
    "position": lambda d: [d.a.position(d.b[0]), d.a.position((4, 1))],
    "__contains__": lambda d: [d.b[0] in d.a, (5, 5) in d.a, [4, 1] in d.a],
    "__eq__": lambda d: [d.a == d.a, d.a == d.b, d.a != d.b, d.a[0] == d.a[0]],
    "entry": lambda d: [d.a.entry(1), d.a[-1], list(d.a)[2]],
    "column": lambda d: [d.a.column("b"), d.a["a"]],
    "permute": lambda d: d.a.permute([1, 0]),
    "append": lambda d: d.a.append("c", d.column),
    "insert": lambda d: d.a.insert(1, "c", d.column),
    "remove": lambda d: d.b.remove("b"),
    "rename": lambda d: d.a.rename("a", "z"),
    "to": lambda d: [d.a.to(d.device), d.a.to(device=d.device)],
    "print": lambda d: [str(d.a), repr(d.b), d.a.print(2), str(d.a[0])],
    "check_unique": lambda d: Labels(["a", "b"], d.a.values + 1),
}


@pytest.mark.parametrize("name", sorted(LABELS_CALLS))
def test_labels(name, device, elsewhere):
    expected = LABELS_CALLS[name](SimpleNamespace(**_numpy_inputs(), device="cpu"))
    inputs = _inputs(torch.float64, device)
    with elsewhere(device):
        result = LABELS_CALLS[name](inputs)
    _check(result, expected, device, torch.float64)


def test_labels_duplicated(device, elsewhere):
    values = torch.tensor([[0, 1], [1, 2], [0, 1]], dtype=torch.int32, device=device)
    with elsewhere(device):
        with pytest.raises(metatensor.MetatensorError, match="already present"):
            Labels(["a", "b"], values)


def test_labels_numpy_arguments(device, elsewhere):
    """numpy Labels and arrays can be used with Labels on another device."""
    d = _inputs(torch.float64, device)
    numpy = SimpleNamespace(**_numpy_inputs())
    with elsewhere(device):
        results = [
            d.a.union(numpy.b),
            d.a.intersection(numpy.b),
            d.a.difference_and_mapping(numpy.b),
            d.a.select(numpy.b),
            d.a.position(numpy.b[0]),
            d.a == numpy.a,
            d.a.append("c", numpy.column),
        ]
    expected = [
        numpy.a.union(numpy.b),
        numpy.a.intersection(numpy.b),
        numpy.a.difference_and_mapping(numpy.b),
        numpy.a.select(numpy.b),
        numpy.a.position(numpy.b[0]),
        True,
        numpy.a.append("c", numpy.column),
    ]
    _check(results, expected, device, torch.float64)


# =========================================================================== #
# TensorBlock and TensorMap                                                   #
# =========================================================================== #


def _new_block(d) -> TensorBlock:
    block = TensorBlock(
        d.block.values * 2, d.block.samples, d.block.components, d.block.properties
    )
    gradient = d.block.gradient("positions")
    block.add_gradient(
        "positions",
        TensorBlock(
            gradient.values, gradient.samples, gradient.components, gradient.properties
        ),
    )
    return block


def _new_tensor(d) -> TensorMap:
    tensor = TensorMap(d.tensor.keys, [b.copy() for b in d.tensor.blocks()])
    tensor.set_info("unit", "eV")
    return tensor


def _map_dtype(d):
    return d.tensor.dtype


TENSOR_CALLS: Dict[str, Callable[[SimpleNamespace], Any]] = {
    "TensorBlock": _new_block,
    "TensorMap": _new_tensor,
    "block": lambda d: [
        d.tensor.block(1),
        d.tensor.block(key_1=1, key_2=2),
        d.tensor.block({"key_1": 0}),
        d.tensor.block(d.tensor.keys[2]),
        d.tensor.block(d.key_2),
        d.tensor[{"key_1": 0}],
    ],
    "blocks": lambda d: [
        d.tensor.blocks(key_1=1),
        d.tensor.blocks(d.key_2_values),
        d.tensor.blocks_by_id([0, 2]),
    ],
    "items": lambda d: [list(entry) for entry, _ in d.tensor.items()],
    "copy": lambda d: [d.tensor.copy(), d.block.copy(), d.tensor.copy(deep=False)],
    "keys_to_samples": lambda d: [
        d.tensor.keys_to_samples("key_1"),
        d.tensor.keys_to_samples(["key_1", "key_2"], sort_samples=False),
        d.tensor.keys_to_samples("key_2", fill_value=-1.0),
    ],
    "keys_to_properties": lambda d: [
        d.tensor.keys_to_properties("key_2"),
        d.tensor.keys_to_properties(["key_1", "key_2"], fill_value=-1.0),
        d.tensor.keys_to_properties(d.key_2_values),
        d.tensor.keys_to_properties(d.numpy_key_2_values),
        d.other.keys_to_properties("key_1", sort_samples=False),
    ],
    "components_to_properties": lambda d: [
        d.components.components_to_properties("o3_mu"),
        d.components.keys_to_properties("key_2"),
    ],
    "to": lambda d: [
        d.tensor.to(d.device),
        d.tensor.to(dtype=_map_dtype(d)),
        d.block.to(device=d.device),
        d.tensor.keys.to(d.device),
    ],
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", sorted(TENSOR_CALLS))
def test_tensor(name, dtype, device, elsewhere):
    numpy_inputs = SimpleNamespace(**_numpy_inputs(), device="cpu")
    expected = TENSOR_CALLS[name](numpy_inputs)
    inputs = _inputs(dtype, device)
    with elsewhere(device):
        result = TENSOR_CALLS[name](inputs)
    _check(result, expected, device, dtype)


def test_to(device, elsewhere):
    numpy = numpy_tensor(components=True)
    cpu = numpy.to(arrays="torch")
    with elsewhere(device):
        moved = cpu.to(device=device, dtype=torch.float32)
        block = numpy.block(0).to(device=device, arrays="torch")
        labels = numpy.keys.to(device, arrays="torch")
    _check(moved, numpy, device, torch.float32)
    _check(block, numpy.block(0), device, torch.float64)
    _check(labels, numpy.keys, device, torch.float64)

    # numpy data with a torch dtype, whatever torch's default device
    with elsewhere("cpu"):
        converted = numpy.to(dtype=torch.float32)
        assert converted.block(0).values.dtype == np.float32
        converted = numpy.to(arrays="torch", dtype=torch.float32)
    _check(converted, numpy, "cpu", torch.float32)

    with elsewhere(device):
        back = moved.to(arrays="numpy")
    assert isinstance(back.block(0).values, np.ndarray)
    assert isinstance(back.keys.values, np.ndarray)
    assert back.block(0).values.dtype == np.float32
    np.testing.assert_allclose(back.block(0).values, numpy.block(0).values, rtol=1e-6)


def test_to_meta(device, elsewhere):
    tensor = numpy_tensor(components=True).to(arrays="torch", device=device)
    with elsewhere(device):
        meta = tensor.to("meta")
        assert meta.device.type == "meta"
        for block in meta.blocks():
            assert block.values.device.type == "meta"
            assert block.samples.values.device.type == "meta"
            assert block.gradient("positions").values.device.type == "meta"
        assert "TensorMap with 3 blocks" in str(meta)
        copy = meta.copy()
        assert copy.block(0).values.device.type == "meta"
        assert copy.block(0).samples.values.device.type == "meta"


def test_operators(device, elsewhere):
    pytest.importorskip("metatensor_operations")
    numpy = SimpleNamespace(**_numpy_inputs())
    d = _inputs(torch.float64, device)
    with elsewhere(device):
        results = [
            d.tensor + d.other,
            d.tensor - 1.0,
            d.tensor * d.other,
            d.tensor / 2.0,
            d.tensor**2,
            -d.tensor,
            +d.tensor,
            d.tensor == d.tensor.copy(),
            d.tensor == d.other,
            d.block == d.block.copy(),
        ]
    expected = [
        numpy.tensor + numpy.other,
        numpy.tensor - 1.0,
        numpy.tensor * numpy.other,
        numpy.tensor / 2.0,
        numpy.tensor**2,
        -numpy.tensor,
        +numpy.tensor,
        True,
        False,
        True,
    ]
    _check(results, expected, device, torch.float64)


def test_autograd(device, elsewhere):
    tensor = numpy_tensor(components=True).to(arrays="torch", device=device)
    leaves = [block.values.detach().requires_grad_(True) for block in tensor.blocks()]
    blocks = []
    for leaf, block in zip(leaves, tensor.blocks()):
        blocks.append(
            TensorBlock(leaf, block.samples, block.components, block.properties)
        )
    tensor = TensorMap(tensor.keys, blocks)
    with elsewhere(device):
        merged = tensor.keys_to_samples("key_1").keys_to_properties("key_2")
        moved = merged.components_to_properties(["o3_mu"])
        loss = sum((block.values**2).sum() for block in moved.blocks())
        loss.backward()
    for leaf in leaves:
        assert leaf.grad is not None
        assert on_device(leaf.grad, device)
        np.testing.assert_allclose(to_numpy(leaf.grad), 2 * to_numpy(leaf))


# =========================================================================== #
# serialization                                                               #
# =========================================================================== #


def test_save_load(device, elsewhere, tmp_path):
    numpy = numpy_tensor(components=True)
    tensor = numpy.to(arrays="torch", device=device, dtype=torch.float32)
    path = str(tmp_path / "data.mts")
    with elsewhere(device):
        tensor.save(path)
        metatensor.save(str(tmp_path / "block.mts"), tensor.block(1))
        metatensor.save(str(tmp_path / "labels.mts"), tensor.keys)
        buffers = [
            metatensor.io.save_buffer(tensor),
            tensor.block(1).save_buffer(),
            tensor.keys.save_buffer(),
        ]
        file = io.BytesIO()
        metatensor.save(file, tensor)
        pickled = pickle.dumps([tensor, tensor.block(0), tensor.keys])

    expected_32 = numpy.to(dtype=np.float32)
    # loading gives numpy arrays ...
    loaded = [
        metatensor.load(path),
        metatensor.load_block(str(tmp_path / "block.mts")),
        metatensor.load_labels(str(tmp_path / "labels.mts")),
        metatensor.io.load_buffer(buffers[0]),
        TensorBlock.load_buffer(buffers[1]),
        Labels.load_buffer(buffers[2]),
        metatensor.load(io.BytesIO(file.getvalue())),
    ]
    expected = [
        expected_32,
        expected_32.block(1),
        numpy.keys,
        expected_32,
        expected_32.block(1),
        numpy.keys,
        expected_32,
    ]
    for result, reference in zip(loaded, expected):
        assert metatensor.io.save_buffer(result) == metatensor.io.save_buffer(reference)

    # ... or CPU torch tensors
    with elsewhere("cpu"):
        loaded = [
            metatensor.io.load_custom_array(path, metatensor.io.create_torch_array),
            metatensor.io.load_buffer_custom_array(
                buffers[0], metatensor.io.create_torch_array
            ),
        ]
    for result in loaded:
        for block, expected_block in zip(result.blocks(), expected_32.blocks()):
            assert isinstance(block.values, torch.Tensor)
            assert block.values.device.type == "cpu"
            np.testing.assert_array_equal(block.values.numpy(), expected_block.values)

    # unpickling gives numpy arrays
    unpickled = pickle.loads(pickled)
    for result, reference in zip(
        unpickled, [expected_32, expected_32.block(0), numpy.keys]
    ):
        assert metatensor.io.save_buffer(result) == metatensor.io.save_buffer(reference)
