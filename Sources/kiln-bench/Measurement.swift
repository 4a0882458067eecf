// Measuring: a monotonic clock, memory figures, option parsing, a table.
//
// Everything here reads the process's own state; nothing changes it except
// `resetPeakMemory`, which asks Linux to restart the peak resident-set count so
// a benchmark can report the peak of its own phase.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A problem with the command line, printed as the error message.
struct UsageError: Error, CustomStringConvertible {
    var description: String
}

/// `--name value` options after the subcommand, with defaults.
struct Options {
    private var values: [String: String] = [:]

    init(_ arguments: [String], allowed: Set<String>) throws {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            guard argument.hasPrefix("--"), allowed.contains(String(argument.dropFirst(2))) else {
                throw UsageError(description: "unknown option \(argument) (options: \(allowed.sorted().map { "--" + $0 }.joined(separator: " ")))")
            }
            guard index + 1 < arguments.count else { throw UsageError(description: "\(argument) needs a value") }
            values[String(argument.dropFirst(2))] = arguments[index + 1]
            index += 2
        }
    }

    func integer(_ name: String, default value: Int) throws -> Int {
        guard let text = values[name] else { return value }
        guard let number = Int(text.replacingUnderscores()), number > 0 else {
            throw UsageError(description: "--\(name) takes a positive integer, not \(text)")
        }
        return number
    }

    func string(_ name: String) -> String? { values[name] }
}

extension String {
    func replacingUnderscores() -> String { String(filter { $0 != "_" && $0 != "," }) }

    /// The string padded with spaces on the right to `width` characters.
    func padding(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
}

/// Seconds elapsed while running `body`.
func seconds(_ body: () -> Void) -> Double {
    let clock = ContinuousClock()
    let elapsed = clock.measure(body)
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
}

/// The median of a non-empty list.
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// Resident-set figures in bytes: the peak so far and the current size.
struct MemoryUsage {
    var peak: Int
    var current: Int

    /// Reads `/proc/self/status` (VmHWM, VmRSS); elsewhere, getrusage's peak.
    static func now() -> MemoryUsage {
        var usage = MemoryUsage(peak: 0, current: 0)
        #if os(Linux)
        if let file = fopen("/proc/self/status", "r") {
            defer { fclose(file) }
            var buffer = [CChar](repeating: 0, count: 256)
            while fgets(&buffer, Int32(buffer.count), file) != nil {
                let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
                if line.hasPrefix("VmHWM:") { usage.peak = kilobytes * 1024 }
                if line.hasPrefix("VmRSS:") { usage.current = kilobytes * 1024 }
            }
        }
        #endif
        if usage.peak == 0 {
            var resources = rusage()
            #if os(Linux)
            getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &resources)
            usage.peak = Int(resources.ru_maxrss) * 1024
            #else
            getrusage(RUSAGE_SELF, &resources)
            usage.peak = Int(resources.ru_maxrss)
            #endif
        }
        return usage
    }

    /// Restarts the peak count at the current size (Linux only; elsewhere a no-op).
    static func resetPeak() {
        #if os(Linux)
        if let file = fopen("/proc/self/clear_refs", "w") {
            fputs("5", file)
            fclose(file)
        }
        #endif
    }
}

/// Writes bytes to a file, replacing it.
func write(_ bytes: [UInt8], to path: String) throws {
    guard let file = fopen(path, "wb") else { throw UsageError(description: "cannot open \(path) for writing") }
    defer { fclose(file) }
    let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
    if written != bytes.count { throw UsageError(description: "short write to \(path)") }
}

/// Formatting for the tables.
enum Format {
    /// `1234567` as `1,234,567`.
    static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var result = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { result.append(",") }
            result.append(digit)
        }
        return value < 0 ? "-" + result : result
    }

    /// A number with `places` decimals.
    static func fixed(_ value: Double, _ places: Int) -> String {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        var text = "\(rounded)"
        if text.contains("e") { return text }
        let decimals = text.split(separator: ".", omittingEmptySubsequences: false).dropFirst().first?.count ?? 0
        if decimals == 0 && places > 0 { text += "." }
        return text + String(repeating: "0", count: max(0, places - decimals))
    }

    static func megabytes(_ bytes: Int) -> String { fixed(Double(bytes) / 1_048_576, 1) + " MB" }

    static func milliseconds(_ seconds: Double) -> String { fixed(seconds * 1000, 1) + " ms" }

    /// Rows of (label, value) with the labels aligned.
    static func table(_ title: String, _ rows: [(String, String)]) -> String {
        let width = rows.map(\.0.count).max() ?? 0
        return ([title] + rows.map { "  " + $0.0.padding(width + 2) + $0.1 }).joined(separator: "\n")
    }
}
