"""Figures drawn from a run's files, so they can be redrawn from any run folder later."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dlrun.io import atomic_write

TITLES = {"loss": "loss", "acc": "accuracy", "ppl": "perplexity"}


def plot_curves(
    rows: Sequence[dict[str, float]], path: Path, title: str = "", log_loss: bool = False
) -> None:
    """One panel per metric (loss, accuracy, perplexity...), train and test per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [k.removeprefix("train_") for k in rows[0] if k.startswith("train_")]
    names = [n for n in names if f"test_{n}" in rows[0]]
    epochs = [row["epoch"] for row in rows]
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for split, style in (("train", "-o"), ("test", "--s")):
            ax.plot(epochs, [row[f"{split}_{name}"] for row in rows], style, label=split)
        label = TITLES.get(name, name)
        ax.set(xlabel="epoch", ylabel=label, title=label)
        if log_loss and name == "loss":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=100))
    plt.close(fig)
