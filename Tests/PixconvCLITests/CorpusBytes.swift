import Foundation
import PixconvCore

/// Byte builders for the bad-input corpus (`bad-inputs.md` §6), written from the format
/// specifications, independent of pixconv's own writers: safetensors (8-byte length + JSON +
/// data), a stored/deflated zip writer with correct CRCs (APPNOTE.TXT 4.3), pickle opcodes
/// (CPython `Lib/pickletools.py`) and GGUF v3 (`ggml/docs/gguf.md`).
enum CorpusLE {
    static func bytes(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }
    static func u16(_ v: Int) -> [UInt8] { bytes(UInt64(UInt16(truncatingIfNeeded: v)), 2) }
    static func u32(_ v: Int) -> [UInt8] { bytes(UInt64(UInt32(truncatingIfNeeded: v)), 4) }
    static func u64(_ v: UInt64) -> [UInt8] { bytes(v, 8) }
}

/// A safetensors file: little-endian header length `length ?? header.count`, the header, the data.
func corpusSafetensors(_ header: String, data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    return CorpusLE.u64(length ?? UInt64(h.count)) + h + data
}

/// A small valid safetensors file: `w` F32 [2, 3] holding 0…5.
func corpusValidSafetensors() -> [UInt8] {
    let values: [Float] = [0, 1, 2, 3, 4, 5]
    let data = values.flatMap { CorpusLE.u32(Int($0.bitPattern)) }
    return corpusSafetensors(#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}"#, data: data)
}

/// Zip archives built entry by entry; every field can be bent.
struct CorpusZip {
    struct Item {
        var name: String
        /// The bytes as stored (compressed bytes for method 8).
        var data: [UInt8]
        var method: UInt16 = 0
        var flags: UInt16 = 0
        var uncompressedSize: Int?
        var crc: UInt32?
        var localName: String?
        /// Points the central record at another entry's local header.
        var localOffsetOf: Int?
        /// Points the central record at this absolute offset (in the archive proper).
        var localOffset: Int?
    }

    var items: [Item] = []
    var prefix: [UInt8] = []
    var comment: [UInt8] = []
    var trailing: [UInt8] = []
    /// A ZIP64 end record and locator whose sizes are `zip64Sizes` (count, size, offset) when set.
    var zip64Sizes: (count: UInt64, size: UInt64, offset: UInt64)?
    var secondEndRecord = false

    mutating func add(_ name: String, _ data: [UInt8]) { items.append(Item(name: name, data: data)) }

    /// A local header and data for `name`, stored, as it appears inside an archive.
    static func localRecord(_ name: String, _ data: [UInt8]) -> [UInt8] {
        let n = Array(name.utf8)
        return [0x50, 0x4B, 0x03, 0x04] + CorpusLE.u16(20) + CorpusLE.u16(0) + CorpusLE.u16(0) + CorpusLE.u16(0) + CorpusLE.u16(0x21)
            + CorpusLE.u32(Int(PixconvCore.crc32(data))) + CorpusLE.u32(data.count) + CorpusLE.u32(data.count)
            + CorpusLE.u16(n.count) + CorpusLE.u16(0) + n + data
    }

    func build() -> [UInt8] {
        var body: [UInt8] = []
        var central: [UInt8] = []
        var offsets: [Int] = []
        for item in items {
            let offset = body.count
            offsets.append(offset)
            let crc = item.crc ?? PixconvCore.crc32(item.data)
            let usize = item.uncompressedSize ?? item.data.count
            let localName = Array((item.localName ?? item.name).utf8)
            body += [0x50, 0x4B, 0x03, 0x04] + CorpusLE.u16(20) + CorpusLE.u16(Int(item.flags)) + CorpusLE.u16(Int(item.method))
            body += CorpusLE.u16(0) + CorpusLE.u16(0x21) + CorpusLE.u32(Int(crc)) + CorpusLE.u32(item.data.count) + CorpusLE.u32(usize)
            body += CorpusLE.u16(localName.count) + CorpusLE.u16(0) + localName + item.data
            let name = Array(item.name.utf8)
            let local = item.localOffset ?? item.localOffsetOf.map { offsets[$0] } ?? offset
            central += [0x50, 0x4B, 0x01, 0x02] + CorpusLE.u16(20) + CorpusLE.u16(20) + CorpusLE.u16(Int(item.flags))
            central += CorpusLE.u16(Int(item.method)) + CorpusLE.u16(0) + CorpusLE.u16(0x21) + CorpusLE.u32(Int(crc))
            central += CorpusLE.u32(item.data.count) + CorpusLE.u32(usize) + CorpusLE.u16(name.count) + CorpusLE.u16(0)
            central += CorpusLE.u16(0) + CorpusLE.u16(0) + CorpusLE.u16(0) + CorpusLE.u32(0) + CorpusLE.u32(local) + name
        }
        var out = prefix + body + central
        var count = items.count, size = central.count, offset = body.count
        if let z = zip64Sizes {
            let recordOffset = body.count + central.count
            out += [0x50, 0x4B, 0x06, 0x06] + CorpusLE.u64(44) + CorpusLE.u16(45) + CorpusLE.u16(45) + CorpusLE.u32(0) + CorpusLE.u32(0)
            out += CorpusLE.u64(z.count) + CorpusLE.u64(z.count) + CorpusLE.u64(z.size) + CorpusLE.u64(z.offset)
            out += [0x50, 0x4B, 0x06, 0x07] + CorpusLE.u32(0) + CorpusLE.u64(UInt64(recordOffset)) + CorpusLE.u32(1)
            count = 0xFFFF; size = 0xFFFF_FFFF; offset = 0xFFFF_FFFF
        }
        let end = [0x50, 0x4B, 0x05, 0x06] + CorpusLE.u16(0) + CorpusLE.u16(0) + CorpusLE.u16(count) + CorpusLE.u16(count)
            + CorpusLE.u32(size) + CorpusLE.u32(offset) + CorpusLE.u16(comment.count) + comment
        out += end
        if secondEndRecord { out += end }
        return out + trailing
    }
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
    static func str(_ s: String) -> [UInt8] { [0x58] + CorpusLE.u32(s.utf8.count) + Array(s.utf8) }
    /// SHORT_BINUNICODE (protocol 4).
    static func short(_ s: String) -> [UInt8] { [0x8C, UInt8(s.utf8.count)] + Array(s.utf8) }
    static func int(_ v: Int) -> [UInt8] {
        if (0...255).contains(v) { return [0x4B, UInt8(v)] }
        if (0...65535).contains(v) { return [0x4D] + CorpusLE.u16(v) }
        if Int32(exactly: v) != nil { return [0x4A] + CorpusLE.u32(v) }
        return [0x8A, 8] + CorpusLE.u64(UInt64(bitPattern: Int64(v)))
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
    static let sixFloats: [UInt8] = (0..<6).flatMap { CorpusLE.u32(Int(Float($0).bitPattern)) }

    static func zip(pickle: [UInt8], records: [String: [UInt8]] = ["0": sixFloats], folder: String = "archive") -> CorpusZip {
        var z = CorpusZip()
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

/// GGUF v3 bytes written field by field.
struct CorpusGGUF {
    var bytes: [UInt8] = []

    mutating func u32(_ v: UInt32) { bytes += CorpusLE.bytes(UInt64(v), 4) }
    mutating func u64(_ v: UInt64) { bytes += CorpusLE.u64(v) }
    mutating func str(_ s: String) { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }
    mutating func header(magic: String = "GGUF", version: UInt32 = 3, tensors: UInt64, kvs: UInt64) {
        bytes += Array(magic.utf8)
        u32(version)
        u64(tensors)
        u64(kvs)
    }
    mutating func kvU32(_ key: String, _ v: UInt32) { str(key); u32(4); u32(v) }
    mutating func kvI32(_ key: String, _ v: Int32) { str(key); u32(5); u32(UInt32(bitPattern: v)) }
    mutating func kvString(_ key: String, _ v: String) { str(key); u32(8); str(v) }
    mutating func info(_ name: String, dims: [UInt64], type: UInt32, offset: UInt64) {
        str(name)
        u32(UInt32(dims.count))
        dims.forEach { u64($0) }
        u32(type)
        u64(offset)
    }
    mutating func pad(_ a: Int = 32) { while bytes.count % a != 0 { bytes.append(0) } }
    mutating func data(_ n: Int) { bytes += [UInt8](repeating: 0, count: n) }

    /// One F32 tensor `w` of 4 × 2 (ggml ne = [4, 2]) with `general.architecture` set.
    static func valid() -> [UInt8] {
        var g = CorpusGGUF()
        g.header(tensors: 1, kvs: 1)
        g.kvString("general.architecture", "pixart")
        g.info("w", dims: [4, 2], type: 0, offset: 0)
        g.pad()
        g.data(32)
        return g.bytes
    }
}
