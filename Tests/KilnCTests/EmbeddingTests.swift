// The C embedding API: examples/embed/host.c built with gcc against the shared library
// SwiftPM builds (libKilnC.so) and run, its whole output checked; then the entries
// called directly, for what a C host cannot easily arrange: a call refused while another
// thread has the world stopped, handles used from several threads, every crate and
// loader handle made invalid by freeing its loader, crate files, and exports made global
// symbols (with small C hosts in child processes for calls that end the process).

import Foundation
import KilnCode
import KilnCodegen
import KilnIL
@testable import KilnLoader
import Synchronization
import Testing
import KilnC

/// The package's root folder (this file is Tests/KilnCTests/EmbeddingTests.swift).
private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// The folder SwiftPM builds products into (where libKilnC.so is).
private func productsFolder() -> URL {
    Bundle.main.bundleURL.path.hasSuffix(".xctest") ? Bundle.main.bundleURL.deletingLastPathComponent() : Bundle.main.bundleURL
}

/// Runs a program; its exit status and standard output and error.
private func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let output = Pipe(), error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    let errorData = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
}

private let programSource = """
    export function w $main(w %argc, l %argv) {
    @start
    	%p =l add %argv, 8
    	%a =l loadl %p
    	%q =l add %argv, 16
    	%b =l loadl %q
    	%r =w call $printf(l $fmt, ..., w %argc, l %a, l %b)
    	ret 5
    }
    data $fmt = { b "program: %d arguments, %s %s\\n", b 0 }
    """

@Suite(.serialized) struct EmbeddingTests {
    @Test func theExampleHostBuildsAndRuns() throws {
        let library = productsFolder().appendingPathComponent("libKilnC.so").path
        #expect(FileManager.default.fileExists(atPath: library), "libKilnC.so not built at \(library)")
        let directory = NSTemporaryDirectory() + "kiln-embed-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let host = directory + "/host"
        let build = try run("/usr/bin/gcc", ["-Wall", "-Werror", "-o", host, packageRoot.path + "/examples/embed/host.c",
                                             "-I", packageRoot.path + "/Sources/KilnC/include",
                                             "-L", productsFolder().path, "-lKilnC", "-Wl,-rpath," + productsFolder().path])
        #expect(build.status == 0, "\(build.error)")
        let program = directory + "/program.txt"
        try programSource.write(toFile: program, atomically: true, encoding: .utf8)
        let result = try run(host, [program])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.error.isEmpty, "\(result.error)")
        #expect(result.output == """
            kiln 0.1.0 (crate file format 3)
            v1: scale(7) = 70, apply(add_one, 4) = 50
            v2: scale(7) = 700, apply(add_one, 4) = 500
            broken reload: 3: scale.ssa:3:6: error: temporary %nothing is used but never defined
            after it: scale(7) = 700
            no such function: 5: scale.ssa has no function $nothing
            null name: 1: the function name is NULL
            crate as loader: 2: handle 2 is a crate, not a loader
            too many arguments: 1: kiln_call passes 0 to 6 arguments, not 7
            made-up handle: 2: no crate has handle 987654321 (never loaded, unloaded, or its loader freed)
            program: 3 arguments, from host
            main returned 5
            stale crate: 2: no crate has handle 2 (never loaded, unloaded, or its loader freed)
            stale loader: 2: no loader has handle 1 (never made, or freed)
            last error after a success: ""

            """, "\(result.output)")
    }

    @Test func aCallFromAThreadLeftRunningDuringAStopIsRefused() throws {
        var loader: UInt64 = 0, crate: UInt64 = 0
        #expect(kiln_loader_create(&loader) == 0)
        defer { _ = kiln_loader_free(loader) }
        let text = "export function l $f(l %x) {\n@start\n\tret %x\n}\n"
        #expect(kiln_load_il(loader, "f.ssa", text, text.utf8.count, &crate) == 0)
        let stopped = Atomic<Bool>(false), answered = Atomic<Int32>(-1)
        let refusedCrate = crate
        let thread = Thread {
            World.exemptCurrentThread()
            while !stopped.load(ordering: .acquiring) { sched_yield() }
            var address: UnsafeMutableRawPointer?
            answered.store(kiln_function(refusedCrate, "f", &address), ordering: .releasing)
        }
        thread.start()
        // Give the thread time to mark itself exempt before the stop lists the threads.
        usleep(50_000)
        do {
            guard let world = World.stop() else {
                Issue.record("the other threads could not be stopped")
                stopped.store(true, ordering: .releasing)
                return
            }
            stopped.store(true, ordering: .releasing)
            // Spin without allocating; give up after two seconds rather than hang.
            var spins = 0
            while answered.load(ordering: .acquiring) == -1 && spins < 2_000_000 { spins += 1; sched_yield() }
            _ = consume world
        }
        while answered.load(ordering: .acquiring) == -1 { usleep(1000) }
        #expect(answered.load(ordering: .acquiring) == 6)
        // Once the world runs again, the same call succeeds.
        var address: UnsafeMutableRawPointer?
        #expect(kiln_function(crate, "f", &address) == 0)
        #expect(String(cString: kiln_last_error()) == "")
    }

    @Test func freeingALoaderInvalidatesItsCratesAndCallsWorkFromManyThreads() throws {
        var loader: UInt64 = 0, crate: UInt64 = 0
        #expect(kiln_loader_create(&loader) == 0)
        let text = "export function l $twice(l %x) {\n@start\n\t%y =l add %x, %x\n\tret %y\n}\n"
        #expect(kiln_load_il(loader, "twice.ssa", text, text.utf8.count, &crate) == 0)
        let failures = Atomic<Int>(0)
        let threadCrate = crate
        let threads = (0..<4).map { index in
            Thread {
                // Foundation's threads start with the signal that stops threads blocked.
                kiln_thread_accept_stops()
                for round in 0..<500 {
                    var argument = Int64(index * 1000 + round), result: Int64 = 0
                    if kiln_call(threadCrate, "twice", &argument, 1, &result) != 0 || result != 2 * argument {
                        failures.add(1, ordering: .relaxed)
                    }
                }
            }
        }
        for thread in threads { thread.start() }
        for _ in 0..<50 {
            let changed = "export function l $twice(l %x) {\n@start\n\t%y =l mul %x, 2\n\tret %y\n}\n"
            #expect(kiln_reload_il(crate, changed, changed.utf8.count) == 0, "\(String(cString: kiln_last_error()))")
            #expect(kiln_reload_il(crate, text, text.utf8.count) == 0, "\(String(cString: kiln_last_error()))")
        }
        while threads.contains(where: { !$0.isFinished }) { usleep(1000) }
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(kiln_loader_free(loader) == 0)
        var address: UnsafeMutableRawPointer?
        #expect(kiln_function(crate, "twice", &address) == 2)
        #expect(String(cString: kiln_last_error()).hasPrefix("no crate has handle \(crate)"))
        #expect(kiln_loader_create(nil) == 1)
        #expect(String(cString: kiln_last_error()) == "the loader pointer is NULL")
        #expect(kiln_load_file(loader, "/nonexistent/x.ssa", &crate) == 2)
    }

    @Test func exportedSymbolsBecomeGlobalSymbolsOfTheProcess() throws {
        let name = "embedded_\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        var loader: UInt64 = 0, crate: UInt64 = 0
        #expect(kiln_loader_create(&loader) == 0)
        let text = "export function l $\(name)(l %x) {\n@start\n\t%y =l add %x, 5\n\tret %y\n}\n"
        #expect(kiln_load_il(loader, "exported.ssa", text, text.utf8.count, &crate) == 0)
        #expect(dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) == nil)
        #expect(kiln_export_symbols(crate) == 0, "\(String(cString: kiln_last_error()))")
        let address = try #require(dlsym(UnsafeMutableRawPointer(bitPattern: 0), name))
        typealias IntToInt = @convention(c) (Int64) -> Int64
        #expect(unsafeBitCast(address, to: IntToInt.self)(10) == 15)
        let changed = "export function l $\(name)(l %x) {\n@start\n\t%y =l add %x, 6\n\tret %y\n}\n"
        #expect(kiln_reload_il(crate, changed, changed.utf8.count) == 0)
        #expect(unsafeBitCast(address, to: IntToInt.self)(10) == 16)
        #expect(kiln_export_symbols(loader) == 2)
        // Freed, the loader's symbol stays (C may have bound to it) but leads to a routine
        // that reports the call instead of to freed stubs.
        #expect(kiln_loader_free(loader) == 0)
        #expect(dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) == address)
    }

    /// Builds a C host that exports `$exported` from a crate, looks it up as a global
    /// symbol, then does `action` ("reload" or "free") and calls it: what it prints and
    /// its exit status.
    func exportedSymbolAfter(_ action: String) throws -> (status: Int32, output: String, error: String) {
        let directory = NSTemporaryDirectory() + "kiln-embed-\(getpid())-\(action)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
            #include <dlfcn.h>
            #include <stdio.h>
            #include <string.h>
            #include "kiln.h"
            static const char text[] = "export function l $exported(l %x) {\\n@start\\n\\tret %x\\n}\\n";
            static const char other[] = "export function l $other(l %x) {\\n@start\\n\\tret %x\\n}\\n";
            int main(int argc, char **argv) {
                kiln_loader loader;
                kiln_crate crate;
                if (kiln_loader_create(&loader) || kiln_load_il(loader, "exporter.ssa", text, strlen(text), &crate)
                    || kiln_export_symbols(crate)) { printf("setup: %s\\n", kiln_last_error()); return 1; }
                long (*exported)(long) = (long (*)(long))dlsym(RTLD_DEFAULT, "exported");
                printf("before: %ld\\n", exported(42));
                fflush(stdout);
                if (strcmp(argv[1], "reload") == 0) kiln_reload_il(crate, other, strlen(other));
                else kiln_loader_free(loader);
                printf("after: %ld\\n", exported(42));
                return 0;
            }
            """.write(toFile: directory + "/exporter.c", atomically: true, encoding: .utf8)
        let host = directory + "/exporter"
        let build = try run("/usr/bin/gcc", ["-o", host, directory + "/exporter.c", "-I", packageRoot.path + "/Sources/KilnC/include",
                                             "-L", productsFolder().path, "-lKilnC", "-Wl,-rpath," + productsFolder().path])
        #expect(build.status == 0, "\(build.error)")
        return try run(host, [action])
    }

    @Test func anExportedSymbolWhoseFunctionIsGoneReportsTheCall() throws {
        let removed = try exportedSymbolAfter("reload")
        #expect(removed.status == 70)
        #expect(removed.output == "before: 42\n", "\(removed.output)")
        // The message, then the backtrace every fatal error prints.
        #expect(removed.error.hasPrefix("kiln: error: call through the stub of $exported of crate exporter.ssa, which a reload removed\n"),
                "\(removed.error)")
        let freed = try exportedSymbolAfter("free")
        #expect(freed.status == 70)
        #expect(freed.output == "before: 42\n", "\(freed.output)")
        #expect(freed.error == "kiln: error: a library called a crate export whose loader was freed\n", "\(freed.error)")
    }

    @Test func crateFilesLoadAndReloadAndDamagedOnesAreRefused() throws {
        func crateFile(_ text: String, _ path: String) throws {
            let (module, diagnostics) = parseAndVerify(SourceFile(name: "lib.ssa", text: text))
            #expect(diagnostics.isEmpty)
            var compiled = try compileModule(module)
            compiled.sourceLineStarts = module.source.lineStarts
            #expect(FileManager.default.createFile(atPath: path, contents: Data(CrateFile.encode(compiled))))
        }
        let first = NSTemporaryDirectory() + "kiln-embed-\(getpid())-first.crate"
        let second = NSTemporaryDirectory() + "kiln-embed-\(getpid())-second.bin"
        defer { for path in [first, second] { try? FileManager.default.removeItem(atPath: path) } }
        try crateFile("export function l $triple(l %x) {\n@start\n\t%y =l mul %x, 3\n\tret %y\n}\n", first)
        try crateFile("export function l $triple(l %x) {\n@start\n\t%y =l mul %x, 30\n\tret %y\n}\n", second)
        var loader: UInt64 = 0, crate: UInt64 = 0
        #expect(kiln_loader_create(&loader) == 0)
        defer { _ = kiln_loader_free(loader) }
        #expect(kiln_load_file(loader, first, &crate) == 0, "\(String(cString: kiln_last_error()))")
        var argument: Int64 = 5, result: Int64 = 0
        #expect(kiln_call(crate, "triple", &argument, 1, &result) == 0 && result == 15)
        #expect(kiln_reload_file(crate, second) == 0, "\(String(cString: kiln_last_error()))")
        #expect(kiln_call(crate, "triple", &argument, 1, &result) == 0 && result == 150)
        // One flipped byte: refused with the decoder's reason, and the crate runs on.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: first)))
        bytes[bytes.count - 3] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: first))
        #expect(kiln_reload_file(crate, first) == 3)
        #expect(String(cString: kiln_last_error()).hasPrefix("\(first): not a usable crate file: byte 32: checksum mismatch"))
        #expect(kiln_call(crate, "triple", &argument, 1, &result) == 0 && result == 150)
        #expect(kiln_load_file(loader, "/nonexistent/lib.ssa", &crate) == 3)
        #expect(String(cString: kiln_last_error()) == "/nonexistent/lib.ssa: No such file or directory")
    }
}
