#!/usr/bin/python3
"""Writes a series of LLM-jp-3-1.8B-shaped checkpoints with random BF16 weights, for the paper-scale run
(bench/paper-run.ts, issue #17).

Shape: llm-jp/llm-jp-3-1.8b's config.json (LlamaForCausalLM: d = 2,048, 24 blocks, d_ff = 7,168, 16 heads, 16 KV
heads, RMSNorm eps 1e-5, RoPE theta 10,000, vocabulary 99,487, untied LM head, bfloat16): every tensor the real
checkpoint holds, 1.87B parameters, about 3.7 GB per checkpoint, in two shards with a model.safetensors.index.json
as transformers writes them. Weights are transformers' LlamaPreTrainedModel._init_weights (matrices and the
embedding N(0, 0.02²)), norm weights 1 + N(0, 0.1²). Each later checkpoint is the one before plus
N(0, (DRIFT · std)²) per weight, so the series drifts as a training run does and warm-started SAEs have something
to follow. The tokenizer is the demo's (resources/demo: SentencePiece BPE of 1,536 pieces, BOS 1, EOS 2, the ids
LLM-jp-3's tokenizer also gives BOS and EOS), so a harvest reads the first 1,536 of the 99,487 embedding rows.

Tensors are generated one at a time and streamed to every checkpoint's file (peak memory about two of the largest
tensor in float32, 1.6 GB), from one seeded generator in a fixed order: the same arguments write the same bytes.

    /usr/bin/python3 bench/make_llmjp_series.py OUT_DIR [--checkpoints 3] [--layers 24] [--drift 0.2] [--first 10000] [--every 10000]

writes OUT_DIR/iter_0010000, iter_0020000, … (LLM-jp's Megatron iteration naming), each a Hugging Face folder.
"""
import argparse
import json
import os
import shutil
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
from safetensors_writer import StreamedSafetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TOKENIZER = os.path.join(ROOT, "resources", "demo", "checkpoints", "step0")


def config(layers):
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048, "intermediate_size": 7168,
            "num_hidden_layers": layers, "num_attention_heads": 16, "num_key_value_heads": 16, "hidden_act": "silu",
            "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 4096, "vocab_size": 99487,
            "tie_word_embeddings": False, "attention_bias": False, "mlp_bias": False, "torch_dtype": "bfloat16",
            "initializer_range": 0.02, "bos_token_id": 1, "eos_token_id": 2}


def tensors(cfg):
    """(name, shape, std, is_norm) for every tensor of LlamaForCausalLM, in the order transformers names them."""
    d, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    std = cfg["initializer_range"]
    out = [("model.embed_tokens.weight", (V, d), std, False)]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", (d,), 0.1, True),
                (p + "mlp.down_proj.weight", (d, I), std, False),
                (p + "mlp.gate_proj.weight", (I, d), std, False),
                (p + "mlp.up_proj.weight", (I, d), std, False),
                (p + "post_attention_layernorm.weight", (d,), 0.1, True),
                (p + "self_attn.k_proj.weight", (d, d), std, False),
                (p + "self_attn.o_proj.weight", (d, d), std, False),
                (p + "self_attn.q_proj.weight", (d, d), std, False),
                (p + "self_attn.v_proj.weight", (d, d), std, False)]
    out += [("model.norm.weight", (d,), 0.1, True), ("lm_head.weight", (V, d), std, False)]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--checkpoints", type=int, default=3)
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--drift", type=float, default=0.2, help="each step's change per weight, in units of its init std")
    ap.add_argument("--first", type=int, default=10000, help="iteration of the first checkpoint")
    ap.add_argument("--every", type=int, default=10000, help="iterations between checkpoints")
    ap.add_argument("--seed", type=int, default=2025)
    a = ap.parse_args()
    cfg = config(a.layers)
    specs = tensors(cfg)
    # Two shards, split where the parameter count halves (transformers' layout: model-0000k-of-0000n.safetensors).
    total = sum(torch.Size(s).numel() for _, s, _, _ in specs)
    shard_of, acc = {}, 0
    for name, shape, _, _ in specs:
        shard_of[name] = 1 if acc < total / 2 else 2
        acc += torch.Size(shape).numel()
    files = {k: f"model-{k:05d}-of-00002.safetensors" for k in (1, 2)}
    folders, writers = [], []
    for c in range(a.checkpoints):
        step = a.first + c * a.every
        folder = os.path.join(a.out, f"iter_{step:07d}")
        os.makedirs(folder, exist_ok=True)
        json.dump(dict(cfg, featuretrace_bench={"iteration": step, "weights": "random, see bench/make_llmjp_series.py"}),
                  open(os.path.join(folder, "config.json"), "w"), indent=2)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(TOKENIZER, f), os.path.join(folder, f))
        json.dump({"metadata": {"total_size": 2 * total}, "weight_map": {n: files[shard_of[n]] for n, _, _, _ in specs}},
                  open(os.path.join(folder, "model.safetensors.index.json"), "w"), indent=2)
        writers.append({k: StreamedSafetensors(os.path.join(folder, files[k]),
                                               [(n, "BF16", s) for n, s, _, _ in specs if shard_of[n] == k], {"format": "pt"})
                        for k in (1, 2)})
        folders.append(folder)
    gen = torch.Generator().manual_seed(a.seed)
    t0 = time.time()
    for j, (name, shape, std, is_norm) in enumerate(specs):
        w = torch.randn(shape, generator=gen, dtype=torch.float32) * std
        if is_norm:
            w += 1
        for c in range(a.checkpoints):
            if c > 0:
                w += torch.randn(shape, generator=gen, dtype=torch.float32) * (a.drift * (0.1 if is_norm else std))
            writers[c][shard_of[name]].write(name, w.to(torch.bfloat16).view(torch.int16).numpy().tobytes())
        if j % 20 == 0:
            print(f"{j + 1}/{len(specs)} tensors, {time.time() - t0:.0f} s", flush=True)
    for ws in writers:
        for w in ws.values():
            w.close()
    for f in folders:
        print(f)


if __name__ == "__main__":
    main()
