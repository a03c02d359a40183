"""Reference data computed at run time with the EMT potential of ASE.

The structures are periodic 32-atom fcc cells (2 x 2 x 2 conventional cubic
cells) of copper, aluminium and random Cu-Al alloys, in three families:

* ``rattled``: the ideal lattice with random Gaussian displacements of the
  atoms (0.03 to 0.12 Å), the range of thermal motion up to several hundred K;
* ``strained``: a random symmetric strain of the cell (up to 4 % in each
  component) with smaller displacements;
* ``vacancy``: one atom removed, then strained and rattled.

Structures where two atoms come closer than 85 % of the nearest-neighbor
distance of the ideal lattice are drawn again. Each structure gets the EMT
energy, forces and stress. Nothing is downloaded.
"""

from typing import Dict, List

import numpy as np


# lattice parameters of copper and aluminium (Å), interpolated linearly for the
# alloys (Vegard's law)
LATTICE = {"Cu": 3.61, "Al": 4.05}
FAMILIES = ["rattled", "strained", "vacancy"]
COMPOSITIONS = ["Cu", "Al", "CuAl"]


def _fcc_cell(composition: str, rng: np.random.Generator):
    from ase.build import bulk

    if composition == "CuAl":
        fraction = rng.uniform(0.2, 0.8)
        a = (1 - fraction) * LATTICE["Cu"] + fraction * LATTICE["Al"]
        atoms = bulk("Cu", "fcc", a=a, cubic=True) * (2, 2, 2)
        n_al = int(round(fraction * len(atoms)))
        numbers = atoms.numbers.copy()
        numbers[rng.choice(len(atoms), size=n_al, replace=False)] = 13
        atoms.numbers = numbers
    else:
        atoms = bulk(composition, "fcc", a=LATTICE[composition], cubic=True)
        atoms = atoms * (2, 2, 2)
    return atoms


def _strain(atoms, rng: np.random.Generator, amplitude: float) -> None:
    strain = rng.uniform(-amplitude, amplitude, size=(3, 3))
    strain = 0.5 * (strain + strain.T)
    atoms.set_cell(atoms.cell[:] @ (np.eye(3) + strain), scale_atoms=True)


def _rattle(atoms, rng: np.random.Generator, amplitude: float) -> None:
    atoms.positions = atoms.positions + rng.normal(0.0, amplitude, (len(atoms), 3))


def make_structure(composition: str, family: str, rng: np.random.Generator):
    """One random structure (without energies).

    :param composition: ``"Cu"``, ``"Al"`` or ``"CuAl"``
    :param family: ``"rattled"``, ``"strained"`` or ``"vacancy"``
    :param rng: the random number generator to use
    :return: an :py:class:`ase.Atoms`, with ``info["family"]`` and
        ``info["composition"]`` set
    """
    if composition not in COMPOSITIONS:
        raise ValueError(f"unknown composition '{composition}'")
    if family not in FAMILIES:
        raise ValueError(f"unknown structure family '{family}'")
    while True:
        atoms = _draw(composition, family, rng)
        # the ideal nearest-neighbor distance is a / sqrt(2)
        nearest = LATTICE["Cu"] / np.sqrt(2)
        distances = atoms.get_all_distances(mic=True)
        np.fill_diagonal(distances, np.inf)
        if distances.min() > 0.85 * nearest:
            break
    atoms.wrap()
    atoms.info["composition"] = composition
    atoms.info["family"] = family
    return atoms


def _draw(composition: str, family: str, rng: np.random.Generator):
    atoms = _fcc_cell(composition, rng)
    if family == "rattled":
        _rattle(atoms, rng, rng.uniform(0.03, 0.12))
    elif family == "strained":
        _strain(atoms, rng, 0.04)
        _rattle(atoms, rng, rng.uniform(0.02, 0.08))
    elif family == "vacancy":
        del atoms[int(rng.integers(len(atoms)))]
        _strain(atoms, rng, 0.02)
        _rattle(atoms, rng, rng.uniform(0.03, 0.12))
    return atoms


def compute_emt(atoms) -> None:
    """Compute the EMT energy (eV), forces (eV/Å) and stress (eV/Å^3, Voigt
    order) of ``atoms`` and store them in ``atoms.info["energy"]``,
    ``atoms.arrays["forces"]`` and ``atoms.info["stress"]`` (no calculator is
    kept attached)."""
    from ase.calculators.emt import EMT

    atoms.calc = EMT()
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    stress = atoms.get_stress()
    atoms.calc = None
    atoms.info["energy"] = float(energy)
    atoms.info["stress"] = np.asarray(stress, dtype=np.float64)
    atoms.arrays["forces"] = np.asarray(forces, dtype=np.float64)


def generate(n_per_group: int, seed: int, progress=None) -> List:
    """Generate ``n_per_group`` structures for each composition and family and
    compute their EMT energies, forces and stresses.

    :param n_per_group: number of structures of each (composition, family)
    :param seed: seed of the random number generator
    :param progress: an optional callable wrapping an iterable in a progress bar
    :return: the list of structures, as :py:class:`ase.Atoms`
    """
    rng = np.random.default_rng(seed)
    groups = [(c, f) for c in COMPOSITIONS for f in FAMILIES]
    tasks = [group for group in groups for _ in range(n_per_group)]
    if progress is not None:
        tasks = progress(tasks)
    structures = []
    for composition, family in tasks:
        atoms = make_structure(composition, family, rng)
        compute_emt(atoms)
        structures.append(atoms)
    return structures


def split(n_structures: int, test_fraction: float, seed: int) -> Dict[str, List[int]]:
    """Random split of the structure indices in a training and a test set.

    :return: ``{"train": [...], "test": [...]}``, sorted indices
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_structures)
    n_test = max(1, int(round(test_fraction * n_structures)))
    return {
        "train": sorted(int(i) for i in order[n_test:]),
        "test": sorted(int(i) for i in order[:n_test]),
    }
