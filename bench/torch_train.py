#!/usr/bin/python3
"""PyTorch side of bench/train.ts: the same TopK SAE training step, as EleutherAI's sparsify does it
eagerly (nn.Linear encoder, ReLU, top-k, decoder via embedding_bag over the k active rows, FVU loss,
autograd, Adam, decoder rows renormalised), on the same activations file. float32, THREADS threads
(default: every core).

    /usr/bin/python3 bench/torch_train.py FILE D N K BATCH STEPS [THREADS]
Prints JSON: {"tokens_per_s", "step_seconds", "blas_gflops", "torch", "threads"}.
"""
import json, os, struct, sys, time
import numpy as np
import torch
import torch.nn.functional as F

path, d, n, k, batch, steps = sys.argv[1], *map(int, sys.argv[2:7])
torch.set_num_threads(int(sys.argv[7]) if len(sys.argv) > 7 else os.cpu_count())
raw = open(path, "rb").read()
hl = struct.unpack("<Q", raw[:8])[0]
meta = json.loads(raw[8:8 + hl])["activations"]
rows = meta["shape"][0]
x_all = torch.from_numpy(np.frombuffer(raw, np.float32, rows * d, 8 + hl + meta["data_offsets"][0]).reshape(rows, d).copy())

torch.manual_seed(0)
W_dec = torch.nn.Parameter(F.normalize(torch.randn(n, d), dim=1))
enc = torch.nn.Linear(d, n)
with torch.no_grad():
    enc.weight.copy_(W_dec.data)
    enc.bias.zero_()
b_dec = torch.nn.Parameter(x_all[:4096].mean(0))
opt = torch.optim.Adam([W_dec, b_dec, *enc.parameters()], lr=1e-3, eps=6.25e-10)


def step(x):
    pre = F.relu(enc(x - b_dec))
    acts, idx = pre.topk(k, sorted=False)
    xhat = F.embedding_bag(idx, W_dec, per_sample_weights=acts, mode="sum") + b_dec
    loss = (xhat - x).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    with torch.no_grad():
        W_dec.data = F.normalize(W_dec.data, dim=1)
    return loss


for i in range(2):  # warm-up
    step(x_all[i * batch:(i + 1) * batch])
t0 = time.perf_counter()
for i in range(steps):
    j = (i + 2) * batch % (rows - batch)
    step(x_all[j:j + batch])
sec = (time.perf_counter() - t0) / steps
a = torch.randn(1024, 1024)
t1 = time.perf_counter()
for _ in range(10):
    a @ a
blas = 10 * 2 * 1024 ** 3 / (time.perf_counter() - t1) / 1e9
print(json.dumps({"tokens_per_s": batch / sec, "step_seconds": sec, "blas_gflops": blas, "torch": torch.__version__, "threads": torch.get_num_threads()}))
