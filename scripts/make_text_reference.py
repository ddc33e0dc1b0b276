#!/usr/bin/env python3
"""Reference data for pixconv's T5 tokenizer and T5 encoder (fixtures/text/).

Run with venv/bin/python from the repository root, after scripts/make_fixtures.py has
written fixtures/tiny-pixart-512/. Deterministic: the corpus is fixed, no randomness.

Writes
- fixtures/text/tokens.json: for every corpus prompt the PixArt preprocessing
  (`text.lower().strip()`, clean_caption=False), the ids and attention mask that
  transformers' T5Tokenizer gives when called exactly as PixArtAlphaPipeline.encode_prompt calls
  it (padding="max_length", max_length=120, truncation=True, add_special_tokens=True), the ids
  of sentencepiece.SentencePieceProcessor (encode + [</s>], same truncation) as a cross-check,
  sentencepiece's normalised string, and the HF ids of the raw (not preprocessed) prompt and of a
  max_length=16 call.
- fixtures/text/t5-outputs.safetensors: ids_k (I64, 120), mask_k (I64, 120) and hidden_k
  (F32, 120 x d_model) = T5EncoderModel(...).last_hidden_state for a few prompts, in float32.
"""
import argparse
import json
import re
import shutil
import tempfile
import unicodedata
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch
from transformers import T5EncoderModel, T5Tokenizer

ROOT = Path(__file__).resolve().parent.parent
MAX_LENGTH = 120

LONG_ENGLISH = " ".join(
    ["a photograph of an astronaut riding a horse on the moon, highly detailed, 8k, dramatic light"] * 6)

CORPUS = [
    "",
    " ",
    "   \t\n  ",
    "a",
    "A cat",
    "a small cactus with a happy face in the Sahara desert",
    "An astronaut riding a green horse",
    "Pirate ship trapped in a cosmic maelstrom nebula, rendered in cosmic beach whirlpool engine",
    "A painting of a squirrel eating a burger",
    "close-up photo of a lion, 85mm, f/1.8, bokeh",
    "  leading and trailing spaces   ",
    "repeated     spaces   between\twords\tand\ttabs",
    "line one\nline two\r\nline three",
    "UPPER CASE PROMPT WITH NUMBERS 1234567890",
    "digits 3.14159 and 2,718 and 1e-10 and 0x1F",
    "punctuation!!! ??? ... ;:,. -- __ ++ == (brackets) [square] {curly} <angle>",
    "quotes \"double\" 'single' `back` «guillemets» “curly” ‘single curly’",
    "café naïve résumé façade jalapeño Ångström",
    "Ærøskøbing, Straße, Œuvre, ĳssel, İstanbul",
    "decomposed e\u0301 a\u0300 o\u0308 n\u0303",
    "ﬁne ﬂoral ﬀ ligatures ﬃ ﬄ",
    "ＦＵＬＬ－ＷＩＤＴＨ ｌｅｔｔｅｒｓ ａｎｄ ｄｉｇｉｔｓ １２３",
    "half-width ｶﾀｶﾅ and full-width ＡＢＣ",
    "superscripts x² y³ and fractions ½ ¾ and ℃ ™ №",
    "circled ① ② ⓐ Ⓑ and roman Ⅻ ⅳ",
    "emoji 😀🐱🚀 and 👍🏽 family 👨‍👩‍👧",
    "日本語のテキスト and 中文字符 and 한국어",
    "Greek: ΑΛΦΑ ΒΗΤΑ ΟΔΟΣ σοφία",
    "Cyrillic: Москва красная площадь",
    "Arabic: مرحبا بالعالم and Hebrew: שלום",
    "Thai ภาษาไทย Devanagari हिन्दी",
    "math ∑ ∫ √ ∞ ≤ ≥ ≠ ± × ÷",
    "arrows → ← ↑ ↓ and boxes ■ □ ▲",
    "the lower one eighth block ▁ itself ▁▁ here",
    "zero\u200bwidth space and\ufeffbom and soft\u00adhyphen",
    "no-break\u00a0space, ideographic\u3000space, em\u2003space, thin\u2009space",
    "\u3000 ideographic leading and trailing \u3000",
    "\x1c file separator \x1f unit separator",
    "control \x07 bell \x1b escape \x7f delete",
    "special tokens </s> inside <pad> text <unk> here",
    "a cat</s>",
    "<extra_id_0> sentinel",
    "tilde ~ caret ^ backslash \\ pipe | at @ hash # dollar $ percent % ampersand &",
    "url https://example.com/path?query=1&x=2 and email someone@example.org",
    "hashtags #sunset #beach @user",
    "mixed CaSe WoRdS wItH sTrAnGe capitalization",
    "hyphen-ated words, under_scored words, and camelCaseWords",
    "numbers with units 100km 3kg 25°C 90% $5",
    "a very long word: supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis",
    "ÀÉÎÕÜ àéîõü ÇÑ çñ",
    "Turkish dotless ı and dotted İ, German ß ẞ",
    "ǅ title-case digraph and ﬅ ligature",
    "a\u0085next line",
    LONG_ENGLISH,
    " ".join(f"word{i}" for i in range(100)),
    "日本 " * 80,
    "x" * 400,
    ", ".join(["masterpiece", "best quality", "ultra detailed", "8k wallpaper"] * 12),
    "a b c d e f g h i j k l m n o p q r s t u v w x y z " * 6,
    "The quick brown fox jumps over the lazy dog. " * 3,
]

# Byte strings that are not valid UTF-8: sentencepiece turns each bad byte into U+FFFD.
INVALID_UTF8 = [b"a\xffb", b"caf\xc3", b"\xed\xa0\x80x", b"\xc0\xafz", b"\xf4\x90\x80\x80",
                b"ok \xef\xbf\xbd ok", b"\x80\x80 lone continuation", b"trunc\xe6\x97"]

ENCODER_PROMPTS = [
    "",
    "a small cactus with a happy face in the Sahara desert",
    "Pirate ship trapped in a cosmic maelstrom nebula, rendered in cosmic beach whirlpool engine",
    LONG_ENGLISH,
]


def preprocess(text: str) -> str:
    """PixArtAlphaPipeline._text_preprocessing with clean_caption=False."""
    return text.lower().strip()


def hf_encode(tok, text: str, max_length: int = MAX_LENGTH):
    """Exactly the pipeline's call (pipeline_pixart_alpha.py encode_prompt)."""
    enc = tok(text, padding="max_length", max_length=max_length, truncation=True,
              add_special_tokens=True)
    return [int(i) for i in enc["input_ids"]], [int(m) for m in enc["attention_mask"]]


def sp_encode(sp, text: str, max_length: int = MAX_LENGTH):
    ids = sp.encode(text)[: max_length - 1] + [1]
    return ids + [0] * (max_length - len(ids))


def make_tokens(tok_dir: Path, out: Path) -> None:
    tok = T5Tokenizer.from_pretrained(str(tok_dir), extra_ids=0, legacy=True)
    sp = spm.SentencePieceProcessor(model_file=str(tok_dir / "spiece.model"))
    cases = []
    disagreements = []
    for prompt in CORPUS:
        text = preprocess(prompt)
        ids, mask = hf_encode(tok, text)
        sp_ids = sp_encode(sp, text)
        raw_ids, raw_mask = hf_encode(tok, prompt)
        ids16, mask16 = hf_encode(tok, text, 16)
        case = {
            "prompt": prompt,
            "preprocessed": text,
            "ids": ids,
            "mask": mask,
            "sp_ids": sp_ids,
            "sp_pieces": sp.encode(text, out_type=str),
            "sp_normalized": sp.normalize(text),
            "raw_ids": raw_ids,
            "raw_mask": raw_mask,
            "ids_16": ids16,
            "mask_16": mask16,
        }
        cases.append(case)
        if sp_ids != ids:
            disagreements.append(prompt)
            print(f"HF and sentencepiece disagree on {prompt!r}:\n  hf {ids[:30]}\n  sp {sp_ids[:30]}")
    invalid = [{"hex": b.hex(), "sp_ids": sp.encode(b), "sp_normalized_hex": sp.normalize(b).hex()}
               for b in INVALID_UTF8]
    pieces = []
    for i in range(sp.get_piece_size()):
        kind = ("control" if sp.is_control(i) else "unknown" if sp.is_unknown(i) else
                "unused" if sp.is_unused(i) else "byte" if sp.is_byte(i) else "normal")
        pieces.append([sp.id_to_piece(i), sp.get_score(i), kind])
    # Python's str.lower() / str.isspace() per code point, for the whole code space
    lower_map = [[cp, [ord(c) for c in chr(cp).lower()]] for cp in range(0x110000)
                 if not 0xD800 <= cp < 0xE000 and chr(cp).lower() != chr(cp)]
    isspace = [cp for cp in range(0x110000) if not 0xD800 <= cp < 0xE000 and chr(cp).isspace()]
    doc = {
        "generator": "scripts/make_text_reference.py",
        "tokenizer": str(tok_dir.relative_to(ROOT)),
        "tokenizer_class": type(tok).__module__ + "." + type(tok).__name__,
        "max_length": MAX_LENGTH,
        "hf_sp_disagreements": disagreements,
        "python_unicode_version": unicodedata.unidata_version,
        "python_lower_map": lower_map,
        "python_isspace": isspace,
        "pieces": pieces,
        "invalid_utf8": invalid,
        "sentinels": make_sentinel_cases(tok_dir / "spiece.model"),
        "variants": make_variant_cases(tok_dir / "spiece.model"),
        "cases": cases,
    }
    text = json.dumps(doc, ensure_ascii=True, indent=1)
    # one line per list of scalars (ids, masks, piece rows) keeps the file small and diffable
    text = re.sub(r"\[\n\s*([^\[\]{}]*?)\n\s*\]",
                  lambda m: "[" + re.sub(r",\n\s*", ",", m.group(1)) + "]", text)
    out.write_text(text + "\n")
    print(f"wrote {out} ({len(cases)} prompts, {len(disagreements)} HF/sp disagreements)")


SENTINEL_TEXTS = ["a <extra_id_0> b <extra_id_99>c", "<extra_id_5><extra_id_50>", "x <extra_id_100> y",
                  "fill <extra_id_1> in </s> the <extra_id_7> blanks"]


def save_safetensors(tensors: dict, path: Path, metadata: dict) -> None:
    """safetensors with sorted keys, so that the file is byte-for-byte reproducible
    (safetensors' own writer orders __metadata__ keys differently from run to run)."""
    dtypes = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtypes[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    path.write_bytes(len(head).to_bytes(8, "little") + head + b"".join(blobs))


# Model variants: proto bytes appended to spiece.model (a repeated singular message merges into the
# first one, in sentencepiece's C++ parser as in ours) to flip one normaliser/trainer flag.
VARIANTS = {
    "no_remove_extra_whitespaces": b"\x1a\x02\x20\x00",  # normalizer_spec.remove_extra_whitespaces = false
    "no_add_dummy_prefix": b"\x1a\x02\x18\x00",  # normalizer_spec.add_dummy_prefix = false
    "no_escape_whitespaces": b"\x1a\x02\x28\x00",  # normalizer_spec.escape_whitespaces = false
    "empty_charsmap": b"\x1a\x02\x12\x00",  # normalizer_spec.precompiled_charsmap = ""
    "whitespace_as_suffix": b"\x12\x03\xc0\x01\x01",  # trainer_spec.treat_whitespace_as_suffix = true
    # two more pieces: USER_DEFINED "wor" and "ｆｕ" (matched before normalisation, bonus score)
    "user_defined": b"\x0a\x07\x0a\x03wor\x18\x04" + b"\x0a\x0a\x0a\x06\xef\xbd\x86\xef\xbd\x95\x18\x04",
}
VARIANT_TEXTS = ["  hello   world  ", "ＦＵＬＬ ﬁne", "a\tb\n c", "plain", "", "   ", "x  ", "日本 語",
                 "sword worlds ｆｕｌｌ"]


def make_variant_cases(spiece: Path):
    model = spiece.read_bytes()
    out = []
    for name, suffix in VARIANTS.items():
        sp = spm.SentencePieceProcessor(model_proto=model + suffix)
        out.append({"name": name, "suffix_hex": suffix.hex(),
                    "cases": [{"text": t, "sp_ids": sp.encode(t), "sp_normalized": sp.normalize(t)}
                              for t in VARIANT_TEXTS]})
    return out


def make_sentinel_cases(spiece: Path):
    """T5Tokenizer built from spiece.model alone with extra_ids=100, as for the real T5 tokenizer."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(spiece, Path(tmp) / "spiece.model")
        tok = T5Tokenizer.from_pretrained(tmp, extra_ids=100, legacy=True)
        cases = []
        for text in SENTINEL_TEXTS:
            ids, mask = hf_encode(tok, text)
            cases.append({"text": text, "ids": ids, "mask": mask})
        return {"extra_ids": 100, "vocab_size": len(tok), "cases": cases}


def make_encoder_outputs(pipeline: Path, out: Path) -> None:
    tok = T5Tokenizer.from_pretrained(str(pipeline / "tokenizer"), extra_ids=0, legacy=True)
    model = T5EncoderModel.from_pretrained(str(pipeline / "text_encoder"), torch_dtype=torch.float32)
    model.eval()
    tensors = {}
    metadata = {"generator": "scripts/make_text_reference.py",
                "model": str((pipeline / "text_encoder").relative_to(ROOT))}
    for k, prompt in enumerate(ENCODER_PROMPTS):
        metadata[f"prompt_{k}"] = prompt
        ids, mask = hf_encode(tok, preprocess(prompt))
        ids_t = torch.tensor([ids], dtype=torch.long)
        mask_t = torch.tensor([mask], dtype=torch.long)
        with torch.no_grad():
            hidden = model(ids_t, attention_mask=mask_t)[0][0].float().numpy()
        assert np.isfinite(hidden).all()
        tensors[f"ids_{k}"] = np.asarray(ids, dtype=np.int64)
        tensors[f"mask_{k}"] = np.asarray(mask, dtype=np.int64)
        tensors[f"hidden_{k}"] = np.ascontiguousarray(hidden, dtype=np.float32)
    save_safetensors(tensors, out, metadata)
    print(f"wrote {out} ({len(ENCODER_PROMPTS)} prompts)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipeline", type=Path, default=ROOT / "fixtures" / "tiny-pixart-512")
    ap.add_argument("--out", type=Path, default=ROOT / "fixtures" / "text")
    ap.add_argument("--skip-encoder", action="store_true", help="tokens.json only")
    args = ap.parse_args()
    pipeline = args.pipeline.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    make_tokens(pipeline / "tokenizer", args.out / "tokens.json")
    if not args.skip_encoder:
        make_encoder_outputs(pipeline, args.out / "t5-outputs.safetensors")


if __name__ == "__main__":
    main()
