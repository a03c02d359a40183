"""The figures of the demo, made with matplotlib (Agg backend, PNG files)."""

from typing import Dict, Optional

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def parity_plot(predictions: Dict[str, object], path: str) -> None:
    """Predicted against reference energies and forces, for the training and
    test sets.

    :param predictions: ``{"train": Predictions, "test": Predictions}`` (see
        ``training.py``)
    :param path: the PNG file to write
    """
    plt = _pyplot()
    figure, (energy_axis, force_axis) = plt.subplots(1, 2, figsize=(10, 4.6))
    styles = {"train": ("tab:blue", 0.5), "test": ("tab:orange", 0.9)}
    for name, result in predictions.items():
        color, alpha = styles[name]
        errors = result.rmse()
        energy_axis.scatter(
            result.energy_reference.numpy(),
            result.energy.numpy(),
            s=12,
            color=color,
            alpha=alpha,
            label=f"{name} (RMSE {errors['energy']:.1f} meV/atom)",
        )
        force_axis.scatter(
            result.forces_reference.numpy().reshape(-1),
            result.forces.numpy().reshape(-1),
            s=3,
            color=color,
            alpha=alpha,
            label=f"{name} (RMSE {errors['forces']:.0f} meV/Å)",
        )
    for axis, title, unit in [
        (energy_axis, "energy (without the composition baseline)", "eV/atom"),
        (force_axis, "force components", "eV/Å"),
    ]:
        low, high = axis.get_xlim()
        axis.plot([low, high], [low, high], color="black", linewidth=0.8)
        axis.set_xlim(low, high)
        axis.set_ylim(low, high)
        axis.set_xlabel(f"EMT ({unit})")
        axis.set_ylabel(f"model ({unit})")
        axis.set_title(title)
        axis.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def energy_plot(
    trajectory: Dict[str, np.ndarray],
    path: str,
    reference: Optional[Dict[str, np.ndarray]] = None,
) -> None:
    """Kinetic, potential and total energy along an NVE trajectory, and the
    deviation of the total energy from its initial value.

    :param trajectory: the output of ``dynamics.run_nve`` with the model
    :param path: the PNG file to write
    :param reference: the same run with EMT, shown in the lower panel
    """
    plt = _pyplot()
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(8, 6.4), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    time = trajectory["time"]
    start = trajectory["total"][0]
    top.plot(time, trajectory["kinetic"], label="kinetic", color="tab:red")
    top.plot(time, trajectory["potential"] - start, label="potential", color="tab:blue")
    top.plot(time, trajectory["total"] - start, label="total", color="black")
    top.set_ylabel("energy - initial total energy (eV/atom)")
    top.set_title("NVE molecular dynamics with the exported model")
    top.legend(loc="center right")

    bottom.plot(
        time,
        1000 * (trajectory["total"] - start),
        color="black",
        label="exported model",
    )
    if reference is not None:
        bottom.plot(
            reference["time"],
            1000 * (reference["total"] - reference["total"][0]),
            color="tab:green",
            linestyle="--",
            label="EMT (same initial state)",
        )
    bottom.set_ylabel("total energy drift (meV/atom)")
    bottom.set_xlabel("time (ps)")
    bottom.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
