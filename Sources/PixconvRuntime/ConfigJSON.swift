import Foundation
import PixconvReaders

/// Decoding of `config.json` / `scheduler_config.json` text: JSON5 reading (Python's json writes
/// bare `Infinity`/`NaN`), after checking that the bytes are UTF-8.
///
/// The check is there because swift-foundation's JSON5 scanner (`JSON5Scanner.scanKey` →
/// `BufferView._decodeScalars`, Swift 6.3.1) traps on some invalid UTF-8 in key position instead of
/// throwing — `{` followed by `F8 80 80 80 80` kills the process — as FuzzTesting's `config`
/// target found (formats/fuzzing.md; Tests/PixconvRuntimeTests/Regressions/config/).
enum ConfigJSON {
    static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        let bad = data.withUnsafeBytes { StrictJSON.firstInvalidUTF8($0) }
        if let bad { throw RuntimeError.invalidInput("config json: invalid utf-8 at byte \(bad)") }
        let decoder = JSONDecoder()
        decoder.allowsJSON5 = true
        return try decoder.decode(T.self, from: data)
    }
}
