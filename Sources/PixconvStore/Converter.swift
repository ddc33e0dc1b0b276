import Crypto
import Foundation
import PixconvCore
import PixconvQuant
import PixconvReaders

/// How `pixconv convert` should convert.
public struct ConvertOptions: Sendable {
    public enum Format: String, Sendable, CaseIterable { case gguf, safetensors }
    /// Target type name: f32, f16, bf16, q8_0, q4_0.
    public var type: String = "f16"
    public var format: Format = .gguf
    public var keepF32: [String] = []
    public var ema = false
    public var replace = false
    /// `--family`: the model family (and size) when detection should not decide it.
    public var family: FamilyChoice? = nil

    public init() {}
}

/// What a conversion did (`pixconv convert --json`).
public struct ConvertSummary: Codable, Sendable {
    public struct Stored: Codable, Sendable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
        public var bytes: Int
        public var reason: String
    }

    public var output: String
    public var format: String
    public var type: String
    public var components: [String]
    public var inputs: [String]
    public var tensorCount: Int
    public var inputBytes: Int
    public var outputBytes: Int
    public var seconds: Double
    public var tensors: [Stored]
    public var warnings: [String]
    /// The model family recorded (stores with a transformer), e.g. `pixart-sigma`, and why.
    public var family: String?
    public var familyReason: String?

    enum CodingKeys: String, CodingKey {
        case output, format, type, components, inputs, tensors, warnings, seconds, family
        case familyReason = "family_reason"
        case tensorCount = "tensor_count", inputBytes = "input_bytes", outputBytes = "output_bytes"
    }
}

/// Converts inputs into one pixconv store (GGUF) or diffusers-layout safetensors, streaming one
/// tensor at a time. GGUF: each tensor is encoded a chunk at a time straight from the input's
/// mapping, whose pages are dropped after use, so peak memory is a few chunks plus the writer's
/// buffer, not the input; safetensors export holds one tensor as f32.
public enum Converter {
    /// `progress(tensorsDone, tensorCount, inputBytesDone, inputBytesTotal)`.
    public typealias Progress = (Int, Int, Int, Int) -> Void

    public static func run(
        inputs paths: [String], output: String, options: ConvertOptions, progress: Progress = { _, _, _, _ in }
    ) throws -> ConvertSummary {
        let start = Date()
        guard !paths.isEmpty else { throw ConvertError.noComponents }
        let policy = try PrecisionPolicy(targetName: options.type.lowercased(), keepF32: options.keepF32)
        if options.format == .safetensors, policy.target.isQuantized {
            throw ConvertError.unsupported("--format safetensors takes f32, f16 or bf16, not \(options.type)")
        }
        var byKind: [ComponentKind: Component] = [:]
        for path in paths {
            for component in try ModelInput(path: path).components(ema: options.ema, family: options.family) {
                if let first = byKind[component.kind] {
                    throw ConvertError.duplicateComponent(kind: component.kind.rawValue, first: first.origin, second: component.origin)
                }
                byKind[component.kind] = component
            }
        }
        let components = byKind.values.sorted { $0.kind < $1.kind }
        var family: FamilyDetection? = nil
        if byKind[.transformer] != nil {
            family = FamilyDetection.detect(FamilyDetection.Evidence(components: byKind), choice: options.family)
        } else if let choice = options.family {
            throw ConvertError.unsupported("--family \(choice) needs a transformer among the inputs (a family belongs to the transformer)")
        }
        let familyMetadata: [(key: String, value: GGUFValue)] = family.map {
            [(StoreKeys.family, .string($0.family.rawValue)), (StoreKeys.familyReason, .string($0.reason))]
        } ?? []
        let weighted = components.filter { !$0.tensors.isEmpty }
        guard !weighted.isEmpty || options.format == .gguf, !components.isEmpty else { throw ConvertError.noComponents }

        var plan: [(stored: TensorInfo, tensor: PlannedTensor, reason: String)] = []
        for component in weighted {
            for tensor in component.tensors {
                let name = options.format == .gguf ? StoreNames.stored(tensor.name, prefix: component.kind.storePrefix)
                    : component.kind.rawValue + "/" + tensor.name
                let decision = policy.decide(name: tensor.name, shape: tensor.shape, source: tensor.sourceInfo.dtype)
                let bytes = try Quantizer.storedByteCount(shape: tensor.shape, as: decision.dtype, tensor: tensor.name)
                plan.append((TensorInfo(name: name, dtype: decision.dtype, shape: tensor.shape, byteCount: bytes),
                             tensor, decision.reason.rawValue))
            }
        }
        let inputBytes = plan.reduce(0) { $0 + $1.tensor.sourceInfo.byteCount / max($1.tensor.parts, 1) }
        var warnings: [String] = []
        let passes = 1
        var calls = 0, bytesDone = 0
        func advance(_ index: Int) {
            calls += 1
            bytesDone += plan[index].tensor.sourceInfo.byteCount / max(plan[index].tensor.parts, 1)
            progress(calls, plan.count * passes, bytesDone, inputBytes * passes)
        }

        /// Produces one stored tensor's bytes: widen to f32, slice fused tensors, encode.
        func encoded(_ index: Int) throws -> [UInt8] {
            let entry = plan[index]
            let values = try entry.tensor.floats()
            if entry.stored.dtype == .F16, let overflow = Quantizer.overflow(values, to: .F16) {
                warnings.append(ConvertError.f16Overflow(tensor: entry.tensor.name, count: overflow.count,
                                                         firstIndex: overflow.firstIndex, value: overflow.firstValue).description)
            }
            let rowLength = entry.stored.shape.last ?? 1
            return try Quantizer.encode(values, rowLength: entry.stored.shape.isEmpty ? 1 : rowLength,
                                        to: entry.stored.dtype, tensor: entry.stored.name)
        }

        let outputBytes: Int
        switch options.format {
        case .gguf:
            var configs: [String: String] = [:]
            for component in weighted {
                configs[String(component.kind.storePrefix.dropLast())] = component.configJSON ?? "{}"
            }
            // The inputs' SHA-256 (`pixconv.sources`) is computed on another thread while the
            // tensors convert; the header is written with zero digests of the same length first
            // and rewritten with the real ones at the end (it is rewritten for the CRCs anyway).
            let hasher = try SourceHasher(files: paths.flatMap { try filesUnder($0) })
            defer { hasher.cancel() }
            let placeholder = StoreManifest(
                pixconvVersion: pixconvVersion, components: weighted.map { String($0.kind.storePrefix.dropLast()) },
                configs: configs, spieceModel: byKind[.tokenizer]?.spieceModel,
                schedulerConfig: byKind[.scheduler]?.configJSON, sources: try sourcesJSON(hasher.placeholders),
                precisionPolicy: policy.summary, fileType: GGMLType.fileType(for: policy.target),
                extraMetadata: familyMetadata)
            let summary = try PixconvStoreWriter.write(
                to: output, manifest: placeholder, tensors: plan.map(\.stored), replace: options.replace,
                finalManifest: {
                    var manifest = placeholder
                    manifest.sources = try sourcesJSON(try hasher.wait())
                    return manifest
                }
            ) { index, _, sink in
                // Straight from the input's bytes, a chunk at a time; its pages are dropped as it
                // goes, by the hasher when it follows this tensor's mapping.
                let entry = plan[index]
                let data = try entry.tensor.data()
                let followed = hasher.follow(data)
                let consumed: ((UnsafeRawBufferPointer) -> Void)? = followed ? { hasher.consumed($0) } : nil
                let report = try TensorEncoder.stream(data, to: entry.stored.dtype, releaseInput: !followed,
                                                      consumed: consumed, sink: sink)
                if entry.stored.dtype == .F16, let overflow = report {
                    warnings.append(ConvertError.f16Overflow(tensor: entry.tensor.name, count: overflow.count,
                                                             firstIndex: overflow.firstIndex, value: overflow.firstValue).description)
                }
                advance(index)
            }
            outputBytes = summary.totalSize
        case .safetensors:
            outputBytes = try SafetensorsExport.write(
                components: components, plan: plan.map { ($0.stored, $0.tensor) }, output: output,
                pipelineClass: (family?.family ?? .alpha).defaults.pipelineClass,
                replace: options.replace, encode: encoded, advance: advance)
        }
        return ConvertSummary(
            output: output, format: options.format.rawValue, type: options.type.lowercased(),
            components: components.map(\.kind.rawValue), inputs: paths, tensorCount: plan.count,
            inputBytes: inputBytes, outputBytes: outputBytes, seconds: Date().timeIntervalSince(start),
            tensors: plan.map { .init(name: $0.stored.name, dtype: $0.stored.dtype.rawValue, shape: $0.stored.shape,
                                      bytes: $0.stored.byteCount, reason: $0.reason) },
            warnings: Array(Set(warnings)).sorted(), family: family?.family.rawValue, familyReason: family?.reason)
    }

    public static let pixconvVersion = "0.1.0"

    /// `pixconv.sources`: name, size and SHA-256 of every input file (each file of a folder).
    static func sourcesJSON(_ entries: [SourceHasher.Entry]) throws -> String {
        let objects: [[String: Any]] = entries.map { ["name": $0.name, "size": $0.size, "sha256": $0.hex] }
        let data = try JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// Size and hex SHA-256 of a file, read with `pread` into one small buffer (its pages never
    /// count in this process's memory, unlike a mapping's).
    public static func sha256(ofFile file: String) throws -> (size: Int, hex: String) {
        try sha256(ofFile: file, stop: { false })
    }

    /// `sha256(ofFile:)` that gives up with `CancellationError` when `stop()` turns true, and can
    /// start at byte `from` with a hash of the bytes before it.
    static func sha256(
        ofFile file: String, from start: Int = 0, continuing: SHA256 = SHA256(), stop: () -> Bool
    ) throws -> (size: Int, hex: String) {
        // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused as not regular below).
        let fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw FileError.open(path: file, errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FileError.open(path: file, errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw FileError.notRegularFile(path: file) }
        _ = posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_SEQUENTIAL))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 19, alignment: 4096)
        defer { buffer.deallocate() }
        var hasher = continuing
        var size = start
        while true {
            if stop() { throw CancellationError() }
            let n = pread(fd, buffer.baseAddress, buffer.count, off_t(size))
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError.open(path: file, errno: errno)
            }
            if n == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            size += n
        }
        return (size, hasher.finalize().map { String(format: "%02x", $0) }.joined())
    }

    /// SHA-256 of a model path: of the file, or for a folder of its files' names and digests.
    public static func sha256(ofModel path: String) throws -> String {
        let files = try filesUnder(path)
        if files == [path] { return try sha256(ofFile: path).hex }
        var hasher = SHA256()
        for file in files {
            let relative = String(file.dropFirst(path.count))
            hasher.update(data: Data((relative + "\0" + (try sha256(ofFile: file).hex) + "\n").utf8))
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    public static func filesUnder(_ path: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return [] }
        guard isDirectory.boolValue else { return [path] }
        let items = (FileManager.default.enumerator(atPath: path)?.allObjects as? [String]) ?? []
        return items.sorted().compactMap { item in
            let full = path + "/" + item
            var dir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: full, isDirectory: &dir)
            return dir.boolValue || item.split(separator: "/").contains(where: { $0.hasPrefix(".") }) ? nil : full
        }
    }
}

/// Hashes the input files (`pixconv.sources`) on a background thread while the conversion runs.
///
/// Normally each file is read with `pread` into a small buffer. When the input is one file whose
/// tensors the converter reads in file order (a safetensors file: tensors sorted by name), the
/// hasher follows the converter through the same mapping instead (`follow`, `consumed`): it
/// hashes the bytes the converter has finished with and drops their pages, so the file is read
/// from memory once, not twice. The converter waits when it runs more than `window` bytes ahead.
/// A tensor out of order, or more than `window` bytes past the hashing (a torch zip's records are
/// not in name order), switches back to `pread` from where hashing stands.
final class SourceHasher: @unchecked Sendable {  // mutable state only under `condition`
    struct Entry: Sendable {
        var name: String
        var size: Int
        var hex: String
    }

    private enum Mode {
        case undecided
        case shared(MappedFile)
        case independent
    }

    /// The files with their sizes and all-zero digests: the same JSON length as the final entries.
    let placeholders: [Entry]
    private let files: [String]
    private let condition = NSCondition()
    private let done = DispatchSemaphore(value: 0)
    private let window = 24 << 20
    private var cancelled = false
    private var mode = Mode.undecided
    private var published = 0  // shared: the converter is done with the mapping's bytes below this
    private var hashed = 0     // shared: bytes hashed (and their pages dropped)
    private var result: Result<[Entry], Error>?

    init(files: [String]) throws {
        placeholders = try files.map { file in
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
            return Entry(name: file, size: size, hex: String(repeating: "0", count: 64))
        }
        self.files = files
        DispatchQueue.global(qos: .userInitiated).async { [self] in
            let outcome = Result<[Entry], Error> {
                try files.map { file in
                    let (size, hex) = files.count == 1 ? try hashFollowing(file)
                        : try Converter.sha256(ofFile: file, stop: { self.isCancelled })
                    return Entry(name: file, size: size, hex: hex)
                }
            }
            condition.withLock { result = outcome }
            done.signal()
        }
    }

    private var isCancelled: Bool { condition.withLock { cancelled } }

    /// Stops the hashing early (after an error elsewhere); `wait()` then throws.
    func cancel() {
        condition.withLock {
            cancelled = true
            condition.broadcast()
        }
    }

    /// Called by the converter before it reads `data`: true when the hasher follows it through
    /// this mapping (the converter then reports each finished chunk with `consumed` and leaves its
    /// pages alone), false when the converter should drop the pages itself.
    func follow(_ data: TensorData) -> Bool {
        condition.withLock {
            let mapped = data.owner as? MappedFile
            let start = mapped.flatMap { m in data.bytes.baseAddress.flatMap { b in m.bytes.baseAddress.map { b - $0 } } }
            switch mode {
            case .undecided:
                if files.count == 1, let m = mapped, m.path == files[0], let start, start <= window {
                    mode = .shared(m)
                } else {
                    mode = .independent
                }
                condition.broadcast()
            case let .shared(m):
                if mapped !== m || (start ?? -1) < published || (start ?? 0) - hashed > window {
                    // Out of order (or so far ahead that the converter would wait for the hashing):
                    // hash the rest with pread; drop what the hasher has not reached.
                    if published > hashed { m.dropPages(of: m.slice(hashed..<published), margin: MappedFile.faultAroundMargin) }
                    mode = .independent
                    condition.broadcast()
                }
            case .independent:
                break
            }
            if case .shared = mode { return true }
            return false
        }
    }

    /// The converter is done with `chunk` (a slice of the followed mapping); waits while it is
    /// more than `window` bytes ahead of the hashing.
    func consumed(_ chunk: UnsafeRawBufferPointer) {
        condition.withLock {
            guard case let .shared(m) = mode, let base = m.bytes.baseAddress, let start = chunk.baseAddress else { return }
            published = max(published, start - base + chunk.count)
            condition.broadcast()
            while published - hashed > window, !cancelled, case .shared = mode { condition.wait() }
        }
    }

    /// Blocks until every file is hashed; the entries in file order, or the hashing error.
    func wait() throws -> [Entry] {
        condition.withLock {
            if case .shared = mode { published = Int.max } else { mode = .independent }  // the converter is done
            condition.broadcast()
        }
        done.wait()
        done.signal()  // later waits return at once
        guard let outcome = condition.withLock({ result }) else { throw CancellationError() }
        return try outcome.get()
    }

    /// One file: through the converter's mapping while it reads in order, else with `pread`.
    private func hashFollowing(_ file: String) throws -> (size: Int, hex: String) {
        var sha = SHA256()
        var offset = 0
        while true {
            condition.lock()
            while case .undecided = mode, !cancelled { condition.wait() }
            guard !cancelled else {
                condition.unlock()
                throw CancellationError()
            }
            guard case let .shared(m) = mode else {
                condition.unlock()
                break
            }
            while published <= offset, offset < m.count, !cancelled, case .shared = mode { condition.wait() }
            let end = min(published, m.count, offset + (1 << 21))
            let stillShared: Bool
            if case .shared = mode { stillShared = true } else { stillShared = false }
            condition.unlock()
            guard stillShared, !isCancelled else { continue }
            if offset >= m.count {
                return (m.count, sha.finalize().map { String(format: "%02x", $0) }.joined())
            }
            let chunk = m.slice(offset..<end)
            sha.update(bufferPointer: chunk)
            // Below: pages the converter's fault-around mapped behind it after we passed them.
            m.dropPages(of: chunk, margin: 0)
            if offset >= MappedFile.faultAroundMargin {
                m.dropPages(of: m.slice((offset - MappedFile.faultAroundMargin)..<offset))
            }
            offset = end
            condition.withLock {
                hashed = offset
                condition.broadcast()
            }
        }
        return try Converter.sha256(ofFile: file, from: offset, continuing: sha, stop: { self.isCancelled })
    }
}
