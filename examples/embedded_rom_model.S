/* A prepacked .featx linked into the program's read-only data, for
 * examples/embedded_rom.cpp (docs/embedded.md).
 *
 * Assemble with the model's path as a quoted string (a .S goes through the C
 * preprocessor), e.g.
 *   g++ -c -DFEATX_ROM_MODEL='"build/test_models/random_a0.35_r96_s1_c0_prepacked.featx"' \
 *       examples/embedded_rom_model.S
 * The build must re-assemble when the model changes (CMake: OBJECT_DEPENDS).
 *
 * .incbin rather than `xxd -i`: the assembler copies the bytes as they are,
 * in milliseconds for a 14 MB model, where a C array of 14 million
 * initialisers takes the compiler minutes and gigabytes. .balign 64 is the
 * alignment a prepacked model needs (its weights are used in place;
 * Model::from_embedded refuses anything less). GNU as and Clang's integrated
 * assembler, ELF targets (Linux, bare-metal arm-none-eabi); with other
 * toolchains use `xxd -i` into an `alignas(64) const unsigned char[]`.
 */
#ifndef FEATX_ROM_MODEL
#error "define FEATX_ROM_MODEL as the quoted path of a prepacked .featx (export_weights.py --prepacked)"
#endif

        .section .rodata
        .balign 64
        .globl featx_model_rom
        .type featx_model_rom, %object
featx_model_rom:
        .incbin FEATX_ROM_MODEL
        .globl featx_model_rom_end
featx_model_rom_end:
        .size featx_model_rom, featx_model_rom_end - featx_model_rom

/* No executable stack wanted: without this note GNU ld assumes one. */
        .section .note.GNU-stack,"",%progbits
