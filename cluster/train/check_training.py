#!/usr/bin/env python3
"""Proves that the training environment can train on this machine's CPU: one tiny LoRA step.

A torch that imports can still die at its first matrix product (a kernel chosen for an
instruction this machine advertises but cannot execute), so cluster/setup-trainer runs this on
every run: a random two-layer Llama with LoRA on the seven projections, as `lora_train.py`
builds it, one forward and backward pass through `lora_train.batch_loss` under the same bf16
autocast, one AdamW step, and a second forward pass. It takes a few seconds.

Exit status 0 with one line saying what ran; 1 with one line saying what failed (a non-finite
loss, no gradient reaching the adapters). A crash (SIGILL, say) is reported by the caller from
the exit status.
"""
from __future__ import annotations

import math
import sys
import time

import lora_train
from lora_train import Example


def tiny_step(bf16: bool = True) -> tuple[float, float]:
    """Runs the step; returns the loss before and after it. Raises RuntimeError when the step
    does not train."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    model = get_peft_model(LlamaForCausalLM(config), LoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    model.train()
    batch = [Example(ids=(1, 5, 9, 13, 17, 21, 25, 2), prompt_length=4), Example(ids=(1, 5, 9, 30, 31, 32, 2), prompt_length=4)]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)

    def loss_now() -> "torch.Tensor":
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, _ = lora_train.batch_loss(model, batch, share_prefix=True, pad_id=0)
        return loss

    before = loss_now()
    if not math.isfinite(float(before.detach())):
        raise RuntimeError(f"the loss is not finite ({float(before.detach())})")
    before.backward()
    gradients = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    if not all(bool(torch.isfinite(g).all()) for g in gradients):
        raise RuntimeError("a gradient is not finite")
    if not gradients or not any(float(g.abs().sum()) > 0 for g in gradients):
        raise RuntimeError("no gradient reached the LoRA adapters")
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        after = loss_now()
    values = float(before.detach()), float(after)
    if not all(math.isfinite(v) for v in values):
        raise RuntimeError(f"the loss is not finite ({values[0]} before the step, {values[1]} after)")
    return values


def main() -> int:
    started = time.monotonic()
    try:
        import torch

        before, after = tiny_step()
    except Exception as error:  # any failure is the one line the caller prints
        print(f"a tiny LoRA training step failed on this CPU: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"torch {torch.__version__} ran a tiny LoRA training step on the CPU (loss {before:.3f} -> {after:.3f}, "
          f"{time.monotonic() - started:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
