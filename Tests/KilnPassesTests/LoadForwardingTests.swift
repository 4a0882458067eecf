// Load forwarding: exact-width reads of what was just stored or loaded; every
// store or call that may touch the place in between stops it.

import KilnIL
@testable import KilnPasses
import Testing

@Suite struct LoadForwardingTests {
    @Test func storedValuesAreReadBackExactly() throws {
        let module = try checkPass("""
            function l $f(l %p, w %v, l %q) {
            @start
            	storew %v, %p
            	%a =w loadw %p
            	%b =l loadsw %p
            	%c =l loaduw %p
            	storeb %v, %q
            	%d =w loadsb %q
            	%e =l loadub %q
            	%f =w loadsh %q
            	%s =l extsw %a
            	%t0 =l add %b, %c
            	%t =l add %t0, %s
            	%u =l add %t, %e
            	%w =w add %d, %f
            	%x =l extsw %w
            	%y =l add %u, %x
            	ret %y
            }
            """, through: .loads)
        let text = body(module)
        #expect(!text.contains("%a =") && !text.contains("%b =l load") && !text.contains("%c =l load"))
        #expect(text.contains("%b =l extsw %v") && text.contains("%c =l extuw %v"))
        #expect(text.contains("%d =w extsb %v") && text.contains("%e =l extub %v"))
        // A half-word load of a byte store reads a byte that was not stored.
        #expect(text.contains("%f =w loadsh %q"))
    }

    @Test func longsAndFloatsKeepTheirClass() throws {
        let module = try checkPass("""
            function w $f(l %p, l %v, d %g) {
            @start
            	storel %v, %p
            	%a =l loadl %p
            	%b =w loadw %p
            	%c =d loadd %p
            	stored %g, %p
            	%d =d loadd %p
            	%e =l loadl %p
            	%x =l add %a, %e
            	%y =d add %c, %d
            	%z =w dtosi %y
            	%r =w add %b, %z
            	%s =l extsw %r
            	%t =l add %s, %x
            	%u =w copy %t
            	ret %u
            }
            """, through: .loads)
        let text = body(module)
        #expect(text.contains("%x =l add %v, %e"))
        #expect(text.contains("%b =w copy %v"))
        #expect(text.contains("%c =d load %p")) // a long read as a double: not forwarded
        #expect(text.contains("%y =d add %c, %g"))
        #expect(text.contains("%e =l load %p"))
    }

    @Test func aLoadAfterALoadReusesIt() throws {
        let module = try checkPass("""
            function w $f(l %p) {
            @start
            	%a =w loadw %p
            	%b =w loadsw %p
            	%c =w add %a, %b
            	ret %c
            }
            """, through: .loads)
        #expect(body(module) == "@start\n%a =w loadsw %p\n%c =w add %a, %a\nret %c")
    }

    @Test func interveningWritesStopForwarding() throws {
        let module = try checkPass("""
            data $g = { l 0 }
            data $h = { l 0 }
            function l $f(l %p, l %q) {
            @start
            	%slot =l alloc8 16
            	%hi =l add %slot, 8
            	storel 1, %slot
            	storel 2, %hi
            	storel 3, $g
            	storel 4, $h
            	storel 5, %p
            	call $opaque(l %q)
            	%a =l loadl %slot
            	%b =l loadl %hi
            	%c =l loadl $g
            	%d =l loadl %p
            	storel 6, $g
            	storel 7, %q
            	%e =l loadl $g
            	storel 8, $g
            	storel 9, $h
            	%f =l loadl $g
            	storew 10, %hi
            	%k =l loadl %hi
            	%s1 =l add %a, %b
            	%s2 =l add %c, %d
            	%s3 =l add %e, %f
            	%s4 =l add %s1, %s2
            	%s5 =l add %s3, %s4
            	%s6 =l add %s5, %k
            	ret %s6
            }
            """, through: .loads)
        let text = body(module)
        // The slot never escapes: the call cannot touch it.
        #expect(!text.contains("%a =l") && !text.contains("%b =l"))
        #expect(text.contains("%s1 =l add 1, 2") || text.contains("%s1 =l add 2, 1"))
        // $g and %p may be touched by the call.
        #expect(text.contains("%c =l load $g") && text.contains("%d =l load %p"))
        // %q may point at $g; $h cannot.
        #expect(text.contains("%e =l load $g"))
        #expect(!text.contains("%f =l"))
        // A narrower store at the same place: the long load is not exact.
        #expect(text.contains("%k =l load %hi"))
    }

    @Test func singlePredecessorsInheritWhatIsKnown() throws {
        let module = try checkPass("""
            function w $f(l %p, w %c) {
            @start
            	storew 42, %p
            	jnz %c, @a, @b
            @a
            	%x =w loadw %p
            	ret %x
            @b
            	jmp @join
            @join
            	%y =w loadw %p
            	ret %y
            }
            """, through: .loads)
        #expect(body(module).contains("@a\nret 42"))
        #expect(body(module).contains("@join\nret 42"))
    }
}
