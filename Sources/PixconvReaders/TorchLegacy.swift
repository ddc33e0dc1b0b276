import PixconvCore

/// The pre-1.6 stream format (`torch/serialization.py::_legacy_save` / `_legacy_load`): five
/// pickles back to back — the magic number, the protocol version 1001, `sys_info`, the object,
/// the list of storage keys — then, for each key in that list, an 8-byte little-endian element
/// count and the storage's raw little-endian bytes (`THPStorage_writeFileRaw`). Persistent ids are
/// 6-tuples whose last item is `view_metadata`.
///
/// Stricter than torch: the magic must be a literal LONG1 (never the result of a call), the key
/// list must name exactly the storages the object uses, each count must equal the declared numel,
/// and the file must end right after the last storage.
struct TorchLegacy {
    let root: PickleValue
    /// Root storages by key.
    let storages: [String: PickleStorageRef]
    /// Byte range of each storage's data in the file.
    let ranges: [String: Range<Int>]

    /// `PROTO n; LONG1 10 bytes <0x1950a86a20f9469cfc6c>; STOP`.
    static let magicTail: [UInt8] = [0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E]

    static func looksLegacy(_ b: UnsafeRawBufferPointer) -> Bool {
        guard b.count >= 2 + magicTail.count, b[0] == 0x80, b[1] <= 5 else { return false }
        return UnsafeRawBufferPointer(rebasing: b[2..<(2 + magicTail.count)]).elementsEqual(magicTail)
    }

    init(_ b: UnsafeRawBufferPointer) throws {
        guard TorchLegacy.looksLegacy(b) else { throw TorchError.legacy("magic number is not a literal LONG1") }
        var pos = 2 + TorchLegacy.magicTail.count

        let version = try PickleMachine.run(b, from: pos, requireEnd: false)
        guard version.value == .int(1001) else { throw TorchError.legacy("protocol version is \(version.value.summary), expected 1001") }
        pos = version.end

        let sysInfo = try PickleMachine.run(b, from: pos, requireEnd: false)
        guard sysInfo.value["protocol_version"] == .int(1001), case .bool? = sysInfo.value["little_endian"] else {
            throw TorchError.legacy("bad sys_info")
        }
        pos = sysInfo.end

        let object = try PickleMachine.run(b, from: pos, persistentIDs: .legacy, requireEnd: false)
        pos = object.end
        let keyList = try PickleMachine.run(b, from: pos, requireEnd: false)
        pos = keyList.end
        guard case let .list(keyValues) = keyList.value else { throw TorchError.legacy("storage key list is not a list") }

        var storages: [String: PickleStorageRef] = [:]
        for s in object.storages { storages[s.key] = s }
        var ranges: [String: Range<Int>] = [:]
        for keyValue in keyValues {
            guard case let .string(key) = keyValue else { throw TorchError.legacy("storage key is not a string") }
            guard let storage = storages[key] else { throw TorchError.legacy("storage \(key) is listed but never used") }
            guard ranges[key] == nil else { throw TorchError.legacy("storage \(key) is listed twice") }
            guard b.count - pos >= 8 else { throw TorchError.legacy("file ends before storage \(key)") }
            let count = b.readLE(pos, as: Int64.self)
            pos += 8
            guard count == Int64(storage.numel), let size = storage.byteCount else {
                throw TorchError.legacy("storage \(key) holds \(count) elements, its id says \(storage.numel)")
            }
            guard b.count - pos >= size else { throw TorchError.legacy("file ends inside storage \(key)") }
            ranges[key] = pos..<(pos + size)
            pos += size
        }
        for key in storages.keys where ranges[key] == nil {
            throw TorchError.legacy("storage \(key) is used but not in the key list")
        }
        guard pos == b.count else { throw TorchError.legacy("\(b.count - pos) bytes after the last storage") }
        self.root = object.value
        self.storages = storages
        self.ranges = ranges
    }
}
