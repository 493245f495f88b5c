#!/usr/bin/env python3
"""LoRA fine-tuning of a GGUF model on a round's data, back to GGUF: the rounds' `lora` engine.

The engine contract (the same for every engine, see docs/rounds.md): read the round's data
(`--data`, JSON lines with `prompt` and `completion`), start from the current model (`--base`,
the GGUF file the samplers serve), write the candidate into `--output` (`model.gguf`), print
progress as JSON lines on standard output (`{"event": "progress", "step", "steps", "loss",
"tokens_per_s", "eta_s"}`), exit non-zero on failure.

How: transformers loads the GGUF file into a torch model (dequantized); PEFT adds LoRA
adapters to all seven projections; the loss covers the completion and its end token only;
AdamW with linear warm-up and cosine decay, gradient clipping at 1.0, bf16 autocast on the CPU.
The adapter is merged, the model saved as a Hugging Face folder and converted back to GGUF by
llama.cpp's `convert_hf_to_gguf.py` of the server's own version (`--converter`).

Speed: every few-shot example starts with the same exemplar block. A batch's longest common
token prefix is run once (with gradient) and its key/value cache shared by the batch's
suffixes, which gives the same loss and gradients as running every example whole (tested)
at a fraction of the tokens.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

IGNORE = -100


@dataclass(frozen=True)
class Example:
    """One tokenized training example: the ids of prompt + completion (+ end token), and how
    many of them belong to the prompt (no loss there)."""

    ids: tuple[int, ...]
    prompt_length: int


def read_data(path: Path) -> list[tuple[str, str]]:
    """(prompt, completion) pairs of a JSONL file; a malformed line is an error naming it."""
    pairs: list[tuple[str, str]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                prompt, completion = item["prompt"], item["completion"]
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise ValueError(f"{path}:{number}: not a prompt/completion line ({error})") from error
            if not isinstance(prompt, str) or not isinstance(completion, str) or not completion:
                raise ValueError(f"{path}:{number}: prompt and completion must be strings, the completion non-empty")
            pairs.append((prompt, completion))
    if not pairs:
        raise ValueError(f"{path}: no training example")
    return pairs


def tokenize(pairs: Iterable[tuple[str, str]], encode: Any, end_token: int | None, max_length: int,
             refused: Callable[[int], None] | None = None) -> list[Example]:
    """Tokenizes prompt + completion whole (so the boundary tokenizes as at sampling time) and
    counts the tokens that belong to the prompt alone.

    An example longer than `max_length` loses tokens from the start of its prompt, never from
    its completion; one whose completion (and end token) leaves no prompt token is refused:
    `refused` gets its 1-based line number. Every example refused is an error."""
    examples: list[Example] = []
    for number, (prompt, completion) in enumerate(pairs, start=1):
        prompt_ids = list(encode(prompt))
        ids = list(encode(prompt + completion))
        boundary = 0
        while boundary < min(len(prompt_ids), len(ids)) and prompt_ids[boundary] == ids[boundary]:
            boundary += 1
        if end_token is not None:
            ids.append(end_token)
        cut = max(0, len(ids) - max_length)
        if cut >= boundary:
            if refused is not None:
                refused(number)
            continue
        examples.append(Example(ids=tuple(ids[cut:]), prompt_length=boundary - cut))
    if not examples:
        raise ValueError(f"no example fits max_length {max_length} with a token of its prompt")
    return examples


def check_finite(loss: Any, step: int) -> None:
    """Stops training on a loss that is NaN or infinite (a diverged or broken model)."""
    value = float(loss.detach())
    if not math.isfinite(value):
        raise FloatingPointError(f"step {step}: the loss is {value}; training stopped")


def load_weights(model: Any, state: dict[str, Any]) -> None:
    """Loads `state` into `model` strictly: a missing or unexpected tensor is an error, except
    the output head of a model whose head is tied to its embedding."""
    result = model.load_state_dict(state, strict=False)
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    missing = [k for k in result.missing_keys if not (tied and k == "lm_head.weight")]
    if missing or result.unexpected_keys:
        raise ValueError(f"the base model's weights do not match its architecture: missing {missing[:5]}, "
                         f"unexpected {list(result.unexpected_keys)[:5]}")
    if tied:
        model.tie_weights()


def common_prefix_length(examples: Sequence[Example]) -> int:
    """The longest token prefix every example of a batch shares, inside every prompt, and
    leaving each example at least one token."""
    if not examples:
        return 0
    limit = min(min(e.prompt_length for e in examples), min(len(e.ids) for e in examples) - 1)
    first = examples[0].ids
    length = 0
    while length < limit and all(e.ids[length] == first[length] for e in examples):
        length += 1
    return length


def learning_rate(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up to `peak`, then cosine decay to zero at `total` steps (step is 0-based)."""
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def batch_loss(model: Any, batch: Sequence[Example], share_prefix: bool, pad_id: int) -> tuple[Any, int]:
    """Mean cross-entropy over the completion tokens of a batch, and the tokens run.

    With `share_prefix`, the batch's common prefix runs once and its cache serves every
    suffix; the result equals running each example whole."""
    import torch
    import torch.nn.functional as functional

    prefix = common_prefix_length(batch) if share_prefix and len(batch) > 1 else 0
    suffixes = [e.ids[prefix:] for e in batch]
    width = max(len(s) for s in suffixes)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), prefix + width), dtype=torch.long)
    for row, (example, suffix) in enumerate(zip(batch, suffixes)):
        input_ids[row, : len(suffix)] = torch.tensor(suffix)
        mask[row, : prefix + len(suffix)] = 1
        # label at position t is the token at t + 1; loss only where that token is completion
        for t in range(len(suffix) - 1):
            if prefix + t + 1 >= example.prompt_length:
                labels[row, t] = suffix[t + 1]
    tokens = prefix + sum(len(s) for s in suffixes)
    if prefix > 0:
        head = model(input_ids=torch.tensor([batch[0].ids[:prefix]]), use_cache=True)
        cache = head.cache
        cache.batch_repeat_interleave(len(batch))
        positions = torch.arange(prefix, prefix + width).unsqueeze(0).expand(len(batch), -1)
        logits = model(input_ids=input_ids, cache=cache, attention_mask=mask, position_ids=positions).logits
        # the prefix's last position predicts each suffix's first token
        first_logits = head.logits[:, -1, :].expand(len(batch), -1)
        first_labels = torch.tensor([s[0] if prefix >= e.prompt_length else IGNORE for e, s in zip(batch, suffixes)])
        all_logits = torch.cat([first_logits.unsqueeze(1), logits], dim=1)
        all_labels = torch.cat([first_labels.unsqueeze(1), labels], dim=1)
    else:
        logits = model(input_ids=input_ids, attention_mask=mask).logits
        all_logits, all_labels = logits, labels
    loss = functional.cross_entropy(all_logits.reshape(-1, all_logits.shape[-1]).float(), all_labels.reshape(-1), ignore_index=IGNORE)
    return loss, tokens


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def load_base(base: Path) -> tuple[Any, Any]:
    """The GGUF file as a plain float32 transformers model (rebuilt from its config: a model
    loaded from GGUF refuses `save_pretrained`) and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(str(base.parent), gguf_file=base.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(base.parent), gguf_file=base.name)
    config = loaded.config
    # The weights are plain floats now: a leftover "gguf" quantization entry would make the
    # saved folder unreadable to the converter.
    if getattr(config, "quantization_config", None) is not None:
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    load_weights(model, loaded.state_dict())
    del loaded
    return model, tokenizer


def train(args: argparse.Namespace) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    started = time.monotonic()
    pairs = read_data(args.data)
    emit("stage", stage="loading the base model", examples=len(pairs))
    model, tokenizer = load_base(args.base)
    refused: list[int] = []
    examples = tokenize(pairs, lambda text: tokenizer(text, add_special_tokens=False)["input_ids"],
                        tokenizer.eos_token_id, args.max_length, refused=refused.append)
    if refused:
        emit("refused", reason=f"the completion does not fit max_length {args.max_length}", examples=len(refused),
             lines=refused[:20])
    model = get_peft_model(model, LoraConfig(
        r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    model.train()
    steps_per_epoch = math.ceil(len(examples) / args.batch_size)
    total = max(1, math.ceil(steps_per_epoch * args.epochs))
    if args.max_steps > 0:
        total = min(total, args.max_steps)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.learning_rate, weight_decay=0.0)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    order: list[int] = []
    tokens_done = 0
    train_started = time.monotonic()
    for step in range(total):
        if len(order) < args.batch_size:
            more = list(range(len(examples)))
            random.shuffle(more)
            order += more
        batch = [examples[i] for i in order[: args.batch_size]]
        del order[: args.batch_size]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, total, args.learning_rate, args.warmup_steps)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss, tokens = batch_loss(model, batch, share_prefix=not args.no_shared_prefix, pad_id=pad_id)
        check_finite(loss, step + 1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens_done += tokens
        elapsed = time.monotonic() - train_started
        emit("progress", step=step + 1, steps=total, loss=round(float(loss.detach()), 4),
             tokens_per_s=round(tokens_done / max(elapsed, 1e-6), 1),
             eta_s=round(elapsed / (step + 1) * (total - step - 1), 1))
    emit("stage", stage="merging and converting to GGUF", seconds=round(time.monotonic() - started, 1))
    merged = model.merge_and_unload()
    hf = args.output / "hf"
    merged.save_pretrained(str(hf), safe_serialization=True)
    tokenizer.save_pretrained(str(hf))
    convert(hf, args.output / "model.gguf", args.converter, args.output_type)
    if not args.keep_hf:
        import shutil

        shutil.rmtree(hf)
    emit("done", steps=total, examples=len(examples), seconds=round(time.monotonic() - started, 1))


def convert(hf: Path, outfile: Path, converter: Path, output_type: str) -> None:
    """llama.cpp's converter, with its own gguf-py (the server's version of the format)."""
    script = converter / "convert_hf_to_gguf.py"
    if not script.is_file():
        raise FileNotFoundError(f"{script} is missing (cluster/setup-trainer installs it)")
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(converter / "gguf-py"), str(converter)]))
    result = subprocess.run([sys.executable, str(script), str(hf.resolve()), "--outfile", str(outfile.resolve()),
                             "--outtype", output_type], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0 or not outfile.is_file():
        tail = "\n".join(result.stdout.splitlines()[-5:])
        raise RuntimeError(f"convert_hf_to_gguf.py failed with status {result.returncode}: {tail}")


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--converter", type=Path, required=True)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--alpha", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=0)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--output-type", default="q8_0", choices=["q8_0", "f16", "bf16", "f32"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--no-shared-prefix", action="store_true")
    parser.add_argument("--keep-hf", action="store_true")
    return parser.parse_args(argv)


def main() -> int:
    args = parse()
    args.output.mkdir(parents=True, exist_ok=True)
    try:
        train(args)
    except Exception as error:  # reported to the rounds driver, which retries or stops
        print(f"lora_train: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
