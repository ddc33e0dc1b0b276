/// Tensor names inside a pixconv store: the component prefix (`dit.`, `te.`, `vae.`) before the
/// diffusers key, with a few long words abbreviated so that every name of the real PixArt-α
/// models fits ggml's limit of 63 bytes (`formats/store.md`, "Tensor names").
///
/// The abbreviations are whole dotted segments that never occur in diffusers or transformers
/// keys, so the mapping is reversible.
public enum StoreNames {
    /// (diffusers segment, stored segment).
    static let abbreviations: [(String, String)] = [
        ("relative_attention_bias", "rel_attn_bias"),
    ]

    public static let maxLength = 63

    /// The stored name of `key` in `component`.
    public static func stored(_ key: String, prefix: String) -> String {
        prefix + mapSegments(key) { segment in abbreviations.first { $0.0 == segment }?.1 ?? segment }
    }

    /// The diffusers key of a stored name (without its prefix).
    public static func key(_ storedKey: String) -> String {
        mapSegments(storedKey) { segment in abbreviations.first { $0.1 == segment }?.0 ?? segment }
    }

    private static func mapSegments(_ name: String, _ transform: (String) -> String) -> String {
        name.split(separator: ".", omittingEmptySubsequences: false).map { transform(String($0)) }.joined(separator: ".")
    }
}
