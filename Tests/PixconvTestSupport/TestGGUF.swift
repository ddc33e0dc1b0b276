/// GGUF v3 bytes written field by field (`formats/store.md` §1), valid or not, independent of
/// pixconv's `GGUFWriter`. Every count, length, type and offset is whatever the caller writes.
public struct TestGGUF {
    /// The bytes written so far.
    public var bytes: [UInt8]
    /// The byte `data(_:)` repeats.
    public var dataFill: UInt8

    /// An empty file whose tensor data, written by `data(_:)`, is `dataFill` repeated.
    public init(bytes: [UInt8] = [], dataFill: UInt8 = 0) {
        self.bytes = bytes
        self.dataFill = dataFill
    }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u32(_ v: UInt32) { bytes += TestLE.bytes(UInt64(v), 4) }
    public mutating func u64(_ v: UInt64) { bytes += TestLE.u64(v) }
    /// A GGUF string: u64 byte length, then the UTF-8 bytes.
    public mutating func str(_ s: String) { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }

    /// Magic, version, tensor count, key/value count.
    public mutating func header(magic: String = "GGUF", version: UInt32 = 3, tensors: UInt64, kvs: UInt64) {
        bytes += Array(magic.utf8)
        u32(version)
        u64(tensors)
        u64(kvs)
    }

    /// A key/value pair of type UINT32 (4).
    public mutating func kvU32(_ key: String, _ v: UInt32) { str(key); u32(4); u32(v) }
    /// A key/value pair of type INT32 (5).
    public mutating func kvI32(_ key: String, _ v: Int32) { str(key); u32(5); u32(UInt32(bitPattern: v)) }
    /// A key/value pair of type STRING (8).
    public mutating func kvString(_ key: String, _ v: String) { str(key); u32(8); str(v) }

    /// A tensor info: name, dimension count, dims (ggml order, innermost first), ggml type, offset
    /// into the data section.
    public mutating func info(_ name: String, dims: [UInt64], type: UInt32, offset: UInt64) {
        str(name)
        u32(UInt32(dims.count))
        dims.forEach { u64($0) }
        u32(type)
        u64(offset)
    }

    /// Zero bytes up to the next multiple of `a`.
    public mutating func pad(_ a: Int = 32) { while bytes.count % a != 0 { bytes.append(0) } }
    /// `n` bytes of tensor data, each `dataFill`.
    public mutating func data(_ n: Int) { bytes += [UInt8](repeating: dataFill, count: n) }

    /// One F32 tensor `w` of 4 × 2 (ggml ne = [4, 2]) with `general.architecture` set, zero data.
    public static func valid() -> [UInt8] {
        var g = TestGGUF()
        g.header(tensors: 1, kvs: 1)
        g.kvString("general.architecture", "pixart")
        g.info("w", dims: [4, 2], type: 0, offset: 0)
        g.pad()
        g.data(32)
        return g.bytes
    }
}
