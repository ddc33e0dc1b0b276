/// Decoders for pickle's numeric and text payloads (CPython `Lib/pickle.py`, `_Unpickler.load_*`):
/// little-endian two's-complement longs, protocol-0 decimal lines, `repr` strings and
/// raw-unicode-escape lines. All return nil on malformed input; nothing traps.
enum PickleText {
    /// LONG1/LONG4 payload: little-endian two's complement. Fits Int64 → `.int`, else decimal `.bigInt`.
    static func long(_ bytes: UnsafeRawBufferPointer) -> PickleValue {
        guard let last = bytes.last else { return .int(0) }
        let negative = last & 0x80 != 0
        // Drop sign-extension bytes that do not change the value.
        var count = bytes.count
        while count > 1 {
            let top = bytes[count - 1], next = bytes[count - 2]
            if (top == 0x00 && next & 0x80 == 0) || (top == 0xFF && next & 0x80 != 0) { count -= 1 } else { break }
        }
        if count <= 8 {
            var v: UInt64 = negative ? ~0 : 0
            for i in 0..<count {
                v &= ~(UInt64(0xFF) << (8 * UInt64(i)))
                v |= UInt64(bytes[i]) << (8 * UInt64(i))
            }
            return .int(Int64(bitPattern: v))
        }
        // Magnitude as little-endian 32-bit limbs, then repeated division by 10^9.
        var magnitude = [UInt8](bytes[0..<count])
        if negative {
            var carry: UInt16 = 1
            for i in magnitude.indices {
                let s = UInt16(~magnitude[i]) + carry
                magnitude[i] = UInt8(truncatingIfNeeded: s)
                carry = s >> 8
            }
        }
        var limbs = [UInt32](repeating: 0, count: (magnitude.count + 3) / 4)
        for (i, b) in magnitude.enumerated() { limbs[i / 4] |= UInt32(b) << (8 * UInt32(i % 4)) }
        var chunks: [UInt32] = []
        while limbs.contains(where: { $0 != 0 }) {
            var remainder: UInt64 = 0
            for i in stride(from: limbs.count - 1, through: 0, by: -1) {
                let cur = (remainder << 32) | UInt64(limbs[i])
                limbs[i] = UInt32(cur / 1_000_000_000)
                remainder = cur % 1_000_000_000
            }
            chunks.append(UInt32(remainder))
        }
        var text = negative ? "-" : ""
        for (i, chunk) in chunks.reversed().enumerated() {
            let digits = String(chunk)
            text += i == 0 ? digits : String(repeating: "0", count: 9 - digits.count) + digits
        }
        return .bigInt(text)
    }

    /// Protocol-0 INT/LONG line: optional sign and decimal digits (LONG may end in `L`).
    static func decimal(_ line: String, allowL: Bool) -> PickleValue? {
        var s = Substring(line)
        if allowL, s.hasSuffix("L") { s = s.dropLast() }
        var digits = s
        var negative = false
        if let first = digits.first, first == "-" || first == "+" {
            negative = first == "-"
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), digits.count <= 4300 else { return nil }
        if let v = Int64(s) { return .int(v) }
        let trimmed = digits.drop { $0 == "0" }
        return .bigInt((negative ? "-" : "") + trimmed)
    }

    /// Protocol-0 FLOAT line (`repr(float)`): decimal, exponent, `inf`, `nan`.
    static func float(_ line: String) -> Double? {
        let allowed = Set("0123456789.eE+-infatyINFATY".utf8)
        guard !line.isEmpty, line.utf8.allSatisfy({ allowed.contains($0) }) else { return nil }
        return Double(line)
    }

    /// Protocol-0 STRING: a quoted `repr` with backslash escapes (`codecs.escape_decode`).
    static func quoted(_ line: [UInt8]) -> [UInt8]? {
        guard line.count >= 2, let q = line.first, q == UInt8(ascii: "'") || q == UInt8(ascii: "\""), line.last == q else {
            return nil
        }
        let body = line[1..<(line.count - 1)]
        var out: [UInt8] = []
        var i = body.startIndex
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: return nil
            }
        }
        while i < body.endIndex {
            let c = body[i]
            i += 1
            guard c == UInt8(ascii: "\\") else { out.append(c); continue }
            guard i < body.endIndex else { return nil }
            let e = body[i]
            i += 1
            switch e {
            case UInt8(ascii: "\n"): break
            case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): out.append(e)
            case UInt8(ascii: "a"): out.append(7)
            case UInt8(ascii: "b"): out.append(8)
            case UInt8(ascii: "f"): out.append(12)
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "v"): out.append(11)
            case UInt8(ascii: "x"):
                guard i + 1 < body.endIndex, let h = hex(body[i]), let l = hex(body[i + 1]) else { return nil }
                out.append(h << 4 | l)
                i += 2
            case 0x30...0x37:
                var v = Int(e - 0x30)
                var n = 1
                while n < 3, i < body.endIndex, (0x30...0x37).contains(body[i]) {
                    v = v * 8 + Int(body[i] - 0x30)
                    i += 1
                    n += 1
                }
                out.append(UInt8(truncatingIfNeeded: v))
            default:
                out.append(UInt8(ascii: "\\"))
                out.append(e)
            }
        }
        return out
    }

    /// Protocol-0 UNICODE line (`raw-unicode-escape`): bytes are Latin-1 characters except
    /// `\uXXXX` and `\UXXXXXXXX`.
    static func rawUnicodeEscape(_ line: [UInt8]) -> String? {
        var scalars = String.UnicodeScalarView()
        var i = 0
        while i < line.count {
            let c = line[i]
            if c == UInt8(ascii: "\\"), i + 1 < line.count, line[i + 1] == UInt8(ascii: "u") || line[i + 1] == UInt8(ascii: "U") {
                let width = line[i + 1] == UInt8(ascii: "u") ? 4 : 8
                guard i + 2 + width <= line.count,
                      let v = UInt32(String(decoding: line[(i + 2)..<(i + 2 + width)], as: UTF8.self), radix: 16),
                      let scalar = Unicode.Scalar(v)
                else { return nil }
                scalars.append(scalar)
                i += 2 + width
            } else {
                scalars.append(Unicode.Scalar(c))
                i += 1
            }
        }
        return String(scalars)
    }

    /// Strict UTF-8 decoding (invalid sequences are an error, not replaced).
    static func utf8(_ bytes: UnsafeRawBufferPointer) -> String? {
        let s = String(decoding: bytes, as: UTF8.self)
        return s.utf8.elementsEqual(bytes) ? s : nil
    }
}
