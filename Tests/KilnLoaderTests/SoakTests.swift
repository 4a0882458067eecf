// Soak: a program calls continuously on its own thread while another thread
// reloads the crate it calls thousands of times and asks for compactions in
// between. Every result must come from one version or the other, nothing may
// crash, and the heap must end where it started.

import KilnCode
import KilnLoader
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The callee crate in two versions of different sizes: `compute(x)` is 2x+1 or 3x+2, and
/// so is `alternate`, which the caller reaches through a stub kept in its data.
func soakCallee(_ version: Int) -> String {
    let padding = version == 1 ? "" : (0..<24).map { "\t%p\($0) =l add %x, \($0)\n\tstorel %p\($0), $sink\n" }.joined()
    let (factor, offset) = version == 1 ? (2, 1) : (3, 2)
    return """
        data $sink = { l 0 }
        export data $state = { l 0 }
        export function l $compute(l %x) {
        @start
        \(padding)	%y =l mul %x, \(factor)
        	%z =l add %y, \(offset)
        	%s =l loadl $state
        	%s1 =l add %s, 1
        	storel %s1, $state
        	ret %z
        }
        export function l $alternate(l %x) {
        @start
        	%y =l mul %x, \(factor)
        	%z =l add %y, \(offset)
        	ret %z
        }
        """
}

let soakCaller = """
    export data $stop = { l 0 }
    export data $errors = { l 0 }
    export data $calls = { l 0 }
    data $through = { l $alternate }
    function w $good(l %x, l %r) {
    @start
    	%a =l mul %x, 2
    	%a1 =l add %a, 1
    	%b =l mul %x, 3
    	%b1 =l add %b, 2
    	%isA =w ceql %r, %a1
    	%isB =w ceql %r, %b1
    	%ok =w or %isA, %isB
    	ret %ok
    }
    export function l $loop(l %unused) {
    @start
    	%x =l copy 1
    @body
    	%r =l call $compute(l %x)
    	%f =l loadl $through
    	%r2 =l call %f(l %x)
    	%n =l call $labs(l %x)
    	%ok1 =w call $good(l %x, l %r)
    	%ok2 =w call $good(l %n, l %r2)
    	%ok =w and %ok1, %ok2
    	jnz %ok, @counted, @wrong
    @wrong
    	%e =l loadl $errors
    	%e1 =l add %e, 1
    	storel %e1, $errors
    @counted
    	%c =l loadl $calls
    	%c1 =l add %c, 1
    	storel %c1, $calls
    	%x =l add %x, 1
    	%s =l loadl $stop
    	jnz %s, @done, @body
    @done
    	%result =l loadl $errors
    	ret %result
    }
    """

@Suite(.serialized) struct SoakTests {
    @Test func reloadsAndCompactionsUnderAContinuouslyCallingProgram() throws {
        // This thread requests compactions that the program's thread may carry out: let
        // those stop it (a test's thread inherits every signal blocked).
        World.acceptStops()
        let loader = try Loader(options: .init(placementSeed: 5))
        let versions = [try compile("callee.ssa", soakCallee(1)), try compile("callee.ssa", soakCallee(2))]
        let crates = try loader.load([versions[0], try compile("caller.ssa", soakCaller)])
        let (callee, caller) = (crates[0], crates[1])
        let loop = UInt(bitPattern: try caller.stub(ofFunction: try #require(caller.functionIndex(named: "loop"))))
        let baseline = loader.heapUsage
        let outcome = Mutex<Int64>(-1)
        let program = onNewThread {
            let errors = function(UnsafeRawPointer(bitPattern: loop)!, as: IntToInt.self)(0)
            outcome.withLock { $0 = errors }
        }
        var failures: [String] = []
        let reloads = 2000
        for cycle in 1...reloads {
            // This thread reloads while the program runs; the program is stopped meanwhile.
            do {
                try loader.reload(crateNamed: "callee.ssa", with: versions[cycle % 2])
            } catch {
                failures.append("\(error)")
            }
            if cycle % 5 == 0 { loader.requestCompaction() }
        }
        caller.address(ofData: try #require(caller.dataIndex(named: "stop"))).storeBytes(of: 1, as: Int64.self)
        join(program)
        #expect(failures.isEmpty)
        #expect(outcome.withLock { $0 } == 0, "wrong results")
        let calls = caller.address(ofData: try #require(caller.dataIndex(named: "calls"))).load(as: Int64.self)
        #expect(calls >= Int64(reloads))
        // $state kept its value across every reload: it counted every call.
        #expect(callee.address(ofData: try #require(callee.dataIndex(named: "state"))).load(as: Int64.self) == calls)
        #expect(loader.statistics.reloads == reloads)
        // A compaction that could not stop every thread (another test's thread, running with
        // the signal blocked) waits for the next runtime entry, where it may merge with the next.
        #expect(loader.statistics.compactions + loader.statistics.compactionsDeferred >= reloads / 5)
        #expect(loader.statistics.compactions >= reloads / 10)
        #expect(callee.version == reloads + 1)
        // No growth: back to one version, the same code (once compacted), data and stubs.
        loader.collectCode()
        loader.compact()
        #expect(callee.retiredVersions == 0)
        let after = loader.heapUsage
        #expect(after.code == baseline.code && after.data == baseline.data && after.fixed == baseline.fixed,
                "\(after) vs \(baseline)")
    }
}
