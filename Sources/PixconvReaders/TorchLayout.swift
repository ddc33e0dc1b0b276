import PixconvCore

/// Record layout of a zip checkpoint and the naming of the values its pickle holds.
extension TorchCheckpoint {
    struct Layout {
        let folder: String
        let dataPickle: ZipEntry
        let bigEndian: Bool
    }

    /// One top-level folder, exactly one `data.pkl` (at `<folder>/data.pkl`), no TorchScript
    /// records, a readable `byteorder` (absent = little) and a version record
    /// (`caffe2/serialize/inline_container.cc` reads `.data/version`, then `version`).
    static func checkLayout(_ archive: ZipArchive) throws -> Layout {
        guard let first = archive.entries.first else { throw TorchError.notACheckpoint("empty zip archive") }
        guard let slash = first.name.firstIndex(of: "/") else {
            throw TorchError.layout("record \(first.name) is not inside a top-level folder")
        }
        let folder = String(first.name[..<slash])
        for entry in archive.entries {
            guard entry.name.hasPrefix(folder + "/") else {
                throw TorchError.layout("records in two top-level folders (\(folder), \(entry.name))")
            }
            let inner = entry.name.dropFirst(folder.count + 1)
            if inner == "constants.pkl" || inner.hasPrefix("code/") { throw TorchError.torchScript }
            if inner != "data.pkl", entry.name.hasSuffix("/data.pkl") {
                throw TorchError.layout("second data.pkl at \(entry.name)")
            }
        }
        guard let dataPickle = archive.entry(named: folder + "/data.pkl") else {
            throw TorchError.notACheckpoint("no \(folder)/data.pkl")
        }
        var bigEndian = false
        if let order = archive.entry(named: folder + "/byteorder") {
            switch try smallText(archive, order) {
            case "little": bigEndian = false
            case "big": bigEndian = true
            case let other: throw TorchError.badRecord(record: order.name, reason: "unknown byte order \(other.debugDescription)")
            }
        }
        guard let version = archive.entry(named: folder + "/.data/version") ?? archive.entry(named: folder + "/version") else {
            throw TorchError.layout("no version record")
        }
        let text = try smallText(archive, version)
        let digits = text.hasSuffix("\n") ? String(text.dropLast()) : text
        guard let v = Int(digits), v >= 1, v <= 64 else {
            throw TorchError.badRecord(record: version.name, reason: "bad version \(text.debugDescription)")
        }
        return Layout(folder: folder, dataPickle: dataPickle, bigEndian: bigEndian)
    }

    static func smallText(_ archive: ZipArchive, _ entry: ZipEntry) throws -> String {
        let record = try archive.read(entry, limit: 64)
        guard let text = record.withBytes({ PickleText.utf8($0) }) else { throw TorchError.badRecord(record: entry.name, reason: "not UTF-8") }
        return text
    }

    /// Splits the pickled object into tensors and other leaves, named by their path of keys like
    /// `scripts/make_fixtures.py::walk` (empty dicts, lists and tuples yield nothing). Iterative;
    /// the pickle machine already bounds nesting and size.
    static func flatten(_ root: PickleValue) throws -> (tensors: [(String, PickleTensorRef)], values: [(name: String, value: PickleValue)]) {
        var tensors: [(String, PickleTensorRef)] = []
        var values: [(name: String, value: PickleValue)] = []
        var work: [(String, PickleValue)] = [("", root)]
        func join(_ path: String, _ part: String) throws -> String {
            let name = path.isEmpty ? part : path + "." + part
            guard name.utf8.count <= maxNameBytes else { throw TorchError.layout("value path longer than \(maxNameBytes) bytes") }
            return name
        }
        while let (path, value) = work.popLast() {
            switch value {
            case let .tensor(ref):
                tensors.append((path.isEmpty ? "tensor" : path, ref))
            case let .dict(entries):
                for entry in entries.reversed() { work.append((try join(path, keyName(entry.key)), entry.value)) }
            case let .list(items), let .tuple(items):
                for (i, item) in items.enumerated().reversed() { work.append((try join(path, String(i)), item)) }
            default:
                values.append((path, value))
            }
        }
        return (tensors, values)
    }

    /// Longest tensor or value name (bounds memory for deeply nested, long-keyed pickles).
    static let maxNameBytes = 4096

    /// A dict key as Python's `str(key)` spells it (what `f"{prefix}.{k}"` produces).
    static func keyName(_ key: PickleValue) -> String {
        switch key {
        case let .string(s): return s
        default: return pythonRepr(key)
        }
    }

    /// Python's `repr` of a key-like value; containers other than tuples fall back to `summary`.
    static func pythonRepr(_ value: PickleValue) -> String {
        switch value {
        case .none: return "None"
        case let .bool(b): return b ? "True" : "False"
        case let .int(i): return String(i)
        case let .bigInt(s): return s
        case let .float(d):
            if d.isNaN { return "nan" }
            if d.isInfinite { return d < 0 ? "-inf" : "inf" }
            return String(d)
        case let .string(s):
            var out = "'"
            for c in s {
                if c == "\\" || c == "'" { out.append("\\") }
                out.append(c)
            }
            return out + "'"
        case let .tuple(items):
            let parts = items.map { pythonRepr($0) }
            return "(" + parts.joined(separator: ", ") + (parts.count == 1 ? ",)" : ")")
        default: return value.summary
        }
    }
}
