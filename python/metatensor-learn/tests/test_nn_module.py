"""metatensor.learn.nn.Module: metatensor buffers moved by `.to()` and saved
in the state_dict."""

import io

import pytest


torch = pytest.importorskip("torch")

import numpy as np  # noqa: E402

from metatensor import Labels, TensorBlock, TensorMap  # noqa: E402
from metatensor_learn.nn import Buffer, Module  # noqa: E402


def _labels():
    return Labels(["a", "b"], np.array([[0, 1], [2, 3]], dtype=np.int32))


def _block(dtype=torch.float64):
    block = TensorBlock(
        values=torch.arange(6, dtype=dtype).reshape(3, 2),
        samples=Labels.range("s", 3),
        components=[],
        properties=Labels.range("p", 2),
    )
    block.add_gradient(
        "g",
        TensorBlock(
            values=torch.ones(1, 2, dtype=dtype),
            samples=Labels.range("sample", 1),
            components=[],
            properties=Labels.range("p", 2),
        ),
    )
    return block


def _tensor(dtype=torch.float64):
    return TensorMap(Labels.range("key", 1), [_block(dtype)])


class Holder(Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("labels", _labels())
        self.register_buffer("block", _block())
        self.tensor = Buffer(_tensor())
        self.register_buffer(
            "nested", {"x": [_labels(), (_tensor(),)], "empty": [[], {}]}
        )
        self.register_buffer("transient", _tensor(), persistent=False)
        self.register_buffer("nothing", None)
        self.linear = torch.nn.Linear(2, 2, dtype=torch.float64)


def test_register_buffer_errors():
    module = Module()
    message = (
        "register_buffer expects a torch.Tensor, None, or a value containing "
        "metatensor types \\(Labels, TensorBlock, TensorMap\\), got int"
    )
    with pytest.raises(TypeError, match=message):
        module.register_buffer("x", 3)
    with pytest.raises(TypeError, match="got list"):
        module.register_buffer("x", [1, 2])

    module.register_buffer("x", _labels())
    with pytest.raises(KeyError, match="buffer 'x' is already registered"):
        module.register_buffer("x", _labels())

    with pytest.raises(ValueError, match="can not mix metatensor data"):
        module.register_buffer("mixed", [_labels(), 3])
    with pytest.raises(ValueError, match="can not mix metatensor data"):
        module.register_buffer("mixed", {"a": _labels(), "b": "string"})

    # torch tensors take the usual path
    module.register_buffer("tensor", torch.zeros(3))
    assert "tensor" in dict(module.named_buffers())
    assert module._mts_buffer_names == ["x"]


def test_buffer_assignment():
    module = Holder()
    assert module._mts_buffer_names == [
        "labels",
        "block",
        "tensor",
        "nested",
        "transient",
        "nothing",
    ]
    assert module._mts_non_persistent_buffers == ["transient"]
    assert isinstance(module.tensor, TensorMap)
    assert module.nothing is None
    assert "_mts_helper" in dict(module.named_buffers())


def test_to_dtype_and_device():
    module = Holder()
    module = module.to(torch.float32)
    assert module.linear.weight.dtype == torch.float32
    assert module.block.values.dtype == torch.float32
    assert module.block.gradient("g").values.dtype == torch.float32
    assert module.tensor.block(0).values.dtype == torch.float32
    assert module.transient.block(0).values.dtype == torch.float32
    assert module.nested["x"][1][0].block(0).values.dtype == torch.float32
    assert isinstance(module.nested["x"][1], tuple)
    assert module.nested["empty"] == [[], {}]
    assert module.labels == _labels()

    module = module.double()
    assert module.block.values.dtype == torch.float64

    module = module.to("meta")
    assert module.linear.weight.device.type == "meta"
    assert module.labels.values.device.type == "meta"
    assert module.block.values.device.type == "meta"
    assert module.block.samples.values.device.type == "meta"
    assert module.nested["x"][0].values.device.type == "meta"
    assert module.tensor.keys.values.device.type == "meta"
    assert module.block.values.dtype == torch.float64


def test_to_device_keeps_dtype():
    # changing the device does not change the dtype of metatensor buffers
    # (the module itself is float32 by default)
    module = Module()
    module.register_buffer("tensor", _tensor(torch.float64))
    module = module.to("meta")
    assert module.tensor.block(0).values.dtype == torch.float64
    assert module.tensor.block(0).values.device.type == "meta"


def test_to_mixed_container():
    module = Module()
    module.register_buffer("data", [_labels()])
    module.data.append("not metatensor")
    with pytest.raises(ValueError, match="buffers can only contain metatensor"):
        module.to(torch.float64)


def test_state_dict():
    module = Holder()
    state = module.state_dict()
    assert list(state.keys()) == [
        "_mts_helper",
        "linear.weight",
        "linear.bias",
        "_extra_state",
    ] or set(state.keys()) == {
        "_mts_helper",
        "linear.weight",
        "linear.bias",
        "_extra_state",
    }
    extra = state["_extra_state"]
    assert set(extra.keys()) == {"labels", "block", "tensor", "nested"}

    kind, buffer, marker = extra["labels"]
    assert kind == "metatensor.Labels"
    assert isinstance(buffer, bytes)
    assert marker.shape == (0,)
    assert Labels.load_buffer(buffer) == _labels()

    kind, buffer, marker = extra["block"]
    assert kind == "metatensor.TensorBlock"
    assert marker.dtype == torch.float64

    assert extra["tensor"][0] == "metatensor.TensorMap"
    assert extra["nested"]["x"][0][0] == "metatensor.Labels"
    assert extra["nested"]["x"][1][0][0] == "metatensor.TensorMap"
    assert extra["nested"]["empty"] == [[], {}]


def test_state_dict_round_trip():
    module = Holder()
    with torch.no_grad():
        module.linear.weight.fill_(3.0)
    module.register_buffer("extra", _tensor(torch.float32))

    other = Holder()
    other.register_buffer("extra", Labels.single())
    other.load_state_dict(module.state_dict())

    assert other.labels == module.labels
    assert torch.equal(other.block.values, module.block.values)
    assert other.block.values.dtype == torch.float64
    assert torch.equal(
        other.block.gradient("g").values, module.block.gradient("g").values
    )
    assert isinstance(other.tensor.block(0).values, torch.Tensor)
    assert other.extra.block(0).values.dtype == torch.float32
    assert other.nested["x"][0] == _labels()
    assert isinstance(other.nested["x"][1], tuple)
    assert torch.all(other.linear.weight == 3.0)


def test_state_dict_torch_save():
    module = Holder()
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=False)

    other = Holder()
    other.load_state_dict(state)
    assert torch.equal(other.tensor.block(0).values, module.tensor.block(0).values)


def test_state_dict_meta_dtype_device():
    # the dtype/device of a buffer is restored from the marker tensor
    module = Module()
    module.register_buffer("tensor", _tensor(torch.float32))
    state = module.state_dict()

    other = Module()
    other.register_buffer("tensor", _tensor(torch.float64))
    other.load_state_dict(state)
    assert other.tensor.block(0).values.dtype == torch.float32

    kind, buffer, _ = state["_extra_state"]["tensor"]
    state["_extra_state"]["tensor"] = (kind, buffer, torch.empty(0, device="meta"))
    other.load_state_dict(state)
    assert other.tensor.block(0).values.device.type == "meta"


def test_set_extra_state_errors():
    module = Module()
    with pytest.raises(ValueError, match="unknown metatensor class 'metatensor.Foo'"):
        module.set_extra_state({"x": ("metatensor.Foo", b"", torch.empty(0))})

    serialized = module.get_extra_state()
    assert serialized == {}

    labels = Module()
    labels.register_buffer("x", _labels())
    entry = labels.get_extra_state()["x"]
    with pytest.raises(TypeError, match="can not mix metatensor data"):
        module.set_extra_state({"x": [entry, 3]})


def test_non_persistent():
    module = Module()
    module.register_buffer("x", _labels(), persistent=False)
    assert module.state_dict()["_extra_state"] == {}
    module = module.to("meta")
    assert module.x.values.device.type == "meta"


def test_torch_module_features():
    # a Module can hold submodules, and `.to()` goes through them
    outer = Module()
    outer.inner = Holder()
    outer = outer.to(torch.float32)
    assert outer.inner.block.values.dtype == torch.float32
    state = outer.state_dict()
    assert "inner._extra_state" in state
    assert "_extra_state" in state
