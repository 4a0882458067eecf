// Jump threading: branches on phis of constants go straight to their target,
// and the program still computes the same thing. Meaning is checked with the
// reference interpreter (KilnShapes.Interpreter), which runs the function
// before and after the pass.

import KilnIL
@testable import KilnPasses
import KilnShapes
import Testing

/// What `main` prints, interpreted after the passes up to `pass` (nil: before any pass).
func interpreted(_ text: String, through pass: Pass?) throws -> String {
    let (parsed, diagnostics) = parseAndVerify(SourceFile(name: "test.ssa", text: text))
    try #require(!diagnostics.contains { $0.severity == .error }, "\(diagnostics)")
    var module = parsed
    if let pass { runPipeline(&module, until: pass) }
    var interpreter = try Interpreter(module)
    _ = try interpreter.runMain()
    return String(decoding: interpreter.output, as: UTF8.self)
}

@Suite struct ThreadTests {
    /// `if (a < b && b < c) ...` as cproc writes it: the join of the `&&` only merges 0 and 1.
    static let conjunction = """
        data $format = { b "%ld\\n", b 0 }
        function l $inside(l %a, l %b, l %c) {
        @start
        	%r =l copy 0
        	%x =w csltl %a, %b
        	jnz %x, @second, @false
        @second
        	%y =w csltl %b, %c
        	jnz %y, @true, @false
        @true
        	jmp @join
        @false
        	jmp @join
        @join
        	%cond =w phi @true 1, @false 0
        	jnz %cond, @then, @end
        @then
        	%r =l add %a, %c
        @end
        	ret %r
        }
        export function w $main() {
        @start
        	%p =l call $inside(l 1, l 2, l 3)
        	call $printf(l $format, ..., l %p)
        	%q =l call $inside(l 3, l 2, l 1)
        	call $printf(l $format, ..., l %q)
        	%s =l call $inside(l 1, l 5, l 3)
        	call $printf(l $format, ..., l %s)
        	ret 0
        }
        """

    @Test func constantPhisNoLongerReachTheirBranch() throws {
        let (parsed, _) = parseAndVerify(SourceFile(name: "test.ssa", text: ThreadTests.conjunction))
        var module = parsed
        runPipeline(&module, until: .thread)
        let function = module.functions[0]
        // @join is gone, and so are the empty @true and @false that led to it: the comparisons
        // branch straight to @then and @end, and no phi is left.
        let names = function.blocks.map { module.text($0.name) }
        #expect(names == ["start", "second", "then", "end"], "\(module.printed(function: 0))")
        #expect(function.phis.isEmpty)
        let second = function.blocks[1].jump
        #expect(second.kind == .jnz && names[Int(second.target.index)] == "then" && names[Int(second.otherTarget.index)] == "end")
        let start = function.blocks[0].jump
        #expect(names[Int(start.target.index)] == "second" && names[Int(start.otherTarget.index)] == "end")
        #expect(try interpreted(ThreadTests.conjunction, through: .thread) == "4\n0\n0\n")
        #expect(try interpreted(ThreadTests.conjunction, through: nil) == "4\n0\n0\n")
    }

    /// Nested joins, as `a && b` compiles when `b` is itself a conditional: the inner join
    /// forwards into the outer one, whose phi is then all constants.
    @Test func nestedJoinsThreadThrough() throws {
        let text = """
            data $format = { b "%ld\\n", b 0 }
            function l $f(l %a) {
            @start
            	%t =w csltl %a, 10
            	jnz %t, @low, @test
            @test
            	%u =w csltl %a, 20
            	jnz %u, @mid, @none
            @mid
            	jmp @inner
            @none
            	jmp @inner
            @inner
            	%i =w phi @mid 1, @none 0
            	jmp @outer
            @low
            	jmp @outer
            @outer
            	%o =w phi @low 1, @inner %i
            	jnz %o, @yes, @no
            @yes
            	ret 1
            @no
            	ret 2
            }
            export function w $main() {
            @start
            	%p =l call $f(l 5)
            	call $printf(l $format, ..., l %p)
            	%q =l call $f(l 15)
            	call $printf(l $format, ..., l %q)
            	%s =l call $f(l 25)
            	call $printf(l $format, ..., l %s)
            	ret 0
            }
            """
        #expect(try interpreted(text, through: .thread) == "1\n1\n2\n")
        let (parsed, _) = parseAndVerify(SourceFile(name: "test.ssa", text: text))
        var module = parsed
        runPipeline(&module, until: .thread)
        #expect(module.functions[0].phis.isEmpty, "\(module.printed(function: 0))")
    }

    /// A phi that is read elsewhere keeps its block: skipping it would lose its value.
    @Test func phisWithOtherReadersStay() throws {
        let text = """
            data $format = { b "%ld\\n", b 0 }
            function l $f(l %a) {
            @start
            	%t =w csltl %a, 10
            	jnz %t, @one, @zero
            @one
            	jmp @join
            @zero
            	jmp @join
            @join
            	%c =w phi @one 1, @zero 0
            	jnz %c, @yes, @no
            @yes
            	%e =l extsw %c
            	ret %e
            @no
            	%n =l extsw %c
            	%n =l add %n, 40
            	ret %n
            }
            export function w $main() {
            @start
            	%p =l call $f(l 5)
            	call $printf(l $format, ..., l %p)
            	%q =l call $f(l 15)
            	call $printf(l $format, ..., l %q)
            	ret 0
            }
            """
        #expect(try interpreted(text, through: .thread) == "1\n40\n")
        let (parsed, _) = parseAndVerify(SourceFile(name: "test.ssa", text: text))
        var module = parsed
        runPipeline(&module, until: .thread)
        #expect(module.functions[0].phis.count == 1)
    }

    /// Random programs (every shape of control flow the generator makes) print the same
    /// before threading and after the whole pipeline.
    @Test(arguments: 1...12)
    func randomProgramsKeepTheirMeaning(_ seed: Int) throws {
        let text = RandomProgram(seed: UInt64(seed) &* 7919, functions: 5, blocks: 12).text
        #expect(try interpreted(text, through: .loads) == interpreted(text, through: nil))
    }
}
