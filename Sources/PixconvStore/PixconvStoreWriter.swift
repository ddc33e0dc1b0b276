import PixconvCore
import PixconvQuant

/// Everything a pixconv store holds besides tensors (`formats/store.md` "Metadata").
public struct StoreManifest: Sendable {
    /// `pixconv.version`: the pixconv version that wrote the store.
    public var pixconvVersion: String
    /// `pixconv.components`: component names in order; tensor names start with `<component>.`.
    public var components: [String]
    /// `pixconv.<component>.config`: each component's config.json text.
    public var configs: [String: String]
    /// `pixconv.tokenizer.spiece_model`: the T5 spiece.model bytes.
    public var spieceModel: [UInt8]?
    /// `pixconv.scheduler.config`: scheduler_config.json text.
    public var schedulerConfig: String?
    /// `pixconv.sources`: JSON text, name/size/sha256 of each input file.
    public var sources: String
    /// `pixconv.precision_policy`: `PrecisionPolicy.summary`.
    public var precisionPolicy: String
    /// `general.file_type` (`GGMLType.fileType(for:)` of the target).
    public var fileType: UInt32
    /// More KVs, written after the pixconv keys and before the CRC keys.
    public var extraMetadata: [(key: String, value: GGUFValue)]

    public init(
        pixconvVersion: String, components: [String], configs: [String: String] = [:], spieceModel: [UInt8]? = nil,
        schedulerConfig: String? = nil, sources: String = "[]", precisionPolicy: String, fileType: UInt32,
        extraMetadata: [(key: String, value: GGUFValue)] = []
    ) {
        self.pixconvVersion = pixconvVersion
        self.components = components
        self.configs = configs
        self.spieceModel = spieceModel
        self.schedulerConfig = schedulerConfig
        self.sources = sources
        self.precisionPolicy = precisionPolicy
        self.fileType = fileType
        self.extraMetadata = extraMetadata
    }
}

/// What `PixconvStoreWriter.write` produced.
public struct StoreWriteSummary: Sendable, Equatable {
    public var path: String
    public var totalSize: Int
    public var tensorCRC32s: [UInt32]
}

/// Writes a pixconv store: a GGUF v3 file with the pixconv metadata and a CRC-32 per tensor.
///
/// One pass over the tensors (`formats/store.md` "Checksums"): the CRC array lives in the header,
/// before the data, so the header is written with zeros first and rewritten in place once every
/// tensor's CRC-32 is known.
public enum PixconvStoreWriter {
    /// Produces tensor `index` (described by `info`) by calling `sink` with its bytes, in order, in
    /// any number of pieces. Called once per tensor.
    public typealias Producer = (_ index: Int, _ info: TensorInfo, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws -> Void

    /// Writes `tensors` (names with their component prefix, in the order they will be stored) and
    /// `manifest` to `path` crash-safely. `finalManifest`, when given, is asked for the manifest
    /// once every tensor is written, and the header is rewritten with it: metadata known only at
    /// the end (input digests computed alongside) must then encode to the same header size.
    @discardableResult
    public static func write(
        to path: String, manifest: StoreManifest, tensors: [TensorInfo], replace: Bool = true,
        finalManifest: (() throws -> StoreManifest)? = nil, produce: Producer
    ) throws -> StoreWriteSummary {
        try validate(path: path, manifest: manifest, tensors: tensors)

        // One pass: the header goes first with zeroed checksums, the data streams while its CRC-32s
        // are computed, then the header is rewritten in place with them (same size) before the
        // file is published. The temporary file is never visible under the target name.
        let writer = try GGUFWriter(
            path: path, metadata: metadata(manifest, crcs: [UInt32](repeating: 0, count: tensors.count)), tensors: tensors,
            alignment: StoreKeys.storeAlignment, replace: replace, patchCRCKey: StoreKeys.headerCRC32)
        for (i, info) in tensors.enumerated() {
            var sent = 0
            try produce(i, info) { bytes in
                let (after, o) = sent.addingReportingOverflow(bytes.count)
                guard !o, after <= info.byteCount else {
                    throw StoreError.tensorSizeMismatch(file: path, tensor: info.name, expected: info.byteCount, actual: after)
                }
                if bytes.count > 0 { try writer.append(bytes) }
                sent = after
            }
            guard sent == info.byteCount else {
                throw StoreError.tensorSizeMismatch(file: path, tensor: info.name, expected: info.byteCount, actual: sent)
            }
        }
        let crcs = writer.tensorCRC32s
        try writer.rewriteHeader(metadata: metadata(try finalManifest?() ?? manifest, crcs: crcs))
        try writer.finish()
        return StoreWriteSummary(path: path, totalSize: writer.totalSize, tensorCRC32s: crcs)
    }

    /// Convenience: stores tensors read from `source` (each converted to the type in `tensors` by
    /// `TensorEncoder`), looked up by `sourceName(storedName)`.
    @discardableResult
    public static func write(
        to path: String, manifest: StoreManifest, tensors: [TensorInfo], from source: TensorSource,
        sourceName: (String) -> String = { $0 }, replace: Bool = true
    ) throws -> StoreWriteSummary {
        try write(to: path, manifest: manifest, tensors: tensors, replace: replace) { _, info, sink in
            let data = try source.data(for: sourceName(info.name))
            try TensorEncoder.stream(data, to: info.dtype, sink: sink)
        }
    }

    /// The KVs of a store, in the fixed order documented in `formats/store.md`.
    static func metadata(_ m: StoreManifest, crcs: [UInt32]) -> [(key: String, value: GGUFValue)] {
        var kvs: [(key: String, value: GGUFValue)] = [
            (StoreKeys.architecture, .string(StoreKeys.architectureName)),
            (StoreKeys.quantizationVersion, .uint32(StoreKeys.quantizationVersionValue)),
            (StoreKeys.fileType, .uint32(m.fileType)),
            (StoreKeys.alignment, .uint32(UInt32(StoreKeys.storeAlignment))),
            (StoreKeys.version, .string(m.pixconvVersion)),
            (StoreKeys.components, .array(.string(m.components))),
        ]
        for c in m.components {
            if let text = m.configs[c] { kvs.append((StoreKeys.config(c), .string(text))) }
        }
        if let sp = m.spieceModel { kvs.append((StoreKeys.spieceModel, .array(.uint8(sp)))) }
        if let sc = m.schedulerConfig { kvs.append((StoreKeys.schedulerConfig, .string(sc))) }
        kvs.append((StoreKeys.sources, .string(m.sources)))
        kvs.append((StoreKeys.precisionPolicy, .string(m.precisionPolicy)))
        kvs += m.extraMetadata
        kvs.append((StoreKeys.tensorCRC32, .array(.uint32(crcs))))
        kvs.append((StoreKeys.headerCRC32, .uint32(0)))  // filled in by GGUFWriter
        return kvs
    }

    static func validate(path: String, manifest m: StoreManifest, tensors: [TensorInfo]) throws {
        func fail(_ r: String) -> StoreError { .badWriterInput(file: path, reason: r) }
        guard Set(m.components).count == m.components.count else { throw fail("duplicate component") }
        for c in m.components where !StoreKeys.isValidComponent(c) { throw fail("bad component name '\(c)'") }
        for c in m.configs.keys where !m.components.contains(c) { throw fail("config for unknown component '\(c)'") }
        for t in tensors {
            guard let dot = t.name.firstIndex(of: "."), m.components.contains(String(t.name[..<dot])) else {
                throw fail("tensor '\(t.name)' does not start with a component prefix (\(m.components.joined(separator: ", ")))")
            }
        }
        let reserved: Set<String> = [StoreKeys.tensorCRC32, StoreKeys.headerCRC32, StoreKeys.architecture, StoreKeys.alignment]
        for kv in m.extraMetadata where reserved.contains(kv.key) { throw fail("'\(kv.key)' is written by the store writer") }
    }
}
