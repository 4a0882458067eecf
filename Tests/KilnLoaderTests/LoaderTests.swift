// Loading hand-assembled modules: placement, slots, data, relocations, errors
// and running `main`.

import KilnCode
import KilnLoader
import KilnX64
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct LoaderTests {
    @Test func functionReturningAConstant() throws {
        let loader = try Loader()
        let module = try loader.load(CompiledModule(name: "constant", functions: [
            assemble("answer") { buffer, _ in
                buffer.mov(.b64, .rax, imm: 42)
                buffer.ret()
            },
        ], data: []))
        let stub = module.address(ofFunction: 0)
        #expect(function(stub, as: NoArguments.self)() == 42)
        #expect(loader.regionRange.contains(UInt(bitPattern: stub)))
        #expect(module.entry(ofFunction: 0) % 16 == 0)
        // The stable address is the stub, one per function however often it is asked for.
        #expect(module.address(ofSymbol: "answer") == stub)
        #expect(UInt(bitPattern: stub) != module.entry(ofFunction: 0))
    }

    @Test func callsCThroughSlots() throws {
        // Default options even under KILN_STRESS: the stress mode never binds a slot.
        let loader = try Loader(options: .init())
        let module = try loader.load(CompiledModule(name: "slots", functions: [
            assemble("twiceLength") { buffer, relocations in
                buffer.push(.rbx)
                buffer.push(.r12)
                buffer.push(.r13)
                buffer.mov(.b64, .rbx, .rdi)
                callThroughSlot("strlen", &buffer, &relocations)
                buffer.mov(.b64, .r12, .rax)
                buffer.mov(.b64, .rdi, .rbx)
                callThroughSlot("strlen", &buffer, &relocations)
                buffer.alu(.add, .b64, .rax, .r12)
                buffer.pop(.r13)
                buffer.pop(.r12)
                buffer.pop(.rbx)
                buffer.ret()
            },
        ], data: []))
        // One call slot per symbol, however many calls use it, starting at its resolver stub.
        #expect(module.toc.callSlots == ["strlen"])
        let slot = module.toc.callSlotAddress(0)
        #expect(module.toc.value(at: slot) == module.toc.resolverStubs[0])
        #expect(loader.regionRange.contains(slot))
        #expect(function(module.address(ofFunction: 0), as: StringArgument.self)("hello") == 10)
        // The first call bound it.
        #expect(module.toc.value(at: slot) == UInt(bitPattern: dlsym(nil, "strlen")))
        #expect(module.toc.bindings[0] == .address(UInt(bitPattern: dlsym(nil, "strlen"))))
        #expect(function(module.address(ofFunction: 0), as: StringArgument.self)("hello!") == 12)
    }

    @Test func readsAndWritesDataRipRelative() throws {
        let loader = try Loader()
        let module = try loader.load(CompiledModule(name: "counter", functions: [
            assemble("bump") { buffer, relocations in
                buffer.mov(.b64, .rax, Memory.rip(0))
                relocations.ripRelative(buffer, to: .data(0))
                buffer.alu(.add, .b64, .rax, imm: 1)
                buffer.mov(.b64, Memory.rip(0), .rax)
                relocations.ripRelative(buffer, to: .data(0))
                buffer.ret()
            },
        ], data: [
            DataObject(name: "count", isExported: false, isThreadLocal: false, alignment: 8,
                       bytes: bytes(41), relocations: []),
        ]))
        let bump = function(module.address(ofFunction: 0), as: NoArguments.self)
        #expect(bump() == 42)
        #expect(bump() == 43)
        let data = module.address(ofData: 0)
        #expect(data.load(as: Int64.self) == 43)
        #expect(UInt(bitPattern: data) % 8 == 0)
        // Data is in the region but outside the code half.
        #expect(loader.regionRange.contains(UInt(bitPattern: data)))
        #expect(UInt(bitPattern: data) >= loader.regionRange.lowerBound + UInt(loader.regionRange.count / 2))
    }

    @Test func dataWithAbsolutePointers() throws {
        let loader = try Loader()
        let module = try loader.load(CompiledModule(name: "pointers", functions: [
            assemble("seven", exported: false) { buffer, _ in
                buffer.mov(.b64, .rax, imm: 7)
                buffer.ret()
            },
        ], data: [
            DataObject(name: "table", isExported: true, isThreadLocal: false, alignment: 8,
                       bytes: [UInt8](repeating: 0xAA, count: 24), relocations: [
                        Relocation(offset: 0, kind: .absolute64, target: .stub(0)),
                        Relocation(offset: 8, kind: .absolute64, target: .data(1), addend: 8),
                        Relocation(offset: 16, kind: .absolute64, target: .external("strlen"), addend: -1),
                       ]),
            DataObject(name: "words", isExported: false, isThreadLocal: false, alignment: 16,
                       bytes: bytes(1) + bytes(2), relocations: []),
        ]))
        let table = module.address(ofData: 0)
        let words = UInt(bitPattern: module.address(ofData: 1))
        #expect(table.load(as: UInt.self) == module.stubAddress(0))
        #expect(table.load(fromByteOffset: 8, as: UInt.self) == words + 8)
        #expect(table.load(fromByteOffset: 16, as: UInt.self) == UInt(bitPattern: dlsym(nil, "strlen")) - 1)
        #expect(words % 16 == 0)
        let pointee = UnsafeRawPointer(bitPattern: table.load(fromByteOffset: 8, as: UInt.self))!
        #expect(pointee.load(as: Int64.self) == 2)
        let seven = UnsafeRawPointer(bitPattern: table.load(as: UInt.self))!
        #expect(function(seven, as: NoArguments.self)() == 7)
        #expect(module.address(ofSymbol: "table") == UnsafeRawPointer(table))
    }

    @Test func unresolvedSymbolsNameTheirUsers() throws {
        let loader = try Loader()
        let before = loader.heapUsage
        let module = CompiledModule(name: "broken", functions: [
            assemble("first") { buffer, relocations in
                callThroughSlot("kiln_no_such_function", &buffer, &relocations)
                buffer.ret()
            },
            assemble("second") { buffer, relocations in
                callThroughSlot("kiln_no_such_function", &buffer, &relocations)
                callThroughSlot("strlen", &buffer, &relocations)
                buffer.mov(.b64, .rax, Memory.rip(0))
                relocations.ripRelative(buffer, to: .addressSlot("kiln_no_such_data"))
                buffer.ret()
            },
        ], data: [
            DataObject(name: "pointer", isExported: false, isThreadLocal: false, alignment: 8,
                       bytes: bytes(0), relocations: [
                        Relocation(offset: 0, kind: .absolute64, target: .external("kiln_no_such_data")),
                       ]),
        ])
        do {
            _ = try loader.load(module)
            Issue.record("loading a module with undefined symbols succeeded")
        } catch {
            guard case .unresolvedSymbols(let symbols) = error else {
                Issue.record("wrong error: \(error)")
                return
            }
            // Calls are bound lazily, so only the address that must be known now is an error.
            #expect(symbols == [
                UnresolvedSymbol(symbol: "kiln_no_such_data", users: ["second", "pointer"], crate: "broken"),
            ])
            #expect(error.description == "broken: undefined symbol $kiln_no_such_data, used by $second, $pointer")
        }
        // Everything placed for the crate was given back.
        #expect(loader.heapUsage == before)
        #expect(loader.crate(named: "broken") == nil)
    }

    @Test func aRegionWithoutLowAddressesRefusesThirtyTwoBitFields() throws {
        // As when other loaders hold all the address space below 4 GiB.
        let loader = try Loader(options: .init(regionPlacement: .anywhere))
        #expect(loader.regionRange.lowerBound > UInt(UInt32.max))
        let before = loader.heapUsage
        let module = try compile("far.ssa", """
            data $numbers = { w 1 2 3 }
            data $pointers = { w $numbers + 4, w $f }
            export function w $f() {
            @start
            	ret 7
            }
            """)
        let error = #expect(throws: LoadError.self) { try loader.load(module) }
        guard case .addressBeyond32Bits(let object, let offset, let symbol, _, let inRegion) = error else {
            Issue.record("wrong error: \(String(describing: error))")
            return
        }
        #expect(object == "pointers" && offset == 0 && symbol == "numbers" && inRegion)
        #expect(error!.description.hasPrefix("$pointers+0x0: the 32-bit field `w $numbers` needs an address below 4 GiB, "
                                             + "but this loader's code and data lie at 0x"), "\(error!)")
        #expect(error!.description.hasSuffix("(no address space below 4 GiB was free when it was made); an l item holds any address"))
        // Nothing of the crate is left, and a crate without such fields loads as usual.
        #expect(loader.heapUsage == before && loader.crate(named: "far.ssa") == nil)
        let plain = try loader.load(try compile("plain.ssa", "data $p = { l $f }\nexport function w $f() {\n@start\n\tret 7\n}\n"))
        #expect(plain.isLoaded)
    }

    @Test func aReloadThatAddsAThirtyTwoBitFieldToAHighRegionChangesNothing() throws {
        let loader = try Loader(options: .init(regionPlacement: .anywhere))
        func source(_ value: Int) -> String { "export function l $value(l %x) {\n@start\n\tret \(value)\n}\n" }
        let crate = try loader.load(try compile("grow.ssa", source(1)))
        let error = #expect(throws: LoadError.self) {
            try loader.reload(crate, with: try compile("grow.ssa", source(2) + "data $p = { w $value }\n"))
        }
        #expect(error?.description.hasPrefix("$p+0x0: the 32-bit field `w $value` needs an address below 4 GiB") == true, "\(String(describing: error))")
        #expect(crate.version == 1)
        #expect(try call(crate, "value") == 1)
    }

    @Test func aThirtyTwoBitFieldCannotHoldACSymbol() throws {
        let loader = try Loader()
        let error = #expect(throws: LoadError.self) { try loader.load(try compile("c.ssa", "data $p = { w $printf }\n")) }
        guard case .addressBeyond32Bits(_, _, let symbol, let address, let inRegion) = error else {
            Issue.record("wrong error: \(String(describing: error))")
            return
        }
        #expect(symbol == "printf" && !inRegion && address > UInt64(UInt32.max))
        #expect(error!.description.hasPrefix("$p+0x0: the 32-bit field `w $printf` needs an address below 4 GiB, but $printf is a C symbol at 0x"))
    }

    @Test func invalidModulesAreRefused() throws {
        let loader = try Loader()
        let pastEnd = CompiledModule(name: "m", functions: [
            CodeObject(name: "f", isExported: true, code: [0xC3, 0, 0],
                       relocations: [Relocation(offset: 0, kind: .pcRelative32, target: .function(0))]),
        ], data: [])
        #expect(throws: LoadError.self) { try loader.load(pastEnd) }
        let badIndex = CompiledModule(name: "m", functions: [
            CodeObject(name: "f", isExported: true, code: [0xC3, 0, 0, 0, 0],
                       relocations: [Relocation(offset: 1, kind: .pcRelative32, target: .data(3))]),
        ], data: [])
        let error = #expect(throws: LoadError.self) { try loader.load(badIndex) }
        #expect(error?.description.contains("data #3") == true)
    }

    @Test func quotedNames() throws {
        // Default options even under KILN_STRESS: the stress mode never binds a slot.
        let loader = try Loader(options: .init())
        let module = try loader.load(CompiledModule(name: "quoted", functions: [
            assemble("\"length.of\"") { buffer, relocations in
                buffer.alu(.sub, .b64, .rsp, imm: 8)
                callThroughSlot("\"strlen\"", &buffer, &relocations)
                buffer.alu(.add, .b64, .rsp, imm: 8)
                buffer.ret()
            },
        ], data: []))
        let entry = try #require(module.address(ofSymbol: "length.of"))
        #expect(module.address(ofSymbol: "\"length.of\"") == entry)
        #expect(function(entry, as: StringArgument.self)("abc") == 3)
        // Exports of earlier modules resolve later modules' externals.
        let user = try loader.load(CompiledModule(name: "user", functions: [
            assemble("callsIt") { buffer, relocations in
                buffer.alu(.sub, .b64, .rsp, imm: 8)
                callThroughSlot("\"length.of\"", &buffer, &relocations)
                buffer.alu(.add, .b64, .rsp, imm: 8)
                buffer.ret()
            },
        ], data: []))
        #expect(function(user.address(ofFunction: 0), as: StringArgument.self)("abcd") == 4)
        // Bound to the other crate's entry (not its stub): a TOC call costs one indirect call.
        #expect(user.toc.value(at: user.toc.callSlotAddress(0)) == module.entry(ofFunction: 0))
        #expect(user.toc.bindings[0] == .crate(name: "quoted", symbol: "length.of"))
        #expect(module.users.map(\.name) == ["user"])
    }

    @Test func runMainPassesArgumentsAndEnvironment() throws {
        let loader = try Loader()
        // main(argc, argv, envp) = argc * 100 + strlen(argv[1]) * 10 + strlen(envp[0])
        let module = try loader.load(CompiledModule(name: "main", functions: [
            assemble("main") { buffer, relocations in
                buffer.push(.rbx)
                buffer.push(.r12)
                buffer.push(.r13)
                buffer.mov(.b64, .r12, .rsi)
                buffer.mov(.b64, .r13, .rdx)
                buffer.mov(.b32, .rax, .rdi)
                buffer.imul(.b32, .rbx, .rax, imm: 100)
                buffer.mov(.b64, .rdi, Memory(base: .r12, displacement: 8))
                callThroughSlot("strlen", &buffer, &relocations)
                buffer.imul(.b32, .rax, .rax, imm: 10)
                buffer.alu(.add, .b32, .rbx, .rax)
                buffer.mov(.b64, .rdi, Memory(base: .r13))
                callThroughSlot("strlen", &buffer, &relocations)
                buffer.alu(.add, .b32, .rax, .rbx)
                buffer.pop(.r13)
                buffer.pop(.r12)
                buffer.pop(.rbx)
                buffer.ret()
            },
        ], data: []))
        #expect(try module.runMain(arguments: ["prog", "four", "x"], environment: ["A=12345"]) == 347)
    }

    @Test func runMainWithoutMain() throws {
        let loader = try Loader()
        let module = try loader.load(CompiledModule(name: "library.ssa", functions: [
            assemble("main", exported: false) { buffer, _ in buffer.ret() },
        ], data: []))
        let error = #expect(throws: LoadError.self) { try module.runMain(arguments: ["x"]) }
        #expect(error?.description == "library.ssa: no exported function $main")
    }

    @Test func linkErrorsComeFromDlerror() throws {
        let error = #expect(throws: LoadError.self) { try Loader(linkLibraries: ["/nonexistent/libkiln-nothing.so"]) }
        #expect(error?.description.contains("/nonexistent/libkiln-nothing.so") == true)
    }
}
