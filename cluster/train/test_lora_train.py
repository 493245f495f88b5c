"""Tests of the LoRA engine's pieces that need no model file: data reading, tokenized
boundaries, the learning-rate schedule, and that sharing a batch's prefix gives the same loss
and gradients as running every example whole (on a tiny random Llama)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import lora_train
from lora_train import Example


def test_read_data_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"prompt": "Q: 1+1?\nA:", "completion": " 2"}) + "\n{not json}\n")
    with pytest.raises(ValueError, match=r"train.jsonl:2"):
        lora_train.read_data(path)


def test_read_data_refuses_an_empty_completion(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"prompt": "p", "completion": ""}) + "\n")
    with pytest.raises(ValueError, match=r":1: prompt and completion"):
        lora_train.read_data(path)


def test_tokenize_marks_the_prompt_and_appends_the_end_token() -> None:
    encode = lambda text: [ord(c) for c in text]  # one token per character
    [example] = lora_train.tokenize([("ab", "cd")], encode, end_token=0, max_length=100)
    assert example.ids == (97, 98, 99, 100, 0)
    assert example.prompt_length == 2


def test_common_prefix_stays_inside_every_prompt() -> None:
    batch = [Example(ids=(1, 2, 3, 4, 5), prompt_length=3), Example(ids=(1, 2, 3, 9), prompt_length=2)]
    assert lora_train.common_prefix_length(batch) == 2
    assert lora_train.common_prefix_length([Example(ids=(1, 2), prompt_length=1), Example(ids=(7, 2), prompt_length=1)]) == 0


def test_learning_rate_warms_up_then_decays_to_zero() -> None:
    rates = [lora_train.learning_rate(step, 10, 1.0, 2) for step in range(10)]
    assert rates[0] == pytest.approx(0.5) and rates[1] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(rates[1:], rates[2:]))
    assert lora_train.learning_rate(10, 10, 1.0, 2) == pytest.approx(0.0)


def test_shared_prefix_gives_the_same_loss_and_gradients() -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    model = transformers.LlamaForCausalLM(config).eval()
    shared = (3, 4, 5, 6, 7, 8)
    batch = [Example(ids=shared + (10, 11, 12), prompt_length=7), Example(ids=shared + (20, 21), prompt_length=6),
             Example(ids=shared + (9, 30, 31, 32, 33), prompt_length=8)]
    assert lora_train.common_prefix_length(batch) == 6

    def run(share: bool) -> tuple[float, list]:
        model.zero_grad()
        loss, _ = lora_train.batch_loss(model, batch, share_prefix=share, pad_id=0)
        loss.backward()
        return float(loss.detach()), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    whole_loss, whole_grads = run(False)
    shared_loss, shared_grads = run(True)
    assert shared_loss == pytest.approx(whole_loss, rel=1e-5)
    assert len(whole_grads) == len(shared_grads)
    for a, b in zip(whole_grads, shared_grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
