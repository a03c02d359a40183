"""TorchScript compatibility of the metatensor.learn.nn source.

The core classes can not be compiled, TorchScript is for the torch flavour
(``metatensor.torch.learn``: this source executed again with a ``_backend``
holding the metatensor-torch classes). Here we

* execute the source again with the core classes but ``torch.jit.is_scripting``
  (as the torch flavour does), and compile the per-block torch modules with
  their gradient rules;
* if metatensor-torch is importable, build the torch flavour the same way and
  compile complete layers (values and gradients must match eager mode).
"""

import importlib.util
import io
import os
import sys
import types

import pytest


torch = pytest.importorskip("torch")

import metatensor_learn  # noqa: E402
import metatensor_learn._backend  # noqa: E402


pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")


def _execute_with_backend(name: str, backend: types.ModuleType) -> types.ModuleType:
    """Execute the ``metatensor_learn`` source again as module ``name``, with
    ``backend`` as its ``_backend``."""
    if name in sys.modules:
        return sys.modules[name]
    origin = metatensor_learn.__file__
    spec = importlib.util.spec_from_file_location(
        name, origin, submodule_search_locations=[os.path.dirname(origin)]
    )
    module = importlib.util.module_from_spec(spec)
    backend.__name__ = f"{name}._backend"
    sys.modules[backend.__name__] = backend
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _scripting_backend(classes) -> types.ModuleType:
    backend = types.ModuleType("backend")
    backend.Labels = classes["Labels"]
    backend.LabelsEntry = classes["LabelsEntry"]
    backend.TensorBlock = classes["TensorBlock"]
    backend.TensorMap = classes["TensorMap"]
    backend.torch_jit_is_scripting = torch.jit.is_scripting

    def isinstance_metatensor(value, typename):
        return isinstance(value, classes[typename])

    backend.isinstance_metatensor = isinstance_metatensor
    return backend


@pytest.fixture(scope="module")
def layers_module():
    core = metatensor_learn._backend
    classes = {name: getattr(core, name) for name in core._CLASSES}
    learn = _execute_with_backend(
        "_metatensor_learn_scripting_test", _scripting_backend(classes)
    )
    return sys.modules[learn.__name__ + ".nn._layers"]


def _per_key_modules(layers):
    f64 = torch.float64
    return [
        layers._Linear(4, 4, dtype=f64),
        layers._Identity(),
        layers._ReLU(),
        layers._SiLU(),
        layers._Tanh(),
        layers._LayerNorm(4, dtype=f64),
        layers._LayerNorm(4, mean=False, dtype=f64),
        layers._CovariantTransform(layers._Linear(4, 4, dtype=f64)),
        layers._Sequential(
            layers._Linear(4, 4, dtype=f64),
            layers._SiLU(),
            layers._CovariantTransform(layers._Tanh()),
        ),
    ]


def test_per_key_modules(layers_module):
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(5, 3, 4, generator=generator, dtype=torch.float64)
    rows = [torch.tensor([0, 0, 1, 4]), torch.tensor([0, 1, 2, 3, 4])]
    gradients = [
        torch.randn(4, 3, 3, 4, generator=generator, dtype=torch.float64),
        torch.randn(5, 3, 3, 3, 4, generator=generator, dtype=torch.float64),
    ]
    for module in _per_key_modules(layers_module):
        scripted = torch.jit.script(module)
        torch.testing.assert_close(scripted(values), module(values))
        expected = module.gradient_forward(values, rows, gradients)
        actual = scripted.gradient_forward(values, rows, gradients)
        for a, b in zip(actual, expected):
            torch.testing.assert_close(a, b)


def test_user_modules_without_gradient_rules(layers_module):
    # these compile, but gradients are not available in TorchScript
    f64 = torch.float64
    values = torch.randn(5, 3, 4, dtype=f64)
    rows = [torch.tensor([0, 1])]
    gradients = [torch.randn(2, 3, 3, 4, dtype=f64)]
    for module in [
        layers_module._CovariantTransform(torch.nn.Linear(4, 4, dtype=f64)),
        layers_module._Sequential(torch.nn.Linear(4, 4, dtype=f64)),
    ]:
        scripted = torch.jit.script(module)
        torch.testing.assert_close(scripted(values), module(values))
        # eager mode uses forward-mode autodiff
        assert len(module.gradient_forward(values, rows, gradients)) == 1
        with pytest.raises(torch.jit.Error, match="only supported in TorchScript"):
            scripted.gradient_forward(values, rows, gradients)


# --------------------------------------------------------------------------- #
# complete layers with the metatensor-torch classes                            #
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def torch_flavour():
    metatensor_torch = pytest.importorskip("metatensor_torch")
    learn = sys.modules.get("metatensor_torch.learn")
    if learn is None:
        classes = {
            "Labels": metatensor_torch.Labels,
            "LabelsEntry": metatensor_torch.LabelsEntry,
            "TensorBlock": metatensor_torch.TensorBlock,
            "TensorMap": metatensor_torch.TensorMap,
        }
        learn = _execute_with_backend(
            "_metatensor_torch_learn_test", _scripting_backend(classes)
        )
    return metatensor_torch, learn


def _torch_tensor(metatensor_torch):
    root = os.path.join(os.path.dirname(__file__), "..", "..", "..")
    path = os.path.join(root, "tests", "data", "qm7-spherical-expansion.mts")
    tensor = metatensor_torch.load(path).to(torch.float64)
    # a subset of the blocks (all o3_lambda) and samples is enough
    keys = tensor.keys
    indices = [i for i in range(len(keys)) if int(keys.entry(i)["neighbor_type"]) == 1]
    tensor = metatensor_torch.TensorMap(
        metatensor_torch.Labels(keys.names, keys.values[indices]),
        [tensor.block_by_id(i) for i in indices],
    )
    selection = metatensor_torch.Labels(
        ["system"], torch.tensor([[0], [1]], dtype=torch.int32)
    )
    return metatensor_torch.operations.slice(tensor, "samples", selection)


def _torch_layers(nn, keys, features):
    f64 = torch.float64
    return {
        "Linear": nn.Linear(keys, features, 3, dtype=f64),
        "EquivariantLinear": nn.EquivariantLinear(keys, features, 3, dtype=f64),
        "ReLU": nn.ReLU(keys),
        "InvariantSiLU": nn.InvariantSiLU(keys),
        "Tanh": nn.Tanh(keys),
        "LayerNorm": nn.LayerNorm(keys, 4, dtype=f64),
        "InvariantLayerNorm": nn.InvariantLayerNorm(keys, 4, dtype=f64),
        "Sequential": nn.Sequential(
            keys,
            nn.EquivariantLinear(keys, features, 3, dtype=f64),
            nn.InvariantTanh(keys),
            nn.InvariantLayerNorm(keys, 3, dtype=f64),
        ),
    }


def test_torch_flavour_layers(torch_flavour):
    metatensor_torch, learn = torch_flavour
    tensor = _torch_tensor(metatensor_torch)
    features = [block.values.shape[-1] for block in tensor.blocks()]
    for name, layer in _torch_layers(learn.nn, tensor.keys, features).items():
        eager = layer(tensor)
        scripted = torch.jit.script(layer)
        output = scripted(tensor)
        for a, b in zip(output.blocks(), eager.blocks()):
            torch.testing.assert_close(a.values, b.values, msg=name)
            torch.testing.assert_close(
                a.gradient("positions").values,
                b.gradient("positions").values,
                msg=name,
            )

        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
        buffer.seek(0)
        loaded = torch.jit.load(buffer)
        torch.testing.assert_close(
            loaded(tensor).block_by_id(0).values, eager.block_by_id(0).values
        )


def test_torch_flavour_equivariant_transformation(torch_flavour):
    metatensor_torch, learn = torch_flavour
    tensor = _torch_tensor(metatensor_torch)
    modules = [torch.nn.Linear(4, 4, dtype=torch.float64) for _ in range(len(tensor))]
    layer = learn.nn.EquivariantTransformation(modules, tensor.keys, 4, 4)
    scripted = torch.jit.script(layer)

    no_gradients = metatensor_torch.operations.remove_gradients(tensor)
    torch.testing.assert_close(
        scripted(no_gradients).block_by_id(1).values,
        layer(no_gradients).block_by_id(1).values,
    )
    # plain torch modules have no scripted gradient rule
    with pytest.raises(torch.jit.Error, match="only supported in TorchScript"):
        scripted(tensor)
    # eager mode handles them
    layer(tensor)


def test_core_classes_in_torch_flavour_warn():
    pytest.importorskip("metatensor_torch")
    import metatensor_torch

    labels = metatensor_torch.Labels("a", torch.tensor([[0]], dtype=torch.int32))
    with pytest.warns(
        UserWarning, match="Trying to use code from ``metatensor.learn``"
    ):
        assert not metatensor_learn._backend.isinstance_metatensor(labels, "Labels")
