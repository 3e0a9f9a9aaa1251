import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsNotEmpty, IsOptional, IsString, Matches, MaxLength } from 'class-validator';

export class PullImageDto {
  @ApiProperty({ example: 'docker.io/library/busybox:1.36' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(1024)
  ref!: string;

  @ApiPropertyOptional({ example: 'linux/amd64' })
  @IsOptional()
  @Matches(/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/, { message: 'platform must be os/arch[/variant]' })
  platform?: string;
}

export class ImportImageQuery {
  @ApiPropertyOptional({ description: 'tag to give the imported image', example: 'myapp:1' })
  @IsOptional()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._\/:@-]{0,255}$/, { message: 'tag must be an image reference' })
  tag?: string;
}

export class ImageDto {
  @ApiProperty() digest!: string;
  @ApiProperty({ type: [String] }) refs!: string[];
  @ApiProperty({ type: 'object', properties: { os: { type: 'string' }, architecture: { type: 'string' }, variant: { type: 'string' } } })
  platform!: { os: string; architecture: string; variant?: string };
  @ApiProperty({ description: 'number of layers' }) layers!: number;
}

export class ImageListDto {
  @ApiProperty({ type: [ImageDto] }) images!: ImageDto[];
}
