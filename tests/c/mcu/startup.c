/*
 * Minimal start-up for running a C test on QEMU's mps2-an386 (Cortex-M4F):
 * vector table, .data/.bss set-up, FPU on, newlib's semihosting I/O
 * (librdimon), then main(); exit() reports the status to QEMU.
 */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __etext, __data_start__, __data_end__, __bss_start__, __bss_end__, __stack_top;
extern int main(void);
extern void initialise_monitor_handles(void);

void Reset_Handler(void);
static void Fault_Handler(void) {
  exit(3);
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(&__stack_top), Reset_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler,
};

/* Normally in crti.o, which -nostartfiles leaves out; exit() calls _fini. */
void _init(void) {}
void _fini(void) {}

void Reset_Handler(void) {
  uint32_t *src = &__etext, *dst = &__data_start__;
  while (dst < &__data_end__) *dst++ = *src++;
  for (dst = &__bss_start__; dst < &__bss_end__;) *dst++ = 0;
  /* CPACR: full access to CP10/CP11 (the FPU), for the hard-float ABI. */
  *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20;
  __asm volatile("dsb\n isb");
  initialise_monitor_handles();
  exit(main());
}
