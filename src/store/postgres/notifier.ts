/**
 * LISTEN/NOTIFY for the PostgreSQL store: wakes every node when tasks become schedulable.
 *
 * Statements that make tasks schedulable call pg_notify(channel, earliest scheduled_at) in their
 * own transaction, so a notification is delivered only once the change has committed. Each store
 * keeps one connection of its own, outside the pool, that LISTENs on the schema's channel.
 *
 * States of that connection:
 *   connecting ──LISTEN done──▶ listening ──error, end, or a failed heartbeat──▶ waiting
 *        ▲                                                                         │
 *        └──────────────── backoff (100 ms, doubling to 2 s) ◀─────────────────────┘
 * Notifications sent while no connection listened are lost; on reconnecting, listeners are called
 * with -Infinity ("anything may be due"), so nodes claim at once instead of at their next poll.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { quoteIdentifier } from './connection-config.ts';

export type TasksAvailableListener = (earliestDueAt: number) => void;

export interface NotifierOptions {
  /** Connection settings for the listening connection (not from the pool). */
  client: pg.ClientConfig;
  channel: string;
  /** Sends a notification on the channel through another connection (the pool). */
  notify: (payload: string) => Promise<unknown>;
}

const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 2_000;
/** How often the listening connection is checked: a silent network would otherwise go unnoticed. */
const HEARTBEAT_MS = 5_000;
const PROBE_PREFIX = 'probe:';

export class Notifier {
  private readonly options: NotifierOptions;
  private readonly listeners = new Set<TasksAvailableListener>();
  private readonly probes = new Map<string, () => void>();
  private client: pg.Client | null = null;
  private closed = false;
  private backoffMs = BACKOFF_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;

  constructor(options: NotifierOptions) {
    this.options = options;
  }

  /** Connects and LISTENs; rejects if that fails (the store then refuses to open). */
  async start(): Promise<void> {
    await this.connect();
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), HEARTBEAT_MS);
    this.heartbeatTimer.unref();
  }

  /**
   * Sends a notification through the pool and waits for it on the listening connection. Behind a
   * pooler in transaction mode (PgBouncer's default) LISTEN registers on a server connection that
   * is handed to someone else: notifications never arrive, and the store must not pretend.
   */
  async verify(timeoutMs: number): Promise<void> {
    const id = randomUUID();
    const arrived = new Promise<void>((resolve) => this.probes.set(id, resolve));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    try {
      await this.options.notify(`${PROBE_PREFIX}${id}`);
      if ((await Promise.race([arrived, timedOut])) === 'timeout') {
        throw new Error(
          `LISTEN/NOTIFY is unavailable through this connection: a notification sent on channel ` +
            `"${this.options.channel}" did not arrive within ${timeoutMs} ms (a pooler in transaction mode, ` +
            'such as PgBouncer with pool_mode=transaction, does not carry notifications). Point PUNCTUAL_STORE ' +
            'at the database directly, or at a pooler in session mode.',
        );
      }
    } finally {
      clearTimeout(timer);
      this.probes.delete(id);
    }
  }

  /** Calls `listener` with the earliest due time of each batch of tasks made schedulable. */
  subscribe(listener: TasksAvailableListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** True while a connection is LISTENing. */
  get listening(): boolean {
    return this.client !== null;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.listeners.clear();
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    const client = new pg.Client(this.options.client);
    // Until the LISTEN is done, failures surface through connect()/query(); after, they arrive here.
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    client.on('notification', (message) => this.deliver(message.payload ?? ''));
    try {
      await client.connect();
      await client.query(`LISTEN ${quoteIdentifier(this.options.channel)}`);
    } catch (error) {
      client.removeAllListeners('end');
      client.on('error', () => {});
      await client.end().catch(() => {});
      throw error;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
  }

  private deliver(payload: string): void {
    if (payload.startsWith(PROBE_PREFIX)) {
      this.probes.get(payload.slice(PROBE_PREFIX.length))?.();
      return;
    }
    const earliest = Number(payload);
    if (payload !== '' && Number.isFinite(earliest)) this.emit(earliest);
  }

  private emit(earliestDueAt: number): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(earliestDueAt);
      } catch {
        // A listener's failure is its own: the others still hear, and the connection stays.
      }
    }
  }

  private lost(client: pg.Client): void {
    if (this.client !== client) return; // an old connection, already replaced or closed
    this.client = null;
    client.end().catch(() => {});
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(async () => {
      this.reconnectTimer = null;
      try {
        await this.connect();
        this.backoffMs = BACKOFF_MIN_MS;
        if (!this.closed) this.emit(Number.NEGATIVE_INFINITY);
      } catch {
        this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
        this.scheduleReconnect();
      }
    }, this.backoffMs);
    this.reconnectTimer.unref();
  }

  private async heartbeat(): Promise<void> {
    const client = this.client;
    if (!client) return;
    try {
      await client.query('SELECT 1');
    } catch {
      this.lost(client);
    }
  }
}
