import { Body, Controller, HttpCode, Inject, Post, Req } from '@nestjs/common';
import type { Request } from 'express';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireScope } from '../auth/auth.decorators';
import { PolicyInvalid, ValidationFailed } from '../errors/domain.error';
import { PoliciesService } from '../policies/policies.service';
import { POLICY_ENGINE, REPLAYER } from '../store/tokens';
import type { PolicyEngine } from '../policies/policy-engine';
import { ReplayDto } from './dto/replay.dto';
import type { Replayer, ReplayReport } from './replayer';

/** Resolves the candidate policy and runs the what-if; shared by HTTP and gRPC. */
export async function replay(policies: PoliciesService, engine: PolicyEngine, replayer: Replayer, dto: ReplayDto, signal?: AbortSignal): Promise<ReplayReport> {
  if ((dto.policy === undefined) === (dto.policyYaml === undefined)) {
    throw new ValidationFailed([{ field: 'policy', messages: ['give exactly one of policy or policyYaml'] }]);
  }
  const yaml = dto.policy !== undefined ? policies.resolve(dto.policy).yaml : dto.policyYaml!;
  const linted = engine.lint(yaml, 'policyYaml');
  if (!linted.policy || linted.errors.length > 0) throw new PolicyInvalid(linted.errors);
  return replayer.whatIf({ policyYaml: yaml, ...(dto.runIds ? { runIds: dto.runIds } : {}), ...(dto.since ? { since: dto.since } : {}) }, signal);
}

@ApiTags('replays')
@ApiBearerAuth()
@Controller('v1/replays')
export class ReplaysController {
  constructor(
    private readonly policies: PoliciesService,
    @Inject(POLICY_ENGINE) private readonly engine: PolicyEngine,
    @Inject(REPLAYER) private readonly replayer: Replayer,
  ) {}

  @Post()
  @HttpCode(200)
  @RequireScope('audit:read')
  @ApiOperation({ summary: 'What-if: every recorded decision and start-time capability computation under another policy' })
  @ApiOkResponse({ schema: { type: 'object' } })
  run(@Body() body: ReplayDto, @Req() req: Request): Promise<ReplayReport> {
    // the client going away cancels the replay
    const gone = new AbortController();
    req.socket.once('close', () => gone.abort());
    return replay(this.policies, this.engine, this.replayer, body, gone.signal);
  }
}
