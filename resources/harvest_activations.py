#!/usr/bin/env python3
"""Harvest residual-stream activations with Hugging Face transformers, in FeatureTrace's store format.

For architectures FeatureTrace cannot run itself. Needs torch, transformers and numpy.
    python harvest_activations.py --model DIR --corpus corpus.jsonl --layer 12 --out store/ [--context 64] [--max-tokens N]
Then: featuretrace import-activations store/ --project P --checkpoint STEP
hidden_states[L] is taken as is (L = 0: embeddings); for the last layer transformers has applied the final norm.
"""
import argparse, json, os, random, shutil, struct
import numpy as np


def save_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, (dtype, arr) in tensors.items():
        data = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    js = json.dumps(header).encode()
    js += b" " * ((8 - (8 + len(js)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))


SHARD_BYTES = 256 * 2 ** 20  # as FeatureTrace's own harvest: readers hold one shard in memory as float32
SHARD_MAX_ROWS = 65536
F16_OVERFLOW = 65520  # float16's largest value is 65504; anything of magnitude >= 65520 rounds to inf


def check_storable(acts, dtype, layer):
    """Refuses values the store's dtype cannot hold: never store inf in silence."""
    finite = np.isfinite(acts)
    bad = int((~finite).sum())
    over = int((np.abs(np.where(finite, acts, 0)) >= F16_OVERFLOW).sum()) if dtype == "f16" else 0
    if bad or over:
        big = float(np.abs(acts[finite]).max()) if finite.any() else float("nan")
        what = []
        if over:
            what.append(f"{over:,} of {acts.size:,} values exceed float16's range (+-65,504; the largest |x| is {big:.4g}) and would be stored as inf")
        if bad:
            what.append(f"{bad:,} values are already inf or nan in the model's output")
        raise ValueError(f"layer {layer}: {'; '.join(what)}. Nothing was stored. " +
                         ("Run again with --dtype f32." if over else "Check the checkpoint's weights and config."))


def shard_ends(doc, position, context, row_bytes):
    """Shard ends in rows: each shard closes at the first context-window start once it holds SHARD_BYTES of activations."""
    n, ends, begin = len(doc), [], 0
    limit = max(1, min(SHARD_MAX_ROWS, SHARD_BYTES // row_bytes))
    for r in range(1, n + 1):
        window_start = r == n or doc[r] != doc[r - 1] or position[r] != position[r - 1] + 1 or position[r] % context == 0
        if window_start and (r - begin >= limit or r == n):
            ends.append(r)
            begin = r
    return ends


def write_store(out, acts, doc, position, token, documents, tokens, settings):
    """acts [rows, d] float32; doc/position/token [rows] ints; written to OUT.partial, renamed when complete."""
    f16 = settings["dtype"] == "f16"
    check_storable(acts, settings["dtype"], settings["layer"])
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    shards, begin = [], 0
    for end in shard_ends(doc, position, settings["context"], acts.shape[1] * (2 if f16 else 4)):
        name = f"shard-{len(shards):05d}.safetensors"
        save_safetensors(os.path.join(tmp, name), {
            "activations": ("F16" if f16 else "F32", acts[begin:end].astype(np.float16 if f16 else np.float32)),
            "doc": ("I32", doc[begin:end].astype(np.int32)), "position": ("I32", position[begin:end].astype(np.int32)),
            "token": ("I32", token[begin:end].astype(np.int32))})
        shards.append({"file": name, "rows": int(end - begin)})
        begin = end
    with open(os.path.join(tmp, "documents.jsonl"), "w") as f:
        f.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in documents)
    json.dump(tokens, open(os.path.join(tmp, "tokens.json"), "w"), ensure_ascii=False)
    manifest = dict(format="featuretrace.activations", version=1, d=int(acts.shape[1]), rows=int(acts.shape[0]),
                    shards=shards, createdBy="harvest_activations.py", **settings)
    json.dump(manifest, open(os.path.join(tmp, "manifest.json"), "w"), indent=2)
    os.rename(tmp, out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for a in ("--model", "--corpus", "--out"):
        p.add_argument(a, required=True)
    p.add_argument("--layer", type=int, required=True)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--dtype", choices=["f16", "f32"], default="f16")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32).eval()
    docs = [json.loads(l) for l in open(args.corpus, encoding="utf-8") if l.strip()]
    bos = tok.bos_token_id if tok("a")["input_ids"][0] == tok.bos_token_id else None
    seqs = [(i, s, ids[s:s + args.context]) for i, d in enumerate(docs)
            for ids in [tok(d["text"], add_special_tokens=False)["input_ids"]] for s in range(0, len(ids), args.context)]
    random.Random(args.seed).shuffle(seqs)
    rows, meta, total = [], [], 0
    with torch.no_grad():
        for i, s, ids in seqs:
            if args.max_tokens and total >= args.max_tokens:
                break
            ids = ids[: (args.max_tokens - total) if args.max_tokens else None]
            inp = torch.tensor([([bos] if bos is not None else []) + ids])
            h = model(inp, output_hidden_states=True).hidden_states[args.layer][0, 0 if bos is None else 1:]
            rows.append(h.float().numpy())
            meta += [(i, s + j, t) for j, t in enumerate(ids)]
            total += len(ids)
    m = np.array(meta)
    used = sorted({i for i, _, _ in meta})
    try:
        write_store(args.out, np.concatenate(rows), m[:, 0], m[:, 1], m[:, 2],
                    [{"id": i, "lang": docs[i].get("lang"), "source": f"{os.path.basename(args.corpus)}:{i + 1}"} for i in used],
                    {int(t): tok.convert_ids_to_tokens(int(t)) for t in set(m[:, 2].tolist())},
                    dict(model=os.path.abspath(args.model), modelType=model.config.model_type, checkpointStep=None, layer=args.layer,
                         finalNorm=args.layer == model.config.num_hidden_layers, dtype=args.dtype, context=args.context,
                         bos=bos is not None, seed=args.seed, corpus=os.path.abspath(args.corpus), maxTokens=args.max_tokens,
                         dropShort=False, sequences=len(rows)))
    except ValueError as e:
        raise SystemExit(f"harvest_activations.py: {e}")


if __name__ == "__main__":
    main()
