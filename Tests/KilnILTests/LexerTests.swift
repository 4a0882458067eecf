// The lexer on its own: literal values, overflow, floats, strings, names, punctuation.

@testable import KilnIL
import Testing

/// Every token of `text`, up to and including the end of file.
private func lex(_ text: String) -> (tokens: [Token], names: NameTable) {
    var names = NameTable.withKeywords()
    var tokens: [Token] = []
    let bytes = Array(text.utf8)
    bytes.withUnsafeBufferPointer { buffer in
        var lexer = Lexer(text: buffer)
        while true {
            let token = lexer.next(&names)
            tokens.append(token)
            if token.kind == .eof || tokens.count > 1000 { break }
        }
    }
    return (tokens, names)
}

/// The one token `text` holds (the end of file is checked to follow it).
private func single(_ text: String) -> Token {
    let (tokens, _) = lex(text)
    #expect(tokens.count == 2 && tokens.last?.kind == .eof, "\(text) is not one token: \(tokens.map(\.kind))")
    return tokens[0]
}

struct LexerTests {
    static let integers: [(String, UInt64, Bool)] = [
        ("0", 0, false),
        ("42", 42, false),
        ("007", 7, false),
        ("4294967295", 0xFFFF_FFFF, false),
        ("18446744073709551615", UInt64.max, false),
        ("18446744073709551616", 0, true),
        ("99999999999999999999", 0, true),
        ("-0", 0, false),
        ("-1", UInt64.max, false),
        ("-9223372036854775808", 0x8000_0000_0000_0000, false),
        ("-18446744073709551615", 1, false),
        ("-18446744073709551616", 0, true),
    ]

    @Test(arguments: integers)
    func integer(_ text: String, _ bits: UInt64, _ overflowed: Bool) {
        let token = single(text)
        #expect(token.kind == .integer)
        #expect(token.overflowed == overflowed)
        if !overflowed { #expect(token.bits == bits) }
    }

    @Test(arguments: ["12ab", "0x10", "1e5", "3.5", "1_000"])
    func digitsFollowedByNameCharactersAreOneBadToken(_ text: String) {
        let token = single(text)
        #expect(token.kind == .invalid)
        #expect(token.message.contains("only decimal digits"))
    }

    @Test func minusWithoutDigits() {
        let (tokens, _) = lex("- 1")
        #expect(tokens[0].kind == .invalid)
        #expect(tokens[0].message == "integer expected after '-'")
        #expect(tokens[1].kind == .integer && tokens[1].bits == 1)
    }

    static let singles: [(String, Float)] = [
        ("s_1.5", 1.5), ("s_-2e3", -2000), ("s_0", 0), ("s_-0", -0.0), ("s_0x1p-3", 0.125),
        ("s_.5", 0.5), ("s_5.", 5), ("s_1e+2", 100), ("s_inf", .infinity), ("s_-inf", -.infinity),
        ("s_1e40", .infinity), ("s_3.4028235e38", .greatestFiniteMagnitude),
    ]

    @Test(arguments: singles)
    func singleFloat(_ text: String, _ value: Float) {
        let token = single(text)
        #expect(token.kind == .single)
        #expect(token.bits == UInt64(value.bitPattern), "\(text)")
    }

    static let doubles: [(String, Double)] = [
        ("d_0", 0), ("d_-1", -1), ("d_0.1", 0.1), ("d_1e-300", 1e-300), ("d_0x1.8p1", 3), ("d_-0x1p3", -8),
        ("d_inf", .infinity), ("d_-inf", -.infinity), ("d_4.9e-324", .leastNonzeroMagnitude),
        ("d_1E+10", 1e10),
    ]

    @Test(arguments: doubles)
    func doubleFloat(_ text: String, _ value: Double) {
        let token = single(text)
        #expect(token.kind == .double)
        #expect(token.bits == value.bitPattern, "\(text)")
    }

    @Test func notANumber() {
        #expect(Double(bitPattern: single("d_nan").bits).isNaN)
        #expect(Float(bitPattern: UInt32(single("s_nan").bits)).isNaN)
        #expect(Double(bitPattern: single("d_-nan").bits).sign == .minus)
    }

    @Test(arguments: ["d_", "d_1e", "s_abc", "d_1.2.3", "d_0x"])
    func badFloat(_ text: String) {
        let token = single(text)
        #expect(token.kind == .invalid)
        #expect(token.message == "invalid floating-point literal")
    }

    @Test func floatPrefixWithoutUnderscoreIsAWord() {
        let (tokens, names) = lex("s d s1 d_1")
        #expect(tokens.map(\.kind) == [.word, .word, .word, .double, .eof])
        #expect(names.keyword(tokens[0].name) == .s)
        #expect(names.text(tokens[2].name) == "s1")
    }

    @Test func stringExtentsAndEscapedQuotes() {
        let text = #"b "a\"b" "" "\\""#
        let (tokens, _) = lex(text)
        #expect(tokens.map(\.kind) == [.word, .string, .string, .string, .eof])
        let bytes = Array(text.utf8)
        func body(_ token: Token) -> String {
            String(decoding: bytes[Int(token.start)..<Int(token.start + token.count)], as: UTF8.self)
        }
        #expect(body(tokens[1]) == #"a\"b"#)
        #expect(body(tokens[2]) == "")
        #expect(body(tokens[3]) == #"\\"#)
        #expect(tokens[1].location.offset == 2)
    }

    @Test(arguments: [#""abc"#, #""abc\""#, "\"", #"$"name"#])
    func unterminated(_ text: String) {
        let token = lex(text).tokens[0]
        #expect(token.kind == .invalid)
        #expect(token.message == (text.hasPrefix("$") ? "unterminated quoted name" : "unterminated string"))
        #expect(token.location.offset == 0)
    }

    @Test func sigilsAndNames() {
        let (tokens, names) = lex(#"%a.b_c$1 @L0 :type $glob $"quoted name" $.x"#)
        #expect(tokens.map(\.kind) == [.temp, .label, .typeName, .global, .global, .global, .eof])
        #expect(tokens.prefix(6).map { names.text($0.name) } == ["a.b_c$1", "L0", "type", "glob", #""quoted name""#, ".x"])
    }

    @Test(arguments: ["%", "@", ":", "$", "%1", "@$"])
    func sigilWithoutName(_ text: String) {
        let token = lex(text).tokens[0]
        #expect(token.kind == .invalid)
        #expect(token.message == "a name must follow '\(text.first!)'")
    }

    @Test func punctuationNeedsNoSpaces() {
        let (tokens, _) = lex("%x=w add%a,1+(){}...")
        #expect(tokens.map(\.kind) == [.temp, .equals, .word, .word, .temp, .comma, .integer, .plus,
                                       .leftParen, .rightParen, .leftBrace, .rightBrace, .ellipsis, .eof])
    }

    @Test func keywordsAndOpcodesAreRecognised() {
        let (tokens, names) = lex("function add loadw rstore ceqr frob")
        #expect(names.keyword(tokens[0].name) == .function)
        #expect(names.opcode(tokens[1].name) == .add)
        #expect(names.keyword(tokens[2].name) == .loadw && names.opcode(tokens[2].name) == nil)
        #expect(names.keyword(tokens[3].name) == .rstore)
        #expect(names.opcode(tokens[4].name) == .ceqr)
        #expect(names.keyword(tokens[5].name) == nil && names.opcode(tokens[5].name) == nil)
    }

    @Test func commentsEndInANewlineAndBlanksAreSkipped() {
        let (tokens, _) = lex("a # comment , ( \n\t b\r\n# last")
        #expect(tokens.map(\.kind) == [.word, .newline, .word, .newline, .eof])
        #expect(tokens[2].location.offset == 19)
    }

    @Test func invalidCharactersAndBytes() {
        let (tokens, _) = lex("; \u{7F} é")
        #expect(tokens[0].message == "invalid character ';'")
        #expect(tokens[1].message == "invalid byte 0x7f")
        #expect(tokens[2].message == "invalid byte 0xc3")
        #expect(tokens[2].location.offset == 4)
    }
}
