/// Picks the weights file of one component folder from its file names.
///
/// Follows diffusers' and transformers' naming (`diffusion_pytorch_model[.variant].safetensors`,
/// `model[.variant].safetensors`, `model[.variant]-0000k-of-0000n.safetensors` shards with
/// `model.safetensors.index[.variant].json`), in this order of preference:
///
/// 1. the non-variant single file (`diffusion_pytorch_model.safetensors`, then `model.safetensors`),
/// 2. the non-variant sharded index (`diffusion_pytorch_model.safetensors.index.json`, then
///    `model.safetensors.index.json`),
/// 3. any other single non-variant, non-shard `*.safetensors`, or any other non-variant index
///    (each only when exactly one exists; several are ambiguous and rejected),
/// 4. a variant, trying `fp32`, then `fp16`, then `bf16`, then others by name; a single file
///    before an index,
/// 5. only when `includeTorch` is set: `diffusion_pytorch_model.bin`, `pytorch_model.bin`, or the
///    only `*.bin` / `*.pth` / `*.pt` file. `.bin` files are never picked otherwise.
///
/// Returns nil when the folder has no weights (a tokenizer or scheduler folder).
public enum DiffusersWeights {
    public enum Choice: Equatable, Sendable {
        case none
        case file(String)
        case ambiguous([String])
    }

    public static func choose(from names: [String], includeTorch: Bool = false) -> Choice {
        let set = Set(names)
        for known in ["diffusion_pytorch_model.safetensors", "model.safetensors",
                      "diffusion_pytorch_model.safetensors.index.json", "model.safetensors.index.json"]
        where set.contains(known) {
            return .file(known)
        }
        let singles = names.filter { $0.hasSuffix(".safetensors") && !isShard($0) && !$0.hasPrefix(".") }
        let indexes = names.filter { $0.contains(".safetensors.index.") && $0.hasSuffix(".json") && !$0.hasPrefix(".") }
        let plainSingles = singles.filter { variant(ofSingle: $0) == nil }
        let plainIndexes = indexes.filter { $0.hasSuffix(".safetensors.index.json") }
        if plainSingles.count > 1 { return .ambiguous(plainSingles) }
        if let only = plainSingles.first { return .file(only) }
        if plainIndexes.count > 1 { return .ambiguous(plainIndexes) }
        if let only = plainIndexes.first { return .file(only) }

        // Variants: `stem.VARIANT.safetensors` and `stem.safetensors.index.VARIANT.json`.
        var byVariant: [String: [String]] = [:]
        for s in singles { if let v = variant(ofSingle: s) { byVariant[v, default: []].append(s) } }
        for i in indexes where !plainIndexes.contains(i) {
            if let v = variant(ofIndex: i) { byVariant[v, default: []].append(i) }
        }
        let preferred = ["fp32", "fp16", "bf16"]
        let variants = byVariant.keys.sorted { a, b in
            let ra = preferred.firstIndex(of: a) ?? preferred.count
            let rb = preferred.firstIndex(of: b) ?? preferred.count
            return ra != rb ? ra < rb : a < b
        }
        if let v = variants.first, let files = byVariant[v] {
            let single = files.filter { $0.hasSuffix(".safetensors") }
            if single.count > 1 { return .ambiguous(single) }
            if let s = single.first { return .file(s) }
            if files.count > 1 { return .ambiguous(files) }
            if let f = files.first { return .file(f) }
        }

        guard includeTorch else { return .none }
        for known in ["diffusion_pytorch_model.bin", "pytorch_model.bin"] where set.contains(known) {
            return .file(known)
        }
        let torch = names.filter(isTorchWeights)
        if torch.count > 1 { return .ambiguous(torch) }
        return torch.first.map { .file($0) } ?? .none
    }

    /// `.bin`, `.pth` or `.pt` files (not hidden ones).
    public static func isTorchWeights(_ name: String) -> Bool {
        (name.hasSuffix(".bin") || name.hasSuffix(".pth") || name.hasSuffix(".pt")) && !name.hasPrefix(".")
    }

    /// True for `…-00001-of-00002.safetensors` (a shard, opened through its index).
    public static func isShard(_ name: String) -> Bool {
        guard name.hasSuffix(".safetensors") else { return false }
        let stem = Array(name.utf8.dropLast(".safetensors".utf8.count))
        // "-ddddd-of-ddddd" with at least one digit on each side.
        guard let ofRange = findLast(Array("-of-".utf8), in: stem) else { return false }
        let after = stem[(ofRange + 4)...]
        guard !after.isEmpty, after.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
        var k = ofRange
        while k > 0, stem[k - 1] >= 0x30, stem[k - 1] <= 0x39 { k -= 1 }
        return k < ofRange && k > 0 && stem[k - 1] == UInt8(ascii: "-")
    }

    /// "fp16" for `model.fp16.safetensors`; nil when the stem has no dot.
    static func variant(ofSingle name: String) -> String? {
        let stem = name.dropLast(".safetensors".count)
        guard let dot = stem.lastIndex(of: ".") else { return nil }
        let v = String(stem[stem.index(after: dot)...])
        return v.isEmpty ? nil : v
    }

    /// "fp16" for `model.safetensors.index.fp16.json`.
    static func variant(ofIndex name: String) -> String? {
        guard let r = name.firstRange(of: ".safetensors.index.") else { return nil }
        let rest = name[r.upperBound...].dropLast(".json".count)
        return rest.isEmpty ? nil : String(rest)
    }

    private static func findLast(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        var k = hay.count - needle.count
        while k >= 0 {
            if Array(hay[k..<(k + needle.count)]) == needle { return k }
            k -= 1
        }
        return nil
    }
}
