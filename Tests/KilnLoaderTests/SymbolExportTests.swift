// Crate exports seen by C: a shared object built with gcc, opened by a crate with
// dlopen (RTLD_NOW, so every undefined symbol must resolve then), calls back into
// another crate's export, before and after a reload, and a second object opened after
// the reload uses an export the reload added. Without `exportSymbols` the same open
// fails on the undefined symbol. The forwarding object itself is read by readelf and
// by the dynamic linker.

import KilnCode
@testable import KilnLoader
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct SymbolExportTests {
    /// A name no earlier test in this process has published (names stay for its life).
    let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)

    /// Builds `source` into a shared object; its path.
    func library(_ name: String, _ source: String) throws -> String {
        let file = temporaryFile("\(name)-\(suffix).c", source)
        defer { unlink(file) }
        let path = "/tmp/kiln-loader-test-\(getpid())-\(name)-\(suffix).so"
        #expect(system("gcc -O2 -shared -fPIC -o \(path) \(file)") == 0, "gcc could not build \(name)")
        return path
    }

    func utilSource(_ factor: Int, withOffset: Bool) -> String {
        var text = "export function l $scale_\(suffix)(l %x) {\n@start\n\t%y =l mul %x, \(factor)\n\tret %y\n}\n"
        if withOffset { text += "export function l $offset_\(suffix)(l %x) {\n@start\n\t%y =l add %x, 7\n\tret %y\n}\n" }
        return text
    }

    /// `$open(path)`: dlopen(path, RTLD_NOW), then calls its `via_c(4)`; -1 when the open fails.
    let opener = """
        export function l $open(l %path) {
        @start
        	%h =l call $dlopen(l %path, w 2)
        	jnz %h, @found, @missing
        @missing
        	ret -1
        @found
        	%f =l call $dlsym(l %h, l $symbol)
        	%r =l call %f(l 4)
        	ret %r
        }
        data $symbol = { b "via_c", b 0 }
        """

    @Test func aLibraryOpenedLaterCallsCrateExportsAcrossAReload() throws {
        let first = try library("first", "long scale_\(suffix)(long);\nlong via_c(long x) { return scale_\(suffix)(x) + 1; }\n")
        let control = try library("control", "long scale_\(suffix)(long);\nlong via_c(long x) { return scale_\(suffix)(x) + 2; }\n")
        let second = try library("second", "long offset_\(suffix)(long);\nlong via_c(long x) { return offset_\(suffix)(x) * 2; }\n")
        defer { for path in [first, control, second] { unlink(path) } }
        let loader = try Loader(options: .init())
        let crates = try loader.load([try compile("opener.ssa", opener), try compile("util.ssa", utilSource(10, withOffset: false))])
        let (main, util) = (crates[0], crates[1])
        func open(_ path: String) throws -> Int64 {
            try path.withCString { try call(main, "open", Int64(Int(bitPattern: $0))) }
        }
        // Not exported yet: the dynamic linker does not know $scale.
        #expect(try open(control) == -1)
        let reason = String(cString: dlerror())
        #expect(reason.contains("undefined symbol: scale_\(suffix)"), "\(reason)")

        try loader.exportSymbols(of: util)
        #expect(loader.symbolsExportedToC == ["scale_\(suffix)"])
        #expect(try open(first) == 4 * 10 + 1)
        // The library keeps its binding; the reload re-points the stub behind it, and
        // publishes the export it adds.
        try loader.reload(util, with: try compile("util.ssa", utilSource(100, withOffset: true)))
        #expect(try open(first) == 4 * 100 + 1)
        #expect(Set(loader.symbolsExportedToC) == ["scale_\(suffix)", "offset_\(suffix)"])
        #expect(try open(second) == (4 + 7) * 2)
        // Compaction moves the code, not the symbols.
        loader.requestCompaction()
        #expect(try open(first) == 4 * 100 + 1)
        // The stub behind a published symbol is not the host's to free.
        let stub = try util.stub(ofFunction: 0)
        #expect(throws: LoadError.self) { try loader.freeStub(stub) }
        // Publishing again adds nothing.
        try loader.exportSymbols(of: util)
        #expect(loader.symbolExports.objects.count == 2)
    }

    @Test func theForwardingObjectIsASharedObjectTheDynamicLinkerReads() throws {
        let names = ["alpha", "beta_gamma"] + (0..<60).map { "symbol_\($0)_\(suffix)" }
        let object = ForwardingObject(soname: "kiln-test-\(suffix).so", names: names)
        let path = "/tmp/kiln-loader-test-\(getpid())-forwarding.so"
        let file = fopen(path, "w")!
        _ = object.bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        fclose(file)
        defer { unlink(path) }
        // binutils' view of the headers.
        let pipe = popen("readelf -W --dynamic --program-headers \(path) 2>&1", "r")!
        var output = ""
        var buffer = [CChar](repeating: 0, count: 4096)
        while fgets(&buffer, Int32(buffer.count), pipe) != nil { output += String(cString: buffer) }
        #expect(pclose(pipe) == 0, "\(output)")
        #expect(output.contains("Library soname: [kiln-test-\(suffix).so]"), "\(output)")
        #expect(output.contains("GNU_STACK"), "\(output)")
        #expect(!output.contains("RWE"), "\(output)")
        // The dynamic linker's: every name found through the hash table, at its stub.
        let handle = try #require(dlopen(path, RTLD_NOW | RTLD_LOCAL), "\(String(cString: dlerror()))")
        let base = UInt(bitPattern: try #require(dlsym(handle, names[0]))) - UInt(object.stubOffsets[0])
        for (index, name) in names.enumerated() {
            let address = dlsym(handle, name).map { UInt(bitPattern: $0) }
            #expect(address == base + UInt(object.stubOffsets[index]), "\(name)")
        }
        #expect(dlsym(handle, "symbol_60_\(suffix)") == nil)
        // Each stub is jmp [rip + disp32] to its own slot.
        for index in names.indices {
            let stub = object.stubOffsets[index]
            #expect(Array(object.bytes[stub..<(stub + 2)]) == [0xff, 0x25])
            let displacement = object.bytes[(stub + 2)..<(stub + 6)].reversed().reduce(0) { $0 << 8 | Int($1) }
            #expect(stub + 6 + displacement == object.slotOffsets[index])
        }
        dlclose(handle)
    }
}
