import { Controller, Get, Header, HttpCode, Inject, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { Public } from '../auth/auth.decorators';
import { EventHub } from '../store/event-hub';
import { MetricsService } from '../metrics/metrics.service';
import { RunsService } from '../runs/runs.service';
import { EVENT_STORE, RUN_EXECUTOR } from '../store/tokens';
import type { EventStore } from '@capulator/events';
import type { RunExecutor } from '../runs/run-executor';
import { InProcessExecutor } from '../runs/in-process.executor';

@ApiExcludeController()
@Controller()
export class HealthController {
  constructor(
    private readonly hub: EventHub,
    private readonly metrics: MetricsService,
    private readonly runs: RunsService,
    @Inject(RUN_EXECUTOR) private readonly executor: RunExecutor,
    @Inject(EVENT_STORE) private readonly store: EventStore,
  ) {}

  /** The Kafka store's counters (broker up, outages, lag), when the log is on Kafka. */
  private get bus(): BusStats | undefined {
    return (this.store as { stats?: BusStats }).stats;
  }

  @Get('healthz')
  @Public()
  @HttpCode(200)
  healthz() {
    return { status: 'ok' };
  }

  @Get('readyz')
  @Public()
  readyz(@Res() res: Response) {
    const bus = this.bus;
    const ready = this.hub.isReady && (!bus || bus.brokerUp);
    const status = ready ? 'ready' : this.hub.isReady ? 'broker unreachable' : 'starting';
    res.status(ready ? 200 : 503).json({ status, position: this.hub.position, ...(bus ? { broker: bus.brokerUp ? 'up' : 'down', lag: bus.lag } : {}) });
  }

  /** Prometheus text format; needs a valid token (any scope). */
  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  metricsText(): string {
    const queue = this.executor instanceof InProcessExecutor ? this.executor.stats : undefined;
    const lag = (this.executor as { stats?: { commandLag?: number } }).stats?.commandLag;
    const commands = this.runs.orphans && lag !== undefined ? { commandLag: lag, orphaned: this.runs.orphans.recovered } : undefined;
    return this.metrics.render(this.runs.countsByStatus(), queue, this.bus, this.runs.refusals, commands);
  }
}

interface BusStats {
  brokerUp: boolean;
  outages: number;
  recoveries: number;
  lag: number;
  produceFailures: number;
  unavailable: number;
  witnessMismatches: number;
  partitions: number;
}
