// Crates compiled from IL and linked through their TOCs: lazy binding, exports
// and imports across crates, users, the relink section, placement anywhere.

import KilnCode
import KilnCodegen
import KilnIL
import KilnLoader
import Testing

/// Compiles IL text into a module named `name`: the one `compile` of these tests.
func compile(_ name: String, _ text: String) throws -> CompiledModule {
    let (module, diagnostics) = parseAndVerify(SourceFile(name: name, text: text))
    guard diagnostics.isEmpty else { throw CompileFailure(message: diagnostics.map(\.description).joined(separator: "\n")) }
    return try compileModule(module)
}

struct CompileFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

typealias IntToInt = @convention(c) (Int64) -> Int64

/// Calls the exported function `name` of `crate`, which takes and returns an `l`.
func call(_ crate: Crate, _ name: String, _ argument: Int64 = 0) throws -> Int64 {
    let index = try #require(crate.functionIndex(named: name))
    return function(try crate.stub(ofFunction: index), as: IntToInt.self)(argument)
}

let utilSource = """
    export data $counter = { l 40 }
    export function l $twice(l %x) {
    @start
    	%y =l add %x, %x
    	%c =l loadl $counter
    	%c1 =l add %c, 1
    	storel %c1, $counter
    	ret %y
    }
    export function l $square(l %x) {
    @start
    	%y =l mul %x, %x
    	ret %y
    }
    """

let mainSource = """
    export function l $run(l %x) {
    @start
    	%a =l call $twice(l %x)
    	%b =l call $square(l %a)
    	%c =l loadl $counter
    	%d =l add %b, %c
    	ret %d
    }
    export function l $never(l %x) {
    @start
    	%a =l call $kiln_never_defined(l %x)
    	ret %a
    }
    export function l $pointer(l %x) {
    @start
    	ret $square
    }
    """

@Suite struct CrateTests {
    @Test func cratesCallEachOtherThroughLazilyBoundSlots() throws {
        let loader = try Loader(options: .init())
        let crates = try loader.load([try compile("main.ssa", mainSource), try compile("util.ssa", utilSource)])
        let (main, util) = (crates[0], crates[1])
        #expect(main.toc.callSlots == ["twice", "square", "kiln_never_defined"])
        // Every crate that has a function with a stack check also imports the runtime's limit
        // word and grow routine (Procs/ProcStacks.swift).
        #expect(main.toc.addressSlots == ["kiln.stack_limit", "counter", "kiln.grow", "square"])
        // Nothing is bound before the first call: every slot holds its resolver stub.
        for index in main.toc.callSlots.indices {
            #expect(main.toc.value(at: main.toc.callSlotAddress(index)) == main.toc.resolverStubs[index])
        }
        // run(3) = (2*3)^2 + counter, where twice bumped the counter to 41 first.
        #expect(try call(main, "run", 3) == 36 + 41)
        #expect(main.toc.bindings[0] == .crate(name: "util.ssa", symbol: "twice"))
        #expect(main.toc.value(at: main.toc.callSlotAddress(0)) == util.entry(ofFunction: 0))
        #expect(main.toc.value(at: main.toc.callSlotAddress(1)) == util.entry(ofFunction: 1))
        // The import nobody calls was never resolved, and its absence is no error.
        #expect(main.toc.bindings[2] == nil)
        #expect(loader.statistics.bindings == 2)
        #expect(try call(main, "run", 3) == 36 + 42)
        #expect(loader.statistics.bindings == 2)
        // Address slots were bound at link time to stable addresses.
        #expect(main.toc.value(at: main.toc.addressSlotAddress(1)) == UInt(bitPattern: util.address(ofData: 0)))
        let squareStub = UInt(bitPattern: try util.stub(ofFunction: 1))
        #expect(UInt(try call(main, "pointer")) == squareStub)
        #expect(util.users.map(\.name) == ["main.ssa"])
        #expect(main.users.isEmpty)
    }

    @Test func duplicateExportsAndCrateNamesAreRefused() throws {
        let loader = try Loader()
        _ = try loader.load(try compile("util.ssa", utilSource))
        let again = try compile("other.ssa", "export function l $twice(l %x) {\n@start\n\tret %x\n}\n")
        let error = #expect(throws: LoadError.self) { try loader.load(again) }
        #expect(error?.description == "$twice is exported by both util.ssa and other.ssa")
        let sameName = try compile("util.ssa", "function l $private(l %x) {\n@start\n\tret %x\n}\n")
        let nameError = #expect(throws: LoadError.self) { try loader.load(sameName) }
        #expect(nameError?.description == "a crate named util.ssa is already loaded")
        // Within one batch too, and nothing of the batch stays loaded.
        let fresh = try Loader()
        let batchError = #expect(throws: LoadError.self) {
            try fresh.load([try compile("a.ssa", utilSource), try compile("b.ssa", utilSource)])
        }
        #expect(batchError?.description == "$twice is exported by both a.ssa and b.ssa")
        #expect(fresh.loadedCrates.isEmpty)
        #expect(fresh.heapUsage.code == 0 && fresh.heapUsage.data == 0)
    }

    @Test func relinkSectionIndexesEveryReferenceBothWays() throws {
        let loader = try Loader(options: .init())
        let crates = try loader.load([try compile("main.ssa", mainSource), try compile("util.ssa", utilSource)])
        let main = crates[0], util = crates[1]
        let relink = main.relink
        // By pointee: the call slot of $twice is used by one record of $run; the symbol
        // $twice by the TOC slot; $square by a call slot and an address slot.
        let twiceUsers = relink.pointers(to: .callSlot(0))
        #expect(twiceUsers.count == 1)
        guard case .code(function: 0, let record)? = twiceUsers.first else {
            Issue.record("wrong pointer \(twiceUsers)")
            return
        }
        #expect(main.module.functions[0].relocations[record].target == .callSlot("twice"))
        #expect(relink.pointers(to: .symbol("twice")) == [.callSlot(0)])
        #expect(Set(relink.pointers(to: .symbol("square"))) == [.callSlot(1), .addressSlot(3)])
        #expect(Set(relink.importedSymbols) == ["twice", "square", "counter", "kiln_never_defined", "kiln.stack_limit", "kiln.grow"])
        // By pointer: every record of every object and every slot, and nothing else.
        let recordCount = main.module.functions.reduce(0) { $0 + $1.relocations.count }
            + main.module.data.reduce(0) { $0 + $1.relocations.count }
        #expect(relink.byPointer.count == recordCount + main.toc.callSlots.count + main.toc.addressSlots.count)
        for (pointer, pointee) in relink.byPointer {
            #expect(relink.pointers(to: pointee).contains(pointer))
        }
        // Inside util, $run's counterpart: the data object is referenced by both loads and the store.
        #expect(util.relink.pointers(to: .data(0)).count == 2)
    }

    @Test func cratesLoadAtRandomisedAddresses() throws {
        var entries = Set<UInt>()
        var results = Set<Int64>()
        for seed in 1...6 as ClosedRange<UInt64> {
            let loader = try Loader(options: .init(placementSeed: seed))
            let crates = try loader.load([try compile("main.ssa", mainSource), try compile("util.ssa", utilSource)])
            entries.insert(crates[0].entry(ofFunction: 0) - loader.regionRange.lowerBound)
            results.insert(try call(crates[0], "run", 5))
        }
        #expect(entries.count == 6, "offsets of $run: \(entries)")
        #expect(results.count == 1 && results.first == 100 + 41, "\(results)")
    }

    @Test func loadingIntoTheSameHeapReusesFreedSpace() throws {
        let loader = try Loader(options: .init())
        // A batch that fails late gives back what it took, and the next load reuses it.
        let before = loader.heapUsage
        let broken = try compile("broken.ssa", "data $p = { l $kiln_nothing_here }\n" + utilSource)
        #expect(throws: LoadError.self) { try loader.load(broken) }
        #expect(loader.heapUsage == before)
        let util = try loader.load(try compile("util.ssa", utilSource))
        #expect(util.entry(ofFunction: 0) == loader.regionRange.lowerBound + 16)
    }
}

@Suite struct CrateFileLoadingTests {
    @Test func crateFilesLoadAtRandomisedAddressesAndRun() throws {
        let main = CrateFile.encode(try compile("main.ssa", mainSource))
        let util = CrateFile.encode(try compile("util.ssa", utilSource))
        var offsets = Set<UInt>()
        for seed in 20...25 as ClosedRange<UInt64> {
            let loader = try Loader(options: .init(placementSeed: seed))
            let crates = try loader.load([try CrateFile.decode(main), try CrateFile.decode(util)])
            #expect(try call(crates[0], "run", 3) == 36 + 41)
            offsets.insert(crates[1].entry(ofFunction: 0) - loader.regionRange.lowerBound)
        }
        #expect(offsets.count == 6)
    }

    /// Damaged crate files that still decode must load (or be refused) without harm; the
    /// long run of the decoder is libFuzzer's (scripts/fuzz-crate.sh).
    @Test func damagedCrateFilesNeverHarmTheLoader() throws {
        let seeds = [
            CrateFile.encode(try compile("main.ssa", mainSource)),
            CrateFile.encode(try compile("util.ssa", utilSource)),
            CrateFile.encode(try compile("recursive.ssa", recursiveSource)),
        ]
        let loader = try Loader(options: .init())
        var state: UInt64 = 0x5EED
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 11
        }
        var loaded = 0, refused = 0
        for round in 0..<3000 {
            var bytes = seeds[Int(next() % 3)]
            for _ in 0...(next() % 3) {
                let at = CrateFile.headerLength + Int(next() % UInt64(bytes.count - CrateFile.headerLength))
                if next() % 2 == 0 { bytes[at] ^= UInt8(1 << (next() % 8)) } else { bytes[at] = UInt8(truncatingIfNeeded: next()) }
            }
            CrateFile.reseal(&bytes)
            guard var module = try? CrateFile.decode(bytes) else {
                refused += 1
                continue
            }
            module.name = "damaged-\(round)"
            do {
                let crate = try loader.load(module)
                loaded += 1
                try loader.unload(crate)
            } catch {
                refused += 1
            }
        }
        #expect(refused > 0, "no damaged file was refused; the mutations are not damaging anything")
        #expect(loaded > 0, "no damaged file got past the decoder; the test is not testing the loader")
        #expect(loader.loadedCrates.isEmpty && loader.heapUsage.code == 0)
    }
}

@Suite struct LoaderLifetimeTests {
    @Test func aLoaderAndItsCratesAreFreedTogether() throws {
        weak var weakLoader: Loader?
        var crate: Crate?
        do {
            let loader = try Loader(options: .init())
            weakLoader = loader
            crate = try loader.load(try compile("util.ssa", utilSource))
        }
        // A crate handle keeps its loader alive...
        #expect(weakLoader != nil)
        #expect(try call(crate!, "twice", 4) == 8)
        // ...and once the host lets go of both, the loader (its heap and memfd) goes.
        crate = nil
        #expect(weakLoader == nil)
    }
}
