/// Errors of the inert pickle machine. `offset` is the byte offset of the opcode at fault.
public enum PickleError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A global outside the allow-list; named even when it would never be called.
    case disallowedGlobal(String, offset: Int)
    /// An opcode that is valid pickle but never allowed here (INST, OBJ, EXT*, out-of-band buffers).
    case forbiddenOpcode(name: String, offset: Int)
    case unknownOpcode(UInt8, offset: Int)
    case truncated(offset: Int)
    /// Structural corruption: stack underflow, bad MARK use, wrong argument types, …
    case corrupt(String, offset: Int)
    case memoMissing(index: Int, offset: Int)
    case limitExceeded(String, offset: Int)
    case trailingBytes(offset: Int)
    /// A call of an allowed callable with arguments it does not accept.
    case badCall(String, String, offset: Int)

    public var description: String {
        switch self {
        case let .disallowedGlobal(name, o): return "pickle references disallowed global `\(name)` at offset \(o)"
        case let .forbiddenOpcode(name, o): return "pickle opcode \(name) at offset \(o) is not allowed"
        case let .unknownOpcode(op, o): return "corrupt pickle: unknown opcode 0x\(String(op, radix: 16)) at offset \(o)"
        case let .truncated(o): return "corrupt pickle: truncated at offset \(o)"
        case let .corrupt(why, o): return "corrupt pickle at offset \(o): \(why)"
        case let .memoMissing(i, o): return "corrupt pickle at offset \(o): memo index \(i) was never set"
        case let .limitExceeded(what, o): return "pickle exceeds the \(what) limit at offset \(o)"
        case let .trailingBytes(o): return "pickle has bytes after STOP at offset \(o)"
        case let .badCall(fn, why, o): return "pickle calls \(fn) with bad arguments at offset \(o): \(why)"
        }
    }
}
