#!/usr/bin/python3
"""Trains the demo's tokenizer with SentencePiece (Debian's python3-sentencepiece) and writes it as a
Hugging Face tokenizer.json, the way LLM-jp and Llama ship theirs: BPE over characters, '▁' for spaces,
byte fallback for unseen characters, a BOS in front of every sequence.

SentencePiece's BPE vocabulary is converted to Hugging Face's (vocab + ranked merges) as transformers'
own converter does: a merge (a, b) for every split of a piece into two pieces, ranked by the merged
piece's id. The script then encodes the whole corpus with SentencePiece and writes the ids to
tokenizer-check.jsonl, so a test can show Hugging Face's tokenizer (in JS) gives exactly the same ids.

usage: train_tokenizer.py CORPUS.jsonl OUT_DIR [VOCAB]
"""
import json
import os
import sys
import tempfile

import sentencepiece as spm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from hf_tokenizer_json import llama_bpe_tokenizer  # noqa: E402


def main():
    corpus, out_dir = sys.argv[1], sys.argv[2]
    vocab_size = int(sys.argv[3]) if len(sys.argv) > 3 else 1536
    texts = [json.loads(line)["text"] for line in open(corpus, encoding="utf-8")]
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        lines = os.path.join(tmp, "lines.txt")
        with open(lines, "w", encoding="utf-8") as f:
            for t in texts:
                for line in t.split("\n"):
                    if line.strip():
                        f.write(line + "\n")
        prefix = os.path.join(tmp, "sp")
        spm.SentencePieceTrainer.train(
            input=lines, model_prefix=prefix, model_type="bpe", vocab_size=vocab_size,
            character_coverage=0.9995, byte_fallback=True, normalization_rule_name="identity",
            remove_extra_whitespaces=False, add_dummy_prefix=True, split_digits=True,
            unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2,
            input_sentence_size=0, shuffle_input_sentence=False)
        sp = spm.SentencePieceProcessor(model_file=prefix + ".model")

    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    vocab = {p: i for i, p in enumerate(pieces)}
    merges = []
    for piece, pid in vocab.items():
        if sp.is_control(pid) or sp.is_byte(pid) or sp.is_unknown(pid) or len(piece) < 2:
            continue
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                merges.append((pid, vocab[left], vocab[right], left, right))
    merges.sort()
    tokenizer = llama_bpe_tokenizer(vocab, [f"{l} {r}" for _, _, _, l, r in merges])
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False)
    config = {"tokenizer_class": "LlamaTokenizerFast", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
              "add_bos_token": True, "add_eos_token": False, "model_max_length": 1024}
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    # SentencePiece's own ids for a sample of the corpus (every 20th document), for the JS comparison.
    with open(os.path.join(out_dir, "tokenizer-check.jsonl"), "w", encoding="utf-8") as f:
        for t in texts[::20]:
            f.write(json.dumps({"text": t, "ids": sp.encode(t)}, ensure_ascii=False) + "\n")
    print(f"tokenizer: {len(pieces)} pieces, {len(merges)} merges → {out_dir}/tokenizer.json")


if __name__ == "__main__":
    main()
