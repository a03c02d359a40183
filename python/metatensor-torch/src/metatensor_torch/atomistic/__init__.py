"""``metatensor.torch.atomistic``: define, export and run machine learning
interatomic potentials in simulation engines.

This is the atomistic model interface of metatensor (the API of
``metatomic.torch``), written with the TorchScript classes of
:py:mod:`metatensor.torch`: a model written in Python is wrapped in
:py:class:`AtomisticModel`, saved to one file with its metadata, and run by a
simulation engine (for example through the ASE calculator in
:py:mod:`metatensor.torch.atomistic.ase_calculator`).

The TorchScript classes of this module (``System``, ``NeighborListOptions``,
``ModelOutput``, ...) are compiled when it is imported. Their qualified names
and attribute layouts are part of the model-file ABI (documented in each
module).
"""

# ---- units and quantities ----------------------------------------------------

# ---- model description classes -----------------------------------------------

# ---- systems, neighbor lists and their serialization -------------------------

# ---- atomistic models ----------------------------------------------------------

__all__ = []
