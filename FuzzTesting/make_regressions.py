"""Minimised hostile inputs for the fuzz regression tests (formats/fuzzing.md §3), one folder per
libFuzzer harness. Each file is the smallest member of a case of the bad-input corpus that the CLI
tests build (Tests/PixconvCLITests/CorpusCases.swift, formats/hostile-inputs.md), cut to the bytes the
harness reads, so that every regression folder holds something the tests can fail on before the
fuzzer ever finds a crash. Deterministic; standard library only. Run from the repository root:

    python3 FuzzTesting/make_regressions.py

Writes (no extension; the name is what the replaying test checks the error message against):
  Tests/PixconvReadersTests/Regressions/safetensors/   truncated headers, a huge header length, data cut short
  Tests/PixconvReadersTests/Regressions/pickle/        GLOBAL os.system + REDUCE, STACK_GLOBAL builtins.eval,
                                                       a memo read that was never written (raw pickle bytes)
  Tests/PixconvReadersTests/Regressions/zip/           a torch zip whose end record points the central
                                                       directory past the file, a zip64 count of 2^62, an empty file
  Tests/PixconvStoreTests/Regressions/gguf/            GGUF headers with tensor count 2^64-1 and metadata
                                                       count 2^63, a key string of length 2^64-1
  Tests/PixconvRuntimeTests/Regressions/spiece/        FuzzTesting/Corpus/spiece/identity.model cut inside a
                                                       piece, a bad wire type, an empty model
Inputs the fuzzer finds later are added by hand beside these (formats/fuzzing.md §1).
"""
import io
import os
import struct
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def write(folder, name, data):
    path = os.path.join(ROOT, folder, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


# --- safetensors: u64 header length, JSON header, data --------------------------------------------
ST = "Tests/PixconvReadersTests/Regressions/safetensors"


def safetensors(header, data=b"", length=None):
    h = header.encode()
    return u64(len(h) if length is None else length) + h + data


one = '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
write(ST, "st-header-too-small", bytes([2, 0, 0, 0, 0, 0, 0]))  # 7 bytes: no room for the length
write(ST, "st-header-too-large", safetensors("{}", length=2**64 - 1))
write(ST, "st-file-truncated", safetensors(one, bytes(7)))  # one byte of tensor data missing

# --- pickle: raw bytes, as FuzzPickle runs them ---------------------------------------------------
PK = "Tests/PixconvReadersTests/Regressions/pickle"
PROTO2, PROTO4 = b"\x80\x02", b"\x80\x04"
GLOBAL, STACK_GLOBAL, TUPLE1, REDUCE, STOP = b"c", b"\x93", b"\x85", b"R", b"."
BINPUT, BINGET, BININT1 = b"q", b"h", b"K"


def binunicode(s):
    return b"X" + u32(len(s.encode())) + s.encode()


def short(s):
    return b"\x8c" + bytes([len(s.encode())]) + s.encode()


write(PK, "pk-disallowed-global-os-system", PROTO2 + GLOBAL + b"os\nsystem\n" + binunicode("id") + TUPLE1 + REDUCE + STOP)
write(PK, "pk-disallowed-global-builtins-eval-stack-global",
      PROTO4 + short("builtins") + short("eval") + STACK_GLOBAL + short("1") + TUPLE1 + REDUCE + STOP)
write(PK, "pk-memo-never-set", PROTO2 + BININT1 + b"\x01" + BINPUT + b"\x03" + BINGET + b"\x05" + STOP)

# --- zip: a .pt file, as FuzzZip maps it ----------------------------------------------------------
ZP = "Tests/PixconvReadersTests/Regressions/zip"


def torch_zip():
    """A stored (uncompressed) torch-style zip: archive/data.pkl = {} (protocol 2), version."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in [("archive/data.pkl", PROTO2 + b"}" + STOP), ("archive/version", b"3\n")]:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(info, data)
    return bytearray(buf.getvalue())


z = torch_zip()
eocd = z.rfind(b"PK\x05\x06")
cd_size, cd_offset = struct.unpack_from("<II", z, eocd + 12)
struct.pack_into("<I", z, eocd + 16, cd_offset + 4096)  # the central directory now lies past the end
write(ZP, "zip-central-directory-outside-file", bytes(z))
z = torch_zip()
eocd = z.rfind(b"PK\x05\x06")
struct.pack_into("<HH", z, eocd + 8, 60, 60)  # entry counts that the central directory does not hold
write(ZP, "zip-central-directory-entry-count", bytes(z))
write(ZP, "zip-empty-file", b"")

# --- GGUF: as FuzzGGUF maps it --------------------------------------------------------------------
GG = "Tests/PixconvStoreTests/Regressions/gguf"


def gguf_header(tensors, kvs, version=3):
    return b"GGUF" + u32(version) + u64(tensors) + u64(kvs)


write(GG, "gguf-tensor-count-2^64-1", gguf_header(2**64 - 1, 0))
write(GG, "gguf-metadata-count-2^63", gguf_header(0, 2**63))
write(GG, "gguf-key-length-2^64-1", gguf_header(0, 1) + u64(2**64 - 1) + b"k" + bytes(5))

# --- spiece: a serialized sentencepiece ModelProto, as FuzzSpiece reads it -------------------------
SP = "Tests/PixconvRuntimeTests/Regressions/spiece"
with open(os.path.join(ROOT, "FuzzTesting/Corpus/spiece/identity.model"), "rb") as f:
    model = f.read()
# Field 1 (pieces) at byte 0x3b is a 10-byte message; stop 4 bytes into it.
assert model[0x3B:0x3D] == b"\x0a\x08"
write(SP, "spiece-truncated-piece", model[: 0x3B + 6])
write(SP, "spiece-bad-wire-type", model[:0x3B] + b"\x0f")  # field 1, wire type 7
write(SP, "spiece-no-pieces", b"")
