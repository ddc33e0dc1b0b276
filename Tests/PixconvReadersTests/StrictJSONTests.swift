import XCTest

@testable import PixconvReaders

final class StrictJSONTests: XCTestCase {
    func error(_ text: String, limits: StrictJSON.Limits = StrictJSON.Limits(), line: UInt = #line) -> JSONError? {
        error(Array(text.utf8), limits: limits, line: line)
    }

    func error(_ bytes: [UInt8], limits: StrictJSON.Limits = StrictJSON.Limits(), line: UInt = #line) -> JSONError? {
        do {
            let v = try StrictJSON.parse(bytes, limits: limits)
            XCTFail("parsed: \(v)", line: line)
            return nil
        } catch {
            return error
        }
    }

    // MARK: Accepted input

    func testParsesAllValueKindsKeepingKeyOrder() throws {
        let v = try StrictJSON.parse(#" {"z": [1, -2.5e+3, true, false, null], "a": {"k": "v"}, "m": "", "e": [], "o": {}} "#)
        XCTAssertEqual(v.object?.keys, ["z", "a", "m", "e", "o"])
        XCTAssertEqual(v["z"], [1, .number(try XCTUnwrap(StrictJSON.parse("-2.5e+3").number)), true, false, nil])
        XCTAssertEqual(v["z"]?.array?[1].number?.text, "-2.5e+3")
        XCTAssertEqual(v["z"]?.array?[1].double, -2500)
        XCTAssertEqual(v["a"]?["k"]?.string, "v")
        XCTAssertEqual(v["m"], "")
        XCTAssertEqual(v["e"], [])
        XCTAssertEqual(v["o"]?.object?.isEmpty, true)
        XCTAssertNil(v["missing"])
    }

    func testMemberOffsetsAreByteOffsets() throws {
        let v = try StrictJSON.parse(Array(#"{"a":1,  "bé":{"c":2}}"#.utf8), baseOffset: 8)
        XCTAssertEqual(v.object?.members.map(\.offset), [9, 17])
        XCTAssertEqual(v["bé"]?.object?.members.first?.offset, 8 + 16)
    }

    func testIntegersAreExact() throws {
        XCTAssertEqual(try StrictJSON.parse("9007199254740992").int, 1 << 53)
        XCTAssertEqual(try StrictJSON.parse("-9007199254740992").int, -(1 << 53))
        XCTAssertNil(try StrictJSON.parse("9007199254740993").int)
        XCTAssertNil(try StrictJSON.parse("2.0").int)
        XCTAssertNil(try StrictJSON.parse("1e3").int)
        XCTAssertNil(try StrictJSON.parse("18446744073709551616").int)
        XCTAssertEqual(try StrictJSON.parse("0").number?.nonNegativeInteger(), 0)
        XCTAssertNil(try StrictJSON.parse("-0").number?.nonNegativeInteger())
        XCTAssertEqual(try StrictJSON.parse("9223372036854775807").number?.integer(maxMagnitude: UInt64(Int.max)), Int.max)
        XCTAssertEqual(try StrictJSON.parse("2.0").double, 2)
    }

    func testStringEscapesAndUnicode() throws {
        let v = try StrictJSON.parse(#""a\"\\\/\b\f\n\r\t\u0041\u00e9\ud83d\ude00\u0000 é😀""#)
        XCTAssertEqual(v.string, "a\"\\/\u{08}\u{0C}\n\r\tAé😀\u{0} é😀")
    }

    // MARK: Rejected input, one test per rule

    func testEmptyAndWhitespaceOnly() {
        XCTAssertEqual(error(""), JSONError(kind: .unexpectedEnd, offset: 0))
        XCTAssertEqual(error("  \n"), JSONError(kind: .unexpectedEnd, offset: 3))
    }

    func testDuplicateKeys() {
        XCTAssertEqual(error(#"{"a":1,"b":2,"a":3}"#), JSONError(kind: .duplicateKey("a"), offset: 13))
        XCTAssertEqual(error(#"{"x":{"a":1,"a":1}}"#), JSONError(kind: .duplicateKey("a"), offset: 12))
        // Large objects switch from scanning to hashing; both must catch duplicates.
        let many = (0..<40).map { "\"k\($0)\":\($0)" }
        for repeated in [3, 20, 39] {
            let text = "{" + many.joined(separator: ",") + ",\"k\(repeated)\":0}"
            XCTAssertEqual(error(text), JSONError(kind: .duplicateKey("k\(repeated)"), offset: text.utf8.count - "\"k\(repeated)\":0}".utf8.count))
        }
        XCTAssertEqual(try StrictJSON.parse("{" + many.joined(separator: ",") + "}").object?.count, 40)
        // Escaped and literal spellings of one key are the same key.
        XCTAssertEqual(error(#"{"A":1,"\u0041":2}"#)?.kind, .duplicateKey("A"))
    }

    func testTrailingGarbage() {
        XCTAssertEqual(error("{} x"), JSONError(kind: .trailingData, offset: 3))
        XCTAssertEqual(error("{}\0"), JSONError(kind: .trailingData, offset: 2))
        XCTAssertEqual(error("[1]]"), JSONError(kind: .trailingData, offset: 3))
        XCTAssertEqual(error("1 2"), JSONError(kind: .trailingData, offset: 2))
    }

    func testByteOrderMark() {
        XCTAssertEqual(error([0xEF, 0xBB, 0xBF, 0x7B, 0x7D]), JSONError(kind: .unexpectedByte(0xEF, expected: "a value"), offset: 0))
    }

    func testInvalidUTF8InStrings() {
        let cases: [([UInt8], Int)] = [([0x22, 0x61, 0xFF, 0x22], 2), ([0x22, 0xC0, 0xAF, 0x22], 1), ([0x22, 0xED, 0xA0, 0x80, 0x22], 1),
                                ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], 1), ([0x22, 0xE2, 0x82, 0x22], 1), ([0x22, 0x80, 0x22], 1)]
        for (bytes, offset) in cases {
            XCTAssertEqual(error(bytes), JSONError(kind: .invalidUTF8, offset: offset), "\(bytes)")
        }
        XCTAssertEqual([UInt8]([0x41, 0xE2, 0x82, 0xAC, 0xFE]).withUnsafeBytes { StrictJSON.firstInvalidUTF8($0) }, 4)
        XCTAssertNil(Array("aé😀".utf8).withUnsafeBytes { StrictJSON.firstInvalidUTF8($0) })
    }

    func testNonASCIIOutsideStrings() {
        XCTAssertEqual(error([0x5B, 0xC3, 0xA9, 0x5D])?.kind, .unexpectedByte(0xC3, expected: "a value"))
    }

    func testBadEscapes() {
        XCTAssertEqual(error(#""\x""#), JSONError(kind: .badEscape, offset: 1))
        XCTAssertEqual(error(#""\u12""#), JSONError(kind: .badEscape, offset: 1))
        XCTAssertEqual(error(#""\u12G4""#), JSONError(kind: .badEscape, offset: 1))
        XCTAssertEqual(error(#""\"#), JSONError(kind: .unexpectedEnd, offset: 2))
    }

    func testLoneSurrogates() {
        XCTAssertEqual(error(#""\ud800""#), JSONError(kind: .badSurrogate, offset: 1))
        XCTAssertEqual(error(#""\udc00""#), JSONError(kind: .badSurrogate, offset: 1))
        XCTAssertEqual(error(#""x\ud800\u0041""#), JSONError(kind: .badSurrogate, offset: 2))
        XCTAssertEqual(error(#""\ud800\ud800""#), JSONError(kind: .badSurrogate, offset: 1))
    }

    func testControlCharactersMustBeEscaped() {
        XCTAssertEqual(error("\"a\nb\""), JSONError(kind: .controlCharacterInString, offset: 2))
        XCTAssertEqual(error("\"a\tb\""), JSONError(kind: .controlCharacterInString, offset: 2))
    }

    func testMalformedNumbers() {
        for text in ["01", "-", "1.", ".5", "1e", "1e+", "+1", "--1", "0x10", "1.e3", "-.5"] {
            let e = error(text)
            XCTAssertTrue(e?.kind == .badNumber || e?.kind == .trailingData || e?.kind == .unexpectedByte(text.utf8.first!, expected: "a value"),
                          "\(text): \(String(describing: e))")
        }
        XCTAssertEqual(error("01"), JSONError(kind: .badNumber, offset: 0))
        XCTAssertEqual(error("[1.]"), JSONError(kind: .badNumber, offset: 1))
        XCTAssertEqual(error("NaN")?.kind, .unexpectedByte(UInt8(ascii: "N"), expected: "a value"))
        XCTAssertEqual(error("[" + String(repeating: "9", count: 300) + "]"), JSONError(kind: .numberTooLong, offset: 1))
    }

    func testBadLiteralsAndStructure() {
        XCTAssertEqual(error("tru"), JSONError(kind: .unexpectedEnd, offset: 0))
        XCTAssertEqual(error("[nul1]")?.kind, .unexpectedByte(UInt8(ascii: "1"), expected: "'null'"))
        XCTAssertEqual(error(#"{"a" 1}"#)?.kind, .unexpectedByte(UInt8(ascii: "1"), expected: "':'"))
        XCTAssertEqual(error(#"{"a":1,}"#)?.kind, .unexpectedByte(UInt8(ascii: "}"), expected: "a string key"))
        XCTAssertEqual(error("[1,]")?.kind, .unexpectedByte(UInt8(ascii: "]"), expected: "a value"))
        XCTAssertEqual(error("[1 2]")?.kind, .unexpectedByte(UInt8(ascii: "2"), expected: "',' or ']'"))
        XCTAssertEqual(error(#"{1:2}"#)?.kind, .unexpectedByte(UInt8(ascii: "1"), expected: "a string key"))
        XCTAssertEqual(error("[[[")?.kind, .unexpectedEnd)
        XCTAssertEqual(error(#"{"a":1"#)?.kind, .unexpectedEnd)
    }

    func testDepthLimitWithoutRecursion() {
        let deep = String(repeating: "[", count: 1_000_000) + String(repeating: "]", count: 1_000_000)
        XCTAssertEqual(error(deep), JSONError(kind: .tooDeep(limit: 64), offset: 64))
        var limits = StrictJSON.Limits()
        limits.maxDepth = 2
        XCTAssertNoThrow(try StrictJSON.parse(#"{"a":[1]}"#, limits: limits))
        XCTAssertEqual(error(#"{"a":[{}]}"#, limits: limits), JSONError(kind: .tooDeep(limit: 2), offset: 6))
        // Parsing is iterative; only freeing the parsed value recurses, once per level.
        limits.maxDepth = 2_000
        let accepted = String(repeating: "[", count: 2_000) + String(repeating: "]", count: 2_000)
        XCTAssertNoThrow(try StrictJSON.parse(accepted, limits: limits))
    }

    func testSizeAndValueLimits() {
        var limits = StrictJSON.Limits()
        limits.maxBytes = 4
        XCTAssertEqual(error("[1,2]", limits: limits), JSONError(kind: .tooLarge(limit: 4), offset: 0))
        limits = StrictJSON.Limits()
        limits.maxValues = 3
        XCTAssertNoThrow(try StrictJSON.parse("[1,2]", limits: limits))
        XCTAssertEqual(error("[1,2,3]", limits: limits), JSONError(kind: .tooManyValues(limit: 3), offset: 5))
    }

    func testNonFiniteNumbersOnlyWhenAllowed() throws {
        XCTAssertEqual(error("[-Infinity]"), JSONError(kind: .badNumber, offset: 1))
        XCTAssertEqual(error("Infinity")?.kind, .unexpectedByte(UInt8(ascii: "I"), expected: "a value"))
        var limits = StrictJSON.Limits()
        limits.allowNonFiniteNumbers = true
        let v = try StrictJSON.parse("[NaN, Infinity, -Infinity, -1]", limits: limits)
        let numbers = try XCTUnwrap(v.array?.compactMap(\.number))
        XCTAssertEqual(numbers.map(\.text), ["NaN", "Infinity", "-Infinity", "-1"])
        XCTAssertTrue(numbers[0].double?.isNaN == true)
        XCTAssertEqual(numbers[1...].map(\.double), [.infinity, -.infinity, -1])
        XCTAssertEqual(numbers.map(\.isFinite), [false, false, false, true])
        XCTAssertEqual(numbers.map { $0.integer() }, [nil, nil, nil, -1])
        XCTAssertEqual(error("[-Inf]", limits: limits), JSONError(kind: .unexpectedEnd, offset: 1))
    }

    func testErrorDescription() {
        XCTAssertEqual(error(#"{"a":1,"a":2}"#)?.description, #"invalid json at byte 7: duplicate key "a""#)
        XCTAssertEqual(error("[1 x")?.description, "invalid json at byte 3: expected ',' or ']', found 'x'")
    }

    // MARK: Writer

    /// Expected strings from Python 3: json.dumps(v, ensure_ascii=False, sort_keys=True,
    /// separators=(",", ":")) and json.dumps(v, indent=2, ensure_ascii=False, sort_keys=True).
    func testSerializerMatchesPython() throws {
        let v: JSONValue = ["b": [1, 2.5, ["z": nil, "a": true]], "a": "q\"\\\n\t\u{01}\u{7F} é😀", "c": [:], "d": []]
        XCTAssertEqual(v.serialized(), "{\"a\":\"q\\\"\\\\\\n\\t\\u0001\u{7F} é😀\",\"b\":[1,2.5,{\"a\":true,\"z\":null}],\"c\":{},\"d\":[]}")
        XCTAssertEqual(v.serialized(indent: 2), """
            {
              "a": "q\\"\\\\\\n\\t\\u0001\u{7F} é😀",
              "b": [
                1,
                2.5,
                {
                  "a": true,
                  "z": null
                }
              ],
              "c": {},
              "d": []
            }
            """)
        let keys: JSONValue = ["é": 1, "z": 2, "Z": 3, "_": 4, "a": 5]
        XCTAssertEqual(keys.serialized(), #"{"Z":3,"_":4,"a":5,"z":2,"é":1}"#)
        XCTAssertEqual(keys.serialized(sortKeys: false), #"{"é":1,"z":2,"Z":3,"_":4,"a":5}"#)
    }

    func testRoundTrip() throws {
        let text = #"{"name":"caf\u00e9 \ud83d\ude00","shape":[1,2,3],"eps":1e-06,"n":null,"ok":false,"nested":{"x":[[],{}]}}"#
        let v = try StrictJSON.parse(text)
        XCTAssertEqual(try StrictJSON.parse(v.serialized()), v)
        XCTAssertEqual(try StrictJSON.parse(v.serialized(indent: 4)), v)
        XCTAssertEqual(v["eps"]?.number?.text, "1e-06")
        XCTAssertEqual(JSONValue.number(try XCTUnwrap(JSONNumber(0.1))).serialized(), "0.1")
        XCTAssertEqual(JSONValue.number(try XCTUnwrap(JSONNumber(3.0))).serialized(), "3")
        XCTAssertNil(JSONNumber(Double.nan))
        XCTAssertNil(JSONNumber(Double.infinity))
    }
}
