import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireScope } from '../auth/auth.decorators';
import { AuditService } from './audit.service';
import { DecisionsQuery } from './dto/decisions.query';

@ApiTags('audit')
@ApiBearerAuth()
@Controller('v1/decisions')
export class AuditController {
  constructor(private readonly audit: AuditService) {}

  @Get()
  @RequireScope('audit:read')
  @ApiOperation({ summary: 'Recorded decisions (capget, capset, privilege checks), oldest first' })
  @ApiOkResponse({ schema: { type: 'object', properties: { decisions: { type: 'array', items: { type: 'object' } }, truncated: { type: 'boolean' } } } })
  list(@Query() q: DecisionsQuery) {
    return this.audit.decisions(q);
  }
}
