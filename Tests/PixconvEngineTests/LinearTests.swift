import CEngine
import PixconvCore
import PixconvQuant
import XCTest
@testable import PixconvEngine

/// The linear operation on every stored type and every kernel this CPU can run, against
/// (1) the plain C reference in the same arithmetic (int8 paths: bit-identical) and
/// (2) an independent Swift double-precision product of the weights decoded by PixconvQuant,
/// on awkward shapes: rows not a multiple of any tile, columns not a multiple of 16 or 32,
/// every K of PixArt and T5-XXL, batch 1 and 2. Paths the CPU cannot run are skipped by name.
final class LinearTests: XCTestCase {
    struct Rng {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_001) / 1_000_000 - 1
        }
    }

    static func randoms(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var r = Rng(state: seed)
        return (0..<n).map { _ in r.next() * scale }
    }

    /// The weights (out × in) stored as `dtype`, plus their exact decoded values.
    static func stored(_ w: [Float], out: Int, in k: Int, dtype: DType) -> (LinearWeight, [Float]) {
        var bytes = [UInt8]()
        switch dtype {
        case .F32: bytes = w.withUnsafeBytes { Array($0) }
        case .F16: bytes = HalfPrecision.encodeF16Reference(w)
        case .BF16: bytes = HalfPrecision.encodeBF16Reference(w)
        case .Q8_0: bytes = Q8_0Codec.encodeReference(w)
        case .Q4_0: bytes = Q4_0Codec.encodeReference(w)
        default: fatalError("type \(dtype)")
        }
        let info = TensorInfo(name: "w", dtype: dtype, shape: [out, k], byteCount: bytes.count)
        let data = TensorData(info: info, copying: bytes)
        let decoded = try! dequantizeToFloat(data)
        return (try! LinearWeight(name: "w", data: data, out: out, in: k, bias: nil), decoded)
    }

    /// Σ x·w in double, and Σ |x·w| (the scale of rounding errors).
    static func exact(_ x: [Float], _ w: [Float], rows: Int, out: Int, in k: Int, bias: [Float]?) -> ([Double], [Double]) {
        var y = [Double](repeating: 0, count: rows * out), mag = y
        for r in 0..<rows {
            for o in 0..<out {
                var s = 0.0, a = 0.0
                for i in 0..<k {
                    let p = Double(x[r * k + i]) * Double(w[o * k + i])
                    s += p
                    a += abs(p)
                }
                y[r * out + o] = s + Double(bias?[o] ?? 0)
                mag[r * out + o] = a
            }
        }
        return (y, mag)
    }

    /// Runs one (type, ISA) over the shapes; `bitExact`: must equal the C reference bit for bit;
    /// `relative`: allowed error against the exact product, as a fraction of Σ|x·w|.
    func check(_ dtype: DType, isa: pe_isa, bitExact: Bool, relative: Double, computeF32: Bool = false,
               file: StaticString = #filePath, line: UInt = #line) throws {
        guard pe_isa_supported(isa) != 0 else {
            throw XCTSkip("\(String(cString: pe_isa_name(isa))): this CPU lacks the instructions (\(Engine.cpuFeatures))")
        }
        let shapes: [(rows: Int, out: Int, k: Int)] = [
            (1, 45, 1152), (2, 33, 1152), (7, 70, 4608), (67, 45, 1152), (13, 17, 4096), (5, 31, 10240), (2, 64, 32), (131, 96, 96), (70, 136, 2304),
        ]
        var seed: UInt64 = 1
        for s in shapes {
            seed += 3
            let x = Self.randoms(s.rows * s.k, seed: seed, scale: 2)
            let wf = Self.randoms(s.out * s.k, seed: seed + 1, scale: 0.1)
            let bias = Self.randoms(s.out, seed: seed + 2)
            let (w, decoded) = Self.stored(wf, out: s.out, in: s.k, dtype: dtype)
            let (expected, magnitude) = Self.exact(x, decoded, rows: s.rows, out: s.out, in: s.k, bias: bias)
            for accumulate in [false, true] {
                let start = Self.randoms(s.rows * s.out, seed: seed + 9)
                var fast = start, ref = start
                let opts = pe_linear_opts(accumulate: accumulate ? 1 : 0, compute_f32: computeF32 ? 1 : 0, isa: isa)
                let wb = try LinearWeight(name: "w", data: w.data, out: s.out, in: s.k, bias: bias)
                x.withUnsafeBufferPointer { xp in
                    fast.withUnsafeMutableBufferPointer { yp in
                        let ran = wb.apply(xp.baseAddress!, rows: s.rows, into: yp.baseAddress!, options: opts)
                        XCTAssertEqual(ran, isa, file: file, line: line)
                    }
                    ref.withUnsafeMutableBufferPointer { yp in
                        wb.apply(xp.baseAddress!, rows: s.rows, into: yp.baseAddress!, options: opts, reference: true)
                    }
                }
                let label = "\(dtype) \(String(cString: pe_isa_name(isa))) \(s) accumulate \(accumulate)"
                var worst = 0.0
                for i in 0..<(s.rows * s.out) {
                    let e = expected[i] + (accumulate ? Double(start[i]) : 0)
                    let err = abs(Double(fast[i]) - e) / max(magnitude[i], 1e-3)
                    worst = max(worst, err)
                    if bitExact {
                        XCTAssertEqual(fast[i].bitPattern, ref[i].bitPattern, "\(label) [\(i)]", file: file, line: line)
                    } else {
                        XCTAssertLessThanOrEqual(abs(Double(fast[i]) - Double(ref[i])), 2e-5 * max(magnitude[i], 1),
                                                 "\(label) [\(i)] vs reference", file: file, line: line)
                    }
                }
                XCTAssertLessThanOrEqual(worst, relative, label, file: file, line: line)
            }
        }
    }

    // int8 activations: one rounding of x to 1/254 of its block's max; the error is a small
    // fraction of Σ|x·w|.
    func testQ8_0VNNI512() throws { try check(.Q8_0, isa: PE_ISA_VNNI512, bitExact: true, relative: 1e-2) }
    func testQ4_0VNNI512() throws { try check(.Q4_0, isa: PE_ISA_VNNI512, bitExact: true, relative: 1e-2) }
    func testQ8_0AVX2() throws { try check(.Q8_0, isa: PE_ISA_AVX2, bitExact: true, relative: 1e-2) }
    func testQ4_0AVX2() throws { try check(.Q4_0, isa: PE_ISA_AVX2, bitExact: true, relative: 1e-2) }
    func testQ8_0Reference() throws { try check(.Q8_0, isa: PE_ISA_REF, bitExact: true, relative: 1e-2) }
    // bf16 activations: rounding to 8 significant bits.
    func testBF16Dot512() throws { try check(.BF16, isa: PE_ISA_BF16_512, bitExact: false, relative: 8e-3) }
    // f32 arithmetic: exact to f32 rounding, from every stored type.
    func testF32Sgemm() throws { try check(.F32, isa: PE_ISA_SGEMM, bitExact: false, relative: 1e-5) }
    func testF16Sgemm() throws { try check(.F16, isa: PE_ISA_SGEMM, bitExact: false, relative: 1e-5) }
    func testBF16Sgemm() throws { try check(.BF16, isa: PE_ISA_SGEMM, bitExact: false, relative: 1e-5) }
    func testQ8_0ComputeF32() throws { try check(.Q8_0, isa: PE_ISA_SGEMM, bitExact: false, relative: 1e-5, computeF32: true) }
    func testQ4_0ComputeF32() throws { try check(.Q4_0, isa: PE_ISA_SGEMM, bitExact: false, relative: 1e-5, computeF32: true) }

    /// The automatic choice per type, and what `Engine.kernelsUsed` records.
    func testAutomaticChoiceAndRecord() throws {
        let vnni = pe_isa_supported(PE_ISA_VNNI512) != 0, avx2 = pe_isa_supported(PE_ISA_AVX2) != 0
        let bf16 = pe_isa_supported(PE_ISA_BF16_512) != 0
        let expected: [(DType, String)] = [
            (.Q8_0, vnni ? "avx512-vnni" : avx2 ? "avx2" : "reference"),
            (.Q4_0, vnni ? "avx512-vnni" : avx2 ? "avx2" : "reference"),
            // bf16 products only where they beat FMA on this CPU (Engine.bf16Pays)
            (.BF16, bf16 && Engine.bf16Pays ? "avx512-bf16" : "sgemm"), (.F16, "sgemm"), (.F32, "sgemm"),
        ]
        print("LinearTests: bf16 products per second over FMA on this CPU: \(Engine.bf16Gain) (bf16 \(Engine.bf16Pays ? "runs" : "does not run") by default)")
        if bf16 {
            // one measurement per process, in a plausible range (1 or 2 on the CPUs measured)
            XCTAssertEqual(Engine.bf16Gain, Engine.bf16Gain)
            XCTAssertGreaterThan(Engine.bf16Gain, 0.3)
            XCTAssertLessThan(Engine.bf16Gain, 4.5)
        } else {
            XCTAssertEqual(Engine.bf16Gain, 0)
            XCTAssertFalse(Engine.bf16Pays)
        }
        Engine.resetKernelRecord()
        for (dtype, name) in expected {
            let (w, _) = Self.stored(Self.randoms(40 * 64, seed: 5), out: 40, in: 64, dtype: dtype)
            XCTAssertEqual(w.kernel, name, "\(dtype)")
            _ = w(Self.randoms(3 * 64, seed: 6), rows: 3)
            Engine.compute = .f32
            XCTAssertEqual(w.kernel, "sgemm", "\(dtype) with compute f32")
            Engine.compute = .native
        }
        let record = Engine.kernelsUsed
        for (dtype, name) in expected { XCTAssertEqual(record[dtype.rawValue.lowercased()], name) }
        print("kernels on this CPU (\(Engine.cpuFeatures.joined(separator: ", "))): \(record)")
    }

    /// Stored types without a kernel of their own (f64 here) are widened to f32 once.
    func testOtherTypesAreWidened() throws {
        let wf = Self.randoms(9 * 32, seed: 11)
        let bytes = wf.map(Double.init).withUnsafeBytes { Array($0) }
        let data = TensorData(info: TensorInfo(name: "w", dtype: .F64, shape: [9, 32], byteCount: bytes.count), copying: bytes)
        let w = try LinearWeight(name: "w", data: data, out: 9, in: 32, bias: nil)
        XCTAssertEqual(w.typeName, "f32")
        let x = Self.randoms(2 * 32, seed: 12)
        let (expected, _) = Self.exact(x, wf, rows: 2, out: 9, in: 32, bias: nil)
        for (a, e) in zip(w(x, rows: 2), expected) { XCTAssertEqual(Double(a), e, accuracy: 1e-5) }
    }

    /// Bad arguments are refused by the C entry point, not run.
    func testBadArgumentsAreRefused() {
        var y = [Float](repeating: 0, count: 4)
        let x = [Float](repeating: 1, count: 40)
        let w = [UInt8](repeating: 0, count: 34 * 2)
        let opts = pe_linear_opts(accumulate: 0, compute_f32: 0, isa: PE_ISA_AUTO)
        // K = 40 is not a whole number of Q8_0 blocks
        XCTAssertEqual(pe_linear(x, 40, 1, 40, w, PE_W_Q8_0, 2, nil, &y, 2, opts), -1)
        // ldx < K
        XCTAssertEqual(pe_linear(x, 16, 1, 32, w, PE_W_Q8_0, 2, nil, &y, 2, opts), -1)
        // an instruction set that does not apply to the type
        XCTAssertEqual(pe_linear(x, 32, 1, 32, w, PE_W_F32, 1, nil, &y, 1,
                                 pe_linear_opts(accumulate: 0, compute_f32: 0, isa: PE_ISA_VNNI512)), -1)
    }
}
