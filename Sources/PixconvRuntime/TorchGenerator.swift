import Foundation

/// The PyTorch CPU random generator: `torch.Generator("cpu").manual_seed(seed)` followed by
/// `torch.randn(shape, generator=g, dtype=torch.float32)`.
///
/// Matches (PT: `aten/src/ATen/core/MT19937RNGEngine.h`, `CPUGeneratorImpl.cpp`,
/// `native/cpu/DistributionTemplates.h::normal_kernel`, `core/TransformationHelper.h::uniform_real`):
/// - MT19937 seeded with the low 32 bits of `seed`; `random()` is one tempered 32-bit output,
///   `random64()` two of them (high word first).
/// - count ≥ 16 (contiguous float32): every slot is first filled with a uniform `(r & 0xFFFFFF)·2⁻²⁴`;
///   each full block of 16 becomes 16 normals by Box–Muller pairing slot j with slot j+8; when
///   count % 16 ≠ 0 the last 16 slots are refilled with fresh uniforms and transformed once more.
///   x86 torch builds (AVX2/AVX-512 capability) use `normal_fill_16_AVX2`, whose log and sincos are
///   the cephes polynomials of `avx_mathfun.h` compiled with fused multiply-adds; `.avx2` emulates
///   that bit for bit (checked against torch 2.15 on x86-64). `.scalar` is the portable
///   `normal_fill_16` (libm logf/cosf/sinf), which ARM builds use.
/// - count < 16: torch's `normal_distribution<double>` path: two 53-bit uniforms per pair,
///   `r = √(−2·log1p(−u2))`, `θ = 2π·u1`, returns `r·cos θ` and caches `r·sin θ` for the next
///   scalar draw (the cache lives in the generator and survives between calls, as in torch).
public struct TorchGenerator: Sendable {
    /// Which Box–Muller kernel torch used for blocks of 16.
    public enum NormalKernel: Sendable { case avx2, scalar }

    private var state: [UInt32]
    private var index: Int
    private var cachedNormal: Double?
    public let kernel: NormalKernel

    public init(seed: UInt64, kernel: NormalKernel = .avx2) {
        var s = [UInt32](repeating: 0, count: 624)
        s[0] = UInt32(truncatingIfNeeded: seed)
        for j in 1..<624 {
            s[j] = 1_812_433_253 &* (s[j - 1] ^ (s[j - 1] >> 30)) &+ UInt32(j)
        }
        state = s
        index = 624
        cachedNormal = nil
        self.kernel = kernel
    }

    /// One tempered MT19937 output.
    public mutating func random() -> UInt32 {
        if index >= 624 { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    /// Two outputs as one 64-bit value, the first in the high word.
    public mutating func random64() -> UInt64 {
        let hi = UInt64(random())
        let lo = UInt64(random())
        return (hi << 32) | lo
    }

    private mutating func twist() {
        state.withUnsafeMutableBufferPointer { mt in
            for k in 0..<624 {
                let y = (mt[k] & 0x8000_0000) | (mt[(k + 1) % 624] & 0x7FFF_FFFF)
                mt[k] = mt[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1) != 0 ? 0x9908_B0DF : 0)
            }
        }
        index = 0
    }

    /// Uniform in [0, 1) from 24 random bits (float `uniform_real_distribution`).
    private mutating func uniformFloat() -> Float {
        Float(random() & 0xFF_FFFF) * (1.0 / 16_777_216.0)
    }

    /// `torch.randn(count)` as float32 from this generator; advances the generator like torch.
    public mutating func randn(count: Int) -> [Float] {
        guard count > 0 else { return [] }
        if count < 16 {
            return (0..<count).map { _ in Float(nextDoubleNormal()) }
        }
        var data = [Float](repeating: 0, count: count)
        for i in 0..<count { data[i] = uniformFloat() }
        var i = 0
        while i < count - 15 {
            boxMuller16(&data, at: i)
            i += 16
        }
        if count % 16 != 0 {
            for j in (count - 16)..<count { data[j] = uniformFloat() }
            boxMuller16(&data, at: count - 16)
        }
        return data
    }

    /// torch `normal_distribution<double>` with mean 0, std 1 (the path for fewer than 16 values).
    private mutating func nextDoubleNormal() -> Double {
        if let c = cachedNormal {
            cachedNormal = nil
            return c
        }
        let u1 = Double(random64() & ((1 << 53) - 1)) * 0x1p-53
        let u2 = Double(random64() & ((1 << 53) - 1)) * 0x1p-53
        let r = (-2.0 * Foundation.log1p(-u2)).squareRoot()
        let theta = 2.0 * Double.pi * u1
        cachedNormal = r * Foundation.sin(theta)
        return r * Foundation.cos(theta)
    }

    private func boxMuller16(_ d: inout [Float], at base: Int) {
        for j in 0..<8 {
            let u1 = 1 - d[base + j]
            let u2 = d[base + j + 8]
            switch kernel {
            case .avx2:
                let radius = (-2 * Self.cephesLog(u1)).squareRoot()
                let theta = Float(2 * Double.pi) * u2
                let (s, c) = Self.cephesSinCos(theta)
                d[base + j] = radius * c
                d[base + j + 8] = radius * s
            case .scalar:
                let radius = (-2 * Foundation.log(u1)).squareRoot()
                let theta = Float(2 * Double.pi * Double(u2))
                d[base + j] = radius * Foundation.cos(theta)
                d[base + j + 8] = radius * Foundation.sin(theta)
            }
        }
    }

    /// `log256_ps` of avx_mathfun (cephes logf), one lane, for x > 0, with the fused multiply-adds
    /// the x86 torch build has: Horner steps fused, `y·z + e·q1` fused on the `y·z` product.
    static func cephesLog(_ input: Float) -> Float {
        let x0 = max(input, Float(bitPattern: 0x0080_0000))
        let bits = x0.bitPattern
        var e = Float(Int32(bitPattern: bits >> 23) - 0x7F) + 1
        var x = Float(bitPattern: (bits & 0x807F_FFFF) | 0x3F00_0000)
        let below = x < Float(0.707106781186547524)
        let tmp: Float = below ? x : 0
        x = x - 1
        if below { e = e - 1 }
        x = x + tmp
        let z = x * x
        var y = Float(7.0376836292e-2)
        for p: Float in [-1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
                         -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1] {
            y = p.addingProduct(y, x)
        }
        y = y * x
        y = (e * Float(-2.12194440e-4)).addingProduct(y, z)
        y = y - z * 0.5
        x = x + y
        x = x + e * Float(0.693359375)
        return x
    }

    /// `sincos256_ps` of avx_mathfun (cephes sinf/cosf), one lane, with the x86 build's fused
    /// multiply-adds: Horner steps fused, `c·z·z − z/2` as fma(c·z, z, −z/2), `s·z·x + x` fused.
    static func cephesSinCos(_ input: Float) -> (sin: Float, cos: Float) {
        var signSin = input.bitPattern & 0x8000_0000
        var x = Float(bitPattern: input.bitPattern & 0x7FFF_FFFF)
        var y = x * Float(1.27323954473516)
        var j = Int32(y)  // truncation, as cvttps
        j = (j &+ 1) & ~1
        y = Float(j)
        let swapSignSin = UInt32(bitPattern: (j & 4) << 29)
        let polyIsSin = (j & 2) == 0
        x = x + y * Float(-0.78515625)
        x = x + y * Float(-2.4187564849853515625e-4)
        x = x + y * Float(-3.77489497744594108e-8)
        let signCos = UInt32(bitPattern: (~(j &- 2) & 4) << 29)
        signSin ^= swapSignSin
        let z = x * x
        var c = Float(2.443315711809948e-5)
        c = Float(-1.388731625493765e-3).addingProduct(c, z)
        c = Float(4.166664568298827e-2).addingProduct(c, z)
        c = c * z
        c = (-(z * 0.5)).addingProduct(c, z)
        c = c + 1
        var s = Float(-1.9515295891e-4)
        s = Float(8.3321608736e-3).addingProduct(s, z)
        s = Float(-1.6666654611e-1).addingProduct(s, z)
        s = s * z
        s = x.addingProduct(s, x)
        let sinPoly = polyIsSin ? s : c
        let cosPoly = polyIsSin ? c : s
        return (Float(bitPattern: sinPoly.bitPattern ^ signSin), Float(bitPattern: cosPoly.bitPattern ^ signCos))
    }
}
