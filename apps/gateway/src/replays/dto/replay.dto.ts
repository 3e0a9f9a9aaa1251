import { ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsISO8601, IsOptional, IsString, IsUUID, Matches, MaxLength } from 'class-validator';
import { POLICY_REF_PATTERN } from '../../runs/dto/submit-run.dto';

export class ReplayDto {
  @ApiPropertyOptional({ description: 'the candidate policy, inline (YAML text)' })
  @IsOptional()
  @IsString()
  @MaxLength(1024 * 1024)
  policyYaml?: string;

  @ApiPropertyOptional({ description: 'or a published one: "name" or "name@version"' })
  @IsOptional()
  @Matches(POLICY_REF_PATTERN, { message: 'policy must be "name" or "name@version"' })
  policy?: string;

  @ApiPropertyOptional({ type: [String], description: 'only these runs (default: all)' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(10000)
  @IsUUID(undefined, { each: true })
  runIds?: string[];

  @ApiPropertyOptional({ description: 'only history at or after this ISO-8601 time' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'since must be an ISO-8601 time' })
  since?: string;
}
