import { status as GrpcStatus } from '@grpc/grpc-js';
import type { DomainErrorCode } from './domain.error';

/** The one table from domain error codes to HTTP and gRPC statuses. */
export const ERROR_STATUS: Record<DomainErrorCode, { http: number; grpc: GrpcStatus }> = {
  validation_failed: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT },
  policy_invalid: { http: 422, grpc: GrpcStatus.INVALID_ARGUMENT },
  not_found: { http: 404, grpc: GrpcStatus.NOT_FOUND },
  conflict: { http: 409, grpc: GrpcStatus.ALREADY_EXISTS },
  illegal_state: { http: 409, grpc: GrpcStatus.FAILED_PRECONDITION },
  unauthenticated: { http: 401, grpc: GrpcStatus.UNAUTHENTICATED },
  forbidden: { http: 403, grpc: GrpcStatus.PERMISSION_DENIED },
  payload_too_large: { http: 413, grpc: GrpcStatus.RESOURCE_EXHAUSTED },
  unsupported_media_type: { http: 415, grpc: GrpcStatus.INVALID_ARGUMENT },
  unprocessable: { http: 422, grpc: GrpcStatus.INVALID_ARGUMENT },
  upstream_failed: { http: 502, grpc: GrpcStatus.UNAVAILABLE },
  unavailable: { http: 503, grpc: GrpcStatus.UNAVAILABLE },
  internal: { http: 500, grpc: GrpcStatus.INTERNAL },
};

/** The JSON body of every error response. */
export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}
