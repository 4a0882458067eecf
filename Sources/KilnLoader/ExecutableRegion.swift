// One large reserved range of address space where loaded code and data live.
//
// Layout: a reservation of `size` bytes split in two halves. The lower half
// holds code (the code heap), the upper half data, TOCs and slots, so any
// instruction can reach any object of the region with a rip-relative rel32
// (the whole range is below 2 GiB).
//
//   code half:  a memfd of the half's size, mapped twice: read+execute at its
//               place in the reservation (where code runs) and read+write in a
//               separate alias reservation (where the runtime writes).
//   data half:  private anonymous read+write pages; never executable.
//
// Both halves are mapped whole when the region is made, but nothing is
// committed: the memfd is sparse and the anonymous pages are MAP_NORESERVE,
// so a page takes memory only when it is first written, and `release` hands
// pages of freed ranges back to the kernel (a hole punched in the memfd,
// MADV_DONTNEED for data). Freed data must read as zero again (the loader
// writes only the non-zero parts of new data): `zeroData` gives the whole
// pages of a large range back rather than writing them, so a 16 MiB array
// that was never touched is never touched on its way out either. The heaps
// on top decide what is used.
//
// Placement: below 4 GiB when that address space is free, so that every
// object of the region has a 32-bit address and QBE's `w $sym` data items
// (32-bit absolute fields, which a non-PIE executable links) can hold it.
// Candidate places are tried from 4 GiB down with MAP_FIXED_NOREPLACE, never
// over anything already mapped; when none is free (many loaders alive at
// once), the region goes wherever the kernel puts it, `isBelow4GiB` is false,
// and a crate with a 32-bit field is refused when it is loaded. Only the
// executable view and the data half need low addresses; the writable alias
// of the code goes anywhere.
//
// W^X holds per view: no page of either reservation is ever writable and
// executable at once, and patching live code needs no mprotect flip (the
// alias view is always writable). Thread-local data is not placed here
// (see ThreadLocalData.swift). The region owns both reservations and the
// memfd and releases them in `deinit`: everything placed in it dies with it.

/// Where a region may be reserved; see the file comment of ExecutableRegion.swift.
public enum RegionPlacement: Sendable {
    /// Below 4 GiB when such address space is free, anywhere otherwise.
    case lowWhenFree
    /// Wherever the kernel puts it (in practice far above 4 GiB).
    case anywhere
}

import Synchronization

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

    /// Size of each half.
    public var halfSize: Int { size / 2 }
    /// Start of the data half.
    public var dataBase: UInt { base + UInt(halfSize) }

    /// Whether the whole reservation lies below 4 GiB, so that every address in it fits in
    /// 32 bits.
    public var isBelow4GiB: Bool { UInt64(base) + UInt64(size) <= 1 << 32 }

    /// Reserves and maps `size` bytes (a multiple of 128 KiB, at most 2 GiB), placed as
    /// `placement` asks.
    public init(size: Int = 1 << 30, placement: RegionPlacement = .lowWhenFree) throws(SystemError) {
        precondition(size > 0 && size <= 1 << 31 && size % (1 << 17) == 0,
                     "region size \(size) must be a positive multiple of 128 KiB, at most 2 GiB")
        let half = size / 2
        let reservation: UnsafeMutableRawPointer
        if placement == .lowWhenFree, let low = Self.reserveBelow4GiB(size) {
            reservation = low
        } else {
            reservation = try System.reserveUnused(size)
        }
        let alias: UnsafeMutableRawPointer
        do {
            alias = try System.reserve(half)
        } catch {
            System.unmap(reservation, size)
            throw error
        }
        let descriptor: Int32
        do {
            descriptor = try System.memfd(name: "kiln-code")
            try System.truncate(descriptor, to: half)
            try System.mapShared(reservation, half, file: descriptor, fileOffset: 0, writable: false)
            try System.mapShared(alias, half, file: descriptor, fileOffset: 0, writable: true)
            try System.mapAnonymous(reservation + half, half)
        } catch {
            System.unmap(reservation, size)
            System.unmap(alias, half)
            throw error
        }
        self.base = UInt(bitPattern: reservation)
        self.size = size
        self.aliasBase = UInt(bitPattern: alias)
        self.memfd = descriptor
    }

    /// The lowest address a low region may start at: the first 256 MiB are left to a
    /// non-PIE host's program and its brk heap.
    static let lowestLowBase: UInt = 256 << 20

    /// How far apart the candidate places of a low region are.
    static let lowPlacementStep: UInt = 128 << 20

    /// A reservation of `size` bytes that ends at or below 4 GiB, at the highest free
    /// candidate place, or nil when none is free.
    private static func reserveBelow4GiB(_ size: Int) -> UnsafeMutableRawPointer? {
        let highest = (UInt(1) << 32) - UInt(size)
        guard highest >= lowestLowBase else { return nil }
        let places = Int((highest - lowestLowBase) / lowPlacementStep) + 1
        // Each reservation starts the search one place further on, so a loader made after
        // another was freed does not land where the old one was (a stale word about the
        // old code on some stack must not look like a reference to the new).
        let first = Int(lowCursor.add(1, ordering: .relaxed).oldValue % UInt(places))
        for step in 0..<places {
            let candidate = highest - UInt((first + step) % places) * lowPlacementStep
            if let reservation = System.reserve(size, at: candidate) { return reservation }
        }
        return nil
    }

    private static let lowCursor = Atomic<UInt>(0)

    deinit {
        System.unmap(UnsafeMutableRawPointer(bitPattern: base)!, size)
        System.unmap(UnsafeMutableRawPointer(bitPattern: aliasBase)!, size / 2)
        System.close(memfd)
    }

    /// Whether `address` lies in the reservation (code or data half).
    public func contains(_ address: UInt) -> Bool {
        address >= base && address - base < UInt(size)
    }

    /// Whether `address` lies in the code half.
    public func containsCode(_ address: UInt) -> Bool {
        address >= base && address - base < UInt(halfSize)
    }

    /// The alias reservation (read+write view of the code half), as an address range.
    public var writableAliasRange: Range<UInt> { aliasBase..<(aliasBase + UInt(halfSize)) }

    /// The writable address through which the code byte at `executableAddress` is written.
    func writableAlias(of executableAddress: UInt) -> UnsafeMutableRawPointer {
        precondition(containsCode(executableAddress), "address is not in the code half")
        return UnsafeMutableRawPointer(bitPattern: aliasBase + (executableAddress - base))!
    }

    /// Makes the data bytes in `range` read as zero. The pages wholly inside a range of
    /// `minimumRelease` bytes or more are given back to the kernel (untouched again, they
    /// take no memory until the next write); the bytes around them, and small ranges, are
    /// written with zeros.
    func zeroData(_ range: Range<UInt>) {
        precondition(range.lowerBound >= dataBase && range.upperBound <= base + UInt(size), "not in the data half")
        let page = UInt(System.pageSize)
        let start = (range.lowerBound + page - 1) & ~(page - 1), end = range.upperBound & ~(page - 1)
        guard range.count >= Self.minimumRelease, start < end else {
            UnsafeMutableRawPointer(bitPattern: range.lowerBound)!.initializeMemory(as: UInt8.self, repeating: 0, count: range.count)
            return
        }
        UnsafeMutableRawPointer(bitPattern: range.lowerBound)!.initializeMemory(as: UInt8.self, repeating: 0,
                                                                                count: Int(start - range.lowerBound))
        System.discard(UnsafeMutableRawPointer(bitPattern: start)!, Int(end - start))
        UnsafeMutableRawPointer(bitPattern: end)!.initializeMemory(as: UInt8.self, repeating: 0, count: Int(range.upperBound - end))
    }

    /// The smallest data range `zeroData` hands back to the kernel rather than writes: below
    /// it, writing zeros costs less than the system call and the page faults that follow.
    static let minimumRelease = 64 << 10

    /// Gives the pages wholly inside `range` back to the kernel; they read as zero afterwards.
    func release(_ range: Range<UInt>) {
        let page = UInt(System.pageSize)
        let start = (range.lowerBound + page - 1) & ~(page - 1)
        let end = range.upperBound & ~(page - 1)
        guard start < end else { return }
        if containsCode(start) {
            System.punchHole(memfd, offset: Int(start - base), count: Int(end - start))
        } else {
            System.discard(UnsafeMutableRawPointer(bitPattern: start)!, Int(end - start))
        }
    }
}

@inline(__always)
func align(_ value: Int, _ alignment: Int) -> Int {
    (value + alignment - 1) & ~(alignment - 1)
}
