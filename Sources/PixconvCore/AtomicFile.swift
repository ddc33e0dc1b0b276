import CFileGuard
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file crash-safely: a temporary file in the target's folder, preallocated when the
/// final size is known, written, fsync'ed, renamed onto the target, and the folder fsync'ed.
///
/// Until `commit()` succeeds the target is untouched; a writer dropped without `commit()` (an
/// error half-way) removes its temporary file. Protocol: `formats/hostile-inputs.md`, "Writes: reliability properties".
public final class AtomicFile {
    /// The system calls an `AtomicFile` makes on its temporary file. Tests replace them to inject
    /// faults (ENOSPC or EIO at the Nth write, short writes, EINTR, a failing fsync or fallocate);
    /// `.system` is the real thing. Each returns what the system call returns and sets `errno`,
    /// except `fallocate`, which returns the error number like `posix_fallocate`.
    public struct SystemCalls: Sendable {
        public var write: @Sendable (Int32, UnsafeRawPointer, Int) -> Int
        public var pwrite: @Sendable (Int32, UnsafeRawPointer, Int, off_t) -> Int
        public var fallocate: @Sendable (Int32, off_t) -> Int32
        public var fsync: @Sendable (Int32) -> Int32

        public init(
            write: @escaping @Sendable (Int32, UnsafeRawPointer, Int) -> Int,
            pwrite: @escaping @Sendable (Int32, UnsafeRawPointer, Int, off_t) -> Int,
            fallocate: @escaping @Sendable (Int32, off_t) -> Int32,
            fsync: @escaping @Sendable (Int32) -> Int32
        ) {
            self.write = write
            self.pwrite = pwrite
            self.fallocate = fallocate
            self.fsync = fsync
        }

        public static let system = SystemCalls(
            write: { Glibc.write($0, $1, $2) },
            pwrite: { Glibc.pwrite($0, $1, $2, $3) },
            fallocate: { posix_fallocate($0, 0, $1) },
            fsync: { Glibc.fsync($0) }
        )
    }

    public let path: String
    public let temporaryPath: String
    private var fd: Int32
    private let replace: Bool
    private var committed = false
    /// The temporary file's slot in `CFileGuard`, which removes it if the process dies of SIGBUS.
    private var guardSlot: Int32 = -1
    private let calls: SystemCalls
    private var buffer: [UInt8] = []
    private let bufferLimit = 1 << 22
    /// Pieces at least this large are written straight from the caller's memory (no copy).
    private let directLimit = 1 << 18
    public private(set) var bytesWritten: Int = 0

    /// Starts writing `path`. Throws `.exists` if it exists and `replace` is false.
    public init(path: String, replace: Bool, expectedSize: Int? = nil, calls: SystemCalls = .system) throws(FileError) {
        self.path = path
        self.replace = replace
        self.calls = calls
        if !replace, access(path, F_OK) == 0 { throw FileError.exists(path: path) }
        let folder = AtomicFile.folder(of: path)
        let base = path.split(separator: "/").last.map(String.init) ?? path
        AtomicFile.removeStaleTemporaries(folder: folder, base: base)
        var name = ""
        var descriptor: Int32 = -1
        for _ in 0..<16 {
            name = folder + "/." + base + ".pixconv-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tmp"
            descriptor = open(name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
            if descriptor >= 0 || errno != EEXIST { break }
        }
        guard descriptor >= 0 else { throw .open(path: name, errno: errno) }
        self.fd = descriptor
        self.temporaryPath = name
        guardSlot = pixconv_file_guard_temporary(name)
        if let size = expectedSize, size > 0 {
            let rc = calls.fallocate(descriptor, off_t(size))
            // EOPNOTSUPP/EINVAL: the file system cannot preallocate; writes still report ENOSPC.
            // Every property is set, so `deinit` runs on this throw and removes the temporary file.
            if rc == ENOSPC || rc == EDQUOT || rc == EFBIG { throw FileError.write(path: path, errno: rc) }
        }
    }

    deinit {
        if !committed {
            if fd >= 0 { close(fd) }
            unlink(temporaryPath)
        }
        pixconv_file_guard_temporary_done(guardSlot)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if buffer.count + bytes.count > bufferLimit || bytes.count >= directLimit { try flush() }
        if bytes.count >= directLimit {
            try writeAll(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
        bytesWritten += bytes.count
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws in try write(raw) }
    }

    public func writeZeros(_ count: Int) throws {
        if count > 0 { try write([UInt8](repeating: 0, count: count)) }
    }

    /// Replaces `bytes.count` already-written bytes at `offset` (e.g. a header whose checksums are
    /// known only after the data). The range must lie inside what was written.
    public func overwrite(_ bytes: [UInt8], at offset: Int) throws {
        try flush()
        precondition(offset >= 0 && offset + bytes.count <= bytesWritten, "overwrite outside the written range")
        try bytes.withUnsafeBytes { raw in
            guard var p = raw.baseAddress else { return }
            var left = raw.count
            var at = off_t(offset)
            while left > 0 {
                let n = calls.pwrite(fd, p, left, at)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw FileError.write(path: path, errno: errno)
                }
                if n == 0 { throw FileError.write(path: path, errno: EIO) }  // no progress: never spin
                p += n
                left -= n
                at += off_t(n)
            }
        }
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws in try writeAll(raw) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = calls.write(fd, p, left)
            if n < 0 {
                if errno == EINTR { continue }
                // EFAULT: the source bytes are a mapping of an input that another process truncated.
                if errno == EFAULT, let input = FileGuard.mappedFile(containing: p) {
                    throw FileError.changedWhileRead(path: input.path, offset: input.offset)
                }
                throw FileError.write(path: path, errno: errno)
            }
            if n == 0 { throw FileError.write(path: path, errno: EIO) }  // no progress: never spin
            p += n
            left -= n
        }
    }

    /// Flushes, truncates preallocated space past what was written, fsyncs, renames onto the
    /// target and fsyncs the folder. An fsync failure is final and never retried.
    public func commit() throws {
        try flush()
        if ftruncate(fd, off_t(bytesWritten)) != 0 { throw FileError.write(path: path, errno: errno) }
        if calls.fsync(fd) != 0 { throw FileError.write(path: path, errno: errno) }
        if close(fd) != 0 {
            fd = -1
            throw FileError.write(path: path, errno: errno)
        }
        fd = -1
        if replace {
            if rename(temporaryPath, path) != 0 { throw FileError.write(path: path, errno: errno) }
        } else {
            // link() fails with EEXIST if another writer published the target meanwhile.
            if link(temporaryPath, path) != 0 {
                let e = errno
                if e == EEXIST { throw FileError.exists(path: path) }
                throw FileError.write(path: path, errno: e)
            }
            unlink(temporaryPath)
        }
        committed = true
        pixconv_file_guard_temporary_done(guardSlot)
        guardSlot = -1
        let dir = open(AtomicFile.folder(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            fsync(dir)
            close(dir)
        }
    }

    /// Deletes `.<base>.pixconv-<pid>-<n>.tmp` files left in `folder` by writers that died (a
    /// kill -9, a power cut): those whose process no longer exists.
    static func removeStaleTemporaries(folder: String, base: String) {
        guard let dir = opendir(folder) else { return }
        defer { closedir(dir) }
        let prefix = "." + base + ".pixconv-"
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            guard name.hasPrefix(prefix), name.hasSuffix(".tmp") else { continue }
            let rest = name.dropFirst(prefix.count)
            guard let dash = rest.firstIndex(of: "-"), let pid = pid_t(rest[..<dash]), pid > 0 else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink(folder + "/" + name) }
        }
    }

    static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let folder = String(path[..<slash])
        return folder.isEmpty ? "/" : folder
    }

    /// Writes `bytes` to `path` crash-safely in one call.
    public static func write(_ bytes: [UInt8], to path: String, replace: Bool = true, calls: SystemCalls = .system) throws {
        let file = try AtomicFile(path: path, replace: replace, expectedSize: bytes.count, calls: calls)
        try file.write(bytes)
        try file.commit()
    }
}
