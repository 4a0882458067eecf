// C code that keeps pointers into JIT code: a registry of handlers, built with
// gcc, holds callback stubs across reloads and compactions; stubs are one per
// function identity, and a host frees only the stubs it alone holds.

import KilnCode
import KilnLoader
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A C registry of `long (*)(long)` handlers, as a shared object built once per process.
enum Registry {
    static let source = """
        static long (*handlers[64])(long);
        static int count;
        void registry_add(long (*handler)(long)) { if (count < 64) handlers[count++] = handler; }
        long registry_call_all(long x) {
            long sum = 0;
            for (int i = 0; i < count; i++) sum += handlers[i](x);
            return sum;
        }
        void registry_clear(void) { count = 0; }
        """

    /// Builds the shared object; its path, or nil without gcc.
    static func build(_ name: String) -> String? {
        let source = temporaryFile("\(name).c", Self.source)
        let library = "/tmp/kiln-loader-test-\(getpid())-\(name).so"
        let status = system("gcc -O2 -shared -fPIC -o \(library) \(source) 2>/dev/null")
        unlink(source)
        return status == 0 ? library : nil
    }
}

func handlersSource(add: Int, multiply: Int, padding: Int = 0) -> String {
    let extra = (0..<padding).map { "\t%p\($0) =l add %x, \($0)\n\tstorel %p\($0), $sink\n" }.joined()
    return """
        data $sink = { l 0 }
        export function l $install(l %unused) {
        @start
        	call $registry_add(l $first)
        	call $registry_add(l $second)
        	ret 0
        }
        function l $first(l %x) {
        @start
        \(extra)	%y =l add %x, \(add)
        	ret %y
        }
        function l $second(l %x) {
        @start
        	%y =l mul %x, \(multiply)
        	ret %y
        }
        """
}

@Suite(.serialized) struct CallbackTests {
    @Test func aCRegistryKeepsWorkingAcrossReloadsAndCompactions() throws {
        let library = try #require(Registry.build("registry"), "gcc is needed to build the C registry")
        defer { unlink(library) }
        let loader = try Loader(linkLibraries: [library], options: .init(placementSeed: 9))
        typealias CallAll = @convention(c) (Int64) -> Int64
        let handle = try #require(dlopen(library, RTLD_NOW | RTLD_NOLOAD))
        defer { dlclose(handle) }
        let callAll = unsafeBitCast(try #require(dlsym(handle, "registry_call_all")), to: CallAll.self)
        unsafeBitCast(try #require(dlsym(handle, "registry_clear")), to: (@convention(c) () -> Void).self)()

        let crate = try loader.load(try compile("handlers.ssa", handlersSource(add: 1, multiply: 2)))
        _ = try call(crate, "install")
        #expect(callAll(10) == 11 + 20)
        let fixed = loader.heapUsage.fixed
        // Reloads re-point the stubs C holds; no new stubs are made.
        try loader.reload(crate, with: try compile("handlers.ssa", handlersSource(add: 100, multiply: 3, padding: 30)))
        #expect(callAll(10) == 110 + 30)
        loader.compact()
        #expect(callAll(10) == 110 + 30)
        for round in 0..<200 {
            let add = round % 7, multiply = round % 5 + 1
            try loader.reload(crate, with: try compile("handlers.ssa", handlersSource(add: add, multiply: multiply, padding: round % 3 * 10)))
            if round % 20 == 0 { loader.compact() }
            #expect(callAll(10) == Int64(10 + add + 10 * multiply))
        }
        #expect(loader.heapUsage.fixed == fixed)
        // Taking the addresses again (install runs twice more) reuses the same two stubs.
        _ = try call(crate, "install")
        _ = try call(crate, "install")
        #expect(loader.heapUsage.fixed == fixed)
        #expect(crate.retiredVersions == 0)
    }

    @Test func hostsFreeOnlyTheStubsTheyAloneHold() throws {
        let loader = try Loader(options: .init())
        let crate = try loader.load(try compile("main.ssa", mainSource + "\n" + utilSource))
        let squareIndex = try #require(crate.functionIndex(named: "square"))
        let twiceIndex = try #require(crate.functionIndex(named: "twice"))
        // $square's address is taken by $pointer: the crate's code holds its stub.
        let shared = try crate.stub(ofFunction: squareIndex)
        let error = #expect(throws: LoadError.self) { try loader.freeStub(shared) }
        #expect(error?.description.contains("used by crate code") == true)
        // Nobody in the crate takes $twice's address: the host's stub is its own.
        let own = try crate.stub(ofFunction: twiceIndex)
        #expect(function(own, as: IntToInt.self)(4) == 8)
        let before = loader.heapUsage.fixed
        try loader.freeStub(own)
        #expect(loader.heapUsage.fixed == before - 16)
        #expect(loader.stubIdentity(own) == nil)
        // Asking again makes a fresh one.
        #expect(function(try crate.stub(ofFunction: twiceIndex), as: IntToInt.self)(5) == 10)
        let misuse = #expect(throws: LoadError.self) { try loader.freeStub(UnsafeRawPointer(bitPattern: 0x1000)!) }
        #expect(misuse?.description == "0x1000 is not a callback stub")
    }
}
