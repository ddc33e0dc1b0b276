import PixconvCore

/// A sharded safetensors checkpoint: `*.safetensors.index.json` plus the shards it names.
///
/// Index format (transformers `modeling_utils.py` `save_pretrained` / `load_sharded_checkpoint`,
/// safetensors `docs/source/metadata_parsing.mdx`): `{"metadata": {...}, "weight_map": {tensor:
/// shard file}}`. The reference loaders trust the map and read each tensor from the shard it names,
/// ignoring anything else a shard holds; pixconv instead requires the map and the shards to agree
/// exactly, because every disagreement is a place where two tools would load different weights:
///
/// - shard names must be plain file names in the index's folder ending in `.safetensors` (no `/`,
///   `\`, NUL, leading `.` — so no `..` or hidden files — and no absolute paths), so an index can
///   never make pixconv open a file outside the model folder;
/// - every mapped tensor must exist in its shard (`tensorMissingFromShard`);
/// - a tensor stored in two shards is rejected even when the map picks one (`tensorInTwoShards`);
/// - a tensor stored in a shard but absent from the map is rejected (`tensorNotInIndex`): it
///   would be silently dropped by transformers but loaded by tools that scan the shards;
/// - only the keys `metadata` (an object) and `weight_map` (a non-empty object of strings) may
///   appear at the top level; `metadata.total_size`, if present, must be a non-negative integer,
///   but is not compared with the shards (writers disagree on what it counts).
///
/// Each shard is opened (mapped and validated) exactly once, in name order.
public final class SafetensorsIndex: TensorSource {
    public let path: String
    /// The folder holding the index and its shards.
    public let folder: String
    /// The index's `metadata` object (empty when absent).
    public let metadata: JSONObject
    /// Shard file names, sorted.
    public let shardNames: [String]
    /// Open shards by file name.
    public let shards: [String: SafetensorsFile]
    public let tensors: [TensorInfo]
    private let location: [String: SafetensorsFile]

    /// Largest index file accepted (real ones are well under 1 MB).
    public static let maxIndexBytes = 64 << 20

    public init(path: String, limits: SafetensorsHeader.Limits = SafetensorsHeader.Limits()) throws(ReaderError) {
        self.path = path
        let folder = SafetensorsIndex.folder(of: path)
        self.folder = folder
        let root: JSONValue
        do {
            root = try StrictJSON.parse(try DiffusersFiles.read(path, limit: SafetensorsIndex.maxIndexBytes))
        } catch let error as JSONError {
            throw .badConfig(path: path, error: error)
        } catch let error as ReaderError {
            throw error
        } catch {
            throw .badIndex(path: path, reason: "\(error)")
        }
        guard case let .object(top) = root else { throw .badIndex(path: path, reason: "index is not a json object") }
        for key in top.keys where key != "metadata" && key != "weight_map" {
            throw .badIndex(path: path, reason: "unknown top-level key \"\(key)\"")
        }
        var metadata = JSONObject()
        if let m = top["metadata"] {
            guard case let .object(o) = m else { throw .badIndex(path: path, reason: "metadata is not an object") }
            if let total = o["total_size"], total.number?.nonNegativeInteger(maxValue: UInt64(Int.max)) == nil {
                throw .badIndex(path: path, reason: "metadata.total_size is not a non-negative integer")
            }
            metadata = o
        }
        self.metadata = metadata
        guard case let .object(map)? = top["weight_map"] else {
            throw .badIndex(path: path, reason: "weight_map is missing or not an object")
        }
        guard !map.isEmpty else { throw .badIndex(path: path, reason: "weight_map is empty") }

        var shardOf: [String: String] = [:]
        shardOf.reserveCapacity(map.count)
        var names = Set<String>()
        for m in map.members {
            guard case let .string(shard) = m.value else {
                throw .badIndex(path: path, reason: "weight_map value for \(m.key) is not a string (byte \(m.offset))")
            }
            guard SafetensorsIndex.isPlainShardName(shard) else { throw .badShardName(path: path, shard: shard) }
            shardOf[m.key] = shard
            names.insert(shard)
        }
        self.shardNames = names.sorted()

        var shards: [String: SafetensorsFile] = [:]
        for name in shardNames {
            shards[name] = try SafetensorsFile(path: folder + "/" + name, limits: limits)
        }
        self.shards = shards

        // Map → shards: each mapped tensor is where the map says.
        var location: [String: SafetensorsFile] = [:]
        location.reserveCapacity(shardOf.count)
        var infos: [TensorInfo] = []
        infos.reserveCapacity(shardOf.count)
        for m in map.members {
            guard let shardName = shardOf[m.key], let shard = shards[shardName] else { continue }
            guard let info = shard.info(named: m.key) else {
                throw .tensorMissingFromShard(path: path, tensor: m.key, shard: shardName)
            }
            location[m.key] = shard
            infos.append(info)
        }
        // Shards → map: nothing stored that the map does not point at.
        for name in shardNames {
            guard let shard = shards[name] else { continue }
            for info in shard.tensors where shardOf[info.name] != name {
                if let mapped = shardOf[info.name] {
                    throw .tensorInTwoShards(path: path, tensor: info.name, shards: [mapped, name].sorted())
                }
                throw .tensorNotInIndex(path: path, tensor: info.name, shard: name)
            }
        }
        self.location = location
        self.tensors = infos.sorted { $0.name < $1.name }
    }

    public func data(for name: String) throws -> TensorData {
        guard let shard = location[name] else { throw ReaderError.tensorNotFound(path: path, tensor: name) }
        return try shard.data(for: name)
    }

    /// The shard file name holding `name`.
    public func shardName(of name: String) -> String? {
        location[name].map { String($0.path.dropFirst(folder.count + 1)) }
    }

    /// `metadata.total_size` as declared by the writer, if any.
    public var declaredTotalSize: Int? { metadata["total_size"]?.number?.nonNegativeInteger(maxValue: UInt64(Int.max)) }

    /// A file name without any path component that ends in `.safetensors`.
    public static func isPlainShardName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard bytes.count > ".safetensors".utf8.count, name.hasSuffix(".safetensors") else { return false }
        guard bytes.first != UInt8(ascii: ".") else { return false }
        return !bytes.contains { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "\\") || $0 == 0 }
    }

    static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let folder = String(path[..<slash])
        return folder.isEmpty ? "/" : folder
    }
}
