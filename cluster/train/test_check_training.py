"""Tests of the set-up's training check: the tiny step trains, and a step that does not train
(a non-finite loss, no gradient) is refused."""
from __future__ import annotations

from typing import Any, Sequence

import pytest

import check_training
import lora_train


def test_the_tiny_step_lowers_the_loss() -> None:
    before, after = check_training.tiny_step(bf16=False)
    assert after < before


def test_a_non_finite_loss_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real = lora_train.batch_loss

    def poisoned(model: Any, batch: Sequence[lora_train.Example], share_prefix: bool, pad_id: int) -> tuple[Any, int]:
        loss, tokens = real(model, batch, share_prefix, pad_id)
        return loss * float("nan"), tokens

    monkeypatch.setattr(lora_train, "batch_loss", poisoned)
    with pytest.raises(RuntimeError, match="not finite"):
        check_training.tiny_step(bf16=False)


def test_a_step_whose_loss_reaches_no_adapter_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real = lora_train.batch_loss

    def detached(model: Any, batch: Sequence[lora_train.Example], share_prefix: bool, pad_id: int) -> tuple[Any, int]:
        loss, tokens = real(model, batch, share_prefix, pad_id)
        return loss.detach().requires_grad_(True), tokens

    monkeypatch.setattr(lora_train, "batch_loss", detached)
    with pytest.raises(RuntimeError, match="no gradient"):
        check_training.tiny_step(bf16=False)
