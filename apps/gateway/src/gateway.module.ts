import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import type { Anchorer, EventStore } from '@capulator/events';
import { AuditController } from './audit/audit.controller';
import { AuditService } from './audit/audit.service';
import { AuthGuard } from './auth/auth.guard';
import { TokenStore } from './auth/token-store';
import { HttpExceptionFilter } from './errors/http-exception.filter';
import type { GatewayOptions } from './gateway.options';
import { IntegrityController } from './integrity/integrity.controller';
import { HealthController } from './health/health.controller';
import type { ImageCatalog } from './images/image-catalog';
import { ImagesController } from './images/images.controller';
import { RegistryController } from './images/registry.controller';
import { MetricsService } from './metrics/metrics.service';
import { PoliciesController } from './policies/policies.controller';
import { PoliciesService } from './policies/policies.service';
import type { PolicyEngine } from './policies/policy-engine';
import type { Replayer } from './replays/replayer';
import { ReplaysController } from './replays/replays.controller';
import type { RunExecutor } from './runs/run-executor';
import { RunsController } from './runs/runs.controller';
import { RunsService } from './runs/runs.service';
import { RequestRunHandler, RunEndedHandler, RunLifecycleBridge } from './runs/run.commands';
import { capulatorCqrsModule } from '../../../libs/events/src/nest/cqrs';
import { EventHub } from './store/event-hub';
import { EVENT_STORE, GATEWAY_OPTIONS, IMAGE_CATALOG, POLICY_ENGINE, REPLAYER, RUN_ANCHORER, RUN_EXECUTOR } from './store/tokens';

/** The adapters the module is wired with, built by bootstrap (gateway.app.ts). */
export interface GatewayAdapters {
  options: GatewayOptions;
  store: EventStore;
  hub: EventHub;
  executor: RunExecutor;
  engine: PolicyEngine;
  images: ImageCatalog;
  replayer: Replayer;
  tokens: TokenStore;
  /** anchors the chain head when a run ends (SQLite store only; null on Kafka) */
  anchorer?: Anchorer | null;
}

@Module({})
export class GatewayModule {
  static forRoot(a: GatewayAdapters): DynamicModule {
    return {
      module: GatewayModule,
      // @nestjs/cqrs routing events by their stable `type` (libs/events/src/nest/cqrs.ts)
      imports: [capulatorCqrsModule()],
      controllers: [HealthController, RunsController, PoliciesController, AuditController, ReplaysController, ImagesController, IntegrityController, RegistryController],
      providers: [
        { provide: GATEWAY_OPTIONS, useValue: a.options },
        { provide: EVENT_STORE, useValue: a.store },
        { provide: EventHub, useValue: a.hub },
        { provide: RUN_EXECUTOR, useValue: a.executor },
        { provide: POLICY_ENGINE, useValue: a.engine },
        { provide: IMAGE_CATALOG, useValue: a.images },
        { provide: REPLAYER, useValue: a.replayer },
        { provide: TokenStore, useValue: a.tokens },
        { provide: RUN_ANCHORER, useValue: a.anchorer ?? null },
        MetricsService,
        PoliciesService,
        RunsService,
        RequestRunHandler,
        RunLifecycleBridge,
        RunEndedHandler,
        AuditService,
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_FILTER, useClass: HttpExceptionFilter },
      ],
    };
  }
}
