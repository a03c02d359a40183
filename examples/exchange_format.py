"""Using metatensor as an exchange format.

This script is the main example of the project. It

1. loads a ``.mts`` file written by the reference implementation of metatensor
   (a SOAP spherical expansion for ten molecules of the QM7 data set, with
   gradients with respect to positions and strain);
2. inspects it: keys, blocks, samples, components, properties and gradients;
3. selects some blocks and transforms the map (``keys_to_properties``,
   ``keys_to_samples``, ``components_to_properties``);
4. saves the result, loads it back and checks that nothing changed, comparing
   every array with numpy;
5. loads the saved file again with memory-mapping, without reading the data;
6. prints how long each step took.

Run it with

.. code-block:: bash

    python examples/exchange_format.py --output <directory>

Only ``numpy`` and ``metatensor-core`` are needed.
"""

import argparse
import contextlib
import mmap
import pathlib
import time
from typing import Dict, Iterator, List, Optional

import numpy as np

import metatensor
from metatensor import Labels, TensorBlock, TensorMap


DATA_DIR = pathlib.Path(__file__).parent.parent / "tests" / "data"
INPUT = DATA_DIR / "qm7-spherical-expansion.mts"

# wall-clock time of each step, in seconds, printed at the end
TIMINGS: Dict[str, float] = {}


@contextlib.contextmanager
def timed(step: str) -> Iterator[None]:
    """Measure the wall-clock time taken by the code inside a ``with`` block."""
    start = time.perf_counter()
    yield
    TIMINGS[step] = time.perf_counter() - start


def title(text: str) -> None:
    print()
    print(text)
    print("=" * len(text))


# ---------------------------------------------------------------------------- #
# Checking that two maps are identical, with numpy only                        #
# ---------------------------------------------------------------------------- #
#
# ``tensor_1 == tensor_2`` delegates to the ``metatensor-operations`` package.
# Here we only rely on the core package: Labels can be compared with ``==``,
# and we compare the arrays of each block with numpy.


def check_same_block(block_1: TensorBlock, block_2: TensorBlock, where: str) -> None:
    """Raise an ``AssertionError`` if the two blocks differ in metadata, data or
    gradients."""
    assert block_1.samples == block_2.samples, f"{where}: different samples"
    assert len(block_1.components) == len(block_2.components), where
    for component_1, component_2 in zip(block_1.components, block_2.components):
        assert component_1 == component_2, f"{where}: different components"
    assert block_1.properties == block_2.properties, f"{where}: different properties"

    values_1 = np.asarray(block_1.values)
    values_2 = np.asarray(block_2.values)
    assert values_1.dtype == values_2.dtype, f"{where}: different dtypes"
    assert np.array_equal(values_1, values_2), f"{where}: different values"

    # gradients can be listed in another order, but must be the same set
    parameters = sorted(block_1.gradients_list())
    assert parameters == sorted(block_2.gradients_list()), f"{where}: gradients"
    for parameter in parameters:
        check_same_block(
            block_1.gradient(parameter),
            block_2.gradient(parameter),
            f"{where}, gradient with respect to '{parameter}'",
        )


def check_same_tensor(tensor_1: TensorMap, tensor_2: TensorMap) -> None:
    """Raise an ``AssertionError`` if the two maps differ in keys, blocks or info."""
    assert tensor_1.keys == tensor_2.keys, "different keys"
    assert tensor_1.info() == tensor_2.info(), "different info"
    for i, key in enumerate(tensor_1.keys):
        check_same_block(
            tensor_1.block_by_id(i), tensor_2.block_by_id(i), f"block {key.print()}"
        )


def is_memory_mapped(array: np.ndarray) -> bool:
    """Check whether a numpy array is a view inside a memory-mapped file."""
    base = array
    while base is not None:
        if isinstance(base, memoryview):
            base = base.obj
        if isinstance(base, mmap.mmap):
            return True
        base = getattr(base, "base", None)
    return False


# ---------------------------------------------------------------------------- #
# Inspection                                                                   #
# ---------------------------------------------------------------------------- #


def inspect(tensor: TensorMap) -> None:
    """Print a short description of a map and of one of its blocks."""
    # `print(tensor)` shows the keys and the shape of (some of) the blocks
    print(tensor)
    print()
    print("number of blocks:", len(tensor))
    print("key names:       ", tensor.keys.names)
    print("sample names:    ", tensor.sample_names)
    print("component names: ", tensor.component_names)
    print("property names:  ", tensor.property_names)

    # the keys are a `Labels`: a list of names and a 2-D int32 array of values
    for name in tensor.keys.names:
        print(f"  values of '{name}' in the keys:", np.unique(tensor.keys[name]))


def describe_block(block: TensorBlock) -> None:
    """Print the metadata, data and gradients of one block."""
    print(block)
    print()
    print("values:", type(block.values).__name__, block.values.dtype, block.shape)
    print("first samples:", block.samples.values[:3].tolist())
    print("o3_mu values:", block.components[0].values[:, 0].tolist())
    print("number of radial channels:", len(block.properties))

    for parameter, gradient in block.gradients():
        # gradient samples start with "sample", the row of the values this
        # gradient belongs to; extra gradient components come first
        component_names = [c.names[0] for c in gradient.components]
        print(
            f"gradient with respect to '{parameter}': shape {gradient.shape}, "
            f"samples {gradient.samples.names}, components {component_names}"
        )


# ---------------------------------------------------------------------------- #
# Selecting blocks                                                             #
# ---------------------------------------------------------------------------- #


def select_blocks(tensor: TensorMap, selection: Labels) -> TensorMap:
    """Build a new map with the blocks whose keys match ``selection``.

    ``selection`` may use only some of the key names: every key whose values
    for these names appear in ``selection`` is kept.
    """
    # `Labels.select` gives the positions of the matching entries
    indices = tensor.keys.select(selection)
    keys = Labels(tensor.keys.names, tensor.keys.values[indices])
    # blocks taken from a map are views inside it. A new map could share them,
    # but copies give it its own arrays (the metadata Labels are still shared),
    # and also work with the reference implementation, which requires blocks
    # that are not views.
    blocks = [tensor.block_by_id(int(i)).copy() for i in indices]
    return TensorMap(keys, blocks)


# ---------------------------------------------------------------------------- #
# The main job                                                                 #
# ---------------------------------------------------------------------------- #


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        type=pathlib.Path,
        required=True,
        help="directory where to write the .mts files (created if needed)",
    )
    args = parser.parse_args(argv)
    output: pathlib.Path = args.output
    output.mkdir(parents=True, exist_ok=True)

    print(f"metatensor {metatensor.__version__}, numpy {np.__version__}")

    # 1. Load a file written by the reference implementation ---------------- #
    title("Loading")
    with timed("load"):
        tensor = metatensor.load(INPUT)
    size = INPUT.stat().st_size
    print(f"loaded {INPUT.name} ({size / 1e6:.2f} MB)")

    # 2. Inspect it --------------------------------------------------------- #
    title("Inspecting the TensorMap")
    inspect(tensor)

    # one block: the spherical expansion coefficients with o3_lambda=1 of the
    # hydrogen neighbors around the carbon atoms. `tensor.block()` accepts
    # keyword arguments, a dict, a LabelsEntry or a Labels, and requires
    # exactly one matching block.
    title("One block")
    with timed("find one block"):
        block = tensor.block(o3_lambda=1, center_type=6, neighbor_type=1)
    describe_block(block)

    # all blocks around carbon atoms, with `tensor.blocks()`
    carbon = tensor.blocks(center_type=6)
    print()
    print(f"{len(carbon)} blocks have center_type=6")

    # 3. Transform ------------------------------------------------------------ #
    title("Transforming")

    # move the neighbor type from the keys to the properties: blocks that only
    # differ by neighbor_type are merged, side by side along the properties
    with timed("keys_to_properties"):
        dense = tensor.keys_to_properties("neighbor_type")
    print(
        f"keys_to_properties('neighbor_type'): {len(dense)} blocks, "
        f"properties {dense.property_names}"
    )

    # move the central atom type to the samples: blocks with the same o3_lambda
    # are stacked along the samples, giving one block per angular channel
    with timed("keys_to_samples"):
        per_lambda = dense.keys_to_samples("center_type")
    print(
        f"keys_to_samples('center_type'): {len(per_lambda)} blocks, "
        f"samples {per_lambda.sample_names}"
    )
    print(per_lambda)

    # select the vectorial part (o3_lambda=1) and flatten the o3_mu component
    # into the properties: a plain 2-D (samples x features) matrix per block
    with timed("select"):
        vectors = select_blocks(
            per_lambda, Labels(["o3_lambda"], np.array([[1]], dtype=np.int32))
        )
    with timed("components_to_properties"):
        vectors = vectors.components_to_properties("o3_mu")
    vectors.set_info("description", "o3_lambda=1 part of the spherical expansion")
    features = vectors.block()
    print()
    print(
        "components_to_properties('o3_mu') on the o3_lambda=1 block: values of "
        f"shape {features.shape}, properties {features.properties.names}"
    )

    # 4. Save, load back and compare ---------------------------------------- #
    title("Saving and loading back")
    saved = {
        "spherical-expansion-per-lambda.mts": per_lambda,
        "spherical-expansion-vectors.mts": vectors,
    }
    for name, data in saved.items():
        path = output / name
        with timed(f"save {name}"):
            metatensor.save(path, data)
        with timed(f"load {name}"):
            reloaded = metatensor.load(path)
        check_same_tensor(data, reloaded)
        print(f"{path}: {path.stat().st_size / 1e6:.2f} MB, identical after reload")

    # 5. Memory-mapped loading ---------------------------------------------- #
    title("Memory-mapped loading")
    # with `mmap=True` the arrays are views into the file: loading does not read
    # the data, pages are read from disk when (and if) they are accessed. The
    # mapping is copy-on-write: arrays can be modified in memory, the file is
    # never changed.
    path = output / "spherical-expansion-per-lambda.mts"
    with timed("load with mmap=True"):
        mapped = metatensor.load(path, mmap=True)
    values = mapped.block(o3_lambda=0).values
    print(f"values are memory-mapped: {is_memory_mapped(values)}")
    check_same_tensor(per_lambda, mapped)
    print("memory-mapped content is identical")

    # 6. Timings ------------------------------------------------------------- #
    title("Timings")
    width = max(len(step) for step in TIMINGS)
    for step, seconds in TIMINGS.items():
        print(f"{step.ljust(width)} {1e3 * seconds:9.2f} ms")


if __name__ == "__main__":
    main()
