import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Forbidden, Unauthenticated } from '../errors/domain.error';
import { PUBLIC_KEY, SCOPE_KEY } from './auth.decorators';
import { hasScope, Scope } from './scopes';
import { Principal, TokenStore } from './token-store';

/** Resolves `Authorization: Bearer <token>` (or gRPC metadata `authorization`) to a principal and checks its scope. */
export function authenticate(tokens: TokenStore, header: string | undefined, needed: Scope | undefined): Principal {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) throw new Unauthenticated();
  const principal = tokens.verify(m[1]);
  if (!principal) throw new Unauthenticated();
  if (needed && !hasScope(principal.scopes, needed)) throw new Forbidden(needed);
  return principal;
}

@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    @Inject(TokenStore) private readonly tokens: TokenStore,
  ) {}

  canActivate(ctx: ExecutionContext): boolean {
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    const scope = this.reflector.getAllAndOverride<Scope | undefined>(SCOPE_KEY, targets);
    const req = ctx.switchToHttp().getRequest<{ headers: Record<string, string | undefined>; principal?: Principal }>();
    req.principal = authenticate(this.tokens, req.headers.authorization, scope);
    return true;
  }
}
