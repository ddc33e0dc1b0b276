/// Conversions between f32 and the 16-bit float formats, bit-exact with numpy / PyTorch.

/// f32 → IEEE binary16 bits, round to nearest even; NaN → quiet NaN 0x7E00 (as ggml and numpy).
@inlinable
public func floatToHalfBits(_ x: Float) -> UInt16 {
    if x.isNaN { return 0x7E00 }
    return Float16(x).bitPattern
}

/// IEEE binary16 bits → f32 (exact).
@inlinable
public func halfBitsToFloat(_ h: UInt16) -> Float {
    // Done with integer arithmetic: Float(Float16) is a libcall per element on baseline x86-64.
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    let mantissa = UInt32(h & 0x3FF)
    if exponent == 0 {
        if mantissa == 0 { return Float(bitPattern: sign) }
        // Subnormal: value = mantissa · 2^-24.
        let v = Float(mantissa) * 5.9604644775390625e-08
        return sign != 0 ? -v : v
    }
    if exponent == 0x1F {
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
}

/// f32 → bfloat16 bits, round to nearest even; NaN kept and forced quiet (as gguf-py and PyTorch).
@inlinable
public func floatToBFloat16Bits(_ x: Float) -> UInt16 {
    let bits = x.bitPattern
    if x.isNaN { return UInt16(truncatingIfNeeded: (bits >> 16) | 0x40) }
    let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
    return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
}

@inlinable
public func bfloat16BitsToFloat(_ b: UInt16) -> Float {
    Float(bitPattern: UInt32(b) << 16)
}
