"""Time one training epoch and one test pass three ways, plus dlrun's threading.

    python benchmarks/bench_epoch.py [--reps 3] [--quick]

For LeNet (experiment=lenet_fashion) and the dropout MLP (experiment=dropout_mlp) on
Fashion-MNIST, on the CPU:

  classic  torchvision's FashionMNIST with ToTensor(), a DataLoader (batch 256, shuffle,
           num_workers=0) and the tutorials' loop (loss.item() and accuracy every step).
  dlrun    the config composed as `dlrun experiment=...` would compose it, the objects built
           by dlrun's registries, and `dlrun.training.engine.fit` run one epoch at a time; the
           times are the ones fit reports (timings.csv's train_seconds and test_seconds).
  floor    forward + backward + step on ONE batch already on the device, repeated for an
           epoch's worth of samples; the test floor repeats a forward pass the same way.

Every figure is the median of --reps repetitions after one warm-up. Then dlrun's LeNet
epoch with one torch thread against the default. --quick: one repetition, a quarter of the
data. (Startup times: bench_startup.py.)

Without the real Fashion-MNIST files (data/FashionMNIST/raw, $DLRUN_DATA or Debian's copy)
scikit-learn's 8x8 digits, upsampled to 28x28 and tiled to 60,000/10,000 samples, are written
as IDX files into a temporary folder and read through the same code; the output says so.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torch import nn

REPO = Path(__file__).resolve().parents[1]
BATCH = 256
TRAIN_N, TEST_N = 60_000, 10_000

# Wide enough for the tables when the output goes to a file or a pipe.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)


@dataclass(frozen=True)
class Bench:
    key: str
    title: str
    experiment: str


BENCHES = (
    Bench("lenet", "LeNet (sigmoid, avg pool, xavier, SGD lr 0.9, batch 256)", "lenet_fashion"),
    Bench(
        "mlp",
        "dropout MLP (784-256-256-10 relu, dropout 0.2/0.5, SGD lr 0.5, batch 256)",
        "dropout_mlp",
    ),
)


@dataclass
class Timing:
    """Medians over the repetitions (seconds)."""

    train: float
    test: float
    total: float
    reps: int


@dataclass
class Results:
    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)


# --- measuring -------------------------------------------------------------------------


def measure(epoch: Callable[[], tuple[float, float]], reps: int) -> Timing:
    """One warm-up call, then `reps` calls; each returns (train seconds, test seconds)."""
    epoch()
    runs = [epoch() for _ in range(reps)]
    return Timing(
        train=statistics.median(r[0] for r in runs),
        test=statistics.median(r[1] for r in runs),
        total=statistics.median(r[0] + r[1] for r in runs),
        reps=reps,
    )


# --- data ------------------------------------------------------------------------------


def find_data(tmp: Path) -> tuple[Path, str]:
    """The folder holding FashionMNIST/raw/ in torchvision's layout, and where it came from."""
    from dlrun.data.vision import FASHION_MNIST, IDX_FILES, load_idx_dataset

    roots = [Path(os.environ["DLRUN_DATA"])] if os.environ.get("DLRUN_DATA") else []
    roots.append(REPO / "data")
    for root in roots:
        raw = root / "FashionMNIST" / "raw"
        if all((raw / name).is_file() for name in IDX_FILES):
            return root, f"Fashion-MNIST, real files in {raw}"
    for system_dir in map(Path, FASHION_MNIST.system_dirs):
        if all((system_dir / f"{name}.gz").is_file() for name in IDX_FILES):
            root = roots[0]
            load_idx_dataset(FASHION_MNIST, root, download=False)  # decompresses into root
            return root, f"Fashion-MNIST, real files ({system_dir}, decompressed into {root})"
    return write_digits_stand_in(tmp), (
        "FALLBACK: Fashion-MNIST files not found; scikit-learn's digits upsampled to 28x28 "
        f"and tiled to {TRAIN_N:,}/{TEST_N:,} samples (same sizes, NOT Fashion-MNIST)"
    )


def write_digits_stand_in(tmp: Path) -> Path:
    """scikit-learn's digits as Fashion-MNIST-sized IDX files, for both loaders to read."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16
    images = F.interpolate(images, size=(28, 28), mode="bilinear", align_corners=False)
    pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8).squeeze(1)
    labels = torch.tensor(digits.target, dtype=torch.uint8)
    cut = len(labels) * 4 // 5
    raw = tmp / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, part, n in (("train", slice(0, cut), TRAIN_N), ("t10k", slice(cut, None), TEST_N)):
        index = torch.arange(n) % len(labels[part])
        for kind, array in (
            ("images-idx3", pixels[part][index]),
            ("labels-idx1", labels[part][index]),
        ):
            header = struct.pack(">I", 0x800 | array.ndim)
            header += b"".join(struct.pack(">I", size) for size in array.shape)
            (raw / f"{prefix}-{kind}-ubyte").write_bytes(header + array.numpy().tobytes())
    return tmp


# --- a: the classic loop ---------------------------------------------------------------


def classic_model(key: str) -> nn.Module:
    """The tutorials' models, written and initialised as they write them."""
    if key == "lenet":
        net = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5, padding=2),
            nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.Sigmoid(),
            nn.Linear(120, 84),
            nn.Sigmoid(),
            nn.Linear(84, 10),
        )
        init, lr = nn.init.xavier_uniform_, 0.9
    else:
        net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 256),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(256, 256),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(256, 10),
        )
        init, lr = (lambda w: nn.init.normal_(w, std=0.01)), 0.5
    for module in net.modules():
        if isinstance(module, nn.Linear | nn.Conv2d):
            init(module.weight)
    net.lr = lr
    return net


def classic_epoch(key: str, root: Path, n_train: int, n_test: int):
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    def dataset(train: bool, n: int):
        data = datasets.FashionMNIST(
            str(root), train=train, transform=transforms.ToTensor(), download=False
        )
        return data if n >= len(data) else Subset(data, range(n))

    train_iter = DataLoader(dataset(True, n_train), batch_size=BATCH, shuffle=True, num_workers=0)
    test_iter = DataLoader(dataset(False, n_test), batch_size=BATCH, shuffle=False, num_workers=0)
    net = classic_model(key)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(net.parameters(), lr=net.lr)

    def train_epoch() -> tuple[float, float]:
        net.train()
        total_loss, correct, seen = 0.0, 0, 0
        for x, y in train_iter:
            y_hat = net(x)
            loss = loss_fn(y_hat, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(y)
            correct += (y_hat.argmax(dim=1) == y).sum().item()
            seen += len(y)
        return total_loss / seen, correct / seen

    def test_pass() -> tuple[float, float]:
        net.eval()
        total_loss, correct, seen = 0.0, 0, 0
        with torch.no_grad():
            for x, y in test_iter:
                y_hat = net(x)
                total_loss += loss_fn(y_hat, y).item() * len(y)
                correct += (y_hat.argmax(dim=1) == y).sum().item()
                seen += len(y)
        return total_loss / seen, correct / seen

    def epoch() -> tuple[float, float]:
        start = time.perf_counter()
        train_epoch()
        middle = time.perf_counter()
        test_pass()
        return middle - start, time.perf_counter() - middle

    return epoch


# --- b: dlrun's loop -------------------------------------------------------------------


@dataclass
class DlrunSetup:
    cfg: object
    state: object
    train: object
    test: object
    task: object
    options: object
    n_train: int
    n_test: int

    def epoch(self) -> tuple[float, float]:
        """One epoch through `fit`, as a run calls it; fit's own timings."""
        from dlrun.training.engine import fit

        self.options.epochs = self.state.epoch + 1
        fit(self.state, self.train, self.test, self.task, self.options)
        timings = self.options.hooks.reports[-1].timings
        return timings["train_seconds"], timings["test_seconds"]


def dlrun_setup(experiment: str, root: Path, quarter: bool) -> DlrunSetup:
    """Data, model, optimizer and loop options from the recipe's own setup steps."""
    import tempfile

    from dlrun.config.composition import compose
    from dlrun.config.options.trainer import DataPath
    from dlrun.recipe.recipe import Recipe
    from dlrun.training.options import RunHooks

    class Reports(RunHooks):
        def __init__(self) -> None:
            self.reports = []

        def end_epoch(self, state, report) -> None:
            self.reports.append(report)

    overrides = [f"experiment={experiment}", "trainer.device=cpu", f"dataset.root={root}"]
    # The progress bar is drawn on a terminal only; left off so that timings do not depend
    # on where the output goes.
    overrides.append("trainer.progress=false")
    if quarter:
        overrides += [f"trainer.max_train_samples={TRAIN_N // 4}"]
        overrides += [f"trainer.max_test_samples={TEST_N // 4}"]
    cfg = compose(overrides)
    assert cfg.trainer.data_path is DataPath.tensor, "the tensor path is dlrun's default"
    recipe = Recipe(cfg, tempfile.mkdtemp(prefix="bench-epoch-"))
    recipe.setup_runtime()
    recipe.setup_data()
    recipe.setup_state()
    options = recipe.loop_options(hooks=Reports())
    train, test = recipe.train_split, recipe.test_split
    return DlrunSetup(cfg, recipe.state, train, test, recipe.task, options, len(train), len(test))


# --- c: the compute floor --------------------------------------------------------------


def floor_epoch(setup: DlrunSetup):
    """Forward + backward + step on one preloaded float batch, an epoch's worth of samples."""
    model = copy.deepcopy(setup.state.model)
    optimizer = torch.optim.SGD(model.parameters(), lr=setup.cfg.optimizer.lr)
    batch, eval_batch = setup.options.batch_size, setup.options.eval_batch_size
    x_train, y_train = next(iter(setup.train.batches(batch)))
    x_test, _ = next(iter(setup.test.batches(eval_batch)))
    # Full batches, then one batch of the remainder: exactly the epoch's samples.
    train_sizes = [batch] * (setup.n_train // batch) + [setup.n_train % batch]
    test_sizes = [eval_batch] * (setup.n_test // eval_batch) + [setup.n_test % eval_batch]
    train_sizes, test_sizes = [n for n in train_sizes if n], [n for n in test_sizes if n]

    def epoch() -> tuple[float, float]:
        model.train()
        start = time.perf_counter()
        for n in train_sizes:
            loss = F.cross_entropy(model(x_train[:n]), y_train[:n])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        middle = time.perf_counter()
        model.eval()
        with torch.inference_mode():
            for n in test_sizes:
                model(x_test[:n])
        return middle - start, time.perf_counter() - middle

    return epoch, len(train_sizes), len(test_sizes)


# --- output ----------------------------------------------------------------------------


def table(bench: Bench, timings: dict[str, Timing], notes: dict[str, str]) -> Table:
    t = Table(title=bench.title, title_justify="left")
    t.add_column("loop")
    t.add_column("train epoch s", justify="right")
    t.add_column("test pass s", justify="right")
    t.add_column("train+test s", justify="right")
    t.add_column("what", overflow="fold")
    for name, timing in timings.items():
        t.add_row(
            name, f"{timing.train:.3f}", f"{timing.test:.3f}", f"{timing.total:.3f}", notes[name]
        )
    c, d, f = timings["classic"], timings["dlrun"], timings["floor"]
    t.add_section()
    t.add_row(
        "classic/dlrun", *(f"{a / b:.2f}x" for a, b in pairs(c, d)), "how much faster dlrun is"
    )
    t.add_row(
        "dlrun/floor", *(f"{a / b:.2f}x" for a, b in pairs(d, f)), "dlrun's overhead over compute"
    )
    return t


def pairs(a: Timing, b: Timing) -> list[tuple[float, float]]:
    return [(a.train, b.train), (a.test, b.test), (a.total, b.total)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions (median); default 3")
    parser.add_argument("--quick", action="store_true", help="1 repetition, a quarter of the data")
    args = parser.parse_args()
    reps = 1 if args.quick else args.reps
    if reps < 1:
        parser.error("--reps must be >= 1")
    n_train, n_test = (TRAIN_N // 4, TEST_N // 4) if args.quick else (TRAIN_N, TEST_N)
    started = time.perf_counter()
    summary = Results()
    default_threads = torch.get_num_threads()

    console.rule("bench_epoch")
    header = [
        f"torch {torch.__version__}, python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch threads {default_threads}, device cpu",
        f"mode: {'quick' if args.quick else 'full'}; median of {reps} repetition(s) after one "
        f"warm-up; {n_train:,} train / {n_test:,} test samples",
        "load average at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    ]
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        root, source = find_data(Path(tmp))
        header.insert(1, f"data: {source}")
        for line in header:
            console.print(line)
            summary.add(line)

        setups = {}
        for bench in BENCHES:
            console.print(f"\n[bold]{bench.title}[/]: measuring classic, dlrun, floor...")
            timings, notes = {}, {}
            timings["classic"] = measure(classic_epoch(bench.key, root, n_train, n_test), reps)
            notes["classic"] = (
                "torchvision FashionMNIST + ToTensor, DataLoader(256, shuffle, 0 workers)"
            )
            setup = dlrun_setup(bench.experiment, root, quarter=args.quick)
            assert (setup.n_train, setup.n_test) == (n_train, n_test)
            setups[bench.key] = setup
            timings["dlrun"] = measure(setup.epoch, reps)
            notes["dlrun"] = (
                f"dlrun.training.engine.fit, experiment={bench.experiment} (batch "
                f"{setup.options.batch_size}, eval batch {setup.options.eval_batch_size})"
            )
            epoch, train_steps, test_steps = floor_epoch(setup)
            timings["floor"] = measure(epoch, reps)
            notes["floor"] = (
                f"one preloaded batch: {train_steps} train steps, {test_steps} test forwards"
            )
            console.print(table(bench, timings, notes))
            for name, timing in timings.items():
                summary.add(
                    f"{bench.key:5s} {name:7s} train {timing.train:7.3f} s  "
                    f"test {timing.test:6.3f} s  train+test {timing.total:7.3f} s"
                )
            c, d, f = timings["classic"], timings["dlrun"], timings["floor"]
            for label, (a, b) in (("classic/dlrun", (c, d)), ("dlrun/floor", (d, f))):
                ratios = [x / y for x, y in pairs(a, b)]
                summary.add(
                    f"{bench.key:5s} {label:13s} train {ratios[0]:.2f}x  test {ratios[1]:.2f}x"
                    f"  train+test {ratios[2]:.2f}x"
                )

        console.print(
            f"\n[bold]Threads[/]: dlrun LeNet train epoch, 1 thread vs default ({default_threads})"
        )
        lenet = setups["lenet"]
        torch.set_num_threads(1)
        try:
            one = measure(lenet.epoch, reps)
        finally:
            torch.set_num_threads(default_threads)
        default = measure(lenet.epoch, reps)
        ratio = one.train / default.train
        lines = [
            f"threads torch.get_num_threads() = {default_threads}",
            f"threads lenet dlrun train epoch, 1 thread  {one.train:7.3f} s",
            f"threads lenet dlrun train epoch, {default_threads} threads {default.train:7.3f} s",
            f"threads ratio 1 thread / {default_threads} threads = {ratio:.2f}x",
        ]
        for line in lines:
            console.print(line)
            summary.add(line)

    summary.add("load average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    summary.add(f"benchmark wall time {time.perf_counter() - started:.0f} s")
    console.rule("summary")
    for line in summary.lines:
        console.print(line, markup=False)
    console.rule()


if __name__ == "__main__":
    main()
