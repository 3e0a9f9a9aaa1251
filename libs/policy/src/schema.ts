import { CAP_NAMES, PRIV_NAMES } from './abi';
import { WHEN_ARGS } from './analyze';
import { ERRNO } from './errno';

/** A JSON Schema (draft 2020-12) for editors. `check` remains the authority (ranges, shadowing, …). */
export function policyJsonSchema(): Record<string, unknown> {
  const nameOrGlob = (names: readonly string[], what: string) => ({
    anyOf: [{ enum: [...names] }, { type: 'string', pattern: '[*?\\[]', description: `a glob over ${what} names` }],
  });
  const oneOrMany = (s: Record<string, unknown>) => ({ anyOf: [s, { type: 'array', items: s, minItems: 1 }] });
  const ranges = { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: '^\\s*\\d+(\\s*-\\s*\\d+)?(\\s*,\\s*\\d+(\\s*-\\s*\\d+)?)*\\s*$' }, { type: 'array', items: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string' }] } }] };
  const whenProps: Record<string, unknown> = { syscall: { type: 'string', description: 'syscall name, e.g. setsockopt' } };
  for (const [k, spec] of Object.entries(WHEN_ARGS)) {
    whenProps[k] =
      spec.kind === 'ranges'
        ? { ...ranges, description: spec.doc }
        : spec.kind === 'caps'
          ? { ...oneOrMany(nameOrGlob(CAP_NAMES, 'capability')), description: spec.doc }
          : { ...oneOrMany({ type: 'string' }), description: spec.doc };
  }
  const errno = { anyOf: [{ enum: Object.keys(ERRNO) }, { type: 'integer', minimum: 1, maximum: 4095 }] };
  const action = { enum: ['allow', 'deny', 'emulate'] };
  const audit = { enum: ['all', 'denials', 'none'] };
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://capulator.dev/schema/policy-v1.json',
    title: 'capulator policy',
    type: 'object',
    additionalProperties: false,
    required: ['apiVersion', 'kind', 'metadata'],
    properties: {
      apiVersion: { const: 'capulator/v1' },
      kind: { const: 'Policy' },
      metadata: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: { name: { type: 'string' }, description: { type: 'string' }, version: { type: 'string' }, labels: { type: 'object' } },
      },
      defaults: {
        type: 'object',
        additionalProperties: false,
        properties: { action, audit, errno, return: { type: 'integer' } },
      },
      learn: { type: 'boolean', description: 'learn mode: allow and record everything' },
      include: oneOrMany({ type: 'string' }),
      rules: {
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['id', 'action'],
          properties: {
            id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$' },
            description: { type: 'string' },
            match: {
              type: 'object',
              additionalProperties: false,
              properties: {
                exe: oneOrMany({ type: 'string' }),
                uid: ranges,
                gid: ranges,
                image: oneOrMany({ type: 'string' }),
                labels: { type: 'object', additionalProperties: { type: 'string' } },
              },
            },
            privileges: oneOrMany(nameOrGlob(PRIV_NAMES, 'privilege')),
            capabilities: oneOrMany(nameOrGlob(CAP_NAMES, 'capability')),
            when: { type: 'object', additionalProperties: false, properties: whenProps },
            action,
            errno,
            return: { type: 'integer' },
            audit,
          },
        },
      },
    },
  };
}
