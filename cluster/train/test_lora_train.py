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


def test_a_long_example_keeps_its_completion_in_the_loss() -> None:
    # Regression: the prompt boundary was counted before left truncation, so an example longer
    # than max_length kept a boundary past its completion and trained on the end token alone.
    encode = lambda text: [ord(c) for c in text]
    [example] = lora_train.tokenize([("p" * 20, "abc")], encode, end_token=0, max_length=10)
    assert len(example.ids) == 10
    assert example.ids[-4:] == (97, 98, 99, 0)
    assert example.prompt_length == 6  # the prompt lost its first 14 tokens, the completion none
    completion = [example.ids[t] for t in range(example.prompt_length, len(example.ids))]
    assert completion == [97, 98, 99, 0]


def test_an_example_whose_completion_does_not_fit_is_refused_and_counted() -> None:
    encode = lambda text: [ord(c) for c in text]
    refused: list[int] = []
    examples = lora_train.tokenize([("p", "x" * 12), ("pp", "ok")], encode, end_token=0, max_length=10,
                                   refused=refused.append)
    assert [e.ids for e in examples] == [(112, 112, 111, 107, 0)]
    assert refused == [1]  # the first pair (0-based index 0 → line 1) did not fit


def test_every_example_refused_is_an_error() -> None:
    encode = lambda text: [ord(c) for c in text]
    with pytest.raises(ValueError, match=r"no example fits max_length 4"):
        lora_train.tokenize([("p", "long completion")], encode, end_token=0, max_length=4)


def test_a_loss_that_is_not_finite_stops_training() -> None:
    torch = pytest.importorskip("torch")
    lora_train.check_finite(torch.tensor(1.5), step=3)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(FloatingPointError, match=r"step 3: the loss is (nan|inf)"):
            lora_train.check_finite(torch.tensor(bad), step=3)


def test_weights_load_strictly() -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    source = transformers.LlamaForCausalLM(config)
    target = transformers.LlamaForCausalLM(config)
    state = source.state_dict()
    # a tied output head may be absent (it is the embedding)
    lora_train.load_weights(target, {k: v for k, v in state.items() if k != "lm_head.weight"})
    assert torch.equal(target.model.embed_tokens.weight, source.model.embed_tokens.weight)
    missing = {k: v for k, v in state.items() if "layers.0.mlp.up_proj" not in k}
    with pytest.raises(ValueError, match=r"missing.*up_proj"):
        lora_train.load_weights(target, missing)
    with pytest.raises(ValueError, match=r"unexpected.*extra"):
        lora_train.load_weights(target, {**state, "extra.weight": torch.zeros(1)})


def test_max_length_is_an_argument() -> None:
    args = lora_train.parse(["--data", "d", "--base", "b", "--output", "o", "--converter", "c", "--max-length", "256"])
    assert args.max_length == 256
