// Constant folding and copy propagation: exact results for w/l/s/d, what must
// stay for run time (division traps, NaN payloads), branch folding, and the
// SSA and verifier properties of the output.

import KilnIL
@testable import KilnPasses
import Testing

/// Runs the pipeline through `pass`, checks the output is SSA and verifies after print and parse.
func checkPass(_ text: String, through pass: Pass) throws -> Module {
    let module = try compile(text, through: pass)
    for (index, function) in module.functions.enumerated() {
        #expect(ssaViolations(function) == [], "\(module.printed(function: index))")
    }
    let (_, again) = parseAndVerify(SourceFile(name: "printed.ssa", text: module.printed()))
    #expect(again.filter { $0.severity == .error }.isEmpty, "\(again.map(\.description))\n\(module.printed())")
    return module
}

/// The text of the first function after `pass`, one instruction per line, without its header.
func body(_ module: Module) -> String {
    module.printed(function: 0).split(separator: "\n").dropFirst().dropLast()
        .map { String($0.drop { $0 == "\t" || $0 == " " }) }.joined(separator: "\n")
}

/// The constant a function returns, as a signed integer (nil when not a constant).
func returnedConstant(_ module: Module, block: Int? = nil) -> Int64? {
    let function = module.functions[0]
    let jump = function.blocks[block ?? function.blocks.count - 1].jump
    guard jump.kind == .retValue, jump.arg.isConstant else { return nil }
    return Int64(bitPattern: function.constants[Int(jump.arg.index)].bits)
}

/// Folds `%x =CLS text` returned from a function; the returned constant's bits, or nil when not folded.
func fold(_ cls: String, _ instruction: String) throws -> UInt64? {
    let module = try checkPass("""
        function \(cls) $f() {
        @start
        	%x =\(cls) \(instruction)
        	ret %x
        }
        """, through: .fold)
    let jump = module.functions[0].blocks[0].jump
    return jump.arg.isConstant ? module.functions[0].constants[Int(jump.arg.index)].bits : nil
}

private func w(_ value: Int32) -> UInt64 { UInt64(bitPattern: Int64(value)) }
private func l(_ value: Int64) -> UInt64 { UInt64(bitPattern: value) }

@Suite struct FoldTests {
    @Test func integerArithmeticWrapsAtTheClassWidth() throws {
        #expect(try fold("w", "add 2, 3") == 5)
        #expect(try fold("w", "add 2147483647, 1") == w(.min))
        #expect(try fold("l", "add 9223372036854775807, 1") == l(.min))
        #expect(try fold("w", "sub 0, 4294967297") == w(-1))
        #expect(try fold("w", "mul 65536, 65536") == 0)
        #expect(try fold("l", "mul 65536, 65536") == 1 << 32)
        #expect(try fold("w", "neg -2147483648") == w(.min))
        #expect(try fold("w", "xor 4294967295, 1") == w(-2))
        #expect(try fold("l", "and -1, 255") == 255)
        #expect(try fold("l", "or 256, 1") == 257)
    }

    @Test func shiftsTakeTheCountModuloTheWidth() throws {
        #expect(try fold("w", "shl 1, 33") == 2)
        #expect(try fold("l", "shl 1, 65") == 2)
        #expect(try fold("l", "shl 1, 33") == 1 << 33)
        #expect(try fold("w", "shr -1, 28") == 15)
        #expect(try fold("l", "shr -1, 60") == 15)
        #expect(try fold("w", "sar -8, 1") == w(-4))
        #expect(try fold("w", "sar -2147483648, 63") == w(-1))
        #expect(try fold("l", "sar -9223372036854775808, 63") == l(-1))
    }

    @Test func divisionFoldsExceptWhereItTraps() throws {
        #expect(try fold("w", "div -7, 2") == w(-3))
        #expect(try fold("w", "rem -7, 2") == w(-1))
        #expect(try fold("w", "udiv -1, 2") == 0x7FFF_FFFF)
        #expect(try fold("l", "urem -1, 10") == 5)
        #expect(try fold("w", "div 1, 0") == nil)
        #expect(try fold("w", "rem 1, 4294967296") == nil) // divisor is 0 in 32 bits
        #expect(try fold("w", "div -2147483648, -1") == nil)
        #expect(try fold("w", "rem -2147483648, -1") == nil)
        #expect(try fold("l", "div -9223372036854775808, -1") == nil)
        #expect(try fold("l", "udiv 7, 0") == nil)
        #expect(try fold("l", "div -2147483648, -1") == 2_147_483_648) // no overflow in 64 bits
        let module = try checkPass("""
            function w $f() {
            @start
            	%x =w div 1, 0
            	ret %x
            }
            """, through: .fold)
        #expect(body(module) == "@start\n%x =w div 1, 0\nret %x")
    }

    @Test func integerComparisonsReadTheirOperandWidth() throws {
        #expect(try fold("w", "ceqw 4294967296, 0") == 1)
        #expect(try fold("w", "ceql 4294967296, 0") == 0)
        #expect(try fold("w", "csltw -1, 0") == 1)
        #expect(try fold("w", "cultw -1, 0") == 0)
        #expect(try fold("l", "csltl 4294967295, 0") == 0)
        #expect(try fold("w", "csltw 4294967295, 0") == 1)
        #expect(try fold("w", "cugel 0, 0") == 1)
        #expect(try fold("w", "csgtw 2147483647, -2147483648") == 1)
    }

    @Test func nanComparisonsFollowTheChecklist() throws {
        for (op, expected) in [("ceqd", 0), ("cned", 1), ("cltd", 0), ("cled", 0), ("cgtd", 0), ("cged", 0),
                               ("cod", 0), ("cuod", 1)] as [(String, UInt64)] {
            #expect(try fold("w", "\(op) d_nan, d_1") == expected, "\(op)")
            #expect(try fold("w", "\(op) d_1, d_nan") == expected, "\(op)")
        }
        for (op, expected) in [("ceqs", 0), ("cnes", 1), ("clts", 0), ("cles", 0), ("cgts", 0), ("cges", 0),
                               ("cos", 0), ("cuos", 1)] as [(String, UInt64)] {
            #expect(try fold("w", "\(op) s_nan, s_nan") == expected, "\(op)")
        }
        #expect(try fold("w", "ceqd d_-0, d_0") == 1)
        #expect(try fold("w", "cltd d_-inf, d_-1e308") == 1)
        #expect(try fold("w", "cod d_inf, d_1") == 1)
    }

    @Test func floatArithmeticIsIEEE() throws {
        #expect(try fold("d", "add d_0.1, d_0.2") == (0.1 + 0.2 as Double).bitPattern)
        #expect(try fold("s", "add s_0.1, s_0.2") == UInt64((Float(0.1) + Float(0.2)).bitPattern))
        #expect(try fold("d", "div d_1, d_3") == (1.0 / 3.0).bitPattern)
        #expect(try fold("d", "div d_1, d_0") == Double.infinity.bitPattern)
        #expect(try fold("s", "mul s_3.4e38, s_10") == UInt64(Float.infinity.bitPattern))
        #expect(try fold("d", "neg d_0") == (-0.0 as Double).bitPattern)
        #expect(try fold("d", "div d_0, d_0") == nil) // a NaN: its payload is the processor's
        #expect(try fold("d", "add d_nan, d_1") == nil)
        #expect(try fold("d", "sub d_inf, d_inf") == nil)
    }

    @Test func conversionsAndExtensions() throws {
        #expect(try fold("w", "extsb 384") == w(-128))
        #expect(try fold("l", "extub -1") == 255)
        #expect(try fold("w", "extsh 32768") == w(-32768))
        #expect(try fold("l", "extsw 4294967295") == l(-1))
        #expect(try fold("l", "extuw -1") == 0xFFFF_FFFF)
        #expect(try fold("w", "dtosi d_-3.9") == w(-3))
        #expect(try fold("l", "stosi s_1e10") == 10_000_000_000)
        #expect(try fold("w", "dtosi d_3e9") == nil) // out of range: the processor's indefinite value
        #expect(try fold("w", "dtosi d_nan") == nil)
        #expect(try fold("l", "dtoui d_1e19") == nil) // above 2^63: the code generator's lowering
        #expect(try fold("w", "dtoui d_-0.5") == 0)
        #expect(try fold("d", "swtof -1") == (-1.0 as Double).bitPattern)
        #expect(try fold("d", "uwtof -1") == (4_294_967_295.0 as Double).bitPattern)
        #expect(try fold("s", "sltof 16777217") == UInt64(Float(16_777_216).bitPattern)) // rounds to even
        #expect(try fold("d", "ultof -1") == nil)
        #expect(try fold("d", "exts s_0.1") == Double(Float(0.1)).bitPattern)
        #expect(try fold("s", "truncd d_0.1") == UInt64(Float(0.1).bitPattern))
        #expect(try fold("s", "truncd d_1e300") == UInt64(Float.infinity.bitPattern))
        #expect(try fold("w", "cast s_1") == 0x3F80_0000)
        #expect(try fold("d", "cast 4607182418800017408") == (1.0 as Double).bitPattern)
        #expect(try fold("l", "add $g, 8") != nil)
    }

    @Test func copiesArePropagatedWithinAClass() throws {
        let module = try checkPass("""
            function l $f(l %a) {
            @start
            	%b =l copy %a
            	%c =l add %b, 1
            	%d =w copy %a
            	%e =w add %d, 1
            	%f =l extsw %e
            	%g =l add %c, %f
            	ret %g
            }
            """, through: .fold)
        #expect(body(module) == """
            @start
            %c =l add %a, 1
            %d =w copy %a
            %e =w add %d, 1
            %f =l extsw %e
            %g =l add %c, %f
            ret %g
            """)
    }

    @Test func constantFirstOperandsMoveSecond() throws {
        let module = try checkPass("""
            function w $f(w %a) {
            @start
            	%b =w add 1, %a
            	%c =w csltw 5, %b
            	%d =w sub 5, %c
            	ret %d
            }
            """, through: .fold)
        #expect(body(module) == "@start\n%b =w add %a, 1\n%c =w csgtw %b, 5\n%d =w sub 5, %c\nret %d")
    }

    @Test func branchesOnConstantsBecomeJumps() throws {
        let module = try checkPass("""
            function w $f(w %a) {
            @start
            	%c =w ceqw 1, 1
            	jnz %c, @yes, @no
            @yes
            	%x =w add %a, 1
            	jmp @join
            @no
            	%y =w add %a, 2
            	jmp @join
            @join
            	%r =w phi @yes %x, @no %y
            	ret %r
            }
            """, through: .fold)
        // @no is gone, and the phi with it: its one remaining argument stands for it.
        #expect(body(module) == "@start\njmp @yes\n@yes\n%x =w add %a, 1\njmp @join\n@join\nret %x")
    }

    @Test func conditionalPropagationSeesThroughLoops() throws {
        // %x is 1 on entry and 1 * 1 around the loop: only sparse conditional propagation,
        // which starts optimistic at loop headers, proves it.
        let module = try checkPass("""
            function w $f(w %n) {
            @start
            	jmp @loop
            @loop
            	%x =w phi @start 1, @next %x2
            	%i =w phi @start 0, @next %i2
            	%c =w csltw %i, %n
            	jnz %c, @body, @end
            @body
            	%x2 =w mul %x, 1
            	%d =w cnew %x2, 1
            	jnz %d, @never, @next
            @never
            	%i3 =w add %i, 100
            	jmp @loop2
            @loop2
            	hlt
            @next
            	%i2 =w add %i, 1
            	jmp @loop
            @end
            	ret %x
            }
            """, through: .fold)
        #expect(returnedConstant(module) == 1)
        #expect(module.functions[0].phis.count == 1)
        #expect(module.functions[0].blocks.count == 5)
    }

    @Test func phisOfOneValueAndCopyCyclesDisappear() throws {
        let module = try checkPass("""
            function w $f(w %a, w %n) {
            @start
            	jmp @outer
            @outer
            	%p =w phi @start %a, @exit %q
            	%i =w phi @start 0, @exit %j
            @inner
            	%q =w phi @outer %p, @inner %q
            	%j =w add %i, 1
            	%c =w csltw %j, %n
            	jnz %c, @inner, @exit
            @exit
            	%d =w csltw %j, 10
            	jnz %d, @outer, @end
            @end
            	ret %q
            }
            """, through: .fold)
        let function = module.functions[0]
        #expect(function.blocks.last?.jump.arg == .temp(0))
        #expect(function.phis.count == 1) // only %i is left
    }

    @Test func managedReferencesAreNeverFolded() throws {
        let module = try checkPass("""
            function r $f(l %x) {
            @start
            	%t =r rtag %x
            	%u =r copy %t
            	%v =r copy 4
            	%c =w ceqr %u, %v
            	jnz %c, @a, @b
            @a
            	ret %u
            @b
            	ret %v
            }
            """, through: .fold)
        #expect(body(module) == "@start\n%t =r rtag %x\n%c =w ceqr %t, 4\njnz %c, @a, @b\n@a\nret %t\n@b\nret 4")
    }
}
