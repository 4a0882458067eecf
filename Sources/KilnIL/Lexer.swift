// The lexer: bytes to tokens, one token of lookahead.
//
// It reads the file's bytes through a raw pointer that the parser keeps alive
// for the whole parse, interns every identifier as it goes, and never builds a
// `String` except for a float literal. Newlines are tokens (they end
// instructions); a comment runs to the end of its line and yields the newline.
// Malformed tokens become `.invalid` tokens carrying a message, so the parser
// can report them and resynchronise at the next line.

/// What a token is.
enum TokenKind: UInt8 {
    case eof, newline
    /// A bare word: keyword, opcode or class letter (`Token.name`).
    case word
    case global, temp, label, typeName
    case integer, single, double, string
    case plus, equals, comma, leftParen, rightParen, leftBrace, rightBrace, ellipsis
    case invalid
}

/// One token. Names are interned; literals carry their value.
struct Token {
    var kind: TokenKind = .eof
    var location: SourceLocation = SourceLocation(offset: 0)
    /// For words and sigil tokens: the interned text (without the sigil).
    var name = Name(index: 0)
    /// Integer value (two's complement for negative literals) or float bits.
    var bits: UInt64 = 0
    /// For strings: byte range of the text between the quotes, in the source.
    var start: UInt32 = 0
    var count: UInt32 = 0
    /// For `.invalid`: what was wrong (a byte, not a `String`, so tokens copy for free).
    var problem: LexProblem = .none
    /// For integers: the literal did not fit in 64 bits.
    var overflowed = false
}

/// What made a token `.invalid`. The offending byte, where there is one, is in `Token.bits`.
enum LexProblem: UInt8 {
    case none, invalidCharacter, nameExpected, unterminatedQuotedName, unterminatedString
    case integerAfterMinus, invalidInteger, invalidFloat
}

extension Token {
    /// What was wrong with an `.invalid` token (`Lexer.message(of:)` adds the text of a bad float).
    var message: String {
        switch problem {
        case .none: return ""
        case .invalidCharacter:
            let c = UInt8(truncatingIfNeeded: bits)
            return c >= 0x20 && c < 0x7F ? "invalid character '\(Character(Unicode.Scalar(c)))'"
                : "invalid byte 0x\(String(c, radix: 16))"
        case .nameExpected: return "a name must follow '\(Character(Unicode.Scalar(UInt8(truncatingIfNeeded: bits))))'"
        case .unterminatedQuotedName: return "unterminated quoted name"
        case .unterminatedString: return "unterminated string"
        case .integerAfterMinus: return "integer expected after '-'"
        case .invalidInteger: return "invalid integer literal (only decimal digits are allowed)"
        case .invalidFloat: return "invalid floating-point literal"
        }
    }
}

// Character classes as QBE's lexer uses them, by arithmetic rather than a table:
// a global table is lazily initialised in Swift, and its accessor would run for
// every byte of every name.
@inline(__always) func isLetter(_ c: UInt8) -> Bool { (c | 0x20) &- UInt8(ascii: "a") < 26 }
@inline(__always) func startsName(_ c: UInt8) -> Bool {
    isLetter(c) || c == UInt8(ascii: ".") || c == UInt8(ascii: "_")
}
@inline(__always) func continuesName(_ c: UInt8) -> Bool {
    startsName(c) || isDigit(c) || c == UInt8(ascii: "$")
}
@inline(__always) func isDigit(_ c: UInt8) -> Bool { c &- 0x30 < 10 }

struct Lexer {
    let text: UnsafeBufferPointer<UInt8>
    var position = 0

    init(text: UnsafeBufferPointer<UInt8>) { self.text = text }

    @inline(__always) func byte(at index: Int) -> UInt8 { index < text.count ? text[index] : 0 }

    /// The message of an `.invalid` token, quoting the literal when it is a float.
    func message(of token: Token) -> String {
        guard token.problem == .invalidFloat else { return token.message }
        let range = Int(token.start)..<Int(token.start + token.count)
        let literal = String(decoding: UnsafeBufferPointer(rebasing: text[range]), as: UTF8.self)
        return "invalid floating-point literal '\(literal)'"
    }

    /// Reads the next token, interning names into `names`.
    mutating func next(_ names: inout NameTable) -> Token {
        var token = Token()
        // Skip blanks (and a carriage return before a newline).
        while position < text.count {
            let c = text[position]
            if c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0B || c == 0x0C { position += 1 } else { break }
        }
        token.location = SourceLocation(offset: UInt32(truncatingIfNeeded: position))
        guard position < text.count else {
            token.kind = .eof
            return token
        }
        let c = text[position]
        switch c {
        case UInt8(ascii: "\n"):
            position += 1
            token.kind = .newline
        case UInt8(ascii: "#"):
            while position < text.count && text[position] != 0x0A { position += 1 }
            if position < text.count {
                position += 1
                token.kind = .newline
            } else {
                token.kind = .eof
            }
        case UInt8(ascii: ","): position += 1; token.kind = .comma
        case UInt8(ascii: "("): position += 1; token.kind = .leftParen
        case UInt8(ascii: ")"): position += 1; token.kind = .rightParen
        case UInt8(ascii: "{"): position += 1; token.kind = .leftBrace
        case UInt8(ascii: "}"): position += 1; token.kind = .rightBrace
        case UInt8(ascii: "="): position += 1; token.kind = .equals
        case UInt8(ascii: "+"): position += 1; token.kind = .plus
        case UInt8(ascii: "%"): sigilName(.temp, &token, &names)
        case UInt8(ascii: "@"): sigilName(.label, &token, &names)
        case UInt8(ascii: ":"): sigilName(.typeName, &token, &names)
        case UInt8(ascii: "$"):
            if byte(at: position + 1) == UInt8(ascii: "\"") {
                position += 1
                quotedGlobal(&token, &names)
            } else {
                sigilName(.global, &token, &names)
            }
        case UInt8(ascii: "\""):
            string(&token)
        case UInt8(ascii: "-"):
            integer(&token)
        default:
            if isDigit(c) {
                integer(&token)
            } else if (c == UInt8(ascii: "s") || c == UInt8(ascii: "d")) && byte(at: position + 1) == UInt8(ascii: "_") {
                float(&token, single: c == UInt8(ascii: "s"))
            } else if startsName(c) {
                word(&token, &names)
            } else {
                position += 1
                token.kind = .invalid
                token.problem = .invalidCharacter
                token.bits = UInt64(c)
            }
        }
        return token
    }

    /// The extent of a name starting at `position`; empty if none starts there.
    @inline(__always) mutating func scanName() -> Range<Int> {
        let start = position
        guard position < text.count, startsName(text[position]) else { return start..<start }
        position += 1
        while position < text.count && continuesName(text[position]) { position += 1 }
        return start..<position
    }

    mutating func sigilName(_ kind: TokenKind, _ token: inout Token, _ names: inout NameTable) {
        let sigil = text[position]
        position += 1
        let range = scanName()
        if range.isEmpty {
            token.kind = .invalid
            token.problem = .nameExpected
            token.bits = UInt64(sigil)
            return
        }
        token.kind = kind
        token.name = names.intern(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: text[range])))
    }

    /// `$"any text"`: the name keeps its quotes, as QBE emits it verbatim.
    mutating func quotedGlobal(_ token: inout Token, _ names: inout NameTable) {
        let start = position
        guard let end = scanQuoted() else {
            token.kind = .invalid
            token.problem = .unterminatedQuotedName
            return
        }
        token.kind = .global
        token.name = names.intern(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: text[start..<end])))
    }

    /// Skips a quoted run starting at the opening quote; returns the index after the closing one.
    mutating func scanQuoted() -> Int? {
        position += 1
        var escaped = false
        while position < text.count {
            let c = text[position]
            position += 1
            if c == UInt8(ascii: "\"") && !escaped { return position }
            escaped = c == UInt8(ascii: "\\") && !escaped
        }
        return nil
    }

    mutating func string(_ token: inout Token) {
        let open = position
        guard let end = scanQuoted() else {
            token.kind = .invalid
            token.problem = .unterminatedString
            return
        }
        token.kind = .string
        token.start = UInt32(open + 1)
        token.count = UInt32(end - 1 - (open + 1))
    }

    mutating func integer(_ token: inout Token) {
        var negative = false
        if text[position] == UInt8(ascii: "-") {
            negative = true
            position += 1
            guard position < text.count, isDigit(text[position]) else {
                token.kind = .invalid
                token.problem = .integerAfterMinus
                return
            }
        }
        var value: UInt64 = 0
        var overflowed = false
        while position < text.count, isDigit(text[position]) {
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(text[position] &- 0x30))
            overflowed = overflowed || o1 || o2
            value = sum
            position += 1
        }
        if position < text.count, startsName(text[position]) {
            // `12ab` is not a number followed by a word; say so instead of guessing.
            while position < text.count && continuesName(text[position]) { position += 1 }
            token.kind = .invalid
            token.problem = .invalidInteger
            return
        }
        token.kind = .integer
        token.bits = negative ? 0 &- value : value
        token.overflowed = overflowed
    }

    mutating func float(_ token: inout Token, single: Bool) {
        position += 2
        let start = position
        while position < text.count {
            let c = text[position]
            let isExponentSign = (c == UInt8(ascii: "-") || c == UInt8(ascii: "+")) && position > start
                && [UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "p"), UInt8(ascii: "P")].contains(text[position - 1])
            if continuesName(c) || isExponentSign || (position == start && (c == UInt8(ascii: "-") || c == UInt8(ascii: "+"))) {
                position += 1
            } else {
                break
            }
        }
        let literal = String(decoding: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: text[start..<position])), as: UTF8.self)
        if single, let value = Float(literal) {
            token.kind = .single
            token.bits = UInt64(value.bitPattern)
        } else if !single, let value = Double(literal) {
            token.kind = .double
            token.bits = value.bitPattern
        } else {
            token.kind = .invalid
            token.problem = .invalidFloat
            token.start = UInt32(start - 2)
            token.count = UInt32(position - start + 2)
        }
    }

    mutating func word(_ token: inout Token, _ names: inout NameTable) {
        let range = scanName()
        if range.count == 3, text[range.lowerBound] == UInt8(ascii: "."),
           text[range.lowerBound + 1] == UInt8(ascii: "."), text[range.lowerBound + 2] == UInt8(ascii: ".") {
            token.kind = .ellipsis
            return
        }
        token.kind = .word
        token.name = names.intern(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: text[range])))
    }
}
