// `kiln run --watch`: reload a crate when its file changes, once the change is complete.
//
// Editors save in several steps: many truncate the file and then write it,
// some write it in pieces. A watcher that reads as soon as the file changes
// may read an empty or half-written file, compile it, and reload the running
// program with a crate that lacks its functions. So a change is read only
// once it has *settled*: the file's size and modification time have stayed
// the same for `settleTime` (100 ms by default; KILN_WATCH_SETTLE_MS sets
// it), checked every `pollInterval`. The stamp is taken again after the
// read, and a file that changed while it was read waits for the next
// settling. An empty file is taken as one still being written and is not
// reloaded. A file that does not compile is reported (`file:line:col`) and
// the program keeps running the version it has.
//
// The watcher is a thread of its own that never runs generated code (so the
// runtime's stops leave it running); it reloads each new module itself, with
// the program's threads stopped while code changes.

import KilnCode
import KilnLoader
import KilnTooling

/// How long a changed file must stay unchanged before it is read, in milliseconds: the
/// value of KILN_WATCH_SETTLE_MS, or 100.
let settleTime: Int = {
    guard let text = Host.environmentValue("KILN_WATCH_SETTLE_MS"), let value = Int(text), value >= 0 else { return 100 }
    return value
}()

/// How often the watcher looks at the files, in milliseconds.
let pollInterval = 20

/// One watched file: the stamp last read, and a newer stamp waiting to settle.
struct WatchedFile {
    /// (modification time in ns, size), or nil when the file cannot be read.
    typealias Stamp = (time: Int64, size: Int64)

    let path: String
    private var read: Stamp?
    private var pending: (stamp: Stamp?, since: ContinuousClock.Instant)?

    /// Starts from the file as it is now (the version already loaded).
    init(path: String) {
        self.path = path
        self.read = Host.modificationStamp(path)
    }

    /// The file's stamp if it differs from the one last read and has stayed the same for
    /// `settleTime`; nil while nothing changed or the change is still going on.
    mutating func settledChange(now: ContinuousClock.Instant) -> Stamp? {
        let stamp = Host.modificationStamp(path)
        guard !Self.same(stamp, read) else {
            pending = nil
            return nil
        }
        guard let pending, Self.same(pending.stamp, stamp) else {
            self.pending = (stamp, now)
            return nil
        }
        guard let stamp, now - pending.since >= .milliseconds(settleTime) else { return nil }
        return stamp
    }

    /// Records that the version with `stamp` has been read.
    mutating func markRead(_ stamp: Stamp) {
        read = stamp
        pending = nil
    }

    static func same(_ a: Stamp?, _ b: Stamp?) -> Bool {
        a?.time == b?.time && a?.size == b?.size
    }
}

/// Starts a thread that polls the crates' files and asks the loader to reload each one
/// whose change has settled; messages go to standard error.
func startWatching(_ paths: [String], loader: Loader) {
    final class Shared: @unchecked Sendable {
        let loader: Loader
        init(_ loader: Loader) { self.loader = loader }
    }
    let shared = Shared(loader)
    let started = Host.startThread {
        World.exemptCurrentThread()
        var files = paths.map(WatchedFile.init)
        let clock = ContinuousClock()
        while true {
            Host.sleep(milliseconds: pollInterval)
            for index in files.indices {
                guard let stamp = files[index].settledChange(now: clock.now),
                      let module = readChange(of: &files[index], stamp: stamp) else { continue }
                let path = files[index].path
                do {
                    // A thread that could not be stopped this moment (on a busy machine, one
                    // that waits for a processor) makes the reload wait and try again.
                    var attempt = 0
                    while true {
                        do {
                            let start = clock.now
                            let report = try shared.loader.reload(crateNamed: path, with: module)
                            let elapsed = (clock.now - start).components
                            let microseconds = elapsed.seconds * 1_000_000 + elapsed.attoseconds / 1_000_000_000_000
                            printError("kiln: reloaded \(report) in \(microseconds) µs")
                            break
                        } catch LoadError.threadsNotStopped(_) where attempt < 20 {
                            attempt += 1
                            Host.sleep(milliseconds: 100)
                        }
                    }
                } catch {
                    let lines = "\(error)".split(separator: "\n")
                    printError("error: reload of \(path) failed, nothing changed: \(lines.first ?? "")")
                    for line in lines.dropFirst() { printError("error: \(line)") }
                }
            }
        }
    }
    if !started { printError("error: cannot start the file watcher; --watch is off") }
}

/// Reads and compiles a file whose change has settled at `stamp`; nil (after saying why,
/// unless the file changed again while it was read) when there is nothing to reload.
private func readChange(of file: inout WatchedFile, stamp: WatchedFile.Stamp) -> CompiledModule? {
    let bytes: [UInt8]
    do {
        bytes = try Host.readFile(file.path)
    } catch {
        return nil  // gone or unreadable for now: the next change will tell
    }
    // Written to again while it was read: wait for that change to settle.
    guard WatchedFile.same(Host.modificationStamp(file.path), stamp) else { return nil }
    file.markRead(stamp)
    guard !bytes.isEmpty else {
        printError("kiln: \(file.path) is empty; still running the old version")
        return nil
    }
    guard let module = compiledCrate(file.path, contents: bytes) else {
        printError("error: \(file.path) changed but does not compile; still running the old version")
        return nil
    }
    return module
}
