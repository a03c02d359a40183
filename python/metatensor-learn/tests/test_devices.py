"""Data on a device (the CPU, and a CUDA GPU when there is one) with both
flavours of metatensor-learn: every layer of ``nn`` moved with ``.to(device)``
(forward and backward, explicit gradients included), the metatensor buffers of
``nn.Module``, a scripted model, and the datasets and collate functions.

Everything runs with torch's default device set to another device (the
``elsewhere`` fixture), so tensors created without an explicit ``device=`` are
caught even without a GPU. Inputs are built before entering this context, and
results are checked after leaving it.
"""

import functools
import io
import types
import warnings

import pytest


torch = pytest.importorskip("torch")

import numpy as np  # noqa: E402

import metatensor  # noqa: E402
import metatensor_learn  # noqa: E402
from metatensor_learn.data import (  # noqa: E402
    DataLoader,
    Dataset,
    IndexedDataset,
    group,
    group_and_join,
)


pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")

# core classes with numpy Labels (only possible for data on the CPU), core
# classes with torch Labels, and the metatensor.torch classes
FLAVOURS = ["core-numpy", "core-torch", "torch"]
DTYPES = [torch.float32, torch.float64]
KEYS = [[0, 1], [1, 1], [2, 1]]
N_SAMPLES = 4
N_PROPERTIES = 3
# gradient rows: (row of the values, system, atom), not every sample has one
GRADIENT_SAMPLES = [[0, 0, 0], [1, 0, 1], [1, 0, 2], [3, 1, 0], [3, 1, 2]]


@pytest.fixture(params=FLAVOURS)
def flavour(request, device):
    """Classes, array builder and layers of one flavour of metatensor-learn."""
    if request.param == "core-numpy" and device.type != "cpu":
        pytest.skip("numpy Labels can only describe data on the CPU")
    return _flavour(request.param, device)


def _flavour(name: str, device: torch.device) -> types.SimpleNamespace:
    """The classes and layers of a flavour, and ``ints``: an int32 array for
    the values of Labels on ``device``."""
    if name == "torch":
        metatensor_torch = pytest.importorskip("metatensor_torch")
        import metatensor_torch.learn as learn

        classes = metatensor_torch
        nn = learn.nn
    else:
        classes = metatensor
        nn = metatensor_learn.nn

    if name == "core-numpy":

        def ints(values):
            return np.array(values, dtype=np.int32)

    else:

        def ints(values):
            return torch.tensor(values, dtype=torch.int32).to(device)

    return types.SimpleNamespace(
        name=name,
        Labels=classes.Labels,
        TensorBlock=classes.TensorBlock,
        TensorMap=classes.TensorMap,
        nn=nn,
        ints=ints,
    )


# --------------------------------------------------------------------------- #
# helpers                                                                     #
# --------------------------------------------------------------------------- #


def _labels_device(labels) -> torch.device:
    values = labels.values
    if isinstance(values, np.ndarray):
        return torch.device("cpu")
    return values.device


def _assert_on(value, device: torch.device, what: str = "value") -> None:
    """Check that ``value`` (Labels, TensorBlock, TensorMap, tensor or
    containers of them) is entirely on ``device``."""
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _assert_on(item, device, f"{what}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            _assert_on(item, device, f"{what}[{key!r}]")
    elif isinstance(value, torch.Tensor):
        assert value.device == device, f"{what} is on {value.device}"
    elif hasattr(value, "block_by_id"):
        _assert_on(value.keys, device, f"{what}.keys")
        for i in range(len(value.keys)):
            _assert_on(value.block_by_id(i), device, f"{what}.block({i})")
    elif hasattr(value, "gradients_list"):
        assert value.values.device == device, f"{what}.values is on {value.device}"
        _assert_on(value.samples, device, f"{what}.samples")
        _assert_on(value.components, device, f"{what}.components")
        _assert_on(value.properties, device, f"{what}.properties")
        for parameter in value.gradients_list():
            gradient = value.gradient(parameter)
            _assert_on(gradient, device, f"{what}.gradient({parameter!r})")
    else:
        actual = _labels_device(value)
        assert actual == device, f"{what} ({value.names}) is on {actual}"


def _tensor(
    flavour, dtype: torch.dtype, device: torch.device, requires_grad: bool = True
):
    """A map with ``o3_lambda``/``o3_sigma`` keys, covariant blocks and
    positions gradients on ``device``, whose values and gradient values are
    leaves (requiring gradients if ``requires_grad``). The same arguments give
    the same values."""
    Labels, TensorBlock = flavour.Labels, flavour.TensorBlock
    generator = torch.Generator().manual_seed(0)
    blocks = []
    for o3_lambda, _ in KEYS:
        n_components = 2 * o3_lambda + 1
        shape = (N_SAMPLES, n_components, N_PROPERTIES)
        values = torch.randn(shape, generator=generator, dtype=dtype)
        shape = (len(GRADIENT_SAMPLES), 3, n_components, N_PROPERTIES)
        gradient = torch.randn(shape, generator=generator, dtype=dtype)

        components = Labels(
            ["o3_mu"],
            flavour.ints([[mu] for mu in range(-o3_lambda, o3_lambda + 1)]),
        )
        properties = Labels(["n"], flavour.ints([[n] for n in range(N_PROPERTIES)]))
        block = TensorBlock(
            values=values.to(device).requires_grad_(requires_grad),
            samples=Labels(
                ["system", "atom"],
                flavour.ints([[i // 2, i % 2] for i in range(N_SAMPLES)]),
            ),
            components=[components],
            properties=properties,
        )
        block.add_gradient(
            "positions",
            TensorBlock(
                values=gradient.to(device).requires_grad_(requires_grad),
                samples=Labels(
                    ["sample", "system", "atom"], flavour.ints(GRADIENT_SAMPLES)
                ),
                components=[Labels(["xyz"], flavour.ints([[0], [1], [2]])), components],
                properties=properties,
            ),
        )
        blocks.append(block)
    return flavour.TensorMap(
        flavour.Labels(["o3_lambda", "o3_sigma"], flavour.ints(KEYS)), blocks
    )


def _loss(tensor) -> torch.Tensor:
    first = tensor.block_by_id(0).values
    loss = torch.zeros((), dtype=first.dtype, device=first.device)
    for block in tensor.blocks():
        loss = loss + (block.values**2).sum()
        for parameter in block.gradients_list():
            loss = loss + (block.gradient(parameter).values ** 2).sum()
    return loss


def _leaves(tensor):
    """The values and gradient values of every block of ``tensor``."""
    leaves = []
    for block in tensor.blocks():
        leaves.append(block.values)
        leaves.append(block.gradient("positions").values)
    return leaves


def _metatensor_buffers(module):
    """Every metatensor buffer of ``module`` and its submodules."""
    buffers = {}
    for prefix, submodule in module.named_modules():
        for name in getattr(submodule, "_mts_buffer_names", []):
            value = getattr(submodule, name)
            if value is not None:
                buffers[f"{prefix}.{name}"] = value
    return buffers


def _assert_module_on(module, device: torch.device) -> None:
    for name, parameter in module.named_parameters():
        assert parameter.device == device, f"{name} is on {parameter.device}"
    for name, buffer in module.named_buffers():
        assert buffer.device == device, f"{name} is on {buffer.device}"
    for name, value in _metatensor_buffers(module).items():
        _assert_on(value, device, name)


def _assert_same_maps(actual, expected, atol: float, rtol: float) -> None:
    """Same metadata and values, ``actual`` being on any device and
    ``expected`` on the CPU."""
    assert len(actual.keys) == len(expected.keys)
    for i in range(len(expected.keys)):
        a, e = actual.block_by_id(i), expected.block_by_id(i)
        assert a.values.dtype == e.values.dtype
        torch.testing.assert_close(
            a.values.detach().cpu(), e.values.detach(), atol=atol, rtol=rtol
        )
        assert a.properties.names == e.properties.names
        assert _as_list(a.properties.values) == _as_list(e.properties.values)
        assert a.gradients_list() == e.gradients_list()
        for parameter in e.gradients_list():
            torch.testing.assert_close(
                a.gradient(parameter).values.detach().cpu(),
                e.gradient(parameter).values.detach(),
                atol=atol,
                rtol=rtol,
            )


def _as_list(values) -> list:
    if isinstance(values, torch.Tensor):
        return values.cpu().tolist()
    return np.asarray(values).tolist()


def _tolerances(dtype: torch.dtype):
    if dtype == torch.float32:
        return {"atol": 1e-5, "rtol": 1e-4}
    return {"atol": 1e-10, "rtol": 1e-8}


# --------------------------------------------------------------------------- #
# every layer of nn                                                            #
# --------------------------------------------------------------------------- #


def _out_properties(flavour, count: int):
    return [
        flavour.Labels(["out"], flavour.ints([[i] for i in range(count)]))
        for _ in range(len(KEYS))
    ]


def _invariant_keys(flavour):
    return flavour.Labels(["o3_lambda"], flavour.ints([[0]]))


def _layers(flavour, keys) -> dict:
    """A factory for each layer to test, built on the CPU (in float32)."""
    nn = flavour.nn
    n = N_PROPERTIES
    return {
        "Linear": lambda: nn.Linear(
            keys, n, out_properties=_out_properties(flavour, 2)
        ),
        "Linear-default-properties": lambda: nn.Linear(keys, n, 2, bias=False),
        "EquivariantLinear": lambda: nn.EquivariantLinear(keys, n, 2),
        "EquivariantLinear-invariant-keys": lambda: nn.EquivariantLinear(
            keys, n, 2, invariant_keys=_invariant_keys(flavour)
        ),
        "ModuleMap": lambda: nn.ModuleMap(
            keys,
            [torch.nn.Linear(n, 2), torch.nn.Tanh(), torch.nn.Identity()],
            _out_properties(flavour, 2)[:1] + _out_properties(flavour, n)[1:],
        ),
        "ModuleMap-from_module": lambda: nn.ModuleMap.from_module(
            keys, torch.nn.Sequential(torch.nn.Linear(n, n), torch.nn.SiLU())
        ),
        "ReLU": lambda: nn.ReLU(keys),
        "SiLU": lambda: nn.SiLU(keys),
        "Tanh": lambda: nn.Tanh(keys, _out_properties(flavour, n)[0]),
        "InvariantReLU": lambda: nn.InvariantReLU(keys),
        "InvariantSiLU": lambda: nn.InvariantSiLU(
            keys, invariant_keys=_invariant_keys(flavour)
        ),
        "InvariantTanh": lambda: nn.InvariantTanh(keys),
        "LayerNorm": lambda: nn.LayerNorm(keys, n),
        "LayerNorm-no-mean": lambda: nn.LayerNorm(keys, n, mean=False, bias=False),
        "InvariantLayerNorm": lambda: nn.InvariantLayerNorm(keys, n),
        "EquivariantTransformation": lambda: nn.EquivariantTransformation(
            [
                torch.nn.Sequential(torch.nn.Linear(n, n), torch.nn.Tanh()),
                torch.nn.Sigmoid(),
                torch.nn.Sequential(torch.nn.Linear(n, 1), torch.nn.Softplus()),
            ],
            keys,
            n,
            out_properties=_out_properties(flavour, n),
        ),
        "Sequential": lambda: nn.Sequential(
            keys,
            nn.EquivariantLinear(keys, n, 2),
            nn.InvariantSiLU(keys),
            nn.InvariantLayerNorm(keys, 2),
            nn.Linear(keys, 2, out_properties=_out_properties(flavour, 2)),
        ),
    }


# public names of `nn` covered by the tests of this file
COVERED = {
    "Buffer": "test_metatensor_buffers",
    "Module": "test_metatensor_buffers",
    "EquivariantLinear": "EquivariantLinear",
    "EquivariantTransformation": "EquivariantTransformation",
    "InvariantLayerNorm": "InvariantLayerNorm",
    "InvariantReLU": "InvariantReLU",
    "InvariantSiLU": "InvariantSiLU",
    "InvariantTanh": "InvariantTanh",
    "LayerNorm": "LayerNorm",
    "Linear": "Linear",
    "ModuleMap": "ModuleMap",
    "ReLU": "ReLU",
    "Sequential": "Sequential",
    "SiLU": "SiLU",
    "Tanh": "Tanh",
}
LAYERS = list(_layers(types.SimpleNamespace(nn=None), None).keys())


def test_every_public_layer_is_covered():
    assert set(metatensor_learn.nn.__all__) == set(COVERED)
    for name, case in COVERED.items():
        if case.startswith("test_"):
            assert case in globals(), name
        else:
            assert case in LAYERS, name
    metatensor_torch = pytest.importorskip("metatensor_torch")
    assert set(metatensor_torch.learn.nn.__all__) == set(COVERED)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", LAYERS)
def test_layer(flavour, name, dtype, device, elsewhere):
    # the layer and the reference are created on the CPU
    on_cpu = _flavour(flavour.name, torch.device("cpu"))
    keys = on_cpu.Labels(["o3_lambda", "o3_sigma"], on_cpu.ints(KEYS))

    torch.manual_seed(0)
    reference = _layers(on_cpu, keys)[name]().to(dtype)
    expected = reference(_tensor(on_cpu, dtype, torch.device("cpu")))
    _loss(expected).backward()

    # the same layer moved to the device
    torch.manual_seed(0)
    module = _layers(on_cpu, keys)[name]()
    tensor = _tensor(flavour, dtype, device)

    with elsewhere(device):
        module = module.to(device=device, dtype=dtype)
        output = module(tensor)
        _loss(output).backward()

    _assert_module_on(module, device)
    _assert_on(output, device, "output")
    _assert_same_maps(output, expected, **_tolerances(dtype))

    # autograd goes through the values, the gradients and the parameters
    expected_parameters = dict(reference.named_parameters())
    for parameter_name, parameter in module.named_parameters():
        assert parameter.dtype == dtype
        assert parameter.grad is not None, parameter_name
        assert parameter.grad.device == device
        torch.testing.assert_close(
            parameter.grad.cpu(),
            expected_parameters[parameter_name].grad,
            **_tolerances(dtype),
        )
    for leaf in _leaves(tensor):
        assert leaf.grad is not None
        assert leaf.grad.device == device
        assert leaf.grad.dtype == dtype


@pytest.mark.parametrize(
    "name", ["Linear", "EquivariantLinear", "LayerNorm", "InvariantLayerNorm"]
)
def test_layer_created_on_device(flavour, name, device, elsewhere):
    """Layers created with ``device=`` and ``dtype=`` from Labels on the device
    (``invariant_keys`` being on the CPU) keep their metatensor buffers on the
    device, also when changing dtype."""
    nn = flavour.nn
    keys = flavour.Labels(["o3_lambda", "o3_sigma"], flavour.ints(KEYS))
    invariant_keys = _invariant_keys(_flavour(flavour.name, torch.device("cpu")))
    n = N_PROPERTIES
    out_properties = _out_properties(flavour, n)
    kwargs = {"device": device, "dtype": torch.float32}
    if name == "Linear":
        module = nn.Linear(keys, n, n, out_properties, **kwargs)
    elif name == "EquivariantLinear":
        module = nn.EquivariantLinear(
            keys, n, n, out_properties, invariant_keys, **kwargs
        )
    elif name == "LayerNorm":
        module = nn.LayerNorm(keys, n, out_properties, **kwargs)
    else:
        module = nn.InvariantLayerNorm(
            keys, n, out_properties, invariant_keys, **kwargs
        )
    _assert_module_on(module, device)

    tensor = _tensor(flavour, torch.float64, device)
    with elsewhere(device):
        module = module.to(torch.float64)
        output = module(tensor)
        _loss(output).backward()

    for parameter in module.parameters():
        assert parameter.device == device
        assert parameter.dtype == torch.float64
        assert parameter.grad is not None
    for value in _metatensor_buffers(module).values():
        _assert_on(value, device)
    _assert_on(output, device, "output")


# --------------------------------------------------------------------------- #
# metatensor buffers of nn.Module                                              #
# --------------------------------------------------------------------------- #


def _holder(flavour, device: torch.device):
    """A module holding metatensor data of every kind, on ``device``."""
    tensor = _tensor(flavour, torch.float32, device, requires_grad=False)
    block = tensor.block_by_id(0)
    labels = flavour.Labels(["a", "b"], flavour.ints([[0, 1], [2, 3]]))
    empty = flavour.TensorMap(flavour.Labels(["key"], flavour.ints([[0]])[:0]), [])

    module = flavour.nn.Module()
    module.register_buffer("labels", labels)
    module.register_buffer("block", block)
    module.tensor = flavour.nn.Buffer(tensor)
    module.register_buffer("nested", {"x": [labels, (tensor,)], "empty": [[], {}]})
    module.register_buffer("empty", empty)
    module.register_buffer("transient", tensor, persistent=False)
    module.linear = torch.nn.Linear(2, 2)
    return module


def test_metatensor_buffers(flavour, device, elsewhere):
    module = _holder(flavour, torch.device("cpu"))
    with elsewhere(device):
        module = module.to(device)
    _assert_module_on(module, device)
    assert module.tensor.block_by_id(0).values.dtype == torch.float32

    # `.to(device, dtype)`, `.double()`: the dtype changes, not the device
    with elsewhere(device):
        module = module.to(device, torch.float64)
    _assert_module_on(module, device)
    assert module.tensor.block_by_id(0).values.dtype == torch.float64
    assert module.block.gradient("positions").values.dtype == torch.float64
    assert module.nested["x"][1][0].block_by_id(1).values.dtype == torch.float64

    with elsewhere(device):
        module = module.float()
    _assert_module_on(module, device)
    assert module.tensor.block_by_id(0).values.dtype == torch.float32

    # state_dict round trip, on the device
    with elsewhere(device):
        state = module.state_dict()
    other = _holder(flavour, torch.device("cpu")).to(device)
    with elsewhere(device):
        other.load_state_dict(state)
    for name in ["labels", "block", "tensor", "nested", "empty"]:
        _assert_on(getattr(other, name), device, name)
    expected = module.tensor.block_by_id(2).values
    torch.testing.assert_close(other.tensor.block_by_id(2).values, expected)

    # through torch.save/torch.load
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=False)
    with elsewhere(device):
        other.load_state_dict(state)
    _assert_on(other.tensor, device, "tensor")


# --------------------------------------------------------------------------- #
# the meta device: moving metadata around without data                         #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("name", ["core-numpy", "torch"])
def test_meta_device(name):
    meta = torch.device("meta")
    flavour = _flavour(name, torch.device("cpu"))
    keys = flavour.Labels(["o3_lambda", "o3_sigma"], flavour.ints(KEYS))
    for name, factory in _layers(flavour, keys).items():
        module = factory().to("meta")
        _assert_module_on(module, meta)
        module = module.double()
        _assert_module_on(module, meta)
        for parameter in module.parameters():
            assert parameter.dtype == torch.float64, name

    # layers created with `device=` store their Labels on this device
    out_properties = _out_properties(flavour, 3)
    module = flavour.nn.Linear(keys, 3, 3, out_properties, device=meta)
    _assert_module_on(module, meta)
    module = flavour.nn.EquivariantLinear(keys, 3, 3, device=meta)
    _assert_module_on(module, meta)
    module = flavour.nn.InvariantLayerNorm(keys, 3, out_properties, device=meta)
    _assert_module_on(module, meta)

    # metatensor buffers stay on their device when changing dtype, even if the
    # module was created elsewhere
    module = flavour.nn.Module()
    module.register_buffer("labels", _to_meta(keys))
    block = flavour.TensorBlock(
        torch.zeros(3, 3), keys, [], _out_properties(flavour, 3)[0]
    )
    module.register_buffer("block", block.to(device="meta", arrays="torch"))
    module.linear = torch.nn.Linear(3, 3, device=meta)
    module = module.double()
    _assert_on(module.labels, meta, "labels")
    _assert_on(module.block, meta, "block")
    assert module.block.values.dtype == torch.float64

    # buffers holding an empty map, or Labels saved from the meta device
    module = flavour.nn.Module()
    Labels = flavour.Labels
    module.register_buffer(
        "empty", flavour.TensorMap(Labels(["key"], flavour.ints([[0]])[:0]), [])
    )
    module.register_buffer("labels", Labels(["a"], flavour.ints([[1], [2]])))
    module = module.to("meta")
    _assert_on(module.empty, meta, "empty")
    _assert_on(module.labels, meta, "labels")

    state = flavour.nn.Module()
    state.register_buffer("labels", Labels(["a"], flavour.ints([[1], [2]])))
    state = state.state_dict()
    kind, buffer, marker = state["_extra_state"]["labels"]
    state["_extra_state"]["labels"] = (kind, buffer, marker.to("meta"))
    module = flavour.nn.Module()
    module.load_state_dict(state)
    _assert_on(module.labels, meta, "labels")


def _to_meta(labels):
    if isinstance(labels.values, np.ndarray):
        labels = labels.to(arrays="torch")
    return labels.to("meta")


# --------------------------------------------------------------------------- #
# scripted model                                                               #
# --------------------------------------------------------------------------- #


def test_scripted_model(device, elsewhere):
    pytest.importorskip("metatensor_torch")
    import metatensor_torch.learn as learn

    flavour = _flavour("torch", torch.device("cpu"))
    nn = learn.nn
    keys = flavour.Labels(["o3_lambda", "o3_sigma"], flavour.ints(KEYS))
    n = N_PROPERTIES

    torch.manual_seed(0)
    model = nn.Sequential(
        keys,
        nn.EquivariantLinear(keys, n, 4, dtype=torch.float64),
        nn.InvariantTanh(keys),
        nn.LayerNorm(keys, 4, dtype=torch.float64),
        nn.Linear(keys, 4, out_properties=_out_properties(flavour, 2)),
    ).to(torch.float64)
    tensor = _tensor(flavour, torch.float64, torch.device("cpu"))
    expected = model(tensor)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(model)
    scripted = scripted.to(device)
    for name, parameter in scripted.named_parameters():
        assert parameter.device == device, name
    _assert_on(scripted.module_map._in_keys, device, "in_keys")
    _assert_on(scripted.module_map._out_properties, device, "out_properties")

    tensor = _tensor(_flavour("torch", device), torch.float64, device)
    with elsewhere(device):
        output = scripted(tensor)
        _loss(output).backward()

    _assert_on(output, device, "output")
    _assert_same_maps(output, expected, **_tolerances(torch.float64))
    for name, parameter in scripted.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.device == device


# --------------------------------------------------------------------------- #
# datasets and collate functions                                               #
# --------------------------------------------------------------------------- #


def _system(flavour, system: int, device: torch.device, keys=((0,),)):
    """A per-system map with positions gradients, on ``device``."""
    Labels, TensorBlock = flavour.Labels, flavour.TensorBlock
    blocks = []
    for (key,) in keys:
        values = torch.full((2, 3), 10.0 * system + key, dtype=torch.float32)
        block = TensorBlock(
            values=values.to(device),
            samples=Labels(
                ["system", "atom"], flavour.ints([[system, 0], [system, 1]])
            ),
            components=[],
            properties=Labels(["p"], flavour.ints([[0], [1], [2]])),
        )
        gradient = torch.full((2, 3, 3), -1.0 * system, dtype=torch.float32)
        block.add_gradient(
            "positions",
            TensorBlock(
                values=gradient.to(device),
                samples=Labels(
                    ["sample", "system", "atom"],
                    flavour.ints([[0, system, 0], [1, system, 1]]),
                ),
                components=[Labels(["xyz"], flavour.ints([[0], [1], [2]]))],
                properties=block.properties,
            ),
        )
        blocks.append(block)
    return flavour.TensorMap(Labels(["key"], flavour.ints(list(keys))), blocks)


def _check_joined(joined, parts, device: torch.device) -> None:
    _assert_on(joined, device, "joined")
    for i in range(len(joined.keys)):
        block = joined.block_by_id(i)
        expected = torch.cat([part.block_by_id(i).values.cpu() for part in parts])
        assert block.values.dtype == torch.float32
        torch.testing.assert_close(block.values.cpu(), expected)
        gradient = block.gradient("positions")
        expected = torch.cat(
            [part.block_by_id(i).gradient("positions").values.cpu() for part in parts]
        )
        torch.testing.assert_close(gradient.values.cpu(), expected)


def test_collate(flavour, device, elsewhere):
    tensors = [_system(flavour, i, device) for i in range(3)]
    xs = [torch.arange(4, dtype=torch.float32).to(device) + i for i in range(3)]
    dataset = Dataset(tensor=tensors, x=xs, name=["a", "b", "c"])
    indexed = IndexedDataset(sample_id=[5, 6, 7], tensor=lambda i: tensors[i - 5])
    different = [
        _system(flavour, 0, device, keys=((0,),)),
        _system(flavour, 1, device, keys=((0,), (1,))),
    ]
    same = [tensors[0], tensors[0]]

    with elsewhere(device):
        grouped = group([dataset[0], dataset[2]])
        joined = group_and_join([dataset[0], dataset[1], dataset[2]])
        joined_indexed = group_and_join([indexed[2], indexed[0]])
        joined_fields = group_and_join(
            [dataset[1], dataset[2]], fields_to_join=["tensor"]
        )
        union = group_and_join(
            list(Dataset(tensor=different)), join_kwargs={"different_keys": "union"}
        )
        batch_dimension = group_and_join(
            list(Dataset(tensor=same)), join_kwargs={"add_dimension": "batch"}
        )

    assert grouped.tensor[0] is tensors[0]
    assert grouped.x[1] is xs[2]

    _check_joined(joined.tensor, tensors, device)
    assert joined.x.device == device
    assert joined.x.dtype == torch.float32
    torch.testing.assert_close(joined.x.cpu(), torch.stack([x.cpu() for x in xs]))
    assert joined.name == ("a", "b", "c")

    assert joined_indexed.sample_id == (7, 5)
    _check_joined(joined_indexed.tensor, [tensors[2], tensors[0]], device)

    _check_joined(joined_fields.tensor, tensors[1:], device)
    assert joined_fields.x == (xs[1], xs[2])

    _assert_on(union.tensor, device, "union")
    assert len(union.tensor.keys) == 2

    _assert_on(batch_dimension.tensor, device, "batch")
    assert batch_dimension.tensor.block_by_id(0).samples.names == [
        "system",
        "atom",
        "batch",
    ]


def test_dataloader(flavour, device, elsewhere):
    tensors = [_system(flavour, i, device) for i in range(4)]
    xs = [torch.arange(4, dtype=torch.float32).to(device) + i for i in range(4)]
    dataset = IndexedDataset(sample_id=list(range(4)), tensor=tensors, x=xs)
    collate = functools.partial(group_and_join, fields_to_join=["tensor"])

    loaders = [
        DataLoader(dataset, batch_size=3),
        DataLoader(dataset, batch_size=2, collate_fn=collate),
    ]
    for loader in loaders:
        # torch's DataLoader creates its random seed on the default device
        # when starting an iteration: start outside of `elsewhere`
        iterator = iter(loader)
        with elsewhere(device):
            batches = list(iterator)
        start = 0
        for batch in batches:
            size = len(batch.sample_id)
            assert batch.sample_id == tuple(range(start, start + size))
            _check_joined(batch.tensor, tensors[start : start + size], device)
            if isinstance(batch.x, torch.Tensor):
                assert batch.x.device == device
                assert batch.x.shape == (size, 4)
            else:
                assert batch.x == tuple(xs[start : start + size])
            start += size
        assert start == 4


def test_meta_tensors_collate():
    # stacking tensors only needs shapes
    xs = [torch.zeros(5, device="meta") for _ in range(3)]
    batch = group_and_join(list(Dataset(x=xs)))
    assert batch.x.device.type == "meta"
    assert batch.x.shape == (3, 5)
