"""Figures drawn from a run's files, so they can be redrawn from any run folder later."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun.outputs.io import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TITLES = {"loss": "loss", "acc": "accuracy", "ppl": "perplexity"}


def plot_curves(
    rows: Sequence[dict[str, float]], path: Path, title: str = "", log_loss: bool = False
) -> None:
    """curves.png: one panel per metric (loss, accuracy, perplexity...), train and test."""
    fig = curves_figure(rows, title, log_loss)
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=100))


def curves_figure(
    rows: Sequence[dict[str, float]], title: str = "", log_loss: bool = False
) -> Figure:
    """The figure of curves.png, unsaved. Made without pyplot, so that no backend changes
    and a notebook shows it inline."""
    from matplotlib.figure import Figure

    names = [k.removeprefix("train_") for k in rows[0] if k.startswith("train_")]
    names = [n for n in names if f"test_{n}" in rows[0]]
    epochs = [row["epoch"] for row in rows]
    fig = Figure(figsize=(5 * len(names), 4))
    axes = fig.subplots(1, len(names), squeeze=False)
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
    return fig


def plot_gradients(rows: Sequence[dict[str, Any]], path: Path, title: str = "") -> None:
    """Gradient norm of every layer over training steps, input side dark, output side light."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    layers = list(dict.fromkeys(row["layer"] for row in rows))
    colours = colormaps["viridis"]
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    for depth, layer in enumerate(layers):
        mine = [r for r in rows if r["layer"] == layer]
        colour = colours(depth / max(len(layers) - 1, 1))
        values = [max(r["grad_norm"], 1e-30) for r in mine]  # a zero norm shows at the floor
        ax.plot([r["step"] for r in mine], values, "-o", ms=3, color=colour, label=str(layer))
    ax.set(xlabel="step", ylabel="gradient norm", yscale="log")
    ax.set_title(title or "gradient norm per layer (dark: input side, light: output side)")
    if len(layers) <= 12:
        ax.legend(fontsize="small", title="layer")
    else:
        mapping = ScalarMappable(cmap=colours, norm=Normalize(0, len(layers) - 1))
        bar = fig.colorbar(mapping, ax=ax, ticks=[0, len(layers) - 1])
        bar.ax.set_yticklabels([str(layers[0]), str(layers[-1])])
        bar.set_label("layer, input to output")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=100))


def plot_lr_find(
    rows: Sequence[dict[str, float]], path: Path, title: str = "", suggested: float | None = None
) -> None:
    """lr_find.png: the range test's loss against the learning rate on a log axis, raw and
    smoothed, the suggested rate marked."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    lrs = [row["lr"] for row in rows]
    ax.plot(lrs, [row["loss"] for row in rows], color="0.7", lw=1, label="loss")
    ax.plot(lrs, [row["smoothed"] for row in rows], color="C0", lw=2, label="smoothed")
    if suggested is not None:
        ax.axvline(suggested, color="C3", ls="--", label=f"suggested {suggested:.2g}")
    finite = [row["smoothed"] for row in rows if row["smoothed"] == row["smoothed"]]
    if finite:  # the divergence at the end would flatten the part that matters
        low, start = min(finite), finite[0]
        ax.set_ylim(low - 0.1 * (start - low + 1e-12), start + 0.5 * (start - low + 1e-12))
    ax.set(xscale="log", xlabel="learning rate", ylabel="training loss")
    ax.set_title(title or "learning-rate range test")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=100))
