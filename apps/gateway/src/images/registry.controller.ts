import { Controller, Get, Headers, Inject, Param, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { createReadStream, readFileSync } from 'node:fs';
import type { Request, Response } from 'express';
import { authenticate } from '../auth/auth.guard';
import { Public } from '../auth/auth.decorators';
import { TokenStore } from '../auth/token-store';
import { DomainError } from '../errors/domain.error';
import { IMAGE_CATALOG } from '../store/tokens';
import { SERVED_REPOSITORY, type ImageCatalog } from './image-catalog';
import { MT_OCI_MANIFEST } from '../../../runtime/src/images/image-store';

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/**
 * The images this gateway got from archives, served read-only as a registry serves them (the
 * OCI distribution API's pull side: GET/HEAD of manifests and blobs, by digest only) so that a
 * worker on the Kafka bus that lacks an image fetches it with the same client, verifying every
 * digest, as it fetches from a registry. Auth: this gateway's tokens with scope images:read, as
 * `Authorization: Bearer TOKEN` or as the password of Basic auth (a docker config.json `auths`
 * entry); a request without either is answered 401 with a Basic challenge. docs/images.md "Serving".
 */
@ApiExcludeController()
@Public()
@Controller('v2')
export class RegistryController {
  constructor(
    @Inject(IMAGE_CATALOG) private readonly images: ImageCatalog,
    @Inject(TokenStore) private readonly tokens: TokenStore,
  ) {}

  @Get()
  base(@Headers('authorization') auth: string | undefined, @Res() res: Response): void {
    if (!this.authorized(auth, res)) return;
    res.status(200).json({});
  }

  // Express answers HEAD with the GET route (req.method says which)
  @Get(':ns/:repo/manifests/:reference')
  manifest(@Param('ns') ns: string, @Param('repo') repo: string, @Param('reference') reference: string, @Headers('authorization') auth: string | undefined, @Req() req: Request, @Res() res: Response): void {
    if (!this.authorized(auth, res)) return;
    const b = `${ns}/${repo}` === SERVED_REPOSITORY && DIGEST.test(reference) ? this.images.servedBlob?.(reference) : undefined;
    if (!b?.manifest) return registryError(res, 404, 'MANIFEST_UNKNOWN', `manifest ${reference} is not served here (only images imported from archives, by digest)`);
    const bytes = readFileSync(b.path);
    res.status(200).set({ 'content-type': MT_OCI_MANIFEST, 'docker-content-digest': reference, 'content-length': String(bytes.length) });
    if (req.method === 'HEAD') res.end();
    else res.end(bytes);
  }

  @Get(':ns/:repo/blobs/:digest')
  blob(@Param('ns') ns: string, @Param('repo') repo: string, @Param('digest') digest: string, @Headers('authorization') auth: string | undefined, @Headers('range') range: string | undefined, @Req() req: Request, @Res() res: Response): void {
    if (!this.authorized(auth, res)) return;
    const b = `${ns}/${repo}` === SERVED_REPOSITORY && DIGEST.test(digest) ? this.images.servedBlob?.(digest) : undefined;
    if (!b) return registryError(res, 404, 'BLOB_UNKNOWN', `blob ${digest} is not served here`);
    // a resumed download: bytes=N- (what the registry client sends)
    const m = /^bytes=(\d+)-$/.exec(range ?? '');
    const start = m ? Number(m[1]) : 0;
    if (start > 0 && start >= b.size) return registryError(res, 416, 'BLOB_UNKNOWN', `range ${range} is past the blob's ${b.size} bytes`);
    res.status(start > 0 ? 206 : 200).set({
      'content-type': 'application/octet-stream',
      'docker-content-digest': digest,
      'content-length': String(b.size - start),
      'accept-ranges': 'bytes',
      ...(start > 0 ? { 'content-range': `bytes ${start}-${b.size - 1}/${b.size}` } : {}),
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const s = createReadStream(b.path, { start });
    s.on('error', () => res.destroy());
    s.pipe(res);
  }

  /** images:read by Bearer or Basic (the token as password); otherwise 401/403 in the registry's words, with a Basic challenge. */
  private authorized(header: string | undefined, res: Response): boolean {
    const basic = /^Basic\s+(\S+)\s*$/i.exec(header ?? '');
    let bearer = header;
    if (basic) {
      const text = Buffer.from(basic[1], 'base64').toString('utf8');
      bearer = `Bearer ${text.slice(text.indexOf(':') + 1)}`;
    }
    try {
      authenticate(this.tokens, bearer, 'images:read');
      return true;
    } catch (err) {
      const forbidden = err instanceof DomainError && err.code === 'forbidden';
      if (!forbidden) res.set('www-authenticate', 'Basic realm="capulator"');
      registryError(res, forbidden ? 403 : 401, forbidden ? 'DENIED' : 'UNAUTHORIZED', forbidden ? 'this token lacks the scope images:read' : 'a token with the scope images:read is needed');
      return false;
    }
  }
}

function registryError(res: Response, status: number, code: string, message: string): void {
  res.status(status).json({ errors: [{ code, message }] });
}
