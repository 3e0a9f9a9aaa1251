import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { DomainError } from '../errors/domain.error';
import { ERROR_STATUS } from '../errors/error-status';

/** JSON as printable ASCII: gRPC metadata values refuse anything else (grpc-js throws, which took the server down). */
function asciiJson(v: unknown): string {
  return JSON.stringify(v).replace(/[^\x20-\x7e]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

/** The gRPC side of the error mapping: status from ERROR_STATUS, details as JSON in `capulator-error`. */
export function toGrpcError(err: unknown): Partial<ServiceError> {
  const metadata = new Metadata();
  if (err instanceof DomainError) {
    metadata.set('capulator-error', asciiJson({ code: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) }));
    return { code: ERROR_STATUS[err.code].grpc, details: err.message, metadata };
  }
  metadata.set('capulator-error', asciiJson({ code: 'internal', message: 'internal error' }));
  return { code: GrpcStatus.INTERNAL, details: 'internal error', metadata };
}
