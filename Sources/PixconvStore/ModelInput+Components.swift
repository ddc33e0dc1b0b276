import Foundation
import PixconvCore
import PixconvReaders

extension ModelInput {
    /// The components this input holds, with tensors in the diffusers layout.
    ///
    /// Each part's component is its folder name when it has one, otherwise what `ModelKind`
    /// detects from tensor names and shapes. An original-layout PixArt checkpoint is unwrapped
    /// (`state_dict`, or `state_dict_ema` with `ema`), renamed and split, and its config inferred.
    /// `family` (`--family`) gives the sample size an original-layout checkpoint does not record.
    public func components(ema: Bool = false, family: FamilyChoice? = nil) throws -> [Component] {
        var result: [Component] = []
        for part in parts {
            guard var component = try component(for: part, ema: ema, family: family) else { continue }
            if component.kind == .transformer {
                component.pipelineClass = pipelineClass
                component.recordedFamily = store?.family
                try ModelInput.check(component, against: family)
            }
            result.append(component)
        }
        guard !result.isEmpty else {
            throw ConvertError.unknownInput(path: path, reason: "holds no PixArt transformer, T5 encoder, VAE, tokenizer or scheduler")
        }
        return result
    }

    /// A `--family` size must agree with the transformer's config.
    static func check(_ transformer: Component, against family: FamilyChoice?) throws {
        guard let want = family?.sampleSize, let text = transformer.configJSON,
              let have = FamilyDetection.configValue(text, "sample_size")?.int, have != want else { return }
        throw ConvertError.badConfig(
            origin: transformer.origin,
            reason: "--family \(family!) means sample_size \(want), but the transformer config has \(have)")
    }

    private func component(for part: Part, ema: Bool, family: FamilyChoice?) throws -> Component? {
        let origin = part.name.map { path + "/" + $0 } ?? path
        if let name = part.name, let kind = ComponentKind(rawValue: name) {
            switch kind {
            case .tokenizer:
                guard let spiece = part.spieceModel else {
                    throw ConvertError.unknownInput(path: origin, reason: "tokenizer folder has no spiece.model")
                }
                return Component(kind: .tokenizer, origin: origin, spieceModel: spiece)
            case .scheduler:
                return Component(kind: .scheduler, origin: origin, configJSON: part.configText)
            default: break
            }
        }
        guard let source = part.source else { return nil }
        let detected = part.kind ?? ModelKind.detect(source.tensors)
        let named = part.name.flatMap(ComponentKind.init(rawValue:))
        switch detected.family {
        case .pixartTransformer:
            if detected.layout == .original {
                return try ComponentBuilder.originalPixArt(
                    source: source, prefix: try stateDictPrefix(source, detected: detected.prefix, ema: ema), origin: origin,
                    sampleSize: family?.sampleSize)
            }
            return try ComponentBuilder.diffusers(
                kind: .transformer, source: source, prefix: detected.prefix,
                configJSON: part.configText ?? ConfigInference.transformer(detected), origin: origin)
        case .t5Encoder:
            return try ComponentBuilder.diffusers(
                kind: .textEncoder, source: source, prefix: detected.prefix,
                configJSON: part.configText ?? ConfigInference.t5(detected), origin: origin)
        case .vae:
            guard detected.layout != .original else {
                throw ConvertError.unsupported("\(origin): VAE weights in the original LDM layout are not supported; use a diffusers VAE folder")
            }
            return try ComponentBuilder.diffusers(
                kind: .vae, source: source, prefix: detected.prefix,
                configJSON: part.configText ?? ConfigInference.vae(detected), origin: origin)
        case .unknown:
            if let named, named != .tokenizer, named != .scheduler {
                throw ConvertError.unknownInput(path: origin, reason: "the \(named.rawValue) weights are not recognised")
            }
            return nil
        }
    }

    /// The wrapper a PixArt training checkpoint keeps its weights under.
    private func stateDictPrefix(_ source: TensorSource, detected: String, ema: Bool) throws -> String {
        let names = source.tensors.map(\.name)
        let hasEMA = names.contains { $0.hasPrefix("state_dict_ema.") }
        if ema {
            guard hasEMA else {
                throw ConvertError.unknownInput(path: path, reason: "--ema given but the checkpoint has no state_dict_ema")
            }
            return "state_dict_ema."
        }
        if names.contains(where: { $0.hasPrefix("state_dict.") }) { return "state_dict." }
        return detected
    }
}

/// Writes a diffusers config.json for a component that came without one, from detected shapes.
enum ConfigInference {
    static func json(_ object: [String: Any]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    static func transformer(_ kind: ModelKind) -> String? {
        guard let p = kind.pixart, let heads = p.headCount, heads > 0 else { return nil }
        var config: [String: Any] = [
            "_class_name": "PixArtTransformer2DModel", "activation_fn": "gelu-approximate", "attention_bias": true,
            "attention_head_dim": p.hiddenSize / heads, "cross_attention_dim": p.hiddenSize, "in_channels": p.inChannels,
            "norm_elementwise_affine": false, "norm_eps": 1e-6, "norm_type": "ada_norm_single",
            "num_attention_heads": heads, "num_embeds_ada_norm": 1000, "num_layers": p.depth,
            "out_channels": p.outChannels ?? p.inChannels, "patch_size": p.patchSize,
            "sample_size": p.sampleSize ?? (p.multiScale ? 128 : 64), "use_additional_conditions": p.multiScale,
        ]
        if let c = p.captionChannels { config["caption_channels"] = c }
        return json(config)
    }

    static func t5(_ kind: ModelKind) -> String? {
        guard let t = kind.t5, let heads = t.headCount else { return nil }
        return json([
            "architectures": ["T5EncoderModel"], "d_model": t.modelDim, "d_kv": t.keyValueDim ?? t.modelDim / heads,
            "num_heads": heads, "num_layers": t.layerCount, "d_ff": t.feedForwardDim ?? 4 * t.modelDim,
            "feed_forward_proj": t.gated ? "gated-gelu" : "relu", "is_gated_act": t.gated,
            "dense_act_fn": t.gated ? "gelu_new" : "relu",
            "relative_attention_num_buckets": t.relativeAttentionBuckets ?? 32, "relative_attention_max_distance": 128,
            "layer_norm_epsilon": 1e-6, "vocab_size": t.vocabSize, "model_type": "t5",
        ])
    }

    static func vae(_ kind: ModelKind) -> String? {
        guard let v = kind.vae else { return nil }
        let n = v.blockOutChannels.count
        return json([
            "_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": v.blockOutChannels,
            "down_block_types": Array(repeating: "DownEncoderBlock2D", count: n),
            "up_block_types": Array(repeating: "UpDecoderBlock2D", count: n), "in_channels": 3,
            "out_channels": v.outChannels ?? 3, "latent_channels": v.latentChannels,
            "layers_per_block": v.layersPerBlock ?? 2, "norm_num_groups": 32, "scaling_factor": 0.18215,
        ])
    }
}
