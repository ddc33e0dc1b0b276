import CFileGuard
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors of opening, mapping and writing files.
public enum FileError: Error, CustomStringConvertible, Equatable {
    case open(path: String, errno: Int32)
    case notRegularFile(path: String)
    case map(path: String, errno: Int32)
    case write(path: String, errno: Int32)
    case exists(path: String)
    /// A mapped input shrank while it was being read (another process truncated or rewrote it).
    case changedWhileRead(path: String, offset: UInt64)

    public var description: String {
        switch self {
        case let .open(path, e): return "\(path): cannot open: \(errnoText(e))"
        case let .notRegularFile(path): return "\(path): not a regular file"
        case let .map(path, e): return "\(path): cannot map: \(errnoText(e))"
        case let .write(path, e): return "\(path): cannot write: \(errnoText(e))"
        case let .exists(path): return "\(path): already exists (use --force to replace it)"
        case let .changedWhileRead(path, offset):
            return "\(path): file changed while being read: the data at byte \(offset) can no longer be read "
                + "(truncated or replaced by another process)"
        }
    }
}

public func errnoText(_ e: Int32) -> String { String(cString: strerror(e)) }

/// A read-only, private memory mapping of a whole regular file, unmapped in `deinit`.
///
/// Bytes are read in place (zero-copy); `Data(contentsOf:options:.mappedIfSafe)` would copy on Linux.
/// Every mapping is recorded with `CFileGuard`, so that SIGBUS from a file truncated by another
/// process while mapped is reported naming the file and offset (`FileGuard`).
public final class MappedFile: @unchecked Sendable {  // immutable after init; unmapped in deinit
    public let path: String
    public let bytes: UnsafeRawBufferPointer
    private let guardSlot: Int32

    public init(path: String) throws(FileError) {
        self.path = path
        // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused as not regular below).
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw .open(path: path, errno: errno) }
        defer { close(fd) }  // the mapping outlives the descriptor
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .open(path: path, errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .notRegularFile(path: path) }
        let size = Int(st.st_size)
        guard size > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            guardSlot = -1
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw .map(path: path, errno: errno)
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
        guardSlot = pixconv_file_guard_mapped(base, size, path)
    }

    public var count: Int { bytes.count }

    /// The bytes in `range`, which the caller has checked lies inside the file.
    public func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        precondition(range.lowerBound >= 0 && range.upperBound <= bytes.count, "slice outside the mapping")
        guard let base = bytes.baseAddress else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
    }

    /// Hints the kernel that the mapping will be read once from start to end.
    public func adviseSequential() {
        if let base = bytes.baseAddress {
            madvise(UnsafeMutableRawPointer(mutating: base), bytes.count, MADV_SEQUENTIAL)
        }
    }

    /// Drops this process's copies of the pages holding `range` (a slice of `bytes`), rounded out
    /// to whole pages and widened by `margin` bytes on each side (`madvise(MADV_DONTNEED)`). The
    /// mapping stays valid: the file is read-only and privately mapped, so a later read faults the
    /// same bytes back in from the page cache. Keeps a streaming reader's resident memory from
    /// growing with the file; `margin` (e.g. `faultAroundMargin`) also drops the neighbouring
    /// pages that the kernel maps along with a faulting one. Slices outside the mapping are ignored.
    public func dropPages(of range: UnsafeRawBufferPointer, margin: Int = 0) {
        guard let base = bytes.baseAddress, let start = range.baseAddress, range.count > 0, start >= base,
              start + range.count <= base + bytes.count, margin >= 0 else { return }
        let page = MappedFile.pageSize
        let lower = max(0, (start - base) - margin) / page * page
        let upper = min(bytes.count, ((start - base) + range.count + margin + page - 1) / page * page)
        madvise(UnsafeMutableRawPointer(mutating: base + lower), upper - lower, MADV_DONTNEED)
    }

    /// Asks the kernel to start reading the pages holding `range` (a slice of `bytes`) into the
    /// page cache now, in the background (`madvise(MADV_WILLNEED)`), so that a later pass over
    /// them waits less on the disk. Slices outside the mapping are ignored.
    public func prefetchPages(of range: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, let start = range.baseAddress, range.count > 0, start >= base,
              start + range.count <= base + bytes.count else { return }
        let page = MappedFile.pageSize
        let lower = (start - base) / page * page
        let upper = min(bytes.count, ((start - base) + range.count + page - 1) / page * page)
        madvise(UnsafeMutableRawPointer(mutating: base + lower), upper - lower, MADV_WILLNEED)
    }

    /// How far from a faulting page Linux maps other cached pages of the file ("fault-around",
    /// 64 KiB by default), with room to spare.
    public static let faultAroundMargin = 1 << 17

    static let pageSize = max(Int(sysconf(Int32(_SC_PAGESIZE))), 4096)

    deinit {
        pixconv_file_guard_unmapped(guardSlot)
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}

/// The process-wide SIGBUS guard over mapped files (`CFileGuard`).
public enum FileGuard {
    /// Installs the SIGBUS handler: a fault in a mapped file becomes one line on stderr naming the
    /// file and byte offset, the temporary output files being written are removed, and the
    /// process exits with status 1. For programs (the CLI), not libraries.
    public static func install() { pixconv_file_guard_install() }

    /// The mapped file holding `address` and the byte offset in it, if any.
    public static func mappedFile(containing address: UnsafeRawPointer) -> (path: String, offset: UInt64)? {
        var offset: UInt64 = 0
        var path = [CChar](repeating: 0, count: Int(PIXCONV_FILE_GUARD_MAP_PATH))
        guard pixconv_file_guard_lookup(address, &path, path.count, &offset) == 1 else { return nil }
        return (String(decoding: path.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), offset)
    }
}

extension UnsafeRawBufferPointer {
    /// Little-endian integer at `offset`; the caller has checked the range.
    @inlinable
    public func readLE<T: FixedWidthInteger>(_ offset: Int, as: T.Type = T.self) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
