export { parse, PARSE_LIMITS, type ParseResult } from './parse';
export { check, ruleCovers, API_VERSION, KIND, WHEN_ARGS } from './analyze';
export { load, type LoadResult, type IncludeResolver } from './load';
export { evaluate } from './evaluate';
export {
  compile,
  compileForContainer,
  lookup,
  parseTable,
  pctEncode,
  pctDecode,
  TABLE_FORMAT,
  type CompiledTable,
  type ParsedTable,
  type TableError,
  type ContainerSelector,
} from './table';
export {
  capabilitySets,
  programSets,
  privilegesReachedBy,
  type ProgramGrant,
  type Securebit,
  type CapabilitySets,
  type CapabilitySetsResult,
  type CapabilityGrant,
  type ContainerSubject,
  type UntrappedPrivilege,
} from './capsets';
export { ruleEnforcement, enforcementText, type Enforcement, type EnforcementLayer, type RuleEnforcement } from './enforcement';
export { policyJsonSchema } from './schema';
export { ERRNO, errnoName } from './errno';
export { globMatch, globError, globCovers } from './glob';
export { oddCharacter, printable } from './confusables';
export { TABLE_LIMITS, type TableLimit } from './limits';
export { parseRanges, formatRanges, type Ranges } from './ranges';
export type { AstNode, AstMap, AstSeq, AstScalar, PolicyAst } from './ast';
export {
  formatError,
  sortErrors,
  closest,
  didYouMean,
  levenshtein,
  type PolicyError,
  type PolicyErrorCode,
  type PolicySeverity,
  type SourceLocation,
} from './policy.errors';
export type { Action, AuditLevel, ArgCondition, Decision, DecisionRequest, Policy, PolicyDefaults, PolicyRule } from './model';
export { seccompNeed, capabilityDecision, type SeccompNeed, type CapabilityDecision } from './mechanisms';
export { describeRule, explainPolicy, type ExplainedRule, type PolicyExplanation } from './explain';
