import PixconvCore

/// An inert pickle virtual machine: it decodes pickle opcodes (protocols 0–5, the subset real
/// checkpoints use) into plain `PickleValue`s and never imports, calls or executes anything.
///
/// Mirrors CPython `Lib/pickle.py` `_Unpickler` (stack + mark stack + memo) and the checks of
/// torch 2.15 `torch/_weights_only_unpickler.py`, and is stricter: globals resolve only against
/// `PickleGlobal`'s allow-list (checked at GLOBAL/STACK_GLOBAL time), INST/OBJ/EXT* are refused,
/// APPEND(S) only on lists, SETITEM(S) only on dicts, BUILD only on OrderedDicts, PROTO only first,
/// nothing after STOP, and every length is compared with the bytes left before anything is allocated.
/// The machine is iterative (no recursion); limits bound operations, stack, marks, memo and nesting.
public struct PickleMachine {
    public struct Limits: Sendable {
        public var maxOperations = 10_000_000
        public var maxStack = 200_000
        public var maxMarks = 1_000
        public var maxMemo = 1_000_000
        public var maxDepth = 1_000
        public var maxNodes = 4_000_000
        public var maxIntegerBytes = 256
        public init() {}
    }

    /// How BINPERSID ids look: zip checkpoints use 5-tuples, the legacy stream format 6-tuples.
    public enum PersistentIDs: Sendable {
        case zip, legacy
    }

    public struct Result: Sendable {
        public var value: PickleValue
        /// Offset just past STOP.
        public var end: Int
        /// Storages the pickle references, in first-seen order.
        public var storages: [PickleStorageRef]
    }

    /// Runs the pickle that starts at `start`. With `requireEnd`, STOP must be the last byte.
    public static func run(_ bytes: UnsafeRawBufferPointer, from start: Int = 0, persistentIDs: PersistentIDs = .zip,
                           requireEnd: Bool = true, limits: Limits = Limits()) throws(PickleError) -> Result {
        var vm = PickleVM(bytes: bytes, pos: start, persistentIDs: persistentIDs, limits: limits)
        let (root, stopOffset) = try vm.execute()
        if requireEnd, vm.pos != bytes.count { throw .trailingBytes(offset: vm.pos) }
        let value = try vm.graph.materialize(root, maxDepth: limits.maxDepth, maxNodes: limits.maxNodes, at: stopOffset)
        return Result(value: value, end: vm.pos, storages: vm.storageOrder.compactMap { vm.storages[$0] })
    }

    public static func run(_ bytes: [UInt8], persistentIDs: PersistentIDs = .zip) throws(PickleError) -> Result {
        do {
            return try bytes.withUnsafeBytes { raw in try run(raw, persistentIDs: persistentIDs) }
        } catch let error as PickleError {
            throw error
        } catch {
            throw .corrupt("\(error)", offset: 0)
        }
    }
}

/// The machine's state while it runs. `stack` holds every frame's values; `marks` the stack
/// heights at each MARK, so an opcode only sees the values above the innermost mark (Python's
/// `metastack`).
struct PickleVM {
    let bytes: UnsafeRawBufferPointer
    var pos: Int
    let persistentIDs: PickleMachine.PersistentIDs
    let limits: PickleMachine.Limits
    var graph = PickleGraph()
    var stack: [PickleVMValue] = []
    var marks: [Int] = []
    var memo: [Int: PickleVMValue] = [:]
    var frameEnd: Int?
    var storages: [String: PickleStorageRef] = [:]
    var storageOrder: [String] = []
    var op = 0  // offset of the opcode being run

    init(bytes: UnsafeRawBufferPointer, pos: Int, persistentIDs: PickleMachine.PersistentIDs, limits: PickleMachine.Limits) {
        self.bytes = bytes
        self.pos = pos
        self.persistentIDs = persistentIDs
        self.limits = limits
    }

    // MARK: - Reading

    /// Claims `n` bytes at `pos`; they must lie inside the input and inside the current frame.
    mutating func take(_ n: Int) throws(PickleError) -> Int {
        let limit = frameEnd ?? bytes.count
        guard n >= 0, n <= limit - pos else {
            if let f = frameEnd, n >= 0, n <= bytes.count - pos, pos + n > f {
                throw .corrupt("read straddles the end of a frame", offset: op)
            }
            throw .truncated(offset: op)
        }
        defer { pos += n }
        return pos
    }

    mutating func u8() throws(PickleError) -> UInt8 { bytes[try take(1)] }
    mutating func le<T: FixedWidthInteger>(_: T.Type) throws(PickleError) -> T {
        bytes.readLE(try take(MemoryLayout<T>.size), as: T.self)
    }

    mutating func slice(_ n: Int) throws(PickleError) -> UnsafeRawBufferPointer {
        let start = try take(n)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<(start + n)])
    }

    /// A length field followed by that many bytes: checked against the bytes left first.
    mutating func counted(_ length: UInt64) throws(PickleError) -> UnsafeRawBufferPointer {
        guard let n = Int(exactly: length), n <= bytes.count - pos else { throw .truncated(offset: op) }
        return try slice(n)
    }

    /// A protocol-0 line, without its newline.
    mutating func line() throws(PickleError) -> [UInt8] {
        let limit = frameEnd ?? bytes.count
        var i = pos
        while i < limit, bytes[i] != 0x0A { i += 1 }
        guard i < limit else { throw .truncated(offset: op) }
        let out = [UInt8](bytes[pos..<i])
        pos = i + 1
        return out
    }

    mutating func textLine() throws(PickleError) -> String {
        let raw = try line()
        guard let s = raw.withUnsafeBytes({ PickleText.utf8($0) }) else { throw .corrupt("line is not UTF-8", offset: op) }
        return s
    }

    mutating func text(_ raw: UnsafeRawBufferPointer) throws(PickleError) -> PickleVMValue {
        guard let s = PickleText.utf8(raw) else { throw .corrupt("string is not UTF-8", offset: op) }
        return .leaf(.string(s))
    }

    // MARK: - Stack

    mutating func push(_ v: PickleVMValue) throws(PickleError) {
        guard stack.count < limits.maxStack else { throw .limitExceeded("stack size (\(limits.maxStack))", offset: op) }
        stack.append(v)
    }

    var floor: Int { marks.last ?? 0 }

    mutating func pop() throws(PickleError) -> PickleVMValue {
        guard stack.count > floor else { throw .corrupt("stack underflow", offset: op) }
        return stack.removeLast()
    }

    func top() throws(PickleError) -> PickleVMValue {
        guard stack.count > floor, let last = stack.last else { throw .corrupt("stack underflow", offset: op) }
        return last
    }

    /// Values above the innermost MARK, which is removed (Python's `pop_mark`).
    mutating func popMark() throws(PickleError) -> [PickleVMValue] {
        guard let m = marks.popLast() else { throw .corrupt("no MARK on the stack", offset: op) }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    /// The container index of `v` when it is a container of one of `kinds`.
    func container(_ v: PickleVMValue, _ kinds: [PickleContainerKind], _ what: String) throws(PickleError) -> Int {
        guard case let .object(i) = v, kinds.contains(graph.containers[i].kind) else {
            throw .corrupt("\(what) target must be a \(kinds[0].name)", offset: op)
        }
        return i
    }

    mutating func memoPut(_ index: Int) throws(PickleError) {
        guard index >= 0 else { throw .corrupt("negative memo index", offset: op) }
        let value = try top()
        if memo.updateValue(value, forKey: index) == nil, memo.count > limits.maxMemo {
            throw .limitExceeded("memo size (\(limits.maxMemo))", offset: op)
        }
    }

    mutating func memoGet(_ index: Int) throws(PickleError) {
        guard let v = memo[index] else { throw .memoMissing(index: index, offset: op) }
        try push(v)
    }

    mutating func global(_ name: String) throws(PickleError) {
        guard PickleGlobal.resolve(name) != nil else { throw .disallowedGlobal(name, offset: op) }
        try push(.leaf(.global(name)))
    }
}
