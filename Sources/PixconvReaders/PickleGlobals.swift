import PixconvCore

/// The only globals a checkpoint pickle may name, and what each one means to the inert machine.
///
/// A subset of torch 2.15's `_weights_only_unpickler._get_allowed_globals`: what `torch.save` of a
/// state dict writes (`torch/_tensor.py::__reduce_ex_internal`, `torch/nn/parameter.py`,
/// `torch/serialization.py::_save`), plus `set`/`frozenset`, `torch.Size` and `_codecs.encode`
/// (protocol-2 bytes) as plain data. Every other name — `os.system`, `builtins.eval`, … — is an
/// error at the GLOBAL/STACK_GLOBAL opcode itself, whether or not it would ever be called.
enum PickleGlobal: Equatable {
    case orderedDict
    case rebuildTensorV2
    case rebuildTensorV3
    case rebuildParameter
    case rebuildParameterWithState
    case torchSize
    case set
    case frozenset
    case codecsEncode
    case storage(DType, untyped: Bool)
    case dtype(DType)

    static func resolve(_ name: String) -> PickleGlobal? { table[name] }

    static let table: [String: PickleGlobal] = {
        var t: [String: PickleGlobal] = [
            "collections.OrderedDict": .orderedDict,
            "torch._utils._rebuild_tensor_v2": .rebuildTensorV2,
            "torch._utils._rebuild_tensor_v3": .rebuildTensorV3,
            "torch._utils._rebuild_parameter": .rebuildParameter,
            "torch._utils._rebuild_parameter_with_state": .rebuildParameterWithState,
            "torch.Size": .torchSize,
            "builtins.set": .set, "__builtin__.set": .set,
            "builtins.frozenset": .frozenset, "__builtin__.frozenset": .frozenset,
            "_codecs.encode": .codecsEncode,
            "torch.UntypedStorage": .storage(.U8, untyped: true),
            "torch.storage.UntypedStorage": .storage(.U8, untyped: true),  // how torch.save spells it
        ]
        let storages: [(String, DType)] = [
            ("FloatStorage", .F32), ("DoubleStorage", .F64), ("HalfStorage", .F16), ("BFloat16Storage", .BF16),
            ("LongStorage", .I64), ("IntStorage", .I32), ("ShortStorage", .I16), ("CharStorage", .I8),
            ("ByteStorage", .U8), ("BoolStorage", .BOOL),
        ]
        for (name, dtype) in storages { t["torch." + name] = .storage(dtype, untyped: false) }
        let dtypes: [(String, DType)] = [
            ("float32", .F32), ("float", .F32), ("float64", .F64), ("double", .F64), ("float16", .F16),
            ("half", .F16), ("bfloat16", .BF16), ("int64", .I64), ("long", .I64), ("int32", .I32), ("int", .I32),
            ("int16", .I16), ("short", .I16), ("int8", .I8), ("uint8", .U8), ("bool", .BOOL), ("uint16", .U16),
            ("uint32", .U32), ("uint64", .U64), ("float8_e4m3fn", .F8_E4M3), ("float8_e5m2", .F8_E5M2),
        ]
        for (name, dtype) in dtypes { t["torch." + name] = .dtype(dtype) }
        return t
    }()
}

/// What REDUCE, NEWOBJ and BUILD may do with allowed globals. Nothing here runs code from the
/// file: each allowed callable is reimplemented as a constructor of plain values.
extension PickleGraph {
    mutating func call(_ name: String, _ args: [PickleVMValue], at offset: Int) throws(PickleError) -> PickleVMValue {
        guard let global = PickleGlobal.resolve(name) else { throw .disallowedGlobal(name, offset: offset) }
        func bad(_ why: String) -> PickleError { .badCall(name, why, offset: offset) }
        switch global {
        case .orderedDict:
            guard args.isEmpty else { throw bad("expected no arguments") }
            return make(.orderedDict)
        case .torchSize:
            if args.isEmpty { return make(.tuple) }
            guard args.count == 1, let dims = ints(args[0]) else { throw bad("expected a tuple of ints") }
            return make(.tuple, dims.map { .leaf(.int(Int64($0))) })
        case .set, .frozenset:
            let kind: PickleContainerKind = global == .set ? .set : .frozenset
            let result = make(kind)
            guard case let .object(index) = result else { return result }
            if args.isEmpty { return result }
            guard args.count == 1, case let .object(source) = args[0],
                  [.list, .tuple, .set, .frozenset].contains(containers[source].kind)
            else { throw bad("expected one list, tuple or set") }
            for element in containers[source].items {
                if let why = add(into: index, element: element) { throw bad(why) }
            }
            return result
        case .codecsEncode:
            guard args.count == 2, case let .leaf(.string(text)) = args[0], case let .leaf(.string(encoding)) = args[1],
                  ["latin1", "latin-1", "iso-8859-1", "iso8859-1"].contains(encoding.lowercased())
            else { throw bad("expected (str, 'latin1')") }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(text.unicodeScalars.count)
            for scalar in text.unicodeScalars {
                guard scalar.value <= 0xFF else { throw bad("character outside latin-1") }
                bytes.append(UInt8(scalar.value))
            }
            return .leaf(.bytes(bytes))
        case .rebuildTensorV2, .rebuildTensorV3:
            let v3 = global == .rebuildTensorV3
            let fixed = v3 ? 7 : 6
            guard args.count == fixed || args.count == fixed + 1 else { throw bad("expected \(fixed) or \(fixed + 1) arguments") }
            guard case let .leaf(.storage(storage)) = args[0] else { throw bad("argument 1 is not a storage") }
            guard let offset = int(args[1]), offset >= 0 else { throw bad("bad storage offset") }
            guard let shape = ints(args[2]), let stride = ints(args[3]) else { throw bad("size and stride must be tuples of ints") }
            guard shape.count == stride.count, shape.count <= 64 else { throw bad("size and stride differ in length or exceed 64 dims") }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw bad("negative size") }
            guard stride.allSatisfy({ $0 >= 0 }) else { throw bad("negative stride") }
            guard case let .leaf(.bool(requiresGrad)) = args[4] else { throw bad("requires_grad is not a bool") }
            guard isDict(args[5]) else { throw bad("backward hooks are not a dict") }
            var dtype = storage.dtype
            if v3 {
                guard case let .leaf(.global(dtypeName)) = args[6], case let .dtype(d)? = PickleGlobal.resolve(dtypeName) else {
                    throw bad("argument 7 is not a dtype")
                }
                dtype = d
            }
            if args.count == fixed + 1 {
                guard isDict(args[fixed]) || isNone(args[fixed]) else { throw bad("metadata is not a dict") }
            }
            return .leaf(.tensor(PickleTensorRef(storage: storage, dtype: dtype, storageOffset: offset, shape: shape,
                                                 stride: stride, requiresGrad: requiresGrad)))
        case .rebuildParameter, .rebuildParameterWithState:
            let count = global == .rebuildParameter ? 3 : 4
            guard args.count == count, case var .leaf(.tensor(tensor)) = args[0] else { throw bad("expected (tensor, requires_grad, hooks)") }
            guard case let .leaf(.bool(requiresGrad)) = args[1], isDict(args[2]) else { throw bad("expected (tensor, requires_grad, hooks)") }
            tensor.requiresGrad = requiresGrad
            return .leaf(.tensor(tensor))
        case .storage, .dtype:
            throw bad("not callable")
        }
    }

    /// NEWOBJ / NEWOBJ_EX: `cls.__new__(cls, *args)` for the allowed container classes only.
    mutating func new(_ name: String, _ args: [PickleVMValue], at offset: Int) throws(PickleError) -> PickleVMValue {
        guard let global = PickleGlobal.resolve(name) else { throw .disallowedGlobal(name, offset: offset) }
        switch global {
        case .orderedDict, .set, .frozenset, .torchSize: return try call(name, args, at: offset)
        default: throw .badCall(name, "NEWOBJ of this class is not allowed", offset: offset)
        }
    }

    /// BUILD: only an OrderedDict may receive state (a state dict's `_metadata` attribute); the
    /// state is checked to be plain data and otherwise ignored.
    func build(_ target: PickleVMValue, state: PickleVMValue, at offset: Int) throws(PickleError) {
        guard case let .object(i) = target, containers[i].kind == .orderedDict else {
            throw .corrupt("BUILD applies state to something other than an OrderedDict", offset: offset)
        }
        if isDict(state) { return }
        if case let .object(s) = state, containers[s].kind == .tuple, containers[s].items.count == 2,
           containers[s].items.allSatisfy({ isDict($0) || isNone($0) }) { return }
        throw .corrupt("BUILD state is not a dict", offset: offset)
    }

    func isDict(_ v: PickleVMValue) -> Bool {
        if case let .object(i) = v { return containers[i].kind == .dict || containers[i].kind == .orderedDict }
        return false
    }

    func isNone(_ v: PickleVMValue) -> Bool {
        if case .leaf(.none) = v { return true }
        return false
    }

    func int(_ v: PickleVMValue) -> Int? {
        if case let .leaf(.int(i)) = v { return Int(exactly: i) }
        return nil
    }

    /// The ints of a tuple (or list), for sizes and strides.
    func ints(_ v: PickleVMValue) -> [Int]? {
        guard case let .object(i) = v, containers[i].kind == .tuple || containers[i].kind == .list else { return nil }
        var out: [Int] = []
        out.reserveCapacity(containers[i].items.count)
        for item in containers[i].items {
            guard let n = int(item) else { return nil }
            out.append(n)
        }
        return out
    }
}
