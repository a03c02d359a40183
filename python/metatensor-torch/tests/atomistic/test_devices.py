"""Systems, neighbor lists, atomistic models and the ASE calculator with data on
a given device (the CPU, and a CUDA GPU when one is available).

Everything runs under ``elsewhere(device)``, where torch's default device is
another device: any tensor created by the code under test without an explicit
``device=`` ends up on the wrong device and makes the test fail, as it would
with the data on a GPU. The inputs are built before entering the context.
"""

import math
import pickle
from typing import Dict, List, Optional

import numpy as np
import pytest
import torch


pytest.importorskip("ase")
pytest.importorskip("vesin")

import ase  # noqa: E402
import ase.build  # noqa: E402
import ase.neighborlist  # noqa: E402
from ase.calculators.calculator import Calculator  # noqa: E402

from metatensor.torch import Labels, TensorBlock, TensorMap  # noqa: E402
from metatensor.torch.atomistic import (  # noqa: E402
    AtomisticModel,
    ModelCapabilities,
    ModelEvaluationOptions,
    ModelMetadata,
    ModelOutput,
    NeighborListOptions,
    System,
    add_neighbor_lists,
    compute_neighbor_list,
    load_atomistic_model,
    load_system,
    load_system_buffer,
    pick_device,
    register_autograd_neighbors,
    save,
    save_buffer,
    systems_to_torch,
    unit_conversion_factor,
)
from metatensor.torch.atomistic._ase_inputs import ase_input  # noqa: E402
from metatensor.torch.atomistic._model_forward import scaled_tensor_map  # noqa: E402
from metatensor.torch.atomistic.ase_calculator import (  # noqa: E402
    MetatomicCalculator,
    SymmetrizedCalculator,
)


# the systems are small: torch's intra-op threads only add overhead
pytestmark = pytest.mark.usefixtures("single_thread")

CUTOFF = 3.0  # angstrom
AMPLITUDE = 2.0  # eV
NM = unit_conversion_factor("angstrom", "nm")


# ============================================================================ #
# helpers


def pair_energy(r: np.ndarray) -> np.ndarray:
    """The pair energy (eV, ``r`` in angstrom) of :py:class:`DeviceModel`."""
    x = 1.0 - r / CUTOFF
    return AMPLITUDE * np.exp(-r) * x * x * x


def pair_derivative(r: np.ndarray) -> np.ndarray:
    x = 1.0 - r / CUTOFF
    return AMPLITUDE * np.exp(-r) * (-(x**3) - 3.0 * x * x / CUTOFF)


class DeviceModel(torch.nn.Module):
    """A pair potential (:py:func:`pair_energy`) in nm and eV, using a half
    strict neighbor list, plus the kinetic energy ``p^2 / 2m`` from the
    ``momentum`` and ``mass`` inputs. Also computes ``non_conservative_force``
    (``-0.01 * positions`` in eV/nm) and ``non_conservative_stress``
    (``0.001 * cell`` in eV/nm^3). Every tensor is created on the device of the
    inputs."""

    def __init__(self, use_inputs: bool = True):
        super().__init__()
        self.use_inputs = use_inputs
        self.nm = NM
        self.cutoff = CUTOFF
        self.amplitude = AMPLITUDE
        self._nl = NeighborListOptions(cutoff=CUTOFF * NM, full_list=False, strict=True)

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return [self._nl]

    def requested_inputs(self) -> Dict[str, ModelOutput]:
        if not self.use_inputs:
            return {}
        return {
            "mass": ModelOutput(unit="u", sample_kind="atom"),
            "momentum": ModelOutput(unit="(eV*u)^(1/2)", sample_kind="atom"),
        }

    def pair_energy(self, r: torch.Tensor) -> torch.Tensor:
        x = 1.0 - r / self.cutoff
        return self.amplitude * torch.exp(-r) * x * x * x

    def _labels(self, name: str, values: torch.Tensor) -> Labels:
        return Labels(name, values.to(torch.int32).reshape(-1, 1))

    def _single(self, device: torch.device) -> torch.Tensor:
        return torch.zeros((1, 1), dtype=torch.int32, device=device)

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        device = systems[0].device
        energies: List[torch.Tensor] = []
        samples: List[torch.Tensor] = []
        forces: List[torch.Tensor] = []
        stresses: List[torch.Tensor] = []
        for s, system in enumerate(systems):
            neighbors = system.get_neighbor_list(self._nl)
            pairs = neighbors.samples.values
            r = (
                torch.linalg.vector_norm(neighbors.values.reshape(-1, 3), dim=1)
                / self.nm
            )
            e = self.pair_energy(r)
            energy = torch.zeros(len(system), dtype=r.dtype, device=device)
            energy = energy.index_add(0, pairs[:, 0].to(torch.int64), 0.5 * e)
            energy = energy.index_add(0, pairs[:, 1].to(torch.int64), 0.5 * e)
            if self.use_inputs:
                mass = system.get_data("mass").block().values.reshape(-1)
                momentum = system.get_data("momentum").block().values.reshape(-1, 3)
                energy = energy + 0.5 * (momentum**2).sum(dim=1) / mass

            atoms = torch.arange(len(system), device=device)
            if selected_atoms is not None:
                selected = selected_atoms.values
                atoms = selected[selected[:, 0] == s][:, 1].to(torch.int64)
            energies.append(energy[atoms])
            samples.append(torch.stack([torch.full_like(atoms, s), atoms], dim=1))
            forces.append(-0.01 * system.positions[atoms])
            stresses.append(0.001 * system.cell)

        atom_samples = Labels(["system", "atom"], torch.cat(samples).to(torch.int32))
        keys = Labels("_", self._single(device))
        xyz = torch.arange(3, device=device)
        results: Dict[str, TensorMap] = {}
        for name, request in outputs.items():
            if name == "energy":
                values = torch.cat(energies).reshape(-1, 1)
                block_samples = atom_samples
                if request.sample_kind == "system":
                    per_system: List[torch.Tensor] = [e.sum() for e in energies]
                    values = torch.stack(per_system).reshape(-1, 1)
                    block_samples = self._labels(
                        "system", torch.arange(len(systems), device=device)
                    )
                block = TensorBlock(
                    values, block_samples, [], Labels("energy", self._single(device))
                )
                results[name] = TensorMap(keys, [block])
            elif name == "non_conservative_force":
                block = TensorBlock(
                    torch.cat(forces).reshape(-1, 3, 1),
                    atom_samples,
                    [self._labels("xyz", xyz)],
                    Labels("non_conservative_force", self._single(device)),
                )
                results[name] = TensorMap(keys, [block])
            elif name == "non_conservative_stress":
                block = TensorBlock(
                    torch.stack(stresses).reshape(-1, 3, 3, 1),
                    self._labels("system", torch.arange(len(systems), device=device)),
                    [self._labels("xyz_1", xyz), self._labels("xyz_2", xyz)],
                    Labels("non_conservative_stress", self._single(device)),
                )
                results[name] = TensorMap(keys, [block])
        return results


def device_model(dtype: str = "float64", use_inputs: bool = True) -> AtomisticModel:
    capabilities = ModelCapabilities(
        outputs={
            "energy": ModelOutput(unit="eV", sample_kind="atom"),
            "non_conservative_force": ModelOutput(unit="eV/nm", sample_kind="atom"),
            "non_conservative_stress": ModelOutput(
                unit="eV/nm^3", sample_kind="system"
            ),
        },
        atomic_types=[1, 6, 29],
        interaction_range=CUTOFF * NM,
        length_unit="nm",
        supported_devices=["cuda", "cpu"],
        dtype=dtype,
    )
    module = DeviceModel(use_inputs=use_inputs).eval()
    return AtomisticModel(module, ModelMetadata(name="device model"), capabilities)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("model") / "model.pt"
    device_model().save(str(path))
    return str(path)


def copper_atoms(seed: int = 0) -> ase.Atoms:
    """8 rattled copper atoms in a periodic (2, 1, 1) supercell, with momenta."""
    atoms = ase.build.bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.1, seed=seed)
    rng = np.random.default_rng(seed)
    atoms.set_momenta(rng.normal(size=(len(atoms), 3)))
    return atoms


def make_system(
    device: torch.device, dtype: torch.dtype = torch.float64, seed: int = 0
) -> System:
    """A periodic copper system on ``device`` (positions in angstrom)."""
    atoms = copper_atoms(seed)
    return System(
        types=torch.tensor(atoms.numbers, device=device),
        positions=torch.tensor(atoms.positions, dtype=dtype, device=device),
        cell=torch.tensor(atoms.cell.array, dtype=dtype, device=device),
        pbc=torch.tensor(atoms.pbc, device=device),
    )


def per_atom_data(
    values: torch.Tensor, name: str, unit: str, vector: bool = False
) -> TensorMap:
    """A single-block per-atom TensorMap with ``values`` (on their device)."""
    device = values.device
    n_atoms = values.shape[0]
    atoms = torch.arange(n_atoms, dtype=torch.int32, device=device)
    samples = Labels(["system", "atom"], torch.stack([atoms * 0, atoms], dim=1))
    components = []
    if vector:
        components = [Labels("xyz", atoms[:3].reshape(-1, 1))]
        values = values.reshape(n_atoms, 3, 1)
    else:
        values = values.reshape(n_atoms, 1)
    properties = Labels(name, atoms[:1].reshape(1, 1) * 0)
    keys = Labels("_", atoms[:1].reshape(1, 1) * 0)
    tensor = TensorMap(keys, [TensorBlock(values, samples, components, properties)])
    tensor.set_info("unit", unit)
    return tensor


def add_inputs(system: System, seed: int = 0):
    """Store ``mass`` (in electron masses) and ``momentum`` inputs in
    ``system``."""
    atoms = copper_atoms(seed)
    device = system.device
    mass = torch.tensor(atoms.get_masses(), dtype=system.dtype, device=device)
    mass = mass * unit_conversion_factor("u", "electron_mass")
    momentum = torch.tensor(atoms.get_momenta(), dtype=system.dtype, device=device)
    system.add_data("mass", per_atom_data(mass, "mass", "electron_mass"))
    system.add_data(
        "momentum", per_atom_data(momentum, "momentum", "(eV*u)^(1/2)", vector=True)
    )


def reference_energies(atoms: ase.Atoms) -> np.ndarray:
    """Per-atom energies of :py:class:`DeviceModel` (in eV), computed with
    numpy and the neighbor list of ASE."""
    i, d = ase.neighborlist.neighbor_list("id", atoms, CUTOFF)
    # full list: each atom gets half of the energy of its pairs
    energies = np.bincount(i, weights=0.5 * pair_energy(d), minlength=len(atoms))
    momenta = atoms.get_momenta()
    return energies + 0.5 * (momenta**2).sum(axis=1) / atoms.get_masses()


def reference_forces(atoms: ase.Atoms) -> np.ndarray:
    i, j, d, vectors = ase.neighborlist.neighbor_list("ijdD", atoms, CUTOFF)
    pair_forces = (pair_derivative(d) / d)[:, None] * vectors
    forces = np.zeros((len(atoms), 3))
    np.add.at(forces, i, pair_forces)
    return forces


def check_labels(labels: Labels, device: torch.device):
    assert labels.values.device == device
    assert labels.device == device


def check_block(block: TensorBlock, device: torch.device, dtype=None):
    assert block.values.device == device
    assert block.device == device
    if dtype is not None:
        assert block.values.dtype == dtype
    check_labels(block.samples, device)
    for component in block.components:
        check_labels(component, device)
    check_labels(block.properties, device)
    for _, gradient in block.gradients():
        check_block(gradient, device, dtype)


def check_tensor(tensor: TensorMap, device: torch.device, dtype=None):
    assert tensor.device == device
    check_labels(tensor.keys, device)
    for block in tensor.blocks():
        check_block(block, device, dtype)


def check_system(system: System, device: torch.device, dtype: torch.dtype):
    assert system.device == device
    assert system.dtype == dtype
    for tensor in [system.types, system.positions, system.cell, system.pbc]:
        assert tensor.device == device
    assert system.types.dtype == torch.int32
    assert system.pbc.dtype == torch.bool
    assert system.positions.dtype == dtype
    assert system.cell.dtype == dtype
    for options in system.known_neighbor_lists():
        check_block(system.get_neighbor_list(options), device, dtype)
    for name in system.known_data():
        check_tensor(system.get_data(name), device, dtype)


DTYPES = [torch.float64, torch.float32]


# ============================================================================ #
# systems and neighbor lists


@pytest.mark.parametrize("dtype", DTYPES)
def test_system_to(device, elsewhere, dtype):
    cpu = make_system(torch.device("cpu"))
    options = NeighborListOptions(cutoff=CUTOFF, full_list=True, strict=True)
    cpu.add_neighbor_list(options, compute_neighbor_list(cpu, options))
    add_inputs(cpu)

    with elsewhere(device):
        moved = cpu.to(device=device, dtype=dtype)
        check_system(moved, device, dtype)
        positional = cpu.to(dtype, device)
        check_system(positional, device, dtype)
        back = moved.to("cpu")

    check_system(back, torch.device("cpu"), dtype)
    tolerance = {} if dtype == torch.float64 else {"atol": 1e-6, "rtol": 1e-6}
    torch.testing.assert_close(back.positions, cpu.positions.to(dtype), **tolerance)
    torch.testing.assert_close(
        back.get_neighbor_list(options).values,
        cpu.get_neighbor_list(options).values.to(dtype),
        **tolerance,
    )
    assert back.get_neighbor_list(options).samples == (
        cpu.get_neighbor_list(options).samples
    )
    torch.testing.assert_close(
        back.get_data("mass").block().values,
        cpu.get_data("mass").block().values.to(dtype),
        **tolerance,
    )


def test_system_construction(device, elsewhere):
    system = make_system(device)
    mass = torch.ones(len(system), dtype=torch.float64, device=device)
    data = per_atom_data(mass, "mass", "u")
    other = make_system(torch.device("meta"))

    with elsewhere(device):
        new = System(system.types, system.positions, system.cell, system.pbc)
        new.positions = system.positions * 1.01
        new.cell = system.cell * 1.01
        new.types = system.types
        new.pbc = system.pbc
        new.add_data("mass", data)
        check_system(new, device, torch.float64)
        assert "periodic cell" in str(new)

        with pytest.raises(ValueError, match="same device"):
            new.positions = other.positions
        with pytest.raises(ValueError, match="must be on the same device"):
            System(system.types, other.positions, system.cell, system.pbc)


def test_system_meta(elsewhere):
    # shape-only systems on the meta device
    cpu = make_system(torch.device("cpu"))
    options = NeighborListOptions(cutoff=CUTOFF, full_list=False, strict=True)
    cpu.add_neighbor_list(options, compute_neighbor_list(cpu, options))
    add_inputs(cpu)

    with elsewhere(torch.device("meta")):
        meta = cpu.to(device="meta", dtype=torch.float32)
        check_system(meta, torch.device("meta"), torch.float32)
        assert str(meta) == "System with 8 atoms, on the meta device"
        again = System(meta.types, meta.positions, meta.cell, meta.pbc)
        again.add_neighbor_list(options, meta.get_neighbor_list(options))
        again.add_data("mass", meta.get_data("mass"))
        check_system(again, torch.device("meta"), torch.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("full_list", [True, False])
def test_compute_neighbor_list(device, elsewhere, dtype, full_list):
    system = make_system(device, dtype)
    system.positions.requires_grad_(True)
    system.cell.requires_grad_(True)
    options = NeighborListOptions(cutoff=CUTOFF, full_list=full_list, strict=True)
    reference = compute_neighbor_list(make_system(torch.device("cpu")), options)

    with elsewhere(device):
        neighbors = compute_neighbor_list(system, options)
        check_block(neighbors, device, dtype)
        assert neighbors.values.requires_grad
        distances = torch.linalg.vector_norm(neighbors.values, dim=1)
        distances.sum().backward()

    assert neighbors.samples == reference.samples.to(device)
    torch.testing.assert_close(
        neighbors.values.detach().cpu(),
        reference.values.to(dtype),
        **({} if dtype == torch.float64 else {"atol": 1e-5, "rtol": 1e-5}),
    )
    assert torch.all(distances < CUTOFF)
    for tensor in [system.positions, system.cell]:
        assert tensor.grad is not None
        assert tensor.grad.device == device
        assert tensor.grad.dtype == dtype
    # the positions of atoms move the pair vectors in opposite directions
    torch.testing.assert_close(
        system.positions.grad.sum(dim=0),
        torch.zeros(3, dtype=dtype, device=device),
        atol=1e-5,
        rtol=0,
    )


def test_add_neighbor_lists(device, elsewhere):
    systems = [make_system(device, seed=0), make_system(device, seed=1)]
    requests = [
        NeighborListOptions(cutoff=CUTOFF, full_list=True, strict=True),
        NeighborListOptions(cutoff=2.0 * NM, full_list=False, strict=False),
    ]
    requests[1].length_unit = "nm"

    with elsewhere(device):
        add_neighbor_lists(systems, requests, length_unit="angstrom", skin=0.5)
        for system in systems:
            assert len(system.known_neighbor_lists()) == 2
            check_system(system, device, torch.float64)

    # the non-strict list has a skin: it contains pairs up to 2.5 angstrom
    half = systems[0].get_neighbor_list(requests[1])
    distances = torch.linalg.vector_norm(half.values, dim=1)
    assert float(distances.max()) > 2.0
    assert float(distances.max()) < 2.5


@pytest.mark.parametrize("dtype", DTYPES)
def test_register_autograd_neighbors(device, elsewhere, dtype):
    system = make_system(device, dtype)
    options = NeighborListOptions(cutoff=CUTOFF, full_list=False, strict=True)
    computed = compute_neighbor_list(system, options)
    neighbors = TensorBlock(
        computed.values.detach().clone(),
        computed.samples,
        computed.components,
        computed.properties,
    )
    system.positions.requires_grad_(True)
    system.cell.requires_grad_(True)

    with elsewhere(device):
        register_autograd_neighbors(system, neighbors, check_consistency=True)
        assert neighbors.values.requires_grad
        system.add_neighbor_list(options, neighbors)
        torch.linalg.vector_norm(neighbors.values, dim=1).sum().backward()

    expected = make_system(device, dtype)
    expected.positions.requires_grad_(True)
    expected.cell.requires_grad_(True)
    vectors = compute_neighbor_list(expected, options).values
    torch.linalg.vector_norm(vectors, dim=1).sum().backward()
    torch.testing.assert_close(system.positions.grad, expected.positions.grad)
    torch.testing.assert_close(system.cell.grad, expected.cell.grad)


def test_register_autograd_neighbors_errors(device, elsewhere):
    system = make_system(device)
    options = NeighborListOptions(cutoff=CUTOFF, full_list=False, strict=True)
    computed = compute_neighbor_list(system, options)
    wrong = TensorBlock(
        computed.values.detach() + 0.5,
        computed.samples,
        computed.components,
        computed.properties,
    )
    with elsewhere(device):
        with pytest.raises(ValueError, match="does not match its metadata"):
            register_autograd_neighbors(system, wrong, check_consistency=True)


# ============================================================================ #
# serialization of systems


def test_mta_round_trip(device, elsewhere, tmp_path):
    system = make_system(device, torch.float32)
    system.positions.requires_grad_(True)
    options = NeighborListOptions(cutoff=CUTOFF, full_list=False, strict=True)
    system.add_neighbor_list(options, compute_neighbor_list(system, options))
    add_inputs(system)
    path = tmp_path / "system.mta"

    with elsewhere(device):
        save(path, system)
        buffer = save_buffer(system)
        # systems are always loaded on the CPU
        loaded = [load_system(path), load_system_buffer(buffer)]
        for new in loaded:
            check_system(new, torch.device("cpu"), torch.float32)
        moved = loaded[0].to(device)

    assert buffer.device == torch.device("cpu")
    check_system(moved, device, torch.float32)
    torch.testing.assert_close(moved.positions, system.positions.detach())
    torch.testing.assert_close(
        moved.get_neighbor_list(options).values,
        system.get_neighbor_list(options).values.detach(),
    )
    torch.testing.assert_close(
        moved.get_data("momentum").block().values,
        system.get_data("momentum").block().values,
    )


# ============================================================================ #
# ASE inputs


@pytest.mark.parametrize("dtype", DTYPES)
def test_systems_to_torch(device, elsewhere, dtype):
    atoms = [copper_atoms(0), copper_atoms(1)]
    molecule = ase.build.molecule("CH4")

    with elsewhere(device):
        systems = systems_to_torch(
            atoms, dtype=dtype, device=device, positions_requires_grad=True
        )
        single = systems_to_torch(molecule, dtype=dtype, device=str(device))
        for system in systems + [single]:
            check_system(system, device, dtype)
        energy = (systems[0].positions ** 2).sum()
        energy.backward()

    torch.testing.assert_close(
        systems[1].positions.detach().cpu(),
        torch.tensor(atoms[1].positions, dtype=dtype),
    )
    assert systems[0].positions.grad.device == device
    torch.testing.assert_close(
        systems[0].positions.grad, 2.0 * systems[0].positions.detach()
    )
    assert not bool(single.pbc.any())
    assert int(torch.count_nonzero(single.cell)) == 0


@pytest.mark.parametrize(
    ("name", "sample_kind", "shape"),
    [
        ("mass", "atom", (8, 1)),
        ("momentum", "atom", (8, 3, 1)),
        ("charge", "system", (1, 1)),
        ("ase::arrays::matrix", "atom", (8, 2, 2)),
        ("ase::info::vector", "system", (1, 4)),
    ],
)
def test_ase_inputs(device, elsewhere, name, sample_kind, shape):
    atoms = copper_atoms()
    atoms.arrays["matrix"] = np.arange(8 * 4, dtype=np.float64).reshape(8, 2, 2)
    atoms.info["vector"] = [1.0, 2.0, 3.0, 4.0]
    atoms.info["charge"] = -1.0
    request = ModelOutput(sample_kind=sample_kind)

    with elsewhere(device):
        tensor = ase_input(atoms, name, request, torch.float32, device)
        check_tensor(tensor, device, torch.float32)

    values = tensor.block().values
    assert values.shape == shape
    if name == "mass":
        expected = atoms.get_masses().reshape(shape)
    elif name == "momentum":
        expected = atoms.get_momenta().reshape(shape)
    elif name == "charge":
        expected = np.array([[-1.0]])
    elif name == "ase::arrays::matrix":
        expected = atoms.arrays["matrix"]
    else:
        expected = np.array([atoms.info["vector"]])
    torch.testing.assert_close(
        values.cpu(), torch.tensor(expected, dtype=torch.float32)
    )


# ============================================================================ #
# atomistic models


def run_model(
    model, systems: List[System], outputs, selected_atoms=None, check=True
) -> Dict[str, TensorMap]:
    options = ModelEvaluationOptions(
        length_unit="angstrom", outputs=outputs, selected_atoms=selected_atoms
    )
    return model(systems, options, check_consistency=check)


def model_systems(device: torch.device, dtype: torch.dtype) -> List[System]:
    """Two copper systems on ``device``, with neighbor lists (in angstrom) and
    the inputs of :py:class:`DeviceModel`; positions and cell requiring
    gradients."""
    systems = [make_system(device, dtype, seed) for seed in [0, 1]]
    for seed, system in enumerate(systems):
        system.positions.requires_grad_(True)
        system.cell.requires_grad_(True)
        add_inputs(system, seed)
    options = device_model().requested_neighbor_lists()
    add_neighbor_lists(systems, options, length_unit="angstrom")
    return systems


OUTPUTS = {
    "energy": ModelOutput(unit="meV", sample_kind="atom"),
    "non_conservative_force": ModelOutput(unit="eV/angstrom", sample_kind="atom"),
    "non_conservative_stress": ModelOutput(unit="eV/angstrom^3", sample_kind="system"),
}


def test_evaluation_options(device, elsewhere):
    values = torch.tensor([[0, 1], [1, 2]], dtype=torch.int32, device=device)
    options = ModelEvaluationOptions(
        length_unit="angstrom",
        outputs=OUTPUTS,
        selected_atoms=Labels(["system", "atom"], values),
    )
    with elsewhere(device):
        copy = pickle.loads(pickle.dumps(options))

    # like TorchScript classes loaded from a file, the selected atoms are
    # restored on the CPU
    check_labels(copy.selected_atoms, torch.device("cpu"))
    assert copy.selected_atoms.names == ["system", "atom"]
    assert torch.equal(copy.selected_atoms.values, values.cpu())
    assert copy.length_unit == "angstrom"
    assert list(copy.outputs.keys()) == list(OUTPUTS.keys())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_model_forward(device, elsewhere, dtype):
    torch_dtype = getattr(torch, dtype)
    model = device_model(dtype).to(device)
    systems = model_systems(device, torch_dtype)
    selected = Labels(
        ["system", "atom"],
        torch.tensor(
            [[0, 0], [0, 3], [1, 2], [1, 7]], dtype=torch.int32, device=device
        ),
    )

    with elsewhere(device):
        results = run_model(model, systems, OUTPUTS)
        partial = run_model(model, systems, OUTPUTS, selected_atoms=selected)
        for tensor in list(results.values()) + list(partial.values()):
            check_tensor(tensor, device, torch_dtype)

        energy = results["energy"].block().values.sum()
        energy.backward()

    tolerance = {} if dtype == "float64" else {"atol": 1e-3, "rtol": 1e-4}
    expected = np.concatenate([reference_energies(copper_atoms(s)) for s in [0, 1]])
    torch.testing.assert_close(
        results["energy"].block().values.detach().cpu().reshape(-1),
        torch.tensor(1000.0 * expected, dtype=torch_dtype),
        **tolerance,
    )
    # selected atoms
    assert partial["energy"].block().samples == selected
    torch.testing.assert_close(
        partial["energy"].block().values.detach(),
        results["energy"].block().values.detach()[[0, 3, 10, 15]],
    )
    # unit conversion of non-conservative outputs, from eV/nm to eV/angstrom
    forces = results["non_conservative_force"].block().values.detach().reshape(-1, 3)
    positions = torch.cat([s.positions.detach() for s in systems])
    torch.testing.assert_close(forces, -0.01 * positions * NM * NM, **tolerance)
    stress = results["non_conservative_stress"].block().values.detach()
    torch.testing.assert_close(
        stress[1].reshape(3, 3), 0.001 * systems[1].cell.detach() * NM**4, **tolerance
    )
    # gradients flow back to the positions and cell, on the device
    for system, seed in zip(systems, [0, 1]):
        assert system.positions.grad.device == device
        assert system.positions.grad.dtype == torch_dtype
        assert system.cell.grad.device == device
        torch.testing.assert_close(
            system.positions.grad.cpu(),
            torch.tensor(
                -1000.0 * reference_forces(copper_atoms(seed)), dtype=torch_dtype
            ),
            **({} if dtype == "float64" else {"atol": 1e-2, "rtol": 1e-3}),
        )


def test_model_system_output(device, elsewhere):
    model = device_model().to(device)
    systems = model_systems(device, torch.float64)
    outputs = {"energy": ModelOutput(unit="eV", sample_kind="system")}
    selected = Labels(
        ["system", "atom"],
        torch.tensor([[0, 1], [1, 2]], dtype=torch.int32, device=device),
    )

    with elsewhere(device):
        results = run_model(model, systems, outputs)
        partial = run_model(model, systems, outputs, selected_atoms=selected)
        check_tensor(results["energy"], device, torch.float64)
        check_tensor(partial["energy"], device, torch.float64)

    expected = [reference_energies(copper_atoms(s)).sum() for s in [0, 1]]
    torch.testing.assert_close(
        results["energy"].block().values.detach().cpu().reshape(-1),
        torch.tensor(expected, dtype=torch.float64),
    )
    per_atom = [reference_energies(copper_atoms(s)) for s in [0, 1]]
    torch.testing.assert_close(
        partial["energy"].block().values.detach().cpu().reshape(-1),
        torch.tensor([per_atom[0][1], per_atom[1][2]], dtype=torch.float64),
    )


def test_model_errors(device, elsewhere):
    model = device_model().to(device)
    systems = model_systems(device, torch.float64)
    options = ModelEvaluationOptions(
        length_unit="angstrom",
        outputs=OUTPUTS,
        selected_atoms=Labels(
            ["system", "atom"],
            torch.tensor([[0, 8]], dtype=torch.int32, device=device),
        ),
    )
    wrong_types = make_system(device)
    wrong_types.types = torch.full_like(wrong_types.types, 8)

    with elsewhere(device):
        with pytest.raises(ValueError, match="there is no atom 8 in system 0"):
            model(systems, options, check_consistency=True)
        with pytest.raises(ValueError, match="does not support the atomic type '8'"):
            run_model(model, [wrong_types], {}, check=False)


def test_model_meta(elsewhere):
    # shape-only evaluation, with everything on the meta device
    model = device_model(use_inputs=False)
    systems = [s.to("meta") for s in model_systems(torch.device("cpu"), torch.float64)]
    meta = torch.device("meta")

    with elsewhere(meta):
        model = model.to(meta)
        results = run_model(model, systems, OUTPUTS, check=False)

    for tensor in results.values():
        check_tensor(tensor, meta, torch.float64)
    assert results["energy"].block().values.shape == (16, 1)
    assert results["non_conservative_stress"].block().values.shape == (2, 3, 3, 1)


def test_scaled_tensor_map(device, elsewhere):
    values = torch.arange(6, dtype=torch.float32, device=device)
    data = per_atom_data(values, "mass", "u").block()
    gradient = TensorBlock(
        torch.ones((6, 3, 1), dtype=torch.float32, device=device),
        Labels("sample", torch.arange(6, device=device).reshape(-1, 1)),
        [Labels("xyz", torch.arange(3, device=device).reshape(-1, 1))],
        data.properties,
    )
    block = TensorBlock(data.values, data.samples, [], data.properties)
    block.add_gradient("positions", gradient)
    tensor = TensorMap(Labels("_", data.properties.values), [block])
    tensor.set_info("unit", "u")
    factor = unit_conversion_factor("u", "g/mol")

    with elsewhere(device):
        scaled = scaled_tensor_map(tensor, 2.0 * factor, "g/mol")
        check_tensor(scaled, device, torch.float32)

    assert scaled.get_info("unit") == "g/mol"
    assert tensor.get_info("unit") == "u"
    torch.testing.assert_close(
        scaled.block().values, values.reshape(6, 1) * 2.0 * factor
    )
    torch.testing.assert_close(
        scaled.block().gradient("positions").values, gradient.values * 2.0 * factor
    )


# ============================================================================ #
# saved models and devices


def test_pick_device(device):
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device(["cuda", "cpu"]) == expected
    assert pick_device(["cpu", "cuda"]) == "cpu"
    assert pick_device(["meta"]) == "meta"
    assert pick_device(["cuda", "cpu"], device.type) == device.type
    assert pick_device(["cuda", "cpu"], str(torch.device(device.type, 0))) == (
        f"{device.type}:0"
    )
    assert torch.device(pick_device(["cuda", "cpu"], str(device))) == device

    with pytest.raises(ValueError, match="not supported by this model"):
        pick_device(["cpu"], "cuda")
    with pytest.warns(UserWarning, match="unknown device type 'tpu'"):
        assert pick_device(["tpu", "cpu"]) == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available on this system"):
            pick_device(["cuda", "cpu"], "cuda")
        with pytest.raises(ValueError, match="no available device found"):
            pick_device(["cuda"])


def test_save_model_on_device(device, elsewhere, tmp_path):
    model = device_model().to(device)
    path = tmp_path / "model.pt"
    with elsewhere(device):
        model.save(str(path))

    # the model goes back to its device after saving, the file is on the CPU
    assert next(model.buffers()).device == device
    loaded = load_atomistic_model(path)
    assert next(loaded.buffers()).device == torch.device("cpu")


def test_loaded_model(device, elsewhere, saved_model):
    systems = model_systems(device, torch.float64)
    reference = run_model(
        device_model(), model_systems(torch.device("cpu"), torch.float64), OUTPUTS
    )
    loaded = load_atomistic_model(saved_model)
    capabilities = loaded.capabilities()
    assert capabilities.supported_devices == ["cuda", "cpu"]
    engine_device = torch.device(
        pick_device(capabilities.supported_devices, str(device))
    )
    assert engine_device == device

    with elsewhere(device):
        model = loaded.to(engine_device)
        results = run_model(model, systems, OUTPUTS)
        for tensor in results.values():
            check_tensor(tensor, device, torch.float64)
        results["energy"].block().values.sum().backward()

    for name, tensor in reference.items():
        torch.testing.assert_close(
            results[name].block().values.detach().cpu(),
            tensor.block().values.detach(),
        )
    assert systems[0].positions.grad.device == device


# ============================================================================ #
# ASE calculator


def numerical_stress(calculator: Calculator, atoms: ase.Atoms) -> np.ndarray:
    """Finite differences of the energy with respect to a strain, in eV/A^3
    (3x3)."""
    delta = 1e-5
    stress = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            energies = []
            for sign in [1.0, -1.0]:
                strain = np.eye(3)
                strain[i, j] += sign * delta
                copy = atoms.copy()
                copy.set_cell(atoms.cell.array @ strain, scale_atoms=True)
                energies.append(calculator.get_potential_energy(copy))
            stress[i, j] = (energies[0] - energies[1]) / (2 * delta)
    return stress / atoms.get_volume()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_calculator(device, elsewhere, saved_model, dtype):
    atoms = copper_atoms()
    if dtype == "float64":
        model = saved_model
    else:
        model = device_model(dtype)
    additional = {
        "non_conservative_force": ModelOutput(unit="eV/A", sample_kind="atom")
    }
    calculator = MetatomicCalculator(
        model, device=device, additional_outputs=additional, check_consistency=True
    )
    reference = MetatomicCalculator(device_model(), device="cpu")
    expected_stress = numerical_stress(reference, atoms)

    with elsewhere(device):
        atoms.calc = calculator
        energy = atoms.get_potential_energy()
        energies = atoms.get_potential_energies()
        forces = atoms.get_forces()
        stress = atoms.get_stress(voigt=False)
        extra = calculator.additional_outputs["non_conservative_force"]
        check_tensor(extra, device, getattr(torch, dtype))
        batch = calculator.compute_energy(
            [atoms, copper_atoms(1)], compute_forces_and_stresses=True, per_atom=True
        )

    assert next(calculator.model().buffers()).device == device
    tolerance = {"rtol": 1e-7, "atol": 1e-9} if dtype == "float64" else {}
    if dtype == "float32":
        tolerance = {"rtol": 1e-4, "atol": 1e-3}
    expected = reference_energies(atoms)
    np.testing.assert_allclose(energy, expected.sum(), **tolerance)
    np.testing.assert_allclose(energies, expected, **tolerance)
    np.testing.assert_allclose(forces, reference_forces(atoms), **tolerance)
    np.testing.assert_allclose(stress, expected_stress, rtol=1e-4, atol=1e-6)
    for value in [energy, energies, forces, stress]:
        assert np.asarray(value).dtype == np.float64
    np.testing.assert_allclose(batch["energy"][0], energy, **tolerance)
    np.testing.assert_allclose(batch["forces"][0], forces, **tolerance)
    np.testing.assert_allclose(batch["stress"][0], stress, **tolerance)
    np.testing.assert_allclose(
        batch["energies"][1], reference_energies(copper_atoms(1)), **tolerance
    )


def test_calculator_non_conservative(device, elsewhere):
    atoms = copper_atoms()
    calculator = MetatomicCalculator(
        device_model(), device=device, non_conservative=True
    )
    selected = Labels(["system", "atom"], torch.tensor([[0, 1], [0, 5]], device=device))

    with elsewhere(device):
        atoms.calc = calculator
        forces = atoms.get_forces()
        stress = atoms.get_stress(voigt=False)
        outputs = calculator.run_model(
            atoms, {"energy": ModelOutput(unit="eV", sample_kind="atom")}, selected
        )
        check_tensor(outputs["energy"], device, torch.float64)

    expected = -0.01 * atoms.positions * NM * NM
    np.testing.assert_allclose(forces, expected - expected.mean(axis=0))
    np.testing.assert_allclose(stress, 0.001 * atoms.cell.array * NM**4)
    assert outputs["energy"].block().samples == selected
    np.testing.assert_allclose(
        outputs["energy"].block().values.cpu().numpy().reshape(-1),
        reference_energies(atoms)[[1, 5]],
    )


def test_symmetrized_calculator(device, elsewhere):
    atoms = copper_atoms()
    base = MetatomicCalculator(device_model(use_inputs=False), device=device)
    calculator = SymmetrizedCalculator(base, l_max=1)
    expected = reference_energies(atoms) - 0.5 * (
        (atoms.get_momenta() ** 2).sum(axis=1) / atoms.get_masses()
    )

    with elsewhere(device):
        atoms.calc = calculator
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()

    # the model is invariant: averaging over rotations changes nothing
    np.testing.assert_allclose(energy, expected.sum())
    np.testing.assert_allclose(forces, reference_forces(atoms), atol=1e-10)


def test_calculator_default_device(saved_model):
    calculator = MetatomicCalculator(saved_model)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert calculator.parameters["device"] is None
    assert next(calculator.model().buffers()).device.type == expected
    assert math.isfinite(calculator.get_potential_energy(copper_atoms()))
