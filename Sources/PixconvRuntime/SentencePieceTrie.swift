/// A byte trie from keys to values, used for vocabulary lookup (the role darts-clone plays in
/// sentencepiece's `ModelInterface` / `PrefixMatcher`). Edges live in one hash map keyed by
/// `node << 8 | byte`.
struct SentencePieceTrie: Sendable {
    private var edges: [Int: Int32] = [:]
    /// Value stored at each node, -1 if none. Node 0 is the root.
    private var values: [Int32] = [-1]

    /// Builds the trie; a later duplicate key does not replace an earlier one.
    init(keys: [([UInt8], Int32)]) {
        for (key, value) in keys where !key.isEmpty {
            var node = 0
            for b in key {
                let edge = node << 8 | Int(b)
                if let next = edges[edge] {
                    node = Int(next)
                } else {
                    values.append(-1)
                    edges[edge] = Int32(values.count - 1)
                    node = values.count - 1
                }
            }
            if values[node] < 0 { values[node] = value }
        }
    }

    /// Calls `body(value, length)` for every key that prefixes `s[start...]`, shortest first.
    func forEachPrefix(_ s: [UInt8], from start: Int, _ body: (Int32, Int) -> Void) {
        var node = 0
        var i = start
        while i < s.count, let next = edges[node << 8 | Int(s[i])] {
            node = Int(next)
            i += 1
            if values[node] >= 0 { body(values[node], i - start) }
        }
    }

    /// The longest key that prefixes `s[start...]`: (value, length).
    func longestPrefix(_ s: [UInt8], from start: Int) -> (value: Int32, length: Int)? {
        var best: (Int32, Int)?
        forEachPrefix(s, from: start) { best = ($0, $1) }
        return best
    }
}
