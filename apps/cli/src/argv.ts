/**
 * The program's words as commander passes them through after the first operand (`run IMAGE …`,
 * `exec RUN …`): a `--` right after that operand is the CLI's (`capulator run IMAGE -- CMD`), not
 * the program's.
 */
export const afterDashes = (words: string[]): string[] => (words[0] === '--' ? words.slice(1) : words);
