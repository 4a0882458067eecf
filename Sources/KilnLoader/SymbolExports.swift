// Crate exports seen by C: the exported functions of chosen crates become global symbols
// of the process, so that shared objects the program opens later with dlopen resolve
// them (a C extension module calling back into the interpreter that loaded it).
//
// Opt-in per crate (`Loader.exportSymbols(of:)`). Each time, the functions not published
// yet go into one new forwarding object (ForwardingObject.swift), written to a memfd and
// opened RTLD_NOW | RTLD_GLOBAL. A published name stays published for the life of the
// process: its slot holds the function's callback stub, so it reaches the current version
// through every reload and compaction, reports a clear error once a reload or unload
// removed the function, and, after its loader is freed, reports that instead of jumping
// into freed memory. A reload of a published crate publishes the exports it adds.
//
// Rules: the loader's lock is held only to choose the names and their stubs, never around
// dlopen (a library's constructor may call crate code, which may enter the runtime). A
// name the process already defines (in the program, libc, an earlier object) keeps that
// definition: dlopen's global scope is searched in load order.

import Glibc
import KilnCode
import Synchronization

/// Which crates and names a loader has made visible to C, and the objects that hold them.
final class SymbolExports {
    /// The crates that opted in, by name.
    var crates: Set<String> = []
    /// Every published name with the address of its slot.
    var slots: [String: UInt] = [:]
    /// The objects opened; never closed (C code may have bound to their symbols).
    var objects: [UnsafeMutableRawPointer] = []
    /// Objects made by every loader of the process, to name each one apart.
    static let objectsMade = Atomic<Int>(0)

    deinit {
        // The stubs the slots point at go with the loader: re-point every slot at a routine
        // that reports the call. The slots lie in the objects' writable segments.
        let routine: @convention(c) () -> Void = {
            System.flushAllStreams()
            System.writeStandardError("kiln: error: a library called a crate export whose loader was freed\n")
            _exit(70)
        }
        let address = UInt(bitPattern: unsafeBitCast(routine, to: UnsafeRawPointer.self))
        for slot in slots.values { UnsafeMutablePointer<UInt>(bitPattern: slot)!.pointee = address }
    }
}

extension Loader {
    /// Makes `crate`'s exported functions resolvable by shared objects opened from now on
    /// (by the program's own dlopen, or by the host), and keeps doing so for the exports
    /// later reloads add. Calls reach the current version of each function.
    public func exportSymbols(of crate: Crate) throws(LoadError) {
        lock.locked { _ = symbolExports.crates.insert(crate.name) }
        try publishExports(of: crate.state)
    }

    /// The names exported to C so far, in no particular order.
    public var symbolsExportedToC: [String] { lock.locked { Array(symbolExports.slots.keys) } }

    /// Publishes the exported functions of `crate` (if it opted in) that are not published yet.
    func publishExports(of crate: CrateState) throws(LoadError) {
        var pending: [(name: String, stub: UInt)] = []
        lock.lock()
        do throws(LoadError) {
            guard symbolExports.crates.contains(crate.name), let version = crate.current else {
                lock.unlock()
                return
            }
            for function in version.module.functions where function.isExported {
                let name = unquoted(function.name)
                guard symbolExports.slots[name] == nil else { continue }
                // Held for code: no host may free a stub a published symbol leads to.
                pending.append((name, try stubAddress(crate: crate, functionName: name, forCode: true)))
                symbolExports.slots[name] = 0  // reserved until the object is open
            }
        } catch {
            for (name, _) in pending { symbolExports.slots[name] = nil }
            lock.unlock()
            throw error
        }
        lock.unlock()
        guard !pending.isEmpty else { return }
        do throws(SystemError) {
            let (handle, slots) = try openForwardingObject(pending)
            lock.locked {
                symbolExports.objects.append(handle)
                for (index, entry) in pending.enumerated() { symbolExports.slots[entry.name] = slots[index] }
            }
        } catch {
            lock.locked { for (name, _) in pending { symbolExports.slots[name] = nil } }
            throw .system(error)
        }
    }

    /// Writes a forwarding object for `symbols` (its slots filled in already) to a memfd
    /// and opens it with global scope; the handle and each symbol's slot address.
    private func openForwardingObject(_ symbols: [(name: String, stub: UInt)]) throws(SystemError)
        -> (UnsafeMutableRawPointer, [UInt])
    {
        let soname = "kiln-exports-\(getpid())-\(SymbolExports.objectsMade.add(1, ordering: .relaxed).oldValue).so"
        let object = ForwardingObject(soname: soname, names: symbols.map(\.name))
        var bytes = object.bytes
        for (index, symbol) in symbols.enumerated() {
            for byte in 0..<8 { bytes[object.slotOffsets[index] + byte] = UInt8(truncatingIfNeeded: symbol.stub >> (8 * byte)) }
        }
        // The descriptor stays open for the life of the process: the dynamic linker knows
        // objects by path, and /proc/self/fd/N with N reused would name an open object.
        let descriptor = try System.memfd(name: soname)
        do {
            try System.writeAll(descriptor, bytes)
        } catch {
            System.close(descriptor)
            throw error
        }
        let handle: UnsafeMutableRawPointer
        do {
            handle = try System.openLibrary("/proc/self/fd/\(descriptor)")
        } catch {
            System.close(descriptor)
            throw error
        }
        // The object's load address, from where its first stub landed.
        guard let first = System.lookUp(symbols[0].name, in: handle) else {
            throw SystemError("dlsym", message: "the forwarding object does not define \(symbols[0].name)")
        }
        let base = UInt(bitPattern: first) - UInt(object.stubOffsets[0])
        return (handle, object.slotOffsets.map { base + UInt($0) })
    }
}
