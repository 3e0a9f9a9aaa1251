import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsBoolean, IsNotEmpty, IsOptional, IsString, Matches, MaxLength, ValidateNested } from 'class-validator';
import { IsImageRef, IsStringMap } from '../../validation';

export const POLICY_REF_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(@[1-9][0-9]{0,8})?$/;

export class MountDto {
  @ApiProperty({ example: '/srv/data' })
  @IsString()
  @Matches(/^\/[^\0]*$/, { message: 'source must be an absolute path' })
  @MaxLength(4096)
  source!: string;

  @ApiProperty({ example: '/data' })
  @IsString()
  @Matches(/^\/[^\0]*$/, { message: 'destination must be an absolute path' })
  @MaxLength(4096)
  destination!: string;

  @ApiPropertyOptional({ default: true, description: 'read-only unless false is asked for' })
  @IsOptional()
  @IsBoolean()
  readonly?: boolean;
}

/**
 * What `docker run`'s flags set besides image and command, in the same words (`capulator run
 * --help`): read by the runtime's one parser (apps/runtime workload.ts parseWorkload).
 */
export class WorkloadDto {
  @ApiPropertyOptional({ enum: ['none', 'bridge', 'host'], description: 'none (default, loopback only), bridge (needs runs:network), host (needs runs:host-network)' })
  @IsOptional()
  @IsString()
  @MaxLength(16)
  network?: string;

  @ApiPropertyOptional({ type: [String], example: ['127.0.0.1:8080:80'], description: '[ip:]hostPort:port[/udp]; implies bridge (needs runs:network)' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(64)
  @IsString({ each: true })
  @MaxLength(64, { each: true })
  publish?: string[];

  @ApiPropertyOptional({ example: '256m' }) @IsOptional() @IsString() @MaxLength(32) memory?: string;
  @ApiPropertyOptional({ example: '512m' }) @IsOptional() @IsString() @MaxLength(32) memorySwap?: string;
  @ApiPropertyOptional({ example: '0.5' }) @IsOptional() @IsString() @MaxLength(32) cpus?: string;
  @ApiPropertyOptional({ example: '100' }) @IsOptional() @IsString() @MaxLength(32) pidsLimit?: string;

  @ApiPropertyOptional({ type: [String], example: ['nofile=4096'] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(32)
  @IsString({ each: true })
  @MaxLength(64, { each: true })
  ulimit?: string[];

  @ApiPropertyOptional({ example: '1000:1000' }) @IsOptional() @IsString() @MaxLength(256) user?: string;
  @ApiPropertyOptional({ example: '/srv' }) @IsOptional() @IsString() @MaxLength(4096) workdir?: string;
  @ApiPropertyOptional() @IsOptional() @IsBoolean() readOnly?: boolean;

  @ApiPropertyOptional({ type: [String], example: ['/run:size=16m'] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(32)
  @IsString({ each: true })
  @MaxLength(4096, { each: true })
  tmpfs?: string[];

  @ApiPropertyOptional({ example: 'web1' }) @IsOptional() @IsString() @MaxLength(64) hostname?: string;

  @ApiPropertyOptional({ description: "-i: the program's stdin is what POST /v1/runs/{id}/stdin sends (else /dev/null)" })
  @IsOptional()
  @IsBoolean()
  interactive?: boolean;

  @ApiPropertyOptional({ description: '-t: the program runs on a pseudo-terminal; its output comes as one stream (stdout) and POST /v1/runs/{id}/resize sets the window size' })
  @IsOptional()
  @IsBoolean()
  tty?: boolean;
}

export class SubmitRunDto {
  @ApiProperty({ description: 'image tag, digest or unique digest prefix', example: 'debian:12' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(512)
  @IsImageRef()
  image!: string;

  @ApiPropertyOptional({ type: [String], description: "the entrypoint: replaces the image's Entrypoint, whose Cmd is then not used (docker run --entrypoint, Kubernetes' command)", example: ['/bin/true'] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(1024)
  @IsString({ each: true })
  @MaxLength(32768, { each: true })
  command?: string[];

  @ApiPropertyOptional({ type: [String], description: "the arguments after the entrypoint (`command`, or the image's Entrypoint), replacing the image's Cmd (docker run IMAGE ARG…, Kubernetes' args)" })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(1024)
  @IsString({ each: true })
  @MaxLength(32768, { each: true })
  args?: string[];

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' }, example: { LANG: 'C.UTF-8' } })
  @IsOptional()
  @IsStringMap(/^[A-Za-z_][A-Za-z0-9_]{0,255}$/, 1024)
  env?: Record<string, string>;

  @ApiPropertyOptional({ description: 'a published policy: "name" (latest) or "name@version"', example: 'ping@2' })
  @IsOptional()
  @IsString()
  @Matches(POLICY_REF_PATTERN, { message: 'policy must be "name" or "name@version"' })
  policy?: string;

  @ApiPropertyOptional({ description: 'an unpublished policy, inline (YAML text)' })
  @IsOptional()
  @IsString()
  @MaxLength(1024 * 1024)
  policyYaml?: string;

  @ApiPropertyOptional({ description: 'learn mode: allow and record everything', default: false })
  @IsOptional()
  @IsBoolean()
  learn?: boolean;

  @ApiPropertyOptional({ type: [MountDto] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(64)
  @ValidateNested({ each: true })
  @Type(() => MountDto)
  mounts?: MountDto[];

  @ApiPropertyOptional({ type: WorkloadDto, description: "network, published ports, limits, user, workdir, read-only root, tmpfs, hostname (as `capulator run`'s flags)" })
  @IsOptional()
  @ValidateNested()
  @Type(() => WorkloadDto)
  workload?: WorkloadDto;
}
