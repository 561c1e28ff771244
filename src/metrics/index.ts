export {
  createMetrics,
  DELIVERY_OUTCOMES,
  InletMetrics,
  STORE_OPERATIONS,
  type CommitQueueState,
  type DeliveryCode,
  type DeliveryOutcome,
  type StoreOperation,
} from './metrics.js';
