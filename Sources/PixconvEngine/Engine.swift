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

    /// Which implementation runs the 3×3 convolutions (the VAE's).
    public enum Convolution: String, Sendable, CaseIterable {
        /// oneDNN's f32 direct convolution, band by band on the engine's pool (the default where
        /// oneDNN's CPU engine starts): 2–3× faster than `engine` on CPUs with two 512-bit FMA
        /// ports (formats/benchmarks.md).
        case onednn
        /// pixconv's own implicit-GEMM tiles: bf16 products for reduced stores on AVX512_BF16, f32
        /// otherwise (the faster choice where vdpbf16ps issues twice the products of FMA).
        case engine
    }

    /// The 3×3 convolution implementation new `Conv2d`s take (default: `.onednn` when
    /// `oneDNNAvailable`, else `.engine`).
    public static var convolution: Convolution {
        get { state.withLock { $0.convolution } }
        set { state.withLock { $0.convolution = newValue } }
    }

    /// Products per second of bf16 dot products (`vdpbf16ps`) over f32 FMA on this CPU, measured
    /// once per process: ≈ 2 on AMD Zen 4, 0.47 on the Intel Xeon measured (family 6 model 207);
    /// 0 without AVX512_BF16.
    public static var bf16Gain: Double { pe_bf16_gain() }

    /// Whether the default arithmetic uses bf16 products (gain ≥ 1.5): for bf16 stores' linear
    /// layers, the DiT's attention under int8 and bf16 stores and the engine's own VAE tiles.
    /// Where it does not pay, those run f32 — faster there, and exact to rounding.
    public static var bf16Pays: Bool { pe_bf16_pays() != 0 }

    /// Whether oneDNN's CPU engine could be created in this process.
    public static var oneDNNAvailable: Bool { pe_dnnl_available() != 0 }

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
        var convolution: Convolution = pe_dnnl_available() != 0 ? .onednn : .engine
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
