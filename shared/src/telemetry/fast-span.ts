import {
  context,
  diag,
  INVALID_SPAN_CONTEXT,
  SamplingDecision,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type AttributeValue,
  type Context,
  type Exception,
  type HrTime,
  type Link,
  type Span,
  type SpanAttributes,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  type TimeInput,
  type Tracer,
} from '@opentelemetry/api';
import {
  AddAttributeDecision,
  cleanAttributes,
  hrTimeToMilliseconds,
  isTimeInput,
  isTracingSuppressed,
  maybeAddAttribute,
  millisToHrTime,
  timeInputToHrTime,
} from '@opentelemetry/core';
import type { ReadableSpan, Sampler, SpanProcessor } from '@opentelemetry/sdk-trace';

/**
 * The tracer of our own hot-path spans (the HTTP server span, the compiled read's GraphQL span, our
 * SQL statements' spans): the SDK's sampler, span processor, id generator, limits and resource, with
 * a span of our own instead of the SDK's.
 *
 * Why: on a cheap read, making the spans is most of what tracing costs (docs/observability.md's "The cost of
 * tracing": on GetUser, spans made but never exported already cost two thirds of it). The SDK's span
 * does more per span than these need: it runs every attribute of `startSpan` through two cleaning
 * passes, converts each time to [seconds, nanoseconds] as it goes, keeps span metrics and checks for
 * inconsistent clocks at the end. This span reads the same clocks (the wall clock at the start, the
 * monotonic one after it), keeps times as numbers (converted only when an exporter reads them), and adds attributes with
 * the SDK's own per-attribute rule (`maybeAddAttribute`: the same limits, truncation and validity).
 * It is what the processors and exporters get: the SDK's ReadableSpan, field for field.
 *
 * Everything else stays the SDK's: sampling decisions (parent-based or ratio, from
 * OTEL_TRACES_SAMPLER), ids, the batch processor and the exporter, span limits
 * (OTEL_SPAN_*_LIMIT, OTEL_ATTRIBUTE_*), the resource. Those are read from the SDK's tracer of the
 * same name; should a release of the SDK name them otherwise, `fastTracer` falls back to the SDK's
 * tracer as it is (correct, only slower), and `fast-span.unit.spec.ts` fails, so an upgrade cannot
 * lose the fast path unnoticed. Spans with links or an explicit start time (none of ours) are left
 * to the SDK's tracer too.
 */

/** What this file reads from the SDK's Tracer (its constructor's options, kept as fields). */
interface SdkTracerParts {
  _sampler: Sampler;
  _spanProcessor: SpanProcessor;
  _idGenerator: { generateTraceId(): string; generateSpanId(): string };
  _spanLimits: Required<Pick<SpanLimits, 'attributeCountLimit' | 'attributeValueLengthLimit'>> & SpanLimits;
  _resource: ReadableSpan['resource'];
  instrumentationScope: ReadableSpan['instrumentationScope'];
}

interface SpanLimits {
  attributeCountLimit?: number;
  attributeValueLengthLimit?: number;
  eventCountLimit?: number;
  linkCountLimit?: number;
  attributePerEventCountLimit?: number;
  attributePerLinkCountLimit?: number;
}

function sdkParts(tracer: unknown): SdkTracerParts | undefined {
  const t = tracer as Partial<SdkTracerParts> | undefined;
  if (
    typeof t?._sampler?.shouldSample === 'function' &&
    typeof t._spanProcessor?.onEnd === 'function' &&
    typeof t._spanProcessor.onStart === 'function' &&
    typeof t._idGenerator?.generateSpanId === 'function' &&
    typeof t._idGenerator.generateTraceId === 'function' &&
    t._spanLimits &&
    t._resource &&
    t.instrumentationScope
  ) {
    return t as SdkTracerParts;
  }
  return undefined;
}

class FastSpan implements Span, ReadableSpan {
  readonly links: Link[] = [];
  readonly events: ReadableSpan['events'] = [];
  readonly attributes: Attributes;
  status: SpanStatus = { code: SpanStatusCode.UNSET };
  droppedAttributesCount = 0;
  droppedEventsCount = 0;
  droppedLinksCount = 0;
  private attributesCount = 0;
  /** performance.now() at the start. */
  private readonly started: number;
  /** Date.now() at the start. */
  private readonly startMs: number;
  private endMs = -1;

  constructor(
    private readonly parts: SdkTracerParts,
    private readonly context_: SpanContext,
    readonly parentSpanContext: SpanContext | undefined,
    public name: string,
    readonly kind: SpanKind,
    attributes: SpanAttributes | undefined,
    parentContext: Context,
  ) {
    // As the SDK's span: the wall clock at the start, the monotonic clock for what follows.
    this.startMs = Date.now();
    this.started = performance.now();
    this.attributes = {};
    if (attributes) this.setAttributes(attributes);
    parts._spanProcessor.onStart(this, parentContext);
  }

  get resource(): ReadableSpan['resource'] {
    return this.parts._resource;
  }

  get instrumentationScope(): ReadableSpan['instrumentationScope'] {
    return this.parts.instrumentationScope;
  }

  get startTime(): HrTime {
    return millisToHrTime(this.startMs);
  }

  get endTime(): HrTime {
    return this.endMs < 0 ? [0, 0] : millisToHrTime(this.endMs);
  }

  get duration(): HrTime {
    return this.endMs < 0 ? [-1, -1] : millisToHrTime(this.endMs - this.startMs);
  }

  get ended(): boolean {
    return this.endMs >= 0;
  }

  spanContext(): SpanContext {
    return this.context_;
  }

  isRecording(): boolean {
    return this.endMs < 0;
  }

  setAttribute(key: string, value: AttributeValue | undefined): this {
    if (this.endMs >= 0) return this;
    const decision = maybeAddAttribute({
      key,
      value,
      attributes: this.attributes,
      limits: this.parts._spanLimits,
      currentAttributesCount: this.attributesCount,
    });
    if (decision === AddAttributeDecision.ADD_NEW) this.attributesCount += 1;
    else if (decision === AddAttributeDecision.DROP_LIMIT_REACHED && ++this.droppedAttributesCount === 1) diag.warn('Dropping extra attributes.');
    return this;
  }

  setAttributes(attributes: SpanAttributes): this {
    for (const key in attributes) if (Object.prototype.hasOwnProperty.call(attributes, key)) this.setAttribute(key, attributes[key]);
    return this;
  }

  addEvent(name: string, attributesOrTime?: SpanAttributes | TimeInput, time?: TimeInput): this {
    if (this.endMs >= 0) return this;
    const attributes = isTimeInput(attributesOrTime) ? undefined : attributesOrTime;
    const at = isTimeInput(attributesOrTime) ? attributesOrTime : time;
    this.droppedEventsCount += keep(this.events, this.parts._spanLimits.eventCountLimit, () => {
      const cleaned = this.clean(attributes, this.parts._spanLimits.attributePerEventCountLimit);
      return { name, time: at === undefined ? millisToHrTime(this.now()) : timeInputToHrTime(at), ...cleaned };
    });
    return this;
  }

  addLink(link: Link): this {
    if (this.endMs >= 0) return this;
    this.droppedLinksCount += keep(this.links, this.parts._spanLimits.linkCountLimit, () => ({
      context: link.context,
      ...this.clean(link.attributes, this.parts._spanLimits.attributePerLinkCountLimit),
    }));
    return this;
  }

  /** An event's or link's attributes, within the span limits for them. */
  private clean(attributes: Attributes | undefined, countLimit: number | undefined): { attributes: Attributes; droppedAttributesCount: number } {
    const cleaned = cleanAttributes(attributes, {
      attributeCountLimit: countLimit ?? Infinity,
      attributeValueLengthLimit: this.parts._spanLimits.attributeValueLengthLimit,
    });
    return { attributes: (cleaned.attributes ?? {}) as Attributes, droppedAttributesCount: cleaned.droppedAttributesCount ?? 0 };
  }

  addLinks(links: Link[]): this {
    for (const link of links) this.addLink(link);
    return this;
  }

  setStatus(status: SpanStatus): this {
    if (this.endMs >= 0 || status.code === SpanStatusCode.UNSET || this.status.code === SpanStatusCode.OK) return this;
    this.status = status.code === SpanStatusCode.ERROR && typeof status.message === 'string' ? { code: status.code, message: status.message } : { code: status.code };
    return this;
  }

  updateName(name: string): this {
    if (this.endMs < 0) this.name = name;
    return this;
  }

  recordException(exception: Exception, time?: TimeInput): void {
    const attributes: SpanAttributes = {};
    if (typeof exception === 'string') attributes['exception.message'] = exception;
    else if (exception) {
      if (exception.code) attributes['exception.type'] = exception.code.toString();
      else if (exception.name) attributes['exception.type'] = exception.name;
      if (exception.message) attributes['exception.message'] = exception.message;
      if (exception.stack) attributes['exception.stacktrace'] = exception.stack;
    }
    if (attributes['exception.type'] || attributes['exception.message']) this.addEvent('exception', attributes, time);
  }

  end(endTime?: TimeInput): void {
    if (this.endMs >= 0) {
      diag.error(`${this.name} ${this.context_.traceId}-${this.context_.spanId} - You can only call end() on a span once.`);
      return;
    }
    const end = endTime === undefined ? this.now() : hrTimeToMilliseconds(timeInputToHrTime(endTime));
    // As the SDK's span: processors that watch a span's last moment see it still open.
    (this.parts._spanProcessor as { onEnding?: (span: Span) => void }).onEnding?.(this);
    this.endMs = end < this.startMs ? this.startMs : end;
    this.parts._spanProcessor.onEnd(this);
  }

  private now(): number {
    return this.startMs + (performance.now() - this.started);
  }
}

/**
 * Appends what `make` makes to a list kept within `limit`, dropping the oldest entry when it is full
 * (as the SDK's span does with events and links); nothing when the limit is 0. Returns how many were
 * dropped (0 or 1).
 */
function keep<T>(list: T[], limit: number | undefined, make: () => T): number {
  if (limit === 0) return 1;
  let dropped = 0;
  if (limit !== undefined && list.length >= limit) {
    list.shift();
    dropped = 1;
  }
  list.push(make());
  return dropped;
}

class FastTracer implements Tracer {
  private parts: SdkTracerParts | null | undefined;

  constructor(
    private readonly name: string,
    private readonly fallback: Tracer,
  ) {}

  /** The SDK's parts, looked up once per start of tracing (startTracing resets every FastTracer). */
  private sdk(): SdkTracerParts | null {
    if (this.parts === undefined) {
      const provider = trace.getTracerProvider() as { getDelegate?: () => { getTracer(name: string): unknown } };
      const delegate = provider.getDelegate ? provider.getDelegate() : provider;
      this.parts = sdkParts((delegate as { getTracer(name: string): unknown }).getTracer(this.name)) ?? null;
    }
    return this.parts;
  }

  reset(): void {
    this.parts = undefined;
  }

  /** Whether spans are made here (true) or left to the SDK's tracer (false: tracing off, or an SDK whose parts are not found). */
  get fast(): boolean {
    return this.sdk() !== null;
  }

  startSpan(name: string, options: SpanOptions = {}, parentContext: Context = context.active()): Span {
    const parts = this.sdk();
    if (!parts || options.links?.length || options.startTime !== undefined) return this.fallback.startSpan(name, options, parentContext);
    let ctx = parentContext;
    if (options.root) ctx = trace.deleteSpan(ctx);
    if (isTracingSuppressed(ctx)) return trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
    const parent = trace.getSpanContext(ctx);
    const validParent = parent && trace.isSpanContextValid(parent) ? parent : undefined;
    const traceId = validParent ? validParent.traceId : parts._idGenerator.generateTraceId();
    const spanId = parts._idGenerator.generateSpanId();
    const kind = options.kind ?? SpanKind.INTERNAL;
    const attributes = options.attributes ?? {};
    const sampling = parts._sampler.shouldSample(ctx, traceId, name, kind, attributes, []);
    const traceState = sampling.traceState ?? validParent?.traceState;
    const spanContext: SpanContext = {
      traceId,
      spanId,
      traceFlags: sampling.decision === SamplingDecision.RECORD_AND_SAMPLED ? TraceFlags.SAMPLED : TraceFlags.NONE,
      ...(traceState ? { traceState } : {}),
    };
    if (sampling.decision === SamplingDecision.NOT_RECORD) return trace.wrapSpanContext(spanContext);
    const all = sampling.attributes ? { ...attributes, ...sampling.attributes } : attributes;
    return new FastSpan(parts, spanContext, validParent, name, kind, all, ctx);
  }

  startActiveSpan<F extends (span: Span) => unknown>(name: string, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, options: SpanOptions, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, options: SpanOptions, ctx: Context, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, a: F | SpanOptions, b?: F | Context, c?: F): ReturnType<F> {
    const fn = (typeof a === 'function' ? a : typeof b === 'function' ? b : c) as F;
    const options = typeof a === 'function' ? {} : a;
    const parentContext = typeof b === 'object' && b !== null ? b : context.active();
    const span = this.startSpan(name, options, parentContext);
    return context.with(trace.setSpan(parentContext, span), fn as (s: Span) => ReturnType<F>, undefined, span);
  }
}

const tracers = new Map<string, FastTracer>();

/**
 * The tracer for one of our hot-path scopes: spans as cheap as they can be made while the SDK keeps
 * sampling, limits, processing and export (see above). With tracing off it is the API's tracer.
 */
export function fastTracer(name: string): Tracer & { readonly fast: boolean } {
  let tracer = tracers.get(name);
  if (!tracer) tracers.set(name, (tracer = new FastTracer(name, trace.getTracer(name))));
  return tracer;
}

/** Called when tracing starts or stops: each fast tracer looks the SDK's parts up again. */
export function resetFastTracers(): void {
  for (const tracer of tracers.values()) tracer.reset();
}
