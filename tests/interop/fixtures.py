"""Fixtures for the interoperability check between two metatensor implementations.

Everything here uses only the public API shared by this repository's
``metatensor-core`` and the reference ``metatensor-core==0.2.6``, and is imported by
``interop.py`` under either of them. Two parts:

* :func:`build_fixtures` creates the objects (Labels, TensorBlock, TensorMap) that the
  writing implementation saves: many dtypes, gradients, gradients of gradients,
  zero-sample and zero-property blocks, info, a wide Labels file (NPY header version 2),
  Fortran-ordered and strided input, ...
* :func:`describe` turns a loaded object into a JSON-able structure plus a dictionary
  of plain numpy arrays, written next to each fixture so that the other
  implementation can check what it loads without trusting its own reader.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np


DTYPES = [
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "complex64",
    "complex128",
]

# file in tests/data -> kind of object it contains
DATA_FILES = {
    "keys.mts": "labels",
    "block.mts": "block",
    "data.mts": "tensor",
    "qm7-power-spectrum.mts": "tensor",
    "qm7-spherical-expansion.mts": "tensor",
    "radial-spectrum.mts": "tensor",
    "spherical-expansion.mts": "tensor",
}


class Fixture:
    """One object to save, and how to save and check it.

    :param kind: ``"labels"``, ``"block"`` or ``"tensor"``
    :param data: the object to save
    :param use_numpy: save with ``use_numpy=True`` (the bytes then depend on the
        numpy version and on the time, so they are not compared across writers)
    :param resave_as: name of the fixture whose file must be byte-identical to a
        native re-save of this one (defaults to this fixture)
    :param reference_can_load: ``False`` for files that metatensor-core 0.2.6 can not
        read (zero-name Labels, ``|`` NPY descriptors written by numpy)
    """

    def __init__(
        self,
        kind: str,
        data: Any,
        use_numpy: bool = False,
        resave_as: str = "",
        reference_can_load: bool = True,
    ):
        self.kind = kind
        self.data = data
        self.use_numpy = use_numpy
        self.resave_as = resave_as
        self.reference_can_load = reference_can_load


def random_values(rng: np.random.Generator, shape: Tuple[int, ...], dtype: str):
    """Random values of any dtype, using the full range of integer types."""
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.random(shape) > 0.5
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
    if dt.kind == "f":
        return (100 * rng.standard_normal(shape)).astype(dt)
    if dt.kind == "c":
        real = rng.standard_normal(shape)
        return (real + 1j * rng.standard_normal(shape)).astype(dt)
    raise ValueError(f"unsupported dtype {dtype}")


def unique_rows(rng: np.random.Generator, count: int, ncols: int, low: int, high: int):
    """``count`` distinct int32 rows in random order."""
    rows = np.unique(rng.integers(low, high, size=(3 * count + 10, ncols)), axis=0)
    rows = rows[rng.permutation(len(rows))[:count]]
    assert len(rows) == count
    return rows.astype(np.int32)


def labels(mts, names, values) -> Any:
    return mts.Labels(names, np.asarray(values, dtype=np.int32).reshape(-1, len(names)))


def make_block(
    mts,
    rng: np.random.Generator,
    n_samples: int,
    components: List[int],
    n_properties: int,
    dtype: str = "float64",
    gradients: Tuple[str, ...] = ("positions",),
    nested: bool = False,
    system: int = 0,
) -> Any:
    """A block with optional ``positions`` (one extra ``xyz`` component), ``strain``
    (two extra components) and, when ``nested``, a ``positions`` gradient of the
    ``positions`` gradient."""
    samples = labels(
        mts,
        ["system", "atom"],
        [[system + i // 4, i % 4] for i in range(n_samples)],
    )
    comps = [
        labels(mts, [f"c_{i}"], np.arange(size) - size // 2)
        for i, size in enumerate(components)
    ]
    properties = labels(mts, ["n"], np.arange(n_properties) * 3 + 1)
    shape = (n_samples, *components, n_properties)
    block = mts.TensorBlock(
        random_values(rng, shape, dtype), samples, comps, properties
    )

    xyz = labels(mts, ["xyz"], [0, 1, 2])
    for parameter in gradients:
        if parameter == "positions":
            extra = [xyz]
            rows = [[s, system + s // 4, a] for s in range(n_samples) for a in (0, 2)]
            # unsorted rows, and some samples without gradients
            rows = [row for row in rows if row[0] % 3 != 1][::-1]
            grad_samples = labels(mts, ["sample", "system", "atom"], rows)
        elif parameter == "strain":
            extra = [
                labels(mts, ["xyz_1"], [0, 1, 2]),
                labels(mts, ["xyz_2"], [0, 1, 2]),
            ]
            grad_samples = labels(mts, ["sample"], np.arange(n_samples))
        else:
            raise ValueError(parameter)
        grad_comps = [*extra, *comps]
        grad_shape = (len(grad_samples), *[len(c) for c in grad_comps], n_properties)
        gradient = mts.TensorBlock(
            random_values(rng, grad_shape, dtype), grad_samples, grad_comps, properties
        )
        if nested and parameter == "positions":
            rows = [[g, 0, g % 2] for g in range(0, len(grad_samples), 2)]
            inner_samples = labels(mts, ["sample", "system", "atom"], rows)
            inner_comps = [labels(mts, ["xyz_2"], [0, 1, 2]), *grad_comps]
            inner_shape = (len(rows), *[len(c) for c in inner_comps], n_properties)
            inner = mts.TensorBlock(
                random_values(rng, inner_shape, dtype),
                inner_samples,
                inner_comps,
                properties,
            )
            gradient.add_gradient("positions", inner)
        block.add_gradient(parameter, gradient)
    return block


def make_tensor(mts, rng, dtype="float64", gradients=("positions",), nested=False):
    keys = labels(mts, ["o3_lambda", "center_type"], [[0, 1], [1, 1], [2, 8]])
    blocks = [
        make_block(mts, rng, 5, [2 * lam + 1], 3, dtype, gradients, nested, system=i)
        for i, (lam, _) in enumerate([[0, 1], [1, 1], [2, 8]])
    ]
    return mts.TensorMap(keys, blocks)


def build_fixtures(mts) -> Dict[str, Fixture]:
    """All the fixtures written by ``interop.py write``, built with the ``mts``
    module (``metatensor``) of the writing implementation."""
    rng = np.random.default_rng(20260101)
    fixtures: Dict[str, Fixture] = {}

    # ---- Labels files
    fixtures["labels_3d"] = Fixture(
        "labels", mts.Labels(["a", "b", "c"], unique_rows(rng, 100, 3, -50, 50))
    )
    extreme = np.array([[-(2**31), 2**31 - 1], [2**31 - 1, -(2**31)], [0, -1]])
    fixtures["labels_extreme_values"] = Fixture(
        "labels", mts.Labels(["min", "max"], extreme.astype(np.int32))
    )
    fixtures["labels_no_rows"] = Fixture(
        "labels", mts.Labels(["a", "b"], np.empty((0, 2), dtype=np.int32))
    )
    fixtures["labels_single"] = Fixture("labels", mts.Labels.single())
    # header over 64 KiB: written with NPY format version 2
    wide = [f"dimension_{i}" for i in range(3000)]
    fixtures["labels_wide"] = Fixture(
        "labels", mts.Labels(wide, unique_rows(rng, 2, len(wide), -5, 5))
    )
    fixtures["labels_zero_names"] = Fixture(
        "labels",
        mts.Labels([], np.empty((0, 0), dtype=np.int32)),
        reference_can_load=False,
    )

    # ---- block files
    fixtures["block_gradients"] = Fixture(
        "block", make_block(mts, rng, 7, [3], 4, gradients=("positions", "strain"))
    )
    fixtures["block_no_components"] = Fixture("block", make_block(mts, rng, 6, [], 5))
    fixtures["block_nested_gradients"] = Fixture(
        "block",
        make_block(
            mts, rng, 6, [3, 2], 2, gradients=("strain", "positions"), nested=True
        ),
    )

    # ---- TensorMap files
    tensor = make_tensor(mts, rng, gradients=("strain", "positions"))
    tensor.set_info("creator", "metatensor interop check")
    tensor.set_info("unicode", 'λ = 2, é, 😀, "quoted" \\ backslash\nnewline')
    # no empty string: the reference turns `set_info(key, "")` into `None`
    fixtures["tensor_gradients_info"] = Fixture("tensor", tensor)
    fixtures["tensor_gradients_info_numpy_writer"] = Fixture(
        "tensor", tensor, use_numpy=True, resave_as="tensor_gradients_info"
    )
    fixtures["tensor_nested_gradients"] = Fixture(
        "tensor", make_tensor(mts, rng, gradients=("positions", "strain"), nested=True)
    )
    for dtype in DTYPES:
        fixtures[f"tensor_{dtype}"] = Fixture(
            "tensor", make_tensor(mts, rng, dtype=dtype, gradients=("positions",))
        )
    # numpy writes bool/int8/uint8 with a `|` descriptor, which only we can read
    for dtype in ["bool", "int8", "uint8"]:
        fixtures[f"tensor_{dtype}_numpy_writer"] = Fixture(
            "tensor",
            fixtures[f"tensor_{dtype}"].data,
            use_numpy=True,
            resave_as=f"tensor_{dtype}",
            reference_can_load=False,
        )

    special = np.array(
        [np.nan, np.inf, -np.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308]
    )
    block = mts.TensorBlock(
        special.reshape(7, 1),
        labels(mts, ["s"], np.arange(7)),
        [],
        labels(mts, ["p"], [0]),
    )
    fixtures["tensor_special_floats"] = Fixture(
        "tensor", mts.TensorMap(labels(mts, ["k"], [0]), [block])
    )

    # zero samples, zero properties, and an empty map
    blocks = []
    for n_samples, n_properties in [(0, 3), (4, 0), (5, 2)]:
        blocks.append(make_block(mts, rng, n_samples, [3], n_properties))
    fixtures["tensor_zero_samples_properties"] = Fixture(
        "tensor", mts.TensorMap(labels(mts, ["k"], [[0], [1], [2]]), blocks)
    )
    fixtures["tensor_no_blocks"] = Fixture(
        "tensor", mts.TensorMap(mts.Labels.empty(["key"]), [])
    )
    fixtures["tensor_zero_name_keys"] = Fixture(
        "tensor",
        mts.TensorMap(mts.Labels([], np.empty((0, 0), dtype=np.int32)), []),
        reference_can_load=False,
    )

    # Fortran-ordered and strided values are written in logical C order
    base = random_values(rng, (8, 3, 6), "float64")
    fortran = mts.TensorBlock(
        np.asfortranarray(base),
        labels(mts, ["s"], np.arange(8)),
        [labels(mts, ["c"], [0, 1, 2])],
        labels(mts, ["p"], np.arange(6)),
    )
    strided = mts.TensorBlock(
        random_values(rng, (16, 3, 12), "float64")[::2, :, ::2],
        labels(mts, ["s"], np.arange(8)),
        [labels(mts, ["c"], [0, 1, 2])],
        labels(mts, ["p"], np.arange(6)),
    )
    fixtures["tensor_fortran_strided"] = Fixture(
        "tensor", mts.TensorMap(labels(mts, ["k"], [[0], [1]]), [fortran, strided])
    )
    return fixtures


# ----------------------------------------------------------------------------------
# description of loaded objects
# ----------------------------------------------------------------------------------


def describe(kind: str, data: Any) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """The structure (names, info, gradient parameters) of ``data`` and all its
    arrays (as numpy), keyed by their path in the ``.mts`` archive."""
    arrays: Dict[str, np.ndarray] = {}
    if kind == "labels":
        arrays["values"] = np.asarray(data.values)
        return {"names": list(data.names)}, arrays
    if kind == "block":
        return _describe_block(data, "", arrays), arrays
    if kind == "tensor":
        arrays["keys"] = np.asarray(data.keys.values)
        structure = {
            "keys": list(data.keys.names),
            "info": dict(data.info()),
            "blocks": [
                _describe_block(data.block_by_id(i), f"blocks/{i}/", arrays)
                for i in range(len(data.keys))
            ],
        }
        return structure, arrays
    raise ValueError(f"unknown kind {kind}")


def _describe_block(block, prefix: str, arrays: Dict[str, np.ndarray]) -> Dict:
    arrays[prefix + "values"] = np.asarray(block.values)
    arrays[prefix + "samples"] = np.asarray(block.samples.values)
    for i, component in enumerate(block.components):
        arrays[prefix + f"components/{i}"] = np.asarray(component.values)
    arrays[prefix + "properties"] = np.asarray(block.properties.values)
    gradients = {}
    for parameter in sorted(block.gradients_list()):
        gradients[parameter] = _describe_block(
            block.gradient(parameter), f"{prefix}gradients/{parameter}/", arrays
        )
    return {
        "samples": list(block.samples.names),
        "components": [list(c.names) for c in block.components],
        "properties": list(block.properties.names),
        "gradients": gradients,
    }


def compare_arrays(
    expected: Dict[str, np.ndarray], actual: Dict[str, np.ndarray]
) -> List[str]:
    """Differences between two sets of arrays: names, dtypes, shapes and exact bytes
    (so NaN payloads and the sign of zeros count)."""
    problems = []
    for name in sorted(set(expected) - set(actual)):
        problems.append(f"missing array {name}")
    for name in sorted(set(actual) - set(expected)):
        problems.append(f"unexpected array {name}")
    for name in sorted(set(expected) & set(actual)):
        a, b = expected[name], actual[name]
        if a.dtype.newbyteorder("=") != b.dtype.newbyteorder("="):
            problems.append(f"{name}: dtype {b.dtype}, expected {a.dtype}")
        elif a.shape != b.shape:
            problems.append(f"{name}: shape {b.shape}, expected {a.shape}")
        else:
            a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("="))
            b = np.ascontiguousarray(b, dtype=b.dtype.newbyteorder("="))
            if a.tobytes() != b.tobytes():
                where = np.flatnonzero(
                    np.frombuffer(a.tobytes(), np.uint8)
                    != np.frombuffer(b.tobytes(), np.uint8)
                )
                problems.append(
                    f"{name}: values differ ({len(where)} bytes, first at byte "
                    f"{where[0]})"
                )
    return problems


def check_loaded_arrays(kind: str, data: Any) -> List[str]:
    """Loaded values must be writable, C-contiguous and native-endian numpy arrays,
    and Labels values int32 numpy arrays."""
    problems = []
    _, arrays = describe(kind, data)
    for name, array in arrays.items():
        is_labels = not name.endswith("values") or kind == "labels"
        if is_labels:
            if array.dtype != np.int32:
                problems.append(f"{name}: Labels values have dtype {array.dtype}")
            continue
        if not array.flags.c_contiguous:
            problems.append(f"{name}: loaded values are not C-contiguous")
        if not array.flags.writeable:
            problems.append(f"{name}: loaded values are not writable")
        if not array.dtype.isnative:
            problems.append(f"{name}: loaded values are not native-endian")
    return problems
