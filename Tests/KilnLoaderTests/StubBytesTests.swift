// The machine code the runtime writes by hand, read back by an independent
// disassembler (objdump): resolver stubs and the three forms of a callback
// stub (live, dead, gated), at their real addresses, so every rel32 is checked
// against the target it must reach.

import Foundation
@testable import KilnLoader
import Testing

/// objdump's Intel-syntax reading of `bytes` placed at `address`: one "mnemonic operands"
/// per instruction, objdump's own spacing collapsed.
func disassemble(_ bytes: [UInt8], at address: UInt) throws -> [String] {
    let path = NSTemporaryDirectory() + "kiln-stub-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).bin"
    defer { try? FileManager.default.removeItem(atPath: path) }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/objdump")
    process.arguments = ["-D", "-b", "binary", "-m", "i386:x86-64", "-M", "intel", "--adjust-vma=0x" + String(address, radix: 16), path]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return text.split(separator: "\n").compactMap { line in
        // "  4000:	e9 fb 0f 00 00       	jmp    0x5000"
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
        guard fields.count >= 3, fields[0].hasSuffix(":") else { return nil }
        let instruction = fields[2].split(separator: "#")[0].split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        return instruction.isEmpty ? nil : instruction
    }
}

@Suite struct StubBytesTests {
    func bytes(at address: UInt, count: Int = 16) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: address)!, count: count))
    }

    func hex(_ value: UInt) -> String { "0x" + String(value, radix: 16) }

    @Test func callbackStubFormsReadAsIntended() throws {
        let loader = try Loader(options: .init())
        let crate = try loader.load(try compile("stubs.ssa", "export function l $f(l %x) {\n@start\n\tret %x\n}\n"))
        let stub = UInt(bitPattern: try crate.stub(ofFunction: 0))
        let routines = loader.routines!
        // Live: a jump to the function's entry.
        #expect(try disassemble(bytes(at: stub, count: 5), at: stub) == ["jmp \(hex(crate.entry(ofFunction: 0)))"])
        // Dead: r11 = the stub itself, then to the routine that reports the call by name.
        routines.writeStub(at: stub, target: nil, in: loader.heap)
        #expect(try disassemble(bytes(at: stub, count: 12), at: stub)
                == ["lea r11,[rip+0xfffffffffffffff9]", "jmp \(hex(routines.deadStub))"])
        // Gated: the same, to the gate that waits for the world to resume.
        routines.writeStub(at: stub, target: nil, gated: true, in: loader.heap)
        #expect(try disassemble(bytes(at: stub, count: 12), at: stub)
                == ["lea r11,[rip+0xfffffffffffffff9]", "jmp \(hex(routines.gate))"])
        // And live again, as compaction leaves it.
        routines.writeStub(at: stub, target: crate.entry(ofFunction: 0), in: loader.heap)
        #expect(try disassemble(bytes(at: stub, count: 5), at: stub) == ["jmp \(hex(crate.entry(ofFunction: 0)))"])
    }

    @Test func resolverStubsLoadTheirSlotAndEnterTheResolver() throws {
        let loader = try Loader(options: .init())
        let crate = try loader.load(try compile("caller.ssa", "export function l $g(l %x) {\n@start\n\t%y =l call $labs(l %x)\n\tret %y\n}\n"))
        let toc = crate.toc
        let stub = toc.resolverStubs[0]
        let lines = try disassemble(bytes(at: stub, count: 12), at: stub)
        // lea r11, [rip + d]: d = slot - (stub + 7).
        let displacement = Int(bitPattern: toc.callSlotAddress(0)) - Int(bitPattern: stub + 7)
        #expect(lines == ["lea r11,[rip+\(hex(UInt(bitPattern: displacement)))]", "jmp \(hex(loader.routines.resolver))"])
    }
}
