import { Module } from '@nestjs/common';
import { homePaths } from '@capulator/host';
import { ImageStore } from './image-store';
import { limitsFromEnv } from './image-store';

/**
 * Nest wrapper: provides the ImageStore ($CAPULATOR_HOME/images, limits from the environment).
 * Kept out of the barrel (index.ts) so the CLI never loads Nest for images.
 */
@Module({
  providers: [{ provide: ImageStore, useFactory: () => new ImageStore(homePaths().images, { limits: limitsFromEnv(process.env) }) }],
  exports: [ImageStore],
})
export class ImagesModule {}
