// libFuzzer harness: the GGUF reader and pixconv's store on top of it (PixconvStore `GGUFFile`,
// `PixconvStore` with its CRC checks). See formats/fuzzing.md.
import FuzzSupport
import PixconvCore
import PixconvStore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGGUF(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = fuzzInput(data, size)
    let path = writeScratchFile(input, tag: "gguf")
    var sink: UInt8 = 0
    if let file = try? GGUFFile(path: path) {
        for t in file.tensors {
            if let d = try? file.data(for: t.name) {
                precondition(d.bytes.count == t.byteCount, "tensor size mismatch")
                sink ^= fuzzTouch(d.bytes)
            }
        }
        for (key, _) in file.metadata { _ = file.valueOffset(of: key) }
    }
    // The store without the header CRC (a fuzzer rarely forges one), then every check `verify` runs.
    if let store = try? PixconvStore(path: path, checkHeader: false) {
        _ = store.verifyAll()
        _ = store.spieceModel
        for c in store.components { _ = store.config(for: c); _ = store.tensors(inComponent: c) }
    }
    return sink == 0x5A ? 0 : 0
}

runFuzzer(fuzzGGUF)
