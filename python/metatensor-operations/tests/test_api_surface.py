"""Every public function of the reference ``metatensor.operations`` exists here,
with the same argument names and defaults, and is re-exported as
``metatensor.<name>``.

``api-surface-operations.json`` was generated from the list of public names of
the reference package (metatensor-operations 0.5.0).
"""

import inspect
import json
import pathlib

import pytest

import metatensor
import metatensor.operations
import metatensor_operations


SURFACE = json.loads(
    (pathlib.Path(__file__).parent / "api-surface-operations.json").read_text()
)


@pytest.mark.parametrize("name", sorted(SURFACE["functions"]))
def test_function(name):
    function = getattr(metatensor_operations, name)
    assert getattr(metatensor.operations, name) is function
    assert getattr(metatensor, name) is function

    parameters = list(inspect.signature(function).parameters.values())
    expected = SURFACE["functions"][name]
    assert [p.name for p in parameters] == [e[0] for e in expected]
    for parameter, (_, default) in zip(parameters, expected):
        if default is None:
            assert parameter.default is inspect.Parameter.empty, parameter.name
        else:
            assert repr(parameter.default) == default, parameter.name


@pytest.mark.parametrize("name", SURFACE["classes"])
def test_classes(name):
    assert inspect.isclass(getattr(metatensor_operations, name))
    assert getattr(metatensor, name) is getattr(metatensor_operations, name)


def test_module_alias():
    assert metatensor.operations is metatensor_operations
