/*
 * migrate.h - what mode=migrate's two halves share (migrate.c in ring 0,
 * migrate_user.c in ring 3).
 */
#ifndef MIGRATE_H
#define MIGRATE_H

#include "guest.h"

struct migrate_args {
	u64 start, end; /* the range: page-aligned, user-accessible */
	u64 rounds;     /* rounds to run; 0 runs forever */
	u64 delay;      /* pause instructions after each round */
	u64 use_mmio;   /* print 'B' per round through the UART's MMIO alias */
	u64 done;       /* rounds finished (ring 3 writes it) */
	u64 bad_addr;   /* 0, or the first page found wrong */
	u64 bad_round;  /* the round that found it; 0 for the final check */
	u64 bad_value;  /* what it held */
};

extern struct migrate_args margs;
void migrate_user_main(void) __attribute__((noreturn));

#endif
