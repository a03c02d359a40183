"""A linear model on a SOAP power spectrum, with metatensor operations.

This script fits a linear model ``energy = features @ weights`` on the SOAP power
spectrum of ten QM7 molecules, keeping the metadata and the gradients with respect
to the atomic positions along every step:

1. loads the per-atom power spectrum and keeps a few of its properties
   (``slice``), drops the strain gradients (``remove_gradients``);
2. sums the per-atom features over the atoms of each system
   (``sum_over_samples``) and merges all the blocks into a single one
   (``TensorMap.keys_to_properties``);
3. builds **synthetic** targets: the file contains no energies, so the targets
   are a known random linear combination of the features (``dot``), plus some
   noise (``random_uniform_like``, ``add``, ``multiply``). Their gradients are
   the matching "forces";
4. splits the systems into a training and a test set (``slice``), fits the
   weights on the energies *and* their gradients (``lstsq``), predicts the test
   set (``dot``) and computes the errors with element-wise operations
   (``subtract``, ``pow``, ``mean_over_samples``);
5. fits again with ridge regression, appending regularization rows to the
   training set (``join``);
6. checks that predicting per-atom contributions and summing them afterwards
   gives the same energies and gradients (``dot``, ``sum_over_samples``,
   ``allclose``).

Run it with

.. code-block:: bash

    python examples/linear_model.py

Only ``numpy``, ``metatensor-core`` and ``metatensor-operations`` are needed.
"""

import pathlib

import numpy as np

import metatensor
from metatensor import Labels, TensorBlock, TensorMap


DATA_DIR = pathlib.Path(__file__).parent.parent / "tests" / "data"

# random numbers used for the synthetic targets (random_uniform_like uses the
# global numpy random state)
np.random.seed(0)
RNG = np.random.default_rng(0)

# %%
# Loading the features
# --------------------
#
# The power spectrum has one block per (``center_type``, ``neighbor_1_type``,
# ``neighbor_2_type``), with one row per atom (samples ``system, atom``) and 80
# properties (``l, n_1, n_2``). Ten molecules are too few to fit thousands of
# weights, so we keep the properties with ``l <= 1`` and ``n_1, n_2 <= 1``
# (8 per block), and drop the gradients with respect to the cell strain.

power_spectrum = metatensor.load(DATA_DIR / "qm7-power-spectrum.mts")
print(f"power spectrum: {len(power_spectrum)} blocks, keys {power_spectrum.keys.names}")

selection = Labels(
    ["l", "n_1", "n_2"],
    np.array([[o3_l, n_1, n_2] for o3_l in (0, 1) for n_1 in (0, 1) for n_2 in (0, 1)]),
)
per_atom = metatensor.slice(power_spectrum, axis="properties", selection=selection)
per_atom = metatensor.remove_gradients(per_atom, ["strain"])

# %%
# Per-system features
# -------------------
#
# Summing over the ``atom`` dimension of the samples gives one row per system;
# the gradients with respect to positions are summed too, so they are the
# derivatives of the per-system features. Moving all the keys to the properties
# then gives a single block, where a system missing from some block (a molecule
# without oxygen, say) gets zeros for these features.

per_system = metatensor.sum_over_samples(per_atom, sample_names="atom")
features = per_system.keys_to_properties(per_system.keys.names)
block = features.block()
print("features:", block.values.shape, "samples", block.samples.names)
print("positions gradients:", block.gradient("positions").values.shape)
print("gradient samples:", block.gradient("positions").samples.names)

n_features = block.values.shape[1]

# %%
# Synthetic targets
# -----------------
#
# There are no energies in the file, so we make up a target: a random linear
# combination of the features (with known weights), plus 1 % of uniform noise on
# the energies and their gradients. The weights are a TensorMap with the same
# keys and properties as the features; ``dot`` uses their samples as the
# properties of the result, here a single ``energy`` property. ``dot`` propagates
# the positions gradients, giving the matching (negative) forces.

true_weights = TensorMap(
    features.keys,
    [
        TensorBlock(
            values=RNG.normal(size=(1, n_features)),
            samples=Labels(["energy"], np.array([[0]])),
            components=[],
            properties=block.properties,
        )
    ],
)
clean_targets = metatensor.dot(features, true_weights)

noise_scale = 0.01 * np.std(clean_targets.block().values)
noise = metatensor.random_uniform_like(clean_targets)
noise = metatensor.multiply(metatensor.subtract(noise, 0.5), 2 * noise_scale)
targets = metatensor.add(clean_targets, noise)

# %%
# Fitting
# -------
#
# The first eight systems are used for training, the last two for testing.
# Slicing the samples keeps the gradient rows of the selected systems.
# ``lstsq`` uses the gradients as extra equations: with 8 systems and 136
# weights, the energies alone would not be enough, but each atom brings three
# more equations through the positions gradients. The features are linearly
# dependent (when both neighbor types are the same, the power spectrum is
# symmetric in ``n_1`` and ``n_2``), so the weights are not unique: ``rcond``
# discards the directions with very small singular values, and the fitted
# weights differ from the true ones while giving the same predictions.

train = Labels(["system"], np.arange(8).reshape(-1, 1))
test = Labels(["system"], np.arange(8, 10).reshape(-1, 1))

X_train = metatensor.slice(features, axis="samples", selection=train)
Y_train = metatensor.slice(targets, axis="samples", selection=train)
X_test = metatensor.slice(features, axis="samples", selection=test)
Y_test = metatensor.slice(targets, axis="samples", selection=test)

n_equations = X_train.block().values.shape[0] + np.prod(
    X_train.block().gradient("positions").values.shape[:2]
)
print(f"training: {n_equations} equations for {n_features} weights")

weights = metatensor.lstsq(X_train, Y_train, rcond=1e-10)
print("fitted weights:", weights.block().values.shape)

# %%
# Predictions and errors
# ----------------------
#
# The predictions come with their positions gradients. The root mean square
# error on the energies is computed with operations: the squared error is
# averaged over the systems (``mean_over_samples`` reduces the samples to a
# single row) and the square root taken with ``pow``.


def rmse(predicted: TensorMap, reference: TensorMap) -> float:
    """Root mean square error on the values, with metatensor operations."""
    error = metatensor.remove_gradients(metatensor.subtract(predicted, reference))
    mse = metatensor.mean_over_samples(metatensor.pow(error, 2), "system")
    return float(metatensor.pow(mse, 0.5).block().values[0, 0])


def gradient_rmse(predicted: TensorMap, reference: TensorMap) -> float:
    """Root mean square error on the positions gradients."""
    difference = (
        predicted.block().gradient("positions").values
        - reference.block().gradient("positions").values
    )
    return float(np.sqrt(np.mean(difference**2)))


for name, X, Y in [("train", X_train, Y_train), ("test", X_test, Y_test)]:
    predicted = metatensor.dot(X, weights)
    print(
        f"{name:>5}: energy RMSE = {rmse(predicted, Y):.3e}, "
        f"gradient RMSE = {gradient_rmse(predicted, Y):.3e} "
        f"(target std {np.std(Y.block().values):.3e})"
    )

predicted = metatensor.dot(X_test, weights)
forces = -predicted.block().gradient("positions").values
print("predicted forces on the atoms of the test systems:", forces.shape)

# %%
# Ridge regression
# ----------------
#
# Instead of discarding the small singular values with ``rcond``, ridge
# regression adds a penalty ``alpha * |w|^2`` to the loss. This is the same as
# adding ``sqrt(alpha) * I`` as extra rows of the features, with zeros as
# targets. We build these rows as TensorMaps with the metadata of the training
# set, and append them with ``join``: they are labelled with system indices
# that do not exist in the data (from 1000 on) and have no gradient rows.


def extra_rows(values: np.ndarray, like: TensorMap) -> TensorMap:
    """A map with the keys, properties and gradient components of ``like``,
    containing ``values`` and empty positions gradients."""
    reference = like.block()
    n_rows, n_columns = values.shape
    block = TensorBlock(
        values=values,
        samples=Labels(["system"], 1000 + np.arange(n_rows).reshape(-1, 1)),
        components=[],
        properties=reference.properties,
    )
    gradient = reference.gradient("positions")
    block.add_gradient(
        "positions",
        TensorBlock(
            values=np.zeros((0, 3, n_columns)),
            samples=Labels(gradient.samples.names, np.zeros((0, 3), dtype=np.int32)),
            components=gradient.components,
            properties=reference.properties,
        ),
    )
    return TensorMap(like.keys, [block])


for alpha in [1e-8, 1e-6, 1e-4]:
    X_ridge = metatensor.join(
        [X_train, extra_rows(np.sqrt(alpha) * np.eye(n_features), X_train)],
        axis="samples",
    )
    Y_ridge = metatensor.join(
        [Y_train, extra_rows(np.zeros((n_features, 1)), Y_train)],
        axis="samples",
    )
    ridge_weights = metatensor.lstsq(X_ridge, Y_ridge, rcond=1e-10)
    predicted = metatensor.dot(X_test, ridge_weights)
    print(
        f"ridge alpha={alpha:.0e}: test energy RMSE = {rmse(predicted, Y_test):.3e}, "
        f"gradient RMSE = {gradient_rmse(predicted, Y_test):.3e}"
    )

# %%
# Per-atom contributions
# ----------------------
#
# The model is linear, so it can also predict a contribution for each atom, and
# sum them afterwards. Applying ``dot`` before ``sum_over_samples`` instead of
# after gives the same energies and the same gradients.

atomic_features = per_atom.keys_to_properties(per_atom.keys.names)
atomic_energies = metatensor.dot(atomic_features, weights)
print("atomic contributions:", atomic_energies.block().values.shape)

energies = metatensor.sum_over_samples(atomic_energies, "atom")
assert metatensor.allclose(
    energies, metatensor.dot(features, weights), rtol=1e-10, atol=1e-10
)
print("sum of the atomic contributions == prediction from the per-system features")
