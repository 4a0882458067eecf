// Closures across reloads and compaction: a closure's code field holds the
// function's stub (IL-EXTENSIONS.md), so a closure made before a reload calls
// the new version, and compaction moves the code under it without touching
// the closure. The closure itself lives in an `r` global that the reload
// keeps, and moves with every collection in between.

import KilnCode
import KilnLoader
import Testing

/// A crate whose closure adds `result` to the number it captured.
func closureCrate(adding result: Int) -> String {
    """
    data $saved = { r 0 }
    function l $f(env r %self, l %x) {
    @start
    	%captured =r rload %self, 1
    	%n =l runtag %captured
    	%y =l add %n, \(result)
    	ret %y
    }
    export function l $make(l %n) {
    @start
    	%c =r rclosure $f, 1
    	%t =r rtag %n
    	rstore %t, %c, 1
    	storer %c, $saved
    	ret 0
    }
    export function l $callSaved(l %unused) {
    @start
    	call $kiln.collect()
    	%c =r loadr $saved
    	%p =l rcode %c
    	%r =l call %p(env r %c, l 0)
    	ret %r
    }
    """
}

@Suite(.serialized) struct ClosureReloadTests {
    @Test func aClosureMadeBeforeAReloadCallsTheNewVersion() throws {
        let loader = try Loader(options: .init())
        let crate = try loader.load([try compile("closures.ssa", closureCrate(adding: 100))])[0]
        _ = try call(crate, "make", 5)
        #expect(try call(crate, "callSaved") == 105)
        let report = try loader.reload(crate, with: try compile("closures.ssa", closureCrate(adding: 200)))
        #expect(report.functionsChanged == 1)
        // The global kept the closure (and the closure its captured 5); its code is the new $f.
        #expect(try call(crate, "callSaved") == 205)
        _ = loader.compact()
        #expect(try call(crate, "callSaved") == 205)
        // The old $f ran in no frame and no closure holds its block: it is gone.
        #expect(loader.codeBlocks.filter { $0.name == "f" }.count == 1)
    }
}
