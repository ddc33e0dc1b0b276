import CKernels
import PixconvCore

/// Swift entry points of the C conversion kernels (`Sources/CKernels`): AVX2 + F16C when the CPU
/// has them (checked once at run time), plain C otherwise. Each is bit-exact with the Swift code it
/// replaces, which stays as the reference: `HalfPrecision.f16Bits` / `encodeF16`,
/// `HalfPrecision.decodeF16`, `Q8_0Codec.encode`, `Q4_0Codec.encode` (tests compare both paths
/// with them).
///
/// Sources are little-endian f32 / f16 bytes at any alignment; the host must be little-endian.
public enum FastKernels {
    /// Whether the AVX2 + F16C paths run on this CPU.
    public static var isAccelerated: Bool { pixconv_kernels_accelerated() != 0 }

    /// f32 → f16 (`count` values, 4 → 2 bytes each); returns how many finite values have
    /// |x| ≥ 65520 and so became ±inf (`Quantizer.overflow` names them).
    @discardableResult
    public static func f32ToF16(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, count: Int, portable: Bool = false) -> Int {
        precondition(count >= 0)
        return Int(portable ? pixconv_f32_to_f16_portable(src, dst, count) : pixconv_f32_to_f16(src, dst, count))
    }

    /// f16 → f32 (`count` values), exact, NaN payloads kept.
    public static func f16ToF32(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int, portable: Bool = false) {
        precondition(count >= 0)
        if portable { pixconv_f16_to_f32_portable(src, dst, count) } else { pixconv_f16_to_f32(src, dst, count) }
    }

    /// `blocks` Q4_0 blocks (32 f32 → 18 bytes each); returns how many blocks got a non-finite
    /// f16 scale.
    @discardableResult
    public static func q4_0(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, blocks: Int, portable: Bool = false) -> Int {
        precondition(blocks >= 0)
        return Int(portable ? pixconv_q4_0_encode_portable(src, dst, blocks) : pixconv_q4_0_encode(src, dst, blocks))
    }

    /// `blocks` Q8_0 blocks (32 f32 → 34 bytes each); returns how many blocks got a non-finite
    /// f16 scale (the only way Q8_0 loses finite values, see `Quantizer.overflow`).
    @discardableResult
    public static func q8_0(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, blocks: Int, portable: Bool = false) -> Int {
        precondition(blocks >= 0)
        return Int(portable ? pixconv_q8_0_encode_portable(src, dst, blocks) : pixconv_q8_0_encode(src, dst, blocks))
    }
}
