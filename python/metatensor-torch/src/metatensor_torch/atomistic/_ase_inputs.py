"""Inputs of atomistic models taken from ASE ``Atoms`` (masses, momenta,
charges, ``atoms.info`` and ``atoms.arrays`` entries, ...), as the TensorMaps
that :py:meth:`System.add_data` expects. Only imported by
:py:mod:`.ase_calculator`."""

import re
from typing import Any, Dict, List, Tuple

import ase
import numpy as np
import torch

from .._classes import Labels, TensorBlock, TensorMap
from ._outputs import ModelOutput


# ASE units for the inputs a model can request: ASE uses eV, Angstrom, u and the
# derived time unit Angstrom * sqrt(u / eV)
INPUT_UNITS = {
    "momentum": "(eV*u)^(1/2)",
    "mass": "u",
    "velocity": "(eV/u)^(1/2)",
    "charge": "e",
    "spin_multiplicity": "",
}

IDENTIFIER_RE = re.compile(r"[^A-Za-z0-9_]")


def watched_keys(inputs: Dict[str, ModelOutput]) -> Tuple[List[str], List[str]]:
    """The ``atoms.info`` keys and ``atoms.arrays`` names the inputs depend on."""
    info: List[str] = []
    arrays: List[str] = []
    for name, request in inputs.items():
        if name == "momentum" or name == "velocity":
            arrays += ["momenta", "masses"]
        elif name == "mass":
            arrays.append("masses")
        elif name == "charge":
            if request.sample_kind == "system":
                info.append("charge")
            else:
                arrays += ["charges", "initial_charges"]
        elif name == "spin_multiplicity":
            info += ["spin_multiplicity", "spin"]
        elif name == "ase::tags":
            arrays.append("tags")
        elif name.startswith("ase::arrays::"):
            arrays.append(name[len("ase::arrays::") :])
        elif name.startswith("ase::info::"):
            info.append(name[len("ase::info::") :])
    return sorted(set(info)), sorted(set(arrays))


def same_value(first: Any, second: Any) -> bool:
    try:
        return bool(np.array_equal(np.asarray(first), np.asarray(second)))
    except Exception:
        return first == second


def ase_input(
    atoms: ase.Atoms,
    name: str,
    request: ModelOutput,
    dtype: torch.dtype,
    device: torch.device,
) -> TensorMap:
    """The input ``name`` requested by the model, from ``atoms``, as a
    single-block TensorMap (samples ``system`` or ``system, atom``, an ``xyz``
    component for vectors, one property named after the input) with its unit in
    the ``"unit"`` info."""
    per_atom = True
    unit = INPUT_UNITS.get(name, "")
    if name == "momentum":
        values = atoms.get_momenta()
    elif name == "mass":
        values = atoms.get_masses()
    elif name == "velocity":
        values = atoms.get_velocities()
    elif name == "charge":
        if request.sample_kind == "system":
            per_atom = False
            values = np.array([atoms.info.get("charge", 0.0)], dtype=np.float64)
        elif "charges" in atoms.arrays:
            values = atoms.arrays["charges"]
        else:
            values = atoms.get_initial_charges()
    elif name == "spin_multiplicity":
        per_atom = False
        value = atoms.info.get("spin_multiplicity", atoms.info.get("spin", 1))
        values = np.array([value], dtype=np.float64)
    elif name == "ase::initial_magmoms":
        values = atoms.get_initial_magnetic_moments()
    elif name == "ase::initial_charges":
        values = atoms.get_initial_charges()
    elif name == "ase::tags":
        values = atoms.get_tags()
    elif name.startswith("ase::arrays::"):
        key = name[len("ase::arrays::") :]
        if key not in atoms.arrays:
            raise ValueError(
                f"the model requested the input '{name}', but the atoms have no "
                f"'{key}' array (available: {sorted(atoms.arrays.keys())})"
            )
        values = atoms.arrays[key]
    elif name.startswith("ase::info::"):
        per_atom = False
        key = name[len("ase::info::") :]
        if key not in atoms.info:
            raise ValueError(
                f"the model requested the input '{name}', but the atoms have no "
                f"'{key}' entry in `info` (available: {sorted(atoms.info.keys())})"
            )
        values = np.asarray(atoms.info[key], dtype=np.float64)[np.newaxis, ...]
    else:
        raise ValueError(
            f"the model requested the input '{name}', which this calculator can "
            "not get from ASE atoms"
        )
    if request.unit != "" and unit == "" and not name.startswith("ase::"):
        unit = request.unit

    tensor = torch.tensor(
        np.asarray(values, dtype=np.float64), dtype=dtype, device=device
    )
    n_samples = len(atoms) if per_atom else 1
    tensor = tensor.reshape(n_samples, -1) if tensor.dim() == 1 else tensor
    if per_atom:
        atom = torch.arange(n_samples, dtype=torch.int32, device=device)
        samples = Labels(
            ["system", "atom"],
            torch.stack([torch.zeros_like(atom), atom], dim=1),
            assume_unique=True,
        )
    else:
        samples = Labels(
            ["system"], torch.zeros((1, 1), dtype=torch.int32, device=device)
        )

    property_name = IDENTIFIER_RE.sub("_", name.split("::")[-1]) or "values"
    components = []
    if tensor.dim() == 2 and tensor.shape[1] == 3 and _is_vector(name):
        # (n, 3) vectors get an xyz component and a single property
        tensor = tensor.reshape(n_samples, 3, 1)
        components = [_xyz(device)]
        properties = Labels(
            [property_name], torch.zeros((1, 1), dtype=torch.int32, device=device)
        )
    else:
        for i, size in enumerate(tensor.shape[1:-1]):
            components.append(
                Labels(
                    [f"{property_name}_component_{i}"],
                    torch.arange(size, dtype=torch.int32, device=device).reshape(-1, 1),
                )
            )
        properties = Labels(
            [property_name],
            torch.arange(tensor.shape[-1], dtype=torch.int32, device=device).reshape(
                -1, 1
            ),
        )
    block = TensorBlock(
        values=tensor, samples=samples, components=components, properties=properties
    )
    tensor_map = TensorMap(
        Labels("_", torch.zeros((1, 1), dtype=torch.int32, device=device)), [block]
    )
    tensor_map.set_info("unit", unit)
    return tensor_map


def _is_vector(name: str) -> bool:
    return name in ("momentum", "velocity", "ase::initial_magmoms") or (
        name.startswith("ase::arrays::")
    )


def _xyz(device: torch.device) -> Labels:
    return Labels(
        ["xyz"], torch.tensor([[0], [1], [2]], dtype=torch.int32, device=device)
    )
