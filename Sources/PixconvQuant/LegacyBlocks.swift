import PixconvCore

/// Decoders for ggml's other legacy 32-element blocks, read-only in pixconv (stores from other tools).
/// Layouts from `ggml-common.h`; arithmetic as gguf-py 0.19.0 `gguf/quants.py` `dequantize_blocks`
/// (f32, multiply then add, no fused multiply-add):
///
/// - Q4_1 `f16 d; f16 m; u8 qs[16]`: x = d·q + m, q = low nibble (j < 16) / high nibble (j ≥ 16).
/// - Q5_0 `f16 d; u8 qh[4]; u8 qs[16]`: q = nibble | (bit j of qh as u32) << 4; x = d·(q − 16).
/// - Q5_1 `f16 d; f16 m; u8 qh[4]; u8 qs[16]`: x = d·q + m.
public enum LegacyBlockDecoder {
    public static let blockSize = 32

    /// Widens `count` values (a multiple of 32) of `dtype` (Q4_1, Q5_0 or Q5_1) into `dst`.
    public static func decode(
        _ src: UnsafeRawBufferPointer, dtype: DType, count: Int, into dst: UnsafeMutableBufferPointer<Float>
    ) {
        let blocks = count / blockSize
        precondition(count % blockSize == 0 && src.count >= blocks * dtype.blockBytes && dst.count >= count, "block sizes")
        guard let base = src.baseAddress, let y = dst.baseAddress else { return }
        let stride = dtype.blockBytes
        for b in 0..<blocks {
            let o = base + b * stride
            let out = y + b * blockSize
            let d = halfBitsToFloat(UInt16(littleEndian: o.loadUnaligned(as: UInt16.self)))
            switch dtype {
            case .Q4_1:
                let m = halfBitsToFloat(UInt16(littleEndian: o.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
                for j in 0..<16 {
                    let byte = o.load(fromByteOffset: 4 + j, as: UInt8.self)
                    out[j] = d * Float(byte & 0x0F) + m
                    out[j + 16] = d * Float(byte >> 4) + m
                }
            case .Q5_0:
                let qh = UInt32(littleEndian: o.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
                for j in 0..<16 {
                    let byte = o.load(fromByteOffset: 6 + j, as: UInt8.self)
                    let lo = Int32(byte & 0x0F) | Int32((qh >> UInt32(j)) & 1) << 4
                    let hi = Int32(byte >> 4) | Int32((qh >> UInt32(j + 16)) & 1) << 4
                    out[j] = d * Float(lo - 16)
                    out[j + 16] = d * Float(hi - 16)
                }
            case .Q5_1:
                let m = halfBitsToFloat(UInt16(littleEndian: o.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
                let qh = UInt32(littleEndian: o.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                for j in 0..<16 {
                    let byte = o.load(fromByteOffset: 8 + j, as: UInt8.self)
                    let lo = UInt32(byte & 0x0F) | ((qh >> UInt32(j)) & 1) << 4
                    let hi = UInt32(byte >> 4) | ((qh >> UInt32(j + 16)) & 1) << 4
                    out[j] = d * Float(lo) + m
                    out[j + 16] = d * Float(hi) + m
                }
            default:
                preconditionFailure("not a legacy block type")
            }
        }
    }

    /// Plain reference for `decode`: unpacks every 5-bit / 4-bit code into an array first.
    public static func decodeReference(_ bytes: [UInt8], dtype: DType) -> [Float] {
        func f16(_ i: Int) -> Float { Float(Float16(bitPattern: UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8)) }
        var out: [Float] = []
        var start = 0
        let stride = dtype.blockBytes
        while start + stride <= bytes.count {
            let d = f16(start)
            let hasMin = dtype == .Q4_1 || dtype == .Q5_1
            let m: Float = hasMin ? f16(start + 2) : 0
            let hasHigh = dtype == .Q5_0 || dtype == .Q5_1
            let qhAt = start + (hasMin ? 4 : 2)
            let qsAt = qhAt + (hasHigh ? 4 : 0)
            var codes = [Int](repeating: 0, count: blockSize)
            for j in 0..<blockSize {
                let byte = Int(bytes[qsAt + j % 16])
                codes[j] = j < 16 ? byte & 0x0F : byte >> 4
                if hasHigh {
                    let bit = (Int(bytes[qhAt + j / 8]) >> (j % 8)) & 1
                    codes[j] |= bit << 4
                }
            }
            for q in codes {
                switch dtype {
                case .Q5_0: out.append(d * Float(q - 16))
                default: out.append(d * Float(q) + m)
                }
            }
            start += stride
        }
        return out
    }
}
