import copy
import pickle

import pytest

from metatensor_learn.data._namedtuple import namedtuple


def test_identifier_fields():
    Point = namedtuple("Point", ["x", "y"])
    point = Point(1, y=2)

    assert isinstance(point, tuple)
    assert point == (1, 2)
    assert point.x == 1
    assert point.y == 2
    assert point[0] == 1
    assert point[-1] == 2
    assert point[:1] == (1,)
    assert point["x"] == 1
    assert point["y"] == 2
    assert repr(point) == "Point(x=1, y=2)"
    assert Point._fields == ("x", "y")
    assert point._asdict() == {"x": 1, "y": 2}
    assert point._replace(y=5) == Point(1, 5)
    assert Point._make([3, 4]) == (3, 4)
    assert type(Point._make([3, 4])) is Point
    assert Point.__module__ == __name__
    assert Point.__name__ == "Point"
    x, y = point
    assert (x, y) == (1, 2)


def test_non_identifier_fields():
    Sample = namedtuple("Sample", ["with space", "class", "x"])
    sample = Sample(1, 3, x=5)

    assert repr(sample) == "Sample('with space'=1, 'class'=3, x=5)"
    assert sample["with space"] == 1
    assert sample["class"] == 3
    assert sample[1] == 3
    assert sample.x == 5
    assert sample._asdict() == {"with space": 1, "class": 3, "x": 5}

    # non-identifiers are available as `_i` keyword arguments
    assert Sample(_0=1, _1=2, x=3) == (1, 2, 3)
    assert Sample(1, **{"class": 2}, x=3) == (1, 2, 3)
    assert sample._replace(**{"with space": 10}) == (10, 3, 5)
    assert sample._replace(_1=10) == (1, 10, 5)

    message = "'Sample' object has no attribute 'with space'"
    with pytest.raises(AttributeError, match=message):
        getattr(sample, "with space")
    with pytest.raises(KeyError, match="missing"):
        sample["missing"]


def test_constructor_errors():
    Point = namedtuple("Point", ["x", "y"])
    with pytest.raises(TypeError, match="takes 2 arguments but 3 were given"):
        Point(1, 2, 3)
    with pytest.raises(TypeError, match=r"missing arguments: \['y'\]"):
        Point(1)
    with pytest.raises(TypeError, match="multiple values for argument 'x'"):
        Point(1, x=2)
    with pytest.raises(TypeError, match="unexpected argument 'z'"):
        Point(1, z=2)
    with pytest.raises(TypeError, match="expected 2 arguments, got 1"):
        Point._make([1])
    with pytest.raises(ValueError, match="unexpected field name: 'z'"):
        Point(1, 2)._replace(z=3)


def test_invalid_names():
    with pytest.raises(ValueError, match=r"must be unique, got duplicates \['a'\]"):
        namedtuple("Sample", ["a", "b", "a"])
    with pytest.raises(ValueError, match="can not start with an underscore"):
        namedtuple("Sample", ["_a"])
    with pytest.raises(TypeError, match="field names must be strings"):
        namedtuple("Sample", [1])
    with pytest.raises(TypeError, match="must be a list of strings, not a string"):
        namedtuple("Sample", "a b")
    with pytest.raises(ValueError, match="type name must be a valid identifier"):
        namedtuple("not valid", ["a"])


def test_cached_classes():
    first = namedtuple("Sample", ["a", "with space"])
    assert namedtuple("Sample", ["a", "with space"]) is first
    assert namedtuple("Sample", ["a", "b"]) is not first
    assert namedtuple("Other", ["a", "with space"]) is not first


def test_pickle_and_copy():
    Sample = namedtuple("Sample", ["x", "with space"])
    sample = Sample([1, 2], "b")

    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        loaded = pickle.loads(pickle.dumps(sample, protocol=protocol))
        assert type(loaded) is Sample
        assert loaded == sample

    copied = copy.deepcopy(sample)
    assert type(copied) is Sample
    assert copied == sample
    assert copied.x is not sample.x

    assert sample.__getnewargs__() == ([1, 2], "b")


def test_empty():
    Empty = namedtuple("Empty", [])
    assert Empty() == ()
    assert repr(Empty()) == "Empty()"
