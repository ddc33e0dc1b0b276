import Foundation
import PixconvCore
import PixconvReaders

/// Writes components in the diffusers layout: one `.safetensors` file for a single component, or a
/// folder with `model_index.json` and a folder per component (config, weights, tokenizer,
/// scheduler) as `DiffusionPipeline.save_pretrained` lays it out. A folder is assembled under a
/// temporary name beside the target and renamed when complete.
enum SafetensorsExport {
    static func write(
        components: [Component], plan: [(stored: TensorInfo, tensor: PlannedTensor)], output: String,
        pipelineClass: String = "PixArtAlphaPipeline", replace: Bool, encode: (Int) throws -> [UInt8], advance: (Int) -> Void
    ) throws -> Int {
        let weighted = components.filter { !$0.tensors.isEmpty }
        if output.hasSuffix(".safetensors") {
            guard weighted.count == 1 else {
                throw ConvertError.unsupported("\(output): \(weighted.count) components need a folder, not one .safetensors file")
            }
            return try writeFile(output, plan: Array(plan.enumerated()), stripPrefix: weighted[0].kind.rawValue + "/",
                                 replace: replace, encode: encode, advance: advance)
        }
        if !replace, FileManager.default.fileExists(atPath: output) { throw FileError.exists(path: output) }
        let parent = (output as NSString).deletingLastPathComponent
        let temporary = (parent.isEmpty ? "." : parent) + "/." + (output as NSString).lastPathComponent
            + ".pixconv-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tmp"
        try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: false)
        var committed = false
        defer { if !committed { try? FileManager.default.removeItem(atPath: temporary) } }

        var total = 0
        var index: [String: Any] = ["_class_name": pipelineClass, "_diffusers_version": "0.42.1"]
        for component in components {
            let folder = temporary + "/" + component.kind.rawValue
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
            switch component.kind {
            case .tokenizer:
                index["tokenizer"] = ["transformers", "T5Tokenizer"]
                try AtomicFile.write(component.spieceModel ?? [], to: folder + "/spiece.model")
                try AtomicFile.write(Array(#"{"tokenizer_class": "T5Tokenizer", "legacy": true}"#.utf8),
                                     to: folder + "/tokenizer_config.json")
            case .scheduler:
                index["scheduler"] = ["diffusers", SafetensorsExport.schedulerClassName(component.configJSON)]
                try AtomicFile.write(Array((component.configJSON ?? "{}").utf8), to: folder + "/scheduler_config.json")
            case .transformer, .textEncoder, .vae:
                index[component.kind.rawValue] = [
                    .transformer: ["diffusers", "PixArtTransformer2DModel"],
                    .textEncoder: ["transformers", "T5EncoderModel"], .vae: ["diffusers", "AutoencoderKL"],
                ][component.kind]
                try AtomicFile.write(Array((component.configJSON ?? "{}").utf8), to: folder + "/config.json")
                let prefix = component.kind.rawValue + "/"
                let mine = plan.enumerated().filter { $0.element.stored.name.hasPrefix(prefix) }
                total += try writeFile(folder + "/" + component.kind.diffusersWeightsName, plan: mine,
                                       stripPrefix: prefix, replace: false, encode: encode, advance: advance)
            }
        }
        if components.count > 1 {
            let data = try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys, .prettyPrinted])
            try AtomicFile.write(Array(data), to: temporary + "/model_index.json")
        }
        if replace, FileManager.default.fileExists(atPath: output) {
            let old = temporary + ".old"
            try FileManager.default.moveItem(atPath: output, toPath: old)
            try FileManager.default.moveItem(atPath: temporary, toPath: output)
            try? FileManager.default.removeItem(atPath: old)
        } else {
            try FileManager.default.moveItem(atPath: temporary, toPath: output)
        }
        committed = true
        return total
    }

    /// The `_class_name` of a scheduler_config.json text (model_index.json's scheduler entry), else
    /// PixArt-α's DPMSolverMultistepScheduler. A regex, not a JSON parser: PixArt's configs hold a bare
    /// `-Infinity`, which JSONSerialization refuses.
    static func schedulerClassName(_ configJSON: String?) -> String {
        guard let text = configJSON,
              let match = text.range(of: #""_class_name"\s*:\s*"[A-Za-z0-9_]+""#, options: .regularExpression)
        else { return "DPMSolverMultistepScheduler" }
        let parts = text[match].split(separator: "\"")  // _class_name, " : ", the value
        return parts.count == 3 ? String(parts[2]) : "DPMSolverMultistepScheduler"
    }

    private static func writeFile(
        _ path: String, plan: [(offset: Int, element: (stored: TensorInfo, tensor: PlannedTensor))], stripPrefix: String,
        replace: Bool, encode: (Int) throws -> [UInt8], advance: (Int) -> Void
    ) throws -> Int {
        let infos = plan.map { entry -> TensorInfo in
            var info = entry.element.stored
            info.name = String(info.name.dropFirst(stripPrefix.count))
            return info
        }
        let writer = try SafetensorsWriter(path: path, tensors: infos, metadata: ["format": "pt"], replace: replace)
        let byName = Dictionary(uniqueKeysWithValues: zip(infos.map(\.name), plan.map(\.offset)))
        for info in writer.order {
            guard let index = byName[info.name] else { continue }
            let bytes = try encode(index)
            try bytes.withUnsafeBytes { try writer.append(info.name, bytes: $0) }
            advance(index)
        }
        try writer.commit()
        return (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }
}
