import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import type { Principal } from './token-store';
import type { Scope } from './scopes';

export const SCOPE_KEY = 'capulator:scope';
export const PUBLIC_KEY = 'capulator:public';

/** The scope a route needs. Routes without @RequireScope still need a valid token. */
export const RequireScope = (scope: Scope) => SetMetadata(SCOPE_KEY, scope);
/** No token needed (health only). */
export const Public = () => SetMetadata(PUBLIC_KEY, true);

export const CurrentPrincipal = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal | undefined => {
  return ctx.switchToHttp().getRequest<{ principal?: Principal }>().principal;
});
