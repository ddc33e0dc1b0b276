/// Activation buffers sized once and reused across blocks and steps (llm.c's `ActivationTensors`
/// is the model): a model asks for a named buffer of at least `count` floats and gets the same
/// memory every time; it grows, never shrinks, and is freed with the workspace.
public final class Workspace: @unchecked Sendable {  // used by one forward at a time
    private final class Buffer {
        let pointer: UnsafeMutablePointer<Float>
        let count: Int
        init(count: Int) {
            self.count = count
            pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            pointer.initialize(repeating: 0, count: max(count, 1))
        }
        deinit { pointer.deallocate() }
    }

    private var buffers: [String: Buffer] = [:]

    public init() {}

    /// The buffer `name`, at least `count` floats (contents: whatever was last written there).
    public func buffer(_ name: String, count: Int) -> UnsafeMutablePointer<Float> {
        if let b = buffers[name], b.count >= count { return b.pointer }
        let b = Buffer(count: count)
        buffers[name] = b
        return b.pointer
    }

    /// Floats held, over all buffers.
    public var floatCount: Int { buffers.values.reduce(0) { $0 + $1.count } }

    /// Frees every buffer.
    public func removeAll() { buffers = [:] }
}
