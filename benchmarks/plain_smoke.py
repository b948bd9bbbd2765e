"""The work of `dlrun dataset=digits model=mlp trainer=smoke`, as a plain PyTorch script.

scikit-learn's digits resized to 28x28, 512 training and 256 test samples, an MLP with one
hidden layer of 256, SGD lr 0.1, batch 64, 2 epochs, a checkpoint and one plot of the
curves. bench_startup.py times this script beside the dlrun command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn


def main(out: Path) -> None:
    torch.manual_seed(0)
    bunch = load_digits()
    images = torch.from_numpy(bunch.images).float().unsqueeze(1) / 16.0
    images = F.interpolate(images, size=(28, 28), mode="bilinear").clamp(0, 1)
    targets = torch.from_numpy(bunch.target).long()
    order = torch.randperm(len(targets))
    train, test = order[:512], order[-256:]
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = []
    for _ in range(2):
        model.train()
        for batch in train[torch.randperm(len(train))].split(64):
            loss = F.cross_entropy(model(images[batch]), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(images[test]).argmax(1) == targets[test]).float().mean().item()
        history.append(accuracy)
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, out / "last.pt")
    fig, ax = plt.subplots()
    ax.plot(range(1, len(history) + 1), history)
    fig.savefig(out / "curves.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
