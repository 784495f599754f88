// Byte units, defined once: partition layouts, image writes and disk reports count in MiB.

/** One mebibyte (2^20 bytes). */
export const MIB = 1024 * 1024;
