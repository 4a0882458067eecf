// The executable region keeps W^X, and thread-local data follows Kiln's
// scheme: each thread sees its own copy, initialised from the template, and
// blocks grow without moving when later modules add thread data.

import KilnCode
import KilnLoader
import KilnX64
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One line of /proc/self/maps.
struct Mapping {
    var range: Range<UInt>
    var permissions: String

    static func current() throws -> [Mapping] {
        let file = try #require(fopen("/proc/self/maps", "r"))
        defer { fclose(file) }
        var mappings: [Mapping] = []
        var line = [CChar](repeating: 0, count: 4096)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let fields = text.split(separator: " ", omittingEmptySubsequences: true)
            let bounds = fields[0].split(separator: "-")
            let start = UInt(bounds[0], radix: 16)!, end = UInt(bounds[1], radix: 16)!
            mappings.append(Mapping(range: start..<end, permissions: String(fields[1])))
        }
        return mappings
    }
}

@Suite struct MemoryTests {
    @Test func noPageIsWritableAndExecutable() throws {
        let loader = try Loader()
        // Enough code and data to commit more than one step of each half.
        var functions: [CodeObject] = []
        for index in 0..<40 {
            functions.append(CodeObject(name: "f\(index)", isExported: false,
                                        code: [0xB8, UInt8(index), 0, 0, 0, 0xC3] + [UInt8](repeating: 0xCC, count: 4000),
                                        relocations: []))
        }
        let data = (0..<40).map {
            DataObject(name: "d\($0)", isExported: false, isThreadLocal: false, alignment: 8,
                       bytes: [UInt8](repeating: 1, count: 4000), relocations: [])
        }
        let module = try loader.load(CompiledModule(name: "wx", functions: functions, data: data))
        let mappings = try Mapping.current()
        let inRegion = mappings.filter { $0.range.overlaps(loader.regionRange) }
        let inAlias = mappings.filter { $0.range.overlaps(loader.writableAliasRange) }
        for mapping in inRegion + inAlias {
            let isWritable = mapping.permissions.contains("w")
            let isExecutable = mapping.permissions.contains("x")
            #expect(!(isWritable && isExecutable), "mapping \(mapping.range) is \(mapping.permissions)")
        }
        // The views really exist: code is executable in the region, writable only in the alias.
        let codeAddress = module.entry(ofFunction: 39)
        #expect(inRegion.contains { $0.range.contains(codeAddress) && $0.permissions.hasPrefix("r-x") })
        #expect(inAlias.contains { $0.permissions.hasPrefix("rw") })
        #expect(!inAlias.contains { $0.permissions.contains("x") })
        let dataAddress = UInt(bitPattern: module.address(ofData: 39))
        #expect(inRegion.contains { $0.range.contains(dataAddress) && $0.permissions.hasPrefix("rw-") })
        // And the code written through the alias runs: f39 is `mov eax, 39; ret`.
        #expect(function(module.address(ofFunction: 39), as: NoArguments.self)() & 0xFFFF_FFFF == 39)
    }

    /// A module with one thread-local object of two words, [first, second], and functions
    /// `get(k)`: reads word k (0 or 1) via the addend, `set`: writes word 0, `address`.
    static func threadModule(_ name: String, first: Int64, second: Int64) -> CompiledModule {
        func getter(_ word: Int64) -> CodeObject {
            assemble("\(name).get\(word)") { buffer, relocations in
                buffer.alu(.sub, .b64, .rsp, imm: 8)
                threadAddress(0, addend: 8 * word, &buffer, &relocations)
                buffer.mov(.b64, .rax, Memory(base: .rax))
                buffer.alu(.add, .b64, .rsp, imm: 8)
                buffer.ret()
            }
        }
        return CompiledModule(name: name, functions: [
            getter(0),
            getter(1),
            assemble("\(name).set") { buffer, relocations in
                buffer.push(.rbx)
                buffer.mov(.b64, .rbx, .rdi)
                threadAddress(0, &buffer, &relocations)
                buffer.mov(.b64, Memory(base: .rax), .rbx)
                buffer.pop(.rbx)
                buffer.ret()
            },
            assemble("\(name).address") { buffer, relocations in
                buffer.alu(.sub, .b64, .rsp, imm: 8)
                threadAddress(0, &buffer, &relocations)
                buffer.alu(.add, .b64, .rsp, imm: 8)
                buffer.ret()
            },
        ], data: [
            DataObject(name: "\(name).tv", isExported: false, isThreadLocal: true, alignment: 16,
                       bytes: bytes(first) + bytes(second), relocations: []),
            DataObject(name: "\(name).plain", isExported: false, isThreadLocal: false, alignment: 8,
                       bytes: bytes(0), relocations: []),
        ])
    }

    /// The four functions of `threadModule`, as addresses threads may share.
    struct ThreadFunctions: Sendable {
        var get0, get1, set, address: UInt

        init(_ module: Crate) {
            get0 = module.stubAddress(0)
            get1 = module.stubAddress(1)
            set = module.stubAddress(2)
            address = module.stubAddress(3)
        }

        func call(_ entry: UInt) -> Int64 {
            function(UnsafeRawPointer(bitPattern: entry)!, as: NoArguments.self)()
        }

        func set(_ value: Int64) {
            _ = function(UnsafeRawPointer(bitPattern: set)!, as: OneArgument.self)(value)
        }
    }

    @Test func threadLocalDataPerThread() throws {
        let loader = try Loader()
        let module = try loader.load(Self.threadModule("first", first: 100, second: 200))
        #expect(module.module.data[0].isThreadLocal && !module.module.data[1].isThreadLocal)
        let tv = ThreadFunctions(module)
        #expect(tv.call(tv.get0) == 100)
        #expect(tv.call(tv.get1) == 200)

        let rendezvous = Rendezvous()
        let seen = Mutex<[Int64: (Int64, UInt)]>([:])
        let threads = [1, 2].map { (value: Int64) in
            onNewThread {
                tv.set(value)
                rendezvous.arrive()
                rendezvous.wait(for: 2)  // both threads have written before either reads
                let read = tv.call(tv.get0)
                let address = UInt(bitPattern: Int(tv.call(tv.address)))
                seen.withLock { $0[value] = (read, address) }
            }
        }
        threads.forEach(join)
        let results = seen.withLock { $0 }
        #expect(results[1]?.0 == 1)
        #expect(results[2]?.0 == 2)
        #expect(results[1]?.1 != results[2]?.1)
        // The main thread's copy is untouched, at yet another address.
        #expect(tv.call(tv.get0) == 100)
        let mainAddress = UInt(bitPattern: Int(tv.call(tv.address)))
        #expect(mainAddress != results[1]?.1 && mainAddress != results[2]?.1)
        #expect(mainAddress % 16 == 0)
        #expect(module.address(ofData: 0) == UnsafeMutableRawPointer(bitPattern: mainAddress))
    }

    @Test func threadBlocksGrowWithoutMoving() throws {
        let loader = try Loader()
        let early = ThreadFunctions(try loader.load(Self.threadModule("early", first: 5, second: 6)))
        let step = Rendezvous()
        let late = Mutex<ThreadFunctions?>(nil)
        let outcome = Mutex<(before: UInt, after: UInt, earlyValue: Int64, lateValues: [Int64])?>(nil)
        let thread = onNewThread {
            early.set(55)
            let before = UInt(bitPattern: Int(early.call(early.address)))
            step.arrive()              // 1: this thread's block exists, sized for `early`
            step.wait(for: 2)          // 2: the main thread loaded a module with more thread data
            let added = late.withLock { $0 }!
            let lateValues = [added.call(added.get0), added.call(added.get1)]
            added.set(77)
            let after = UInt(bitPattern: Int(early.call(early.address)))
            outcome.withLock { $0 = (before, after, early.call(early.get0), lateValues + [added.call(added.get0)]) }
        }
        step.wait(for: 1)
        let layoutBefore = ThreadLocalData.layoutSize
        let second = try loader.load(Self.threadModule("late", first: 7, second: 8))
        #expect(ThreadLocalData.layoutSize >= layoutBefore + 16)
        late.withLock { $0 = ThreadFunctions(second) }
        step.arrive()
        join(thread)
        let result = try #require(outcome.withLock { $0 })
        #expect(result.before == result.after, "the thread's block moved when it grew")
        #expect(result.earlyValue == 55)
        #expect(result.lateValues == [7, 8, 77])
        // The main thread never wrote: it still sees the templates.
        #expect(early.call(early.get0) == 5)
        let added = ThreadFunctions(second)
        #expect(added.call(added.get0) == 7)
    }

    @Test func threadDataTemplatesAreRelocated() throws {
        let loader = try Loader()
        let module = try loader.load(CompiledModule(name: "tls-pointer", functions: [
            assemble("pointer") { buffer, relocations in
                buffer.alu(.sub, .b64, .rsp, imm: 8)
                threadAddress(0, &buffer, &relocations)
                buffer.mov(.b64, .rax, Memory(base: .rax))
                buffer.alu(.add, .b64, .rsp, imm: 8)
                buffer.ret()
            },
        ], data: [
            DataObject(name: "tp", isExported: false, isThreadLocal: true, alignment: 8, bytes: bytes(0),
                       relocations: [Relocation(offset: 0, kind: .absolute64, target: .data(1), addend: 4)]),
            DataObject(name: "plain", isExported: false, isThreadLocal: false, alignment: 8, bytes: bytes(0),
                       relocations: []),
        ]))
        let plain = UInt(bitPattern: module.address(ofData: 1))
        let entry = module.stubAddress(0)
        #expect(UInt(bitPattern: Int(function(module.address(ofFunction: 0), as: NoArguments.self)())) == plain + 4)
        let other = Mutex<Int64>(0)
        join(onNewThread { other.withLock { $0 = function(UnsafeRawPointer(bitPattern: entry)!, as: NoArguments.self)() } })
        #expect(UInt(bitPattern: Int(other.withLock { $0 })) == plain + 4)
    }
}
