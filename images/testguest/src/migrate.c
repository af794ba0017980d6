/*
 * migrate.c - mode=migrate: the guest a snapshot, restore or live
 * migration test runs (README.md). Ring 0 sets up the range and makes it
 * user-accessible; ring 3 (migrate_user.c) runs the rounds natively, which
 * on PVM hosts is fast, and checks every page in each.
 */
#include "kernel.h"
#include "migrate.h"

/* The range starts above everything the guest and the VMM put in RAM
 * (the guest is below 2 MiB, its boot data below 1 MiB). */
#define MIGRATE_START 0x400000UL

void mode_migrate(u64 rounds, u64 mb, u64 delay, u64 ram_end)
{
	u64 end = MIGRATE_START + mb * 0x100000UL;
	if (mb == 0 || end > ram_end)
		end = ram_end & ~0x1fffffUL;
	if (end <= MIGRATE_START) {
		puts("CHECK FAILED: migrate: no RAM above 4 MiB for the range\n");
		exit(EXIT_CHECK_FAILED);
	}
	if (!make_user_accessible(MIGRATE_START, end)) {
		puts("CHECK FAILED: migrate: the range is not below 4 GiB\n");
		exit(EXIT_CHECK_FAILED);
	}
	margs.start = MIGRATE_START;
	margs.end = end;
	margs.rounds = rounds;
	margs.delay = delay;
	margs.use_mmio = uargs.use_mmio;
	puts("migrate: range 0x");
	puthex(margs.start, 8);
	puts("-0x");
	puthex(margs.end, 8);
	puts(" pages=");
	putdec((margs.end - margs.start) / 4096);
	puts(" rounds=");
	putdec(rounds);
	puts("\n");
	user_call((u64)migrate_user_main, (u64)user_stack + USER_STACK_SIZE - 8);
	puts("\n");
	if (margs.bad_addr) {
		puts("CHECK FAILED: migrate: page 0x");
		puthex(margs.bad_addr, 8);
		puts(" holds ");
		putdec(margs.bad_value);
		if (margs.bad_round) {
			puts(" in round ");
			putdec(margs.bad_round);
			puts(", want ");
			putdec((margs.bad_round - 1) & 0xff);
		} else {
			puts(" after the last round, want ");
			putdec(margs.rounds & 0xff);
		}
		puts("\n");
		exit(EXIT_CHECK_FAILED);
	}
	puts("migrate ok rounds=");
	putdec(margs.done);
	puts("\n");
	exit(EXIT_OK);
}
