/// A value on the pickle machine's stack or in its memo: a plain leaf, or a reference to a
/// container in `PickleGraph`. Containers live in one flat table so that mutation through the
/// memo behaves like Python's shared objects and no Swift value ever nests deeply while the
/// machine runs (a pickle can nest 100 000 lists; only the final conversion walks them, iteratively).
enum PickleVMValue {
    case leaf(PickleValue)
    case object(Int)
}

enum PickleContainerKind {
    case list, tuple, dict, orderedDict, set, frozenset

    var name: String {
        switch self {
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .orderedDict: return "OrderedDict"
        case .set: return "set"
        case .frozenset: return "frozenset"
        }
    }
}

/// The hashable identity of a dict key or set element, with Python's equalities for the types a
/// checkpoint can use as keys (`True == 1`, `1.0 == 1`).
enum PickleKey: Hashable {
    case none
    case int(Int64)
    case big(String)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case global(String)
    case tuple([PickleKey])
}

struct PickleContainer {
    var kind: PickleContainerKind
    /// Elements; for dicts, keys and values alternate: k0, v0, k1, v1, …
    var items: [PickleVMValue] = []
    /// Keys already present (dicts, sets).
    var keys: Set<PickleKey> = []
}

/// The containers one pickle creates, and their conversion into `PickleValue` trees.
struct PickleGraph {
    var containers: [PickleContainer] = []

    mutating func make(_ kind: PickleContainerKind, _ items: [PickleVMValue] = []) -> PickleVMValue {
        containers.append(PickleContainer(kind: kind, items: items))
        return .object(containers.count - 1)
    }

    /// Longest string or bytes key, and most items in a tuple key: hashing cost per SETITEM stays
    /// bounded, so a memoized huge key inserted over and over cannot make the machine quadratic.
    static let maxKeyBytes = 1024
    static let maxKeyItems = 64

    /// The key identity of `value`; nil when Python would refuse it as a key (unhashable) or when
    /// it is a kind of key checkpoints never use (nested or long tuples, long strings, tensors).
    func key(of value: PickleVMValue, nested: Bool = false) -> PickleKey? {
        switch value {
        case let .leaf(v):
            switch v {
            case .none: return PickleKey.none
            case let .bool(b): return .int(b ? 1 : 0)
            case let .int(i): return .int(i)
            case let .bigInt(s): return .big(s)
            case let .float(d):
                if d.isNaN { return nil }
                if d == d.rounded(), let i = Int64(exactly: d) { return .int(i) }
                return .float(d)
            case let .string(s): return s.utf8.count <= PickleGraph.maxKeyBytes ? .string(s) : nil
            case let .bytes(b): return b.count <= PickleGraph.maxKeyBytes ? .bytes(b) : nil
            case let .global(g): return .global(g)
            default: return nil
            }
        case let .object(i):
            let c = containers[i]
            guard !nested, c.kind == .tuple || c.kind == .frozenset, c.items.count <= PickleGraph.maxKeyItems else { return nil }
            var parts: [PickleKey] = []
            for item in c.items {
                guard let k = key(of: item, nested: true) else { return nil }
                parts.append(k)
            }
            return .tuple(parts)
        }
    }

    /// Adds `value` under `key` to the dict `index`; a key given twice is an error (Python would
    /// silently keep the last value; a pickled dict never repeats a key).
    mutating func insert(into index: Int, key: PickleVMValue, value: PickleVMValue) -> String? {
        guard let k = self.key(of: key) else { return "unhashable or unsupported dict key" }
        guard containers[index].keys.insert(k).inserted else { return "duplicate dict key" }
        containers[index].items.append(key)
        containers[index].items.append(value)
        return nil
    }

    mutating func add(into index: Int, element: PickleVMValue) -> String? {
        guard let k = self.key(of: element) else { return "unhashable or unsupported set element" }
        if containers[index].keys.insert(k).inserted { containers[index].items.append(element) }
        return nil
    }

    /// Converts `root` into a tree without recursion. Shared containers are converted once (the
    /// result shares storage), but their logical size counts every time they occur, so that a
    /// "billion laughs" pickle is refused by `maxNodes`. Cycles and nesting beyond `maxDepth` are errors.
    func materialize(_ root: PickleVMValue, maxDepth: Int, maxNodes: Int, at offset: Int) throws(PickleError) -> PickleValue {
        guard case let .object(rootIndex) = root else {
            if case let .leaf(v) = root { return v }
            return .none
        }
        struct Frame {
            var index: Int
            var next = 0
            var built: [PickleValue] = []
            var size = 1
            var depth = 1
        }
        var cache: [Int: (value: PickleValue, size: Int, depth: Int)] = [:]
        var onPath = [Bool](repeating: false, count: containers.count)
        var frames = [Frame(index: rootIndex)]
        onPath[rootIndex] = true
        while var top = frames.popLast() {
            let items = containers[top.index].items
            if top.next < items.count {
                let child = items[top.next]
                top.next += 1
                switch child {
                case let .leaf(v):
                    top.built.append(v)
                    top.size += 1
                    top.depth = max(top.depth, 2)
                    frames.append(top)
                case let .object(j):
                    if let done = cache[j] {
                        top.built.append(done.value)
                        top.size += done.size
                        top.depth = max(top.depth, done.depth + 1)
                        frames.append(top)
                    } else {
                        guard !onPath[j] else { throw .corrupt("reference cycle between containers", offset: offset) }
                        guard frames.count + 2 <= maxDepth else { throw .limitExceeded("nesting depth (\(maxDepth))", offset: offset) }
                        onPath[j] = true
                        frames.append(top)
                        frames.append(Frame(index: j))
                    }
                }
                guard top.size <= maxNodes else { throw .limitExceeded("expanded size (\(maxNodes) values)", offset: offset) }
                continue
            }
            guard top.depth <= maxDepth else { throw .limitExceeded("nesting depth (\(maxDepth))", offset: offset) }
            let value = PickleGraph.build(containers[top.index].kind, top.built)
            onPath[top.index] = false
            cache[top.index] = (value, top.size, top.depth)
            guard var parent = frames.popLast() else { return value }
            parent.built.append(value)
            parent.size += top.size
            parent.depth = max(parent.depth, top.depth + 1)
            guard parent.size <= maxNodes else { throw .limitExceeded("expanded size (\(maxNodes) values)", offset: offset) }
            frames.append(parent)
        }
        return .none
    }

    static func build(_ kind: PickleContainerKind, _ items: [PickleValue]) -> PickleValue {
        switch kind {
        case .list: return .list(items)
        case .tuple: return .tuple(items)
        case .set, .frozenset: return .set(items)
        case .dict, .orderedDict:
            var entries: [PickleDictEntry] = []
            entries.reserveCapacity(items.count / 2)
            var i = 0
            while i + 1 < items.count {
                entries.append(PickleDictEntry(key: items[i], value: items[i + 1]))
                i += 2
            }
            return .dict(entries)
        }
    }
}
