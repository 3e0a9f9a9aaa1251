import type { SourceLocation } from './policy.errors';

/**
 * The policy AST: the YAML document as a tree of maps, sequences and scalars, each carrying
 * where it came from. `check` gives it meaning; nothing here knows about policies yet.
 */
export type AstNode = AstMap | AstSeq | AstScalar;

export interface AstScalar {
  kind: 'scalar';
  value: string | number | boolean | null;
  loc: SourceLocation;
  /** written in quotes: the value's first character is one column after `loc` */
  quoted?: true;
}

export interface AstEntry {
  key: string;
  keyLoc: SourceLocation;
  value: AstNode;
}

export interface AstMap {
  kind: 'map';
  entries: AstEntry[];
  loc: SourceLocation;
}

export interface AstSeq {
  kind: 'seq';
  items: AstNode[];
  loc: SourceLocation;
}

export interface PolicyAst {
  file: string;
  root: AstNode;
}

export function entry(map: AstMap, key: string): AstEntry | undefined {
  return map.entries.find((e) => e.key === key);
}

export function describeNode(n: AstNode): string {
  if (n.kind === 'map') return 'a mapping';
  if (n.kind === 'seq') return 'a list';
  if (n.value === null) return 'null';
  if (typeof n.value === 'string') return `the string ${JSON.stringify(n.value.length > 40 ? n.value.slice(0, 40) + '…' : n.value)}`;
  return `${typeof n.value} ${String(n.value)}`;
}
