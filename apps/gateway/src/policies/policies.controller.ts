import { Body, Controller, Get, HttpCode, Param, ParseIntPipe, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiCreatedResponse, ApiOkResponse, ApiProperty, ApiPropertyOptional, ApiQuery, ApiTags, ApiUnprocessableEntityResponse } from '@nestjs/swagger';
import { CurrentPrincipal, RequireScope } from '../auth/auth.decorators';
import type { Principal } from '../auth/token-store';
import { UnsupportedMediaType, ValidationFailed } from '../errors/domain.error';
import { PoliciesService } from './policies.service';

export class PublishedPolicyDto {
  @ApiProperty() name!: string;
  @ApiProperty() version!: number;
  @ApiProperty({ example: 'sha256:…' }) hash!: string;
  @ApiProperty({ description: 'lint warnings (file:line:col)', type: 'array', items: { type: 'object' } }) warnings!: unknown[];
}

export class PolicyLintDto {
  @ApiProperty({ description: 'no errors (warnings allowed)' }) ok!: boolean;
  @ApiPropertyOptional({ description: 'the name and compiled hash, when the policy is valid' }) policy?: { name: string; hash: string; description?: string };
  @ApiProperty({ description: 'lint errors {code, message, location: "policy.yaml:line:col", line, col, severity}', type: 'array', items: { type: 'object' } }) errors!: unknown[];
  @ApiProperty({ type: 'array', items: { type: 'object' } }) warnings!: unknown[];
}

export class PolicySummaryDto {
  @ApiProperty() name!: string;
  @ApiProperty() latest!: number;
  @ApiProperty({ type: [Number] }) versions!: number[];
  @ApiProperty() hash!: string;
  @ApiPropertyOptional() description?: string;
  @ApiProperty() publishedAt!: string;
}

export class PolicyListDto {
  @ApiProperty({ type: [PolicySummaryDto] }) policies!: PolicySummaryDto[];
}

export class PolicyVersionDto {
  @ApiProperty() name!: string;
  @ApiProperty() version!: number;
  @ApiProperty() hash!: string;
  @ApiPropertyOptional() description?: string;
  @ApiProperty() yaml!: string;
  @ApiProperty() publishedAt!: string;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const VersionPipe = new ParseIntPipe({ exceptionFactory: () => new ValidationFailed([{ field: 'version', messages: ['version must be an integer'] }]) });

@ApiTags('policies')
@ApiBearerAuth()
@Controller('v1/policies')
export class PoliciesController {
  constructor(private readonly policies: PoliciesService) {}

  @Post()
  @HttpCode(201)
  @RequireScope('policies:write')
  @ApiConsumes('application/yaml', 'text/yaml')
  @ApiBody({ schema: { type: 'string' }, description: 'the policy YAML' })
  @ApiCreatedResponse({ type: PublishedPolicyDto, description: 'a new version (or the latest one, unchanged, when the text is identical)' })
  @ApiUnprocessableEntityResponse({ description: 'lint errors, each with file:line:col' })
  async publish(@Body() body: unknown, @CurrentPrincipal() who?: Principal): Promise<PublishedPolicyDto> {
    if (typeof body !== 'string') throw new UnsupportedMediaType('application/yaml or text/yaml');
    return this.policies.publish(body, who?.name);
  }

  @Post('lint')
  @HttpCode(200)
  @RequireScope('audit:read')
  @ApiConsumes('application/yaml', 'text/yaml')
  @ApiBody({ schema: { type: 'string' }, description: 'the policy YAML' })
  @ApiOkResponse({ type: PolicyLintDto, description: 'the lint result (200 whether or not the policy is valid); nothing is published' })
  lint(@Body() body: unknown): PolicyLintDto {
    if (typeof body !== 'string') throw new UnsupportedMediaType('application/yaml or text/yaml');
    return this.policies.lint(body);
  }

  @Post('explain')
  @HttpCode(200)
  @RequireScope('audit:read')
  @ApiConsumes('application/yaml', 'text/yaml')
  @ApiBody({ schema: { type: 'string' }, description: 'the policy YAML' })
  @ApiQuery({ name: 'uid', required: false, description: 'the container\'s uid (default 0)' })
  @ApiQuery({ name: 'gid', required: false, description: 'the container\'s gid (default 0)' })
  @ApiQuery({ name: 'image', required: false, description: 'the container\'s image reference (rules matching other images drop out)' })
  @ApiOkResponse({
    schema: { type: 'object' },
    description:
      'what `capulator policy explain --json` prints: `{ok, errors, explanation?}`, the explanation holding every rule (its conditions, location and the layer that enforces it: kernel sets, file capability, agent, or recorded only) and the capability sets a container of that uid starts with, with the rule behind each grant. 200 whether or not the policy loads; nothing is published.',
  })
  explain(@Body() body: unknown, @Query('uid') uid?: string, @Query('gid') gid?: string, @Query('image') image?: string): { ok: boolean; errors: unknown[]; explanation?: unknown } {
    if (typeof body !== 'string') throw new UnsupportedMediaType('application/yaml or text/yaml');
    const id = (name: string, v: string | undefined): number => {
      if (v === undefined || v === '') return 0;
      if (!/^(0|[1-9][0-9]{0,9})$/.test(v) || Number(v) > 0xffffffff) throw new ValidationFailed([{ field: name, messages: [`${name} must be an integer from 0 to 4294967295`] }]);
      return Number(v);
    };
    const subject = { uid: id('uid', uid), gid: id('gid', gid), ...(image ? { image } : {}) };
    return this.policies.explain(body, subject);
  }

  @Get()
  @RequireScope('audit:read')
  @ApiOkResponse({ type: PolicyListDto })
  list(): PolicyListDto {
    return { policies: this.policies.list() };
  }

  @Get(':name/versions/:version')
  @RequireScope('audit:read')
  @ApiOkResponse({ type: PolicyVersionDto })
  get(@Param('name') name: string, @Param('version', VersionPipe) version: number): PolicyVersionDto {
    if (!NAME_RE.test(name)) throw new ValidationFailed([{ field: 'name', messages: ['name must be a policy name'] }]);
    const { position: _position, ...v } = this.policies.get(name, version);
    return v;
  }
}
