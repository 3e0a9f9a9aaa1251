import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, IsUUID, Matches, Max, MaxLength, Min } from 'class-validator';

export class DecisionsQuery {
  @ApiPropertyOptional({ format: 'uuid', description: 'only this run' })
  @IsOptional()
  @IsUUID()
  run?: string;

  @ApiPropertyOptional({ enum: ['allow', 'deny', 'emulate'] })
  @IsOptional()
  @IsIn(['allow', 'deny', 'emulate'])
  decision?: 'allow' | 'deny' | 'emulate';

  @ApiPropertyOptional({ example: 'PRIV_NETINET_RAW' })
  @IsOptional()
  @Matches(/^PRIV_[A-Z0-9_]+$/, { message: 'privilege must be a PRIV_* name' })
  privilege?: string;

  @ApiPropertyOptional({ example: 'CAP_NET_RAW' })
  @IsOptional()
  @Matches(/^CAP_[A-Z0-9_]+$/, { message: 'capability must be a CAP_* name' })
  capability?: string;

  @ApiPropertyOptional({ example: '/usr/bin/ping' })
  @IsOptional()
  @IsString()
  @MaxLength(4096)
  exe?: string;

  @ApiPropertyOptional({ description: 'an ISO-8601 time, or a global position (events after it)' })
  @IsOptional()
  @Matches(/^([0-9]{1,15}|\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?)$/, { message: 'since must be an ISO-8601 time or a position' })
  since?: string;

  @ApiPropertyOptional({ default: 1000, maximum: 10000 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(10000)
  limit?: number;
}
