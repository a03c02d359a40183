"""``torch.compile(fullgraph=True)`` of every layer of ``metatensor.learn.nn``,
for core TensorMaps holding torch tensors (``metatensor.learn``) and for
``metatensor.torch`` TensorMaps (``metatensor.torch.learn``).

Compiled and eager models must give the same values, explicit gradients and
metadata, and the same gradients of a loss with respect to the parameters and
the input values. Most cases use the ``aot_eager`` backend (dynamo + AOT
autograd, without code generation, fast to compile); one case per flavour goes
through ``inductor``.
"""

import copy
import importlib
import shutil

import numpy as np
import pytest


torch = pytest.importorskip("torch")

dynamo_testing = pytest.importorskip("torch._dynamo.testing")

import metatensor  # noqa: E402
import metatensor_learn.nn  # noqa: E402


pytestmark = [
    pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning"),
    # dynamo traces numpy arrays (the values of core Labels, which are
    # read-only) as tensors, and its guards convert them with `torch.as_tensor`,
    # which warns once about non-writable arrays
    pytest.mark.filterwarnings("ignore:The given NumPy array is not writable"),
]

F64 = torch.float64
FLAVOURS = ["core", "torch"]


class Flavour:
    """The classes and layers of one flavour, and a helper to build Labels."""

    def __init__(self, name: str):
        self.name = name
        if name == "core":
            self.Labels = metatensor.Labels
            self.TensorBlock = metatensor.TensorBlock
            self.TensorMap = metatensor.TensorMap
            self.nn = metatensor_learn.nn
        else:
            mts_torch = pytest.importorskip("metatensor_torch")
            learn = importlib.import_module("metatensor_torch.learn")

            self.Labels = mts_torch.Labels
            self.TensorBlock = mts_torch.TensorBlock
            self.TensorMap = mts_torch.TensorMap
            self.nn = learn.nn

    def labels(self, names, values) -> "Labels":  # noqa: F821
        if self.name == "core":
            return self.Labels(names, np.array(values, dtype=np.int32))
        return self.Labels(names, torch.tensor(values, dtype=torch.int32))


@pytest.fixture(params=FLAVOURS)
def flavour(request) -> Flavour:
    return Flavour(request.param)


def _tensor(flavour: Flavour, seed: int = 0, key_order=(0, 1)):
    """A map with an invariant and a covariant block (o3_lambda = 0, 1), 3
    properties, and gradients with respect to positions."""
    generator = torch.Generator().manual_seed(seed)
    L = flavour.labels
    all_keys = [[0, 1], [1, 1], [2, 1]]
    blocks = []
    for o3_lambda in key_order:
        n_components = 2 * o3_lambda + 1
        components = [L(["o3_mu"], [[m] for m in range(-o3_lambda, o3_lambda + 1)])]
        shape = [4, n_components, 3]
        block = flavour.TensorBlock(
            torch.randn(shape, generator=generator, dtype=F64),
            L(["system", "atom"], [[0, 0], [0, 1], [1, 0], [1, 2]]),
            components,
            L(["n"], [[0], [1], [2]]),
        )
        gradient_samples = [[0, 0, 0], [0, 0, 1], [1, 0, 1], [2, 1, 0], [3, 1, 2]]
        block.add_gradient(
            "positions",
            flavour.TensorBlock(
                torch.randn([5, 3] + shape[1:], generator=generator, dtype=F64),
                L(["sample", "system", "atom"], gradient_samples),
                [L(["xyz"], [[0], [1], [2]])] + components,
                L(["n"], [[0], [1], [2]]),
            ),
        )
        blocks.append(block)
    keys = L(["o3_lambda", "o3_sigma"], [all_keys[i] for i in key_order])
    return flavour.TensorMap(keys, blocks)


def _in_keys(flavour: Flavour, count: int = 2):
    keys = [[0, 1], [1, 1], [2, 1]]
    return flavour.labels(["o3_lambda", "o3_sigma"], keys[:count])


def _plain_modules():
    """Per-key modules which are not from metatensor-learn (their gradients go
    through ``torch.func.jvp`` or the rules for torch modules)."""
    return [
        torch.nn.Sequential(torch.nn.Linear(3, 3, dtype=F64), torch.nn.Tanh()),
        torch.nn.Sequential(torch.nn.Linear(3, 3, dtype=F64), torch.nn.SiLU()),
    ]


def _build(name: str, flavour: Flavour) -> torch.nn.Module:
    nn = flavour.nn
    keys = _in_keys(flavour)
    out_properties = [flavour.labels(["out"], [[i] for i in range(4)])] * 2
    if name == "ModuleMap":
        return nn.ModuleMap(keys, _plain_modules())
    if name == "Linear":
        return nn.Linear(keys, 3, 4, dtype=F64)
    if name == "Linear(out_properties)":
        return nn.Linear(keys, 3, out_properties=out_properties, dtype=F64)
    if name == "EquivariantLinear":
        return nn.EquivariantLinear(keys, 3, 4, dtype=F64)
    if name == "EquivariantTransformation":
        return nn.EquivariantTransformation(_plain_modules(), keys, 3, 3)
    if name in ("ReLU", "SiLU", "Tanh"):
        return getattr(nn, name)(keys)
    if name in ("InvariantReLU", "InvariantSiLU", "InvariantTanh"):
        return getattr(nn, name)(keys)
    if name == "LayerNorm":
        return nn.LayerNorm(keys, 3, dtype=F64)
    if name == "InvariantLayerNorm":
        return nn.InvariantLayerNorm(keys, 3, dtype=F64)
    if name == "Sequential":
        return _sequential(flavour)
    raise ValueError(name)


def _sequential(flavour: Flavour) -> torch.nn.Module:
    nn = flavour.nn
    keys = _in_keys(flavour)
    return nn.Sequential(
        keys,
        nn.EquivariantLinear(keys, 3, 5, dtype=F64),
        nn.InvariantSiLU(keys),
        nn.InvariantLayerNorm(keys, 5, dtype=F64),
        nn.EquivariantLinear(keys, 5, 2, dtype=F64),
    )


# The per-block modules and their gradient rules are the same code for both
# flavours, the flavour only changes the metadata handling of ModuleMap: the
# layers wrapping user modules (and Sequential) run with both flavours, the
# others with one of them, to keep the (slow) compilations few.
CASES = [
    ("ModuleMap", "core"),
    ("ModuleMap", "torch"),
    ("EquivariantTransformation", "core"),
    ("EquivariantTransformation", "torch"),
    ("Sequential", "core"),
    ("Sequential", "torch"),
    ("Linear", "torch"),
    ("Linear(out_properties)", "core"),
    ("EquivariantLinear", "core"),
    ("ReLU", "torch"),
    ("SiLU", "core"),
    ("Tanh", "torch"),
    ("InvariantReLU", "core"),
    ("InvariantSiLU", "torch"),
    ("InvariantTanh", "core"),
    ("LayerNorm", "torch"),
    ("InvariantLayerNorm", "core"),
]


def _with_grad_inputs(tensor, flavour: Flavour):
    """A copy of ``tensor`` whose values (and gradient values) require grad,
    and the list of these leaf tensors."""
    leaves = []
    blocks = []
    for block in tensor.blocks():
        values = block.values.detach().clone().requires_grad_(True)
        new = flavour.TensorBlock(
            values, block.samples, block.components, block.properties
        )
        leaves.append(values)
        for parameter in block.gradients_list():
            gradient = block.gradient(parameter)
            gradient_values = gradient.values.detach().clone().requires_grad_(True)
            new.add_gradient(
                parameter,
                flavour.TensorBlock(
                    gradient_values,
                    gradient.samples,
                    gradient.components,
                    gradient.properties,
                ),
            )
            leaves.append(gradient_values)
        blocks.append(new)
    return flavour.TensorMap(tensor.keys, blocks), leaves


def _loss(output) -> torch.Tensor:
    loss = torch.zeros((), dtype=F64)
    for block in output.blocks():
        loss = loss + (block.values**2).sum()
        for parameter in block.gradients_list():
            loss = loss + (block.gradient(parameter).values ** 2).sum()
    return loss


def _assert_same_labels(actual, expected):
    assert actual.names == expected.names
    np.testing.assert_array_equal(
        np.asarray(_to_numpy(actual.values)), np.asarray(_to_numpy(expected.values))
    )


def _to_numpy(values):
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return values


def _assert_same_map(actual, expected):
    _assert_same_labels(actual.keys, expected.keys)
    for i in range(len(expected.keys)):
        a = actual.block_by_id(i)
        e = expected.block_by_id(i)
        torch.testing.assert_close(a.values, e.values)
        _assert_same_labels(a.samples, e.samples)
        _assert_same_labels(a.properties, e.properties)
        assert len(a.components) == len(e.components)
        for ca, ce in zip(a.components, e.components):
            _assert_same_labels(ca, ce)
        assert a.gradients_list() == e.gradients_list()
        for parameter in e.gradients_list():
            ga = a.gradient(parameter)
            ge = e.gradient(parameter)
            torch.testing.assert_close(ga.values, ge.values)
            _assert_same_labels(ga.samples, ge.samples)
            _assert_same_labels(ga.properties, ge.properties)


def _forward_backward(model, tensor, flavour):
    inputs, leaves = _with_grad_inputs(tensor, flavour)
    model.zero_grad()
    output = model(inputs)
    _loss(output).backward()
    parameter_grads = [
        None if p.grad is None else p.grad.clone() for p in model.parameters()
    ]
    input_grads = [leaf.grad for leaf in leaves]
    return output, parameter_grads, input_grads


def _check_compiled(model, flavour, backend) -> torch.nn.Module:
    """Compare the compiled ``model`` with eager mode (forward and backward),
    and return the compiled model."""
    torch._dynamo.reset()
    tensor = _tensor(flavour)
    eager_model = copy.deepcopy(model)
    compiled = torch.compile(model, fullgraph=True, backend=backend)

    expected, expected_params, expected_inputs = _forward_backward(
        eager_model, tensor, flavour
    )
    output, params, inputs = _forward_backward(compiled, tensor, flavour)
    assert isinstance(output, flavour.TensorMap)
    _assert_same_map(output, expected)
    assert len(params) == len(expected_params)
    for actual, reference in zip(params, expected_params):
        torch.testing.assert_close(actual, reference)
    for actual, reference in zip(inputs, expected_inputs):
        torch.testing.assert_close(actual, reference)
    return compiled


@pytest.mark.parametrize(
    "name, flavour_name", CASES, ids=[f"{f}-{name}" for name, f in CASES]
)
def test_compile_fullgraph(name, flavour_name):
    # the `eager` backend runs the graph captured by dynamo (with fullgraph=True,
    # the whole forward is one graph) without AOT autograd: fast to compile
    torch.manual_seed(0)
    flavour = Flavour(flavour_name)
    _check_compiled(_build(name, flavour), flavour, "eager")


def test_cases_cover_every_layer():
    layers = {name for name in metatensor_learn.nn.__all__} - {"Buffer", "Module"}
    assert layers <= {name for name, _ in CASES}


def test_compile_aot_autograd(flavour):
    """Backward through AOT autograd, and no recompilation for new data with the
    same structure."""
    torch.manual_seed(0)
    counter = dynamo_testing.CompileCounterWithBackend("aot_eager")
    model = flavour.nn.Sequential(
        _in_keys(flavour),
        flavour.nn.EquivariantLinear(_in_keys(flavour), 3, 4, dtype=F64),
        flavour.nn.InvariantSiLU(_in_keys(flavour)),
    )
    compiled = _check_compiled(model, flavour, counter)
    assert counter.frame_count == 1

    # new data with the same structure re-uses the compiled code
    other, _ = _with_grad_inputs(_tensor(flavour, seed=1), flavour)
    output = compiled(other)
    _loss(output).backward()
    _assert_same_map(output, model(other))
    assert counter.frame_count == 1


@pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None,
    reason="the inductor backend needs a C++ compiler",
)
def test_compile_inductor(flavour):
    torch.manual_seed(0)
    model = flavour.nn.Linear(_in_keys(flavour), 3, 2, dtype=F64)
    _check_compiled(model, flavour, "inductor")


def test_keys_in_another_order(flavour):
    """Under compile, the module of each block is resolved from its position:
    the graph checks that the keys are the ``in_keys`` in the same order."""
    torch._dynamo.reset()
    model = flavour.nn.Linear(_in_keys(flavour), 3, 4, dtype=F64)
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    compiled(_tensor(flavour))

    reordered = _tensor(flavour, key_order=(1, 0))
    # eager mode accepts the keys in any order
    model(reordered)
    message = "must be the ModuleMap in_keys, in the same order"
    with pytest.raises(RuntimeError, match=message):
        compiled(reordered)


def test_subset_of_keys(flavour):
    """A subset of ``in_keys`` needs the key values to find the modules: a graph
    break, impossible with ``fullgraph=True``."""
    torch._dynamo.reset()
    model = flavour.nn.Linear(_in_keys(flavour, 3), 3, 4, dtype=F64)
    subset = _tensor(flavour, key_order=(1,))
    expected = model(subset)

    compiled = torch.compile(model, fullgraph=True, backend="eager")
    with pytest.raises(torch._dynamo.exc.Unsupported, match="not the in_keys"):
        compiled(subset)

    torch._dynamo.reset()
    compiled = torch.compile(model, backend="eager")
    _assert_same_map(compiled(subset), expected)


def _tensor_with_samples(flavour: Flavour, n_samples: int):
    """Like ``_tensor``, with ``n_samples`` samples (and gradient rows)."""
    generator = torch.Generator().manual_seed(n_samples)
    L = flavour.labels
    blocks = []
    for o3_lambda in (0, 1):
        n_components = 2 * o3_lambda + 1
        components = [L(["o3_mu"], [[m] for m in range(-o3_lambda, o3_lambda + 1)])]
        block = flavour.TensorBlock(
            torch.randn(n_samples, n_components, 3, generator=generator, dtype=F64),
            L(["system", "atom"], [[0, i] for i in range(n_samples)]),
            components,
            L(["n"], [[0], [1], [2]]),
        )
        block.add_gradient(
            "positions",
            flavour.TensorBlock(
                torch.randn(
                    n_samples, 3, n_components, 3, generator=generator, dtype=F64
                ),
                L(["sample", "system", "atom"], [[i, 0, i] for i in range(n_samples)]),
                [L(["xyz"], [[0], [1], [2]])] + components,
                L(["n"], [[0], [1], [2]]),
            ),
        )
        blocks.append(block)
    return flavour.TensorMap(_in_keys(flavour), blocks)


def test_changing_number_of_samples(flavour):
    """Batches of different sizes: one recompilation with dynamic shapes, then
    the same compiled code for all sizes."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = flavour.nn.EquivariantLinear(_in_keys(flavour), 3, 2, dtype=F64)
    counter = dynamo_testing.CompileCounterWithBackend("eager")
    compiled = torch.compile(model, fullgraph=True, backend=counter)
    for n_samples in (4, 6, 9):
        tensor = _tensor_with_samples(flavour, n_samples)
        _assert_same_map(compiled(tensor), model(tensor))
    assert counter.frame_count == 2
