import {
  COUNT_PREDICTIONS_SQL,
  deliveriesPerMinuteQuery,
  deliveryMinutesFromRows,
  eventDetailFromRow,
  eventFromRow,
  GET_EVENT_SQL,
  GET_PREDICTION_SQL,
  GET_REJECTION_SQL,
  listEventsQuery,
  listPredictionsQuery,
  listRejectionsQuery,
  predictionFromRow,
  rejectionFromRow,
  summaryFromRow,
  toNumber,
  toPage,
  type DeliveryMinuteRow,
  type EventDetailRow,
  type EventRow,
  type PredictionRow,
  type RejectionRow,
  type SqlQuery,
  type SummaryRow,
  transitionLogOver,
} from './statements.js';
import type { TransitionLog } from './transition-types.js';
import type {
  DeliveryMinute,
  EventDetailRecord,
  EventRecord,
  ObjectRecord,
  ObjectSummaryRecord,
  Page,
  PredictionQuery,
  ReadStore,
  RejectionRecord,
  SeqQuery,
} from './types.js';

/** The read queries of statements.ts, the same for every dialect; a dialect supplies only `queryRows`. */
export abstract class SqlReadStore implements ReadStore {
  /** The transitions log, read through the same queries. */
  readonly transitions: TransitionLog = transitionLogOver(async (doing, query) =>
    this.queryRows(doing, query),
  );

  /** Runs one query (`?` placeholders), errors mapped to store errors. */
  protected abstract queryRows<Row>(doing: string, query: SqlQuery): Row[] | Promise<Row[]>;

  async listPredictions(query: PredictionQuery): Promise<Page<ObjectSummaryRecord>> {
    const rows = await this.queryRows<SummaryRow>('listing predictions', listPredictionsQuery(query));
    return toPage(rows, query.limit, summaryFromRow);
  }

  async countPredictions(): Promise<number> {
    const [row] = await this.queryRows<{ n: unknown }>('counting predictions', {
      sql: COUNT_PREDICTIONS_SQL,
      params: [],
    });
    return toNumber(row?.n ?? 0);
  }

  async getPrediction(id: string): Promise<ObjectRecord | undefined> {
    const [row] = await this.queryRows<PredictionRow>('reading a prediction', {
      sql: GET_PREDICTION_SQL,
      params: [id],
    });
    return row === undefined ? undefined : predictionFromRow(row);
  }

  async listEvents(objectId: string, query: SeqQuery): Promise<Page<EventRecord>> {
    const rows = await this.queryRows<EventRow>('listing events', listEventsQuery(objectId, query));
    return toPage(rows, query.limit, eventFromRow);
  }

  async getEvent(key: string): Promise<EventDetailRecord | undefined> {
    const [row] = await this.queryRows<EventDetailRow>('reading an event', {
      sql: GET_EVENT_SQL,
      params: [key],
    });
    return row === undefined ? undefined : eventDetailFromRow(row);
  }

  async listRejections(query: SeqQuery): Promise<Page<RejectionRecord>> {
    const rows = await this.queryRows<RejectionRow>('listing rejections', listRejectionsQuery(query));
    return toPage(rows, query.limit, rejectionFromRow);
  }

  async getRejection(id: string): Promise<RejectionRecord | undefined> {
    const [row] = await this.queryRows<RejectionRow>('reading a rejection', {
      sql: GET_REJECTION_SQL,
      params: [id],
    });
    return row === undefined ? undefined : rejectionFromRow(row);
  }

  async deliveriesPerMinute(sinceMs: number, untilMs: number): Promise<DeliveryMinute[]> {
    const rows = await this.queryRows<DeliveryMinuteRow>(
      'counting deliveries per minute',
      deliveriesPerMinuteQuery(sinceMs, untilMs),
    );
    return deliveryMinutesFromRows(rows);
  }
}
