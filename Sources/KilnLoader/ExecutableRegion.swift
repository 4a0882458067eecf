// One large reserved range of address space where loaded code and data live.
//
// Layout: a reservation of `size` bytes (PROT_NONE), split in two halves.
// The lower half holds code, the upper half data and slots, so any
// instruction can reach any object of the region with a rip-relative rel32
// (the whole range is below 2 GiB). Both halves are committed on demand, in
// `commitGranularity` steps, from the bottom up:
//
//   code half:  a memfd, grown with ftruncate, mapped twice: read+execute at
//               its place in the reservation (where code runs) and read+write
//               in a separate alias reservation (where the loader writes).
//   data half:  private anonymous read+write pages; never executable.
//
// W^X holds per view: no page of either reservation is ever writable and
// executable at once, and patching live code needs no mprotect flip (the
// alias view is always writable). Thread-local data is not placed here
// (see ThreadLocalData.swift).
//
// Allocation is a bump pointer per half for now; every allocation is handed
// back as a range that its owner records, so the code heap can later free and
// reuse space. The region owns both reservations and the memfd and releases
// them in `deinit`: everything placed in it dies with it.

/// The reserved code-and-data range of a `Loader`; see the file comment.
///
/// Owns its mappings and memfd; `deinit` unmaps everything, so no code or data
/// placed in it may be used after the region ends.
public struct ExecutableRegion: ~Copyable {
    /// Start of the reservation: the lowest code address.
    public let base: UInt
    /// Size of the reservation in bytes.
    public let size: Int
    /// Start of the read+write alias of the code half.
    let aliasBase: UInt
    let memfd: Int32

    /// Bytes committed at the bottom of each half.
    private(set) var committedCode = 0
    private(set) var committedData = 0
    /// Bump pointers: bytes allocated at the bottom of each half.
    private(set) var usedCode = 0
    private(set) var usedData = 0

    /// Commit step: a multiple of the page size.
    static let commitGranularity = 1 << 16

    /// Size of each half.
    public var halfSize: Int { size / 2 }
    /// Start of the data half.
    public var dataBase: UInt { base + UInt(halfSize) }

    /// Reserves `size` bytes (a multiple of twice the commit granularity, at most 2 GiB).
    public init(size: Int = 1 << 30) throws(SystemError) {
        precondition(size > 0 && size <= 1 << 31 && size % (2 * Self.commitGranularity) == 0,
                     "region size \(size) must be a positive multiple of \(2 * Self.commitGranularity), at most 2 GiB")
        let reservation = try System.reserve(size)
        let alias: UnsafeMutableRawPointer
        do {
            alias = try System.reserve(size / 2)
        } catch {
            System.unmap(reservation, size)
            throw error
        }
        let descriptor: Int32
        do {
            descriptor = try System.memfd(name: "kiln-code")
        } catch {
            System.unmap(reservation, size)
            System.unmap(alias, size / 2)
            throw error
        }
        self.base = UInt(bitPattern: reservation)
        self.size = size
        self.aliasBase = UInt(bitPattern: alias)
        self.memfd = descriptor
    }

    deinit {
        System.unmap(UnsafeMutableRawPointer(bitPattern: base)!, size)
        System.unmap(UnsafeMutableRawPointer(bitPattern: aliasBase)!, size / 2)
        System.close(memfd)
    }

    /// Whether `address` lies in the reservation (code or data half).
    public func contains(_ address: UInt) -> Bool {
        address >= base && address - base < UInt(size)
    }

    /// The alias reservation (read+write view of the code half), as an address range.
    public var writableAliasRange: Range<UInt> { aliasBase..<(aliasBase + UInt(halfSize)) }

    /// The writable address through which the code byte at `executableAddress` is written.
    func writableAlias(of executableAddress: UInt) -> UnsafeMutableRawPointer {
        precondition(executableAddress >= base && executableAddress - base < UInt(committedCode),
                     "address is not committed code")
        return UnsafeMutableRawPointer(bitPattern: aliasBase + (executableAddress - base))!
    }

    // MARK: Allocation

    /// Allocates `count` bytes of code at `alignment`; returns the executable address.
    /// The bytes read as zero until written through `writableAlias(of:)`.
    mutating func allocateCode(_ count: Int, alignment: Int) throws(LoadError) -> UInt {
        let start = align(usedCode, alignment)
        let end = start + max(count, 1)
        guard end <= halfSize else { throw .regionFull(kind: "code", requested: count) }
        if end > committedCode {
            let newCommitted = min(align(end, Self.commitGranularity), halfSize)
            do {
                try System.truncate(memfd, to: newCommitted)
                let growth = newCommitted - committedCode
                try System.mapShared(
                    UnsafeMutableRawPointer(bitPattern: base + UInt(committedCode))!, growth,
                    file: memfd, fileOffset: committedCode, writable: false)
                try System.mapShared(
                    UnsafeMutableRawPointer(bitPattern: aliasBase + UInt(committedCode))!, growth,
                    file: memfd, fileOffset: committedCode, writable: true)
            } catch {
                throw .system(error)
            }
            committedCode = newCommitted
        }
        usedCode = end
        return base + UInt(start)
    }

    /// Allocates `count` zeroed bytes of data at `alignment` in the data half.
    mutating func allocateData(_ count: Int, alignment: Int) throws(LoadError) -> UnsafeMutableRawPointer {
        let start = align(usedData, alignment)
        let end = start + max(count, 1)
        guard end <= halfSize else { throw .regionFull(kind: "data", requested: count) }
        if end > committedData {
            let newCommitted = min(align(end, Self.commitGranularity), halfSize)
            do {
                try System.mapAnonymous(
                    UnsafeMutableRawPointer(bitPattern: dataBase + UInt(committedData))!,
                    newCommitted - committedData)
            } catch {
                throw .system(error)
            }
            committedData = newCommitted
        }
        usedData = end
        return UnsafeMutableRawPointer(bitPattern: dataBase + UInt(start))!
    }

    /// Bytes allocated so far in the code and data halves.
    public var usage: (code: Int, data: Int) { (usedCode, usedData) }
}

@inline(__always)
func align(_ value: Int, _ alignment: Int) -> Int {
    (value + alignment - 1) & ~(alignment - 1)
}
