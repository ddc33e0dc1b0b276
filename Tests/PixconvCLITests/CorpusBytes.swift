import Foundation
import PixconvCore
import PixconvTestSupport

// Byte builders for the bad-input corpus (`bad-inputs.md` §6), written from the format
// specifications, independent of pixconv's own writers: safetensors (8-byte length + JSON +
// data), raw deflate, pickle opcodes (CPython `Lib/pickletools.py`) and the torch zip layout.
// Zip archives (`TestZip`), GGUF v3 (`TestGGUF`) and little-endian integers (`TestLE`) come
// from PixconvTestSupport.

/// A safetensors file: little-endian header length `length ?? header.count`, the header, the data.
func corpusSafetensors(_ header: String, data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    return TestLE.u64(length ?? UInt64(h.count)) + h + data
}

/// A small valid safetensors file: `w` F32 [2, 3] holding 0…5.
func corpusValidSafetensors() -> [UInt8] {
    let values: [Float] = [0, 1, 2, 3, 4, 5]
    let data = values.flatMap { TestLE.u32(Int($0.bitPattern)) }
    return corpusSafetensors(#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}"#, data: data)
}

/// A raw deflate stream (fixed Huffman codes, RFC 1951 §3.2.6) of one literal 0 followed by
/// `repeats` copies of (length 258, distance 1): 1 + 258 × repeats zero bytes.
func corpusDeflatedZeros(repeats: Int) -> [UInt8] {
    var out: [UInt8] = []
    var acc: UInt32 = 0, bits = 0
    func put(_ value: UInt32, _ count: Int) {  // LSB first
        acc |= value << UInt32(bits)
        bits += count
        while bits >= 8 { out.append(UInt8(acc & 0xFF)); acc >>= 8; bits -= 8 }
    }
    func huffman(_ code: UInt32, _ length: Int) {  // Huffman codes go MSB first
        for i in stride(from: length - 1, through: 0, by: -1) { put((code >> UInt32(i)) & 1, 1) }
    }
    put(1, 1)  // BFINAL
    put(1, 2)  // BTYPE = 01, fixed
    huffman(0x30, 8)  // literal 0
    for _ in 0..<repeats {
        huffman(0xC5, 8)  // length code 285 = 258
        huffman(0, 5)  // distance code 0 = 1
    }
    huffman(0, 7)  // end of block
    if bits > 0 { out.append(UInt8(acc & 0xFF)) }
    return out
}

/// Pickle opcodes (protocol 2 unless said otherwise).
enum CorpusPickle {
    static let MARK: UInt8 = 0x28, STOP: UInt8 = 0x2E, POP: UInt8 = 0x30, POP_MARK: UInt8 = 0x31, DUP: UInt8 = 0x32
    static let NONE: UInt8 = 0x4E, NEWFALSE: UInt8 = 0x89, REDUCE: UInt8 = 0x52, BUILD: UInt8 = 0x62
    static let NEWOBJ: UInt8 = 0x81, STACK_GLOBAL: UInt8 = 0x93, BINPERSID: UInt8 = 0x51, INST: UInt8 = 0x69, OBJ: UInt8 = 0x6F
    static let EMPTY_TUPLE: UInt8 = 0x29, TUPLE: UInt8 = 0x74, TUPLE1: UInt8 = 0x85
    static let EMPTY_LIST: UInt8 = 0x5D, APPEND: UInt8 = 0x61, APPENDS: UInt8 = 0x65
    static let EMPTY_DICT: UInt8 = 0x7D, SETITEM: UInt8 = 0x73, SETITEMS: UInt8 = 0x75, MEMOIZE: UInt8 = 0x94

    static func proto(_ v: UInt8 = 2) -> [UInt8] { [0x80, v] }
    static func global(_ module: String, _ name: String) -> [UInt8] { [0x63] + Array("\(module)\n\(name)\n".utf8) }
    /// BINUNICODE.
    static func str(_ s: String) -> [UInt8] { [0x58] + TestLE.u32(s.utf8.count) + Array(s.utf8) }
    /// SHORT_BINUNICODE (protocol 4).
    static func short(_ s: String) -> [UInt8] { [0x8C, UInt8(s.utf8.count)] + Array(s.utf8) }
    static func int(_ v: Int) -> [UInt8] {
        if (0...255).contains(v) { return [0x4B, UInt8(v)] }
        if (0...65535).contains(v) { return [0x4D] + TestLE.u16(v) }
        if Int32(exactly: v) != nil { return [0x4A] + TestLE.u32(v) }
        return [0x8A, 8] + TestLE.u64(UInt64(bitPattern: Int64(v)))
    }
    static func put(_ i: UInt8) -> [UInt8] { [0x71, i] }
    static func get(_ i: UInt8) -> [UInt8] { [0x68, i] }
    static func tuple(_ items: [Int]) -> [UInt8] { [MARK] + items.flatMap { int($0) } + [TUPLE] }

    /// `('storage', torch.<type>, key, 'cpu', numel)` as a persistent id.
    static func storage(key: String, type: String = "FloatStorage", numel: Int) -> [UInt8] {
        [MARK] + str("storage") + global("torch", type) + str(key) + str("cpu") + int(numel) + [TUPLE, BINPERSID]
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`.
    static func tensor(key: String = "0", type: String = "FloatStorage", numel: Int, offset: Int = 0,
                       shape: [Int], stride: [Int]) -> [UInt8] {
        var b = global("torch._utils", "_rebuild_tensor_v2") + [MARK] + storage(key: key, type: type, numel: numel)
        b += int(offset) + tuple(shape) + tuple(stride) + [NEWFALSE] + global("collections", "OrderedDict") + [EMPTY_TUPLE, REDUCE]
        return b + [TUPLE, REDUCE]
    }

    /// `{k: v, …}` from encoded values.
    static func dict(_ pairs: [(String, [UInt8])]) -> [UInt8] {
        [EMPTY_DICT, MARK] + pairs.flatMap { str($0.0) + $0.1 } + [SETITEMS]
    }

    /// `{"w": tensor}` with a [2, 3] f32 view of storage "0" (6 elements).
    static func stateDict() -> [UInt8] {
        proto() + dict([("w", tensor(numel: 6, shape: [2, 3], stride: [3, 1]))]) + [STOP]
    }
}

/// PyTorch zip checkpoints (`torch.save` layout: `archive/data.pkl`, `archive/data/<key>`,
/// `archive/byteorder`, `archive/version`).
enum CorpusTorch {
    /// Six little-endian f32 values 0…5: the storage of `CorpusPickle.stateDict()`.
    static let sixFloats: [UInt8] = (0..<6).flatMap { TestLE.u32(Int(Float($0).bitPattern)) }

    static func zip(pickle: [UInt8], records: [String: [UInt8]] = ["0": sixFloats], folder: String = "archive") -> TestZip {
        var z = TestZip()
        z.add("\(folder)/data.pkl", pickle)
        z.add("\(folder)/byteorder", Array("little".utf8))
        for key in records.keys.sorted() { z.add("\(folder)/data/\(key)", records[key] ?? []) }
        z.add("\(folder)/version", Array("3\n".utf8))
        return z
    }

    static func file(pickle: [UInt8], records: [String: [UInt8]] = ["0": sixFloats]) -> [UInt8] {
        zip(pickle: pickle, records: records).build()
    }
}
