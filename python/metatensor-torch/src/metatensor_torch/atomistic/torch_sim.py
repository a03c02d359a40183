"""Run an :py:class:`AtomisticModel` in `TorchSim
<https://radical-ai.github.io/torch-sim/>`_, on batches of systems.

:py:class:`MetatensorModel` is a TorchSim model (a subclass of
``torch_sim.models.interface.ModelInterface``): given a ``SimState`` holding
many systems, it evaluates all of them in one call of the model and returns
their energies, the forces and the stresses, in TorchSim's units (eV, Å,
eV/Å³). It works with TorchSim's integrators, optimizers and runners.

Tested with ``torch-sim-atomistic`` 0.3.0 (the version installed for Python
3.11; later versions need Python 3.12). Importing this module imports
``torch_sim`` when it is installed; without it, the module imports (for the
documentation) but :py:class:`MetatensorModel` can not be created.
"""

from typing import Any, Dict, Optional

import torch

from ._evaluator import ModelEvaluator


try:
    from torch_sim.models.interface import ModelInterface as _TorchSimModel

    HAS_TORCH_SIM = True
except ImportError:  # pragma: no cover (depends on the environment)
    _TorchSimModel = torch.nn.Module
    HAS_TORCH_SIM = False


__all__ = ["MetatensorModel"]


class MetatensorModel(_TorchSimModel):
    """A TorchSim model evaluating an :py:class:`AtomisticModel` on all the
    systems of a ``SimState`` at once.

    The atomic types are the ``atomic_numbers`` of the state, all systems are
    periodic or none is (TorchSim's ``pbc`` is one boolean). Forces and the
    stress come from automatic differentiation of the energy; the stress is
    :math:`\\sigma = -W / V` with the virial :math:`W` (the convention of ASE
    and TorchSim), only for periodic states.

    :param model: the model, as the path to a saved model or an
        :py:class:`AtomisticModel` (Python or scripted), with an ``energy``
        output
    :param device: the torch device to run the model on (by default the
        model's preferred device); create the ``SimState`` on the same device
        (``model.device``) and with ``model.dtype``
    :param check_consistency: run the consistency checks of the model at each
        evaluation
    :param compute_forces: compute the forces
    :param compute_stress: compute the stress (needed by the cell optimizers
        and barostats of TorchSim)
    """

    def __init__(
        self,
        model: Any,
        *,
        device: Optional[str] = None,
        check_consistency: bool = False,
        compute_forces: bool = True,
        compute_stress: bool = True,
    ):
        if not HAS_TORCH_SIM:
            raise ImportError(
                "MetatensorModel needs TorchSim: install it with "
                "`pip install torch-sim-atomistic`"
            )
        super().__init__()
        self.evaluator = ModelEvaluator(
            model, device=device, check_consistency=check_consistency
        )
        self._device = self.evaluator.device
        self._dtype = self.evaluator.dtype
        self._compute_forces = bool(compute_forces)
        self._compute_stress = bool(compute_stress)
        self._memory_scales_with = "n_atoms_x_density"

    def forward(self, state: Any, **kwargs: Any) -> Dict[str, torch.Tensor]:
        """Energies (``(n_systems,)``, eV), forces (``(n_atoms, 3)``, eV/Å) and
        stresses (``(n_systems, 3, 3)``, eV/Å³) of the systems of ``state``.

        :param state: a ``torch_sim.SimState``, or a dictionary with its
            ``positions``, ``cell`` (TorchSim's column-vector convention),
            ``pbc``, ``atomic_numbers`` and ``system_idx``
        :param kwargs: not used (part of TorchSim's interface)
        """
        if isinstance(state, dict):
            from torch_sim.state import SimState

            masses = torch.ones_like(state["positions"][:, 0])
            state = SimState(**{"masses": masses, **state})

        positions = state.positions.detach()
        types = state.atomic_numbers
        system_idx = state.system_idx
        pbc = bool(state.pbc)
        if self._compute_stress and not pbc:
            raise ValueError(
                "the stress is only defined for periodic systems: create the "
                "MetatensorModel with `compute_stress=False` for this state"
            )
        # TorchSim stores the cell vectors as columns
        cells = state.cell.detach().mT
        if not pbc:
            cells = torch.zeros_like(cells)
        n_systems = cells.shape[0]

        # the atoms of each system are contiguous in a SimState
        counts = torch.bincount(system_idx, minlength=n_systems).tolist()
        periodic = torch.tensor([pbc] * 3)
        systems = [
            (types_i, positions_i, cells[i], periodic)
            for i, (types_i, positions_i) in enumerate(
                zip(types.split(counts), positions.split(counts))
            )
        ]
        results = self.evaluator.compute_batch(
            systems,
            forces=self._compute_forces,
            virial=self._compute_stress,
            numpy=False,
        )

        dtype = positions.dtype
        device = positions.device
        outputs: Dict[str, torch.Tensor] = {}
        energies = [torch.as_tensor(r["energy"], dtype=torch.float64) for r in results]
        outputs["energy"] = torch.stack([e.reshape(()) for e in energies]).to(
            device=device, dtype=dtype
        )
        if self._compute_forces:
            forces = torch.cat([r["forces"] for r in results])
            outputs["forces"] = forces.to(device=device, dtype=dtype)
        if self._compute_stress:
            virials = torch.stack([r["virial"] for r in results])
            volumes = torch.linalg.det(cells.to(virials)).abs()
            stress = -virials / volumes.reshape(-1, 1, 1)
            outputs["stress"] = stress.to(device=device, dtype=dtype)
        return outputs
