"""Every public name and signature of the reference ``metatensor`` and
``metatensor.io`` modules exists here, with the same argument names.

``api-surface-core.json`` was generated from the list of public names of the
reference packages (metatensor-core 0.2.6).
"""

import inspect
import json
import pathlib

import pytest

import metatensor
import metatensor.io


SURFACE = json.loads(
    (pathlib.Path(__file__).parents[1] / "data" / "api-surface-core.json").read_text()
)
MODULES = {"metatensor": metatensor, "metatensor.io": metatensor.io}

# the reference callbacks take raw C pointers; ours take numpy arrays
DIFFERENT_SIGNATURE = {"create_numpy_array", "create_torch_array"}


def _parameters(function):
    return [
        p.name
        for p in inspect.signature(function).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _cases():
    for module_name, content in SURFACE.items():
        for name, params in content["functions"].items():
            yield pytest.param(
                module_name, None, name, params, "", id=f"{module_name}.{name}"
            )
        for cls, description in content["classes"].items():
            yield pytest.param(
                module_name,
                cls,
                "__init__",
                description["__init__"],
                "",
                id=f"{module_name}.{cls}.__init__",
            )
            for member, info in description["members"].items():
                yield pytest.param(
                    module_name,
                    cls,
                    member,
                    info["params"],
                    info["kind"],
                    id=f"{module_name}.{cls}.{member}",
                )


@pytest.mark.parametrize("module_name, cls, name, params, kind", list(_cases()))
def test_public_api(module_name, cls, name, params, kind):
    owner = MODULES[module_name]
    if cls is not None:
        owner = getattr(owner, cls)
    assert hasattr(owner, name), f"{module_name}.{cls or ''} is missing {name}"

    if kind == "prop":
        assert isinstance(inspect.getattr_static(owner, name), property)
        return
    if kind == "static":
        assert isinstance(inspect.getattr_static(owner, name), staticmethod)

    if params is None or name in DIFFERENT_SIGNATURE:
        return

    expected = [p for p in params if p not in ("*", "**kwargs", "*args")]
    if cls is not None and name == "__init__":
        expected = ["self", *expected]
    actual = _parameters(getattr(owner, name))
    assert actual[: len(expected)] == expected, f"{name}: {actual} != {expected}"


@pytest.mark.parametrize("name", ["save", "load", "load_block", "load_labels"])
def test_top_level_io(name):
    assert getattr(metatensor, name) is getattr(metatensor.io, name)


def test_io_save():
    assert _parameters(metatensor.io.save)[:3] == ["file", "data", "use_numpy"]
    assert _parameters(metatensor.io.save_buffer)[:2] == ["data", "use_numpy"]
