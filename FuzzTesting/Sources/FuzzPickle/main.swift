// libFuzzer harness: the inert pickle VM (PixconvReaders `PickleMachine`) on raw bytes, with both
// persistent-id conventions (zip checkpoints and the legacy stream). See formats/fuzzing.md.
import FuzzSupport
import PixconvReaders

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPickle(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = fuzzInput(data, size)
    var limits = PickleMachine.Limits()
    // Smaller than the defaults so a -timeout=5 ASan build is about bugs, not about the caps' size;
    // each cap is still exercised.
    limits.maxOperations = 200_000
    limits.maxNodes = 200_000
    _ = try? PickleMachine.run(input, persistentIDs: .zip, limits: limits)
    if let r = try? PickleMachine.run(input, persistentIDs: .legacy, requireEnd: false, limits: limits) {
        precondition(r.end <= input.count, "end past input")
    }
    return 0
}

runFuzzer(fuzzPickle)
