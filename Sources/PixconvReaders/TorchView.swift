import PixconvCore

/// Strided tensor views of storages (`at::TensorImpl` sizes/strides/storage_offset, as
/// `_rebuild_tensor_v2` sets them): validation with checked arithmetic, contiguous slicing and
/// gathering of non-contiguous views, byte swapping.
enum TorchView {
    /// Largest tensor whose strides repeat storage elements (stride 0 from `expand`) that is materialised.
    static let maxRepeatedBytes = 16 << 20

    /// Checks one tensor against its storage and record and returns its `TensorInfo`:
    /// the record holds exactly numel × itemsize of the storage type, and the furthest element
    /// of the view (offset + Σ (size_i − 1)·stride_i) lies inside the storage (or legacy view).
    static func validate(name: String, ref: PickleTensorRef, root: PickleStorageRef, recordSize: Int,
                         record: String) throws -> TensorInfo {
        guard let expected = root.byteCount else { throw TorchError.sizeOverflow(tensor: name) }
        guard expected == recordSize else {
            throw TorchError.recordSize(tensor: name, record: record, expected: expected, actual: recordSize)
        }
        guard let count = elementCount(ref.shape), let byteCount = ref.dtype.byteCount(elements: count) else {
            throw TorchError.sizeOverflow(tensor: name)
        }
        let info = TensorInfo(name: name, dtype: ref.dtype, shape: ref.shape, byteCount: byteCount)
        guard count > 0 else { return info }
        guard let end = furthestByte(ref) else { throw TorchError.sizeOverflow(tensor: name) }
        // The view's own storage: root bytes from viewOffset for numel elements (legacy views).
        let storageItem = ref.storage.dtype.blockBytes
        let (available, o1) = ref.storage.numel.multipliedReportingOverflow(by: storageItem)
        let (start, o2) = ref.storage.viewOffset.multipliedReportingOverflow(by: storageItem)
        guard !o1, !o2, start <= recordSize, available <= recordSize - start else { throw TorchError.sizeOverflow(tensor: name) }
        guard end <= available else {
            throw TorchError.viewOutOfStorage(tensor: name, record: record, needed: end, available: available)
        }
        // Zero or overlapping strides (an `expand`ed tensor) repeat storage elements; materialising
        // one is capped so that a tiny file cannot demand terabytes.
        if byteCount > available, byteCount > maxRepeatedBytes {
            throw TorchError.overlappingView(tensor: name, record: record, bytes: byteCount, storageBytes: available)
        }
        return info
    }

    /// One past the last byte the view touches, relative to its storage; nil on overflow.
    static func furthestByte(_ ref: PickleTensorRef) -> Int? {
        var furthest = ref.storageOffset
        for (size, stride) in zip(ref.shape, ref.stride) {
            let (step, o1) = (size - 1).multipliedReportingOverflow(by: stride)
            let (sum, o2) = furthest.addingReportingOverflow(step)
            if o1 || o2 { return nil }
            furthest = sum
        }
        let (last, o3) = furthest.addingReportingOverflow(1)
        let (bytes, o4) = last.multipliedReportingOverflow(by: ref.dtype.blockBytes)
        return o3 || o4 ? nil : bytes
    }

    /// Row-major contiguity, ignoring the strides of size-1 dimensions (`is_contiguous`).
    static func isContiguous(_ shape: [Int], _ stride: [Int]) -> Bool {
        var expected = 1
        for i in shape.indices.reversed() where shape[i] != 1 {
            if stride[i] != expected { return false }
            expected *= shape[i]  // partial products of a validated shape cannot overflow
        }
        return true
    }

    /// The tensor's bytes from its (already little-endian) storage bytes.
    static func extract(_ info: TensorInfo, _ ref: PickleTensorRef, from storage: ZipRecord) throws -> TensorData {
        if info.byteCount == 0 {  // an empty view's offset is never used (nor validated)
            return TensorData(info: info, owner: storage.owner, bytes: UnsafeRawBufferPointer(start: nil, count: 0))
        }
        // Validated by `validate`: the view start and the furthest element lie inside the record.
        let itemSize = ref.dtype.blockBytes
        let base = (ref.storage.viewOffset * ref.storage.dtype.blockBytes) + ref.storageOffset * itemSize
        if isContiguous(ref.shape, ref.stride) {
            let slice = UnsafeRawBufferPointer(rebasing: storage.bytes[base..<(base + info.byteCount)])
            return TensorData(info: info, owner: storage.owner, bytes: slice)
        }
        // A size-1 dimension's stride is never stepped and may be anything (even huge): zero it.
        let stride = zip(ref.shape, ref.stride).map { $0 == 1 ? 0 : $1 }
        let out = HeapBuffer(count: info.byteCount)
        gather(storage.bytes, base: base, shape: ref.shape, stride: stride, itemSize: itemSize, into: out.bytes)
        return TensorData(info: info, owner: out, bytes: UnsafeRawBufferPointer(out.bytes))
    }

    /// Copies a strided view into row-major order: an odometer over the outer dimensions and one
    /// run (a memcpy when the inner stride is 1) per innermost row. Bounds were validated.
    static func gather(_ src: UnsafeRawBufferPointer, base: Int, shape: [Int], stride: [Int], itemSize: Int,
                       into dst: UnsafeMutableRawBufferPointer) {
        guard let dstBase = dst.baseAddress, let srcBase = src.baseAddress else { return }
        let rank = shape.count
        let inner = rank == 0 ? 1 : shape[rank - 1]
        let innerStep = (rank == 0 ? 0 : stride[rank - 1]) * itemSize
        var index = [Int](repeating: 0, count: max(rank - 1, 0))
        var written = 0
        let total = dst.count
        while written < total {
            var offset = base
            for d in 0..<index.count { offset += index[d] * stride[d] * itemSize }
            let from = srcBase + offset, to = dstBase + written
            if innerStep == itemSize {
                to.copyMemory(from: from, byteCount: inner * itemSize)
            } else {
                switch itemSize {
                case 2: copyStrided(UInt16.self, from, to, inner, innerStep)
                case 4: copyStrided(UInt32.self, from, to, inner, innerStep)
                case 8: copyStrided(UInt64.self, from, to, inner, innerStep)
                default:
                    for j in 0..<inner { (to + j * itemSize).copyMemory(from: from + j * innerStep, byteCount: itemSize) }
                }
            }
            written += inner * itemSize
            var d = index.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
    }

    @inline(__always)
    static func copyStrided<T: FixedWidthInteger>(_: T.Type, _ from: UnsafeRawPointer, _ to: UnsafeMutableRawPointer,
                                                  _ count: Int, _ step: Int) {
        for j in 0..<count {
            to.storeBytes(of: from.loadUnaligned(fromByteOffset: j * step, as: T.self), toByteOffset: j * MemoryLayout<T>.size, as: T.self)
        }
    }

    /// A byte-swapped copy of a big-endian storage (elements of `itemSize` bytes; a ragged tail is copied).
    static func byteSwapped(_ record: ZipRecord, itemSize: Int) -> ZipRecord {
        withExtendedLifetime(record.owner) { swapCopy(record, itemSize: itemSize) }
    }

    private static func swapCopy(_ record: ZipRecord, itemSize: Int) -> ZipRecord {
        let out = HeapBuffer(count: record.bytes.count)
        let count = record.bytes.count / itemSize
        if let src = record.bytes.baseAddress {
            let dst = out.pointer
            switch itemSize {
            case 2: swapAll(UInt16.self, src, dst, count)
            case 4: swapAll(UInt32.self, src, dst, count)
            case 8: swapAll(UInt64.self, src, dst, count)
            default: dst.copyMemory(from: src, byteCount: count * itemSize)
            }
            let tail = record.bytes.count - count * itemSize
            if tail > 0 { (dst + count * itemSize).copyMemory(from: src + count * itemSize, byteCount: tail) }
        }
        return ZipRecord(owner: out, bytes: UnsafeRawBufferPointer(out.bytes))
    }

    static func swapAll<T: FixedWidthInteger>(_: T.Type, _ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, _ count: Int) {
        let size = MemoryLayout<T>.size
        for i in 0..<count {
            dst.storeBytes(of: src.loadUnaligned(fromByteOffset: i * size, as: T.self).byteSwapped, toByteOffset: i * size, as: T.self)
        }
    }
}
