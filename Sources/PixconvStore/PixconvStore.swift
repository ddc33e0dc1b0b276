import PixconvCore

/// A region of a store whose CRC-32 does not match: the header, or one tensor's bytes.
public enum StoreDamage: Equatable, Sendable, CustomStringConvertible {
    case header(expected: UInt32, actual: UInt32)
    case tensor(name: String, expected: UInt32, actual: UInt32)

    public var tensorName: String? { if case let .tensor(n, _, _) = self { return n } else { return nil } }

    public var description: String {
        switch self {
        case let .header(e, a):
            return "header (metadata and tensor infos) damaged: crc32 \(hex(a)), expected \(hex(e))"
        case let .tensor(n, e, a):
            return "tensor '\(n)' damaged: crc32 \(hex(a)), expected \(hex(e))"
        }
    }

    private func hex(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - s.count) + s
    }
}

/// A pixconv store opened for reading: a validated `GGUFFile` plus the pixconv conventions
/// (`formats/store.md`): architecture "pixart", components, per-component configs, tokenizer and
/// scheduler files, and CRC-32s of the header and of every tensor.
public final class PixconvStore: TensorSource {
    public let file: GGUFFile
    public let version: String
    public let components: [String]
    private let tensorCRCs: [UInt32]
    private let headerCRC: UInt32

    public var path: String { file.path }

    /// Opens and validates a store. With `checkHeader` (the default) the header CRC is verified
    /// too (cheap: the header is small), so damaged metadata is an error here; `pixconv verify`
    /// opens with `checkHeader: false` and reports through `verifyAll()` instead.
    public init(path: String, checkHeader: Bool = true) throws(StoreError) {
        let f = try GGUFFile(path: path)
        file = f
        let arch = try f.string(StoreKeys.architecture)
        guard StoreKeys.isValidArchitecture(arch) else {
            throw .badMetadata(file: path, key: StoreKeys.architecture, reason: "'\(arch)' is not [a-z0-9]+")
        }
        guard arch == StoreKeys.architectureName else {
            throw .badMetadata(file: path, key: StoreKeys.architecture, reason: "'\(arch)' is not a pixconv store ('pixart')")
        }
        if f.tensors.contains(where: { $0.dtype.isQuantized }) {
            let q = try f.uint32(StoreKeys.quantizationVersion)
            guard q == StoreKeys.quantizationVersionValue else {
                throw .badMetadata(file: path, key: StoreKeys.quantizationVersion, reason: "version \(q), expected 2")
            }
        }
        version = try f.string(StoreKeys.version)
        components = try f.stringArray(StoreKeys.components)
        guard Set(components).count == components.count, components.allSatisfy(StoreKeys.isValidComponent) else {
            throw .badMetadata(file: path, key: StoreKeys.components, reason: "bad or repeated component names")
        }
        for t in f.tensorsInFileOrder {
            guard let dot = t.name.firstIndex(of: "."), components.contains(String(t.name[..<dot])) else {
                throw .badMetadata(file: path, key: StoreKeys.components, reason: "tensor '\(t.name)' belongs to no component")
            }
        }
        tensorCRCs = try f.uint32Array(StoreKeys.tensorCRC32)
        guard tensorCRCs.count == f.tensorsInFileOrder.count else {
            throw .badMetadata(file: path, key: StoreKeys.tensorCRC32,
                               reason: "\(tensorCRCs.count) checksums for \(f.tensorsInFileOrder.count) tensors")
        }
        headerCRC = try f.uint32(StoreKeys.headerCRC32)
        if checkHeader, case let .header(expected, actual)? = verifyHeader() {
            throw .checksumMismatch(file: path, region: "header", expected: expected, actual: actual)
        }
    }

    // MARK: TensorSource

    public var tensors: [TensorInfo] { file.tensors }

    public func data(for name: String) throws -> TensorData { try file.data(for: name) }

    /// Tensors of one component, full names, sorted.
    public func tensors(inComponent component: String) -> [TensorInfo] {
        tensors.filter { $0.name.hasPrefix(component + ".") }
    }

    // MARK: Metadata

    /// The component's config.json text, or nil when the store has none.
    public func config(for component: String) -> String? { file.value(StoreKeys.config(component))?.stringValue }

    /// The T5 tokenizer's spiece.model bytes, or nil.
    public var spieceModel: [UInt8]? {
        if case let .array(.uint8(a))? = file.value(StoreKeys.spieceModel) { return a }
        return nil
    }

    public var schedulerConfig: String? { file.value(StoreKeys.schedulerConfig)?.stringValue }
    /// The model family `convert` found (`pixconv.family`, `pixconv.family_reason`); nil in stores
    /// without a transformer and in stores written before families were recorded.
    public var family: FamilyDetection? {
        FamilyDetection(recorded: file.value(StoreKeys.family)?.stringValue,
                        reason: file.value(StoreKeys.familyReason)?.stringValue)
    }
    public var sources: String? { file.value(StoreKeys.sources)?.stringValue }
    public var precisionPolicy: String? { file.value(StoreKeys.precisionPolicy)?.stringValue }
    public var fileType: UInt32? { file.value(StoreKeys.fileType)?.uint32Value }

    // MARK: Checksums

    /// The stored CRC-32 of `name`'s bytes.
    public func storedCRC(_ name: String) -> UInt32? { file.infoIndex(of: name).map { tensorCRCs[$0] } }

    /// Recomputes the CRC-32 of `name`'s bytes; true when it matches the stored one.
    public func verifyCRC(_ name: String) throws -> Bool {
        guard let expected = storedCRC(name) else { throw StoreError.missingTensor(file: path, tensor: name) }
        let data = try file.data(for: name)
        return data.withBytes { crc32($0) } == expected
    }

    /// CRC-32 of the header bytes (up to the tensor data) with the header CRC value zeroed.
    public func verifyHeader() -> StoreDamage? {
        guard let at = file.valueOffset(of: StoreKeys.headerCRC32) else { return .header(expected: headerCRC, actual: 0) }
        let header = file.headerBytes
        var crc = crc32(UnsafeRawBufferPointer(rebasing: header[0..<at]))
        let zeros: [UInt8] = [0, 0, 0, 0]
        crc = zeros.withUnsafeBytes { crc32($0, continuing: crc) }
        crc = crc32(UnsafeRawBufferPointer(rebasing: header[(at + 4)...]), continuing: crc)
        return crc == headerCRC ? nil : .header(expected: headerCRC, actual: crc)
    }

    /// Checks the header, then every tensor in info order; returns the first damage, or nil.
    public func verifyAll() -> StoreDamage? {
        if let d = verifyHeader() { return d }
        for (i, info) in file.tensorsInFileOrder.enumerated() {
            guard let data = try? file.data(for: info.name) else { continue }
            let actual = data.withBytes { crc32($0) }
            if actual != tensorCRCs[i] { return .tensor(name: info.name, expected: tensorCRCs[i], actual: actual) }
        }
        return nil
    }
}
