import Foundation
import PixconvCore
import XCTest

/// The bad-input corpus run through the real `pixconv` binary: every hostile file is refused with
/// exit status 1 (never a signal, never a hang), with exactly one stderr line that names the file
/// and the broken rule; files the corpus marks valid are accepted. The golden table is
/// `CorpusTable`; `formats/hostile-inputs.md` states the rules and lists the same cases beside
/// what torch 2.15 and safetensors 0.8.0 do with them.
///
/// Set `PIXCONV_CORPUS_OUT=<folder>` to also write every case file there (with `cases.tsv`), for
/// `scripts/compare_bad_inputs.py`.
final class BadInputCorpusTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws { folder = try CLI.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    private func write(_ bytes: [UInt8], _ name: String, in dir: String? = nil) throws -> String {
        let path = (dir ?? folder) + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Checks one run against the expectation; returns a failure text or nil.
    static func mismatch(_ run: CorpusRun, _ expect: CorpusCase.Expect, path: String) -> String? {
        if run.timedOut || run.signaled { return run.summary }
        switch expect {
        case .accept:
            return run.status == 0 ? nil : "expected acceptance, got \(run.summary)"
        case let .reject(fragment):
            guard run.status == 1 else { return "expected exit 1, got \(run.summary)" }
            let lines = run.errorLines
            guard lines.count == 1, let line = lines.first else { return "expected one stderr line, got \(lines.count): \(run.stderr.prefix(600))" }
            guard line.contains(path) else { return "message does not name the file: \(line)" }
            guard fragment.isEmpty || line.contains(fragment) else { return "message lacks \"\(fragment)\": \(line)" }
            return nil
        }
    }

    func testGoldenTable() throws {
        let cases = CorpusTable.all
        XCTAssertEqual(Set(cases.map(\.id)).count, cases.count, "case ids are unique")
        // Every numbered single-file case of the corpus is in the table (24, 25, 62–64 are below).
        XCTAssertEqual(Set(cases.map(\.number)), Set(1...61).subtracting([24, 25]))
        let export = ProcessInfo.processInfo.environment["PIXCONV_CORPUS_OUT"]
        var manifest = "number\tid\tfile\texpected\tpixconv_status\tpixconv_message\n"
        if let export { try FileManager.default.createDirectory(atPath: export, withIntermediateDirectories: true) }
        for c in cases {
            let path = try write(c.bytes, c.fileName)
            let run = try CorpusRunner.run(["inspect", path], timeout: 30)
            if let problem = Self.mismatch(run, c.expect, path: path) {
                XCTFail("\(c.number) \(c.id): \(problem)")
            }
            try FileManager.default.removeItem(atPath: path)
            if let export {
                _ = try write(c.bytes, c.fileName, in: export)
                let expected: String
                switch c.expect {
                case .accept: expected = "accept"
                case let .reject(f): expected = "reject: " + f
                }
                let message = run.errorLines.first.map { $0.replacingOccurrences(of: path, with: c.fileName) } ?? ""
                manifest += "\(c.number)\t\(c.id)\t\(c.fileName)\t\(expected)\t\(run.status)\t\(message.replacingOccurrences(of: "\t", with: " "))\n"
            }
        }
        if let export { try manifest.write(toFile: export + "/cases.tsv", atomically: true, encoding: .utf8) }
    }

    /// A refused input never leaves an output or a temporary file behind.
    func testConvertLeavesNothingBehind() throws {
        let picked = ["st-truncated", "st-dup-key-identical", "pk-global-reduce/os.system", "pk-numel-mismatch/88-bytes", "zip-crc",
                      "zip-bomb/inflates-past-declared", "gguf-offsets/one-byte-short", "gguf-size-overflow/f32-padded-wrap"]
        let byID = Dictionary(uniqueKeysWithValues: CorpusTable.all.map { ($0.id, $0) })
        for id in picked {
            let c = try XCTUnwrap(byID[id], id)
            let input = try write(c.bytes, c.fileName)
            let outDir = folder + "/out-" + c.fileName
            try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
            for format in ["gguf", "safetensors"] {
                let output = outDir + "/model." + format
                let run = try CorpusRunner.run(["convert", input, "-o", output, "--type", "f32", "--format", format], timeout: 30)
                if let problem = Self.mismatch(run, c.expect, path: input) { XCTFail("convert \(format) \(id): \(problem)") }
                XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outDir), [], "\(id): output folder must stay empty")
            }
        }
    }

    /// A valid file whose tensor name and metadata carry a newline and terminal escapes: `inspect`
    /// prints them escaped, so the listing keeps one tensor per line and sends no control bytes.
    func testInspectEscapesControlCharactersFromTheFile() throws {
        let header = #"{"__metadata__":{"note":"\u001b]0;pwned\u0007line\nbreak"},"a\nfake 0 0":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        let path = try write(corpusSafetensors(header, data: [0, 0, 0, 0]), "names.safetensors")
        let run = try CorpusRunner.run(["inspect", path])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertFalse(run.stdout.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" }, run.stdout)
        XCTAssertTrue(run.stdout.contains(#"  a\nfake 0 0  F32    [1]  4"#), run.stdout)
        XCTAssertTrue(run.stdout.contains(#"  note = \u{1b}]0;pwned\u{7}line\nbreak"#), run.stdout)
        XCTAssertFalse(run.stdout.split(separator: "\n").contains { $0.hasPrefix("fake") })
    }

    // MARK: - Folders (24, 25)

    /// A shard holding `names` (F32 scalars of one element each).
    private func shard(_ names: [String]) -> [UInt8] {
        let entries = names.enumerated().map { i, n in CorpusTable.entry(n, shape: "[1]", offsets: "[\(4 * i),\(4 * i + 4)]") }
        return corpusSafetensors("{" + entries.joined(separator: ",") + "}", data: [UInt8](repeating: 0, count: 4 * names.count))
    }

    private func index(_ weightMap: String) -> [UInt8] { Array(#"{"metadata":{},"weight_map":{\#(weightMap)}}"#.utf8) }

    func testShardedIndexCases() throws {
        let dir = folder + "/model"
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        // A file outside the model folder that a traversal would reach; it must never be read.
        _ = try write(shard(["a"]), "outside.safetensors")
        _ = try write(shard(["a"]), "a.safetensors", in: dir)
        _ = try write(shard(["a", "b"]), "ab.safetensors", in: dir)
        _ = try write(shard(["b"]), "b.safetensors", in: dir)
        let cases: [(String, String, CorpusCase.Expect)] = [
            ("valid-control", #""a":"a.safetensors","b":"b.safetensors""#, .accept),
            ("st-index-traversal/dotdot", #""a":"../outside.safetensors""#, .reject("is not a plain .safetensors file name")),
            ("st-index-traversal/deep-dotdot", #""a":"../../x.safetensors""#, .reject("is not a plain .safetensors file name")),
            ("st-index-traversal/absolute", #""a":"/etc/passwd""#, .reject("is not a plain .safetensors file name")),
            ("st-index-traversal/inner-dotdot", #""a":"sub/../a.safetensors""#, .reject("is not a plain .safetensors file name")),
            ("st-index-traversal/nul", #""a":"a\u0000.safetensors""#, .reject("is not a plain .safetensors file name")),
            ("st-index-traversal/non-string", #""a":7"#, .reject("index")),
            ("st-index-inconsistent/missing-shard", #""a":"a.safetensors","b":"gone.safetensors""#, .reject("gone.safetensors")),
            ("st-index-inconsistent/two-shards", #""a":"ab.safetensors","b":"b.safetensors""#, .reject("stored in several shards")),
            ("st-index-inconsistent/absent-from-map", #""a":"ab.safetensors""#, .reject("is not in the weight_map")),
            ("st-index-inconsistent/mapped-but-absent", #""a":"a.safetensors","c":"a.safetensors""#, .reject("does not hold it")),
        ]
        for (id, map, expect) in cases {
            let path = try write(index(map), "model.safetensors.index.json", in: dir)
            let run = try CorpusRunner.run(["inspect", path], timeout: 30)
            if let problem = Self.mismatch(run, expect, path: dir) { XCTFail("\(id): \(problem)") }
        }
    }

    // MARK: - Store bit flips (62)

    /// Every sampled single-byte change of a pixconv store (header, KV, tensor infos, padding,
    /// data) makes `pixconv verify` report damage, and `inspect` refuses every header change.
    func testStoreBitFlipsAreDetected() throws {
        let store = folder + "/store.gguf"
        let made = try CorpusRunner.run(["convert", CLI.fixture("readers/transformer-f16.safetensors"), "-o", store, "--type", "q8_0"])
        XCTAssertEqual(made.status, 0, made.stderr)
        XCTAssertEqual(try CorpusRunner.run(["verify", "--model", store]).status, 0)
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: store)))
        let headerEnd = try storeDataOffset(original)
        // All of the first 64 bytes, then about 120 positions spread over the header and 120 over the data.
        var positions = Set(0..<64)
        for i in 0..<120 { positions.insert(64 + i * (headerEnd - 64) / 120) }
        for i in 0..<120 { positions.insert(headerEnd + i * (original.count - headerEnd) / 120) }
        positions.insert(original.count - 1)
        let damaged = folder + "/damaged.gguf"
        for p in positions.sorted() {
            var bytes = original
            bytes[p] ^= 0x5A
            try Data(bytes).write(to: URL(fileURLWithPath: damaged))
            let verify = try CorpusRunner.run(["verify", "--model", damaged], timeout: 30)
            XCTAssertFalse(verify.signaled || verify.timedOut, "byte \(p): \(verify.summary)")
            XCTAssertEqual(verify.status, 1, "byte \(p) of \(original.count) (data at \(headerEnd)): flip not detected by verify")
            if p < headerEnd {
                let inspect = try CorpusRunner.run(["inspect", damaged], timeout: 30)
                if let problem = Self.mismatch(inspect, .reject(""), path: damaged) { XCTFail("inspect, byte \(p): \(problem)") }
            }
        }
    }

    /// Where tensor data starts: GGUF header, KVs and tensor infos parsed just far enough.
    private func storeDataOffset(_ b: [UInt8]) throws -> Int {
        var p = 8
        func u64() -> Int { defer { p += 8 }; return b[p..<p + 8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) } }
        func u32() -> Int { defer { p += 4 }; return b[p..<p + 4].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) } }
        let tensors = u64(), kvs = u64()
        var alignment = 32
        func skip(_ type: Int) {
            switch type {
            case 0, 1, 7: p += 1
            case 2, 3: p += 2
            case 4, 5, 6: p += 4
            case 8: p += u64()
            case 9: let t = u32(), c = u64(); for _ in 0..<c { skip(t) }
            default: p += 8
            }
        }
        for _ in 0..<kvs {
            let n = u64()
            let key = String(decoding: b[p..<p + n], as: UTF8.self)
            p += n
            let type = u32()
            if key == "general.alignment" { alignment = u32() } else { skip(type) }
        }
        for _ in 0..<tensors {
            p += u64()
            let dims = u32()
            p += 8 * dims + 4 + 8
        }
        return (p + alignment - 1) / alignment * alignment
    }

    // MARK: - Filesystem (63, 64)

    func testSpecialFilesAreRefusedWithoutBlocking() throws {
        let fifo = folder + "/fifo.safetensors"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let loopA = folder + "/loop-a.safetensors", loopB = folder + "/loop-b.safetensors"
        XCTAssertEqual(symlink(loopB, loopA), 0)
        XCTAssertEqual(symlink(loopA, loopB), 0)
        let dirAsFile = folder + "/dir.safetensors"
        try FileManager.default.createDirectory(atPath: dirAsFile, withIntermediateDirectories: false)
        let cases: [(String, String, String)] = [
            ("fs-special-files/fifo", fifo, "not a regular file"),
            ("fs-special-files/dev-zero", "/dev/zero", "not a regular file"),
            ("fs-special-files/dev-null", "/dev/null", "not a regular file"),
            ("fs-special-files/symlink-loop", loopA, "Too many levels of symbolic links"),
            ("fs-special-files/directory", dirAsFile, "not a model folder"),
            ("fs-special-files/missing", folder + "/missing.safetensors", "No such file or directory"),
        ]
        for (id, path, fragment) in cases {
            for command in [["inspect", path], ["convert", path, "-o", folder + "/out.gguf"]] {
                let run = try CorpusRunner.run(command, timeout: 20)
                if let problem = Self.mismatch(run, .reject(fragment), path: path) { XCTFail("\(id) \(command[0]): \(problem)") }
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/out.gguf"))
        // An unreadable file: root reads it anyway, so this only runs as an ordinary user.
        if getuid() != 0 {
            let locked = try write(corpusValidSafetensors(), "locked.safetensors")
            XCTAssertEqual(chmod(locked, 0), 0)
            let run = try CorpusRunner.run(["inspect", locked], timeout: 20)
            if let problem = Self.mismatch(run, .reject("Permission denied"), path: locked) { XCTFail("fs unreadable: \(problem)") }
        }
    }
}
