// The SIGSYS handler that reports a call the seccomp filter denied (see
// Install in seccomp.go). The kernel calls it with the C ABI,
// handler(int sig, siginfo_t *info, ucontext_t *uc) in DI, SI, DX, on the
// thread's signal stack. It never returns to Go: it writes one line to
// stderr and kills the process with SIGSYS, using only system calls the
// allow-list has (write, gettid, getpid, tgkill, exit_group), and touches
// no Go state but two read-only tables filled before the filter.

#include "textflag.h"

#define SYS_write 1
#define SYS_rt_sigreturn 15
#define SYS_getpid 39
#define SYS_gettid 186
#define SYS_exit_group 231
#define SYS_tgkill 234
#define SIGSYS 31

// siginfo_t for SIGSYS: si_syscall at 24. ucontext_t: uc_mcontext.gregs
// at 40, REG_RDI 8, REG_RSI 9, REG_RDX 12 (<sys/ucontext.h>), so the
// call's first three arguments are at 104, 112 and 136.
#define INFO_SYSCALL 24
#define INFO_ARCH 28
#define UC_R8 40
#define UC_R9 48
#define UC_R10 56
#define UC_RDI 104
#define UC_RSI 112
#define UC_RDX 136
#define AUDIT_ARCH_X86_64 0xc000003e

TEXT sigsysHandler<>(SB),NOSPLIT|NOFRAME,$0
	MOVQ	SI, R12
	MOVQ	DX, R13
	// A 1 KiB buffer below the signal frame; DI is the write cursor.
	SUBQ	$1024, SP
	ANDQ	$~15, SP
	MOVQ	SP, DI
	CLD

	// The line's start from ·sigsysLines: 128-byte slots, a length byte
	// then the text; numbers past the table share its last slot.
	MOVLQSX	INFO_SYSCALL(R12), AX
	CMPQ	AX, $512
	JB	inrange
	MOVQ	$512, AX
inrange:
	SHLQ	$7, AX
	LEAQ	·sigsysLines(SB), SI
	ADDQ	AX, SI
	MOVBQZX	0(SI), CX
	INCQ	SI
	REP;	MOVSB

	MOVQ	UC_RDI(R13), AX
	CALL	hex<>(SB)
	MOVQ	UC_RSI(R13), AX
	CALL	hex<>(SB)
	MOVQ	UC_RDX(R13), AX
	CALL	hex<>(SB)

	LEAQ	·sigsysSuffix(SB), SI
	MOVBQZX	0(SI), CX
	INCQ	SI
	REP;	MOVSB

	// write(2, buffer, length)
	MOVQ	DI, DX
	SUBQ	SP, DX
	MOVQ	SP, SI
	MOVQ	$2, DI
	MOVQ	$SYS_write, AX
	SYSCALL

	// The handler was installed with SA_RESETHAND|SA_NODEFER: SIGSYS is
	// back to its default action and not blocked. Make the same call
	// again: the filter traps it again (it never runs), and the kernel
	// forces a SIGSYS with no handler, which kills the process as
	// SECCOMP_RET_KILL_PROCESS would, even as PID 1 of a PID namespace
	// (the jail), which ignores a SIGSYS it sends itself. Only for an
	// x86_64 call: an i386 one's number means another call here.
	CMPL	INFO_ARCH(R12), $AUDIT_ARCH_X86_64
	JNE	raise
	MOVLQSX	INFO_SYSCALL(R12), AX
	MOVQ	UC_RDI(R13), DI
	MOVQ	UC_RSI(R13), SI
	MOVQ	UC_RDX(R13), DX
	MOVQ	UC_R10(R13), R10
	MOVQ	UC_R8(R13), R8
	MOVQ	UC_R9(R13), R9
	SYSCALL
raise:
	// Not reached but for an i386 call: send SIGSYS to this thread.
	MOVQ	$SYS_gettid, AX
	SYSCALL
	MOVQ	AX, R12
	MOVQ	$SYS_getpid, AX
	SYSCALL
	MOVQ	AX, DI
	MOVQ	R12, SI
	MOVQ	$SIGSYS, DX
	MOVQ	$SYS_tgkill, AX
	SYSCALL
die:
	// Reached only as PID 1 of a namespace, for an i386 call: exit as a
	// shell would report the signal.
	MOVQ	$(128+SIGSYS), DI
	MOVQ	$SYS_exit_group, AX
	SYSCALL
	JMP	die

// hex appends " 0x" and AX in hexadecimal, without leading zeros, at DI.
// It uses CX and R8-R11.
TEXT hex<>(SB),NOSPLIT|NOFRAME,$0
	MOVB	$0x20, 0(DI)
	MOVB	$0x30, 1(DI)
	MOVB	$0x78, 2(DI)
	ADDQ	$3, DI
	MOVQ	$60, CX
	XORQ	R9, R9
digit:
	MOVQ	AX, R8
	SHRQ	CX, R8
	ANDQ	$15, R8
	ORQ	R8, R9
	TESTQ	R9, R9
	JNZ	emit
	TESTQ	CX, CX
	JNZ	next
emit:
	LEAQ	hexdigits<>(SB), R10
	MOVB	(R10)(R8*1), R11
	MOVB	R11, 0(DI)
	INCQ	DI
next:
	SUBQ	$4, CX
	JGE	digit
	RET

// sigsysRestorer is the sa_restorer the kernel requires; the handler
// never returns, so it is never used.
TEXT sigsysRestorer<>(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$SYS_rt_sigreturn, AX
	SYSCALL
	MOVQ	$(128+SIGSYS), DI
	MOVQ	$SYS_exit_group, AX
	SYSCALL
	RET

DATA hexdigits<>+0(SB)/8, $"01234567"
DATA hexdigits<>+8(SB)/8, $"89abcdef"
GLOBL hexdigits<>(SB), RODATA, $16

DATA ·sigsysHandlerPC+0(SB)/8, $sigsysHandler<>(SB)
GLOBL ·sigsysHandlerPC(SB), RODATA, $8
DATA ·sigsysRestorerPC+0(SB)/8, $sigsysRestorer<>(SB)
GLOBL ·sigsysRestorerPC(SB), RODATA, $8
