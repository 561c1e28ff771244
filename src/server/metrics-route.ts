import type { FastifyInstance } from 'fastify';
import type { InletMetrics } from '../metrics/metrics.js';
import { createAdminAccessHook, type AdminAccessOptions } from './admin-access.js';

/** `GET /metrics` (Prometheus text format), behind the same access rule as `/api`. */
export function registerMetricsRoute(
  app: FastifyInstance,
  metrics: InletMetrics,
  access: AdminAccessOptions,
): void {
  void app.register(async (scope) => {
    scope.addHook('onRequest', createAdminAccessHook(access));
    scope.get('/metrics', async (_request, reply) => {
      const text = await metrics.text();
      return reply.header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
    });
  });
}
