"""Turn `trainer.device` into a torch.device, with an error that says what is available."""

from __future__ import annotations

import re

import torch

from dlrun.errors import DlrunError

ALLOWED = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(spec: str) -> torch.device:
    spec = spec.strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if re.fullmatch(r"cuda(:\d+)?", spec):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= count:
            raise DlrunError(
                f"trainer.device={spec} but this machine has {count} CUDA device(s). "
                f"Use trainer.device=auto or trainer.device=cpu."
            )
        return torch.device(spec)
    if spec == "mps":
        if not torch.backends.mps.is_available():
            raise DlrunError(
                "trainer.device=mps but MPS is not available here. Use trainer.device=auto."
            )
        return torch.device("mps")
    raise DlrunError(f"trainer.device={spec!r} is not a device: use {ALLOWED}.")
