"""Underfitting, overfitting or a good fit, from the final train metric and the train-test gap.

Classification reads accuracies. Regression and language models read losses against a
baseline that learns nothing: predicting the training mean, or each character's frequency.
"""

from __future__ import annotations

from typing import Any

from dlrun.config.options.tools import DebugConfig
from dlrun.config.schema import VerdictConfig

UNDERFITTING, OVERFITTING, GOOD_FIT = "underfitting", "overfitting", "good fit"


def fit_verdict(
    final: dict[str, float], task: str, cfg: VerdictConfig, baseline_loss: float | None
) -> dict[str, Any]:
    if task == "classification":
        train, test = final["train_acc"], final["test_acc"]
        gap = train - test
        figures = {"train_acc": train, "test_acc": test, "gap": gap}
        if train < cfg.underfit_train_acc:
            why = f"train acc {train:.3f} < {cfg.underfit_train_acc}"
            return _verdict(UNDERFITTING, why, figures)
        if gap > cfg.overfit_acc_gap:
            why = f"train acc - test acc = {gap:.3f} > {cfg.overfit_acc_gap}"
            return _verdict(OVERFITTING, why, figures)
        why = f"train acc {train:.3f}, gap {gap:.3f} <= {cfg.overfit_acc_gap}"
        return _verdict(GOOD_FIT, why, figures)

    train, test = final["train_loss"], final["test_loss"]
    figures = {"train_loss": train, "test_loss": test, "baseline_loss": baseline_loss}
    if baseline_loss and train > cfg.underfit_loss_ratio * baseline_loss:
        why = (
            f"train loss {train:.4g} > {cfg.underfit_loss_ratio} x baseline loss "
            f"{baseline_loss:.4g}"
        )
        return _verdict(UNDERFITTING, why, figures)
    ratio = test / train if train > 0 else float("inf")
    figures["test_train_ratio"] = ratio
    if ratio > cfg.overfit_loss_ratio:
        why = f"test loss / train loss = {ratio:.3g} > {cfg.overfit_loss_ratio}"
        return _verdict(OVERFITTING, why, figures)
    why = f"test loss / train loss = {ratio:.3g} <= {cfg.overfit_loss_ratio}"
    return _verdict(GOOD_FIT, why, figures)


def _verdict(verdict: str, because: str, figures: dict[str, Any]) -> dict[str, Any]:
    return {"verdict": verdict, "because": because, "figures": figures}


def memorised(
    final: dict[str, float], task: str, cfg: DebugConfig, baseline_loss: float | None
) -> dict[str, Any]:
    """debug=overfit's verdict: whether a model learnt the few batches it trained on again
    and again, scored on those same batches in eval mode (the `test_` columns)."""
    if task == "classification":
        acc = final["test_acc"]
        learnt = acc >= cfg.accuracy
        because = f"accuracy {acc:.4f} {'>=' if learnt else '<'} {cfg.accuracy}"
    elif task == "language_model":
        ppl = final["test_ppl"]
        learnt = ppl <= cfg.perplexity
        because = f"perplexity {ppl:.4g} {'<=' if learnt else '>'} {cfg.perplexity}"
    else:
        loss, bound = final["test_loss"], cfg.loss_ratio * (baseline_loss or 0.0)
        learnt = loss <= bound
        because = (
            f"loss {loss:.4g} {'<=' if learnt else '>'} {cfg.loss_ratio} x the loss of predicting "
            f"the mean ({baseline_loss:.4g})"
        )
    return {"learnt": learnt, "because": f"{because} on the batches it trained on"}
