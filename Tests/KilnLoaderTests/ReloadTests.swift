// Hot reload and the code collector: new calls enter new code, calls in
// progress finish in old code, unchanged globals keep their values, failed
// reloads change nothing, relinking touches only what changed, and old code
// is freed once nothing runs in it.

import KilnCode
import KilnLoader
import Testing

/// `util` in two versions: `twice` differs, `square` and `$counter` do not, `$fresh` is
/// new in the second and changed in its initialiser.
func utilVersion(_ factor: Int, padding: Int = 0, fresh: Int = 7) -> String {
    // Padding that survives optimisation: each value is stored.
    let extra = (0..<padding).map { "\t%p\($0) =l add %x, \($0)\n\tstorel %p\($0), $sink\n" }.joined()
    return """
        data $sink = { l 0 }
        export data $counter = { l 40 }
        export data $fresh = { l \(fresh) }
        export function l $twice(l %x) {
        @start
        \(extra)	%y =l mul %x, \(factor)
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
        export function l $readFresh(l %x) {
        @start
        	%f =l loadl $fresh
        	ret %f
        }
        """
}

/// Hooks a test can have generated code call in the middle of a function.
enum Hook {
    nonisolated(unsafe) static var action: () -> Void = {}
    static let entry: @convention(c) () -> Void = { Hook.action() }
}

@Suite(.serialized) struct ReloadTests {
    func loadPair(_ loader: Loader, util: String = utilVersion(2)) throws -> (main: Crate, util: Crate) {
        let crates = try loader.load([try compile("main.ssa", mainSource), try compile("util.ssa", util)])
        return (crates[0], crates[1])
    }

    @Test func newCallsEnterNewCodeAndUnchangedGlobalsKeepTheirValues() throws {
        let loader = try Loader(options: .init())
        let (main, util) = try loadPair(loader)
        #expect(try call(main, "run", 3) == 36 + 41)
        let report = try loader.reload(util, with: try compile("util.ssa", utilVersion(3, padding: 40, fresh: 9)))
        #expect(report.functionsChanged == 1 && report.functionsUnchanged == 2)
        #expect(report.dataKept == 2 && report.dataNew == 1)
        #expect(report.rewrittenInPlace == 0)  // the new $twice is bigger than the old block
        #expect(util.version == 2)
        // run(3) = (3*3)^2 + counter: the counter kept its value (41) and went on to 42.
        #expect(try call(main, "run", 3) == 81 + 42)
        #expect(try call(util, "readFresh") == 9)
        // The TOC slot of main bound to $twice follows it; the one bound to $square did not move.
        #expect(main.toc.value(at: main.toc.callSlotAddress(0)) == util.entry(ofFunction: 0))
        #expect(report.slotsRewritten == 1)
        // The old $twice ran in no frame: the collector freed it at once.
        #expect(report.blocksFreed == 1)
        #expect(util.retiredVersions == 0)
    }

    @Test func aChangedFunctionThatFitsIsRewrittenInPlace() throws {
        let loader = try Loader(options: .init())
        let (main, util) = try loadPair(loader, util: utilVersion(2, padding: 20))
        #expect(try call(main, "run", 1) == 4 + 41)
        // The block, not its entry: a word on the stack that points into the code would
        // (rightly) keep the reload from writing over it.
        let block = util.blocks[0]
        let report = try loader.reload(util, with: try compile("util.ssa", utilVersion(5)))
        #expect(report.rewrittenInPlace == 1)
        #expect(util.blocks[0] === block)
        #expect(report.slotsRewritten == 0 && report.blocksFreed == 0)
        #expect(try call(main, "run", 1) == 25 + 42)
    }

    @Test func callsInProgressFinishInTheOldCode() throws {
        let loader = try Loader(options: .init())
        let source = { (result: Int) in """
            data $hook = { l 0 }
            export function l $work(l %x) {
            @start
            	%h =l loadl $hook
            	call %h()
            	%r =l add %x, \(result)
            	ret %r
            }
            export function l $setHook(l %h) {
            @start
            	storel %h, $hook
            	ret 0
            }
            """ }
        let crate = try loader.load(try compile("worker.ssa", source(100)))
        let hook = UInt(bitPattern: unsafeBitCast(Hook.entry, to: UnsafeRawPointer.self))
        _ = try call(crate, "setHook", Int64(bitPattern: UInt64(hook)))
        var report: Loader.ReloadReport?
        var reasons: [String] = []
        Hook.action = {
            Hook.action = {}
            report = try? loader.reload(crate, with: try! compile("worker.ssa", source(200)))
            reasons = loader.liveBlockReasons().filter { $0.block.name == "work" }.map(\.reason)
        }
        // The reload happens inside $work: that call finishes in the old code...
        #expect(try call(crate, "work", 1) == 101)
        let reloaded = try #require(report)
        // ...whose block the collector had to keep, since a frame ran in it.
        #expect(reloaded.rewrittenInPlace == 0 && reloaded.blocksFreed == 0)
        #expect(crate.retiredVersions == 1)
        // Two $work blocks were alive during the call, and the loader says why.
        #expect(reasons.sorted() == ["a word on the stack points into it", "current version 2 of crate worker.ssa"])
        // The hook pointer is data whose definition did not change: kept. New calls: new code.
        #expect(try call(crate, "work", 1) == 201)
        #expect(loader.collectCode() == 1)
        #expect(crate.retiredVersions == 0)
    }

    @Test func aFailedReloadChangesNothing() throws {
        let loader = try Loader(options: .init())
        let (main, util) = try loadPair(loader)
        #expect(try call(main, "run", 2) == 16 + 41)
        let usage = loader.heapUsage
        let broken = utilVersion(9) + "\ndata $p = { l $kiln_not_defined_anywhere }\n"
        let error = #expect(throws: LoadError.self) { try loader.reload(util, with: try compile("util.ssa", broken)) }
        #expect(error?.description == "util.ssa: undefined symbol $kiln_not_defined_anywhere, used by $p")
        #expect(loader.heapUsage == usage)
        #expect(util.version == 1)
        #expect(try call(main, "run", 2) == 16 + 42)
        // Dropping an export another crate holds the address of is refused too.
        let dropped = utilVersion(2).replacingCounter()
        let dropError = #expect(throws: LoadError.self) { try loader.reload(util, with: try compile("util.ssa", dropped)) }
        #expect(dropError?.description.contains("$counter") == true)
        #expect(try call(main, "run", 2) == 16 + 43)
    }

    @Test func relinkingTouchesOnlyWhatChanged() throws {
        let loader = try Loader(options: .init())
        // Fifty functions that all call $leaf, and one that calls $other.
        func crateSource(leafAdds: Int) -> String {
            var text = "function l $leaf(l %x) {\n@start\n\t%y =l add %x, \(leafAdds)\n\tret %y\n}\n"
            text += "function l $other(l %x) {\n@start\n\tret %x\n}\n"
            for index in 0..<50 {
                text += "export function l $f\(index)(l %x) {\n@start\n\t%y =l call $leaf(l %x)\n\t%z =l add %y, \(index)\n\tret %z\n}\n"
            }
            text += "export function l $g(l %x) {\n@start\n\t%y =l call $other(l %x)\n\tret %y\n}\n"
            return text
        }
        let crate = try loader.load(try compile("many.ssa", crateSource(leafAdds: 1)))
        #expect(try call(crate, "f10", 5) == 16)
        let report = try loader.reload(crate, with: try compile("many.ssa", crateSource(leafAdds: 1000)))
        #expect(report.functionsChanged == 1 && report.functionsUnchanged == 52)
        #expect(report.tocKept)
        if report.rewrittenInPlace == 0 {
            // $leaf moved: exactly the fifty call sites were relinked, nothing else.
            #expect(report.recordsReapplied == 50)
        } else {
            #expect(report.recordsReapplied == 0)
        }
        #expect(try call(crate, "f10", 5) == 1015)
        #expect(try call(crate, "g", 5) == 5)
    }

    @Test func manyReloadsReturnTheHeapToItsBaseline() throws {
        let loader = try Loader(options: .init())
        let (main, util) = try loadPair(loader)
        let versions = [try compile("util.ssa", utilVersion(2)), try compile("util.ssa", utilVersion(3, padding: 30))]
        _ = try call(main, "run", 1)
        let baseline = loader.heapUsage
        let blocks = loader.codeBlocks.count
        for cycle in 0..<400 {
            try loader.reload(util, with: versions[(cycle + 1) % 2])
            let factor: Int64 = cycle % 2 == 0 ? 3 : 2
            let counter = Int64(41 + cycle + 1)
            #expect(try call(main, "run", 1) == factor * factor + counter)
            if cycle % 50 == 49 { loader.compact() }
        }
        #expect(util.retiredVersions == 0)
        #expect(loader.codeBlocks.count == blocks)
        let after = loader.heapUsage
        #expect(after.data == baseline.data && after.fixed == baseline.fixed)
        loader.compact()
        #expect(loader.heapUsage.code == baseline.code)
        #expect(loader.statistics.reloads == 400)
    }

    @Test func unloadingMakesCallsFailAndFreesTheCode() throws {
        let loader = try Loader(options: .init())
        let helper = try loader.load(try compile("helper.ssa", helperSource))
        let user = try loader.load(try compile("user.ssa", """
            export function l $viaHelper(l %x) {
            @start
            	%y =l call $helper(l %x)
            	ret %y
            }
            """))
        #expect(try call(user, "viaHelper", 1) == 11)
        let stub = try helper.stub(ofFunction: 0)
        try loader.unload(helper)
        #expect(!helper.isLoaded)
        #expect(loader.crate(named: "helper.ssa") == nil)
        // The call slot went back to its resolver stub: the next call would fail by name.
        #expect(user.toc.value(at: user.toc.callSlotAddress(0)) == user.toc.resolverStubs[0])
        #expect(loader.codeBlocks.map(\.name) == ["viaHelper"])
        #expect(loader.stubIdentity(stub)?.function == "helper")
        // Loading a crate of the same name again revives the same stub.
        let again = try loader.load(try compile("helper.ssa", helperSource))
        #expect(try again.stub(ofFunction: 0) == stub)
        #expect(function(stub, as: IntToInt.self)(5) == 15)
        #expect(try call(user, "viaHelper", 2) == 12)
    }

    @Test func unloadingACrateWhoseAddressesOthersHoldIsRefusedPlainly() throws {
        let loader = try Loader(options: .init())
        let util = try loader.load(try compile("util.ssa", utilVersion(2)))
        _ = try loader.load(try compile("holder.ssa", "data $p = { l $counter }\ndata $q = { l $twice, l $counter }\n"))
        let error = #expect(throws: LoadError.self) { try loader.unload(util) }
        #expect(error?.description == "cannot unload util.ssa: other crates hold the address of its exports: "
            + "$counter (held by holder.ssa); $twice (held by holder.ssa)")
        #expect(util.isLoaded)
    }

    @Test func callbackStubsFollowReloadsAndAreSharedByVersions() throws {
        let loader = try Loader(options: .init())
        let (main, util) = try loadPair(loader)
        let stub = UInt(bitPattern: try util.stub(ofFunction: 1))
        #expect(UInt(try call(main, "pointer")) == stub)
        try loader.reload(util, with: try compile("util.ssa", utilVersion(4).replacingSquare()))
        // One stub per function identity, across versions, re-pointed at the new code.
        #expect(UInt(bitPattern: try util.stub(ofFunction: 1)) == stub)
        #expect(UInt(try call(main, "pointer")) == stub)
        #expect(function(UnsafeRawPointer(bitPattern: stub)!, as: IntToInt.self)(7) == 7 * 7 * 7)
    }
}

extension String {
    /// The util source without the export of `$counter`.
    func replacingCounter() -> String {
        split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix("export data $counter") ? "data $counter = { l 40 }" : String($0) }
            .joined(separator: "\n")
    }

    /// The util source with `$square` computing a cube.
    func replacingSquare() -> String {
        split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0 == "\t%y =l mul %x, %x" ? "\t%s =l mul %x, %x\n\t%y =l mul %s, %x" : String($0) }
            .joined(separator: "\n")
    }
}
