// Zero-filled data costs no memory until the program touches it: the loader
// writes only the non-zero segments of a data object into fresh pages, and a
// freed large object gives its pages back instead of being zeroed by hand.
// Residency is read page by page with mincore, which other tests running in
// the same process cannot disturb (unlike the process's RSS).

import KilnCode
import KilnLoader
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A crate with a 16 MiB data object `$big` (`first` is its first byte) and accessors:
/// `get(i)` reads byte i, `put(i)` writes 7 there, `version()` returns `version`.
func zeroFillSource(first: Int = 0, version: Int = 1) -> String {
    let contents = first == 0 ? "z 16777216" : "b \(first), z 16777215"
    return """
        data $big = { \(contents) }
        export function l $get(l %i) {
        @start
        	%p =l add $big, %i
        	%v =l loadub %p
        	ret %v
        }
        export function l $put(l %i) {
        @start
        	%p =l add $big, %i
        	storeb 7, %p
        	ret 0
        }
        export function l $version(l %x) {
        @start
        	ret \(version)
        }
        """
}

/// How many of the pages that lie wholly inside `count` bytes at `address` are resident.
func residentPages(_ address: UnsafeRawPointer, _ count: Int) throws -> Int {
    let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
    let start = (UInt(bitPattern: address) + page - 1) & ~(page - 1)
    let end = (UInt(bitPattern: address) + UInt(count)) & ~(page - 1)
    guard start < end else { return 0 }
    var vector = [UInt8](repeating: 0, count: Int((end - start) / page))
    let status = mincore(UnsafeMutableRawPointer(bitPattern: start), Int(end - start), &vector)
    try #require(status == 0, "mincore failed: errno \(errno)")
    return vector.reduce(0) { $0 + Int($1 & 1) }
}

let bigSize = 16 << 20

@Suite struct ZeroFillTests {
    @Test func aLargeZeroObjectTakesNoMemoryUntilTouched() throws {
        let loader = try Loader(options: .init())
        let crate = try loader.load(try compile("zeros.ssa", zeroFillSource()))
        let big = crate.address(ofData: try #require(crate.dataIndex(named: "big")))
        #expect(try residentPages(big, bigSize) == 0)
        #expect(try call(crate, "get", Int64(bigSize - 1)) == 0)
        #expect(try call(crate, "put", Int64(bigSize - 1)) == 0)
        #expect(try call(crate, "get", Int64(bigSize - 1)) == 7)
        #expect(try call(crate, "get", 0) == 0)
        // The pages the program read or wrote, and no others.
        #expect(try residentPages(big, bigSize) <= 2)
    }

    @Test func reloadKeepsAnUnchangedObjectAndAReplacedOneUntilReleased() throws {
        let loader = try Loader(options: .init())
        let crate = try loader.load(try compile("zeros.ssa", zeroFillSource()))
        let oldBig = crate.address(ofData: try #require(crate.dataIndex(named: "big")))
        _ = try call(crate, "put", Int64(bigSize - 1))
        // The same definition: the object and the byte the program wrote are kept.
        let kept = try loader.reload(crate, with: try compile("zeros.ssa", zeroFillSource(version: 2)))
        #expect(kept.dataKept == 1 && kept.dataNew == 0)
        #expect(try call(crate, "version") == 2)
        #expect(try call(crate, "get", Int64(bigSize - 1)) == 7)
        // A changed definition: a fresh object with the new contents; the old one stays, with
        // the byte the old code wrote, until the host releases it, and then its pages go back
        // to the kernel.
        let changed = try loader.reload(crate, with: try compile("zeros.ssa", zeroFillSource(first: 5, version: 3)))
        #expect(changed.dataKept == 0 && changed.dataNew == 1)
        #expect(try call(crate, "version") == 3)
        #expect(try call(crate, "get", 0) == 5)
        #expect(try call(crate, "get", Int64(bigSize - 1)) == 0)
        let newBig = crate.address(ofData: try #require(crate.dataIndex(named: "big")))
        #expect(newBig != oldBig)
        #expect(loader.collectCode() >= 0 && loader.replacedDataBytes >= bigSize)
        #expect(oldBig.load(fromByteOffset: bigSize - 1, as: UInt8.self) == 7)
        loader.releaseReplacedData(of: crate)
        #expect(loader.replacedDataBytes == 0)
        #expect(try residentPages(oldBig, bigSize) == 0)
        #expect(try residentPages(newBig, bigSize) <= 2)
    }
}
