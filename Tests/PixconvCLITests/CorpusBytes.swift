import Foundation
import PixconvCore
import PixconvTestSupport

// Byte builders for the bad-input corpus (`formats/hostile-inputs.md`), written from the format
// specifications, independent of pixconv's own writers: safetensors (8-byte length + JSON +
// data), raw deflate and the torch zip layout. Zip archives (`TestZip`), pickle opcodes
// (`TestPickle`), GGUF v3 (`TestGGUF`) and little-endian integers (`TestLE`) come from
// PixconvTestSupport.

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

/// PyTorch zip checkpoints (`torch.save` layout: `archive/data.pkl`, `archive/data/<key>`,
/// `archive/byteorder`, `archive/version`).
enum CorpusTorch {
    /// Six little-endian f32 values 0…5: the storage of `TestPickle.stateDict()`.
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
