import { Body, Controller, Get, HttpCode, Inject, Post, Query, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Request } from 'express';
import { RequireScope } from '../auth/auth.decorators';
import { UnsupportedMediaType } from '../errors/domain.error';
import { GATEWAY_OPTIONS, IMAGE_CATALOG } from '../store/tokens';
import type { GatewayOptions } from '../gateway.options';
import type { ImageCatalog } from './image-catalog';
import { ImageDto, ImageListDto, ImportImageQuery, PullImageDto } from './dto/images.dto';
import { streamBodyToFile } from '../http-body';

const ARCHIVE_TYPES = ['application/x-tar', 'application/tar', 'application/octet-stream', 'application/vnd.oci.image.layout.v1+tar'];

@ApiTags('images')
@ApiBearerAuth()
@Controller('v1/images')
export class ImagesController {
  constructor(
    @Inject(IMAGE_CATALOG) private readonly images: ImageCatalog,
    @Inject(GATEWAY_OPTIONS) private readonly options: GatewayOptions,
  ) {}

  @Post()
  @HttpCode(201)
  @RequireScope('images:write')
  @ApiConsumes(...ARCHIVE_TYPES)
  @ApiBody({ schema: { type: 'string', format: 'binary' }, description: 'a docker-archive (docker save) or OCI layout tar' })
  @ApiCreatedResponse({ type: ImageListDto })
  async upload(@Req() req: Request, @Query() q: ImportImageQuery): Promise<ImageListDto> {
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (!ARCHIVE_TYPES.includes(type)) throw new UnsupportedMediaType(ARCHIVE_TYPES.join(', '));
    const dir = join(this.options.home, 'tmp');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, `upload-${randomUUID()}.tar`);
    await streamBodyToFile(req, path, this.options.imageUploadLimit);
    try {
      return { images: await this.images.importArchive(path, q.tag ? { tag: q.tag } : {}) };
    } finally {
      await rm(path, { force: true });
    }
  }

  @Get()
  @RequireScope('runs:read')
  @ApiOkResponse({ type: ImageListDto })
  list(): ImageListDto {
    return { images: this.images.list() };
  }

  @Post('pull')
  @HttpCode(201)
  @RequireScope('images:write')
  @ApiCreatedResponse({ type: ImageDto })
  pull(@Body() body: PullImageDto): Promise<ImageDto> {
    return this.images.pull(body.ref, body.platform ? { platform: body.platform } : {});
  }
}
