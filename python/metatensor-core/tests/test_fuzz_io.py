"""Fuzzing the loaders: corrupted data must either load or raise MetatensorError."""

import io
import zipfile

import numpy as np
import pytest


hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")

import metatensor  # noqa: E402
from metatensor import Labels, MetatensorError, TensorBlock, TensorMap  # noqa: E402
from metatensor.io import _npy  # noqa: E402


SETTINGS = hypothesis.settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)


def _labels(name, n):
    return Labels([name], np.arange(n, dtype=np.int32).reshape(-1, 1))


def _small_block() -> TensorBlock:
    block = TensorBlock(
        np.arange(12, dtype=np.float64).reshape(2, 2, 3),
        Labels(["s", "t"], np.array([[0, 1], [1, 0]], dtype=np.int32)),
        [_labels("c", 2)],
        _labels("p", 3),
    )
    block.add_gradient(
        "g",
        TensorBlock(
            np.ones((1, 2, 3)),
            Labels(["sample"], np.array([[1]], dtype=np.int32)),
            [_labels("c", 2)],
            block.properties,
        ),
    )
    return block


def _small_tensor() -> TensorMap:
    tensor = TensorMap(_labels("key", 2), [_small_block(), _small_block()])
    tensor.set_info("name", "fuzz")
    return tensor


def _members(buffer: bytes):
    with zipfile.ZipFile(io.BytesIO(buffer)) as archive:
        return [(i.filename, archive.read(i)) for i in archive.infolist()]


def _mutate_member(buffer: bytes, index: int, operations) -> bytes:
    """Mutate the content of one member and re-create a valid archive (with
    correct checksums), so that fuzzing reaches the NPY parser and the
    constructors instead of failing on the ZIP layer."""
    members = _members(buffer)
    index = index % len(members)
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w") as archive:
        for i, (name, data) in enumerate(members):
            if i == index:
                data = _mutate(data, operations)
            archive.writestr(name, data)
    return output.getvalue()


TENSOR = bytes(metatensor.io.save_buffer(_small_tensor()))
BLOCK = bytes(metatensor.io.save_buffer(_small_block()))
LABELS = bytes(metatensor.io.save_buffer(_labels("key", 3)))

LOADERS = {
    "tensor": (TENSOR, metatensor.io.load_buffer),
    "block": (BLOCK, metatensor.io.load_block_buffer),
    "labels": (LABELS, metatensor.io.load_labels_buffer),
}


def _mutate(data: bytes, operations) -> bytes:
    data = bytearray(data)
    for kind, position, value in operations:
        if len(data) == 0:
            break
        position = position % len(data)
        if kind == "flip":
            data[position] ^= value or 1
        elif kind == "set":
            data[position] = value
        elif kind == "insert":
            data[position:position] = bytes([value]) * (1 + value % 4)
        elif kind == "delete":
            del data[position : position + 1 + value % 4]
        else:
            del data[position:]
    return bytes(data)


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
        st.integers(min_value=0, max_value=1 << 20),
        st.integers(min_value=0, max_value=255),
    ),
    min_size=1,
    max_size=4,
)


def _check_load(loader, data):
    try:
        loader(data)
    except MetatensorError:
        pass


@pytest.mark.parametrize("kind", ["tensor", "block", "labels"])
def test_fuzz_bytes(kind):
    reference, loader = LOADERS[kind]

    @SETTINGS
    @hypothesis.given(OPERATIONS)
    def check(operations):
        data = _mutate(reference, operations)
        _check_load(loader, data)
        # also try all the other loaders on the same data
        for _, other in LOADERS.values():
            _check_load(other, data)

    check()


@pytest.mark.parametrize("kind", ["tensor", "block"])
def test_fuzz_members(kind):
    reference, loader = LOADERS[kind]

    @SETTINGS
    @hypothesis.given(st.integers(min_value=0, max_value=100), OPERATIONS)
    def check(index, operations):
        _check_load(loader, _mutate_member(reference, index, operations))

    check()


@SETTINGS
@hypothesis.given(st.binary(max_size=300))
def test_fuzz_random_data(data):
    for _, loader in LOADERS.values():
        _check_load(loader, data)
        _check_load(loader, b"PK\x03\x04" + data)
        _check_load(loader, _npy.MAGIC + data)


HEADER_TEXT = st.text(
    alphabet=st.sampled_from(list("{}()[],:'\" \n<>|=fiucb0123456789TrueFalsdshpo_")),
    max_size=120,
)


@SETTINGS
@hypothesis.given(HEADER_TEXT)
def test_fuzz_npy_headers(text):
    header = _npy._finish_header(text)
    for data in [header, header + b"\x00" * 64]:
        for descr in ["labels", "data"]:
            _check_load(
                metatensor.io.load_labels_buffer if descr == "labels" else _load_values,
                data,
            )


def _load_values(data):
    from metatensor.io import _load

    def load():
        parsed = _load.parse_npy(_load.BufferSource(data), 0, len(data), None)
        return _load.read_data(*parsed)

    _load._convert_errors(load)


def test_fuzz_large_file_reader(tmp_path):
    """The reader used for large files (member by member) behaves the same."""
    from metatensor.io import _load

    counter = [0]

    @SETTINGS
    @hypothesis.given(st.integers(min_value=0, max_value=100), OPERATIONS)
    def check(index, operations):
        data = _mutate_member(TENSOR, index, operations)
        if index % 2:
            data = _mutate(data, operations)
        if len(data) == 0:
            return
        # a new file every time, since the previous one might still be mapped
        counter[0] += 1
        path = tmp_path / f"fuzz-{counter[0]}.mts"
        path.write_bytes(data)
        try:
            expected = metatensor.io.load_buffer(data)
        except MetatensorError as e:
            expected = e.message.replace("from buffer", "from ''")

        previous = _load._SMALL_FILE
        _load._SMALL_FILE = 0
        try:
            loaded = metatensor.load(path)
        except MetatensorError as e:
            loaded = e.message.replace(f"from '{path}'", "from ''")
        finally:
            _load._SMALL_FILE = previous

        # no checksums with mmap, only check that nothing else than
        # MetatensorError escapes
        _check_load(lambda p: metatensor.load(p, mmap=True), path)

        # the errors might differ (checksums are verified at different times),
        # but both readers must agree on what is valid
        assert isinstance(loaded, str) == isinstance(expected, str), (loaded, expected)

    check()
