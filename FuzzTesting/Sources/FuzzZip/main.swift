// libFuzzer harness: the zip reader (PixconvReaders `ZipArchive`, stored and deflated entries with
// CRC checks) and the PyTorch checkpoint reader on top of it (`TorchCheckpoint`: zip and legacy
// formats, pickle, tensor views). See formats/fuzzing.md.
import FuzzSupport
import PixconvCore
import PixconvReaders

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzZip(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = fuzzInput(data, size)
    let path = writeScratchFile(input, tag: "zip")
    guard let file = try? MappedFile(path: path) else { return 0 }
    var sink: UInt8 = 0
    if let archive = try? ZipArchive(file: file) {
        for entry in archive.entries {
            if let record = try? archive.read(entry, limit: 1 << 20) { sink ^= fuzzTouch(record.bytes) }
        }
    }
    if let checkpoint = try? TorchCheckpoint(file: file) {
        for t in checkpoint.tensors {
            if let d = try? checkpoint.data(for: t.name) {
                precondition(d.bytes.count == t.byteCount, "tensor size mismatch")
                sink ^= fuzzTouch(d.bytes)
            }
        }
    }
    return sink == 0x5A ? 0 : 0
}

runFuzzer(fuzzZip)
