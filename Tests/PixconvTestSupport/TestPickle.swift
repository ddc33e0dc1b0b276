/// Pickle opcodes written by hand (CPython `Lib/pickletools.py` numbering), protocol 2 unless said
/// otherwise, independent of pixconv's `PickleMachine`; the torch helpers follow what `torch.save`
/// writes (`torch/serialization.py`, `torch/_utils.py`).
public enum TestPickle {
    public static let MARK: UInt8 = 0x28, STOP: UInt8 = 0x2E, POP: UInt8 = 0x30, POP_MARK: UInt8 = 0x31, DUP: UInt8 = 0x32
    public static let NONE: UInt8 = 0x4E, NEWTRUE: UInt8 = 0x88, NEWFALSE: UInt8 = 0x89
    public static let REDUCE: UInt8 = 0x52, BUILD: UInt8 = 0x62, NEWOBJ: UInt8 = 0x81, STACK_GLOBAL: UInt8 = 0x93
    public static let BINPERSID: UInt8 = 0x51, INST: UInt8 = 0x69, OBJ: UInt8 = 0x6F
    public static let EMPTY_TUPLE: UInt8 = 0x29, TUPLE: UInt8 = 0x74, TUPLE1: UInt8 = 0x85, TUPLE2: UInt8 = 0x86, TUPLE3: UInt8 = 0x87
    public static let EMPTY_LIST: UInt8 = 0x5D, APPEND: UInt8 = 0x61, APPENDS: UInt8 = 0x65
    public static let EMPTY_DICT: UInt8 = 0x7D, SETITEM: UInt8 = 0x73, SETITEMS: UInt8 = 0x75, MEMOIZE: UInt8 = 0x94

    /// PROTO `v`.
    public static func proto(_ v: UInt8 = 2) -> [UInt8] { [0x80, v] }
    /// GLOBAL `module\nname\n`.
    public static func global(_ module: String, _ name: String) -> [UInt8] { [0x63] + Array("\(module)\n\(name)\n".utf8) }
    /// BINUNICODE.
    public static func str(_ s: String) -> [UInt8] { [0x58] + TestLE.u32(s.utf8.count) + Array(s.utf8) }
    /// SHORT_BINUNICODE (protocol 4).
    public static func short(_ s: String) -> [UInt8] { [0x8C, UInt8(s.utf8.count)] + Array(s.utf8) }
    /// The shortest of BININT1, BININT2, BININT and LONG1 (8 bytes) that holds `v`.
    public static func int(_ v: Int) -> [UInt8] {
        if (0...255).contains(v) { return [0x4B, UInt8(v)] }
        if (0...65535).contains(v) { return [0x4D] + TestLE.u16(v) }
        if Int32(exactly: v) != nil { return [0x4A] + TestLE.u32(v) }
        return [0x8A, 8] + TestLE.u64(UInt64(bitPattern: Int64(v)))
    }
    /// BINPUT `i`.
    public static func put(_ i: UInt8) -> [UInt8] { [0x71, i] }
    /// BINGET `i`.
    public static func get(_ i: UInt8) -> [UInt8] { [0x68, i] }
    /// `(a, b, …)` of ints.
    public static func tuple(_ items: [Int]) -> [UInt8] { [MARK] + items.flatMap { int($0) } + [TUPLE] }

    /// `('storage', torch.<type>, key, 'cpu', numel)` as a persistent id.
    public static func storage(key: String, type: String = "FloatStorage", numel: Int) -> [UInt8] {
        [MARK] + str("storage") + global("torch", type) + str(key) + str("cpu") + int(numel) + [TUPLE, BINPERSID]
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`.
    public static func tensor(key: String = "0", type: String = "FloatStorage", numel: Int, offset: Int = 0,
                              shape: [Int], stride: [Int]) -> [UInt8] {
        var b = global("torch._utils", "_rebuild_tensor_v2") + [MARK] + storage(key: key, type: type, numel: numel)
        b += int(offset) + tuple(shape) + tuple(stride) + [NEWFALSE] + global("collections", "OrderedDict") + [EMPTY_TUPLE, REDUCE]
        return b + [TUPLE, REDUCE]
    }

    /// `{k: v, …}` from already-encoded values.
    public static func dict(_ pairs: [(String, [UInt8])]) -> [UInt8] {
        [EMPTY_DICT, MARK] + pairs.flatMap { str($0.0) + $0.1 } + [SETITEMS]
    }

    /// `(callable)(arg)` with one string argument.
    public static func call(_ module: String, _ name: String, _ arg: String) -> [UInt8] {
        global(module, name) + str(arg) + [TUPLE1, REDUCE]
    }

    /// `{"w": tensor}` with a [2, 3] f32 view of storage "0" (6 elements), protocol 2.
    public static func stateDict() -> [UInt8] {
        proto() + dict([("w", tensor(numel: 6, shape: [2, 3], stride: [3, 1]))]) + [STOP]
    }
}
