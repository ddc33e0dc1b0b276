// libFuzzer harness: PyTorch zip checkpoints past the container checks (PixconvReaders
// `TorchCheckpoint`: pickle → storages → `TorchView` validation and extraction, byte order).
// The input is `data.pkl` after one control byte; the harness wraps it in a well-formed zip with
// correct CRCs (which a byte-level zip fuzzer almost never produces) and one `data/<key>` record
// per storage the pickle references, sized numel × itemsize (± 1 byte when the control byte says
// so). See formats/fuzzing.md.
import FuzzSupport
import PixconvCore
import PixconvReaders

/// A stored (method 0) zip archive of `entries`, as APPNOTE.TXT §4.3 lays it out.
func storedZip(_ entries: [(name: String, data: [UInt8])]) -> [UInt8] {
    func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
    func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) } }
    var out: [UInt8] = [], central: [UInt8] = []
    for (name, data) in entries {
        let n = Array(name.utf8), crc = crc32(data), size = le32(UInt32(data.count))
        let offset = le32(UInt32(out.count))
        let common = le16(20) + le16(0) + le16(0) + le16(0) + le16(0x21) + le32(crc) + size + size + le16(n.count) + le16(0)
        out += le32(0x0403_4B50) + common + n + data
        central += le32(0x0201_4B50) + le16(20) + common + le16(0) + le16(0) + le16(0) + le32(0) + offset + n
    }
    let count = le16(entries.count)
    return out + central + le32(0x0605_4B50) + le16(0) + le16(0) + count + count
        + le32(UInt32(central.count)) + le32(UInt32(out.count)) + le16(0)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTorch(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = fuzzInput(data, size)
    guard let control = input.first else { return 0 }
    let pickle = [UInt8](input.dropFirst())
    // Storage keys and sizes as the pickle declares them (the reader checks them again).
    guard let parsed = try? PickleMachine.run(pickle) else { return 0 }
    var entries: [(name: String, data: [UInt8])] = [("archive/data.pkl", pickle)]
    entries.append(("archive/byteorder", Array((control & 1 == 0 ? "little" : "big").utf8)))
    entries.append(("archive/version", Array("3\n".utf8)))
    var total = 0
    for (i, s) in parsed.storages.enumerated() {
        guard var bytes = s.byteCount, bytes <= 1 << 20 else { return 0 }
        if control & 2 != 0, i == Int(control >> 2) % max(parsed.storages.count, 1) { bytes += control & 0x80 == 0 ? 1 : -1 }
        total += max(bytes, 0)
        guard total <= 4 << 20 else { return 0 }
        entries.append(("archive/data/\(s.key)", (0..<max(bytes, 0)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }))
    }
    let zip = storedZip(entries)
    let path = zip.withUnsafeBytes { writeScratchFile($0, tag: "torch") }
    var sink: UInt8 = 0
    if let checkpoint = try? TorchCheckpoint(path: path) {
        for t in checkpoint.tensors {
            if let d = try? checkpoint.data(for: t.name) {
                precondition(d.bytes.count == t.byteCount, "tensor size mismatch")
                sink ^= fuzzTouch(d.bytes)
            }
        }
    }
    return sink == 0x5A ? 0 : 0
}

runFuzzer(fuzzTorch)
