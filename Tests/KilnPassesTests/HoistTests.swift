// Loop-invariant code motion: what moves to the preheader (multiplications and
// conversions whose operands do not change in the loop), what stays (division,
// address arithmetic, anything reading the loop's own values), and loops with
// no preheader.

import KilnIL
@testable import KilnPasses
import Testing

@Suite struct HoistTests {
    /// The block each instruction of the first function ends up in, by its result's name.
    func blocks(_ module: Module) -> [String: String] {
        var block = "", found: [String: String] = [:]
        for line in body(module).split(separator: "\n") {
            if line.hasPrefix("@") {
                block = String(line)
            } else if line.hasPrefix("%"), let name = line.split(separator: " ").first {
                found[String(name)] = block
            }
        }
        return found
    }

    @Test func invariantMultiplicationsLeaveTheirLoops() throws {
        let module = try checkPass("""
            function w $f(w %n, w %d) {
            @start
            	jmp @outer
            @outer
            	%i =w phi @start 0, @outer_next %i1
            	%acc =w phi @start 0, @outer_next %s
            	%c =w csltw %i, %n
            	jnz %c, @outer_body, @done
            @outer_body
            	%base =w mul %i, 3
            	jmp @inner
            @inner
            	%j =w phi @outer_body 0, @inner_body %j1
            	%s =w phi @outer_body %acc, @inner_body %s3
            	%cj =w csltw %j, %n
            	jnz %cj, @inner_body, @outer_next
            @inner_body
            	%in =w mul %i, %n
            	%nn =w mul %n, %n
            	%q =w div %n, %d
            	%off =w add %n, 8
            	%jn =w mul %j, %n
            	%f =d swtof %n
            	%g =w dtosi %f
            	%t =w add %in, %jn
            	%u =w add %t, %q
            	%v =w add %u, %off
            	%w =w add %v, %g
            	%s1 =w add %s, %w
            	%s2 =w add %s1, %nn
            	%s3 =w add %s2, %base
            	%j1 =w add %j, 1
            	jmp @inner
            @outer_next
            	%i1 =w add %i, 1
            	jmp @outer
            @done
            	ret %acc
            }
            """, through: .hoist)
        let place = blocks(module)
        // Invariant in both loops: all the way out; invariant only in the inner one: out of it.
        #expect(place["%nn"] == "@start")
        #expect(place["%f"] == "@start")
        #expect(place["%g"] == "@start")
        #expect(place["%in"] == "@outer_body")
        // Division may trap; an offset add is folded into addresses; %jn changes in the loop.
        #expect(place["%q"] == "@inner_body")
        #expect(place["%off"] == "@inner_body")
        #expect(place["%jn"] == "@inner_body")
    }

    @Test func aLoopEnteredFromTwoBlocksKeepsItsCode() throws {
        let module = try checkPass("""
            function w $f(w %n, w %a) {
            @start
            	jnz %a, @left, @right
            @left
            	jmp @loop
            @right
            	jmp @loop
            @loop
            	%i =w phi @left 0, @right 1, @loop %i1
            	%m =w mul %n, %n
            	%i1 =w add %i, %m
            	%c =w csltw %i1, 100
            	jnz %c, @loop, @done
            @done
            	ret %i1
            }
            """, through: .hoist)
        #expect(blocks(module)["%m"] == "@loop")
    }
}
