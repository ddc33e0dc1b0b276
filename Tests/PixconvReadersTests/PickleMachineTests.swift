import PixconvTestSupport
import XCTest
@testable import PixconvReaders

/// Hand-written pickle opcodes (CPython `Lib/pickletools.py` numbering), shared with the CLI's
/// bad-input corpus.
typealias TPK = TestPickle

final class PickleMachineTests: XCTestCase {
    func run(_ bytes: [UInt8]) throws -> PickleValue { try PickleMachine.run(bytes).value }

    func expect(_ bytes: [UInt8], _ expected: PickleError, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try run(bytes), file: file, line: line) { error in
            XCTAssertEqual(error as? PickleError, expected, file: file, line: line)
        }
    }

    func expect(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line, _ check: (PickleError) -> Bool) {
        XCTAssertThrowsError(try run(bytes), file: file, line: line) { error in
            guard let e = error as? PickleError else { return XCTFail("not a PickleError: \(error)", file: file, line: line) }
            XCTAssertTrue(check(e), "unexpected: \(e)", file: file, line: line)
        }
    }

    // MARK: - Real pickles (bytes from CPython's pickle.dumps)

    /// `{'a': [1, 2.5, 'xé\n', None, True, -7, 2**70], 'b': (3,), 'c': {'d': b'\x00\xffz'}}`
    let plainValue: PickleValue = .dict([
        PickleDictEntry(key: .string("a"), value: .list([.int(1), .float(2.5), .string("xé\n"), .none, .bool(true), .int(-7),
                                                         .bigInt("1180591620717411303424")])),
        PickleDictEntry(key: .string("b"), value: .tuple([.int(3)])),
        PickleDictEntry(key: .string("c"), value: .dict([PickleDictEntry(key: .string("d"), value: .bytes([0, 255, 122]))])),
    ])

    func testProtocol0() throws {
        let p0: [UInt8] = [40, 100, 112, 48, 10, 86, 97, 10, 112, 49, 10, 40, 108, 112, 50, 10, 73, 49, 10, 97, 70, 50, 46, 53, 10, 97, 86, 120, 233, 92, 117, 48, 48, 48, 97, 10, 112, 51, 10, 97, 78, 97, 73, 48, 49, 10, 97, 73, 45, 55, 10, 97, 76, 49, 49, 56, 48, 53, 57, 49, 54, 50, 48, 55, 49, 55, 52, 49, 49, 51, 48, 51, 52, 50, 52, 76, 10, 97, 115, 86, 98, 10, 112, 52, 10, 40, 73, 51, 10, 116, 112, 53, 10, 115, 86, 99, 10, 112, 54, 10, 40, 100, 112, 55, 10, 86, 100, 10, 112, 56, 10, 99, 95, 99, 111, 100, 101, 99, 115, 10, 101, 110, 99, 111, 100, 101, 10, 112, 57, 10, 40, 86, 92, 117, 48, 48, 48, 48, 255, 122, 10, 112, 49, 48, 10, 86, 108, 97, 116, 105, 110, 49, 10, 112, 49, 49, 10, 116, 112, 49, 50, 10, 82, 112, 49, 51, 10, 115, 115, 46]
        XCTAssertEqual(try run(p0), plainValue)
    }

    func testProtocol2() throws {
        let p2: [UInt8] = [128, 2, 125, 113, 0, 40, 88, 1, 0, 0, 0, 97, 113, 1, 93, 113, 2, 40, 75, 1, 71, 64, 4, 0, 0, 0, 0, 0, 0, 88, 4, 0, 0, 0, 120, 195, 169, 10, 113, 3, 78, 136, 74, 249, 255, 255, 255, 138, 9, 0, 0, 0, 0, 0, 0, 0, 0, 64, 101, 88, 1, 0, 0, 0, 98, 113, 4, 75, 3, 133, 113, 5, 88, 1, 0, 0, 0, 99, 113, 6, 125, 113, 7, 88, 1, 0, 0, 0, 100, 113, 8, 99, 95, 99, 111, 100, 101, 99, 115, 10, 101, 110, 99, 111, 100, 101, 10, 113, 9, 88, 4, 0, 0, 0, 0, 195, 191, 122, 113, 10, 88, 6, 0, 0, 0, 108, 97, 116, 105, 110, 49, 113, 11, 134, 113, 12, 82, 113, 13, 115, 117, 46]
        XCTAssertEqual(try run(p2), plainValue)
    }

    func testProtocol4And5() throws {
        for version: UInt8 in [4, 5] {
            let p: [UInt8] = [128, version, 149, 74, 0, 0, 0, 0, 0, 0, 0, 125, 148, 40, 140, 1, 97, 148, 93, 148, 40, 75, 1, 71, 64, 4, 0, 0, 0, 0, 0, 0, 140, 4, 120, 195, 169, 10, 148, 78, 136, 74, 249, 255, 255, 255, 138, 9, 0, 0, 0, 0, 0, 0, 0, 0, 64, 101, 140, 1, 98, 148, 75, 3, 133, 148, 140, 1, 99, 148, 125, 148, 140, 1, 100, 148, 67, 3, 0, 255, 122, 148, 115, 117, 46]
            XCTAssertEqual(try run(p), plainValue)
        }
    }

    func testSetsAndBigIntegers() throws {
        let set: [UInt8] = [128, 2, 99, 95, 95, 98, 117, 105, 108, 116, 105, 110, 95, 95, 10, 115, 101, 116, 10, 113, 0, 93, 113, 1, 40, 75, 1, 75, 2, 101, 133, 113, 2, 82, 113, 3, 46]
        XCTAssertEqual(try run(set), .set([.int(1), .int(2)]))
        // -2**70 - 5, and torch's legacy magic number 0x1950a86a20f9469cfc6c.
        XCTAssertEqual(try run([128, 2, 138, 9, 251, 255, 255, 255, 255, 255, 255, 255, 191, 46]), .bigInt("-1180591620717411303429"))
        XCTAssertEqual(try run([0x80, 2, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E]),
                       .bigInt("119547037146038801333356"))
        XCTAssertEqual(try run(TPK.proto() + TPK.int(-(1 << 40)) + [TPK.STOP]), .int(-(1 << 40)))
    }

    func testTensorReference() throws {
        let bytes = TPK.proto() + TPK.dict([("w", TPK.tensor(key: "0", type: "HalfStorage", numel: 12, offset: 2, shape: [2, 3], stride: [1, 2]))]) + [TPK.STOP]
        let result = try PickleMachine.run(bytes)
        let storage = PickleStorageRef(key: "0", dtype: .F16, isUntyped: false, numel: 12, location: "cpu")
        XCTAssertEqual(result.value["w"], .tensor(PickleTensorRef(storage: storage, dtype: .F16, storageOffset: 2, shape: [2, 3],
                                                                   stride: [1, 2], requiresGrad: false)))
        XCTAssertEqual(result.storages, [storage])
    }

    // MARK: - Disallowed globals

    static let evil: [(String, String)] = [
        ("os", "system"), ("posix", "system"), ("nt", "system"), ("builtins", "eval"), ("builtins", "exec"),
        ("builtins", "print"), ("subprocess", "Popen"), ("torch", "load"), ("torch.serialization", "load"),
        ("torch.storage", "_load_from_bytes"), ("pickle", "loads"), ("builtins", "getattr"), ("torch._utils", "_rebuild_qtensor"),
    ]

    func testGlobalReduceIsRefusedAtTheGlobal() {
        for (module, name) in Self.evil {
            expect(TPK.proto() + TPK.call(module, name, "touch /tmp/pwned") + [TPK.STOP], .disallowedGlobal("\(module).\(name)", offset: 2))
        }
    }

    func testStackGlobalAndMemoIndirection() {
        for (module, name) in Self.evil {
            let direct = TPK.proto(4) + TPK.short(module) + TPK.short(name) + [TPK.STACK_GLOBAL] + TPK.short("id") + [TPK.TUPLE1, TPK.REDUCE, TPK.STOP]
            expect(direct, .disallowedGlobal("\(module).\(name)", offset: 2 + 2 + module.utf8.count + 2 + name.utf8.count))
            // Strings memoized, then fetched back (picklescan malicious11).
            var memo = TPK.proto(4) + TPK.short(module) + [TPK.MEMOIZE, TPK.POP] + TPK.short(name) + [TPK.MEMOIZE, TPK.POP]
            let at = memo.count + 4
            memo += TPK.get(0) + TPK.get(1) + [TPK.STACK_GLOBAL, TPK.EMPTY_TUPLE, TPK.REDUCE, TPK.STOP]
            expect(memo, .disallowedGlobal("\(module).\(name)", offset: at))
        }
    }

    func testGlobalNeverCalledIsStillRefused() {
        let bytes = TPK.proto() + TPK.global("os", "system") + [TPK.POP] + TPK.int(1) + [TPK.STOP]
        expect(bytes, .disallowedGlobal("os.system", offset: 2))
    }

    func testPayloadDeepInsideValidStateDict() {
        let prefix = TPK.proto() + [TPK.EMPTY_DICT, TPK.MARK] + TPK.str("state_dict")
            + TPK.dict([("w", TPK.tensor(key: "0", numel: 6, shape: [2, 3], stride: [3, 1]))])
            + TPK.str("meta") + [TPK.EMPTY_LIST, TPK.MARK] + TPK.int(1) + TPK.int(2)
        let payload = TPK.call("posix", "system", "id")
        let bytes = prefix + payload + [TPK.APPENDS, TPK.SETITEMS, TPK.STOP]
        expect(bytes, .disallowedGlobal("posix.system", offset: prefix.count))
    }

    func testInstObjNewobjBuild() {
        // INST 'builtins exec', OBJ, EXT*
        expect(TPK.proto() + [TPK.MARK] + TPK.str("x") + [TPK.INST] + Array("builtins\nexec\n".utf8) + [TPK.STOP],
               .forbiddenOpcode(name: "INST", offset: 9))
        expect(TPK.proto() + [TPK.MARK] + TPK.global("builtins", "dict") + [TPK.OBJ, TPK.STOP], .disallowedGlobal("builtins.dict", offset: 3))
        expect(TPK.proto() + [TPK.MARK, TPK.OBJ, TPK.STOP], .forbiddenOpcode(name: "OBJ", offset: 3))
        expect(TPK.proto() + [0x82, 1, TPK.STOP], .forbiddenOpcode(name: "EXT1", offset: 2))
        // NEWOBJ of a non-allow-listed class, and of an allowed function.
        expect(TPK.proto() + TPK.global("smtplib", "SMTP") + [TPK.EMPTY_TUPLE, TPK.NEWOBJ, TPK.STOP], .disallowedGlobal("smtplib.SMTP", offset: 2))
        expect(TPK.proto() + TPK.global("torch._utils", "_rebuild_tensor_v2") + [TPK.EMPTY_TUPLE, TPK.NEWOBJ, TPK.STOP]) {
            if case .badCall = $0 { true } else { false }
        }
        // BUILD on a list, and on a tensor.
        expect(TPK.proto() + [TPK.EMPTY_LIST, TPK.EMPTY_DICT, TPK.BUILD, TPK.STOP], .corrupt("BUILD applies state to something other than an OrderedDict", offset: 4))
        let tensor = TPK.tensor(key: "0", numel: 6, shape: [6], stride: [1])
        expect(TPK.proto() + tensor + [TPK.EMPTY_DICT, TPK.BUILD, TPK.STOP], .corrupt("BUILD applies state to something other than an OrderedDict", offset: 2 + tensor.count + 1))
        // BUILD on an OrderedDict with a dict state is what state_dict()'s _metadata needs.
        XCTAssertEqual(try run(TPK.proto() + TPK.global("collections", "OrderedDict") + [TPK.EMPTY_TUPLE, TPK.REDUCE]
                + TPK.dict([("_metadata", [TPK.NONE])]) + [TPK.BUILD, TPK.STOP]), .dict([]))
        // REDUCE of a storage class or dtype (allowed names that are not callable).
        expect(TPK.proto() + TPK.global("torch", "FloatStorage") + [TPK.EMPTY_TUPLE, TPK.REDUCE, TPK.STOP]) {
            if case .badCall = $0 { true } else { false }
        }
    }

    func testContainerTypeConfusion() {
        // SETITEMS on a list (CVE-2026-24747), APPEND on a dict, ADDITEMS on a frozenset.
        expect(TPK.proto() + [TPK.EMPTY_LIST, TPK.MARK] + TPK.int(1) + TPK.int(2) + [TPK.SETITEMS, TPK.STOP],
               .corrupt("SETITEM target must be a dict", offset: 8))
        expect(TPK.proto() + [TPK.EMPTY_DICT] + TPK.int(1) + [TPK.APPEND, TPK.STOP], .corrupt("APPEND target must be a list", offset: 5))
        expect(TPK.proto() + TPK.int(3) + TPK.int(1) + TPK.int(2) + [TPK.SETITEM, TPK.STOP], .corrupt("SETITEM target must be a dict", offset: 8))
        // A memoized int used as a callable (type confusion).
        expect(TPK.proto() + TPK.int(5) + TPK.put(0) + TPK.get(0) + [TPK.EMPTY_TUPLE, TPK.REDUCE, TPK.STOP],
               .corrupt("REDUCE of something that is not a global", offset: 9))
        // Duplicate dict keys.
        expect(TPK.proto() + TPK.dict([("a", TPK.int(1)), ("a", TPK.int(2))]) + [TPK.STOP]) { if case .corrupt("duplicate dict key", _) = $0 { true } else { false } }
    }

    func testPersistentIdChecks() {
        func pid(_ items: [UInt8]) -> [UInt8] { TPK.proto() + [TPK.MARK] + items + [TPK.TUPLE, TPK.BINPERSID, TPK.STOP] }
        let good = TPK.str("storage") + TPK.global("torch", "FloatStorage") + TPK.str("0") + TPK.str("cpu") + TPK.int(4)
        XCTAssertNoThrow(try run(pid(good)))
        let cases: [[UInt8]] = [
            TPK.str("foo") + TPK.global("torch", "FloatStorage") + TPK.str("0") + TPK.str("cpu") + TPK.int(4),
            TPK.str("storage") + TPK.global("torch", "FloatStorage") + TPK.str("0") + TPK.str("cpu"),
            TPK.str("storage") + TPK.global("torch", "FloatStorage") + TPK.int(0) + TPK.str("cpu") + TPK.int(4),
            TPK.str("storage") + TPK.global("torch", "FloatStorage") + TPK.str("0") + TPK.str("cpu") + TPK.int(-4),
            TPK.str("storage") + TPK.global("collections", "OrderedDict") + TPK.str("0") + TPK.str("cpu") + TPK.int(4),
            TPK.str("storage") + TPK.global("torch", "FloatStorage") + TPK.str("0") + TPK.str("cpu") + TPK.int(1 << 62),
        ]
        for c in cases { expect(pid(c)) { if case .corrupt = $0 { true } else { false } } }
        expect(pid(TPK.str("storage") + TPK.global("torch", "ComplexFloatStorage") + TPK.str("0") + TPK.str("cpu") + TPK.int(4)),
               .disallowedGlobal("torch.ComplexFloatStorage", offset: 15))
    }

    func testBadTensorArguments() {
        func t(_ shape: [Int], _ stride: [Int], offset: Int = 0) -> [UInt8] {
            TPK.proto() + TPK.tensor(key: "0", numel: 6, offset: offset, shape: shape, stride: stride) + [TPK.STOP]
        }
        expect(t([6], [-1])) { if case .badCall(_, "negative stride", _) = $0 { true } else { false } }
        expect(t([-6], [1])) { if case .badCall(_, "negative size", _) = $0 { true } else { false } }
        expect(t([2, 3], [1])) { if case .badCall = $0 { true } else { false } }
        expect(t([6], [1], offset: -1)) { if case .badCall = $0 { true } else { false } }
    }

    // MARK: - Structure and limits

    func testMemoGetOfUnsetIndex() {
        expect(TPK.proto() + TPK.int(1) + TPK.put(3) + TPK.get(5) + [TPK.STOP], .memoMissing(index: 5, offset: 6))
        expect(TPK.proto() + [0x6A] + TestLE.u32(1 << 31) + [TPK.STOP], .memoMissing(index: 1 << 31, offset: 2))
    }

    func testStructuralCorruption() {
        expect([], .truncated(offset: 0))
        expect(TPK.proto() + [TPK.REDUCE, TPK.STOP], .corrupt("stack underflow", offset: 2))
        expect(TPK.proto() + [TPK.POP_MARK, TPK.STOP], .corrupt("no MARK on the stack", offset: 2))
        expect(TPK.proto() + TPK.int(1), .truncated(offset: 4))
        expect(TPK.proto() + [TPK.STOP], .corrupt("stack underflow", offset: 2))
        expect(TPK.proto() + [0xFF, TPK.STOP], .unknownOpcode(0xFF, offset: 2))
        expect(TPK.proto() + TPK.proto() + TPK.int(1) + [TPK.STOP], .corrupt("PROTO after the first opcode", offset: 2))
        expect(TPK.proto(6) + TPK.int(1) + [TPK.STOP], .corrupt("unsupported protocol 6", offset: 0))
        expect(TPK.proto() + TPK.int(1) + TPK.int(2) + [TPK.STOP]) { if case .corrupt = $0 { true } else { false } }
        // Values below a MARK are out of reach.
        expect(TPK.proto() + TPK.int(1) + [TPK.MARK, TPK.POP, TPK.STOP], .corrupt("stack underflow", offset: 5))
    }

    func testTrailingBytesAndStackedPickles() {
        let one = TPK.proto() + TPK.int(1) + [TPK.STOP]
        expect(one + [0], .trailingBytes(offset: one.count))
        expect(one + one, .trailingBytes(offset: one.count))
    }

    func testHugeLengthsAreCheckedBeforeAllocating() {
        expect(TPK.proto() + [0x58] + TestLE.u32(0x7FFF_FFFF) + [0x41, 0x42], .truncated(offset: 2))
        expect(TPK.proto(4) + [0x8E] + TestLE.u64(1 << 62) + [0x41], .truncated(offset: 2))
        expect(TPK.proto(4) + [0x8D] + TestLE.u64(UInt64.max) + [0x41], .truncated(offset: 2))
        expect(TPK.proto() + [0x8B] + TestLE.u32(1 << 30) + [1, 2], .limitExceeded("integer size (256 bytes)", offset: 2))
        expect(TPK.proto() + [0x8B] + TestLE.u32(-5) + [1, 2], .corrupt("negative LONG4 length", offset: 2))
        expect(TPK.proto() + [0x54] + TestLE.u32(-1) + [TPK.STOP], .corrupt("negative BINSTRING length", offset: 2))
    }

    func testFrameBoundaries() {
        // A 2-byte frame holding the start of a 263-byte BINBYTES (fickling's frame divergence).
        let straddle = TPK.proto(4) + [0x95] + TestLE.u64(2) + [0x42] + TestLE.u32(263) + [UInt8](repeating: 0x41, count: 263) + [TPK.STOP]
        expect(straddle) { if case .corrupt("read straddles the end of a frame", _) = $0 { true } else { false } }
        expect(TPK.proto(4) + [0x95] + TestLE.u64(1000) + TPK.int(1) + [TPK.STOP], .truncated(offset: 2))
        // Properly framed.
        XCTAssertEqual(try run(TPK.proto(4) + [0x95] + TestLE.u64(3) + TPK.int(7) + [TPK.STOP]), .int(7))
    }

    func testDeepNestingIsRefusedWithoutStackOverflow() {
        let n = 100_000
        expect(TPK.proto() + [UInt8](repeating: TPK.MARK, count: n) + [TPK.STOP], .limitExceeded("MARK depth (1000)", offset: 1002))
        // 100k nested lists: [[[[…]]]] built with EMPTY_LIST ×n then APPEND ×(n−1).
        let lists = TPK.proto() + [UInt8](repeating: TPK.EMPTY_LIST, count: n) + [UInt8](repeating: TPK.APPEND, count: n - 1) + [TPK.STOP]
        expect(lists) { if case .limitExceeded("nesting depth (1000)", _) = $0 { true } else { false } }
        // A list appended to itself.
        expect(TPK.proto() + [TPK.EMPTY_LIST, TPK.DUP, TPK.APPEND, TPK.STOP]) { if case .corrupt("reference cycle between containers", _) = $0 { true } else { false } }
        // 300k DUPs.
        expect(TPK.proto() + TPK.int(1) + [UInt8](repeating: TPK.DUP, count: 300_000) + [TPK.STOP]) {
            if case .limitExceeded("stack size (200000)", _) = $0 { true } else { false }
        }
    }

    func testBillionLaughsIsRefused() {
        // l0 = [1]*8; l(k+1) = [lk]*8 … 12 levels: 8^13 leaves from a few hundred bytes.
        let eight = [Int](repeating: 0, count: 8)
        var b = TPK.proto() + [TPK.EMPTY_LIST, TPK.MARK] + eight.flatMap { _ in TPK.int(1) } + [TPK.APPENDS] + TPK.put(0) + [TPK.POP]
        for level in 1...12 {
            b += [TPK.EMPTY_LIST, TPK.MARK] + eight.flatMap { _ in TPK.get(UInt8(level - 1)) } + [TPK.APPENDS] + TPK.put(UInt8(level)) + [TPK.POP]
        }
        b += TPK.get(12) + [TPK.STOP]
        expect(b) { if case .limitExceeded("expanded size (4000000 values)", _) = $0 { true } else { false } }
    }

    func testEveryTruncationOfAValidPickleIsRefused() throws {
        let bytes = TPK.proto() + TPK.dict([("w", TPK.tensor(key: "0", numel: 6, shape: [2, 3], stride: [3, 1])), ("e", TPK.int(3))]) + [TPK.STOP]
        XCTAssertNoThrow(try run(bytes))
        for n in 0..<bytes.count {
            XCTAssertThrowsError(try run(Array(bytes.prefix(n))), "prefix \(n)")
        }
        for i in bytes.indices {
            var bad = bytes
            bad[i] ^= 0xFF
            _ = try? run(bad)
        }
    }
}
