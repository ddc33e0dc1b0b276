import Foundation
import PixconvReaders

/// Decoding of `config.json` / `scheduler_config.json` text as Python's `json` module writes and
/// reads it (diffusers `ConfigMixin.from_config`): strict JSON plus the bare constants `NaN`,
/// `Infinity` and `-Infinity` (PixArt's scheduler has `"lambda_min_clipped": -Infinity`).
///
/// The constants are rewritten to strings, the text is validated by pixconv's strict parser
/// (`StrictJSON`: UTF-8, syntax, numbers, duplicate keys, depth), and only then decoded by
/// Foundation's plain `JSONDecoder`, which maps the strings back to non-finite doubles.
/// Foundation's JSON5 reader is not used: in Swift 6.3.1 it traps instead of throwing on
/// malformed input — invalid UTF-8 in key position (`{` F8 80 80 80 80) and an exponent without
/// digits (`{"a": 2e+}`), both found by FuzzTesting's `config` target (formats/fuzzing.md;
/// Tests/PixconvRuntimeTests/Regressions/config/).
public enum ConfigJSON {
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        let text = withoutBareConstants([UInt8](data))
        do {
            _ = try StrictJSON.parse(text)
        } catch {
            throw RuntimeError.invalidInput("config \(error)")
        }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return try decoder.decode(T.self, from: Data(text))
    }

    /// `bytes` with every `NaN`, `Infinity` and `-Infinity` outside strings quoted. Outside strings
    /// JSON has only punctuation, numbers and `true`/`false`/`null`, so a match cannot be part of
    /// another token; anything malformed is left for the strict parser to reject.
    static func withoutBareConstants(_ bytes: [UInt8]) -> [UInt8] {
        let constants: [[UInt8]] = [Array("-Infinity".utf8), Array("Infinity".utf8), Array("NaN".utf8)]
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 16)
        var i = 0
        var inString = false
        while i < bytes.count {
            let b = bytes[i]
            if inString {
                out.append(b)
                if b == UInt8(ascii: "\\"), i + 1 < bytes.count {
                    out.append(bytes[i + 1])
                    i += 2
                    continue
                }
                if b == UInt8(ascii: "\"") { inString = false }
                i += 1
                continue
            }
            if b == UInt8(ascii: "\"") {
                inString = true
            } else if let c = constants.first(where: { bytes[i...].starts(with: $0) }) {
                out.append(UInt8(ascii: "\""))
                out += c
                out.append(UInt8(ascii: "\""))
                i += c.count
                continue
            }
            out.append(b)
            i += 1
        }
        return out
    }
}
