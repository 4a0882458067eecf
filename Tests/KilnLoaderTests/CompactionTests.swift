// Compaction of the code heap under running programs: blocks move while their
// frames are on the stack, and return addresses, call sites, TOC slots and
// callback stubs follow them; frames behind C code pin their blocks.

import KilnCode
@testable import KilnLoader
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A crate whose `depth(n)` recurses n deep, compacts the heap at the bottom, and adds
/// up values computed before and after; calls go through an intra-crate call, a
/// function pointer (stub) kept in data, and a TOC slot of another crate.
let recursiveSource = """
    data $through = { l $leaf }
    function l $leaf(l %x) {
    @start
    	%y =l add %x, 1
    	ret %y
    }
    export function l $depth(l %n) {
    @start
    	jnz %n, @deeper, @bottom
    @deeper
    	%m =l sub %n, 1
    	%r =l call $depth(l %m)
    	%f =l loadl $through
    	%s =l call %f(l %r)
    	%t =l call $helper(l %s)
    	ret %t
    @bottom
    	call $kiln.compact()
    	ret 0
    }
    """

let helperSource = """
    export function l $helper(l %x) {
    @start
    	%y =l add %x, 10
    	ret %y
    }
    """

@Suite struct CompactionTests {
    /// Loads the two crates with random gaps (so compaction has somewhere to slide).
    func load(seed: UInt64) throws -> (Loader, Crate) {
        let loader = try Loader(options: .init(placementSeed: seed))
        let crates = try loader.load([try compile("helper.ssa", helperSource), try compile("recursive.ssa", recursiveSource)])
        return (loader, crates[1])
    }

    @Test func codeMovesUnderItsRunningFrames() throws {
        let (loader, crate) = try load(seed: 7)
        let before = loader.codeBlocks.map(\.entry)
        #expect(try call(crate, "depth", 20) == 20 * 11)
        #expect(loader.statistics.compactions == 1)
        #expect(loader.statistics.blocksMoved > 0)
        // 20 frames of $depth were below the compaction: every return address was rewritten.
        #expect(loader.statistics.returnAddressesPatched >= 20)
        let after = loader.codeBlocks.map(\.entry)
        #expect(after != before)
        #expect(loader.codeBlocks.allSatisfy { $0.moves == 1 })
        // Each moved block's header moved with it and still names it.
        #expect(loader.heap.checkHeaders())
        // Blocks are packed from the bottom of the heap after a slide.
        let first = try #require(loader.codeBlocks.first)
        #expect(first.entry == loader.regionRange.lowerBound + 16)
        // Old places trap: the byte where $depth used to start is now int3, unless
        // another block slid over it.
        #expect(try call(crate, "depth", 3) == 33)
    }

    @Test func compactionFromTheHostPinsNothingItCannotSee() throws {
        let (loader, crate) = try load(seed: 11)
        #expect(try call(crate, "depth", 2) == 22)
        let report = loader.compact()
        #expect(report.blocksMoved == 0)  // already compact after the program's own compaction
        #expect(report.topAfter <= report.topBefore)
        #expect(try call(crate, "depth", 4) == 44)
        #expect(loader.codeBlock(containing: crate.entry(ofFunction: 1) + 3)?.name == "depth")
        #expect(loader.codeBlock(containing: loader.regionRange.lowerBound) == nil)  // a header
    }

    @Test func callbacksFromCSurviveCompactionInside() throws {
        let loader = try Loader(options: .init(placementSeed: 3))
        let crate = try loader.load(try compile("sort.ssa", """
            data $calls = { l 0 }
            function w $compare(l %a, l %b) {
            @start
            	%n =l loadl $calls
            	%n1 =l add %n, 1
            	storel %n1, $calls
            	%low =l and %n, 7
            	jnz %low, @skip, @move
            @move
            	call $kiln.compact()
            @skip
            	%x =w loadw %a
            	%y =w loadw %b
            	%lt =w csltw %x, %y
            	%gt =w csgtw %x, %y
            	%r =w sub %gt, %lt
            	ret %r
            }
            export function l $sortAndCheck(l %count) {
            @start
            	%bytes =l mul %count, 4
            	%array =l call $malloc(l %bytes)
            	%i =l copy 0
            @fill
            	%k =l mul %i, 7919
            	%v =l rem %k, %count
            	%p =l mul %i, 4
            	%q =l add %array, %p
            	storew %v, %q
            	%i =l add %i, 1
            	%more =w csltl %i, %count
            	jnz %more, @fill, @sort
            @sort
            	call $qsort(l %array, l %count, l 4, l $compare)
            	%i =l copy 1
            	%bad =l copy 0
            @check
            	%p =l mul %i, 4
            	%q =l add %array, %p
            	%prev =l sub %q, 4
            	%x =w loadw %prev
            	%y =w loadw %q
            	%wrong =w csgtw %x, %y
            	%w =l extuw %wrong
            	%bad =l add %bad, %w
            	%i =l add %i, 1
            	%more =w csltl %i, %count
            	jnz %more, @check, @done
            @done
            	call $free(l %array)
            	ret %bad
            }
            """))
        #expect(try call(crate, "sortAndCheck", 1000) == 0)
        #expect(loader.statistics.compactions > 100)
        // $sortAndCheck was behind qsort's frames: pinned, not moved by its own compactions,
        // while $compare ran above them and could move.
        #expect(loader.statistics.returnAddressesPatched > 0)
    }

    @Test func stressModeMovesEveryBlockAtEveryEntry() throws {
        let loader = try Loader(options: .init(compactEvery: 1))
        let crates = try loader.load([try compile("helper.ssa", helperSource), try compile("main.ssa", """
            export function l $loop(l %n) {
            @start
            	%i =l copy 0
            	%sum =l copy 0
            @body
            	%v =l call $helper(l %i)
            	%sum =l add %sum, %v
            	%i =l add %i, 1
            	%more =w csltl %i, %n
            	jnz %more, @body, @end
            @end
            	ret %sum
            }
            """)])
        #expect(try call(crates[1], "loop", 50) == (0..<50).reduce(0) { $0 + $1 + 10 })
        #expect(loader.statistics.runtimeEntries == 50)
        #expect(loader.statistics.compactions == 50)
        for block in loader.codeBlocks { #expect(block.moves >= 49, "\(block) moved \(block.moves) times") }
        #expect(loader.heap.checkHeaders())
    }

    @Test func codeAnotherThreadRunsStaysPutWhileTheRestMoves() throws {
        let loader = try Loader(options: .init(placementSeed: 13))
        let crates = try loader.load([try compile("helper.ssa", helperSource), try compile("spin.ssa", """
            export data $stop = { l 0 }
            export data $laps = { l 0 }
            export function l $spin(l %x) {
            @start
            	%i =l copy 0
            @loop
            	%i =l add %i, 1
            	storel %i, $laps
            	%s =l loadl $stop
            	jnz %s, @done, @loop
            @done
            	%r =l call $helper(l %i)
            	ret %r
            }
            """)])
        let (helper, spin) = (crates[0], crates[1])
        let spinStub = UInt(bitPattern: try spin.stub(ofFunction: try #require(spin.functionIndex(named: "spin"))))
        let laps = spin.address(ofData: try #require(spin.dataIndex(named: "laps")))
        let result = Mutex<Int64>(0)
        // A thread started outside Kiln spins inside $spin, calling nothing.
        let thread = onNewThread {
            let value = function(UnsafeRawPointer(bitPattern: spinStub)!, as: IntToInt.self)(0)
            result.withLock { $0 = value }
        }
        while laps.load(as: Int64.self) < 1000 { sched_yield() }
        // Move counts, not entries: an entry kept in this frame would pin its block.
        let spinBlock = spin.blocks[0], helperBlock = helper.blocks[0]
        let (spinMoves, helperMoves) = (spinBlock.moves, helperBlock.moves)
        let report = loader.compact()
        // The spinning thread was stopped and examined: its block stayed, the rest moved.
        #expect(!report.skippedForThreads, "\(report) \(loader.codeBlocks)")
        #expect(report.blocksPinned >= 1)
        #expect(spinBlock.moves == spinMoves)
        #expect(helperBlock.moves == helperMoves + 1, "\(report) \(loader.codeBlocks)")
        let lapsBefore = laps.load(as: Int64.self)
        while laps.load(as: Int64.self) < lapsBefore + 1000 { sched_yield() }
        spin.address(ofData: try #require(spin.dataIndex(named: "stop"))).storeBytes(of: 1, as: Int64.self)
        join(thread)
        // It kept running, and its call into the moved $helper found the new place.
        let finalLaps = laps.load(as: Int64.self)
        #expect(result.withLock { $0 } == finalLaps + 10)
        #expect(loader.heap.checkHeaders())
    }

    @Test func freeListReusesAndCoalesces() {
        var list = FreeList(limit: 1024)
        let a = list.allocate(100, alignment: 16)!, b = list.allocate(100, alignment: 16)!
        let c = list.allocate(100, alignment: 16)!
        #expect([a, b, c] == [0, 112, 224])
        list.free(b..<(b + 100))
        // First fit: the hole left by b (joined with the padding before it) is reused
        // before the space at the top.
        #expect(list.allocate(50, alignment: 8) == 104)
        list.free(104..<154)
        list.free(a..<(a + 100))
        list.free(c..<(c + 100))
        // Every hole joined its neighbours: the whole range is one hole again.
        #expect(list.holes == [0..<1024])
        #expect(list.top == 0)
        #expect(list.allocate(2048, alignment: 16) == nil)
        list.rebuild(around: [16..<32, 64..<80])
        #expect(list.holes == [0..<16, 32..<64, 80..<1024])
        #expect(list.top == 80)
    }
}
