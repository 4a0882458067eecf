// The initial contents of a data object, without its zeros.
//
// C compilers emit zero-initialised globals as `z N` (a 16 MiB array is
// `data $a = { z 16777216 }`), and padding and sparse tables as long runs of
// zeros. Such bytes are never stored: a data object is its size plus the
// *segments* that are not zero, and every byte outside them starts as zero.
// A crate file carries only the segments, and the loader writes only them
// into fresh pages (which the kernel hands out zeroed and commits on first
// touch), so a zero run costs neither file bytes nor memory until the
// program writes it.
//
// The segments of given contents are unique (the *canonical* form, which
// `DataContents` builds and `canonicalFormProblem` checks):
//   - segments are in increasing order of offset and lie inside the object;
//   - each starts and ends with a non-zero byte;
//   - inside a segment no run of zeros is `minimumGap` bytes or longer, and
//     between two segments lie at least `minimumGap` zeros.
// So equal contents always have equal segments (a reload compares them), and
// a crate file has one encoding.

/// A run of a data object's initial bytes that starts and ends with a non-zero byte.
public struct DataSegment: Hashable, Sendable {
    /// The offset of the first byte in the object.
    public var offset: UInt32
    /// The bytes, at least one.
    public var bytes: [UInt8]

    /// A segment of `bytes` at `offset`; `CompiledModule.validate()` checks the rules.
    public init(offset: UInt32, bytes: [UInt8]) {
        self.offset = offset
        self.bytes = bytes
    }

    /// The offset just past the last byte.
    public var end: Int { Int(offset) + bytes.count }
}

/// Builds the canonical segments of contents appended front to back; see the file comment.
public struct DataContents: Sendable {
    /// The shortest run of zeros that separates two segments. Shorter runs are stored: a
    /// segment's offset and length cost eight bytes of crate file.
    public static let minimumGap = 32

    /// Bytes appended so far, zeros included: the object's size once everything is in.
    public private(set) var size = 0
    private var closed: [DataSegment] = []
    /// The segment being built (empty before the first non-zero byte) and its offset.
    private var open: [UInt8] = []
    private var openOffset = 0
    /// Zeros appended since the last non-zero byte (or since the start).
    private var pendingZeros = 0

    /// Empty contents, to append to.
    public init() {}

    /// The canonical segments of `bytes`.
    public init(_ bytes: [UInt8]) {
        append(contentsOf: bytes)
    }

    /// The segments of everything appended.
    public var segments: [DataSegment] {
        open.isEmpty ? closed : closed + [DataSegment(offset: UInt32(truncatingIfNeeded: openOffset), bytes: open)]
    }

    /// Appends one byte (a zero is counted, not stored).
    public mutating func append(_ byte: UInt8) {
        if byte == 0 {
            appendZeros(1)
        } else {
            withUnsafeBytes(of: byte) { appendNonZero($0) }
        }
    }

    /// Appends the low `size` bytes of `value`, little-endian (an integer item of the IL).
    public mutating func appendLittleEndian(_ value: UInt64, size: Int) {
        precondition(size >= 0 && size <= 8, "an integer item has 0 to 8 bytes")
        withUnsafeBytes(of: value.littleEndian) { append(contentsOf: UnsafeRawBufferPointer(rebasing: $0.prefix(size))) }
    }

    /// Appends bytes (a string item of the IL, say).
    public mutating func append(contentsOf bytes: [UInt8]) {
        bytes.withUnsafeBytes { append(contentsOf: $0) }
    }

    /// Appends bytes.
    public mutating func append(contentsOf bytes: ArraySlice<UInt8>) {
        bytes.withUnsafeBytes { append(contentsOf: $0) }
    }

    /// Appends bytes, run by run: zeros are counted, other runs copied whole.
    public mutating func append(contentsOf bytes: UnsafeRawBufferPointer) {
        var index = 0
        while index < bytes.count {
            var end = index
            if bytes[index] == 0 {
                while end < bytes.count, bytes[end] == 0 { end += 1 }
                appendZeros(end - index)
            } else {
                while end < bytes.count, bytes[end] != 0 { end += 1 }
                appendNonZero(UnsafeRawBufferPointer(rebasing: bytes[index..<end]))
            }
            index = end
        }
    }

    /// Appends `count` zeros without storing them.
    public mutating func appendZeros(_ count: Int) {
        size += count
        pendingZeros += count
    }

    /// Appends a run of bytes none of which is zero: it continues the open segment, or
    /// starts the next one after a gap of `minimumGap` zeros or more.
    private mutating func appendNonZero(_ run: UnsafeRawBufferPointer) {
        if open.isEmpty || pendingZeros >= Self.minimumGap {
            if !open.isEmpty { closed.append(DataSegment(offset: UInt32(truncatingIfNeeded: openOffset), bytes: open)) }
            open = Array(run)
            openOffset = size
        } else {
            open.append(contentsOf: repeatElement(0, count: pendingZeros))
            open.append(contentsOf: run)
        }
        size += run.count
        pendingZeros = 0
    }

    /// Why `segments` are not the canonical form of an object of `size` bytes, or nil.
    /// Reads every byte of the segments once.
    public static func canonicalFormProblem(size: Int, segments: [DataSegment]) -> String? {
        var previousEnd: Int?
        for (index, segment) in segments.enumerated() {
            let start = Int(segment.offset)
            guard let first = segment.bytes.first, let last = segment.bytes.last else { return "segment \(index) is empty" }
            guard segment.end <= size else {
                return "segment \(index) (bytes \(start)..<\(segment.end)) runs past the end of the object (\(size) bytes)"
            }
            if let previousEnd, start - previousEnd < minimumGap {
                return "segment \(index) at \(start) is less than \(minimumGap) bytes after the end of the one before"
            }
            guard first != 0, last != 0 else { return "segment \(index) at \(start) starts or ends with a zero" }
            var zeros = 0
            for byte in segment.bytes {
                zeros = byte == 0 ? zeros + 1 : 0
                if zeros == minimumGap { return "segment \(index) at \(start) holds a run of \(minimumGap) zeros" }
            }
            previousEnd = segment.end
        }
        return nil
    }
}
