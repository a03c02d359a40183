"""End-to-end example of metatensor: reference data, a descriptor with
gradients, a model trained on energies and forces, and molecular dynamics with
the exported model.

1. **Reference data**: periodic fcc Cu, Al and Cu-Al alloy cells (rattled,
   strained, with a vacancy) with energies, forces and stresses computed at run
   time with the EMT potential of ASE (``reference_data.py``). Nothing is
   downloaded.
2. **Descriptor**: a smooth radial and angular descriptor for each pair of
   neighbor types, written with torch (``descriptor.py``), stored as a
   ``metatensor.torch.TensorMap`` with one block per center type and gradients
   with respect to the atomic positions; saved to ``descriptor.mts`` and loaded
   back (also with the numpy-only ``metatensor`` core).
3. **Training**: one small neural network per center type built with
   ``metatensor.torch.learn.nn`` (``energy_model.py``), trained on energies and
   forces (``training.py``). The forces come from the gradient blocks of the
   descriptor, carried through the networks and the sum over atoms by
   metatensor. The errors against EMT are reported in a table.
4. **Export and MD**: the model (descriptor included) is wrapped in
   ``metatensor.torch.atomistic.AtomisticModel`` (``atomistic_model.py``),
   saved, loaded back, and runs NVE molecular dynamics with ASE through
   ``MetatomicCalculator``; the energy drift is reported and compared with the
   same run with EMT (``dynamics.py``).

The outputs are written in the ``--output`` directory: ``results.md`` (the
tables), ``results.json``, ``reference.xyz`` (the reference data),
``descriptor.mts``, ``model.pt`` (the exported model), ``parity.png`` and
``md-energy.png``. ``--quick`` runs a shortened version (fewer structures,
fewer training iterations, 100 MD steps) in well under a minute.

Run it with

.. code-block:: bash

    python examples/demo/demo.py --output <directory> [--quick]

It needs torch, ``metatensor-core``, ``metatensor-operations``,
``metatensor-learn``, ``metatensor-torch``, ase, vesin, matplotlib and tqdm.
"""

import argparse
import copy
import json
import os
import pathlib
import sys
import time
import warnings

import numpy as np
import torch


HERE = pathlib.Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import atomistic_model  # noqa: E402
import dynamics  # noqa: E402
import plots  # noqa: E402
import reference_data  # noqa: E402
import training  # noqa: E402
from descriptor import PowerSpectrum  # noqa: E402
from energy_model import EnergyModel, baseline_energies, fit_baseline  # noqa: E402
from tqdm import tqdm  # noqa: E402

import metatensor  # noqa: E402
import metatensor.torch as mts  # noqa: E402
from metatensor.torch.atomistic import (  # noqa: E402
    NeighborListOptions,
    compute_neighbor_list,
    load_atomistic_model,
    systems_to_torch,
)
from metatensor.torch.atomistic.ase_calculator import MetatomicCalculator  # noqa: E402
from metatensor.torch.learn.data import DataLoader, IndexedDataset  # noqa: E402


ATOMIC_TYPES = [13, 29]

SETTINGS = {
    "full": {
        "structures_per_group": 12,
        "test_fraction": 0.2,
        "cutoff": 5.5,
        "n_radial": 4,
        "hidden": [24, 24],
        "iterations": 150,
        "energy_weight": 100.0,
        "md_steps": 1000,
        "md_repeat": 3,
        "timestep": 2.0,
        "temperature": 600.0,
    },
    "quick": {
        "structures_per_group": 2,
        "test_fraction": 0.25,
        "cutoff": 5.5,
        "n_radial": 3,
        "hidden": [8, 8],
        "iterations": 40,
        "energy_weight": 100.0,
        "md_steps": 100,
        "md_repeat": 2,
        "timestep": 2.0,
        "temperature": 600.0,
    },
}


def progress(description: str):
    """A function wrapping an iterable in a tqdm progress bar."""

    def wrap(iterable):
        return tqdm(iterable, desc=f"{description:<24}", leave=True, file=sys.stdout)

    return wrap


def pairs_of(atoms, options: NeighborListOptions):
    """The types, the atoms of each pair and the pair vectors of the full
    neighbor list of ``atoms``, computed with ``metatensor.torch.atomistic``."""
    system = systems_to_torch(atoms, dtype=torch.float64)
    neighbors = compute_neighbor_list(system, options, length_unit="angstrom")
    pairs = neighbors.samples.values.to(torch.long)
    return (
        system.types,
        pairs[:, 0],
        pairs[:, 1],
        neighbors.values.reshape(-1, 3),
    )


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines.extend("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output",
        type=pathlib.Path,
        default=HERE.parent / "output" / "demo",
        help="directory for the results (default: examples/output/demo)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="run the short version (for CI)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="number of torch threads (default 1: the tensors are small, and one "
        "thread gives the same numbers on every machine)",
    )
    args = parser.parse_args(argv)
    settings = SETTINGS["quick" if args.quick else "full"]
    output = args.output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    timings = {}
    start = time.perf_counter()
    results = {"mode": "quick" if args.quick else "full", "settings": settings}

    # ---- 1. reference data ---------------------------------------------------
    step = time.perf_counter()
    structures = reference_data.generate(
        settings["structures_per_group"],
        seed=args.seed,
        progress=progress("EMT reference data"),
    )
    split = reference_data.split(
        len(structures), settings["test_fraction"], seed=args.seed
    )
    _write_reference(structures, output / "reference.xyz")
    results["data"] = {
        "structures": len(structures),
        "atoms": int(sum(len(atoms) for atoms in structures)),
        "train": len(split["train"]),
        "test": len(split["test"]),
    }
    timings["reference data"] = time.perf_counter() - step

    # ---- 2. descriptor with gradients, saved and loaded back ------------------
    step = time.perf_counter()
    descriptor = PowerSpectrum(
        ATOMIC_TYPES, settings["cutoff"], settings["n_radial"]
    ).to(torch.float64)
    options = NeighborListOptions(
        cutoff=settings["cutoff"], full_list=True, strict=True
    )
    options.length_unit = "angstrom"
    pairs = [
        pairs_of(atoms, options) for atoms in progress("neighbor lists")(structures)
    ]

    # standardization of the features, from the training structures
    descriptor.fit_standardization([pairs[i] for i in split["train"]])

    # features and gradients are stored in float32 for the training
    descriptors = {
        i: descriptor.compute_with_gradients(i, *pairs[i]).to(dtype=torch.float32)
        for i in progress("descriptor + gradients")(range(len(structures)))
    }
    test_descriptor = mts.join([descriptors[i] for i in split["test"]], axis="samples")
    mts.save(str(output / "descriptor.mts"), test_descriptor)
    reloaded = mts.load(str(output / "descriptor.mts"))
    if not mts.equal(reloaded, test_descriptor):
        raise RuntimeError("the descriptor changed when saved and loaded back")
    # the same file with the numpy-only metatensor core
    core = metatensor.load(str(output / "descriptor.mts"))
    block = core.block(0)
    results["descriptor"] = {
        "keys": [int(key[0]) for key in core.keys],
        "samples": core.block(0).samples.names,
        "properties": block.properties.names,
        "n_features": len(block.properties),
        "gradient_samples": block.gradient("positions").samples.names,
        "file_size_MB": os.path.getsize(output / "descriptor.mts") / 1e6,
    }
    print(f"\nthe descriptor of the test set, loaded back with numpy: {core}")
    timings["descriptor"] = time.perf_counter() - step

    # ---- 3. training on energies and forces -----------------------------------
    step = time.perf_counter()
    energies = torch.tensor([atoms.info["energy"] for atoms in structures])
    baseline = fit_baseline(
        ATOMIC_TYPES, [pairs[i][0] for i in split["train"]], energies[split["train"]]
    )
    baselines = baseline_energies(ATOMIC_TYPES, [p[0] for p in pairs], baseline)
    targets = training.Targets(
        energies=(energies - baselines).to(torch.float32),
        forces=torch.tensor(
            np.concatenate([atoms.arrays["forces"] for atoms in structures]),
            dtype=torch.float32,
        ),
        n_atoms=torch.tensor([len(atoms) for atoms in structures]),
    )
    # the model is trained in float32, with a copy of the descriptor
    model = EnergyModel(copy.deepcopy(descriptor), settings["hidden"])
    model = model.to(torch.float32)

    # the data loader joins the maps of a batch in one TensorMap; L-BFGS uses
    # the whole training set as one batch
    dataset = IndexedDataset(
        sample_id=split["train"], descriptor=[descriptors[i] for i in split["train"]]
    )
    loader = DataLoader(dataset, batch_size=len(dataset))
    train_descriptor = next(iter(loader)).descriptor
    log = training.train_lbfgs(
        model,
        train_descriptor,
        targets,
        iterations=settings["iterations"],
        energy_weight=settings["energy_weight"],
        progress=progress("training (L-BFGS)"),
    )
    predictions = {
        "train": training.predict(model, [train_descriptor], targets),
        "test": training.predict(model, [reloaded], targets),
    }
    results["errors"] = {
        name: {"rmse": p.rmse(), "mae": p.mae()} for name, p in predictions.items()
    }
    results["training"] = {"evaluations": len(log), "final_loss": log[-1]}
    plots.parity_plot(predictions, str(output / "parity.png"))
    timings["training"] = time.perf_counter() - step
    sections = [_data_section(results), _errors_section(results)]
    print("\n" + sections[-1])

    # ---- 4. export, reload, check, molecular dynamics ---------------------------
    step = time.perf_counter()
    model_path = output / "model.pt"
    # the exported model runs in float64, with the original descriptor and the
    # composition baseline
    model = model.to(torch.float64)
    model.descriptor = descriptor
    model.set_baseline(baseline)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        atomistic_model.export(model, str(model_path))
        exported = load_atomistic_model(str(model_path))
    calculator = MetatomicCalculator(exported)
    results["export"] = _check_exported(
        calculator, structures, split["test"], predictions["test"], targets
    )
    timings["export and checks"] = time.perf_counter() - step
    sections.append(_export_section(results))
    print("\n" + sections[-1])

    step = time.perf_counter()
    initial = dynamics.md_structure(args.seed, repeat=settings["md_repeat"])
    md_settings = dict(
        n_steps=settings["md_steps"],
        timestep=settings["timestep"],
        temperature=settings["temperature"],
        seed=args.seed,
    )
    trajectory = dynamics.run_nve(
        initial,
        MetatomicCalculator(str(model_path)),
        progress=progress("MD, exported model"),
        **md_settings,
    )
    timings["MD (model)"] = time.perf_counter() - step
    step = time.perf_counter()
    from ase.calculators.emt import EMT

    reference = dynamics.run_nve(
        initial, EMT(), progress=progress("MD, EMT"), **md_settings
    )
    timings["MD (EMT)"] = time.perf_counter() - step
    results["md"] = {
        "atoms": len(initial),
        "composition": initial.get_chemical_formula(),
        "steps": settings["md_steps"],
        "timestep_fs": settings["timestep"],
        "initial_temperature_K": settings["temperature"],
        "mean_temperature_K": float(trajectory["temperature"].mean()),
        "model": dynamics.drift(trajectory),
        "emt": dynamics.drift(reference),
        "ms_per_step": 1000 * timings["MD (model)"] / settings["md_steps"],
    }
    np.savetxt(
        output / "md-energy.dat",
        np.stack(
            [trajectory[k] for k in ["time", "kinetic", "potential", "total"]], axis=1
        ),
        header="time/ps kinetic/(eV/atom) potential/(eV/atom) total/(eV/atom)",
    )
    plots.energy_plot(trajectory, str(output / "md-energy.png"), reference)

    sections.append(_md_section(results))
    print("\n" + sections[-1])

    timings["total"] = time.perf_counter() - start
    results["timings_s"] = timings
    sections.append(_timings_section(results))
    print(sections[-1])
    with open(output / "results.json", "w") as file:
        json.dump(results, file, indent=2)
    with open(output / "results.md", "w") as file:
        file.write("\n".join(sections))
    print(f"results written to {output}")


def _write_reference(structures, path: pathlib.Path) -> None:
    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for atoms in structures:
        frame = atoms.copy()
        frame.calc = SinglePointCalculator(
            frame,
            energy=atoms.info["energy"],
            forces=atoms.arrays["forces"],
            stress=atoms.info["stress"],
        )
        del frame.info["energy"], frame.info["stress"]
        del frame.arrays["forces"]
        frames.append(frame)
    ase.io.write(path, frames, format="extxyz")


def _check_exported(calculator, structures, test, predictions, targets):
    """Energies, forces and stresses of the test structures with the exported
    model through the ASE calculator, compared with the training code (same
    model) and with EMT."""
    energies, forces, stresses = [], [], []
    for index in test:
        atoms = structures[index].copy()
        atoms.calc = calculator
        energies.append(atoms.get_potential_energy() / len(atoms))
        forces.append(atoms.get_forces())
        stresses.append(atoms.get_stress())
    energies = np.array(energies)
    forces = np.concatenate(forces)
    stresses = np.array(stresses)

    emt_energies = np.array(
        [structures[i].info["energy"] / len(structures[i]) for i in test]
    )
    emt_forces = np.concatenate([structures[i].arrays["forces"] for i in test])
    emt_stresses = np.array([structures[i].info["stress"] for i in test])

    # the training code predicts energies without the composition baseline
    offsets = (
        emt_energies - targets.energies[test].numpy() / targets.n_atoms[test].numpy()
    )
    training_energies = predictions.energy.numpy().astype(np.float64) + offsets
    # `predictions` are sorted by structure and atom, as `forces`
    training_forces = predictions.forces.numpy().astype(np.float64)

    gpa = 160.21766208  # eV/Å^3 -> GPa
    return {
        "max_energy_difference_meV_per_atom": 1000
        * float(np.abs(energies - training_energies).max()),
        "max_force_difference_meV_per_A": 1000
        * float(np.abs(forces - training_forces).max()),
        "energy_rmse_meV_per_atom": 1000
        * float(np.sqrt(np.mean((energies - emt_energies) ** 2))),
        "force_rmse_meV_per_A": 1000
        * float(np.sqrt(np.mean((forces - emt_forces) ** 2))),
        "stress_rmse_GPa": gpa
        * float(np.sqrt(np.mean((stresses - emt_stresses) ** 2))),
    }


def _data_section(results) -> str:
    data = results["data"]
    return "\n".join(
        [
            f"# metatensor demo results ({results['mode']} run)",
            "",
            f"Reference data: {data['structures']} EMT structures "
            f"({data['atoms']} atoms), {data['train']} for training and "
            f"{data['test']} for testing.",
            "",
        ]
    )


def _errors_section(results) -> str:
    rows = []
    for name, errors in results["errors"].items():
        rmse, mae = errors["rmse"], errors["mae"]
        rows.append(
            [
                name,
                f"{rmse['energy']:.2f}",
                f"{mae['energy']:.2f}",
                f"{rmse['forces']:.1f}",
                f"{mae['forces']:.1f}",
            ]
        )
    header = [
        "set",
        "energy RMSE (meV/atom)",
        "energy MAE (meV/atom)",
        "force RMSE (meV/Å)",
        "force MAE (meV/Å)",
    ]
    return "\n".join(["## Errors against EMT", "", markdown_table(header, rows), ""])


def _export_section(results) -> str:
    export = results["export"]
    rows = [
        ["energy RMSE vs EMT (meV/atom)", f"{export['energy_rmse_meV_per_atom']:.2f}"],
        ["force RMSE vs EMT (meV/Å)", f"{export['force_rmse_meV_per_A']:.1f}"],
        [
            "stress RMSE vs EMT, not trained (GPa)",
            f"{export['stress_rmse_GPa']:.2f}",
        ],
        [
            "largest energy difference with the training code (meV/atom)",
            f"{export['max_energy_difference_meV_per_atom']:.1e}",
        ],
        [
            "largest force difference with the training code (meV/Å)",
            f"{export['max_force_difference_meV_per_A']:.1e}",
        ],
    ]
    return "\n".join(
        [
            "## Exported model (test set, through the ASE calculator)",
            "",
            markdown_table(["quantity", "value"], rows),
            "",
        ]
    )


def _md_section(results) -> str:
    md = results["md"]
    header = [
        "potential",
        "drift at the end (meV/atom)",
        "largest deviation (meV/atom)",
        "linear drift (meV/atom/ps)",
    ]
    rows = [
        [
            name,
            f"{md[key]['final']:+.3f}",
            f"{md[key]['max']:.3f}",
            f"{md[key]['slope']:+.3f}",
        ]
        for name, key in [("exported model", "model"), ("EMT", "emt")]
    ]
    return "\n".join(
        [
            f"## NVE molecular dynamics ({md['composition']}, {md['atoms']} atoms, "
            f"{md['steps']} steps of {md['timestep_fs']} fs, initial velocities "
            f"at {md['initial_temperature_K']:.0f} K)",
            "",
            markdown_table(header, rows),
            "",
            f"Mean temperature {md['mean_temperature_K']:.0f} K; "
            f"{md['ms_per_step']:.1f} ms per MD step with the exported model.",
            "",
        ]
    )


def _timings_section(results) -> str:
    rows = [[name, f"{value:.1f}"] for name, value in results["timings_s"].items()]
    return "\n".join(["## Timings", "", markdown_table(["step", "time (s)"], rows), ""])


if __name__ == "__main__":
    main()
