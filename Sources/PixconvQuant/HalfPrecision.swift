import PixconvCore

/// f32 → f16 / bf16 encoders, bit-exact with gguf-py 0.19.0's `gguf.quants.quantize` for F16
/// (`ndarray.astype(np.float16)`, round to nearest even) and BF16 (`class BF16.quantize_blocks`).
///
/// NaN: bf16 keeps sign and top payload bits and sets the quiet bit (as gguf-py). f16 keeps sign and
/// the top 10 payload bits and sets the quiet bit; numpy does the same for quiet NaNs, but passes
/// signalling NaNs through unquieted (0x7F800001 → 0x7C01 in numpy, 0x7E00 here).
public enum HalfPrecision {
    /// f32 → IEEE binary16 bits with integer arithmetic (no libcall), round to nearest even.
    ///
    /// Normal results round by adding 0xFFF plus the lowest kept bit before shifting (no branch on
    /// the discarded bits); f16 subnormals round by a float addition of 0.5 (2^-1 in f16-subnormal
    /// units), which the FPU rounds to nearest even (F. Giesen, "float_to_half_fast3_rtne").
    @inlinable @inline(__always)
    public static func f16Bits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
        let a = bits & 0x7FFF_FFFF
        if a >= 0x3880_0000 {  // ≥ 2^-14: normal f16, inf or NaN
            if a >= 0x477F_F000 {  // ≥ 65520 rounds to inf; NaN quiet with top payload bits kept
                return a > 0x7F80_0000 ? sign | 0x7E00 | UInt16(truncatingIfNeeded: (a >> 13) & 0x3FF) : sign | 0x7C00
            }
            let r = (a &+ 0xFFF &+ ((a >> 13) & 1)) >> 13
            return sign | UInt16(truncatingIfNeeded: r &- (112 << 10))
        }
        // Below 2^-14: adding 0.5 puts the value's f16-subnormal code in the low mantissa bits.
        let magic: Float = 0.5  // bits 0x3F000000 = ((127 − 15) + (23 − 10) + 1) << 23
        let v = Float(bitPattern: a) + magic
        return sign | UInt16(truncatingIfNeeded: v.bitPattern &- magic.bitPattern)
    }

    /// f32 → bfloat16 bits (gguf-py `BF16.quantize_blocks`): NaN forced quiet, else round to nearest even.
    @inlinable @inline(__always)
    public static func bf16Bits(_ x: Float) -> UInt16 {
        floatToBFloat16Bits(x)
    }

    /// Widens `count` little-endian f16 values from `src` into `dst`, bit-exact with
    /// `halfBitsToFloat` (NaN payloads kept). Branch-free so that the loop vectorizes: the
    /// exponent/mantissa bits shifted into f32 position and scaled by 2^112 give every finite value
    /// (f16 subnormals included, exactly); all-ones exponents are patched to inf/NaN by a select.
    public static func decodeF16(_ src: UnsafeRawBufferPointer, count: Int, into dst: UnsafeMutableBufferPointer<Float>) {
        precondition(src.count >= count * 2 && dst.count >= count, "f16 sizes")
        guard count > 0, let s = src.baseAddress, let d = dst.baseAddress else { return }
        let scale = Float(bitPattern: 0x7780_0000)  // 2^112
        for i in 0..<count {
            let h = UInt32(UInt16(littleEndian: s.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
            let magnitude = (h & 0x7FFF) << 13
            let finite = Float(bitPattern: magnitude) * scale
            let special = magnitude | 0x7F80_0000  // inf or NaN with its payload
            let bits = (h & 0x7C00) == 0x7C00 ? special : finite.bitPattern
            d[i] = Float(bitPattern: bits | ((h & 0x8000) << 16))
        }
    }

    /// Widens `count` little-endian bf16 values from `src` into `dst` (the top 16 bits of f32).
    public static func decodeBF16(_ src: UnsafeRawBufferPointer, count: Int, into dst: UnsafeMutableBufferPointer<Float>) {
        precondition(src.count >= count * 2 && dst.count >= count, "bf16 sizes")
        guard count > 0, let s = src.baseAddress, let d = dst.baseAddress else { return }
        for i in 0..<count {
            let b = UInt16(littleEndian: s.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
            d[i] = Float(bitPattern: UInt32(b) << 16)
        }
    }

    /// Encodes `src` as little-endian f16 into `dst` (2 bytes per value).
    public static func encodeF16(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        precondition(dst.count >= src.count * 2, "f16 destination too small")
        guard let out = dst.baseAddress else { return }
        for i in 0..<src.count {
            out.storeBytes(of: f16Bits(src[i]).littleEndian, toByteOffset: i * 2, as: UInt16.self)
        }
    }

    /// Plain reference for `encodeF16`: Swift's own `Float16(x)` conversion (IEEE round to nearest
    /// even), NaN mapped as `f16Bits` documents.
    public static func encodeF16Reference(_ src: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(src.count * 2)
        for x in src {
            let h: UInt16
            if x.isNaN {
                let b = x.bitPattern
                h = UInt16(truncatingIfNeeded: (b >> 16) & 0x8000) | 0x7E00 | UInt16(truncatingIfNeeded: (b >> 13) & 0x3FF)
            } else {
                h = Float16(x).bitPattern
            }
            out.append(UInt8(h & 0xFF))
            out.append(UInt8(h >> 8))
        }
        return out
    }

    /// Encodes `src` as little-endian bf16 into `dst` (2 bytes per value).
    public static func encodeBF16(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        precondition(dst.count >= src.count * 2, "bf16 destination too small")
        guard let out = dst.baseAddress else { return }
        for i in 0..<src.count {
            out.storeBytes(of: bf16Bits(src[i]).littleEndian, toByteOffset: i * 2, as: UInt16.self)
        }
    }

    /// Plain reference for `encodeBF16`, written from gguf-py's formula with 64-bit arithmetic.
    public static func encodeBF16Reference(_ src: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(src.count * 2)
        for x in src {
            var n = UInt64(x.bitPattern)
            if (n & 0x7FFF_FFFF) > 0x7F80_0000 { n = (n & 0xFFFF_0000) | (64 << 16) }
            n = (n + (0x7FFF + ((n >> 16) & 1))) >> 16
            out.append(UInt8(n & 0xFF))
            out.append(UInt8((n >> 8) & 0xFF))
        }
        return out
    }
}
