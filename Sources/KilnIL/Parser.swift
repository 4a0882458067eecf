// The parser: tokens to a `Module`, collecting every error.
//
// The grammar is QBE's (doc/il.txt plus what its parse.c accepts), with Kiln's
// superset from docs/IL-EXTENSIONS.md. Each definition is parsed by a method
// that throws a `ParseError` at the first thing it cannot read; the caller
// records it and resynchronises — at the next line inside a function body, at
// the next top-level keyword outside — so one run reports every error of a file.
// Rules that need the whole function or module (classes, phi predecessors,
// undefined symbols) are the verifier's, not the parser's.

/// A located error that stops the current line or definition.
struct ParseError: Error {
    var message: String
    var location: SourceLocation
}

/// Parses IL text into a module. Never traps: every problem becomes a diagnostic.
public func parseModule(_ source: SourceFile) -> (Module, DiagnosticList) {
    let parser = Parser(source: source)
    source.bytes.withUnsafeBufferPointer { buffer in
        parser.lexer = Lexer(text: buffer)
        parser.parseTopLevel()
        parser.lexer = Lexer(text: UnsafeBufferPointer(start: nil, count: 0))
    }
    return (parser.module, parser.diagnostics)
}

final class Parser {
    var module: Module
    var diagnostics: DiagnosticList
    var lexer = Lexer(text: UnsafeBufferPointer(start: nil, count: 0))
    var lookahead: Token?
    /// The kind of the token `next()` returned last (error recovery reads it).
    var previousKind: TokenKind = .newline
    /// The aggregate types defined so far, by name (types must be defined before use).
    var typeByName: [Name: TypeID] = [:]

    // Per-function state, reset by `beginFunction`.
    var function = Function(name: Name(index: 0), location: .none)
    var generation: UInt32 = 0
    var tempStamp: [UInt32] = []
    var tempSlot: [UInt32] = []
    var blockStamp: [UInt32] = []
    var blockSlot: [UInt32] = []
    /// Open-addressing table of the function's constants (indices + 1; 0 is empty), so each
    /// constant is stored once without hashing through `Hasher`.
    var constantSlots: [UInt32] = Array(repeating: 0, count: 256)
    /// The slots filled for the current function, to clear them when the next one starts.
    var usedConstantSlots: [Int] = []
    var blockOrder: [UInt32] = []
    var blockFirstUse: [SourceLocation] = []
    var currentBlock: Int?
    var blockHasInstructions = false

    init(source: SourceFile) {
        module = Module(source: source)
        diagnostics = DiagnosticList(file: source)
    }

    // MARK: Tokens

    @inline(__always) func peek() -> Token {
        if let token = lookahead { return token }
        let token = lexer.next(&module.names)
        lookahead = token
        return token
    }

    @inline(__always) func next() -> Token {
        let token: Token
        if let peeked = lookahead {
            lookahead = nil
            token = peeked
        } else {
            token = lexer.next(&module.names)
        }
        previousKind = token.kind
        return token
    }

    /// The next token that is not a newline.
    func nextSkippingNewlines() -> Token {
        while true {
            let token = next()
            if token.kind != .newline { return token }
        }
    }

    func peekSkippingNewlines() -> Token {
        while peek().kind == .newline { _ = next() }
        return peek()
    }

    func fail(_ message: String, at token: Token) -> ParseError {
        if token.kind == .invalid { return ParseError(message: lexer.message(of: token), location: token.location) }
        return ParseError(message: message, location: token.location)
    }

    func expect(_ kind: TokenKind, _ what: String) throws -> Token {
        let token = next()
        guard token.kind == kind else { throw fail("\(what) expected, found \(describe(token))", at: token) }
        return token
    }

    /// A short description of a token for messages.
    func describe(_ token: Token) -> String {
        switch token.kind {
        case .eof: "end of file"
        case .newline: "end of line"
        case .word: "'\(module.text(token.name))'"
        case .global: "'$\(module.text(token.name))'"
        case .temp: "'%\(module.text(token.name))'"
        case .label: "'@\(module.text(token.name))'"
        case .typeName: "':\(module.text(token.name))'"
        case .integer: "integer \(Int64(bitPattern: token.bits))"
        case .single, .double: "a floating-point literal"
        case .string: "a string"
        case .plus: "'+'"
        case .equals: "'='"
        case .comma: "','"
        case .leftParen: "'('"
        case .rightParen: "')'"
        case .leftBrace: "'{'"
        case .rightBrace: "'}'"
        case .ellipsis: "'...'"
        case .invalid: lexer.message(of: token)
        }
    }

    func keyword(_ token: Token) -> Keyword? {
        token.kind == .word ? module.names.keyword(token.name) : nil
    }

    /// Consumes a class letter `r` if it comes next (`env r %c`); whether it did.
    func peekIsReferenceClass() -> Bool {
        guard keyword(peek()) == .r else { return false }
        _ = next()
        return true
    }

    /// Reads an integer literal and reports one that does not fit in 64 bits.
    func integer(_ token: Token) {
        if token.overflowed {
            diagnostics.error("integer literal does not fit in 64 bits", at: token.location)
        }
    }

    // MARK: Top level

    func parseTopLevel() {
        while true {
            let token = peekSkippingNewlines()
            if token.kind == .eof { break }
            do {
                try parseDefinition()
            } catch let error as ParseError {
                diagnostics.error(error.message, at: error.location)
                skipToNextDefinition()
            } catch {
                diagnostics.error("\(error)", at: token.location)
                skipToNextDefinition()
            }
        }
    }

    /// After an error outside a function body: skip to a line that starts a definition.
    func skipToNextDefinition() {
        var atLineStart = previousKind == .newline
        while true {
            let token = peek()
            if token.kind == .eof { return }
            if atLineStart, let word = keyword(token) {
                switch word {
                case .function, .data, .type, .export, .section, .dbgfile, .common, .thread: return
                default: break
                }
            }
            atLineStart = token.kind == .newline
            _ = next()
        }
    }

    func parseDefinition() throws {
        var linkage = Linkage()
        var hasLinkage = false
        var token = nextSkippingNewlines()
        linkageLoop: while let word = keyword(token) {
            switch word {
            case .export: linkage.isExport = true
            case .thread: linkage.isThread = true
            case .common: linkage.isCommon = true
            case .section:
                if linkage.section != nil { throw fail("only one section allowed", at: token) }
                let name = try expect(.string, "section \"name\"")
                linkage.section = rawText(name)
                if peek().kind == .string { linkage.sectionFlags = rawText(next()) }
            default:
                break linkageLoop
            }
            hasLinkage = true
            token = nextSkippingNewlines()
        }
        let word = keyword(token)
        if hasLinkage && word != .data && word != .function {
            throw fail("only data and function definitions have linkage; found \(describe(token))", at: token)
        }
        switch word {
        case .function:
            if linkage.isThread { throw fail("only data may have thread linkage", at: token) }
            if linkage.isCommon { throw fail("only data may have common linkage", at: token) }
            try parseFunction(linkage: linkage, at: token.location)
        case .data:
            try parseData(linkage: linkage, at: token.location)
        case .type:
            try parseType(at: token.location)
        case .dbgfile:
            let path = try expect(.string, "file name string after dbgfile")
            module.debugFiles.append(rawText(path))
            module.definitions.append(.debugFile(module.debugFiles.count - 1))
        default:
            throw fail("top-level definition expected (function, data, type or dbgfile), found \(describe(token))", at: token)
        }
    }

    /// The raw text between a string token's quotes.
    func rawText(_ token: Token) -> String {
        let bytes = module.source.bytes[Int(token.start)..<Int(token.start + token.count)]
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Types

    func parseAlignment(_ what: String) throws -> (UInt64, Token) {
        let token = nextSkippingNewlines()
        guard token.kind == .integer else { throw fail("alignment expected after align", at: token) }
        integer(token)
        return (token.bits, token)
    }

    func parseType(at location: SourceLocation) throws {
        let nameToken = nextSkippingNewlines()
        guard nameToken.kind == .typeName else { throw fail("type name (:name) expected after type", at: nameToken) }
        let equals = nextSkippingNewlines()
        guard equals.kind == .equals else { throw fail("'=' expected after the type name", at: equals) }
        var type = AggregateType(name: nameToken.name, location: nameToken.location)
        var token = nextSkippingNewlines()
        if keyword(token) == .align {
            let (value, alignToken) = try parseAlignment("type")
            if value == 0 || value & (value - 1) != 0 || value > 1 << 30 {
                throw fail("type alignment must be a power of two no larger than 2^30", at: alignToken)
            }
            type.declaredAlignment = value
            token = nextSkippingNewlines()
        }
        guard token.kind == .leftBrace else { throw fail("type body must start with '{'", at: token) }
        token = nextSkippingNewlines()
        if token.kind == .integer {
            integer(token)
            guard let alignment = type.declaredAlignment else {
                throw fail("an opaque type needs an alignment (type :t = align N { size })", at: token)
            }
            type.isOpaque = true
            type.alignment = alignment
            let size = token.bits
            guard size < 1 << 48 else { throw fail("opaque type size is too large", at: token) }
            type.size = (size + alignment - 1) & ~(alignment - 1)
            let close = nextSkippingNewlines()
            guard close.kind == .rightBrace else { throw fail("'}' expected after the size of an opaque type", at: close) }
        } else {
            var alignment = type.declaredAlignment ?? 1
            var size: UInt64 = 0
            if token.kind == .leftBrace {
                type.isUnion = true
                repeat {
                    guard token.kind == .leftBrace else { throw fail("'{' expected to start a union member", at: token) }
                    let (fields, variantSize, variantAlignment) = try parseFields(first: nextSkippingNewlines())
                    type.variants.append(fields)
                    size = max(size, variantSize)
                    alignment = max(alignment, variantAlignment)
                    token = nextSkippingNewlines()
                } while token.kind != .rightBrace
            } else {
                let (fields, structSize, structAlignment) = try parseFields(first: token)
                type.variants.append(fields)
                size = structSize
                alignment = max(alignment, structAlignment)
            }
            type.alignment = alignment
            type.size = (size + alignment - 1) & ~(alignment - 1)
        }
        if let existing = typeByName[type.name] {
            diagnostics.error("type :\(module.text(type.name)) is defined twice (first at \(position(module.type(existing).location)))",
                              at: nameToken.location)
        }
        let id = TypeID(index: UInt32(module.types.count))
        module.types.append(type)
        typeByName[type.name] = id
        module.definitions.append(.type(id))
    }

    /// `line:col` of a location, for messages that point at a second place.
    func position(_ location: SourceLocation) -> String {
        let (line, column) = module.source.lineAndColumn(of: location)
        return "\(line):\(column)"
    }

    /// Parses `field, field ... }` (the opening brace already read). Returns fields, size, alignment.
    func parseFields(first: Token) throws -> ([Field], UInt64, UInt64) {
        var fields: [Field] = []
        var size: UInt64 = 0
        var alignment: UInt64 = 1
        var token = first
        while token.kind != .rightBrace {
            let kind: Field.Kind
            let fieldSize: UInt64
            let fieldAlignment: UInt64
            switch (token.kind, keyword(token)) {
            case (.word, .b): kind = .scalar(.b); fieldSize = 1; fieldAlignment = 1
            case (.word, .h): kind = .scalar(.h); fieldSize = 2; fieldAlignment = 2
            case (.word, .w): kind = .scalar(.w); fieldSize = 4; fieldAlignment = 4
            case (.word, .s): kind = .scalar(.s); fieldSize = 4; fieldAlignment = 4
            case (.word, .l): kind = .scalar(.l); fieldSize = 8; fieldAlignment = 8
            case (.word, .d): kind = .scalar(.d); fieldSize = 8; fieldAlignment = 8
            case (.typeName, _):
                guard let id = typeByName[token.name] else {
                    throw fail("undefined type :\(module.text(token.name)) (types must be defined before use)", at: token)
                }
                kind = .aggregate(id)
                fieldSize = module.type(id).size
                fieldAlignment = module.type(id).alignment
            default:
                throw fail("field type (b, h, w, l, s, d or :type) expected, found \(describe(token))", at: token)
            }
            let location = token.location
            alignment = max(alignment, fieldAlignment)
            size = (size + fieldAlignment - 1) & ~(fieldAlignment - 1)
            token = nextSkippingNewlines()
            var count: UInt64 = 1
            if token.kind == .integer {
                integer(token)
                count = token.bits
                guard count < 1 << 32 else { throw fail("field count is too large", at: token) }
                token = nextSkippingNewlines()
            }
            let (total, overflow) = fieldSize.multipliedReportingOverflow(by: count)
            guard !overflow, total < 1 << 48, size + total < 1 << 48 else {
                throw fail("aggregate type is too large", at: Token(location: location))
            }
            size += total
            fields.append(Field(kind: kind, count: UInt32(count), location: location))
            if token.kind != .comma { break }
            token = nextSkippingNewlines()
        }
        guard token.kind == .rightBrace else { throw fail("',' or '}' expected in type body, found \(describe(token))", at: token) }
        return (fields, size, alignment)
    }
}

extension Token {
    init(location: SourceLocation) {
        self.init()
        self.location = location
    }
}
