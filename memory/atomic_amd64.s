#include "textflag.h"

// func asmLoad16(p *uint16) uint16
// An aligned MOVW is a single access; as an assembly call it is also a
// compiler barrier. x86 loads are not reordered with older loads.
TEXT ·asmLoad16(SB), NOSPLIT, $0-10
	MOVQ p+0(FP), BX
	MOVW 0(BX), AX
	MOVW AX, ret+8(FP)
	RET

// func asmStore16(p *uint16, v uint16)
// XCHG with memory is locked: a full barrier, as sync/atomic's stores.
TEXT ·asmStore16(SB), NOSPLIT, $0-10
	MOVQ p+0(FP), BX
	MOVW v+8(FP), AX
	XCHGW AX, 0(BX)
	RET

// func fence()
TEXT ·fence(SB), NOSPLIT, $0-0
	MFENCE
	RET
