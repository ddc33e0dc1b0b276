import PixconvCore

/// ggml Q8_0 blocks: `f16 d; i8 qs[32]`, x ≈ d·q (`ggml-common.h` `block_q8_0`).
///
/// Encoder matches gguf-py 0.19.0 `gguf/quants.py` `Q8_0.quantize_blocks` (itself bit-exact with
/// ggml `quantize_row_q8_0_ref`): amax = max|x|, d = amax/127 in f32, id = d ≠ 0 ? 1/d : 0,
/// q = round-half-away-from-zero(x·id), d stored as f16 (RNE). When 1/d overflows (blocks whose
/// max is below ~3.7e-37), x·id is ±inf or NaN and numpy's float→int8 cast gives 0 on x86-64; we
/// store 0 for those (the C reference leaves it undefined). A NaN max gives d = NaN and q = 0.
public enum Q8_0Codec {
    public static let blockSize = 32
    public static let blockBytes = 34

    /// Round half away from zero of `v`, |v| < 128 (truncate, then step by the exact remainder;
    /// `rounded(.toNearestOrAwayFromZero)` is a libm call on baseline x86-64).
    @inline(__always)
    static func roundHalfAway(_ v: Float) -> Int8 {
        guard v.isFinite else { return 0 }  // inf·0 when the block holds an infinity: numpy casts NaN to 0
        let t = Int32(v)
        let rest = v - Float(t)  // exact
        let q = t + (rest >= 0.5 ? 1 : 0) - (rest <= -0.5 ? 1 : 0)
        return Int8(truncatingIfNeeded: q)
    }

    /// Quantizes `src.count / 32` blocks into `dst` (34 bytes each). `src.count` must be a multiple of 32.
    public static func encode(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        let blocks = src.count / blockSize
        precondition(src.count % blockSize == 0 && dst.count >= blocks * blockBytes, "q8_0 sizes")
        guard let x = src.baseAddress, let out = dst.baseAddress else { return }
        for b in 0..<blocks {
            let p = x + b * blockSize
            let o = out + b * blockBytes
            var amax: Float = 0
            var sawNaN = false
            for j in 0..<blockSize {
                let v = abs(p[j])
                amax = v > amax ? v : amax
                sawNaN = sawNaN || v.isNaN
            }
            if sawNaN { amax = .nan }
            let d = amax / 127
            let id: Float = d == 0 ? 0 : 1 / d
            o.storeBytes(of: HalfPrecision.f16Bits(d).littleEndian, as: UInt16.self)
            if id.isFinite {
                // |x·id| ≤ 127 (plus rounding), so the conversion cannot trap.
                for j in 0..<blockSize {
                    o.storeBytes(of: roundHalfAway(p[j] * id), toByteOffset: 2 + j, as: Int8.self)
                }
            } else {
                for j in 0..<blockSize { o.storeBytes(of: 0, toByteOffset: 2 + j, as: Int8.self) }
            }
        }
    }

    /// Plain scalar reference for `encode`, written straight from gguf-py's formulas
    /// (`np_roundf`: floor(|v|) + floor(2·(|v| − floor(|v|))), with the sign put back).
    public static func encodeReference(_ src: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        var start = 0
        while start + blockSize <= src.count {
            let block = Array(src[start..<start + blockSize])
            var amax: Float = 0
            for v in block {
                if abs(v).isNaN { amax = .nan; break }
                amax = max(amax, abs(v))
            }
            let d = amax / 127
            let id: Float = d == 0 ? 0 : 1 / d
            let h = Float16(d).bitPattern
            out.append(UInt8(h & 0xFF))
            out.append(UInt8(h >> 8))
            for v in block {
                let n = v * id
                let a = abs(n)
                let floored = a.rounded(.down)
                let r = floored + (2 * (a - floored)).rounded(.down)
                let s: Float = n > 0 ? 1 : (n < 0 ? -1 : 0)
                let value = s * r
                let q: Int8 = value.isFinite && abs(value) < 128 ? Int8(value) : 0
                out.append(UInt8(bitPattern: q))
            }
            start += blockSize
        }
        return out
    }

    /// Widens `count` values (a multiple of 32) from Q8_0 blocks in `src` into `dst`: x = q·d.
    public static func decode(_ src: UnsafeRawBufferPointer, count: Int, into dst: UnsafeMutableBufferPointer<Float>) {
        let blocks = count / blockSize
        precondition(count % blockSize == 0 && src.count >= blocks * blockBytes && dst.count >= count, "q8_0 sizes")
        guard let base = src.baseAddress, let y = dst.baseAddress else { return }
        for b in 0..<blocks {
            let o = base + b * blockBytes
            let d = halfBitsToFloat(UInt16(littleEndian: o.loadUnaligned(as: UInt16.self)))
            let out = y + b * blockSize
            for j in 0..<blockSize { out[j] = Float(o.load(fromByteOffset: 2 + j, as: Int8.self)) * d }
        }
    }

    /// Plain reference for `decode`.
    public static func decodeReference(_ bytes: [UInt8]) -> [Float] {
        var out: [Float] = []
        var start = 0
        while start + blockBytes <= bytes.count {
            let d = Float(Float16(bitPattern: UInt16(bytes[start]) | UInt16(bytes[start + 1]) << 8))
            for j in 0..<blockSize { out.append(Float(Int8(bitPattern: bytes[start + 2 + j])) * d) }
            start += blockBytes
        }
        return out
    }
}
