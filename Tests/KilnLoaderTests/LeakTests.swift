// Nothing leaks: a host that makes, runs and frees loaders in a loop stays at
// its baseline (memory, mappings, descriptors, thread-data layout, exit
// handlers), and reloads that change thread-local data reuse its offsets.

import KilnCode
import KilnLoader
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What the process holds: resident pages, mappings, open descriptors.
struct ProcessFootprint: CustomStringConvertible {
    var residentKiB: Int
    var mappings: Int
    var descriptors: Int

    static func now() -> ProcessFootprint {
        func lines(_ path: String) -> [Substring] {
            guard let file = fopen(path, "r") else { return [] }
            defer { fclose(file) }
            var text: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = fread(&buffer, 1, buffer.count, file)
                if count <= 0 { break }
                text += buffer[0..<count]
            }
            return String(decoding: text, as: UTF8.self).split(separator: "\n")
        }
        let statm = lines("/proc/self/statm").first?.split(separator: " ") ?? []
        let resident = statm.count > 1 ? (Int(statm[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) / 1024 : 0
        var descriptors = 0
        if let directory = opendir("/proc/self/fd") {
            while readdir(directory) != nil { descriptors += 1 }
            closedir(directory)
        }
        return ProcessFootprint(residentKiB: resident, mappings: lines("/proc/self/maps").count, descriptors: descriptors)
    }

    var description: String { "\(residentKiB) KiB resident, \(mappings) mappings, \(descriptors) descriptors" }
}

let leakProgram = """
    thread data $perThread = { l 5 }
    data $text = { b "exit handler", b 0 }
    data $seen = { l 0 }
    function $goodbye(w %status, l %argument) {
    @start
    	storel 1, %argument
    	ret
    }
    export function w $main(w %argc, l %argv, l %envp) {
    @start
    	%t =l loadl thread $perThread
    	%r =w call $on_exit(l $goodbye, l $flag)
    	%w =w copy %t
    	ret %w
    }
    export data $flag = { l 0 }
    """

@Suite(.serialized) struct LeakTests {
    @Test func aThousandLoadersComeAndGoWithoutAGrowingFootprint() throws {
        let module = try compile("leak.ssa", leakProgram)
        /// One loader: load, run `main` (which registers an exit handler), let go.
        func cycle() throws -> Int32 {
            let loader = try Loader(options: .init())
            let crate = try loader.load(module)
            let status = try crate.runMain(arguments: ["leak"])
            // The exit handler has not run yet: the program has not exited.
            #expect(crate.address(ofData: try #require(crate.dataIndex(named: "flag"))).load(as: Int64.self) == 0)
            return status
        }
        for _ in 0..<20 { _ = try cycle() }
        let threadDataBefore = ThreadLocalData.layoutSize - ThreadLocalData.freeBytes
        let before = ProcessFootprint.now()
        for _ in 0..<1000 { #expect(try cycle() == 5) }
        let after = ProcessFootprint.now()
        #expect(after.mappings <= before.mappings, "\(before) -> \(after)")
        #expect(after.descriptors <= before.descriptors, "\(before) -> \(after)")
        // Loaders map 1 GiB each: a leak would show in the mappings; pages of the heap that
        // malloc keeps for reuse may differ a little.
        #expect(after.residentKiB < before.residentKiB + 8 * 1024, "\(before) -> \(after)")
        #expect(ThreadLocalData.layoutSize - ThreadLocalData.freeBytes == threadDataBefore)
    }

    @Test func exitHandlersRunWhenTheirLoaderGoes() throws {
        let flag = UnsafeMutablePointer<Int64>.allocate(capacity: 1)
        defer { flag.deallocate() }
        flag.pointee = 0
        do {
            let loader = try Loader(options: .init())
            let crate = try loader.load(try compile("handler.ssa", """
                function $goodbye(w %status, l %argument) {
                @start
                	storel 7, %argument
                	ret
                }
                export function l $register(l %where) {
                @start
                	%r =w call $on_exit(l $goodbye, l %where)
                	ret 0
                }
                """))
            _ = try call(crate, "register", Int64(Int(bitPattern: flag)))
            #expect(flag.pointee == 0)
        }
        // The loader went: its handler ran before its code did.
        #expect(flag.pointee == 7)
    }

    @Test func tenThousandReloadsOfThreadDataKeepTheLayoutBounded() throws {
        let loader = try Loader(options: .init())
        func version(_ value: Int) throws -> CompiledModule {
            try compile("threads.ssa", """
                thread data $counter = { l \(value) }
                export function l $read(l %x) {
                @start
                	%v =l loadl thread $counter
                	ret %v
                }
                """)
        }
        let versions = [try version(1), try version(2)]
        let crate = try loader.load(versions[0])
        #expect(try call(crate, "read") == 1)
        let sizeBefore = ThreadLocalData.layoutSize
        for round in 1...10_000 {
            try loader.reload(crate, with: versions[round % 2])
        }
        // Each reload changed the datum (a new initial value), and each old offset came back.
        #expect(try call(crate, "read") == Int64(1 + 10_000 % 2))
        #expect(ThreadLocalData.layoutSize <= sizeBefore + 64, "the layout grew from \(sizeBefore) to \(ThreadLocalData.layoutSize)")
    }
}
