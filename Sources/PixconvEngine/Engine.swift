import CEngine
import Foundation

/// The compute engine's settings and what it ran: threads, the arithmetic chosen for stored
/// weights, the CPU's instruction sets, and a record of the kernels each weight type used.
public enum Engine {
    /// How stored weights are multiplied.
    public enum Compute: String, Sendable, CaseIterable {
        /// Each stored type runs its fastest kernel: int8 dot products for Q8_0 / Q4_0 (activations
        /// rounded to int8 blocks), bf16 dot products for bf16 where the CPU has them, f32 otherwise.
        case native
        /// f32 arithmetic from any store: weights widened to f32 panel by panel.
        case f32
    }

    /// The arithmetic for stored weights (default `.native`).
    public static var compute: Compute {
        get { state.withLock { $0.compute } }
        set { state.withLock { $0.compute = newValue } }
    }

    /// Threads of the engine's one pool (OpenBLAS runs single-threaded inside its tasks).
    public static var threads: Int { Int(pe_threads()) }

    /// Sets the pool's thread count; 0 or less: every core.
    public static func setThreads(_ n: Int) { pe_set_threads(Int32(clamping: n)) }

    /// The CPU's instruction sets the engine can use, by name.
    public static var cpuFeatures: [String] {
        let f = pe_cpu_features()
        var names: [String] = []
        if f & Int32(PE_CPU_AVX2) != 0 { names.append("avx2") }
        if f & Int32(PE_CPU_AVX512) != 0 { names.append("avx512") }
        if f & Int32(PE_CPU_AVX512VNNI) != 0 { names.append("avx512-vnni") }
        if f & Int32(PE_CPU_AVX512BF16) != 0 { names.append("avx512-bf16") }
        if f & Int32(PE_CPU_AVXVNNI) != 0 { names.append("avx-vnni") }
        return names
    }

    /// Kernels that ran since the last `resetKernelRecord()`: stored type → kernel name
    /// (for example "q8_0": "avx512-vnni", "f32": "sgemm").
    public static var kernelsUsed: [String: String] { state.withLock { $0.kernels } }
    public static func resetKernelRecord() { state.withLock { $0.kernels = [:] } }

    /// Frees the scratch buffers the kernels keep for reuse (call between pipeline stages, so the
    /// next stage's peak does not include the last one's buffers).
    public static func releaseScratch() { pe_scratch_trim() }

    static func record(type: String, isa: pe_isa) {
        let name = String(cString: pe_isa_name(isa))
        state.withLock { $0.kernels[type] = name }
    }

    private struct State {
        var compute: Compute = .native
        var kernels: [String: String] = [:]
    }
    private static let state = Locked(State())
}

/// A value behind a lock.
final class Locked<Value>: @unchecked Sendable {  // every access goes through the lock
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
