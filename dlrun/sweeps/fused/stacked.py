"""The members' models run forward as one program: torch.func.vmap over their parameters.

Every member keeps its own model, whose parameters stay leaf tensors. Each step stacks
them, runs one copy of the architecture (the template) under vmap with
`functional_call`, and the gradients flow back through the stack to each member's own
leaves. A member's loss depends on its own parameters only, so the gradient of the summed
loss with respect to them is its own loss's gradient.

Dropout draws each member's masks from that member's random state, outside vmap, as
torch draws them on the CPU (`bernoulli_(1 - p)`, then `/ (1 - p)`), so a member's masks
are those of its run alone there; the template multiplies by them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import nn
from torch.func import functional_call, vmap

from dlrun.sweeps.fused.batched import batched_forward
from dlrun.tasks import Task

_masks: list[torch.Tensor] = []  # the masks of the forward in progress, in layer order


class MemberDropout(nn.Module):
    """nn.Dropout in the template: multiplies by the mask its member drew."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * _masks.pop(0) if self.training else x


class StackedModel:
    def __init__(self, models: Sequence[nn.Module], task: Task, sample: torch.Tensor) -> None:
        self.task = task
        self.template = copy.deepcopy(models[0])
        for name, module in list(self.template.named_modules()):
            if isinstance(module, nn.Dropout):
                self.template.set_submodule(name, MemberDropout())
        self.names = [name for name, _ in models[0].named_parameters()]
        self.parameters = [[p for _, p in model.named_parameters()] for model in models]
        self.dropout = [
            [m.p for m in model.modules() if isinstance(m, nn.Dropout)] for model in models
        ]
        self.mask_shapes = self._mask_shapes(sample)
        self._vmapped: dict[tuple, Callable] = {}
        self.batched = batched_forward(models[0])  # None: the whole forward under vmap

    def stacked(self) -> dict[str, torch.Tensor]:
        """Each parameter of every member, stacked along a new first dimension."""
        return {
            name: torch.stack(tensors)
            for name, tensors in zip(self.names, zip(*self.parameters, strict=True), strict=True)
        }

    def draw_masks(self, member: int, batch: int, device: torch.device) -> list[torch.Tensor]:
        """One member's dropout masks for a batch, from the global random state (its own)."""
        masks = []
        for p, shape in zip(self.dropout[member], self.mask_shapes, strict=True):
            mask = torch.empty((batch, *shape), device=device)
            masks.append(mask.bernoulli_(1 - p).div_(1 - p))
        return masks

    def train_step(self, x: torch.Tensor, y: torch.Tensor, masks: Sequence[torch.Tensor]):
        """Every member's loss (M,) and batch sums ({name: (M,)}) for stacked batches."""
        if self.batched is not None:
            return self._vmap(self._scored, (0, 0))(self.batched(self.stacked(), x, masks), y)
        self.template.train()
        return self._vmap(self._train, (0, 0, 0, 0))(self.stacked(), x, y, tuple(masks))

    def eval_sums(self, x: torch.Tensor, y: torch.Tensor, shared: bool):
        """Every member's batch sums on a test batch; `shared`: one batch for all."""
        if self.batched is not None:
            inputs = x.expand(len(self.parameters), *x.shape) if shared else x
            output = self.batched(self.stacked(), inputs, None)
            return self._vmap(self._scored, (0, None if shared else 0))(output, y)[1]
        self.template.eval()
        dims = (0, None, None) if shared else (0, 0, 0)
        return self._vmap(self._eval, dims)(self.stacked(), x, y)[1]

    def _vmap(self, function: Callable, in_dims: tuple) -> Callable:
        key = (function.__name__, in_dims)
        if key not in self._vmapped:
            self._vmapped[key] = vmap(function, in_dims=in_dims)
        return self._vmapped[key]

    def _train(self, params, x, y, masks):
        _masks[:] = list(masks)
        return self._eval(params, x, y)

    def _eval(self, params, x, y):
        """One member's loss and batch sums: the template run on its parameters."""
        output, _ = self.task.forward(partial(functional_call, self.template, params), x, None)
        return self._scored(output, y)

    def _scored(self, output, y):
        loss = self.task.loss(output, y)
        return loss, self.task.batch_sums(output.detach().float(), y, loss.float())

    @torch.no_grad()
    def _mask_shapes(self, sample: torch.Tensor) -> list[tuple[int, ...]]:
        """The input shape of each dropout layer, per sample, in forward order."""
        shapes: list[tuple[int, ...]] = []
        layers = [m for m in self.template.modules() if isinstance(m, MemberDropout)]
        hooks = [
            layer.register_forward_pre_hook(lambda _, inputs: shapes.append(inputs[0].shape[1:]))
            for layer in layers
        ]
        was_training = self.template.training
        self.template.eval()
        try:
            self.task.forward(self.template, sample, None)
        finally:
            self.template.train(was_training)
            for hook in hooks:
                hook.remove()
        return [tuple(shape) for shape in shapes]
