// Source text and diagnostics.
//
// Every entity of the IR carries a `SourceLocation`: a byte offset into the
// file it came from. Offsets are four bytes and cost nothing to record while
// parsing; the line and column are computed only when a message is printed or
// a line table is built, from the line starts, which are found the first time
// they are needed. A `Diagnostic` is a located message; the front end never stops at the
// first one, it collects them all and the caller decides what to do.

import Synchronization

/// A position in a source file, as a byte offset from its start.
public struct SourceLocation: Hashable, Comparable, Sendable {
    /// Byte offset from the start of the file.
    public var offset: UInt32

    @inlinable public init(offset: UInt32) { self.offset = offset }

    /// Used for entities made by the compiler rather than read from text.
    public static let none = SourceLocation(offset: UInt32.max)

    public static func < (a: SourceLocation, b: SourceLocation) -> Bool { a.offset < b.offset }
}

/// A file's text, its name for messages, and where each of its lines starts.
///
/// The bytes are kept for the life of the module built from them so that
/// messages can quote the offending line.
public final class SourceFile: Sendable {
    /// The name printed in messages (usually the path given on the command line).
    public let name: String
    /// The file's bytes, exactly as read.
    public let bytes: [UInt8]
    /// Byte offsets where lines start, computed on first use (a clean compile never asks).
    private let lineStartsCache = Mutex<[UInt32]?>(nil)

    /// Byte offset of the first character of each line; line 1 starts at 0.
    public var lineStarts: [UInt32] {
        lineStartsCache.withLock { cache in
            if let starts = cache { return starts }
            var starts: [UInt32] = [0]
            starts.reserveCapacity(bytes.count / 24 + 1)
            bytes.withUnsafeBufferPointer { buffer in
                for index in 0..<buffer.count where buffer[index] == 0x0A {
                    starts.append(UInt32(index + 1))
                }
            }
            cache = starts
            return starts
        }
    }

    /// Makes a source file; nothing is scanned until a line is asked for.
    public init(name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }

    /// Makes a source file from a string.
    public convenience init(name: String, text: String) {
        self.init(name: name, bytes: Array(text.utf8))
    }

    /// The 1-based line and column of a location (column counted in bytes).
    public func lineAndColumn(of location: SourceLocation) -> (line: Int, column: Int) {
        guard location != .none else { return (0, 0) }
        let offset = min(location.offset, UInt32(bytes.count))
        let lineStarts = self.lineStarts
        var low = 0
        var high = lineStarts.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if lineStarts[middle] <= offset { low = middle } else { high = middle - 1 }
        }
        return (low + 1, Int(offset - lineStarts[low]) + 1)
    }

    /// The text of a 1-based line, without its line terminator.
    public func lineText(_ line: Int) -> String {
        let lineStarts = self.lineStarts
        guard line >= 1, line <= lineStarts.count else { return "" }
        let start = Int(lineStarts[line - 1])
        var end = line < lineStarts.count ? Int(lineStarts[line]) - 1 : bytes.count
        if end > start, bytes[end - 1] == 0x0D { end -= 1 }
        return String(decoding: bytes[start..<max(start, end)], as: UTF8.self)
    }
}

/// How serious a diagnostic is: errors make a file invalid, warnings do not.
public enum Severity: String, Sendable {
    case error
    case warning
}

/// A message about a place in a source file.
public struct Diagnostic: Sendable, CustomStringConvertible {
    public var severity: Severity
    public var location: SourceLocation
    public var message: String
    /// The file the location refers to.
    public var file: SourceFile

    public init(_ severity: Severity, _ message: String, at location: SourceLocation, in file: SourceFile) {
        self.severity = severity
        self.message = message
        self.location = location
        self.file = file
    }

    /// `file:line:col: error: message`, without the quoted line.
    public var description: String {
        let (line, column) = file.lineAndColumn(of: location)
        return "\(file.name):\(line):\(column): \(severity.rawValue): \(message)"
    }

    /// The one-line form followed by the offending line and a caret under the column.
    public var rendered: String {
        let (line, column) = file.lineAndColumn(of: location)
        guard line > 0 else { return description }
        let text = file.lineText(line)
        var caret = ""
        for (index, byte) in text.utf8.prefix(column - 1).enumerated() where index < column - 1 {
            caret.append(byte == 0x09 ? "\t" : " ")
        }
        return "\(description)\n\(text)\n\(caret)^"
    }
}

/// Collects diagnostics for one file, in the order they are found.
public struct DiagnosticList: Sendable {
    public let file: SourceFile
    public private(set) var all: [Diagnostic] = []

    public init(file: SourceFile) { self.file = file }

    /// Whether any error (not merely a warning) was reported.
    public var hasErrors: Bool { all.contains { $0.severity == .error } }

    /// Only the errors.
    public var errors: [Diagnostic] { all.filter { $0.severity == .error } }

    public mutating func error(_ message: String, at location: SourceLocation) {
        all.append(Diagnostic(.error, message, at: location, in: file))
    }

    public mutating func warning(_ message: String, at location: SourceLocation) {
        all.append(Diagnostic(.warning, message, at: location, in: file))
    }

    /// Puts the diagnostics in file order, keeping the order of those at one place.
    public mutating func sortByLocation() {
        all = all.enumerated().sorted {
            ($0.element.location, $0.offset) < ($1.element.location, $1.offset)
        }.map(\.element)
    }
}
