"""Figures drawn from a run's files, so they can be redrawn from any run folder later."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dlrun.io import atomic_write


def plot_curves(rows: Sequence[dict[str, float]], path: Path, title: str = "") -> None:
    """Loss and accuracy per epoch, train and test, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in rows]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for split, style in (("train", "-o"), ("test", "--s")):
        loss_ax.plot(epochs, [row[f"{split}_loss"] for row in rows], style, label=split)
        acc_ax.plot(epochs, [row[f"{split}_acc"] for row in rows], style, label=split)
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=100))
    plt.close(fig)
