import PixconvCore

/// A memory-mapped `.safetensors` file whose tensors are handed out zero-copy.
///
/// The whole header is validated on open (`SafetensorsHeader.parse`, as strict as safetensors'
/// `SafeTensors::deserialize` and stricter, see there), so `data(for:)` only slices the mapping.
/// Format: huggingface/safetensors `README.md` "Format"; `formats/safetensors.md`.
///
/// Limitations: the file must not be truncated by another process while it is mapped (reads of
/// the lost pages would raise SIGBUS); the converter writes its outputs to new files instead.
public final class SafetensorsFile: TensorSource {
    public let path: String
    public let file: MappedFile
    /// Every tensor, sorted by name.
    public let tensors: [TensorInfo]
    /// The `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    /// N from the 8-byte length prefix; tensor data starts at 8 + N.
    public let headerLength: Int
    private let ranges: [String: Range<Int>]

    public init(path: String, limits: SafetensorsHeader.Limits = SafetensorsHeader.Limits()) throws(ReaderError) {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw .file(error) }
        let header = try SafetensorsHeader.parse(file.bytes, path: path, limits: limits)
        self.path = path
        self.file = file
        self.tensors = header.entries.map(\.info)
        self.metadata = header.metadata
        self.headerLength = header.headerLength
        var ranges: [String: Range<Int>] = [:]
        ranges.reserveCapacity(header.entries.count)
        for e in header.entries { ranges[e.info.name] = e.range }
        self.ranges = ranges
    }

    /// The tensor's bytes, in place in the mapping (kept alive by the returned value).
    public func data(for name: String) throws -> TensorData {
        guard let range = ranges[name], let info = info(named: name) else {
            throw ReaderError.tensorNotFound(path: path, tensor: name)
        }
        return TensorData(info: info, owner: file, bytes: file.slice(range))
    }

    /// The info of `name` by binary search over the sorted `tensors`.
    public func info(named name: String) -> TensorInfo? {
        var low = 0
        var high = tensors.count
        while low < high {
            let mid = (low + high) / 2
            if tensors[mid].name < name { low = mid + 1 } else { high = mid }
        }
        return low < tensors.count && tensors[low].name == name ? tensors[low] : nil
    }

    /// The absolute byte range of `name` in the file.
    public func byteRange(of name: String) -> Range<Int>? { ranges[name] }
}
