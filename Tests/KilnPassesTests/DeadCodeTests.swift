// Dead code elimination: unused pure code goes, effects and possible traps stay.

import KilnIL
@testable import KilnPasses
import Testing

@Suite struct DeadCodeTests {
    @Test func unusedChainsAndPhiCyclesGo() throws {
        let module = try checkPass("""
            function w $f(w %n) {
            @start
            	%a =w add %n, 1
            	%b =w mul %a, %a
            @loop
            	%i =w phi @start 0, @loop %j
            	%dead =w phi @start 0, @loop %dead2
            	%dead2 =w add %dead, %b
            	%j =w add %i, 1
            	%c =w csltw %j, %n
            	jnz %c, @loop, @end
            @end
            	ret %j
            }
            """, through: .dce)
        #expect(body(module) == """
            @start
            @loop
            %i =w phi @start 0, @loop %j
            %j =w add %i, 1
            %c =w csltw %j, %n
            jnz %c, @loop, @end
            @end
            ret %j
            """)
    }

    @Test func effectsAndPossibleTrapsStay() throws {
        let module = try checkPass("""
            function $f(w %n, l %p) {
            @start
            	%r =w call $g(w %n)
            	storew %n, %p
            	%d =w div 7, %n
            	%e =w rem %n, 0
            	%m =w div %n, -1
            	%u =w udiv %n, 3
            	%q =w div %n, 3
            	%x =l loadl %p
            	%s =l alloc8 16
            	%f =d div d_1, d_0
            	%v =l vaarg %p
            	ret
            }
            """, through: .dce)
        #expect(body(module) == """
            @start
            %r =w call $g(w %n)
            storew %n, %p
            %d =w div 7, %n
            %e =w rem %n, 0
            %m =w div %n, -1
            %v =l vaarg %p
            ret
            """)
    }
}
