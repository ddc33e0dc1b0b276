import Foundation
import PixconvCore

/// A PyTorch checkpoint (`torch.save`): the zip format (torch ≥ 1.6) or the legacy pickle stream,
/// read without executing anything (`PickleMachine`).
///
/// Zip layout (`torch/serialization.py::_save`, `caffe2/serialize/inline_container.cc`): one
/// top-level folder holding `data.pkl`, `data/<key>` storages, `byteorder` (big-endian storages are
/// byte-swapped on read) and `.data/version` or `version`. TorchScript archives are refused.
/// Tensors are named by their path of keys in the pickled object (`state_dict.blocks.0.attn.qkv.weight`,
/// list indices as numbers); every other leaf is listed in `values`. Opening reads only `data.pkl`
/// and small metadata records; tensor bytes are read by `data(for:)`.
public final class TorchCheckpoint: TensorSource, @unchecked Sendable {  // immutable after init; caches behind `lock`
    public enum Format: Sendable, Equatable {
        /// Zip checkpoint with its top-level folder name and archive prefix length.
        case zip(folder: String, prefixLength: Int)
        case legacy
    }

    public let path: String
    public let format: Format
    public let tensors: [TensorInfo]
    /// Non-tensor leaves by path, e.g. `("epoch", .int(3))`, sorted by name.
    public let values: [(name: String, value: PickleValue)]
    /// The whole unpickled object.
    public let root: PickleValue
    public let isBigEndian: Bool

    struct Tensor {
        let info: TensorInfo
        let ref: PickleTensorRef
        let record: String
    }

    enum Backend {
        case zip(ZipArchive, entries: [String: ZipEntry])
        case legacy(MappedFile, ranges: [String: Range<Int>])
    }

    /// Largest deflated storage that is inflated into memory (torch itself writes storages stored,
    /// which are mapped, never copied).
    public static let maxInflatedStorage = 8 << 30

    private let byName: [String: Tensor]
    private let backend: Backend
    private let lock = NSLock()
    private var cache: [String: ZipRecord] = [:]
    private var pendingReads: [String: Set<String>] = [:]

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        path = file.path
        let b = file.bytes
        guard b.count > 0 else { throw TorchError.notACheckpoint("empty file") }
        var root: PickleValue
        var storages: [String: PickleStorageRef] = [:]
        var recordSizes: [String: Int] = [:]
        if TorchLegacy.looksLegacy(b) {
            let legacy = try TorchLegacy(b)
            root = legacy.root
            storages = legacy.storages
            for (key, range) in legacy.ranges { recordSizes[key] = range.count }
            format = .legacy
            isBigEndian = false
            backend = .legacy(file, ranges: legacy.ranges)
        } else {
            let archive = try TorchCheckpoint.openArchive(file)
            let layout = try TorchCheckpoint.checkLayout(archive)
            let pickle = try archive.read(layout.dataPickle, limit: 1 << 30)
            let result = try pickle.withBytes { try PickleMachine.run($0) }  // an inflated pickle lives in `pickle`
            root = result.value
            var dataEntries: [String: ZipEntry] = [:]
            for s in result.storages {
                storages[s.key] = s
                if let entry = archive.entry(named: "\(layout.folder)/data/\(s.key)") {
                    dataEntries[s.key] = entry
                    recordSizes[s.key] = entry.uncompressedSize
                }
            }
            format = .zip(folder: layout.folder, prefixLength: archive.prefixLength)
            isBigEndian = layout.bigEndian
            backend = .zip(archive, entries: dataEntries)
        }
        self.root = root

        let (found, values) = try TorchCheckpoint.flatten(root)
        var byName: [String: Tensor] = [:]
        var pending: [String: Set<String>] = [:]
        let recordPrefix: String
        if case let .zip(folder, _) = format { recordPrefix = folder + "/data/" } else { recordPrefix = "storage " }
        for (name, ref) in found {
            let record = recordPrefix + ref.storage.key
            guard let root = storages[ref.storage.key], let size = recordSizes[ref.storage.key] else {
                throw TorchError.missingRecord(tensor: name, record: record)
            }
            let info = try TorchView.validate(name: name, ref: ref, root: root, recordSize: size, record: record)
            guard byName.updateValue(Tensor(info: info, ref: ref, record: record), forKey: name) == nil else {
                throw TorchError.duplicateTensorName(name)
            }
            pending[ref.storage.key, default: []].insert(name)
        }
        self.byName = byName
        self.pendingReads = pending
        self.tensors = byName.values.map(\.info).sorted { $0.name < $1.name }
        self.values = values.sorted { $0.name < $1.name }
    }

    /// Whether `file` looks like a torch checkpoint (a legacy stream with its literal magic number,
    /// or a zip whose records sit in one folder with a `data.pkl`). Reads only directory data; a
    /// file that passes may still be refused by `init` (TorchScript, bad pickle, bad records).
    public static func looksLikeCheckpoint(_ file: MappedFile) -> Bool {
        if TorchLegacy.looksLegacy(file.bytes) { return true }
        guard let archive = try? ZipArchive(file: file), let first = archive.entries.first,
              let slash = first.name.firstIndex(of: "/") else { return false }
        return archive.entry(named: first.name[..<slash] + "/data.pkl") != nil
    }

    static func openArchive(_ file: MappedFile) throws -> ZipArchive {
        do {
            return try ZipArchive(file: file)
        } catch {
            if error == .noEndRecord { throw TorchError.notACheckpoint("neither a zip archive nor a legacy pickle stream") }
            throw error
        }
    }

    /// The tensor's contiguous little-endian bytes: a slice of the file for a contiguous view of a
    /// stored little-endian record (zero-copy), a fresh buffer otherwise.
    public func data(for name: String) throws -> TensorData {
        guard let tensor = byName[name] else { throw TorchError.unknownTensor(name) }
        let storage = try storageBytes(tensor.ref.storage.key, servedTo: name)
        return try withExtendedLifetime(storage.owner) {
            try TorchView.extract(tensor.info, tensor.ref, from: storage)
        }
    }

    /// A non-tensor value by its dotted path (`epoch`).
    public func value(named name: String) -> PickleValue? {
        values.first { $0.name == name }?.value
    }

    /// The bytes of one storage in file order, read once: stored little-endian records are mapped
    /// slices (CRC-checked on first use); inflated or byte-swapped storages are kept until every
    /// tensor that uses them has been served once.
    private func storageBytes(_ key: String, servedTo name: String) throws -> ZipRecord {
        lock.lock()
        let cached = cache[key]
        lock.unlock()
        // Read, CRC-check, inflate or swap outside the lock so that tensors load in parallel; two
        // threads racing on one shared storage may both load it, and the first result is kept.
        var record: ZipRecord
        if let cached {
            record = cached
        } else {
            switch backend {
            case let .zip(archive, entries):
                guard let entry = entries[key] else { throw TorchError.missingRecord(tensor: name, record: key) }
                record = try archive.read(entry, limit: TorchCheckpoint.maxInflatedStorage)
            case let .legacy(file, ranges):
                guard let range = ranges[key] else { throw TorchError.missingRecord(tensor: name, record: key) }
                record = ZipRecord(owner: file, bytes: file.slice(range))
            }
            if isBigEndian, let itemSize = byName[name]?.ref.storage.dtype.blockBytes, itemSize > 1 {
                record = TorchView.byteSwapped(record, itemSize: itemSize)
            }
        }
        lock.lock()
        defer { lock.unlock() }
        if let winner = cache[key] { record = winner } else { cache[key] = record }
        pendingReads[key]?.remove(name)
        if pendingReads[key]?.isEmpty ?? true, record.owner is HeapBuffer {
            cache[key] = nil  // every user has had it once; a later read loads it again
        }
        return record
    }
}
