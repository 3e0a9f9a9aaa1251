import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, Max, Min } from 'class-validator';
import { TERMINAL_MAX_SIDE } from '../../../../runtime/src/run/run-input';

export const RUN_STATUSES = ['queued', 'running', 'exited', 'failed'] as const;

export class RunAcceptedDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ enum: RUN_STATUSES }) status!: string;
}

class CountsDto {
  @ApiProperty() allow!: number;
  @ApiProperty() deny!: number;
  @ApiProperty() emulate!: number;
}

class PolicyRefDto {
  @ApiProperty() name!: string;
  @ApiProperty({ description: '0 for an inline, unpublished policy' }) version!: number;
  @ApiProperty() hash!: string;
}

export class RunDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ enum: RUN_STATUSES }) status!: string;
  @ApiProperty() image!: string;
  @ApiPropertyOptional() imageDigest?: string;
  @ApiProperty({ type: [String] }) command!: string[];
  @ApiProperty({ type: PolicyRefDto }) policy!: PolicyRefDto;
  @ApiProperty() learn!: boolean;
  @ApiProperty({ type: CountsDto }) counts!: CountsDto;
  @ApiPropertyOptional({ nullable: true }) exitCode?: number | null;
  @ApiPropertyOptional({ nullable: true }) signal?: string | null;
  @ApiPropertyOptional() reason?: string;
  @ApiProperty() requestedAt!: string;
  @ApiPropertyOptional({ description: 'the name of the token that submitted the run: only it, or a token with runs:admin, may stop, feed or resize the run' }) requestedBy?: string;
  @ApiPropertyOptional() startedAt?: string;
  @ApiPropertyOptional() endedAt?: string;
  @ApiProperty({ description: 'global position of the last event folded into this view' }) position!: number;
}

export class RunListDto {
  @ApiProperty({ type: [RunDto] }) runs!: RunDto[];
}

export class ListRunsQuery {
  @ApiPropertyOptional({ enum: RUN_STATUSES })
  @IsOptional()
  @IsIn(RUN_STATUSES)
  status?: (typeof RUN_STATUSES)[number];

  @ApiPropertyOptional({ default: 100, minimum: 1, maximum: 10000 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(10000)
  limit?: number;
}

export class WatchRunQuery {
  @ApiPropertyOptional({ description: 'resume after this global position (like the Last-Event-ID header)' })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  after?: number;
}

export class RunLogsQuery {
  @ApiPropertyOptional({ enum: ['0', '1', 'true', 'false'], description: 'keep the stream open and send new output until the run ends' })
  @IsOptional()
  @IsIn(['0', '1', 'true', 'false'])
  follow?: string;

  @ApiPropertyOptional({ description: 'resume after this output chunk (like the Last-Event-ID header)' })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  after?: number;
}

export class RunStdinQuery {
  @ApiPropertyOptional({ enum: ['0', '1', 'true', 'false'], description: "close the run's stdin after this body (the program then reads end of file)" })
  @IsOptional()
  @IsIn(['0', '1', 'true', 'false'])
  eof?: string;
}

/** POST /v1/runs/{id}/resize (and gRPC ResizeTty): a window size in character cells. */
export class ResizeTtyDto {
  @ApiProperty({ minimum: 1, maximum: TERMINAL_MAX_SIDE, example: 40 }) @IsInt() @Min(1) @Max(TERMINAL_MAX_SIDE) rows!: number;
  @ApiProperty({ minimum: 1, maximum: TERMINAL_MAX_SIDE, example: 120 }) @IsInt() @Min(1) @Max(TERMINAL_MAX_SIDE) cols!: number;
}
