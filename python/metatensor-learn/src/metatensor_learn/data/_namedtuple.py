"""Named tuples whose field names can be any string.

:py:func:`collections.namedtuple` only accepts field names that are valid Python
identifiers. Datasets built with :py:meth:`Dataset.from_dict` can have fields
such as ``"with space"`` or ``"class"``, so the samples and batches use the
:py:func:`namedtuple` defined here instead:

- fields named with an identifier (that is not a keyword) are available as
  attributes (``sample.energy``) and as keyword arguments of the constructor;
- every field is available by name with ``sample["with space"]``, and by
  position as for any tuple (``sample[0]``);
- other names are given to the constructor by position, or as the keyword
  argument ``_i`` (``i`` being the position of the field), and are shown
  quoted in the representation: ``Sample(x=1, 'with space'=2)``.

Classes are cached by ``(typename, field names, module)``: creating two
datasets with the same fields gives samples of the same class. Instances are
picklable even though the classes are created at runtime (the class is
re-created from its name and fields when unpickling), so batches can be sent
between the worker processes of a :py:class:`torch.utils.data.DataLoader`.
"""

import keyword
import sys
import threading
from typing import Any, Dict, Iterable, List, Optional, Tuple


_CACHE: Dict[Tuple[str, Tuple[str, ...], str], type] = {}
_CACHE_LOCK = threading.Lock()


def _is_attribute_name(name: str) -> bool:
    """Can ``name`` be used as an attribute / keyword argument name?"""
    return name.isidentifier() and not keyword.iskeyword(name)


def _caller_module(depth: int) -> str:
    try:
        return sys._getframe(depth).f_globals.get("__name__", "__main__")
    except (AttributeError, ValueError):  # pragma: no cover - no frame support
        return "__main__"


def namedtuple(
    typename: str, field_names: Iterable[str], *, module: Optional[str] = None
) -> type:
    """Create a tuple subclass with named fields, where the names can be any
    string (see the module documentation).

    :param typename: name of the new class
    :param field_names: names of the fields, in order. They must be unique
        strings; names starting with an underscore are reserved.
    :param module: the ``__module__`` of the new class, defaults to the module
        of the caller
    :return: the new class (or the same class as an earlier call with the same
        arguments)
    """
    if not isinstance(typename, str) or not typename.isidentifier():
        raise ValueError(f"type name must be a valid identifier, got {typename!r}")

    if isinstance(field_names, str):
        raise TypeError("`field_names` must be a list of strings, not a string")
    fields = tuple(field_names)
    for name in fields:
        if not isinstance(name, str):
            raise TypeError(f"field names must be strings, got {type(name)}")
        if name.startswith("_"):
            raise ValueError(f"field names can not start with an underscore: {name!r}")
    if len(set(fields)) != len(fields):
        duplicates = sorted({name for name in fields if fields.count(name) > 1})
        raise ValueError(f"field names must be unique, got duplicates {duplicates}")

    if module is None:
        module = _caller_module(2)

    key = (typename, fields, module)
    cls = _CACHE.get(key)
    if cls is None:
        with _CACHE_LOCK:
            cls = _CACHE.get(key)
            if cls is None:
                cls = _create(typename, fields, module)
                _CACHE[key] = cls
    return cls


def _rebuild(typename: str, fields: Tuple[str, ...], module: str, values: tuple):
    """Unpickle a named tuple, re-creating its class if needed."""
    return namedtuple(typename, fields, module=module)._make(values)


def _create(typename: str, fields: Tuple[str, ...], module: str) -> type:
    n_fields = len(fields)
    positions = {name: i for i, name in enumerate(fields)}
    # keyword arguments of the constructor and of `_replace`: the field names
    # and their positional aliases `_i`
    keywords = dict(positions)
    for i in range(n_fields):
        keywords[f"_{i}"] = i

    def __new__(cls, *args, **kwargs):
        if not kwargs and len(args) == n_fields:
            return tuple.__new__(cls, args)

        if len(args) > n_fields:
            raise TypeError(
                f"{typename}() takes {n_fields} arguments but {len(args)} were given"
            )
        values: List[Any] = list(args) + [_MISSING] * (n_fields - len(args))
        for name, value in kwargs.items():
            position = keywords.get(name)
            if position is None:
                raise TypeError(f"{typename}() got an unexpected argument {name!r}")
            if values[position] is not _MISSING:
                raise TypeError(
                    f"{typename}() got multiple values for argument "
                    f"{fields[position]!r}"
                )
            values[position] = value
        missing = [fields[i] for i, v in enumerate(values) if v is _MISSING]
        if missing:
            raise TypeError(f"{typename}() missing arguments: {missing}")
        return tuple.__new__(cls, values)

    @classmethod
    def _make(cls, iterable):
        values = tuple(iterable)
        if len(values) != n_fields:
            raise TypeError(f"expected {n_fields} arguments, got {len(values)}")
        return tuple.__new__(cls, values)

    def _replace(self, **kwargs):
        values = list(self)
        for name, value in kwargs.items():
            position = keywords.get(name)
            if position is None:
                raise ValueError(f"got an unexpected field name: {name!r}")
            values[position] = value
        return tuple.__new__(type(self), values)

    def _asdict(self) -> Dict[str, Any]:
        return dict(zip(fields, self))

    def __getitem__(self, key):
        if isinstance(key, str):
            position = positions.get(key)
            if position is None:
                raise KeyError(key)
            return tuple.__getitem__(self, position)
        return tuple.__getitem__(self, key)

    def __repr__(self) -> str:
        parts = []
        for name, value in zip(fields, self):
            if _is_attribute_name(name):
                parts.append(f"{name}={value!r}")
            else:
                parts.append(f"{name!r}={value!r}")
        return f"{typename}({', '.join(parts)})"

    def __getnewargs__(self):
        return tuple(self)

    def __reduce__(self):
        return (_rebuild, (typename, fields, module, tuple(self)))

    def __getattr__(self, name):
        # only called when the normal lookup fails: point to `t["name"]`
        raise AttributeError(
            f"'{typename}' object has no attribute {name!r}, use "
            f"`sample[{name!r}]` to access fields by name"
        )

    namespace: Dict[str, Any] = {
        "__doc__": f"{typename}({', '.join(repr(f) for f in fields)})",
        "__slots__": (),
        "__module__": module,
        "_fields": fields,
        "_field_defaults": {},
        "__match_args__": tuple(f for f in fields if _is_attribute_name(f)),
        "__new__": __new__,
        "_make": _make,
        "_replace": _replace,
        "_asdict": _asdict,
        "__getitem__": __getitem__,
        "__repr__": __repr__,
        "__getnewargs__": __getnewargs__,
        "__reduce__": __reduce__,
        "__getattr__": __getattr__,
    }
    for i, name in enumerate(fields):
        if _is_attribute_name(name):
            namespace[name] = property(
                _itemgetter(i), doc=f"Alias for field number {i}"
            )

    cls = type(typename, (tuple,), namespace)
    cls.__qualname__ = typename
    return cls


def _itemgetter(position: int):
    def getter(self):
        return tuple.__getitem__(self, position)

    return getter


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()
