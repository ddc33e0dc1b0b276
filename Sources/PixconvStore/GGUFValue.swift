import PixconvCore

/// GGUF metadata value types (`formats/store.md` §1; ggml's `enum gguf_type`).
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Bytes of one value of a fixed-size type; nil for strings and arrays.
    public var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        case .string, .array: return nil
        }
    }

    /// The fewest bytes one value of this type takes in a file (a string: its u64 length; an array:
    /// its u32 type and u64 count).
    var minimumSize: Int { fixedSize ?? (self == .string ? 8 : 12) }
}

/// One metadata value.
public enum GGUFValue: Equatable, Sendable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String), uint64(UInt64), int64(Int64), float64(Double)
    case array(GGUFArray)

    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .float32: return .float32
        case .bool: return .bool
        case .string: return .string
        case .uint64: return .uint64
        case .int64: return .int64
        case .float64: return .float64
        case .array: return .array
        }
    }

    /// A short spelling of the type for messages ("string", "array of uint8", …).
    public var typeName: String {
        if case let .array(a) = self { return "array of \(a.elementType)" }
        return "\(type)"
    }

    public var stringValue: String? { if case let .string(s) = self { return s } else { return nil } }
    public var uint32Value: UInt32? { if case let .uint32(v) = self { return v } else { return nil } }
    public var boolValue: Bool? { if case let .bool(v) = self { return v } else { return nil } }
    public var arrayValue: GGUFArray? { if case let .array(a) = self { return a } else { return nil } }

    /// Any integer-typed value as Int (nil for other types or when it does not fit).
    public var intValue: Int? {
        switch self {
        case let .uint8(v): return Int(v)
        case let .int8(v): return Int(v)
        case let .uint16(v): return Int(v)
        case let .int16(v): return Int(v)
        case let .uint32(v): return Int(v)
        case let .int32(v): return Int(v)
        case let .uint64(v): return Int(exactly: v)
        case let .int64(v): return Int(v)
        default: return nil
        }
    }
}

/// A metadata array: all elements of one type. Nested arrays hold one `GGUFArray` per element.
public enum GGUFArray: Equatable, Sendable {
    case uint8([UInt8]), int8([Int8]), uint16([UInt16]), int16([Int16]), uint32([UInt32]), int32([Int32])
    case float32([Float]), bool([Bool]), string([String]), uint64([UInt64]), int64([Int64]), float64([Double])
    case array([GGUFArray])

    public var elementType: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .float32: return .float32
        case .bool: return .bool
        case .string: return .string
        case .uint64: return .uint64
        case .int64: return .int64
        case .float64: return .float64
        case .array: return .array
        }
    }

    public var count: Int {
        switch self {
        case let .uint8(a): return a.count
        case let .int8(a): return a.count
        case let .uint16(a): return a.count
        case let .int16(a): return a.count
        case let .uint32(a): return a.count
        case let .int32(a): return a.count
        case let .float32(a): return a.count
        case let .bool(a): return a.count
        case let .string(a): return a.count
        case let .uint64(a): return a.count
        case let .int64(a): return a.count
        case let .float64(a): return a.count
        case let .array(a): return a.count
        }
    }
}

/// ggml tensor type ids (`ggml.h` `enum ggml_type`) for the element types pixconv reads and writes.
public enum GGMLType {
    /// ggml type id of `dtype`, or nil when GGUF cannot hold it.
    public static func id(of dtype: DType) -> UInt32? {
        switch dtype {
        case .F32: return 0
        case .F16: return 1
        case .Q4_0: return 2
        case .Q4_1: return 3
        case .Q5_0: return 6
        case .Q5_1: return 7
        case .Q8_0: return 8
        case .I8: return 24
        case .I16: return 25
        case .I32: return 26
        case .I64: return 27
        case .F64: return 28
        case .BF16: return 30
        default: return nil
        }
    }

    /// The element type of ggml type `id`, or nil when pixconv does not read it.
    public static func dtype(of id: UInt32) -> DType? {
        DType.allCases.first { GGMLType.id(of: $0) == id }
    }

    /// Whether `id` names some ggml type at all (ggml 2026: 0…41 with gaps for removed types 4, 5,
    /// 31–33, 36–38), as opposed to a type that exists but pixconv does not read.
    public static func isKnown(_ id: UInt32) -> Bool {
        id <= 41 && ![4, 5, 31, 32, 33, 36, 37, 38].contains(id)
    }

    /// `general.file_type` (llama.cpp `LlamaFileType`) for a store whose large tensors are `dtype`.
    public static func fileType(for dtype: DType) -> UInt32 {
        switch dtype {
        case .F16: return 1
        case .Q4_0: return 2
        case .Q4_1: return 3
        case .Q8_0: return 7
        case .Q5_0: return 8
        case .Q5_1: return 9
        case .BF16: return 32
        default: return 0  // ALL_F32
        }
    }
}
