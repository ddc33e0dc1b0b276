/// The opcode loop of `PickleVM`. Opcode values and semantics: CPython `Lib/pickletools.py`
/// (`opcodes`) and `Lib/pickle.py` (`_Unpickler.load_*`).
extension PickleVM {
    /// Runs until STOP; returns the value STOP pops and STOP's offset.
    mutating func execute() throws(PickleError) -> (PickleVMValue, Int) {
        var operations = 0
        var first = true
        while true {
            if let f = frameEnd, pos == f { frameEnd = nil }
            op = pos
            operations += 1
            guard operations <= limits.maxOperations else {
                throw .limitExceeded("operation count (\(limits.maxOperations))", offset: op)
            }
            let code = try u8()
            defer { first = false }
            switch code {
            case 0x80:  // PROTO
                let version = try u8()
                guard first else { throw .corrupt("PROTO after the first opcode", offset: op) }
                guard version <= 5 else { throw .corrupt("unsupported protocol \(version)", offset: op) }
            case 0x95:  // FRAME
                let length = try le(UInt64.self)
                if let f = frameEnd, pos < f { throw .corrupt("new frame before the end of the current frame", offset: op) }
                guard let n = Int(exactly: length), n <= bytes.count - pos else { throw .truncated(offset: op) }
                frameEnd = pos + n
            case 0x2E:  // STOP
                let value = try pop()
                guard marks.isEmpty, stack.isEmpty else {
                    throw .corrupt("STOP leaves \(stack.count) values and \(marks.count) marks", offset: op)
                }
                if let f = frameEnd, pos != f { throw .corrupt("STOP inside an unfinished frame", offset: op) }
                return (value, op)
            case 0x28:  // MARK
                guard marks.count < limits.maxMarks else { throw .limitExceeded("MARK depth (\(limits.maxMarks))", offset: op) }
                marks.append(stack.count)
            case 0x30: _ = try pop()  // POP
            case 0x31: _ = try popMark()  // POP_MARK
            case 0x32: try push(try top())  // DUP
            case 0x4E: try push(.leaf(.none))  // NONE
            case 0x88: try push(.leaf(.bool(true)))  // NEWTRUE
            case 0x89: try push(.leaf(.bool(false)))  // NEWFALSE
            case 0x4A: try push(.leaf(.int(Int64(try le(Int32.self)))))  // BININT
            case 0x4B: try push(.leaf(.int(Int64(try u8()))))  // BININT1
            case 0x4D: try push(.leaf(.int(Int64(try le(UInt16.self)))))  // BININT2
            case 0x8A, 0x8B:  // LONG1, LONG4
                let n = code == 0x8A ? Int64(try u8()) : Int64(try le(Int32.self))
                guard n >= 0 else { throw .corrupt("negative LONG4 length", offset: op) }
                guard n <= limits.maxIntegerBytes else { throw .limitExceeded("integer size (\(limits.maxIntegerBytes) bytes)", offset: op) }
                try push(.leaf(PickleText.long(try counted(UInt64(n)))))
            case 0x49, 0x4C:  // INT, LONG (text)
                let line = try textLine()
                if code == 0x49, line == "00" || line == "01" {
                    try push(.leaf(.bool(line == "01")))
                } else {
                    guard let v = PickleText.decimal(line, allowL: code == 0x4C) else { throw .corrupt("bad integer literal", offset: op) }
                    try push(.leaf(v))
                }
            case 0x46:  // FLOAT (text)
                guard let d = PickleText.float(try textLine()) else { throw .corrupt("bad float literal", offset: op) }
                try push(.leaf(.float(d)))
            case 0x47:  // BINFLOAT, big-endian
                try push(.leaf(.float(Double(bitPattern: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: try take(8), as: UInt64.self))))))
            case 0x53:  // STRING (quoted repr), decoded as UTF-8 like torch.load's encoding
                guard let raw = PickleText.quoted(try line()) else { throw .corrupt("bad STRING literal", offset: op) }
                guard let s = raw.withUnsafeBytes({ PickleText.utf8($0) }) else { throw .corrupt("string is not UTF-8", offset: op) }
                try push(.leaf(.string(s)))
            case 0x54:  // BINSTRING
                let n = try le(Int32.self)
                guard n >= 0 else { throw .corrupt("negative BINSTRING length", offset: op) }
                try push(try text(try counted(UInt64(n))))
            case 0x55: try push(try text(try counted(UInt64(try u8()))))  // SHORT_BINSTRING
            case 0x56:  // UNICODE (raw-unicode-escape line)
                guard let s = PickleText.rawUnicodeEscape(try line()) else { throw .corrupt("bad UNICODE literal", offset: op) }
                try push(.leaf(.string(s)))
            case 0x58: try push(try text(try counted(UInt64(try le(UInt32.self)))))  // BINUNICODE
            case 0x8C: try push(try text(try counted(UInt64(try u8()))))  // SHORT_BINUNICODE
            case 0x8D: try push(try text(try counted(try le(UInt64.self))))  // BINUNICODE8
            case 0x42, 0x43, 0x8E, 0x96:  // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
                let n: UInt64 = code == 0x42 ? UInt64(try le(UInt32.self)) : code == 0x43 ? UInt64(try u8()) : try le(UInt64.self)
                try push(.leaf(.bytes([UInt8](try counted(n)))))
            case 0x29: try push(graph.make(.tuple))  // EMPTY_TUPLE
            case 0x74: try push(graph.make(.tuple, try popMark()))  // TUPLE
            case 0x85, 0x86, 0x87:  // TUPLE1-3
                let n = Int(code - 0x84)
                guard stack.count - floor >= n else { throw .corrupt("stack underflow", offset: op) }
                let items = Array(stack.suffix(n))
                stack.removeLast(n)
                try push(graph.make(.tuple, items))
            case 0x5D: try push(graph.make(.list))  // EMPTY_LIST
            case 0x6C: try push(graph.make(.list, try popMark()))  // LIST
            case 0x61:  // APPEND
                let value = try pop()
                let list = try container(try top(), [.list], "APPEND")
                graph.containers[list].items.append(value)
            case 0x65:  // APPENDS
                let items = try popMark()
                let list = try container(try top(), [.list], "APPENDS")
                graph.containers[list].items.append(contentsOf: items)
            case 0x7D: try push(graph.make(.dict))  // EMPTY_DICT
            case 0x64:  // DICT
                let items = try popMark()
                let dict = graph.make(.dict)
                try setItems(dict, items)
                try push(dict)
            case 0x73:  // SETITEM
                let value = try pop()
                let key = try pop()
                try setItems(try top(), [key, value])
            case 0x75:  // SETITEMS
                let items = try popMark()
                try setItems(try top(), items)
            case 0x8F: try push(graph.make(.set))  // EMPTY_SET
            case 0x90:  // ADDITEMS
                let items = try popMark()
                let set = try container(try top(), [.set], "ADDITEMS")
                for item in items {
                    if let why = graph.add(into: set, element: item) { throw .corrupt(why, offset: op) }
                }
            case 0x91:  // FROZENSET
                let items = try popMark()
                let set = graph.make(.frozenset)
                if case let .object(i) = set {
                    for item in items {
                        if let why = graph.add(into: i, element: item) { throw .corrupt(why, offset: op) }
                    }
                }
                try push(set)
            case 0x67:  // GET
                guard let i = Int(try textLine()) else { throw .corrupt("bad GET index", offset: op) }
                try memoGet(i)
            case 0x68: try memoGet(Int(try u8()))  // BINGET
            case 0x6A: try memoGet(Int(try le(UInt32.self)))  // LONG_BINGET
            case 0x70:  // PUT
                guard let i = Int(try textLine()) else { throw .corrupt("bad PUT index", offset: op) }
                try memoPut(i)
            case 0x71: try memoPut(Int(try u8()))  // BINPUT
            case 0x72: try memoPut(Int(try le(UInt32.self)))  // LONG_BINPUT
            case 0x94: try memoPut(memo.count)  // MEMOIZE
            case 0x63:  // GLOBAL "module\nname\n"
                let module = try textLine()
                let name = try textLine()
                try global(module + "." + name)
            case 0x93:  // STACK_GLOBAL
                let name = try pop()
                let module = try pop()
                guard case let .leaf(.string(n)) = name, case let .leaf(.string(m)) = module else {
                    throw .corrupt("STACK_GLOBAL needs two strings", offset: op)
                }
                try global(m + "." + n)
            case 0x52:  // REDUCE
                let args = try pop()
                let callable = try pop()
                try push(try graph.call(try globalName(callable, "REDUCE"), try tupleItems(args, "REDUCE"), at: op))
            case 0x81:  // NEWOBJ
                let args = try pop()
                let cls = try pop()
                try push(try graph.new(try globalName(cls, "NEWOBJ"), try tupleItems(args, "NEWOBJ"), at: op))
            case 0x92:  // NEWOBJ_EX
                let kwargs = try pop()
                let args = try pop()
                let cls = try pop()
                guard case let .object(k) = kwargs, graph.containers[k].kind == .dict, graph.containers[k].items.isEmpty else {
                    throw .corrupt("NEWOBJ_EX keyword arguments are not allowed", offset: op)
                }
                try push(try graph.new(try globalName(cls, "NEWOBJ_EX"), try tupleItems(args, "NEWOBJ_EX"), at: op))
            case 0x62:  // BUILD
                let state = try pop()
                try graph.build(try top(), state: state, at: op)
            case 0x51:  // BINPERSID
                try push(try persistentLoad(try pop()))
            case 0x50:  // PERSID
                try push(try persistentLoad(.leaf(.string(try textLine()))))
            case 0x69: throw .forbiddenOpcode(name: "INST", offset: op)
            case 0x6F: throw .forbiddenOpcode(name: "OBJ", offset: op)
            case 0x82, 0x83, 0x84: throw .forbiddenOpcode(name: "EXT\(code == 0x82 ? 1 : code == 0x83 ? 2 : 4)", offset: op)
            case 0x97: throw .forbiddenOpcode(name: "NEXT_BUFFER", offset: op)
            case 0x98: throw .forbiddenOpcode(name: "READONLY_BUFFER", offset: op)
            default: throw .unknownOpcode(code, offset: op)
            }
        }
    }

    mutating func setItems(_ target: PickleVMValue, _ items: [PickleVMValue]) throws(PickleError) {
        let dict = try container(target, [.dict, .orderedDict], "SETITEM")
        guard items.count % 2 == 0 else { throw .corrupt("SETITEMS with an odd number of values", offset: op) }
        var i = 0
        while i < items.count {
            if let why = graph.insert(into: dict, key: items[i], value: items[i + 1]) { throw .corrupt(why, offset: op) }
            i += 2
        }
    }

    func globalName(_ v: PickleVMValue, _ opcode: String) throws(PickleError) -> String {
        guard case let .leaf(.global(name)) = v else { throw .corrupt("\(opcode) of something that is not a global", offset: op) }
        return name
    }

    func tupleItems(_ v: PickleVMValue, _ opcode: String) throws(PickleError) -> [PickleVMValue] {
        guard case let .object(i) = v, graph.containers[i].kind == .tuple else {
            throw .corrupt("\(opcode) arguments are not a tuple", offset: op)
        }
        return graph.containers[i].items
    }

    /// `persistent_load` of `torch/serialization.py`: `('storage', <storage class>, key, location,
    /// numel)`, plus `view_metadata` (None or `(view_key, offset, size)`) in the legacy format.
    mutating func persistentLoad(_ pid: PickleVMValue) throws(PickleError) -> PickleVMValue {
        let arity = persistentIDs == .zip ? 5 : 6
        guard case let .object(i) = pid, graph.containers[i].kind == .tuple, graph.containers[i].items.count == arity else {
            throw .corrupt("persistent id is not a \(arity)-tuple", offset: op)
        }
        let items = graph.containers[i].items
        guard case .leaf(.string("storage")) = items[0] else { throw .corrupt("persistent id tag is not 'storage'", offset: op) }
        guard case let .leaf(.global(typeName)) = items[1], case let .storage(dtype, untyped)? = PickleGlobal.resolve(typeName) else {
            throw .corrupt("persistent id names no storage class", offset: op)
        }
        guard case let .leaf(.string(key)) = items[2], case let .leaf(.string(location)) = items[3],
              let numel = graph.int(items[4]), numel >= 0
        else { throw .corrupt("persistent id has a bad key, location or size", offset: op) }
        guard key.utf8.count <= 256, location.utf8.count <= 256 else { throw .corrupt("persistent id key too long", offset: op) }
        var ref = PickleStorageRef(key: key, dtype: dtype, isUntyped: untyped, numel: numel, location: location)
        guard ref.byteCount != nil else { throw .corrupt("storage \(key) size overflows", offset: op) }
        if let known = storages[key] {
            guard known == ref else { throw .corrupt("storage \(key) is declared twice with different types or sizes", offset: op) }
        } else {
            storages[key] = ref
            storageOrder.append(key)
        }
        if arity == 6, !graph.isNone(items[5]) {
            guard case let .object(v) = items[5], graph.containers[v].kind == .tuple, graph.containers[v].items.count == 3,
                  case .leaf(.string) = graph.containers[v].items[0],
                  let offset = graph.int(graph.containers[v].items[1]), let size = graph.int(graph.containers[v].items[2]),
                  offset >= 0, size >= 0, size <= numel, offset <= numel - size
            else { throw .corrupt("bad storage view metadata", offset: op) }
            ref.viewOffset = offset
            ref.numel = size
        }
        return .leaf(.storage(ref))
    }
}
