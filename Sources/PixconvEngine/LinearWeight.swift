import CEngine
import PixconvCore
import PixconvQuant

/// A linear layer's weight as stored: a view of the tensor's bytes in its own type (f32, f16,
/// bf16, Q8_0, Q4_0: a slice of the memory-mapped store), never widened as a whole. Other stored
/// types (f64, f8, Q4_1, …) are widened to f32 once, when the layer is made.
///
/// `apply` computes y = x·Wᵀ + b through `pe_linear`, which dispatches on the stored type and
/// the CPU (int8 VNNI / AVX2 dot products, bf16 dot products, or f32 sgemm; see `Engine.Compute`).
public struct LinearWeight: @unchecked Sendable {  // the bytes are immutable; `data.owner` keeps them alive
    public let name: String
    public let outFeatures: Int
    public let inFeatures: Int
    public let bias: [Float]?
    let data: TensorData
    let type: pe_wtype
    /// The stored type's name, as in the kernel record ("q8_0", "bf16", …).
    public let typeName: String

    /// The weight `name` of shape (out, in) from `weights`, and `biasName` (out) when given.
    public init(_ weights: Weights, _ name: String, out: Int, in inFeatures: Int, bias biasName: String? = nil) throws {
        let full = weights.prefix + name
        guard let info = weights.source.info(for: full) else { throw RuntimeError.missingTensor(full) }
        guard info.shape == [out, inFeatures] else {
            throw RuntimeError.shapeMismatch(tensor: full, expected: [out, inFeatures], actual: info.shape)
        }
        let stored = try weights.source.data(for: full)
        let bias = try biasName.map { try weights.floats($0, shape: [out]) }
        try self.init(name: full, data: stored, out: out, in: inFeatures, bias: bias)
    }

    /// A layer over `data` (shape (out, in)) with an optional f32 bias.
    public init(name: String, data: TensorData, out: Int, in inFeatures: Int, bias: [Float]?) throws {
        self.name = name
        outFeatures = out
        self.inFeatures = inFeatures
        self.bias = bias
        let t: pe_wtype?
        switch data.info.dtype {
        case .F32: t = PE_W_F32
        case .F16: t = PE_W_F16
        case .BF16: t = PE_W_BF16
        case .Q8_0 where inFeatures % 32 == 0: t = PE_W_Q8_0
        case .Q4_0 where inFeatures % 32 == 0: t = PE_W_Q4_0
        default: t = nil
        }
        if let t {
            self.data = data
            type = t
            typeName = data.info.dtype.rawValue.lowercased()
        } else {
            let floats = try dequantizeToFloat(data)
            let info = TensorInfo(name: data.info.name, dtype: .F32, shape: data.info.shape, byteCount: floats.count * 4)
            let buffer = HeapBuffer(count: info.byteCount)
            floats.withUnsafeBytes { buffer.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            self.data = TensorData(info: info, owner: buffer, bytes: UnsafeRawBufferPointer(buffer.bytes))
            type = PE_W_F32
            typeName = "f32"
        }
    }

    /// An f32 layer over an array of out × in values.
    public init(name: String, floats: [Float], out: Int, in inFeatures: Int, bias: [Float]?) throws {
        precondition(floats.count == out * inFeatures)
        let info = TensorInfo(name: name, dtype: .F32, shape: [out, inFeatures], byteCount: floats.count * 4)
        let buffer = HeapBuffer(count: info.byteCount)
        floats.withUnsafeBytes { if let b = $0.baseAddress { buffer.pointer.copyMemory(from: b, byteCount: $0.count) } }
        try self.init(name: name, data: TensorData(info: info, owner: buffer, bytes: UnsafeRawBufferPointer(buffer.bytes)),
                      out: out, in: inFeatures, bias: bias)
    }

    static func options(accumulate: Bool, isa: pe_isa = PE_ISA_AUTO) -> pe_linear_opts {
        pe_linear_opts(accumulate: accumulate ? 1 : 0, compute_f32: Engine.compute == .f32 ? 1 : 0, isa: isa)
    }

    /// y[r, 0..<out] (row stride ldy) = x[r, 0..<in] (row stride ldx) · Wᵀ + b, for r in 0..<rows;
    /// with `accumulate`, y += that.
    public func apply(_ x: UnsafePointer<Float>, ldx: Int? = nil, rows: Int, into y: UnsafeMutablePointer<Float>,
                      ldy: Int? = nil, accumulate: Bool = false) {
        apply(x, ldx: ldx, rows: rows, into: y, ldy: ldy, options: Self.options(accumulate: accumulate))
    }

    /// `apply` with explicit kernel options (tests force an instruction set). Returns the ISA that ran.
    @discardableResult
    public func apply(_ x: UnsafePointer<Float>, ldx: Int? = nil, rows: Int, into y: UnsafeMutablePointer<Float>,
                      ldy: Int? = nil, options: pe_linear_opts, reference: Bool = false) -> pe_isa {
        let isa: Int32 = withExtendedLifetime(data.owner) {
            let run = reference ? pe_linear_ref : pe_linear
            func call(_ b: UnsafePointer<Float>?) -> Int32 {
                run(x, Int64(ldx ?? inFeatures), Int64(rows), Int64(inFeatures), data.bytes.baseAddress, type,
                    Int64(outFeatures), b, y, Int64(ldy ?? outFeatures), options)
            }
            guard let bias else { return call(nil) }
            return bias.withUnsafeBufferPointer { call($0.baseAddress) }
        }
        precondition(isa >= 0, "linear \(name): kernel refused its arguments")
        let ran = pe_isa(rawValue: UInt32(isa))
        if !reference { Engine.record(type: typeName, isa: ran) }
        return ran
    }

    /// Several layers on the same input (self-attention's q, k, v): y_i = x·W_iᵀ + b_i. Layers of one
    /// stored type share one rounding of x and one pool job; mixed types run one after another.
    public static func apply(_ layers: [LinearWeight], _ x: UnsafePointer<Float>, rows: Int,
                             into outputs: [UnsafeMutablePointer<Float>]) {
        precondition(layers.count == outputs.count)
        guard let first = layers.first else { return }
        let k = first.inFeatures
        guard layers.count <= Int(PE_LINEAR_MAX_OUTS),
              layers.allSatisfy({ $0.type == first.type && $0.inFeatures == k })
        else {
            for (layer, y) in zip(layers, outputs) { layer.apply(x, rows: rows, into: y) }
            return
        }
        let isa = withBiasPointers(layers[...]) { biases in
            let outs = (0..<layers.count).map { i in
                pe_linear_out(w: layers[i].data.bytes.baseAddress, wtype: first.type, N: Int64(layers[i].outFeatures),
                              bias: biases[i], y: outputs[i], ldy: Int64(layers[i].outFeatures))
            }
            return withExtendedLifetime(layers.map { $0.data.owner }) {
                pe_linear_many(x, Int64(k), Int64(rows), Int64(k), outs, Int32(outs.count), options(accumulate: false))
            }
        }
        precondition(isa >= 0, "linear \(first.name) and others: kernel refused its arguments")
        Engine.record(type: first.typeName, isa: pe_isa(rawValue: UInt32(isa)))
    }

    /// Runs `body` with a pointer to each layer's bias (nil where it has none), without copying them.
    private static func withBiasPointers<R>(_ layers: ArraySlice<LinearWeight>,
                                            _ body: ([UnsafePointer<Float>?]) -> R) -> R {
        guard let head = layers.first else { return body([]) }
        let rest = layers.dropFirst()
        guard let bias = head.bias else { return withBiasPointers(rest) { body([nil] + $0) } }
        return bias.withUnsafeBufferPointer { p in withBiasPointers(rest) { body([p.baseAddress] + $0) } }
    }

    /// Array form: (rows, in) → (rows, out).
    public func callAsFunction(_ x: [Float], rows: Int) -> [Float] {
        precondition(x.count == rows * inFeatures, "linear \(name): input has \(x.count) values for \(rows) rows")
        var y = [Float](repeating: 0, count: rows * outFeatures)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                guard let xb = xp.baseAddress, let yb = yp.baseAddress else { return }
                apply(xb, rows: rows, into: yb)
            }
        }
        return y
    }

    /// The instruction set `apply` uses for this weight with the current settings.
    public var kernel: String {
        String(cString: pe_isa_name(pe_linear_isa(type, Self.options(accumulate: false))))
    }
}
