import { ChangeListener, ChangePublisher, type ChangeMessage, type Changes, type Logger, type LiveMetrics } from '@blog/shared';
import type { ResponseCache } from '../reads/response-cache';

/**
 * The API process's end of the change feed (shared/src/sync/feed.ts): it publishes what its INLINE
 * commands refreshed, and hands every message, from any process, to what depends on the
 * projections: the response cache, the sync tokens' waits and the subscriptions.
 *
 * What this process itself refreshed is applied to its own response cache before the command
 * answers (`committed`), so a read sent after a mutation's answer never meets an answer the
 * mutation changed, on this process; other processes learn it a few milliseconds later, from the
 * feed.
 */
export class LiveFeed {
  private readonly publisher: ChangePublisher;
  private readonly listener: ChangeListener;
  private readonly handlers = new Set<(message: ChangeMessage) => void>();
  private readonly lostHandlers = new Set<() => void>();
  private readonly listeningHandlers = new Set<() => void>();

  constructor(
    url: string,
    private readonly options: { logger: Logger; cache?: ResponseCache; metrics?: LiveMetrics },
  ) {
    this.publisher = new ChangePublisher(url, { applicationName: 'blog-api-feed', logger: options.logger });
    this.listener = new ChangeListener(url, {
      applicationName: 'blog-api-listen',
      logger: options.logger,
      onChange: (message) => this.received(message),
      onLost: () => {
        options.cache?.setLive(false);
        for (const h of this.lostHandlers) h();
      },
      onListening: () => {
        options.cache?.setLive(true);
        for (const h of this.listeningHandlers) h();
      },
    });
  }

  /** Starts listening; a first connection that fails is retried in the background (the cache stays off meanwhile). */
  async start(): Promise<void> {
    await this.listener.start().catch((err: unknown) => {
      this.options.logger.warn({ err }, 'the change feed is not connected yet: the response cache stays off until it is');
      this.listener.retryLater();
    });
  }

  get live(): boolean {
    return this.listener.live;
  }

  /** A transaction of this process refreshed these rows and committed. */
  committed(changes: Changes): void {
    this.options.cache?.changed(changes);
    this.publisher.publish(changes);
  }

  /** Every message of the feed, from now on. Returns the unsubscribe. */
  onChange(handler: (message: ChangeMessage) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** The feed was lost (messages may have been missed). Returns the unsubscribe. */
  onLost(handler: () => void): () => void {
    this.lostHandlers.add(handler);
    return () => this.lostHandlers.delete(handler);
  }

  /** The feed listens (again): what was missed while it did not can be read now. Returns the unsubscribe. */
  onListening(handler: () => void): () => void {
    this.listeningHandlers.add(handler);
    return () => this.listeningHandlers.delete(handler);
  }

  async close(): Promise<void> {
    await this.publisher.close();
    await this.listener.close();
  }

  private received(message: ChangeMessage): void {
    this.options.metrics?.feedDelay.observe(Math.max(0, Date.now() - message.at) / 1000);
    this.options.cache?.changed(message.changes);
    for (const h of this.handlers) h(message);
  }
}
