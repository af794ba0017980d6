/*
 * lesson.h - what every lesson shares: the ports of govmm's devices.
 *
 * A port is an address in the x86's second, 64 KiB address space, reached
 * only by the IN and OUT instructions. On a PC, COM1's UART (a 16550)
 * answers at 0x3F8-0x3FF; govmm emulates one there. govmm also has a
 * "debug-exit" device at 0xF4: the byte written there becomes govmm's
 * exit status, which is how these guests end the VM.
 */
#define COM1        0x3f8   /* the 16550 UART's first register */
#define UART_THR    0       /* +0 write: Transmit Holding Register, the byte to send */
#define UART_LCR    3       /* +3: Line Control Register: word length, parity, stop bits */
#define UART_LSR    5       /* +5 read: Line Status Register */
#define LSR_THRE    0x20    /* LSR bit 5: THR empty, the UART can take a byte */
#define DEBUG_EXIT  0xf4    /* govmm's debug-exit device: write the exit status */
