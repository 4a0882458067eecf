// A reload is all or nothing: a failure at any step of preparing it leaves the
// old version running exactly as before (same code, same data, same heap), and
// the next reload still works. The loader's test hook makes step k fail, for
// every k, until a reload gets through.

import KilnCode
@testable import KilnLoader
import Testing

/// A crate with a function that will change in place, one that will grow (fresh), one
/// that goes and one that comes, data that stays and data that changes, thread data, and
/// a function whose address it keeps (a stub).
func faultCrate(_ version: Int) -> String {
    let grow = version == 1 ? "" : (0..<30).map { "\t%p\($0) =l add %x, \($0)\n\tstorel %p\($0), $sink\n" }.joined()
    let parting = version == 1 ? """
        function l $parting(l %x) {
        @start
        	ret %x
        }
        """ : """
        function l $coming(l %x) {
        @start
        	%y =l add %x, 1000
        	ret %y
        }
        """
    return """
        data $sink = { l 0 }
        export data $kept = { l 11 }
        export data $changing = { l \(version * 100) }
        thread data $perThread = { l \(version) }
        data $pointer = { l $small }
        export function l $small(l %x) {
        @start
        	%y =l add %x, \(version)
        	ret %y
        }
        export function l $large(l %x) {
        @start
        \(grow)	%y =l mul %x, \(version + 1)
        	ret %y
        }
        export function l $through(l %x) {
        @start
        	%f =l loadl $pointer
        	%r =l call %f(l %x)
        	%c =l loadl $changing
        	%s =l add %r, %c
        	%t =l loadl $kept
        	%u =l add %s, %t
        	%v =l loadl thread $perThread
        	%w =l add %u, %v
        	ret %w
        }
        \(parting)
        """
}

let faultUser = """
    export function l $useAll(l %x) {
    @start
    	%a =l call $small(l %x)
    	%b =l call $large(l %x)
    	%c =l call $through(l %x)
    	%d =l add %a, %b
    	%e =l add %d, %c
    	ret %e
    }
    """

@Suite(.serialized) struct ReloadFaultTests {
    @Test func aFailureAtAnyStepLeavesTheOldVersionRunning() throws {
        let loader = try Loader(options: .init(placementSeed: 17))
        let crates = try loader.load([try compile("fault.ssa", faultCrate(1)), try compile("user.ssa", faultUser)])
        let (crate, user) = (crates[0], crates[1])
        let expectedBefore = try call(user, "useAll", 5)
        // 6 + 10 + (6 + 100 + 11 + 1)
        #expect(expectedBefore == 6 + 10 + 118)
        let blocksBefore = loader.codeBlocks.map { "\($0.name)@\($0.entry)" }
        let usageBefore = loader.heapUsage
        let threadLayoutBefore = ThreadLocalData.layoutSize - ThreadLocalData.freeBytes
        let next = try compile("fault.ssa", faultCrate(2))
        /// Reloads with step `step` failing: whether it got through, or the error.
        func attempt(_ step: Int) -> LoadError? {
            loader.reloadFaultStep = step
            do {
                try loader.reload(crate, with: next)
                return nil
            } catch {
                return error
            }
        }
        var step = 0
        while step < 100, let error = attempt(step) {
            guard case .injectedFault = error else {
                Issue.record("step \(step): \(error)")
                return
            }
            // Nothing changed: the same blocks where they were, the same heap, the same
            // results, thread data given back.
            #expect(crate.version == 1, "step \(step)")
            #expect(loader.codeBlocks.map { "\($0.name)@\($0.entry)" } == blocksBefore, "step \(step)")
            let usage = loader.heapUsage
            #expect(usage.code == usageBefore.code && usage.data == usageBefore.data && usage.fixed == usageBefore.fixed,
                    "step \(step): \(usage) vs \(usageBefore)")
            #expect(ThreadLocalData.layoutSize - ThreadLocalData.freeBytes == threadLayoutBefore, "step \(step)")
            #expect(try call(user, "useAll", 5) == expectedBefore, "step \(step)")
            step += 1
        }
        loader.reloadFaultStep = nil
        // Steps were injected at every point the preparation passes through.
        #expect(step >= 10, "only \(step) steps")
        #expect(crate.version == 2)
        // 7 + 15 + (7 + 200 + 11 + 2)
        #expect(try call(user, "useAll", 5) == 7 + 15 + 220)
        #expect(try call(crate, "coming", 1) == 1001)
    }
}

@Suite(.serialized) struct ReloadSafetyTests {
    /// An editor that saves by truncating leaves an empty file for a moment: reloading it
    /// would drop what another crate calls. That is refused, naming the user, and the
    /// program keeps running the old version.
    @Test func aReloadThatDropsWhatAnotherCrateUsesIsRefused() throws {
        let loader = try Loader(options: .init())
        let crates = try loader.load([
            try compile("value.ssa", "export function l $value(l %x) {\n@start\n\t%y =l add %x, 1\n\tret %y\n}\nexport data $level = { l 3 }\n"),
            try compile("caller.ssa", "export function l $ask(l %x) {\n@start\n\t%y =l call $value(l %x)\n\tret %y\n}\n"),
            try compile("reader.ssa", "export function l $read(l %x) {\n@start\n\t%y =l loadl $level\n\tret %y\n}\n"),
        ])
        let (value, caller, reader) = (crates[0], crates[1], crates[2])
        // Not yet called: the slot is unbound, and still the call counts as a use.
        let emptied = try compile("value.ssa", "data $unrelated = { l 0 }\n")
        do throws(LoadError) {
            try loader.reload(value, with: emptied)
            Issue.record("the reload went through")
        } catch {
            guard case .reloadDropsExports(let crateName, let symbols) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(crateName == "value.ssa")
            #expect(symbols.map(\.symbol).sorted() == ["level", "value"])
            #expect("\(error)".contains("$value (called by caller.ssa)"), "\(error)")
            #expect("\(error)".contains("$level (address held by reader.ssa)"), "\(error)")
        }
        #expect(value.version == 1)
        #expect(try call(caller, "ask", 41) == 42)
        #expect(try call(reader, "read") == 3)
    }

    /// A pointer to a data object that the program stored at run time (where no record
    /// says so) must keep reading the object it pointed at after a reload changes the
    /// object, and after more reloads place new objects: replaced data is never freed
    /// while the crate is loaded (unless the host releases it).
    @Test func replacedDataStaysIntactForPointersNoRecordKnows() throws {
        let loader = try Loader(options: .init())
        func secretCrate(_ text: String, extra: String = "") -> String {
            """
            export data $holder = { l 0 }
            data $secret = { b "\(text)", b 0 }
            \(extra)
            export function l $remember(l %unused) {
            @start
            	storel $secret, $holder
            	ret 0
            }
            export function l $firstByte(l %unused) {
            @start
            	%p =l loadl $holder
            	%b =l loadub %p
            	ret %b
            }
            """
        }
        let crate = try loader.load(try compile("secret.ssa", secretCrate("old value")))
        _ = try call(crate, "remember")
        let holder = crate.address(ofData: try #require(crate.dataIndex(named: "holder")))
        let pointer = UnsafePointer<CChar>(bitPattern: UInt(holder.load(as: UInt64.self)))!
        #expect(String(cString: pointer) == "old value")
        // The definition changes: new code sees new storage; the held pointer still reads the old.
        try loader.reload(crate, with: try compile("secret.ssa", secretCrate("new value")))
        loader.collectCode()
        #expect(String(cString: pointer) == "old value")
        #expect(try call(crate, "firstByte") == Int64(UInt8(ascii: "o")))
        // More reloads place more objects (another crate's too): none lands on the old one.
        for round in 0..<20 {
            try loader.reload(crate, with: try compile("secret.ssa", secretCrate("value \(round)",
                extra: "data $more\(round) = { b \"password=\(round)\", b 0 }")))
            _ = try loader.load(try compile("other\(round).ssa", "data $word = { b \"password=hunter\(round)\", b 0 }\n"))
            loader.collectCode()
        }
        #expect(String(cString: pointer) == "old value")
        #expect(loader.replacedDataBytes > 0)
        // Until the host says nothing points there any more.
        loader.releaseReplacedData(of: crate)
        #expect(loader.replacedDataBytes == 0)
    }
}

@Suite(.serialized) struct SetjmpAcrossReloadTests {
    /// A function that called setjmp is reloaded (its new code goes elsewhere) and the code
    /// heap compacted many times before longjmp returns into it, last from inside it, where
    /// its frame is walked precisely and so could move: the old block must still be where
    /// the jmp_buf says, since glibc keeps that return address mangled where no scan finds it.
    @Test func longjmpReturnsIntoAFunctionThatWasReloadedAndMoved() throws {
        let loader = try Loader(options: .init(placementSeed: 29))
        let source = { (caught: Int) in """
            data $buffer = { z 512 }
            data $hook = { l 0 }
            export function l $protect(l %x) {
            @start
            	%r =w call $_setjmp(l $buffer)
            	jnz %r, @caught, @try
            @try
            	%h =l loadl $hook
            	call %h()
            	call $kiln.compact()
            	call $kiln.compact()
            	call $longjmp(l $buffer, w 7)
            	ret 0
            @caught
            	%e =l extsw %r
            	%v =l add %e, \(caught)
            	ret %v
            }
            export function l $setHook(l %h) {
            @start
            	storel %h, $hook
            	ret 0
            }
            """ }
        let crate = try loader.load(try compile("jump.ssa", source(100)))
        let hook = UInt(bitPattern: unsafeBitCast(Hook.entry, to: UnsafeRawPointer.self))
        _ = try call(crate, "setHook", Int64(bitPattern: UInt64(hook)))
        var reloads = 0
        Hook.action = {
            Hook.action = {}
            // Reload twice (each time $protect changes) and compact between: the old
            // $protect, which the jmp_buf refers to, must neither move nor go.
            for round in 1...2 {
                if (try? loader.reload(crate, with: try! compile("jump.ssa", source(100 * (round + 1))))) != nil { reloads += 1 }
                for _ in 0..<5 { loader.compact() }
            }
        }
        // The call that set the jump finishes in the first version: 7 + 100.
        #expect(try call(crate, "protect") == 107)
        #expect(reloads == 2)
        // A new call runs the newest version (no hook now: it longjmps at once): 7 + 300.
        Hook.action = {}
        #expect(try call(crate, "protect") == 307)
    }
}
