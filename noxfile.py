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
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(name="tests-core")
def tests_core(session: nox.Session) -> None:
    """metatensor-core tests with numpy only (torch must not be installed)."""
    install_build_deps(session)
    session.install(NUMPY, *TEST_DEPS)
    install_ours(session, "metatensor-core")
    session.run(
        "python",
        "-c",
        "import importlib.util, sys; "
        "sys.exit('torch must not be installed here') "
        "if importlib.util.find_spec('torch') else None",
    )
    session.run(*pytest_args(session, "python/metatensor-core/tests", "tests/core"))


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


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation with sphinx, warnings are errors."""
    install_build_deps(session)
    session.install(NUMPY, "-r", "docs/requirements.txt")
    install_ours(session, "metatensor-core")
    session.run(
        "sphinx-build",
        "-W",
        "--keep-going",
        "-b",
        "html",
        "docs/src",
        "docs/build/html",
    )


@nox.session
def demo(session: nox.Session) -> None:
    """The main example: load a reference file, inspect it, transform it, save it."""
    install_build_deps(session)
    session.install(NUMPY)
    install_ours(session, "metatensor-core")
    output = os.environ.get("METATENSOR_DEMO_OUTPUT", str(ROOT / "examples" / "output"))
    session.run("python", "examples/exchange_format.py", "--output", output)
