#!/usr/bin/python3
"""PyTorch side of bench/harvest.ts: the same gpt_neox forward pass (float32, THREADS threads) on the same weights.

Prints JSON: {"tokens_per_s": ..., "tokens": ..., "seconds": ..., "torch": version, "threads": n}.
    /usr/bin/python3 bench/torch_forward.py MODEL_DIR BATCH SEQ_LEN BATCHES LAYER [THREADS]
THREADS defaults to every core (os.cpu_count()), as the ort engine uses.
"""
import json, math, os, struct, sys, time
import numpy as np
import torch

torch.set_grad_enabled(False)
torch.set_num_threads(int(sys.argv[6]) if len(sys.argv) > 6 else os.cpu_count())


def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        assert t["dtype"] == "F32"
        out[name] = torch.from_numpy(np.frombuffer(raw, np.float32, (b - a) // 4, 8 + n + a).reshape(t["shape"]).copy())
    return out


def forward(W, cfg, ids, layer):
    d, H = cfg["hidden_size"], cfg["num_attention_heads"]
    hd, eps = d // H, cfg["layer_norm_eps"]
    rd = int(hd * cfg["rotary_pct"])
    B, T = ids.shape
    inv = 1.0 / (cfg["rotary_emb_base"] ** (torch.arange(0, rd, 2).float() / rd))
    ang = torch.arange(T).float()[:, None] * inv[None]
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
    mask = torch.triu(torch.full((T, T), float("-inf")), 1)
    F = torch.nn.functional
    x = W["gpt_neox.embed_in.weight"][ids]
    for i in range(layer):
        p = f"gpt_neox.layers.{i}."
        h = F.layer_norm(x, (d,), W[p + "input_layernorm.weight"], W[p + "input_layernorm.bias"], eps)
        qkv = F.linear(h, W[p + "attention.query_key_value.weight"], W[p + "attention.query_key_value.bias"]).view(B, T, H, 3 * hd).transpose(1, 2)
        q, k, v = qkv[..., :hd], qkv[..., hd:2 * hd], qkv[..., 2 * hd:]

        def rope(z):
            zr, zp = z[..., :rd], z[..., rd:]
            rot = torch.cat([-zr[..., rd // 2:], zr[..., :rd // 2]], -1)
            return torch.cat([zr * cos + rot * sin, zp], -1)

        q, k = rope(q), rope(k)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, -1) @ v
        a = F.linear(a.transpose(1, 2).reshape(B, T, d), W[p + "attention.dense.weight"], W[p + "attention.dense.bias"])
        m = F.layer_norm(x, (d,), W[p + "post_attention_layernorm.weight"], W[p + "post_attention_layernorm.bias"], eps)
        m = F.linear(F.gelu(F.linear(m, W[p + "mlp.dense_h_to_4h.weight"], W[p + "mlp.dense_h_to_4h.bias"])), W[p + "mlp.dense_4h_to_h.weight"], W[p + "mlp.dense_4h_to_h.bias"])
        x = x + a + m
    return x


def main():
    folder, B, T, batches, layer = sys.argv[1], *map(int, sys.argv[2:6])
    cfg = json.load(open(f"{folder}/config.json"))
    W = load(f"{folder}/model.safetensors")
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, cfg["vocab_size"], (B, T), generator=gen)
    forward(W, cfg, ids, layer)  # warm-up
    t0 = time.perf_counter()
    for _ in range(batches):
        forward(W, cfg, ids, layer)
    s = time.perf_counter() - t0
    a = torch.randn(1024, 1024)
    t1 = time.perf_counter()
    for _ in range(10):
        a @ a
    blas = 10 * 2 * 1024 ** 3 / (time.perf_counter() - t1) / 1e9
    print(json.dumps({"tokens_per_s": B * T * batches / s, "tokens": B * T * batches, "seconds": s, "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "blas_gflops": blas}))


main()
