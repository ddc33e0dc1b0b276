#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PixconvCore

/// Small file-system helpers for the folder readers (POSIX calls, no Foundation).
public enum DiffusersFiles {
    public enum Kind: Equatable, Sendable {
        case missing, file, directory, other
    }

    /// What `path` is, following symbolic links (hub caches link files to blobs).
    public static func kind(of path: String) -> Kind {
        var st = stat()
        guard stat(path, &st) == 0 else { return .missing }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .directory
        default: return .other
        }
    }

    /// Names in `folder` (no `.`/`..`), sorted by their UTF-8 bytes.
    public static func list(_ folder: String) throws(ReaderError) -> [String] {
        guard let dir = opendir(folder) else { throw .file(.open(path: folder, errno: errno)) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// The whole content of the regular file at `path`, which must not exceed `limit` bytes.
    public static func read(_ path: String, limit: Int) throws(ReaderError) -> [UInt8] {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw .file(error) }
        guard file.count <= limit else { throw .fileTooLarge(path: path, size: file.count, limit: limit) }
        return [UInt8](file.bytes)
    }

    /// `folder/name`, without doubling a trailing slash.
    public static func join(_ folder: String, _ name: String) -> String {
        folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }

    /// The last path component, ignoring trailing slashes.
    public static func baseName(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1, p.hasSuffix("/") { p = p.dropLast() }
        return p.split(separator: "/").last.map(String.init) ?? String(p)
    }
}
