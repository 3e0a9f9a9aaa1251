import { isImageRef } from '../../runtime/src/images/refs';
import { ValidationError, ValidationPipe } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validate, registerDecorator, ValidationOptions } from 'class-validator';
import { FieldError, ValidationFailed } from './errors/domain.error';

/** Flattens class-validator's tree into `{field: 'mounts.0.source', messages}` entries. */
export function fieldErrors(errors: ValidationError[], prefix = ''): FieldError[] {
  const out: FieldError[] = [];
  for (const e of errors) {
    const field = prefix ? `${prefix}.${e.property}` : e.property;
    if (e.constraints) out.push({ field, messages: Object.values(e.constraints) });
    if (e.children?.length) out.push(...fieldErrors(e.children, field));
  }
  return out;
}

const OPTIONS = { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true } as const;

/** The global pipe: unknown fields refused, errors field by field (400 / INVALID_ARGUMENT). */
export function validationPipe(): ValidationPipe {
  return new ValidationPipe({
    ...OPTIONS,
    transform: true,
    exceptionFactory: (errors) => new ValidationFailed(fieldErrors(errors)),
  });
}

/** The same validation for gRPC requests. */
export async function validateDto<T extends object>(cls: new () => T, plain: unknown): Promise<T> {
  if (plain === null || typeof plain !== 'object') throw new ValidationFailed([{ field: '', messages: ['request must be an object'] }]);
  const dto = plainToInstance(cls, plain);
  const errors = await validate(dto, OPTIONS);
  if (errors.length > 0) throw new ValidationFailed(fieldErrors(errors));
  return dto;
}

/** An object whose keys match `keyPattern` and whose values are strings. */
export function IsStringMap(keyPattern: RegExp, maxEntries: number, options?: ValidationOptions) {
  return (object: object, propertyName: string) =>
    registerDecorator({
      name: 'isStringMap',
      target: object.constructor,
      propertyName,
      options: { message: `$property must be an object of at most ${maxEntries} string values with keys matching ${keyPattern}`, ...options },
      validator: {
        validate(value: unknown) {
          if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
          const entries = Object.entries(value as Record<string, unknown>);
          return entries.length <= maxEntries && entries.every(([k, v]) => keyPattern.test(k) && typeof v === 'string' && v.length <= 32768 && !v.includes('\0'));
        },
      },
    });
}

/** An image reference the store can resolve (apps/runtime's refs): checked at submission, not when the run fails. */
export function IsImageRef(options?: ValidationOptions) {
  return (object: object, propertyName: string) =>
    registerDecorator({
      name: 'isImageRef',
      target: object.constructor,
      propertyName,
      options: { message: '$property must be an image tag (name[:tag]), a digest (sha256:…) or a digest prefix of 12+ hex digits', ...options },
      validator: {
        validate(value: unknown) {
          return typeof value === 'string' && isImageRef(value);
        },
      },
    });
}
