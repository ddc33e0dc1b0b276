"""Seed corpora for the libFuzzer harnesses (FuzzTesting/Corpus/<target>/): small, valid inputs of
each format, deterministic. Run with the fixtures venv:
    venv/bin/python FuzzTesting/make_corpus.py   (from the repository root)
The two pixconv stores in Corpus/gguf come from the CLI (see the end of this file).
"""
import numpy as np, os, pickle, collections, zipfile, io, subprocess, shutil, tempfile, torch, gguf
from safetensors.numpy import save_file
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
C = f"{ROOT}/FuzzTesting/Corpus"
FX = f"{ROOT}/fixtures/readers"
for t in ["safetensors", "pickle", "zip", "gguf", "spiece"]: os.makedirs(f"{C}/{t}", exist_ok=True)
r = np.random.default_rng(1)
# safetensors
save_file({"w": r.standard_normal((2, 3)).astype(np.float32)}, f"{C}/safetensors/one-f32.safetensors")
save_file({"a.weight": r.standard_normal((2, 2)).astype(np.float16), "a.bias": np.arange(3, dtype=np.int64),
           "mask": np.array([True, False]), "u": np.arange(5, dtype=np.uint8), "z": np.zeros((0, 4), np.float32),
           "d": np.ones((1,), np.float64)}, f"{C}/safetensors/mixed.safetensors", metadata={"format": "pt", "note": "x"})
import torch as T
from safetensors.torch import save_file as tsave
tsave({"b": T.arange(6, dtype=T.bfloat16).reshape(2, 3), "e": T.zeros(2, dtype=T.float8_e4m3fn)}, f"{C}/safetensors/bf16-f8.safetensors")
open(f"{C}/safetensors/empty.safetensors", "wb").write(b"\x02\0\0\0\0\0\0\0{}")
# pickle: data.pkl of the reader fixtures and plain pickles
for f in ["big-endian.pt", "deflated.pt", "transformer-f16.pt"]:
    z = zipfile.ZipFile(f"{FX}/{f}")
    name = [n for n in z.namelist() if n.endswith("data.pkl")][0]
    open(f"{C}/pickle/{f[:-3]}.pkl", "wb").write(z.read(name))
obj = collections.OrderedDict([("a", 1), ("b", -70000), ("c", 2**70), ("d", 1.5), ("e", "text é"),
                               ("g", (1, 2, 3)), ("h", [None, True, False]), ("i", {"k": (), "l": []})])
for p in [0, 1, 2, 4, 5]:
    open(f"{C}/pickle/plain-p{p}.pkl", "wb").write(pickle.dumps(obj, protocol=p))
# zip: small torch checkpoints
for f in ["big-endian.pt", "deflated.pt", "legacy.pt", "views.pt"]:
    open(f"{C}/zip/{f}", "wb").write(open(f"{FX}/{f}", "rb").read())
T.save({"a": T.arange(4.0), "n": 3}, f"{C}/zip/small.pt")
T.save({"h": T.arange(6, dtype=T.float16).reshape(2, 3)[:, 1:], "i": T.ones(2, dtype=T.int64)}, f"{C}/zip/view.pt")
# gguf: gguf-py with every tensor type pixconv reads
w = gguf.GGUFWriter(f"{C}/gguf/types.gguf", "pixart")
w.add_uint32("general.quantization_version", 2)
w.add_array("x.strings", ["a", "bc"]); w.add_array("x.ints", [1, 2, 3]); w.add_float32("x.f", 0.5); w.add_bool("x.b", True)
w.add_tensor("f32", r.standard_normal((2, 4)).astype(np.float32))
w.add_tensor("f16", r.standard_normal((3,)).astype(np.float16))
q8 = gguf.quants.quantize(r.standard_normal((2, 32)).astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
w.add_tensor("q8", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
q4 = gguf.quants.quantize(r.standard_normal((1, 32)).astype(np.float32), gguf.GGMLQuantizationType.Q4_0)
w.add_tensor("q4", q4, raw_dtype=gguf.GGMLQuantizationType.Q4_0)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
shutil.copy(f"{FX}/legacy.pt", f"{C}/pickle/legacy-stream.bin")  # the legacy stream is a pickle sequence
shutil.copy(f"{ROOT}/fixtures/store/gguf-py.gguf", f"{C}/gguf/gguf-py.gguf")

# spiece: tiny Unigram models (identity and rule-based normalizers, byte fallback, user symbols)
import sentencepiece as spm
text = ["a photo of a cat", "a small red car on the road", "the quick brown fox jumps over the lazy dog",
        "pixart alpha draws images", "umlaut cafe naive", "numbers 123 456 7890"] * 20
tmp = tempfile.mkdtemp()
open(f"{tmp}/rules.tsv", "w").write("41\t61\n42\t62\nFF21\t41\n3000\t20\n66 66\tFB00\nE9\t65 301\n")
common = dict(vocab_size=60, model_type="unigram", character_coverage=1.0, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
              hard_vocab_limit=False, num_threads=1)
for name, kw in [("identity", {"normalization_rule_name": "identity"}),
                 ("rules", {"normalization_rule_tsv": f"{tmp}/rules.tsv"}),
                 ("bytefb", {"byte_fallback": True, "vocab_size": 320, "normalization_rule_name": "identity"}),
                 ("uds", {"user_defined_symbols": ["<x>", "cat dog"], "normalization_rule_name": "identity"}),
                 ("nodummy", {"add_dummy_prefix": False, "remove_extra_whitespaces": False,
                              "normalization_rule_tsv": f"{tmp}/rules.tsv"})]:
    m = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(text), model_writer=m, **{**common, **kw})
    open(f"{C}/spiece/{name}.model", "wb").write(m.getvalue())

# gguf: two real pixconv stores written by the CLI (built by `swift build`): the tokenizer alone
# (rules.model as spiece.model) and the tiny diffusers transformer in q4_0.
cli = f"{ROOT}/.build/debug/pixconv"
if os.path.exists(cli):
    os.makedirs(f"{tmp}/tokenizer")
    shutil.copy(f"{C}/spiece/rules.model", f"{tmp}/tokenizer/spiece.model")
    shutil.copy(f"{ROOT}/fixtures/tiny-pixart-512/tokenizer/tokenizer_config.json", f"{tmp}/tokenizer/")
    subprocess.run([cli, "convert", f"{tmp}/tokenizer", "-o", f"{C}/gguf/store-tokenizer.gguf", "--force"], check=True)
    subprocess.run([cli, "convert", f"{FX}/diffusers-conversion", "-o", f"{C}/gguf/store-dit-q4_0.gguf",
                    "--type", "q4_0", "--force"], check=True)
shutil.rmtree(tmp)

# torch: data.pkl after one control byte (bit 0: big-endian byteorder record; bit 1: make storage
# number (byte >> 2) one byte longer, or shorter with bit 7), see Sources/FuzzTorch/main.swift.
os.makedirs(f"{C}/torch", exist_ok=True)
for f, control in [("big-endian.pt", 1), ("transformer-f16.pt", 0), ("views.pt", 0), ("views.pt", 6)]:
    z = zipfile.ZipFile(f"{FX}/{f}")
    name = [n for n in z.namelist() if n.endswith("data.pkl")][0]
    out = f[:-3] + ("-short-record" if control == 6 else "")
    open(f"{C}/torch/{out}.bin", "wb").write(bytes([control]) + z.read(name))
open(f"{C}/torch/plain-p2.bin", "wb").write(b"\0" + pickle.dumps(obj, protocol=2))

# config: the tiny pipeline's config.json files and scheduler variants (every timestep spacing,
# prediction type and beta schedule the schedulers implement).
import json
os.makedirs(f"{C}/config", exist_ok=True)
tiny = f"{ROOT}/fixtures/tiny-pixart-512"
for src, dst in [("scheduler/scheduler_config.json", "scheduler-dpm.json"), ("transformer/config.json", "transformer.json"),
                 ("text_encoder/config.json", "text-encoder.json"), ("vae/config.json", "vae.json")]:
    shutil.copy(f"{tiny}/{src}", f"{C}/config/{dst}")
shutil.copy(f"{ROOT}/fixtures/reference-512/cases.json", f"{C}/config/reference-cases.json")
base = open(f"{tiny}/scheduler/scheduler_config.json").read().replace("-Infinity", "\"-inf\"")
for name, changes in [("scheduler-leading", {"timestep_spacing": "leading", "steps_offset": 1, "num_train_timesteps": 40}),
                      ("scheduler-trailing", {"timestep_spacing": "trailing", "prediction_type": "v_prediction",
                                              "beta_schedule": "scaled_linear", "num_train_timesteps": 30}),
                      ("scheduler-sample", {"prediction_type": "sample", "solver_order": 1, "final_sigmas_type": "sigma_min",
                                            "num_train_timesteps": 25, "trained_betas": [0.01] * 25})]:
    d = json.loads(base); d.update(changes); d["lambda_min_clipped"] = -1e30
    open(f"{C}/config/{name}.json", "w").write(json.dumps(d, indent=1))
