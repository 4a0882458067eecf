// Data definitions and string literals.
//
// `data $name = [align N] { letter item..., z N, ... }`. Items are stored as
// written; string literals are decoded with the GNU assembler's escape rules
// (QBE passes them to `.ascii` verbatim, so that is what they mean).

extension Parser {
    func parseData(linkage: Linkage, at location: SourceLocation) throws {
        let nameToken = nextSkippingNewlines()
        guard nameToken.kind == .global else { throw fail("data name ($name) expected after data", at: nameToken) }
        let equals = nextSkippingNewlines()
        guard equals.kind == .equals else { throw fail("'=' expected after the data name", at: equals) }
        var definition = DataDefinition(name: nameToken.name, location: nameToken.location)
        definition.linkage = linkage
        var token = nextSkippingNewlines()
        if keyword(token) == .align {
            let (value, alignToken) = try parseAlignment("data")
            guard value > 0, value <= 127, value & (value - 1) == 0 else {
                throw fail("data alignment must be a power of two from 1 to 64", at: alignToken)
            }
            definition.declaredAlignment = value
            token = nextSkippingNewlines()
        }
        guard token.kind == .leftBrace else { throw fail("data contents in '{ ... }' expected", at: token) }
        itemGroups: while true {
            token = nextSkippingNewlines()
            let letter: ExtType
            var isManaged = false
            switch (token.kind, keyword(token)) {
            case (.rightBrace, _): break itemGroups
            case (.word, .b): letter = .b
            case (.word, .h): letter = .h
            case (.word, .w): letter = .w
            case (.word, .l): letter = .l
            case (.word, .s): letter = .s
            case (.word, .d): letter = .d
            case (.word, .r): letter = .l; isManaged = true
            case (.word, .z):
                let count = nextSkippingNewlines()
                guard count.kind == .integer else { throw fail("byte count expected after z", at: count) }
                integer(count)
                guard Int64(bitPattern: count.bits) >= 0, count.bits < 1 << 48 else {
                    throw fail("zero fill size out of range", at: count)
                }
                definition.items.append(DataItem(kind: .zero(count.bits), type: .b, at: token.location))
                token = nextSkippingNewlines()
                if token.kind == .rightBrace { break itemGroups }
                guard token.kind == .comma else { throw fail("',' or '}' expected in data, found \(describe(token))", at: token) }
                continue itemGroups
            default:
                throw fail("data item type (b, h, w, l, s, d, z or r) expected, found \(describe(token))", at: token)
            }
            token = nextSkippingNewlines()
            var itemCount = 0
            while true {
                guard let item = try parseDataItem(token, letter: letter, isManaged: isManaged) else { break }
                definition.items.append(item)
                itemCount += 1
                token = nextSkippingNewlines()
            }
            if itemCount == 0 { throw fail("constant expected after the item type, found \(describe(token))", at: token) }
            if token.kind == .rightBrace { break itemGroups }
            guard token.kind == .comma else { throw fail("',' or '}' expected in data, found \(describe(token))", at: token) }
        }
        module.data.append(definition)
        module.definitions.append(.data(module.data.count - 1))
    }

    /// One data item, or nil if `token` does not start one.
    func parseDataItem(_ token: Token, letter: ExtType, isManaged: Bool) throws -> DataItem? {
        switch token.kind {
        case .integer:
            integer(token)
            return DataItem(kind: .bits(token.bits), type: letter, isManaged: isManaged, at: token.location)
        case .single:
            return DataItem(kind: .bits(token.bits), type: letter, isManaged: isManaged, floatKind: .single, at: token.location)
        case .double:
            return DataItem(kind: .bits(token.bits), type: letter, isManaged: isManaged, floatKind: .double, at: token.location)
        case .global:
            var offset: Int64 = 0
            if peek().kind == .plus {
                _ = next()
                let number = next()
                guard number.kind == .integer else { throw fail("integer offset expected after '+'", at: number) }
                integer(number)
                offset = Int64(bitPattern: number.bits)
            }
            return DataItem(kind: .address(token.name, offset), type: letter, isManaged: isManaged, at: token.location)
        case .string:
            let start = UInt32(module.stringBytes.count)
            decodeString(token)
            let count = UInt32(module.stringBytes.count) - start
            return DataItem(kind: .string(start: start, count: count), type: letter, isManaged: isManaged, at: token.location)
        case .invalid:
            throw fail(lexer.message(of: token), at: token)
        default:
            return nil
        }
    }

    /// Appends the bytes a string literal denotes to `module.stringBytes`.
    ///
    /// GNU as: `\b \f \n \r \t \\ \"`, up to three octal digits, `\x` and all the
    /// hex digits after it (the low eight bits are kept); any other escaped
    /// character stands for itself, with a warning as the assembler gives.
    func decodeString(_ token: Token) {
        let bytes = module.source.bytes
        var index = Int(token.start)
        let end = Int(token.start + token.count)
        func hexValue(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        while index < end {
            let c = bytes[index]
            index += 1
            guard c == UInt8(ascii: "\\"), index < end else {
                module.stringBytes.append(c)
                continue
            }
            let escaped = bytes[index]
            index += 1
            switch escaped {
            case UInt8(ascii: "b"): module.stringBytes.append(0x08)
            case UInt8(ascii: "f"): module.stringBytes.append(0x0C)
            case UInt8(ascii: "n"): module.stringBytes.append(0x0A)
            case UInt8(ascii: "r"): module.stringBytes.append(0x0D)
            case UInt8(ascii: "t"): module.stringBytes.append(0x09)
            case UInt8(ascii: "v"): module.stringBytes.append(0x0B)
            case UInt8(ascii: "\\"), UInt8(ascii: "\""): module.stringBytes.append(escaped)
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                var value = UInt32(escaped - UInt8(ascii: "0"))
                var digits = 1
                while digits < 3, index < end, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "7") {
                    value = value * 8 + UInt32(bytes[index] - UInt8(ascii: "0"))
                    index += 1
                    digits += 1
                }
                module.stringBytes.append(UInt8(truncatingIfNeeded: value))
            case UInt8(ascii: "x"), UInt8(ascii: "X"):
                var value: UInt8 = 0
                var digits = 0
                while index < end, let digit = hexValue(bytes[index]) {
                    value = value &* 16 &+ digit
                    index += 1
                    digits += 1
                }
                if digits == 0 {
                    diagnostics.warning("\\x used with no following hex digits", at: SourceLocation(offset: UInt32(index - 2)))
                    module.stringBytes.append(UInt8(ascii: "x"))
                } else {
                    module.stringBytes.append(value)
                }
            default:
                diagnostics.warning("unknown escape '\\\(Character(Unicode.Scalar(escaped)))' in string; treated as the character itself",
                                    at: SourceLocation(offset: UInt32(index - 2)))
                module.stringBytes.append(escaped)
            }
        }
    }
}
