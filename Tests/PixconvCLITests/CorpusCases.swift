import Foundation
import PixconvCore
import PixconvTestSupport

/// One file of the bad-input corpus (`formats/hostile-inputs.md`) and what `pixconv inspect` must say.
struct CorpusCase {
    enum Expect: Equatable {
        /// Exit status 1, one stderr line naming the file and containing the fragment.
        case reject(String)
        /// The file is valid (the corpus says so); exit status 0.
        case accept
    }

    /// The case number (`formats/hostile-inputs.md`, "Numbering of the corpus").
    let number: Int
    /// `name/variant`, unique; also the file name stem.
    let id: String
    let fileExtension: String
    let bytes: [UInt8]
    let expect: Expect

    init(_ number: Int, _ id: String, _ ext: String, _ bytes: [UInt8], _ expect: Expect) {
        self.number = number
        self.id = id
        self.fileExtension = ext
        self.bytes = bytes
        self.expect = expect
    }

    var fileName: String { id.replacingOccurrences(of: "/", with: "~") + "." + fileExtension }
}

/// The golden table: every single-file case of the corpus, by group. Folder cases (24, 25), the store
/// bit flips (62) and filesystem cases (63, 64) live in `BadInputCorpusTests`.
enum CorpusTable {
    static var all: [CorpusCase] { safetensors + pickle + zip + gguf }

    static func st(_ n: Int, _ id: String, _ b: [UInt8], _ e: CorpusCase.Expect) -> CorpusCase {
        CorpusCase(n, id, "safetensors", b, e)
    }

    static func entry(_ name: String, _ dtype: String = "F32", shape: String, offsets: String) -> String {
        #""\#(name)":{"dtype":"\#(dtype)","shape":\#(shape),"data_offsets":\#(offsets)}"#
    }

    // MARK: - safetensors (1–23)

    static var safetensors: [CorpusCase] {
        let valid = corpusValidSafetensors()
        let w = entry("w", shape: "[2,3]", offsets: "[0,24]")
        let data24 = [UInt8](repeating: 0, count: 24)
        func header(_ h: String, data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] { corpusSafetensors(h, data: data, length: length) }
        var deep = #"{"__metadata__":{"x":"#
        deep += String(repeating: "[", count: 200_000) + String(repeating: "]", count: 200_000) + "}}"
        return [
            st(1, "st-too-short/0-bytes", [], .reject("header too small")),
            st(1, "st-too-short/7-bytes", [2, 0, 0, 0, 0, 0, 0], .reject("header too small")),
            st(2, "st-header-huge/u64-max", header("{}", length: UInt64.max), .reject("header too large")),
            st(2, "st-header-huge/100000001", header("{}", length: 100_000_001), .reject("header too large")),
            st(3, "st-header-past-eof", header(String(repeating: " ", count: 90) + "{}", length: 1000), .reject("exceeds the file")),
            st(4, "st-bad-utf8", TestLE.u64(1) + [0xFF], .reject("header is not utf-8")),
            st(5, "st-bad-json/open-brace", header("{"), .reject("header is not valid json")),
            st(5, "st-bad-json/array", header("[]"), .reject("header is not a json object")),
            st(5, "st-bad-json/string", header(#""x""#), .reject("header is not a json object")),
            st(6, "st-bom", header("\u{FEFF}{\(w)}", data: data24), .reject("header is not a json object")),
            st(6, "st-nul-pad", header("{\(w)}\0\0", data: data24), .reject("unexpected data after the top-level value")),
            st(6, "st-spaces-accepted", header("  {\(w)}  ", data: data24), .accept),
            st(7, "st-deep-nesting", header(deep), .reject("nesting deeper than")),
            st(8, "st-dup-key-identical", header("{\(w),\(w)}", data: data24), .reject("duplicate key \"w\"")),
            st(9, "st-dup-key-different",
               header("{\(entry("a", "U8", shape: "[8]", offsets: "[0,8]")),\(entry("a", "U8", shape: "[8]", offsets: "[8,16]"))}",
                      data: [UInt8](repeating: 0, count: 16)), .reject("duplicate key \"a\"")),
            st(10, "st-unknown-field", header(#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24],"evil":"x"}}"#, data: data24),
               .reject("unknown field \"evil\"")),
            st(11, "st-metadata-nonstring", header(#"{"__metadata__":{"k":1},\#(w)}"#, data: data24), .reject("is not a string")),
            st(11, "st-metadata-duplicate", header(#"{"__metadata__":{},"__metadata__":{},\#(w)}"#, data: data24),
               .reject("duplicate key \"__metadata__\"")),
            st(11, "st-metadata-as-tensor", header("{\(entry("__metadata__", shape: "[2,3]", offsets: "[0,24]"))}", data: data24),
               .reject("__metadata__ value for")),
            st(12, "st-bad-dtype/F128", header("{\(entry("w", "F128", shape: "[2,3]", offsets: "[0,24]"))}", data: data24),
               .reject("unknown dtype \"F128\"")),
            st(12, "st-bad-dtype/lowercase-f32", header("{\(entry("w", "f32", shape: "[2,3]", offsets: "[0,24]"))}", data: data24),
               .reject("unknown dtype \"f32\"")),
            st(13, "st-bad-numbers/shape-2.0", header("{\(entry("w", shape: "[2.0,3]", offsets: "[0,24]"))}", data: data24),
               .reject("shape must be an array of integers")),
            st(13, "st-bad-numbers/shape-1e3", header("{\(entry("w", "U8", shape: "[1e3]", offsets: "[0,1000]"))}"),
               .reject("shape must be an array of integers")),
            st(13, "st-bad-numbers/shape-negative", header("{\(entry("w", shape: "[-2]", offsets: "[0,8]"))}"),
               .reject("shape must be an array of integers")),
            st(13, "st-bad-numbers/shape-2^64", header("{\(entry("w", shape: "[18446744073709551616]", offsets: "[0,8]"))}"),
               .reject("shape must be an array of integers")),
            st(13, "st-bad-numbers/offsets-one", header("{\(entry("w", shape: "[2,3]", offsets: "[0]"))}", data: data24),
               .reject("data_offsets must be an array of integers")),
            st(13, "st-bad-numbers/offsets-three", header("{\(entry("w", shape: "[2,3]", offsets: "[0,24,24]"))}", data: data24),
               .reject("data_offsets must be an array of integers")),
            st(13, "st-bad-numbers/offsets-reversed", header("{\(entry("w", "U8", shape: "[16]", offsets: "[16,0]"))}"),
               .reject("is before begin")),
            st(14, "st-size-mismatch", header("{\(entry("w", shape: "[1000,1000]", offsets: "[0,4]"))}", data: [0, 0, 0, 0]),
               .reject("does not match shape × dtype")),
            st(15, "st-shape-overflow", header("{\(entry("w", "U8", shape: "[4294967296,4294967296,2]", offsets: "[0,16]"))}",
                                               data: [UInt8](repeating: 0, count: 16)), .reject("overflows")),
            // 2^32 · 2^32 · 1 ≡ 0 (mod 2^64): a wrapping product would match a zero-length span.
            st(16, "st-shape-product-zero-wrap", header("{\(entry("w", "U8", shape: "[4294967296,4294967296]", offsets: "[0,16]"))}",
                                                        data: [UInt8](repeating: 0, count: 16)), .reject("overflows")),
            st(17, "st-hole/leading", header("{\(entry("w", "U8", shape: "[16]", offsets: "[8,24]"))}", data: [UInt8](repeating: 0, count: 24)),
               .reject("not contiguous")),
            st(17, "st-hole/between", header("{\(entry("a", "U8", shape: "[8]", offsets: "[0,8]")),\(entry("b", "U8", shape: "[8]", offsets: "[16,24]"))}",
                                             data: [UInt8](repeating: 0, count: 24)), .reject("not contiguous")),
            st(18, "st-overlap", header("{" + (0..<10).map { entry("t\($0)", "U8", shape: "[16]", offsets: "[0,16]") }.joined(separator: ",") + "}",
                                        data: [UInt8](repeating: 0, count: 16)), .reject("not contiguous")),
            // Eight 2^61-byte tensors: numbers past 2^53 are refused before any sum is formed.
            st(19, "st-offsets-wrap", header("{" + (0..<8).map { i -> String in
                let b = UInt64(i) << 61, e = UInt64(i + 1) << 61
                return entry("t\(i)", "U8", shape: "[\(UInt64(1) << 61)]", offsets: "[\(b),\(e &- (i == 7 ? 1 : 0))]")
            }.joined(separator: ",") + "}"), .reject("shape must be an array of integers in 0...2^53")),
            st(20, "st-polyglot-tail", valid + CorpusTorch.file(pickle: TestPickle.stateDict()), .reject("trailing bytes after tensor data")),
            st(21, "st-truncated", Array(valid.dropLast()), .reject("file truncated")),
            st(22, "st-many-tensors", manyTensors(), .reject("more than 200000 tensors")),
            // Names from the file never break the one-line message (nor drive the terminal).
            st(10, "st-unknown-field/newline-in-name", header(#"{"a\nb":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24],"evil":"x"}}"#, data: data24),
               .reject(#"tensor a\nb: unknown field "evil""#)),
            st(10, "st-unknown-field/escape-in-name", header(#"{"\u001b[2Jx":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24],"evil":"x"}}"#, data: data24),
               .reject(#"tensor \u{1b}[2Jx: unknown field"#)),
            st(23, "st-zero-size-shared-offset",
               header("{\(entry("z", shape: "[0]", offsets: "[0,0]")),\(entry("a", shape: "[4]", offsets: "[0,16]"))}",
                      data: [UInt8](repeating: 0, count: 16)), .accept),
        ]
    }

    /// 200,001 zero-size tensors (about 11 MB of header), one more than the reader's cap.
    static func manyTensors() -> [UInt8] {
        var h = "{"
        h.reserveCapacity(12_000_000)
        for i in 0...200_000 {
            if i > 0 { h += "," }
            h += #""t\#(i)":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}"#
        }
        return corpusSafetensors(h + "}")
    }

    // MARK: - pickle (26–40), each inside a well-formed torch zip

    static func pk(_ n: Int, _ id: String, _ pickle: [UInt8], _ e: CorpusCase.Expect,
                   records: [String: [UInt8]] = ["0": CorpusTorch.sixFloats]) -> CorpusCase {
        CorpusCase(n, id, "pt", CorpusTorch.file(pickle: pickle, records: records), e)
    }

    static var pickle: [CorpusCase] {
        typealias P = TestPickle
        func call(_ m: String, _ f: String) -> [UInt8] { P.proto() + P.global(m, f) + P.str("marker") + [P.TUPLE1, P.REDUCE, P.STOP] }
        var cases: [CorpusCase] = []
        for (m, f) in [("builtins", "print"), ("os", "system"), ("posix", "system"), ("nt", "system")] {
            cases.append(pk(26, "pk-global-reduce/\(m).\(f)", call(m, f), .reject("disallowed global `\(m).\(f)`")))
        }
        let stackGlobal = P.proto(4) + P.short("builtins") + P.short("print") + [P.STACK_GLOBAL] + P.short("marker") + [P.TUPLE1, P.REDUCE, P.STOP]
        cases.append(pk(27, "pk-stack-global", stackGlobal, .reject("disallowed global `builtins.print`")))
        let newlineGlobal = P.proto(4) + P.short("os\nfake line") + P.short("system") + [P.STACK_GLOBAL] + P.short("id") + [P.TUPLE1, P.REDUCE, P.STOP]
        cases.append(pk(27, "pk-stack-global/newline-in-module", newlineGlobal, .reject(#"disallowed global `os\nfake line.system`"#)))
        let memo = P.proto(4) + P.short("os") + [P.MEMOIZE, P.POP] + P.short("system") + [P.MEMOIZE, P.POP]
            + P.get(0) + P.get(1) + [P.STACK_GLOBAL] + P.short("id") + [P.TUPLE1, P.REDUCE, P.STOP]
        cases.append(pk(28, "pk-memo-indirection/binget", memo, .reject("disallowed global `os.system`")))
        cases.append(pk(28, "pk-memo-indirection/missing-key", P.proto() + P.int(1) + P.put(3) + P.get(5) + [P.STOP],
                        .reject("memo index 5 was never set")))
        cases.append(pk(28, "pk-memo-indirection/int-as-callable", P.proto() + P.int(5) + P.put(0) + P.get(0) + [P.EMPTY_TUPLE, P.REDUCE, P.STOP],
                        .reject("REDUCE of something that is not a global")))
        cases.append(pk(29, "pk-inst-obj-newobj/inst", P.proto() + [P.MARK] + P.str("x") + [P.INST] + Array("builtins\nexec\n".utf8) + [P.STOP],
                        .reject("opcode INST at offset 9 is not allowed")))
        cases.append(pk(29, "pk-inst-obj-newobj/obj", P.proto(4) + [P.MARK] + P.short("smtplib") + P.short("SMTP") + [P.STACK_GLOBAL]
                        + P.short("localhost") + [P.OBJ, P.POP] + P.int(1) + [P.STOP], .reject("disallowed global `smtplib.SMTP`")))
        cases.append(pk(29, "pk-inst-obj-newobj/newobj", P.proto() + P.global("smtplib", "SMTP") + [P.EMPTY_TUPLE, P.NEWOBJ, P.STOP],
                        .reject("disallowed global `smtplib.SMTP`")))
        cases.append(pk(30, "pk-build-injection/list", P.proto() + [P.EMPTY_LIST, P.EMPTY_DICT, P.BUILD, P.STOP],
                        .reject("BUILD applies state to something other than an OrderedDict")))
        cases.append(pk(30, "pk-build-injection/tensor", P.proto() + P.tensor(numel: 6, shape: [6], stride: [1]) + P.dict([("x", P.int(1))])
                        + [P.BUILD, P.STOP], .reject("BUILD applies state to something other than an OrderedDict")))
        for (m, f) in [("torch", "load"), ("torch.serialization", "load"), ("torch.storage", "_load_from_bytes"), ("pickle", "loads"),
                       ("numpy.core.multiarray", "_reconstruct")] {
            cases.append(pk(31, "pk-nested-pickle/\(m).\(f)", call(m, f), .reject("disallowed global `\(m).\(f)`")))
        }
        cases.append(pk(32, "pk-setitem-on-non-dict/setitems-list", P.proto() + [P.EMPTY_LIST, P.MARK] + P.int(1) + P.int(2) + [P.SETITEMS, P.STOP],
                        .reject("SETITEM target must be a dict")))
        cases.append(pk(32, "pk-setitem-on-non-dict/append-dict", P.proto() + [P.EMPTY_DICT] + P.int(1) + [P.APPEND, P.STOP],
                        .reject("APPEND target must be a list")))
        func pid(_ items: [UInt8]) -> [UInt8] { P.proto() + [P.MARK] + items + [P.TUPLE, P.BINPERSID, P.STOP] }
        let fs = P.global("torch", "FloatStorage")
        cases += [
            pk(33, "pk-persid-bad/tag-foo", pid(P.str("foo") + fs + P.str("0") + P.str("cpu") + P.int(4)), .reject("corrupt pickle")),
            pk(33, "pk-persid-bad/arity", pid(P.str("storage") + fs + P.str("0") + P.str("cpu")), .reject("corrupt pickle")),
            pk(33, "pk-persid-bad/int-key", pid(P.str("storage") + fs + P.int(0) + P.str("cpu") + P.int(4)), .reject("corrupt pickle")),
            pk(33, "pk-persid-bad/negative-numel", pid(P.str("storage") + fs + P.str("0") + P.str("cpu") + P.int(-4)), .reject("corrupt pickle")),
            pk(33, "pk-persid-bad/storage-class", pid(P.str("storage") + P.global("torch", "ComplexFloatStorage") + P.str("0") + P.str("cpu") + P.int(4)),
               .reject("disallowed global `torch.ComplexFloatStorage`")),
        ]
        let sd = TestPickle.stateDict()
        cases.append(pk(34, "pk-numel-mismatch/8-bytes", sd, .reject("holds 8 bytes, but its storage needs numel × itemsize = 24"),
                        records: ["0": [UInt8](repeating: 0, count: 8)]))
        cases.append(pk(34, "pk-numel-mismatch/88-bytes", sd, .reject("holds 88 bytes, but its storage needs numel × itemsize = 24"),
                        records: ["0": [UInt8](repeating: 0, count: 88)]))
        func view(_ offset: Int, _ shape: [Int], _ stride: [Int]) -> [UInt8] {
            P.proto() + P.dict([("w", P.tensor(numel: 6, offset: offset, shape: shape, stride: stride))]) + [P.STOP]
        }
        cases.append(pk(35, "pk-view-out-of-storage/offset-5-size-600", view(5, [600], [1]), .reject("view needs 2420 bytes")))
        cases.append(pk(35, "pk-view-out-of-storage/negative-stride", view(0, [6], [-1]), .reject("negative stride")))
        cases.append(pk(35, "pk-view-out-of-storage/stride-overflow", view(0, [3, 3], [1 << 62, 1 << 62]), .reject("size overflow")))
        cases += [
            pk(36, "pk-structural/reduce-empty-stack", P.proto() + [P.REDUCE, P.STOP], .reject("corrupt pickle at offset 2: stack underflow")),
            pk(36, "pk-structural/pop-mark-without-mark", P.proto() + [P.POP_MARK, P.STOP], .reject("no MARK on the stack")),
            pk(36, "pk-structural/no-stop", P.proto() + P.int(1), .reject("corrupt pickle: truncated")),
            pk(36, "pk-structural/stop-empty-stack", P.proto() + [P.STOP], .reject("stack underflow")),
            pk(36, "pk-structural/opcode-ff", P.proto() + [0xFF, P.STOP], .reject("unknown opcode 0xff")),
            pk(36, "pk-structural/second-proto", P.proto() + P.proto() + P.int(1) + [P.STOP], .reject("PROTO after the first opcode")),
            pk(37, "pk-huge-lengths/binunicode-7fffffff", P.proto() + [0x58] + TestLE.u32(0x7FFF_FFFF) + [0x41, 0x42], .reject("corrupt pickle: truncated")),
            pk(37, "pk-huge-lengths/binbytes8-2^62", P.proto(4) + [0x8E] + TestLE.u64(1 << 62) + [0x41, 0x42], .reject("corrupt pickle: truncated")),
            pk(37, "pk-huge-lengths/binunicode8-2^62", P.proto(4) + [0x8D] + TestLE.u64(1 << 62) + [0x41, 0x42], .reject("corrupt pickle: truncated")),
            pk(37, "pk-huge-lengths/long4-2^30", P.proto() + [0x8B] + TestLE.u32(1 << 30) + [1, 2], .reject("integer size")),
            pk(38, "pk-expansion/billion-laughs", billionLaughs(), .reject("expanded size")),
            pk(38, "pk-expansion/dup", P.proto() + P.int(1) + [UInt8](repeating: P.DUP, count: 300_000) + [P.STOP], .reject("stack size")),
            pk(38, "pk-expansion/marks", P.proto() + [UInt8](repeating: P.MARK, count: 1_000_000) + [P.STOP], .reject("MARK depth")),
            pk(39, "pk-trailing-and-stacked/tail", sd + [0x00], .reject("pickle has bytes after STOP")),
            pk(39, "pk-trailing-and-stacked/two-pickles", sd + sd, .reject("pickle has bytes after STOP")),
            pk(40, "pk-frame-straddle", P.proto(4) + [0x95] + TestLE.u64(2) + [0x42] + TestLE.u32(263) + [UInt8](repeating: 0x41, count: 263) + [P.STOP],
               .reject("straddles the end of a frame")),
        ]
        return cases
    }

    /// A list of 8 ints, then 12 levels of lists of 8 references to the level below: 8^13 leaves.
    static func billionLaughs() -> [UInt8] {
        typealias P = TestPickle
        var b = P.proto() + [P.EMPTY_LIST, P.MARK] + (0..<8).flatMap { _ in P.int(1) } + [P.APPENDS] + P.put(0) + [P.POP]
        for level in 1...12 {
            b += [P.EMPTY_LIST, P.MARK] + (0..<8).flatMap { _ in P.get(UInt8(level - 1)) } + [P.APPENDS] + P.put(UInt8(level)) + [P.POP]
        }
        return b + P.get(12) + [P.STOP]
    }

    // MARK: - zip (41–52)

    static func zp(_ n: Int, _ id: String, _ z: TestZip, _ e: CorpusCase.Expect) -> CorpusCase {
        CorpusCase(n, id, "pt", z.build(), e)
    }

    static var zip: [CorpusCase] {
        let sd = TestPickle.stateDict()
        let base = CorpusTorch.zip(pickle: sd)
        func edit(_ f: (inout TestZip) -> Void) -> TestZip { var z = base; f(&z); return z }
        let evil = TestPickle.proto() + TestPickle.global("os", "system") + TestPickle.str("id") + [TestPickle.TUPLE1, TestPickle.REDUCE, TestPickle.STOP]
        var cases: [CorpusCase] = [
            CorpusCase(41, "zip-valid-control", "pt", base.build(), .accept),
            zp(41, "zip-duplicate-datapkl", edit { $0.items.insert(TestZip.Item(name: "archive/data.pkl", data: evil), at: 0) },
               .reject("duplicate entry archive/data.pkl")),
            zp(42, "zip-two-prefixes", edit { $0.add("other/data.pkl", sd) }, .reject("records in two top-level folders")),
            CorpusCase(42, "zip-no-prefix", "pt", {
                var z = TestZip()
                z.add("data.pkl", sd); z.add("data/0", CorpusTorch.sixFloats); z.add("version", Array("3\n".utf8))
                return z.build()
            }(), .reject("is not inside a top-level folder")),
            zp(43, "zip-name-mismatch", edit { $0.items[0].localName = "archive/datp.pkl" }, .reject("local name \"archive/datp.pkl\" differs")),
        ]
        for flag: UInt16 in [0x1, 0x20, 0x40] {
            cases.append(zp(44, "zip-flag-bits/0x\(String(flag, radix: 16))", edit { $0.items[0].flags = flag },
                            .reject("unsupported flags 0x\(String(flag, radix: 16))")))
        }
        cases.append(zp(45, "zip-crc", edit { $0.items[0].crc = PixconvCore.crc32(sd) ^ 1 }, .reject("CRC mismatch")))
        cases.append(zp(46, "zip-bomb/declared-4GiB", edit {
            $0.items[0] = TestZip.Item(name: "archive/data.pkl", data: corpusDeflatedZeros(repeats: 4), method: 8, uncompressedSize: 0xFFFF_FFF0)
        }, .reject("exceeds the limit")))
        cases.append(zp(46, "zip-bomb/inflates-past-declared", edit {
            $0.items[0] = TestZip.Item(name: "archive/data.pkl", data: corpusDeflatedZeros(repeats: 10), method: 8, uncompressedSize: 1024,
                                         crc: 0)
        }, .reject("inflates to more than the declared 1024 bytes")))
        // A second entry whose local header lies inside the first entry's data (both well formed).
        cases.append(zp(46, "zip-bomb/overlapping-entries", edit {
            let inner = [UInt8](repeating: 0x41, count: 16)
            $0.items.insert(TestZip.Item(name: "archive/blob", data: TestZip.localRecord("archive/extra", inner)), at: 0)
            $0.items.append(TestZip.Item(name: "archive/extra", data: inner, localOffset: 30 + "archive/blob".utf8.count))
        }, .reject("zip: entries archive/blob and archive/extra overlap")))
        cases.append(zp(47, "zip-method/data-deflated-accepted", edit {
            $0.items[2] = TestZip.Item(name: "archive/data/0", data: [0x01] + TestLE.u16(24) + TestLE.u16(~24) + CorpusTorch.sixFloats,
                                         method: 8, uncompressedSize: 24, crc: PixconvCore.crc32(CorpusTorch.sixFloats))
        }, .accept))
        for method: UInt16 in [12, 99] {
            cases.append(zp(47, "zip-method/\(method)", edit { $0.items[2].method = method }, .reject("unsupported compression method \(method)")))
        }
        for (label, name) in [("dotdot", "../../evil"), ("absolute", "/abs"), ("inner-dotdot", "archive/../x"), ("backslash", "archive\\b"),
                              ("nul", "archive/x\u{0}y"), ("empty", "")] {
            cases.append(zp(48, "zip-slip-names/\(label)", edit { $0.add(name, [1]) }, .reject("entry name not allowed")))
        }
        cases.append(zp(48, "zip-slip-names/directory-like-record", edit { $0.items[2].name = "archive/data/0/" }, .reject("entry name not allowed")))
        cases.append(zp(49, "zip-polyglot/prepended-accepted", edit { $0.prefix = Array("JUNK-BEFORE-THE-ARCHIVE".utf8) }, .accept))
        cases.append(zp(49, "zip-polyglot/appended", edit { $0.trailing = Array("JUNK".utf8) }, .reject("4 trailing bytes after the end record")))
        cases.append(zp(49, "zip-polyglot/comment", edit { $0.comment = Array("hi".utf8) }, .reject("archive comment of 2 bytes not allowed")))
        cases.append(zp(49, "zip-polyglot/two-end-records", edit { $0.secondEndRecord = true }, .reject("missing central header")))
        cases.append(zp(50, "zip-torchscript", edit { $0.add("archive/constants.pkl", TestPickle.proto() + [TestPickle.EMPTY_TUPLE, TestPickle.STOP]) },
                        .reject("TorchScript archives are code")))
        cases.append(CorpusCase(51, "zip-legacy/tar", "pt", tarFile(), .reject("neither a zip archive nor a legacy pickle stream")))
        let bypass = TestPickle.proto() + TestPickle.global("builtins", "eval") + TestPickle.str("0x1950a86a20f9469cfc6c")
            + [TestPickle.TUPLE1, TestPickle.REDUCE, TestPickle.STOP] + TestPickle.proto() + TestPickle.int(1001) + [TestPickle.STOP]
        cases.append(CorpusCase(51, "zip-legacy/magic-by-reduce", "pt", bypass, .reject("neither a zip archive nor a legacy pickle stream")))
        let seven = TestPickle.proto() + TestPickle.dict([("w", TestPickle.tensor(key: "7", numel: 6, shape: [6], stride: [1]))]) + [TestPickle.STOP]
        cases.append(pk(52, "zip-missing-record", seven, .reject("storage record archive/data/7 is missing")))
        cases.append(CorpusCase(52, "not-a-zip/png", "pt", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + [UInt8](repeating: 0, count: 64),
                                .reject("neither a zip archive nor a legacy pickle stream")))
        cases.append(CorpusCase(52, "not-a-zip/empty", "pt", [], .reject("not a PyTorch checkpoint: empty file")))
        cases.append(zp(52, "zip-zip64-huge-count", edit {
            $0.zip64Sizes = (count: 1 << 62, size: UInt64(1) << 62, offset: 0)
        }, .reject("zip: central directory at 0 of 4611686018427387904 bytes lies outside the file")))
        return cases
    }

    /// A one-member POSIX tar (ustar) archive holding `storages`.
    static func tarFile() -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        func field(_ at: Int, _ s: String) { for (i, b) in s.utf8.enumerated() { h[at + i] = b } }
        field(0, "storages"); field(100, "0000644"); field(108, "0000000"); field(116, "0000000")
        field(124, "00000000010"); field(136, "00000000000"); field(156, "0"); field(257, "ustar"); field(263, "00")
        for i in 148..<156 { h[i] = 0x20 }
        let sum = h.reduce(0) { $0 + Int($1) }
        field(148, String(format: "%06o", sum)); h[154] = 0; h[155] = 0x20
        return h + [UInt8](repeating: 0x41, count: 8) + [UInt8](repeating: 0, count: 504 + 1024)
    }

    // MARK: - GGUF (53–61)

    static func gg(_ n: Int, _ id: String, _ b: [UInt8], _ e: CorpusCase.Expect) -> CorpusCase { CorpusCase(n, id, "gguf", b, e) }

    /// A file with one tensor info described by `info`, padded, with `dataBytes` of data.
    static func oneTensor(_ kvs: (inout TestGGUF) -> Int = { _ in 0 }, name: String = "w", dims: [UInt64], type: UInt32,
                          offset: UInt64 = 0, dataBytes: Int) -> [UInt8] {
        var kv = TestGGUF()
        let count = kvs(&kv)
        var g = TestGGUF()
        g.header(tensors: 1, kvs: UInt64(count))
        g.bytes += kv.bytes
        g.info(name, dims: dims, type: type, offset: offset)
        g.pad()
        g.data(dataBytes)
        return g.bytes
    }

    static var gguf: [CorpusCase] {
        let valid = TestGGUF.valid()
        func header(magic: String = "GGUF", version: UInt32 = 3, tensors: UInt64 = 0, kvs: UInt64 = 0) -> [UInt8] {
            var g = TestGGUF()
            g.header(magic: magic, version: version, tensors: tensors, kvs: kvs)
            return g.bytes
        }
        func kvFile(_ body: (inout TestGGUF) -> Void, count: UInt64 = 1) -> [UInt8] {
            var g = TestGGUF()
            g.header(tensors: 0, kvs: count)
            body(&g)
            return g.bytes
        }
        func twoTensors(_ a: UInt64, _ b: UInt64, dataBytes: Int = 64) -> [UInt8] {
            var g = TestGGUF()
            g.header(tensors: 2, kvs: 0)
            g.info("a", dims: [8], type: 0, offset: a)
            g.info("b", dims: [8], type: 0, offset: b)
            g.pad()
            g.data(dataBytes)
            return g.bytes
        }
        var cases: [CorpusCase] = [
            gg(53, "gguf-valid-control", valid, .accept),
            gg(53, "gguf-header/magic-FUGG", Array("FUGG".utf8) + valid.dropFirst(4), .reject("not a GGUF file (magic 0x47475546)")),
            gg(53, "gguf-header/version-0", header(version: 0), .reject("GGUF version 0 is not supported")),
            gg(53, "gguf-header/version-1", header(version: 1), .reject("GGUF version 1 is not supported")),
            gg(53, "gguf-header/version-4", header(version: 4), .reject("GGUF version 4 is newer than 3")),
            gg(53, "gguf-header/byte-swapped", header(version: 0x0300_0000), .reject("big-endian GGUF files are not supported")),
            gg(54, "gguf-counts/tensors-2^64-1", header(tensors: UInt64.max), .reject("tensor count 18446744073709551615 at byte 8 does not fit")),
            gg(54, "gguf-counts/kvs-2^63", header(kvs: 1 << 63), .reject("metadata count 9223372036854775808 at byte 16 does not fit")),
            gg(55, "gguf-strings/key-length-2^64-1", kvFile { $0.u64(UInt64.max); $0.bytes += Array("k".utf8) } + [0, 0, 0, 0, 0],
               .reject("bad string at byte 24")),
            gg(55, "gguf-strings/key-past-end", kvFile { $0.u64(100); $0.bytes += Array("key".utf8) + [UInt8](repeating: 0, count: 10) },
               .reject("bad string at byte 24")),
            gg(55, "gguf-strings/empty-key", kvFile { $0.kvU32("", 1) }, .reject("empty key")),
            gg(55, "gguf-strings/duplicate-key", kvFile({ $0.kvU32("a.b", 1); $0.kvU32("a.b", 2) }, count: 2), .reject("duplicate key 'a.b'")),
            gg(55, "gguf-strings/non-ascii-key", kvFile { $0.kvU32("ké", 1) }, .reject("keys must be printable ASCII")),
            gg(55, "gguf-strings/newline-key", kvFile { $0.kvU32("a\nb", 1) }, .reject(#"bad key 'a\nb' at byte 24: keys must be printable ASCII"#)),
            gg(56, "gguf-kv-types/type-13", kvFile { $0.str("k"); $0.u32(13); $0.u32(0) }, .reject("unknown value type 13")),
            gg(56, "gguf-kv-types/type-minus-1", kvFile { $0.str("k"); $0.u32(UInt32.max); $0.u32(0) }, .reject("unknown value type 4294967295")),
            gg(56, "gguf-kv-types/array-nested-too-deep", kvFile {
                $0.str("k"); $0.u32(9)
                for _ in 0..<5 { $0.u32(9); $0.u64(1) }
                $0.u32(0); $0.u64(1); $0.bytes.append(7)
            }, .reject("nests arrays too deeply")),
            gg(56, "gguf-kv-types/array-count-2^62", kvFile { $0.str("k"); $0.u32(9); $0.u32(0); $0.u64(1 << 62); $0.u64(0) },
               .reject("count 4611686018427387904")),
            gg(57, "gguf-alignment/int32", oneTensor({ $0.kvI32("general.alignment", 32); return 1 }, dims: [8], type: 0, dataBytes: 32),
               .reject("bad general.alignment: type int32, expected uint32")),
        ]
        for a: UInt32 in [0, 13, 1 << 31] {
            cases.append(gg(57, "gguf-alignment/\(a)", oneTensor({ $0.kvU32("general.alignment", a); return 1 }, dims: [8], type: 0, dataBytes: 32),
                            .reject("bad general.alignment: \(a) is not a power of two")))
        }
        cases.append(gg(57, "gguf-alignment/absent-default-32", oneTensor(dims: [8], type: 0, dataBytes: 32), .accept))
        cases += [
            gg(58, "gguf-tensor-info/name-64-bytes", oneTensor(name: String(repeating: "n", count: 64), dims: [8], type: 0, dataBytes: 32),
               .reject("names must be 1…63 bytes")),
            gg(58, "gguf-tensor-info/duplicate-name", {
                var g = TestGGUF()
                g.header(tensors: 2, kvs: 0)
                g.info("a", dims: [8], type: 0, offset: 0)
                g.info("a", dims: [8], type: 0, offset: 32)
                g.pad(); g.data(64)
                return g.bytes
            }(), .reject("duplicate tensor 'a'")),
            gg(58, "gguf-tensor-info/n-dims-5", oneTensor(dims: [1, 1, 1, 1, 8], type: 0, dataBytes: 32), .reject("n_dims 5 > 4")),
            gg(58, "gguf-tensor-info/n-dims-9", oneTensor(dims: [UInt64](repeating: 1, count: 9), type: 0, dataBytes: 32), .reject("n_dims 9 > 4")),
            gg(58, "gguf-tensor-info/ne-minus-1", oneTensor(dims: [UInt64.max], type: 0, dataBytes: 32), .reject("dimension 18446744073709551615 ≥ 2^63")),
            gg(58, "gguf-tensor-info/ne-zero-accepted", oneTensor(dims: [0, 4], type: 0, dataBytes: 0), .accept),
            gg(58, "gguf-tensor-info/count-2^64", oneTensor(dims: [1 << 32, 1 << 32], type: 0, dataBytes: 32), .reject("element count overflows")),
            gg(58, "gguf-tensor-info/type-42", oneTensor(dims: [8], type: 42, dataBytes: 32), .reject("invalid ggml type 42")),
            gg(58, "gguf-tensor-info/type-q2_k-unsupported", oneTensor(dims: [256], type: 10, dataBytes: 96), .reject("ggml type 10")),
            gg(58, "gguf-tensor-info/q8_0-row-33", oneTensor(dims: [33], type: 8, dataBytes: 64), .reject("row length 33 is not a multiple of the block size 32")),
            gg(59, "gguf-size-overflow/f32-padded-wrap", oneTensor(dims: [4, (1 << 30) - 1, (1 << 30) + 1, 1], type: 0, dataBytes: 32),
               .reject("tensor size overflow")),
            gg(59, "gguf-size-overflow/two-i8-7fffffffffffffc0", {
                var g = TestGGUF()
                g.header(tensors: 2, kvs: 0)
                g.info("a", dims: [0x7FFF_FFFF_FFFF_FFC0], type: 24, offset: 0)
                g.info("b", dims: [0x7FFF_FFFF_FFFF_FFC0], type: 24, offset: 0x7FFF_FFFF_FFFF_FFC0)
                g.pad(); g.data(64)
                return g.bytes
            }(), .reject("tensor size overflow")),
            gg(59, "gguf-size-overflow/q8_0-nbytes", oneTensor(dims: [(1 << 63) - 32], type: 8, dataBytes: 64), .reject("tensor size overflow")),
            gg(60, "gguf-offsets/offset-2^64-1", oneTensor(dims: [8], type: 0, offset: UInt64.max, dataBytes: 32), .reject("has offset 18446744073709551615, expected 0")),
            gg(60, "gguf-offsets/misaligned", twoTensors(0, 40), .reject("tensor 'b' has offset 40, expected 32")),
            gg(60, "gguf-offsets/out-of-order", twoTensors(32, 0), .reject("tensor 'a' has offset 32, expected 0")),
            gg(60, "gguf-offsets/overlapping", twoTensors(0, 0), .reject("tensor 'b' has offset 0, expected 32")),
            gg(60, "gguf-offsets/gap", twoTensors(0, 64, dataBytes: 96), .reject("tensor 'b' has offset 64, expected 32")),
            gg(60, "gguf-offsets/past-eof", oneTensor(dims: [1024], type: 0, dataBytes: 32), .reject("past the end of the file")),
            gg(60, "gguf-offsets/one-byte-short", Array(valid.dropLast()), .reject("past the end of the file")),
            gg(60, "gguf-offsets/trailing-byte", valid + [0], .reject("1 unexpected byte(s) after the tensor data")),
            gg(61, "gguf-metadata-semantics/components-int8-array", storeLike { g in
                g.str("pixconv.components"); g.u32(9); g.u32(1); g.u64(2); g.bytes += [1, 2]
            }, .reject("key 'pixconv.components' is array of int8, expected array of string")),
            gg(61, "gguf-metadata-semantics/crc-count", storeLike { g in
                g.str("pixconv.components"); g.u32(9); g.u32(8); g.u64(1); g.str("dit")
                g.str("pixconv.tensor_crc32"); g.u32(9); g.u32(4); g.u64(3); g.u32(0); g.u32(0); g.u32(0)
            }, .reject("3 checksums for 1 tensors")),
            gg(61, "gguf-metadata-semantics/architecture", storeLike(arch: "llama") { g in
                g.str("pixconv.components"); g.u32(9); g.u32(8); g.u64(1); g.str("dit")
            }, .reject("'llama' is not a pixconv store")),
        ]
        return cases
    }

    /// A GGUF that claims to be a pixconv store (it has `pixconv.components`), with one tensor
    /// `dit.w` and the given extra KV pairs (which must include `pixconv.components`).
    static func storeLike(arch: String = "pixart", _ extra: (inout TestGGUF) -> Void) -> [UInt8] {
        var kv = TestGGUF()
        kv.kvString("general.architecture", arch)
        kv.kvString("pixconv.version", "0.1.0")
        extra(&kv)
        let count = keyCount(kv.bytes)
        var g = TestGGUF()
        g.header(tensors: 1, kvs: UInt64(count))
        g.bytes += kv.bytes
        g.info("dit.w", dims: [8], type: 0, offset: 0)
        g.pad(); g.data(32)
        return g.bytes
    }

    /// Number of top-level KV pairs in `bytes` (only the simple value types used above).
    static func keyCount(_ b: [UInt8]) -> Int {
        var p = 0, n = 0
        func u64() -> Int { defer { p += 8 }; return b[p..<p + 8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) } }
        func u32() -> Int { defer { p += 4 }; return b[p..<p + 4].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) } }
        func skip(_ type: Int) {
            switch type {
            case 0, 1, 7: p += 1
            case 2, 3: p += 2
            case 4, 5, 6: p += 4
            case 8: p += u64()
            case 9:
                let t = u32(), c = u64()
                for _ in 0..<c { skip(t) }
            default: p += 8
            }
        }
        while p < b.count {
            p += u64()
            skip(u32())
            n += 1
        }
        return n
    }
}

