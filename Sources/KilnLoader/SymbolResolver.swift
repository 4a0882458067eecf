// Finding symbols outside the crates: Kiln's own runtime symbols, the shared
// objects given with `--link` (in link order), then the process's global scope.
//
// A program's thread must find the C library as it left it. Two pieces of C
// state are per thread and would change under a lookup: errno (the caller of
// the resolver restores it) and dlerror's pending message, which a successful
// dlsym clears: a program that calls dlopen, fails, then calls dlerror through
// a slot not yet bound would read NULL. So every name a crate calls is looked
// up when the crate is loaded, on the loading thread, and kept here; a call
// slot bound on a program's thread finds its target in this cache, and a name
// that was not found then (a library the program opens itself later) is
// looked up on a thread of its own (`kiln_dlsym_elsewhere`).
//
// The resolver owns the `--link` libraries: they stay open for the loader's
// life and close with it.

import CKilnShim

/// The symbols outside the crates of one loader; see the file comment.
final class SymbolResolver {
    private(set) var libraries: [(path: String, handle: UnsafeMutableRawPointer)] = []
    /// Addresses found so far, by bare name.
    private var found: [String: UInt] = [:]

    deinit {
        for library in libraries.reversed() { System.closeLibrary(library.handle) }
    }

    /// Opens a shared object (RTLD_NOW | RTLD_GLOBAL) that later lookups search.
    func link(library path: String) throws(SystemError) {
        libraries.append((path, try System.openLibrary(path)))
    }

    /// The address of `bare` (a name without quotes) on the calling thread; dlerror's state
    /// may change.
    func address(of bare: String) -> UInt? {
        if let address = found[bare] { return address }
        let address = Loader.runtimeSymbols[bare] ?? lookUp(bare)
        if let address { found[bare] = address }
        return address
    }

    /// The address of `bare` without changing the calling thread's dlerror state.
    func addressLeavingThreadState(of bare: String) -> UInt? {
        if let address = found[bare] ?? Loader.runtimeSymbols[bare] { return address }
        let handles = libraries.map { UnsafeMutableRawPointer?($0.handle) }
        let address = handles.withUnsafeBufferPointer { buffer in
            kiln_dlsym_elsewhere(buffer.baseAddress, Int32(buffer.count), bare)
        }.map { UInt(bitPattern: $0) }
        if let address { found[bare] = address }
        return address
    }

    private func lookUp(_ bare: String) -> UInt? {
        for library in libraries {
            if let address = System.lookUp(bare, in: library.handle) { return UInt(bitPattern: address) }
        }
        return System.lookUp(bare, in: nil).map { UInt(bitPattern: $0) }
    }
}
