"""Every operation of ``metatensor.torch.operations`` is a TorchScript function
and gives the same results as the core operations on the same data."""

import numpy as np
import pytest
import torch

import metatensor
import metatensor.torch as mtt

from ._data import (
    DATA_DIR,
    assert_block_equal,
    assert_labels_equal,
    assert_tensor_equal,
    core_tensor,
    to_numpy,
)


ops = mtt.operations


class Flavour:
    """The classes and operations of one flavour (core or torch), used to write
    each test case once."""

    def __init__(self, module, ops):
        self.module = module
        self.ops = ops

    def labels(self, names, values):
        values = np.array(values, dtype=np.int32).reshape(len(values), len(names))
        if self.module is mtt:
            return mtt.Labels(names, torch.from_numpy(values))
        return metatensor.Labels(names, values)

    def array(self, values):
        return torch.tensor(values, dtype=torch.float64)


CORE = Flavour(metatensor, metatensor.operations)
TORCH = Flavour(mtt, mtt.operations)


@pytest.fixture(scope="module")
def inputs():
    """``{"core": (tensor, no_gradients), "torch": (tensor, no_gradients)}``"""
    tensor = core_tensor(DATA_DIR)
    no_gradients = metatensor.remove_gradients(tensor)
    # avoid dividing by zero
    tensor = metatensor.add(metatensor.abs(tensor), 0.5)
    no_gradients = metatensor.add(metatensor.abs(no_gradients), 0.5)
    return {
        "core": (tensor, no_gradients),
        "torch": (mtt.from_core(tensor), mtt.from_core(no_gradients)),
    }


def _first_block(tensor):
    return tensor.block_by_id(0)


def _few(f, t):
    # a few properties: full rank least-squares problems
    return f.ops.slice(t, "properties", [0, 1, 2])


def _square_system(f, t):
    # a single block with a 3x3 system and two right-hand sides
    rng = np.random.default_rng(0)
    X = f.ops.block_from_array(f.array(rng.normal(size=(3, 3)) + 3 * np.eye(3)))
    Y = f.ops.block_from_array(f.array(rng.normal(size=(3, 2))))
    keys = f.labels(["key"], [[0]])
    return f.module.TensorMap(keys, [X]), f.module.TensorMap(keys, [Y])


# (name, function(flavour, tensor, tensor without gradients))
CASES = [
    ("abs", lambda f, t, n: f.ops.abs(f.ops.subtract(t, 1.0))),
    ("add", lambda f, t, n: f.ops.add(t, t)),
    ("add_scalar", lambda f, t, n: f.ops.add(t, 3)),
    ("subtract", lambda f, t, n: f.ops.subtract(t, f.ops.multiply(t, 0.5))),
    ("subtract_scalar", lambda f, t, n: f.ops.subtract(t, 2.5)),
    ("multiply", lambda f, t, n: f.ops.multiply(t, t)),
    ("multiply_scalar", lambda f, t, n: f.ops.multiply(t, -2)),
    ("divide", lambda f, t, n: f.ops.divide(t, f.ops.add(t, 1.0))),
    ("divide_scalar", lambda f, t, n: f.ops.divide(t, 4.0)),
    ("pow", lambda f, t, n: f.ops.pow(t, 3)),
    ("pow_float", lambda f, t, n: f.ops.pow(t, 0.5)),
    ("dot", lambda f, t, n: f.ops.dot(t, n)),
    ("lstsq", lambda f, t, n: f.ops.lstsq(_few(f, n), f.ops.multiply(n, 2.0), 1e-10)),
    (
        "lstsq_gradients",
        lambda f, t, n: f.ops.lstsq(_few(f, t), t, rcond=1e-8, driver="gelsd"),
    ),
    ("solve", lambda f, t, n: f.ops.solve(*_square_system(f, n))),
    (
        "block_from_array",
        lambda f, t, n: f.ops.block_from_array(
            f.array(np.arange(24.0).reshape(2, 3, 4)),
            sample_names=["s"],
            component_names=["c"],
            property_names=["p"],
        ),
    ),
    (
        "block_from_array_default",
        lambda f, t, n: f.ops.block_from_array(f.array([[1.0]])),
    ),
    ("zeros_like", lambda f, t, n: f.ops.zeros_like(t)),
    (
        "zeros_like_block",
        lambda f, t, n: f.ops.zeros_like_block(_first_block(t), "strain"),
    ),
    ("ones_like", lambda f, t, n: f.ops.ones_like(t, ["positions"])),
    ("ones_like_block", lambda f, t, n: f.ops.ones_like_block(_first_block(t))),
    ("empty_like", lambda f, t, n: f.ops.zeros_like(f.ops.empty_like(t))),
    (
        "random_uniform_like",
        lambda f, t, n: f.ops.multiply(f.ops.random_uniform_like(t), 0.0),
    ),
    (
        "random_uniform_like_block",
        lambda f, t, n: f.ops.zeros_like_block(
            f.ops.random_uniform_like_block(_first_block(t))
        ),
    ),
    (
        "empty_like_block",
        lambda f, t, n: f.ops.zeros_like_block(
            f.ops.empty_like_block(_first_block(t), ["strain"])
        ),
    ),
    ("detach", lambda f, t, n: f.ops.detach(t)),
    ("detach_block", lambda f, t, n: f.ops.detach_block(_first_block(t))),
    ("is_contiguous", lambda f, t, n: f.ops.is_contiguous(t)),
    ("is_contiguous_block", lambda f, t, n: f.ops.is_contiguous_block(_first_block(t))),
    ("make_contiguous", lambda f, t, n: f.ops.make_contiguous(t)),
    (
        "make_contiguous_block",
        lambda f, t, n: f.ops.make_contiguous_block(_first_block(t)),
    ),
    ("remove_gradients", lambda f, t, n: f.ops.remove_gradients(t)),
    ("remove_gradients_list", lambda f, t, n: f.ops.remove_gradients(t, ["strain"])),
    (
        "remove_gradients_block",
        lambda f, t, n: f.ops.remove_gradients_block(_first_block(t)),
    ),
    ("requires_grad", lambda f, t, n: f.ops.requires_grad(n)),
    (
        "requires_grad_block",
        lambda f, t, n: f.ops.requires_grad_block(_first_block(n), False),
    ),
    (
        "drop_blocks",
        lambda f, t, n: f.ops.drop_blocks(t, f.labels(["center_type"], [[1], [6]])),
    ),
    (
        "drop_empty_blocks",
        lambda f, t, n: f.ops.drop_empty_blocks(
            f.ops.slice(t, "samples", f.labels(["system"], [[0]]))
        ),
    ),
    (
        "filter_blocks",
        lambda f, t, n: f.ops.filter_blocks(
            t, f.labels(["neighbor_1_type"], [[8]]), True
        ),
    ),
    ("unique_metadata", lambda f, t, n: f.ops.unique_metadata(t, "samples", "system")),
    (
        "unique_metadata_gradient",
        lambda f, t, n: f.ops.unique_metadata(
            t, "samples", ["atom", "system"], "positions"
        ),
    ),
    (
        "unique_metadata_block",
        lambda f, t, n: f.ops.unique_metadata_block(
            _first_block(t), "properties", ["n_2", "l"]
        ),
    ),
    (
        "join_samples",
        lambda f, t, n: f.ops.join([t, t], "samples", add_dimension="tensor"),
    ),
    (
        "join_properties",
        lambda f, t, n: f.ops.join([n, n], "properties", add_dimension="x"),
    ),
    (
        "join_union",
        lambda f, t, n: f.ops.join(
            [f.ops.filter_blocks(n, f.labels(["center_type"], [[1]])), n],
            "samples",
            different_keys="union",
            add_dimension="t",
        ),
    ),
    (
        "join_intersection",
        lambda f, t, n: f.ops.join(
            [f.ops.filter_blocks(n, f.labels(["center_type"], [[1]])), n],
            "samples",
            different_keys="intersection",
            add_dimension="x",
        ),
    ),
    (
        "join_blocks",
        lambda f, t, n: f.ops.join_blocks(
            [_first_block(t), _first_block(t)], "properties", add_dimension="x"
        ),
    ),
    (
        "slice_labels",
        lambda f, t, n: f.ops.slice(
            t, "samples", f.labels(["system"], [[2], [0], [4]])
        ),
    ),
    ("slice_positions", lambda f, t, n: f.ops.slice(t, "properties", [3, 0, -1])),
    ("slice_array", lambda f, t, n: f.ops.slice(t, "properties", torch.tensor([2, 1]))),
    (
        "slice_block",
        lambda f, t, n: f.ops.slice_block(_first_block(t), "samples", [5, 1, 3]),
    ),
    (
        "split",
        lambda f, t, n: f.ops.split(
            t, "samples", [f.labels(["system"], [[0], [1]]), f.labels(["atom"], [[0]])]
        ),
    ),
    (
        "split_block",
        lambda f, t, n: f.ops.split_block(_first_block(t), "properties", [[0, 1], [2]]),
    ),
    (
        "sort",
        lambda f, t, n: f.ops.sort(
            f.ops.slice(t, "samples", f.labels(["system"], [[3], [1], [2]]))
        ),
    ),
    (
        "sort_descending",
        lambda f, t, n: f.ops.sort(t, ["samples", "properties"], descending=True),
    ),
    (
        "sort_block",
        lambda f, t, n: f.ops.sort_block(
            f.ops.slice_block(_first_block(t), "properties", [5, 2, 7, 1]), "properties"
        ),
    ),
    (
        "append_dimension",
        lambda f, t, n: f.ops.append_dimension(t, "samples", "new", 3),
    ),
    (
        "append_dimension_keys",
        lambda f, t, n: f.ops.append_dimension(
            t, "keys", "new", torch.arange(len(t), dtype=torch.int32)
        ),
    ),
    (
        "insert_dimension",
        lambda f, t, n: f.ops.insert_dimension(t, "properties", 1, "new", 7),
    ),
    (
        "permute_dimensions",
        lambda f, t, n: f.ops.permute_dimensions(t, "properties", [2, 0, 1]),
    ),
    (
        "permute_dimensions_keys",
        lambda f, t, n: f.ops.permute_dimensions(t, "keys", [1, 2, 0]),
    ),
    (
        "remove_dimension",
        lambda f, t, n: f.ops.remove_dimension(
            f.ops.append_dimension(t, "samples", "x", 1), "samples", "x"
        ),
    ),
    (
        "rename_dimension",
        lambda f, t, n: f.ops.rename_dimension(t, "samples", "atom", "center"),
    ),
    (
        "rename_dimension_keys",
        lambda f, t, n: f.ops.rename_dimension(t, "keys", "center_type", "c"),
    ),
    (
        "one_hot",
        lambda f, t, n: f.ops.one_hot(
            f.labels(["atom", "type"], [[0, 6], [1, 1], [2, 6]]),
            f.labels(["type"], [[1], [6], [8]]),
        ),
    ),
]

for _reduction in ["sum", "mean", "var", "std"]:
    CASES += [
        (
            f"{_reduction}_over_samples",
            lambda f, t, n, r=_reduction: getattr(f.ops, f"{r}_over_samples")(
                t, "atom"
            ),
        ),
        (
            f"{_reduction}_over_samples_all",
            lambda f, t, n, r=_reduction: getattr(f.ops, f"{r}_over_samples")(
                t, ["system", "atom"]
            ),
        ),
        (
            f"{_reduction}_over_samples_block",
            lambda f, t, n, r=_reduction: getattr(f.ops, f"{r}_over_samples_block")(
                _first_block(t), ["system"]
            ),
        ),
        (
            f"{_reduction}_over_properties",
            lambda f, t, n, r=_reduction: getattr(f.ops, f"{r}_over_properties")(
                t, ["n_1", "n_2"]
            ),
        ),
        (
            f"{_reduction}_over_properties_block",
            lambda f, t, n, r=_reduction: getattr(f.ops, f"{r}_over_properties_block")(
                _first_block(t), "l"
            ),
        ),
    ]


def _compare(result, expected):
    if isinstance(expected, metatensor.TensorMap):
        assert_tensor_equal(result, expected)
    elif isinstance(expected, metatensor.TensorBlock):
        assert_block_equal(result, expected)
    elif isinstance(expected, metatensor.Labels):
        assert_labels_equal(result, expected)
    elif isinstance(expected, list):
        assert isinstance(result, list)
        assert len(result) == len(expected)
        for r, e in zip(result, expected):
            _compare(r, e)
    else:
        if isinstance(expected, (torch.Tensor, np.ndarray)):
            assert isinstance(result, torch.Tensor)
            np.testing.assert_array_equal(to_numpy(result), to_numpy(expected))
        else:
            assert type(result) is type(expected)
            assert result == expected


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_same_as_core(inputs, case, no_jit_optimization):
    _, function = case
    expected = function(CORE, *inputs["core"])
    result = function(TORCH, *inputs["torch"])
    _compare(result, expected)


def test_all_operations_are_scripted():
    core_names = [n for n in metatensor.operations.__all__ if n != "__version__"]
    assert sorted(ops.__all__[1:]) == sorted(core_names)
    not_scripted = {
        "NotEqualError",
        "checks_enabled",
        "unsafe_disable_checks",
        "unsafe_enable_checks",
    }
    for name in core_names:
        function = getattr(ops, name)
        assert getattr(mtt, name) is function
        if name not in not_scripted:
            assert isinstance(function, torch.jit.ScriptFunction), name

    # the names of every operation are covered by the cases above
    tested = "".join(c[0] for c in CASES)
    for name in core_names:
        if name not in not_scripted and not name.startswith(("equal", "allclose")):
            assert name.split("_block")[0] in tested, name


FLOAT32_CASES = [
    "add",
    "multiply_scalar",
    "divide",
    "pow_float",
    "dot",
    "zeros_like",
    "join_samples",
    "slice_labels",
    "sort_descending",
    "sum_over_samples",
    "mean_over_samples",
    "std_over_samples",
    "var_over_properties",
]


@pytest.mark.parametrize("name", FLOAT32_CASES)
def test_float32(inputs, name, no_jit_optimization):
    function = dict(CASES)[name]
    core = [t.to(dtype=torch.float32) for t in inputs["core"]]
    expected = function(CORE, *core)
    result = function(TORCH, *[t.to(dtype=torch.float32) for t in inputs["torch"]])
    assert result.dtype == torch.float32
    assert_tensor_equal(result, expected)
