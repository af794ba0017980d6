/*
 * migrate_user.c - the ring-3 half of mode=migrate (migrate.c): QEMU's
 * migration-test scheme. In each round ring 3 adds one to the first byte
 * of every 4 KiB page of a large range, after checking it holds what the
 * last round left there; then it prints 'B'. A VMM that loses a page the
 * guest wrote, or restores one it did not, while it snapshots or
 * migrates, shows as a byte one round behind (or ahead).
 *
 * Its name ends in user.c: guest.ld links it into the user-accessible
 * pages with user.c. Like user.c it calls nothing outside ring 3.
 */
#include "guest.h"
#include "migrate.h"

struct migrate_args margs;

static void mig_putc(char c)
{
	volatile u8 *uart = (volatile u8 *)(u64)UART_MMIO;
	for (int i = 0; i < 1000 && !(uart[UART_LSR] & LSR_THRE); i++)
		;
	uart[UART_THR] = (u8)c;
}

/* check_and_bump does one round: every page's byte from want to want+1.
 * It returns 0, or the address of a page that held something else. */
static u64 check_and_bump(u8 want)
{
	for (u64 a = margs.start; a < margs.end; a += 4096) {
		volatile u8 *p = (volatile u8 *)a;
		if (*p != want) {
			margs.bad_value = *p;
			return a;
		}
		*p = (u8)(want + 1);
	}
	return 0;
}

/* check_all checks every page holds want, without writing. */
static u64 check_all(u8 want)
{
	for (u64 a = margs.start; a < margs.end; a += 4096) {
		volatile u8 *p = (volatile u8 *)a;
		if (*p != want) {
			margs.bad_value = *p;
			return a;
		}
	}
	return 0;
}

/* Entered by iretq from user_call (migrate.c). */
void migrate_user_main(void)
{
	for (u64 r = 1; margs.rounds == 0 || r <= margs.rounds; r++) {
		margs.bad_round = r;
		margs.bad_addr = check_and_bump((u8)(r - 1));
		if (margs.bad_addr)
			user_finish_ud2();
		margs.done = r;
		if (margs.use_mmio)
			mig_putc('B');
		for (u64 i = 0; i < margs.delay; i++)
			__asm__ volatile("pause");
	}
	margs.bad_round = 0;
	margs.bad_addr = check_all((u8)margs.rounds);
	user_finish_ud2();
}
