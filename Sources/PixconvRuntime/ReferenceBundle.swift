import Foundation
import PixconvCore

/// A reference bundle: a folder with `cases.json` and the expected images (`formats/verify.md`, "Reference bundle").
public struct ReferenceBundle: Sendable {
    public struct Case: Sendable, Equatable {
        public var name: String
        public var prompt: String
        public var negativePrompt: String
        public var seed: UInt64
        public var steps: Int
        public var guidanceScale: Float
        public var height: Int
        public var width: Int
        public var scheduler: String
        /// diffusers' `clean_caption` (absent: false, as the bundle scripts call diffusers).
        public var cleanCaption = false
        /// Custom timesteps (diffusers' `timesteps=`); `steps` is then their count.
        public var timesteps: [Int]? = nil
        /// The expected image's file name, relative to the bundle folder.
        public var image: String
        /// diffusers' `use_resolution_binning` (absent: false, as make_reference.py calls it).
        public var resolutionBinning = false
        /// diffusers' `max_sequence_length` (absent: the model family's).
        public var maxSequenceLength: Int? = nil

        public var request: GenerationRequest {
            var r = GenerationRequest(prompt: prompt)
            r.negativePrompt = negativePrompt
            r.seed = seed
            r.steps = steps
            r.guidanceScale = guidanceScale
            r.height = height
            r.width = width
            r.scheduler = scheduler
            r.cleanCaption = cleanCaption
            r.useResolutionBinning = resolutionBinning
            r.maxSequenceLength = maxSequenceLength
            r.timesteps = timesteps
            return r
        }
    }

    public var folder: String
    public var generator: String
    public var cases: [Case]

    public static let schedulers: Set<String> = Set(SchedulerRegistry.names)

    /// Reads `folder/cases.json`; every problem names the case and the field.
    public init(folder: String) throws {
        self.folder = folder
        let path = folder + "/cases.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BundleError(path: path, message: "cannot read cases.json")
        }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw BundleError(path: path, message: "not a JSON object")
        }
        generator = root["generator"] as? String ?? "unknown"
        guard let list = root["cases"] as? [Any], !list.isEmpty else {
            throw BundleError(path: path, message: "\"cases\" must be a non-empty list")
        }
        var names = Set<String>()
        cases = try list.enumerated().map { index, item in
            guard let object = item as? [String: Any] else {
                throw BundleError(path: path, message: "case \(index) is not an object")
            }
            let parsed = try Case(object, index: index, path: path)
            guard names.insert(parsed.name).inserted else {
                throw BundleError(path: path, message: "case \"\(parsed.name)\": name used twice")
            }
            return parsed
        }
    }

    /// Writes `cases.json` for `cases` into `folder`.
    public static func write(generator: String, cases: [Case], to folder: String) throws {
        let list: [[String: Any]] = cases.map {
            var o: [String: Any] = ["name": $0.name, "prompt": $0.prompt, "negative_prompt": $0.negativePrompt, "seed": $0.seed,
             "steps": $0.steps, "guidance_scale": Double($0.guidanceScale), "height": $0.height, "width": $0.width,
             "scheduler": $0.scheduler, "image": $0.image]
            if let t = $0.timesteps { o["timesteps"] = t }
            if $0.cleanCaption { o["clean_caption"] = true }
            if $0.resolutionBinning { o["resolution_binning"] = true }
            if let n = $0.maxSequenceLength { o["max_sequence_length"] = n }
            return o
        }
        let data = try JSONSerialization.data(withJSONObject: ["generator": generator, "cases": list],
                                              options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write([UInt8](data) + [0x0A], to: folder + "/cases.json")  // crash-safe, like every output
    }
}

/// A malformed reference bundle or prompts file.
public struct BundleError: Error, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "\(path): \(message)" }
}

extension ReferenceBundle.Case {
    /// Parses one case; `requireImage` is false for a prompts file (no images yet).
    init(_ o: [String: Any], index: Int, path: String, requireImage: Bool = true) throws {
        let label = (o["name"] as? String).map { "case \"\($0)\"" } ?? "case \(index)"
        func fail(_ message: String) -> BundleError { BundleError(path: path, message: "\(label): \(message)") }
        func string(_ key: String, default value: String? = nil) throws -> String {
            if let s = o[key] as? String { return s }
            if o[key] == nil, let value { return value }
            throw fail(o[key] == nil ? "missing \"\(key)\"" : "\"\(key)\" must be a string")
        }
        func integer(_ key: String, default value: Int? = nil, minimum: Int = 0) throws -> Int {
            guard let raw = o[key] else {
                if let value { return value }
                throw fail("missing \"\(key)\"")
            }
            guard let n = raw as? NSNumber, !isJSONBool(raw),
                  n.doubleValue == n.doubleValue.rounded(), let i = Int(exactly: n.doubleValue), i >= minimum
            else { throw fail("\"\(key)\" must be an integer ≥ \(minimum)") }
            return i
        }
        name = try string("name", default: "case\(index)")
        prompt = try string("prompt")
        negativePrompt = try string("negative_prompt", default: "")
        seed = UInt64(try integer("seed", default: 0))
        steps = try integer("steps", default: 20, minimum: 1)
        guard let g = (o["guidance_scale"] ?? NSNumber(value: 4.5)) as? NSNumber else {
            throw fail("\"guidance_scale\" must be a number")
        }
        guidanceScale = g.floatValue
        height = try integer("height", minimum: 8)
        width = try integer("width", minimum: 8)
        guard height % 8 == 0, width % 8 == 0 else { throw fail("height and width must be multiples of 8") }
        scheduler = try string("scheduler", default: "dpm++2m")
        guard ReferenceBundle.schedulers.contains(scheduler) else {
            throw fail("unknown scheduler \"\(scheduler)\" (\(SchedulerRegistry.namesList))")
        }
        if let raw = o["timesteps"], !(raw is NSNull) {
            guard let list = raw as? [Any], !list.isEmpty else { throw fail("\"timesteps\" must be a non-empty list of integers") }
            let values = try list.map { item -> Int in
                guard let n = item as? NSNumber, !isJSONBool(item), let i = Int(exactly: n.doubleValue), i >= 0 else {
                    throw fail("\"timesteps\" must be a non-empty list of integers ≥ 0")
                }
                return i
            }
            guard SchedulerRegistry.kind(named: scheduler)?.acceptsCustomTimesteps == true else {
                throw fail("scheduler \"\(scheduler)\" does not take \"timesteps\"")
            }
            if o["steps"] != nil, steps != values.count {
                throw fail("\"steps\" (\(steps)) must be the number of \"timesteps\" (\(values.count))")
            }
            timesteps = values
            steps = values.count
        }
        if let raw = o["resolution_binning"], !(raw is NSNull) {
            guard isJSONBool(raw), let b = raw as? Bool else { throw fail("\"resolution_binning\" must be true or false") }
            resolutionBinning = b
        }
        if let raw = o["max_sequence_length"], !(raw is NSNull) {
            maxSequenceLength = try integer("max_sequence_length", minimum: 1)
            guard maxSequenceLength! <= 4096 else { throw fail("\"max_sequence_length\" must be at most 4096") }
        }
        if let raw = o["clean_caption"], !(raw is NSNull) {
            guard isJSONBool(raw), let flag = raw as? Bool else { throw fail("\"clean_caption\" must be true or false") }
            cleanCaption = flag
        }
        image = requireImage ? try string("image") : try string("image", default: name + ".png")
        guard !image.contains("/"), !image.hasPrefix(".") else { throw fail("\"image\" must be a file name") }
    }

    /// Reads a prompts file: a JSON list of cases (or `{"cases": [...]}`) without images.
    public static func prompts(path: String) throws -> [ReferenceBundle.Case] {
        guard let data = FileManager.default.contents(atPath: path),
              let root = try? JSONSerialization.jsonObject(with: data)
        else { throw BundleError(path: path, message: "cannot read a JSON prompts file") }
        guard let list = (root as? [Any]) ?? ((root as? [String: Any])?["cases"] as? [Any]), !list.isEmpty else {
            throw BundleError(path: path, message: "expected a non-empty list of cases")
        }
        return try list.enumerated().map { index, item in
            guard let object = item as? [String: Any] else {
                throw BundleError(path: path, message: "case \(index) is not an object")
            }
            return try ReferenceBundle.Case(object, index: index, path: path, requireImage: false)
        }
    }
}

/// JSONSerialization on Linux reports `1` as `Bool` too; only real booleans have this class.
func isJSONBool(_ value: Any) -> Bool {
    String(describing: type(of: value)).contains("Boolean")
}
