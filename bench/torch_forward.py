#!/usr/bin/python3
"""PyTorch side of bench/harvest.ts: the same gpt_neox or llama forward pass (float32, THREADS threads) on the same weights.

BF16 weights are widened to float32 at load, as FeatureTrace does, so both sides compute in float32.

Prints JSON: {"tokens_per_s": ..., "tokens": ..., "seconds": ..., "torch": version, "threads": n}.
    /usr/bin/python3 bench/torch_forward.py MODEL_DIR BATCH SEQ_LEN BATCHES LAYER [THREADS]
THREADS defaults to every core (os.cpu_count()), as the ort engine uses.
    /usr/bin/python3 bench/torch_forward.py --check
checks both forwards against tests/fixtures/make_tiny_models.py's float64 references on small random models.
"""
import json, math, os, resource, struct, sys, time
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
        if t["dtype"] == "BF16":
            # numpy has no bfloat16: read the 16-bit payloads, reinterpret, widen to float32.
            bits = torch.from_numpy(np.frombuffer(raw, np.int16, (b - a) // 2, 8 + n + a).copy())
            out[name] = bits.view(torch.bfloat16).float().reshape(t["shape"])
        else:
            assert t["dtype"] == "F32", f"{path}: {name} is {t['dtype']}, expected F32 or BF16"
            out[name] = torch.from_numpy(np.frombuffer(raw, np.float32, (b - a) // 4, 8 + n + a).reshape(t["shape"]).copy())
    return out


def forward(W, cfg, ids, layer):
    return (llama_forward if cfg["model_type"] == "llama" else neox_forward)(W, cfg, ids, layer)


def llama_forward(W, cfg, ids, layer):
    """LlamaModel's blocks 0..layer-1 (modeling_llama.py, eager attention, default RoPE, no biases) in float32."""
    d, H = cfg["hidden_size"], cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads") or H
    hd, eps = d // H, cfg["rms_norm_eps"]
    B, T = ids.shape
    inv = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2).float() / hd))
    ang = torch.arange(T).float()[:, None] * inv[None]
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
    mask = torch.triu(torch.full((T, T), float("-inf")), 1)
    F = torch.nn.functional

    def rms(z, w):
        return z * torch.rsqrt(z.pow(2).mean(-1, keepdim=True) + eps) * w

    def rope(z):
        return z * cos + torch.cat([-z[..., hd // 2:], z[..., :hd // 2]], -1) * sin

    x = W["model.embed_tokens.weight"][ids]
    for i in range(layer):
        p = f"model.layers.{i}."
        h = rms(x, W[p + "input_layernorm.weight"])
        q = F.linear(h, W[p + "self_attn.q_proj.weight"]).view(B, T, H, hd).transpose(1, 2)
        k = F.linear(h, W[p + "self_attn.k_proj.weight"]).view(B, T, KV, hd).transpose(1, 2)
        v = F.linear(h, W[p + "self_attn.v_proj.weight"]).view(B, T, KV, hd).transpose(1, 2)
        q, k = rope(q), rope(k)
        k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, -1) @ v
        x = x + F.linear(a.transpose(1, 2).reshape(B, T, d), W[p + "self_attn.o_proj.weight"])
        h = rms(x, W[p + "post_attention_layernorm.weight"])
        x = x + F.linear(F.silu(F.linear(h, W[p + "mlp.gate_proj.weight"])) * F.linear(h, W[p + "mlp.up_proj.weight"]), W[p + "mlp.down_proj.weight"])
    return x


def neox_forward(W, cfg, ids, layer):
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
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB after loading
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
                      "threads": torch.get_num_threads(), "blas_gflops": blas, "load_rss_mib": rss,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def check():
    """Both forwards against make_tiny_models.py's independent float64 references (llama_forward, neox_forward)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
    import make_tiny_models as ref

    gen = torch.Generator().manual_seed(0)
    llama = dict(model_type="llama", hidden_size=64, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=172, vocab_size=300, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                 hidden_act="silu", max_position_embeddings=128)
    neox = dict(model_type="gpt_neox", hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=256,
                vocab_size=300, rotary_pct=0.25, rotary_emb_base=10000, use_parallel_residual=True, layer_norm_eps=1e-5,
                hidden_act="gelu", tie_word_embeddings=False, max_position_embeddings=128)
    for cfg, W in [(llama, ref.llama_weights(gen, llama, head=False, init_std=0.02)), (neox, ref.neox_weights(gen, neox, head=False))]:
        ids = torch.randint(0, 300, (2, 17), generator=gen)
        hidden, _ = (ref.llama_forward if cfg["model_type"] == "llama" else ref.neox_forward)(W, cfg, ids)
        ours = forward({k: v.float() for k, v in W.items()}, cfg, ids, 3).double()
        err = ((ours - hidden[3]).abs().max() / hidden[3].abs().max()).item()
        print(f"{cfg['model_type']}: max |float32 − float64 reference| / max |reference| = {err:.2e}")
        assert err < 1e-5, f"{cfg['model_type']} forward disagrees with make_tiny_models.py's reference"


if __name__ == "__main__":
    check() if sys.argv[1:] == ["--check"] else main()
