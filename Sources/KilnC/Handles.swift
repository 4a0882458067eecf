// The handles C code holds: 64-bit numbers, never pointers, so that a freed, unloaded or
// made-up handle is found out by a lookup instead of followed.
//
// Rules: numbers come from one counter and are never reused in a process; the table
// owns one `Loader` per loader handle and one `Crate` per crate handle (a crate handle
// keeps its loader alive, so freeing a loader drops its crate handles first). The table's
// lock is held only to look up, add or remove entries, never while Kiln compiles, links
// or runs code, so one loader's long load does not hold up the others.

import KilnLoader
import Synchronization

/// Why a C entry failed: a `kiln_status` and the message `kiln_last_error` returns.
struct EntryError: Error {
    /// The numbers of `kiln_status` in kiln.h.
    enum Status: Int32 {
        case argument = 1, handle = 2, input = 3, link = 4, notFound = 5, state = 6
    }

    var status: Status
    var message: String

    init(_ status: Status, _ message: String) {
        self.status = status
        self.message = message
    }

    /// A loader's error as the C API reports it.
    init(_ error: LoadError) {
        switch error {
        case .invalidArgument(let message): self.init(.argument, message)
        case .notLoaded: self.init(.handle, error.description)
        default: self.init(.link, error.description)
        }
    }
}

/// Every live loader and crate handle of the process.
enum Handles {
    private struct Table {
        var next: UInt64 = 1
        var loaders: [UInt64: Loader] = [:]
        var crates: [UInt64: (loader: UInt64, crate: Crate)] = [:]
    }

    private static let lock = Mutex<Void>(())
    /// Read and written only under `lock` (the loaders and crates in it are not Sendable,
    /// so the table cannot be the mutex's own value).
    nonisolated(unsafe) private static var state = Table()

    private static func locked<T>(_ body: (inout Table) -> T) -> T {
        lock.withLock { _ in body(&state) }
    }

    /// Registers a new loader; its handle.
    static func add(_ loader: Loader) -> UInt64 {
        locked { table in
            let handle = table.next
            table.next += 1
            table.loaders[handle] = loader
            return handle
        }
    }

    /// Registers a crate of loader `owner`; its handle. Fails when the loader was freed
    /// meanwhile (by another thread).
    static func add(_ crate: Crate, of owner: UInt64) throws(EntryError) -> UInt64 {
        let handle: UInt64? = locked { table in
            guard table.loaders[owner] != nil else { return nil }
            let handle = table.next
            table.next += 1
            table.crates[handle] = (owner, crate)
            return handle
        }
        guard let handle else { throw EntryError(.handle, "loader \(owner) was freed while the crate was loaded") }
        return handle
    }

    /// The loader of handle `handle`.
    static func loader(_ handle: UInt64) throws(EntryError) -> Loader {
        let found: Loader?? = locked { table in
            if let loader = table.loaders[handle] { return .some(loader) }
            return table.crates[handle] != nil ? .some(nil) : nil
        }
        switch found {
        case .some(.some(let loader)): return loader
        case .some(.none): throw EntryError(.handle, "handle \(handle) is a crate, not a loader")
        case .none: throw EntryError(.handle, "no loader has handle \(handle) (never made, or freed)")
        }
    }

    /// The crate of handle `handle`, with its loader's handle.
    static func crate(_ handle: UInt64) throws(EntryError) -> (loader: UInt64, crate: Crate) {
        let found: (UInt64, Crate)?? = locked { table in
            if let entry = table.crates[handle] { return .some(entry) }
            return table.loaders[handle] != nil ? .some(nil) : nil
        }
        switch found {
        case .some(.some(let entry)): return entry
        case .some(.none): throw EntryError(.handle, "handle \(handle) is a loader, not a crate")
        case .none: throw EntryError(.handle, "no crate has handle \(handle) (never loaded, unloaded, or its loader freed)")
        }
    }

    /// Forgets a crate handle (after an unload).
    static func removeCrate(_ handle: UInt64) {
        _ = locked { $0.crates.removeValue(forKey: handle) }
    }

    /// Forgets a loader and its crates; returns what the table held, so that the caller
    /// lets go of it outside the lock (freeing a loader runs the program's exit handlers).
    static func removeLoader(_ handle: UInt64) throws(EntryError) -> (Loader, [Crate]) {
        let removed: (Loader, [Crate])? = locked { table in
            guard let loader = table.loaders.removeValue(forKey: handle) else { return nil }
            let owned = table.crates.filter { $0.value.loader == handle }
            for key in owned.keys { table.crates[key] = nil }
            return (loader, owned.values.map(\.crate))
        }
        guard let removed else {
            _ = try loader(handle)  // names what the handle is instead
            throw EntryError(.handle, "no loader has handle \(handle)")
        }
        return removed
    }
}
