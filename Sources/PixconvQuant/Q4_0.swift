import PixconvCore

/// ggml Q4_0 blocks: `f16 d; u8 qs[16]`, byte j = q[j] | q[j+16] << 4, x ≈ d·(q − 8)
/// (`ggml-common.h` `block_q4_0`).
///
/// Encoder matches gguf-py 0.19.0 `gguf/quants.py` `Q4_0.quantize_blocks`: the element with the
/// largest |x| (first on ties) keeps its sign as `max`; d = max / −8 in f32; id = d ≠ 0 ? 1/d : 0;
/// q = min(15, trunc(x·id + 8.5)); d stored as f16 (RNE). Non-finite x·id + 8.5 (1/d overflowed)
/// casts to 0, as numpy's float→uint8 cast does on x86-64.
public enum Q4_0Codec {
    public static let blockSize = 32
    public static let blockBytes = 18

    /// Code for one value: numpy's `trunc(v).astype(uint8).clip(0, 15)` for v = x·id + 8.5.
    @inline(__always)
    static func code(_ v: Float) -> UInt8 {
        guard v.isFinite else { return 0 }
        let t = Int32(max(-1024, min(1024, v)))  // truncates toward zero
        return min(UInt8(truncatingIfNeeded: t), 15)
    }

    /// Quantizes `src.count / 32` blocks into `dst` (18 bytes each). `src.count` must be a multiple of 32.
    public static func encode(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        let blocks = src.count / blockSize
        precondition(src.count % blockSize == 0 && dst.count >= blocks * blockBytes, "q4_0 sizes")
        guard let x = src.baseAddress, let out = dst.baseAddress else { return }
        for b in 0..<blocks {
            let p = x + b * blockSize
            let o = out + b * blockBytes
            var amax: Float = 0
            var maxValue: Float = 0
            for j in 0..<blockSize {
                let v = abs(p[j])
                if v > amax { amax = v; maxValue = p[j] }
                if v.isNaN { maxValue = p[j]; break }  // numpy argmax stops at the first NaN
            }
            let d = maxValue / -8
            let id: Float = d == 0 ? 0 : 1 / d
            o.storeBytes(of: HalfPrecision.f16Bits(d).littleEndian, as: UInt16.self)
            for j in 0..<16 {
                let lo = code(p[j] * id + 8.5)
                let hi = code(p[j + 16] * id + 8.5)
                o.storeBytes(of: lo | (hi << 4), toByteOffset: 2 + j, as: UInt8.self)
            }
        }
    }

    /// Plain scalar reference for `encode`, written from gguf-py's formulas with arrays.
    public static func encodeReference(_ src: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        var start = 0
        while start + blockSize <= src.count {
            let block = Array(src[start..<start + blockSize])
            var imax = 0
            for j in 1..<blockSize where abs(block[j]) > abs(block[imax]) || (abs(block[j]).isNaN && !abs(block[imax]).isNaN) {
                imax = j
            }
            let d = block[imax] / -8
            let id: Float = d == 0 ? 0 : 1 / d
            var q = [UInt8](repeating: 0, count: blockSize)
            for j in 0..<blockSize {
                let t = (block[j] * id + 8.5).rounded(.towardZero)
                q[j] = t.isFinite ? min(UInt8(truncatingIfNeeded: Int(t)), 15) : 0  // |x·id| ≤ 8
            }
            let h = Float16(d).bitPattern
            out.append(UInt8(h & 0xFF))
            out.append(UInt8(h >> 8))
            for j in 0..<16 { out.append(q[j] | (q[j + 16] << 4)) }
            start += blockSize
        }
        return out
    }

    /// Widens `count` values (a multiple of 32) from Q4_0 blocks: x = d·(q − 8).
    public static func decode(_ src: UnsafeRawBufferPointer, count: Int, into dst: UnsafeMutableBufferPointer<Float>) {
        let blocks = count / blockSize
        precondition(count % blockSize == 0 && src.count >= blocks * blockBytes && dst.count >= count, "q4_0 sizes")
        guard let base = src.baseAddress, let y = dst.baseAddress else { return }
        for b in 0..<blocks {
            let o = base + b * blockBytes
            let d = halfBitsToFloat(UInt16(littleEndian: o.loadUnaligned(as: UInt16.self)))
            let out = y + b * blockSize
            for j in 0..<16 {
                let byte = o.load(fromByteOffset: 2 + j, as: UInt8.self)
                out[j] = d * Float(Int32(byte & 0x0F) - 8)
                out[j + 16] = d * Float(Int32(byte >> 4) - 8)
            }
        }
    }

    /// Plain reference for `decode`.
    public static func decodeReference(_ bytes: [UInt8]) -> [Float] {
        var out: [Float] = []
        var start = 0
        while start + blockBytes <= bytes.count {
            let d = Float(Float16(bitPattern: UInt16(bytes[start]) | UInt16(bytes[start + 1]) << 8))
            var block = [Float](repeating: 0, count: blockSize)
            for j in 0..<16 {
                let byte = bytes[start + 2 + j]
                block[j] = d * Float(Int(byte & 0x0F) - 8)
                block[j + 16] = d * Float(Int(byte >> 4) - 8)
            }
            out += block
            start += blockBytes
        }
        return out
    }
}
