import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { ValidationFailed } from '../errors/domain.error';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
import { RequireScope } from '../auth/auth.decorators';
import { AuditService } from './audit.service';
import { DecisionsQuery } from './dto/decisions.query';

@ApiTags('audit')
@ApiBearerAuth()
@Controller('v1/decisions')
export class AuditController {
  constructor(private readonly audit: AuditService) {}

  @Get('timeline')
  @RequireScope('audit:read')
  @ApiOperation({ summary: "One run's decisions in columns (the console's privilege timeline)", description: 'position[], t[] (ms since the first decision), program[] and kind[] (indexes into programs and kinds), outcome[] (0 allow, 1 emulate, 2 deny). SQLite store only (503 otherwise).' })
  @ApiQuery({ name: 'run', required: true, schema: { type: 'string', format: 'uuid' } })
  @ApiOkResponse({ schema: { type: 'object' } })
  timeline(@Query('run') run?: string) {
    if (!run || !UUID_RE.test(run)) throw new ValidationFailed([{ field: 'run', messages: ['run must be a UUID'] }]);
    return this.audit.timeline(run.toLowerCase());
  }

  @Get()
  @RequireScope('audit:read')
  @ApiOperation({ summary: 'Recorded decisions (capget, capset, privilege checks), oldest first' })
  @ApiOkResponse({ schema: { type: 'object', properties: { decisions: { type: 'array', items: { type: 'object' } }, truncated: { type: 'boolean' } } } })
  list(@Query() q: DecisionsQuery) {
    return this.audit.decisions(q);
  }
}
