/// Describes one stored tensor: its full name, element type, shape (PyTorch order, outermost
/// first) and the number of bytes its contiguous little-endian data takes.
public struct TensorInfo: Sendable, Hashable, Codable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    public var byteCount: Int

    public init(name: String, dtype: DType, shape: [Int], byteCount: Int) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.byteCount = byteCount
    }

    /// Product of the shape (the shape was validated when the info was made).
    public var elementCount: Int { shape.reduce(1, *) }
}

/// Contiguous little-endian bytes of one tensor, valid while this value is alive.
///
/// The bytes live either in a file mapping or in a heap buffer; `owner` keeps that storage alive,
/// so the pointer is never handed out past the owner's lifetime.
public struct TensorData: @unchecked Sendable {  // the bytes are immutable; `owner` keeps them alive
    public let info: TensorInfo
    public let owner: AnyObject
    public let bytes: UnsafeRawBufferPointer

    public init(info: TensorInfo, owner: AnyObject, bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == info.byteCount, "tensor byte count does not match its info")
        self.info = info
        self.owner = owner
        self.bytes = bytes
    }

    /// Makes tensor data that owns a copy of `array`'s bytes.
    public init(info: TensorInfo, copying array: [UInt8]) {
        let buffer = HeapBuffer(count: array.count)
        array.withUnsafeBytes { src in
            if let base = src.baseAddress { buffer.pointer.copyMemory(from: base, byteCount: src.count) }
        }
        self.init(info: info, owner: buffer, bytes: UnsafeRawBufferPointer(buffer.bytes))
    }

    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(owner) { try body(bytes) }
    }
}

/// A heap allocation with a stable address, freed when the last reference goes.
public final class HeapBuffer: @unchecked Sendable {  // written once by its creator, then read-only
    public let pointer: UnsafeMutableRawPointer
    public let count: Int

    public init(count: Int) {
        self.count = count
        self.pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
    }

    public var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: pointer, count: count) }

    deinit { pointer.deallocate() }
}

/// Anything that holds named tensors: a safetensors file, a torch checkpoint, a diffusers folder,
/// a pixconv store. Names are unique; `tensors` is sorted by name.
public protocol TensorSource: AnyObject, Sendable {
    /// Every tensor, sorted by name.
    var tensors: [TensorInfo] { get }
    /// The contiguous bytes of one tensor. Throws when the tensor is missing or its bytes are bad.
    func data(for name: String) throws -> TensorData
}

extension TensorSource {
    public func info(for name: String) -> TensorInfo? {
        tensors.first { $0.name == name }
    }
}
