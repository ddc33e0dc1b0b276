import PixconvCore

/// Streams tensors into a new `.safetensors` file through an `AtomicFile`.
///
/// Layout (as huggingface/safetensors `serialize` writes it, except for the tensor order): the
/// 8-byte little-endian header length; a compact JSON header with `__metadata__` first (omitted
/// when empty), then the tensors sorted by name, each as `{"dtype","shape","data_offsets"}`;
/// spaces after the JSON so that 8 + N is a multiple of 8; then the data in the same sorted-name
/// order. The reference orders data by dtype alignment first, so that every tensor is aligned to
/// its element size; pixconv keeps name order (simpler to stream, and readers may not assume
/// alignment anyway, see `formats/safetensors.md`, "Writer").
///
/// Usage: `init` with every tensor's info, `append` each tensor's bytes in `order`, `commit()`.
public final class SafetensorsWriter {
    public enum WriterError: Error, CustomStringConvertible, Equatable {
        case notSafetensorsDType(tensor: String, dtype: DType)
        case badTensor(tensor: String, reason: String)
        case outOfOrder(expected: String?, got: String)
        case incomplete(missing: String)

        public var description: String {
            switch self {
            case let .notSafetensorsDType(t, d): return "tensor \(t): \(d.rawValue) cannot be stored in safetensors"
            case let .badTensor(t, r): return "tensor \(t): \(r)"
            case let .outOfOrder(x, g): return "tensor \(g) written out of order (expected \(x ?? "no more tensors"))"
            case let .incomplete(m): return "safetensors output incomplete: tensor \(m) was not written"
            }
        }
    }

    /// Tensors in the order their bytes must be appended (sorted by name).
    public let order: [TensorInfo]
    private let output: AtomicFile
    private var next = 0

    /// Creates the temporary output and writes the header. `path` is only replaced on `commit()`.
    public init(path: String, tensors: [TensorInfo], metadata: [String: String] = [:], replace: Bool = true) throws {
        let header = try SafetensorsWriter.header(tensors: tensors, metadata: metadata)
        self.order = header.order
        let total = header.bytes.count + header.order.reduce(0) { $0 + $1.byteCount }
        self.output = try AtomicFile(path: path, replace: replace, expectedSize: total)
        try output.write(header.bytes)
    }

    /// Appends the bytes of tensor `name`, which must be the next one in `order`.
    public func append(_ name: String, bytes: UnsafeRawBufferPointer) throws {
        guard next < order.count, order[next].name == name else {
            throw WriterError.outOfOrder(expected: next < order.count ? order[next].name : nil, got: name)
        }
        guard bytes.count == order[next].byteCount else {
            throw WriterError.badTensor(tensor: name, reason: "got \(bytes.count) bytes, expected \(order[next].byteCount)")
        }
        try output.write(bytes)
        next += 1
    }

    public func append(_ data: TensorData) throws {
        try data.withBytes { try append(data.info.name, bytes: $0) }
    }

    /// Publishes the file once every tensor has been appended.
    public func commit() throws {
        guard next == order.count else { throw WriterError.incomplete(missing: order[next].name) }
        try output.commit()
    }

    /// The length prefix, JSON and padding for `tensors`, and the order their data follows in.
    public static func header(tensors: [TensorInfo], metadata: [String: String]) throws -> (bytes: [UInt8], order: [TensorInfo]) {
        let order = tensors.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        var json = "{"
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            json += "\"__metadata__\":" + JSONValue.object(JSONObject(pairs.map { ($0.key, .string($0.value)) })).serialized()
        }
        var offset = 0
        var previous: String?
        var first = metadata.isEmpty
        for t in order {
            if t.name == previous { throw WriterError.badTensor(tensor: t.name, reason: "duplicate name") }
            if t.name == "__metadata__" { throw WriterError.badTensor(tensor: t.name, reason: "reserved name") }
            previous = t.name
            if t.dtype.isQuantized { throw WriterError.notSafetensorsDType(tensor: t.name, dtype: t.dtype) }
            guard let count = elementCount(t.shape), t.dtype.byteCount(elements: count) == t.byteCount else {
                throw WriterError.badTensor(tensor: t.name, reason: "byte count \(t.byteCount) does not match shape \(t.shape)")
            }
            if !first { json += "," }
            first = false
            JSONValue.writeEscaped(t.name, to: &json)
            let shape = t.shape.map(String.init).joined(separator: ",")
            let (end, overflow) = offset.addingReportingOverflow(t.byteCount)
            if overflow { throw WriterError.badTensor(tensor: t.name, reason: "total size overflows") }
            json += ":{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}"
            offset = end
        }
        json += "}"
        var body = Array(json.utf8)
        while (8 + body.count) % 8 != 0 { body.append(0x20) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + body.count)
        withUnsafeBytes(of: UInt64(body.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: body)
        return (bytes, order)
    }

    /// A whole safetensors file in memory (for small outputs and tests).
    public static func serialize(_ tensors: [(info: TensorInfo, bytes: [UInt8])], metadata: [String: String] = [:]) throws -> [UInt8] {
        var out = try header(tensors: tensors.map(\.info), metadata: metadata)
        var byName: [String: [UInt8]] = [:]
        for t in tensors { byName[t.info.name] = t.bytes }
        for info in out.order {
            guard let data = byName[info.name], data.count == info.byteCount else {
                throw WriterError.badTensor(tensor: info.name, reason: "data does not match its byte count")
            }
            out.bytes.append(contentsOf: data)
        }
        return out.bytes
    }
}
