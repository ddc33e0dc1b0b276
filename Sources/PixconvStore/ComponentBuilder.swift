import Foundation
import PixconvCore

/// Turns tensor sets as read into `Component`s in the diffusers layout, with the key maps of
/// `formats/` (`KeyMap.pixartOriginal`, `KeyMap.diffusersLegacy`).
public enum ComponentBuilder {
    /// A diffusers-layout component: keys kept, except the legacy renames; aliases of a key that
    /// is also present (the tied T5 embedding) are skipped.
    public static func diffusers(
        kind: ComponentKind, source: TensorSource, prefix: String = "", configJSON: String?, origin: String
    ) throws -> Component {
        let present = Set(source.tensors.map(\.name))
        var planned: [String: PlannedTensor] = [:]
        for info in source.tensors where info.name.hasPrefix(prefix) {
            let key = String(info.name.dropFirst(prefix.count))
            var targets = [key]
            var operation = KeyMap.Operation.copy
            if let mapping = KeyMap.diffusersLegacy.mapping(for: key) {
                operation = mapping.operation
                targets = mapping.targets
                if operation == .copy, let target = targets.first, present.contains(prefix + target) { continue }
            }
            try add(info: info, operation: operation, targets: targets, source: source, origin: origin, into: &planned)
        }
        return Component(kind: kind, origin: origin, configJSON: configJSON, tensors: Array(planned.values))
    }

    /// An original-layout PixArt-α transformer (`blocks.N.attn.qkv.weight`, …) found under
    /// `prefix` (e.g. `state_dict.`): renamed, fused tensors split, `pos_embed` and
    /// `y_embedding` dropped, and its diffusers config inferred from shapes.
    /// `sampleSize` (from `--family`) is the latent side when the checkpoint stores no `pos_embed`.
    public static func originalPixArt(
        source: TensorSource, prefix: String, origin: String, sampleSize: Int? = nil
    ) throws -> Component {
        var planned: [String: PlannedTensor] = [:]
        var keys: [String: TensorInfo] = [:]
        for info in source.tensors where info.name.hasPrefix(prefix) {
            let key = String(info.name.dropFirst(prefix.count))
            keys[key] = info
            guard let mapping = KeyMap.pixartOriginal.mapping(for: key) else {
                throw ConvertError.unmappedKey(origin: origin, key: info.name)
            }
            try add(info: info, operation: mapping.operation, targets: mapping.targets, source: source,
                    origin: origin, into: &planned)
        }
        let config = try PixArtConfigInference.infer(originalKeys: keys, origin: origin, sampleSize: sampleSize)
        return Component(kind: .transformer, origin: origin, configJSON: config, tensors: Array(planned.values))
    }

    private static func add(
        info: TensorInfo, operation: KeyMap.Operation, targets: [String], source: TensorSource, origin: String,
        into planned: inout [String: PlannedTensor]
    ) throws {
        switch operation {
        case .drop:
            return
        case .copy:
            guard let target = targets.first else { return }
            guard planned[target] == nil else { throw ConvertError.duplicateTarget(origin: origin, name: target) }
            planned[target] = PlannedTensor(name: target, source: source, sourceInfo: info)
        case .split:
            let parts = targets.count
            guard let rows = info.shape.first, rows % parts == 0, rows > 0 else {
                throw ConvertError.badFusedShape(origin: origin, key: info.name, shape: info.shape, parts: parts)
            }
            for (i, target) in targets.enumerated() {
                guard planned[target] == nil else { throw ConvertError.duplicateTarget(origin: origin, name: target) }
                planned[target] = PlannedTensor(name: target, source: source, sourceInfo: info, part: i, parts: parts)
            }
        }
    }
}

/// Infers a diffusers `PixArtTransformer2DModel` config.json from original-layout tensor shapes.
public enum PixArtConfigInference {
    /// The sample size comes from `pos_embed` (√N × patch); without one, from `sampleSize` (the
    /// `--family` size), else 128 when the micro-condition embedders are there (α 1024-MS). A
    /// PixArt-Σ MS checkpoint has neither: it needs `--family sigma-SIZE`. The interpolation scale
    /// follows the size as both of diffusers' conversion scripts set it (256: 0.5, 512: 1, 1024: 2,
    /// 2048: 4).
    public static func infer(originalKeys keys: [String: TensorInfo], origin: String, sampleSize hint: Int? = nil) throws -> String {
        func shape(_ key: String) throws -> [Int] {
            guard let info = keys[key] else { throw ConvertError.missingTensor(origin: origin, name: key) }
            return info.shape
        }
        let patchWeight = try shape("x_embedder.proj.weight")  // (hidden, in, p, p)
        guard patchWeight.count == 4, patchWeight[2] == patchWeight[3], patchWeight[2] > 0 else {
            throw ConvertError.badConfig(origin: origin, reason: "x_embedder.proj.weight has shape \(patchWeight)")
        }
        let hidden = patchWeight[0], inChannels = patchWeight[1], patch = patchWeight[2]
        let finalWeight = try shape("final_layer.linear.weight")  // (p·p·out, hidden)
        let outChannels = finalWeight[0] / (patch * patch)
        let captionChannels = try shape("y_embedder.y_proj.fc1.weight").last ?? 0
        let depth = Set(keys.keys.compactMap { key -> Int? in
            guard key.hasPrefix("blocks.") else { return nil }
            return Int(key.dropFirst("blocks.".count).prefix { $0.isNumber })
        }).count
        // Attention heads of 72 channels, as every released PixArt-α model; smaller models fall
        // back to a divisor of the hidden size.
        let headDim = hidden % 72 == 0 ? 72 : [64, 32, 16, 8, 4, 2, 1].first { hidden % $0 == 0 } ?? 1
        var sampleSize: Int? = nil
        if let pos = keys["pos_embed"]?.shape, pos.count == 3 {
            let side = Int(Double(pos[1]).squareRoot().rounded())
            if side * side == pos[1] { sampleSize = side * patch }
        }
        let multiScale = keys["csize_embedder.mlp.0.weight"] != nil
        if let stored = sampleSize, let hint, stored != hint {
            throw ConvertError.badConfig(
                origin: origin, reason: "its pos_embed is for sample_size \(stored) (\(stored * 8)²), but --family says \(hint * 8)")
        }
        guard let sample = sampleSize ?? hint ?? (multiScale ? 128 : nil) else {
            throw ConvertError.badConfig(
                origin: origin,
                reason: "cannot tell the model's size: it stores no pos_embed and no micro-condition embedders "
                    + "(csize_embedder), as a PixArt-Σ MS checkpoint; give --family with the size, e.g. --family sigma-1024 "
                    + "(\(FamilyChoice.help))")
        }
        let interpolation: Double = [256: 4, 128: 2, 64: 1, 32: 0.5][sample] ?? Double(max(sample / 64, 1))
        var config: [String: Any] = [
            "_class_name": "PixArtTransformer2DModel",
            "activation_fn": "gelu-approximate",
            "attention_bias": true,
            "attention_head_dim": headDim,
            "caption_channels": captionChannels,
            "cross_attention_dim": hidden,
            "in_channels": inChannels,
            "interpolation_scale": interpolation,
            "norm_elementwise_affine": false,
            "norm_eps": 1e-6,
            "norm_type": "ada_norm_single",
            "num_attention_heads": hidden / headDim,
            "num_embeds_ada_norm": 1000,
            "num_layers": depth,
            "out_channels": outChannels,
            "patch_size": patch,
            "sample_size": sample,
            "use_additional_conditions": multiScale,
        ]
        if outChannels == 0 { config["out_channels"] = inChannels }
        let data = try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys, .prettyPrinted])
        return String(decoding: data, as: UTF8.self)
    }
}
