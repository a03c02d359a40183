"""Batched molecular dynamics of several Cu-Al systems in TorchSim, with a
metatensor atomistic model.

Export the example model first (``python ../many_body_model.py model.pt``), then
run ``python run_torchsim.py model.pt`` (``--help`` lists the options). Three
different periodic systems (sizes, compositions and cells) are integrated
together with TorchSim's NVE integrator: each step evaluates all of them in one
call of the model. The script prints the total energy of each system every 10
steps.
"""

import argparse

import ase.build
import numpy as np
import torch
import torch_sim as ts

from metatensor.torch.atomistic.torch_sim import MetatensorModel


def cu_al_systems():
    """Three different Cu-Al cells, as ASE ``Atoms``."""
    rng = np.random.default_rng(0)

    copper = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    copper.numbers[rng.choice(len(copper), 8, replace=False)] = 13

    aluminium = ase.build.bulk("Al", "fcc", a=4.05).repeat((3, 3, 2))
    aluminium.numbers[:3] = 29

    alloy = ase.build.bulk("CuAl", "cesiumchloride", a=3.0).repeat((3, 2, 2))
    alloy.set_cell(alloy.cell.array + [[0.0, 0.3, 0.0], [0.0, 0.0, 0.0], [0.2, 0, 0]])

    systems = [copper, aluminium, alloy]
    for atoms in systems:
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
    return systems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="the saved model, e.g. model.pt")
    parser.add_argument("--steps", type=int, default=200, help="MD steps")
    parser.add_argument("--timestep", type=float, default=2.0, help="in fs")
    args = parser.parse_args(argv)

    model = MetatensorModel(args.model, compute_stress=False)
    state = ts.io.atoms_to_state(cu_al_systems(), model.device, model.dtype)

    units = ts.units.MetalUnits
    dt = torch.tensor(args.timestep * 1e-3 * units.time, dtype=model.dtype)
    kT = torch.tensor(300 * units.temperature, dtype=model.dtype)
    init, update = ts.nve(model=model, dt=dt, kT=kT, seed=1)

    state = init(state)
    total_energies = []
    for step in range(args.steps + 1):
        if step > 0:
            state = update(state)
        kinetic = ts.calc_kinetic_energy(
            masses=state.masses, momenta=state.momenta, system_idx=state.system_idx
        )
        total_energies.append((state.energy + kinetic).tolist())
        if step % 10 == 0:
            energies = "  ".join(f"{e:12.6f}" for e in total_energies[-1])
            print(f"step {step:5d}  total energies (eV): {energies}")

    total_energies = np.array(total_energies)
    drift = np.abs(total_energies - total_energies[0]).max(axis=0)
    print("largest change of the total energy (eV):", drift)
    return state, total_energies


if __name__ == "__main__":
    main()
