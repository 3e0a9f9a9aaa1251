import { ERRNO as ABI_ERRNO } from '@capulator/abi';

/** Linux errno names → numbers: libs/abi's table (checked against the kernel headers there). */
export const ERRNO: Readonly<Record<string, number>> = ABI_ERRNO;

const BY_NUMBER = new Map<number, string>();
for (const [n, v] of Object.entries(ERRNO)) if (!BY_NUMBER.has(v)) BY_NUMBER.set(v, n);

export function errnoName(n: number): string | undefined {
  return BY_NUMBER.get(n);
}

export const MAX_ERRNO = 4095;
