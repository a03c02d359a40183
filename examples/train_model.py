"""Training a small per-block neural network with metatensor-learn.

This script trains a model predicting one number per system from the SOAP power
spectrum of ten QM7 molecules (``tests/data/qm7-power-spectrum.mts``), with the
tools of ``metatensor.learn``:

1. computes per-system features by summing the per-atom power spectrum over the
   atoms of each system (``metatensor.sum_over_samples``), and stores them with
   torch arrays;
2. builds **synthetic** targets: the file contains no energies, so the target of
   each system is a known function of its features,
   ``sum over blocks b of tanh(x_b @ w_b)``, with fixed random weights ``w_b``;
3. puts one TensorMap of features and one TensorMap of targets per system in a
   ``metatensor.learn.Dataset``, split into a training and a validation set, and
   loads them in batches with ``metatensor.learn.DataLoader``, which joins the
   TensorMaps of a batch into one TensorMap;
4. defines a per-block neural network (one small MLP for each block of the
   features) with ``metatensor.learn.nn``: ``Sequential``, ``Linear``, ``Tanh``;
   the contributions of all blocks are added up to give one number per system
   (``TensorMap.keys_to_samples`` and ``metatensor.sum_over_samples``);
5. trains it with a torch optimizer, with a progress bar (``tqdm`` if it is
   installed, a simple text bar otherwise), and saves a plot of the losses
   (``matplotlib`` with the Agg backend, if it is installed).

Ten systems are far too few for a model that generalizes: the point is to show
how the pieces fit together, not to make a useful model.

Run it with

.. code-block:: bash

    python examples/train_model.py --output <directory>

It needs torch, ``metatensor-core``, ``metatensor-operations`` and
``metatensor-learn``; matplotlib for the plot and tqdm for the progress bar are
optional.
"""

import argparse
import pathlib
import sys
import time

import numpy as np
import torch

import metatensor
from metatensor import Labels, TensorBlock, TensorMap
from metatensor.learn import DataLoader, Dataset
from metatensor.learn.nn import Linear, Sequential, Tanh


ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "qm7-power-spectrum.mts"

N_EPOCHS = 250
BATCH_SIZE = 4
N_VALIDATION = 2


# ---------------------------------------------------------------------------
# progress bar: tqdm if it is installed, a simple text bar otherwise
# ---------------------------------------------------------------------------


class TextProgressBar:
    """A minimal replacement for ``tqdm.tqdm(range(total))``."""

    def __init__(self, total: int, desc: str = "", width: int = 30):
        self.total = total
        self.desc = desc
        self.width = width
        self.postfix = ""

    def __iter__(self):
        for i in range(self.total):
            yield i
            done = i + 1
            # about 20 updates in total, to keep logs short
            if done == self.total or done % max(1, self.total // 20) == 0:
                filled = self.width * done // self.total
                bar = "#" * filled + "." * (self.width - filled)
                end = "\n" if done == self.total else ""
                print(
                    f"\r{self.desc} [{bar}] {done}/{self.total} {self.postfix}",
                    end=end,
                    file=sys.stderr,
                    flush=True,
                )

    def set_postfix_str(self, text: str, refresh: bool = True):
        self.postfix = text


def progress_bar(total: int, desc: str):
    try:
        import tqdm
    except ImportError:
        return TextProgressBar(total, desc=desc)
    return tqdm.tqdm(range(total), desc=desc, mininterval=0.5)


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


def load_features() -> TensorMap:
    """Per-system features: the power spectrum summed over the atoms of each
    system, with torch arrays. The blocks are indexed by the types of the
    central atom and of the two neighbors, and have 80 properties each."""
    power_spectrum = metatensor.load(DATA)
    power_spectrum = metatensor.remove_gradients(power_spectrum)
    features = metatensor.sum_over_samples(power_spectrum, "atom")
    return features.to(arrays="torch")


def synthetic_targets(features: TensorMap, seed: int = 0) -> torch.Tensor:
    """The synthetic target of each system: ``sum_b tanh(x_b @ w_b)`` where
    ``x_b`` are the features of the system in block ``b`` (no contribution when
    the system has no atom of this block) and ``w_b`` fixed random weights."""
    generator = torch.Generator().manual_seed(seed)
    n_systems = int(features.block(0).samples.column("system").max()) + 1
    targets = torch.zeros(n_systems, dtype=torch.float64)
    for block in features.blocks():
        n_properties = block.values.shape[1]
        weights = torch.randn(n_properties, generator=generator, dtype=torch.float64)
        contribution = torch.tanh(block.values @ weights / n_properties**0.5 * 4)
        systems = torch.as_tensor(block.samples.column("system"), dtype=torch.int64)
        targets.index_add_(0, systems, contribution)
    return targets


def select_system(features: TensorMap, system: int) -> TensorMap:
    """The features of one system: all the blocks, some of them empty."""
    selection = Labels(["system"], np.array([[system]], dtype=np.int32))
    return metatensor.slice(features, "samples", selection)


def target_tensor(system: int, value: torch.Tensor) -> TensorMap:
    """A TensorMap with the target of one system."""
    block = TensorBlock(
        values=value.reshape(1, 1),
        samples=Labels(["system"], np.array([[system]], dtype=np.int32)),
        components=[],
        properties=Labels(["energy"], np.array([[0]], dtype=np.int32)),
    )
    return TensorMap(Labels.single(), [block])


# ---------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------


class PerBlockModel(torch.nn.Module):
    """One small MLP per block of the features; the outputs of all the blocks
    are added up into one number per system."""

    def __init__(self, in_keys: Labels, in_features: int, hidden: int):
        super().__init__()
        self.mlp = Sequential(
            in_keys,
            Linear(in_keys, in_features, hidden, dtype=torch.float64),
            Tanh(in_keys),
            Linear(in_keys, hidden, 1, dtype=torch.float64),
        )
        self.key_names = in_keys.names

    def forward(self, features: TensorMap) -> TensorMap:
        per_block = self.mlp(features)
        # move the keys to the samples (one block), then sum over them
        merged = per_block.keys_to_samples(self.key_names)
        return metatensor.sum_over_samples(merged, self.key_names)


def mean_squared_error(prediction: TensorMap, target: TensorMap) -> torch.Tensor:
    """Mean squared error between two single-block TensorMaps, matching the
    systems through their samples."""
    prediction = metatensor.sort(prediction, axes="samples")
    target = metatensor.sort(target, axes="samples")
    if prediction.block().samples != target.block().samples:
        raise ValueError("prediction and target are for different systems")
    return torch.mean((prediction.block().values - target.block().values) ** 2)


# ---------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output", default=".", help="folder where to write train_model_loss.png"
    )
    parser.add_argument("--epochs", type=int, default=N_EPOCHS)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    torch.manual_seed(12345)
    # the matrices are tiny: more threads would only add synchronization costs
    torch.set_num_threads(1)

    # 1. per-system features, 2. synthetic targets
    features = load_features()
    targets = synthetic_targets(features)
    n_systems = len(targets)
    print(
        f"features: {len(features)} blocks with keys {features.keys.names}, "
        f"{features.block(0).values.shape[1]} properties, {n_systems} systems"
    )
    print(f"targets: mean {targets.mean():.3f}, standard deviation {targets.std():.3f}")

    # 3. one sample per system in a Dataset, split in training and validation
    systems = torch.randperm(n_systems).tolist()
    validation_systems = systems[:N_VALIDATION]
    training_systems = systems[N_VALIDATION:]

    def make_dataset(selected):
        return Dataset(
            features=[select_system(features, s) for s in selected],
            target=[target_tensor(s, targets[s]) for s in selected],
        )

    training_set = make_dataset(training_systems)
    validation_set = make_dataset(validation_systems)
    print(f"training systems: {training_systems}")
    print(f"validation systems: {validation_systems}")

    training_loader = DataLoader(training_set, batch_size=BATCH_SIZE, shuffle=True)
    validation_loader = DataLoader(validation_set, batch_size=BATCH_SIZE)

    batch = next(iter(training_loader))
    print(
        f"a batch: features with {len(batch.features)} blocks, "
        f"target samples {batch.target.block().samples.column('system').tolist()}"
    )

    # 4. the model
    model = PerBlockModel(features.keys, in_features=80, hidden=8)
    n_parameters = sum(p.numel() for p in model.parameters())
    print(f"model: {len(features)} MLPs, {n_parameters} parameters")

    # 5. training loop
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.99)
    training_losses = []
    validation_losses = []
    progress = progress_bar(args.epochs, desc="training")
    for _ in progress:
        model.train()
        total, count = 0.0, 0
        for batch in training_loader:
            optimizer.zero_grad()
            loss = mean_squared_error(model(batch.features), batch.target)
            loss.backward()
            optimizer.step()
            n_batch = len(batch.target.block().samples)
            total += float(loss) * n_batch
            count += n_batch
        scheduler.step()
        training_losses.append(total / count)

        model.eval()
        with torch.no_grad():
            total, count = 0.0, 0
            for batch in validation_loader:
                loss = mean_squared_error(model(batch.features), batch.target)
                n_batch = len(batch.target.block().samples)
                total += float(loss) * n_batch
                count += n_batch
        validation_losses.append(total / count)

        progress.set_postfix_str(
            f"train {training_losses[-1]:.2e}, validation {validation_losses[-1]:.2e}",
            refresh=False,
        )

    print(
        f"final losses (MSE): training {training_losses[-1]:.3e}, "
        f"validation {validation_losses[-1]:.3e} "
        f"(target variance {targets.var():.3e})"
    )

    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    plot_losses(
        training_losses,
        validation_losses,
        float(targets.var()),
        output / "train_model_loss.png",
    )
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


def plot_losses(training, validation, variance: float, path: pathlib.Path) -> None:
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed, no plot")
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.6), dpi=100)
    epochs = np.arange(1, len(training) + 1)
    axes.semilogy(epochs, training, label="training set (8 systems)")
    axes.semilogy(epochs, validation, label="validation set (2 systems)")
    # the error of a model always predicting the mean of the targets
    axes.axhline(
        variance, color="gray", linestyle="--", label="variance of the targets"
    )
    axes.set_xlabel("epoch")
    axes.set_ylabel("mean squared error")
    axes.set_title("per-block MLP on the QM7 power spectrum (synthetic targets)")
    axes.title.set_fontsize(10)
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    print(f"loss plot saved to {path}")


if __name__ == "__main__":
    sys.exit(main())
