// The crates of one loader: which are loaded (and which were unloaded but may
// still run), which crate exports which name, which call slot belongs to which
// crate version, and which crates use which. Everything that resolves a name
// to a crate reads it; loading, reloading and unloading change it, under the
// loader's lock. It holds no code and no memory of its own.

import KilnCode

/// The loader's book of crates and names; see the file comment.
final class CrateRegistry {
    /// An exported symbol and the crate that defines it.
    struct Export {
        let crate: CrateState
        /// `.function(i)` or `.data(i)`.
        let target: RelocationTarget
    }

    /// Every loaded crate, in load order.
    var loaded: [CrateState] = []
    var byName: [String: CrateState] = [:]
    /// Exports by name without quotes.
    var exports: [String: Export] = [:]
    /// Call slot address → its crate, version and index, for the resolver.
    var callSlotOwners: [UInt: (crate: CrateState, version: CrateVersion, index: Int)] = [:]
    /// Crate name → names of the crates that import from it, in the order they started to.
    var users: [String: [String]] = [:]
    /// Unloaded crates whose code may still run (calls in progress); dropped when collected.
    var unloaded: [CrateState] = []

    /// Loaded and unloaded crates: every crate that may still run code.
    var all: [CrateState] { loaded + unloaded }

    func register(_ crate: CrateState) {
        byName[crate.name] = crate
        registerExports(of: crate)
        registerSlots(of: crate.live, in: crate)
    }
    /// Removes the exports `crate`'s current (or last) version registered, or `version`'s.
    func unregisterExports(of crate: CrateState, version: CrateVersion? = nil) {
        let module = (version ?? crate.live).module
        let names = module.functions.filter(\.isExported).map { unquoted($0.name) }
            + module.data.filter(\.isExported).map { unquoted($0.name) }
        for name in names where exports[name]?.crate === crate { exports[name] = nil }
    }
    /// The users of `crate`: the crates that import a symbol it exports (by name), and
    /// unloaded crates, whose code may still run and call it.
    func userStates(of crate: CrateState) -> [CrateState] {
        (users[crate.name] ?? []).compactMap { byName[$0] } + unloaded
    }
    /// Forgets `crate` as a user of the crates it imports from, and its own users list.
    func forgetUses(of crate: CrateState) {
        users[crate.name] = nil
        for version in crate.versions {
            for name in version.module.externalSymbols {
                guard let used = exports[unquoted(name)]?.crate else { continue }
                users[used.name]?.removeAll { $0 == crate.name }
            }
        }
    }
    func registerExports(of crate: CrateState) {
        for (index, function) in crate.module.functions.enumerated() where function.isExported {
            exports[unquoted(function.name)] = Export(crate: crate, target: .function(index))
        }
        for (index, object) in crate.module.data.enumerated() where object.isExported {
            exports[unquoted(object.name)] = Export(crate: crate, target: .data(index))
        }
    }
    func registerSlots(of version: CrateVersion, in crate: CrateState) {
        for index in version.toc.callSlots.indices {
            callSlotOwners[version.toc.callSlotAddress(index)] = (crate, version, index)
        }
    }
    /// Records that `crate` uses every crate whose exports it imports (bound or not yet).
    func noteUsers(of crate: CrateState) {
        for name in crate.module.externalSymbols {
            guard let export = exports[unquoted(name)], export.crate !== crate else { continue }
            noteUser(crate, of: export.crate)
        }
    }
    func noteUser(_ user: CrateState, of used: CrateState) {
        if !(users[used.name]?.contains(user.name) ?? false) {
            users[used.name, default: []].append(user.name)
        }
    }
}
