/**
 * Decodes an OTLP ExportTraceServiceRequest in protobuf into the shape of its OTLP/JSON form
 * (ids in hex, times as decimal strings, attributes as `{ key, value: { stringValue } }`), for
 * tests: a receiver standing in for Jaeger, and the comparison of our encoder with the SDK's.
 *
 * Fields at their default value are left out, whether or not the sender wrote them (proto3 makes
 * no difference), so that two encoders of the same spans decode to equal objects; except in
 * AnyValue, a oneof, where a value present at its default (an empty string, 0, false) is a value.
 */

type Json = Record<string, unknown>;

// Each message: field number -> [name, kind, repeated]. Kinds: a message name, or a scalar type.
type Kind = 'string' | 'bytes' | 'uint' | 'int64' | 'bool' | 'double' | 'fixed64' | 'fixed32';
type MessageName =
  | 'Request'
  | 'ResourceSpans'
  | 'Resource'
  | 'ScopeSpans'
  | 'Scope'
  | 'Span'
  | 'Event'
  | 'Link'
  | 'Status'
  | 'KeyValue'
  | 'AnyValue'
  | 'ArrayValue'
  | 'KeyValueList';
type Schema = Record<number, [name: string, kind: Kind | MessageName, repeated?: boolean]>;

const SCHEMAS: Record<MessageName, Schema> = {
  Request: { 1: ['resourceSpans', 'ResourceSpans', true] },
  ResourceSpans: { 1: ['resource', 'Resource'], 2: ['scopeSpans', 'ScopeSpans', true], 3: ['schemaUrl', 'string'] },
  Resource: { 1: ['attributes', 'KeyValue', true], 2: ['droppedAttributesCount', 'uint'] },
  ScopeSpans: { 1: ['scope', 'Scope'], 2: ['spans', 'Span', true], 3: ['schemaUrl', 'string'] },
  Scope: { 1: ['name', 'string'], 2: ['version', 'string'], 3: ['attributes', 'KeyValue', true], 4: ['droppedAttributesCount', 'uint'] },
  Span: {
    1: ['traceId', 'bytes'],
    2: ['spanId', 'bytes'],
    3: ['traceState', 'string'],
    4: ['parentSpanId', 'bytes'],
    5: ['name', 'string'],
    6: ['kind', 'uint'],
    7: ['startTimeUnixNano', 'fixed64'],
    8: ['endTimeUnixNano', 'fixed64'],
    9: ['attributes', 'KeyValue', true],
    10: ['droppedAttributesCount', 'uint'],
    11: ['events', 'Event', true],
    12: ['droppedEventsCount', 'uint'],
    13: ['links', 'Link', true],
    14: ['droppedLinksCount', 'uint'],
    15: ['status', 'Status'],
    16: ['flags', 'fixed32'],
  },
  Event: {
    1: ['timeUnixNano', 'fixed64'],
    2: ['name', 'string'],
    3: ['attributes', 'KeyValue', true],
    4: ['droppedAttributesCount', 'uint'],
  },
  Link: {
    1: ['traceId', 'bytes'],
    2: ['spanId', 'bytes'],
    3: ['traceState', 'string'],
    4: ['attributes', 'KeyValue', true],
    5: ['droppedAttributesCount', 'uint'],
    6: ['flags', 'fixed32'],
  },
  Status: { 2: ['message', 'string'], 3: ['code', 'uint'] },
  KeyValue: { 1: ['key', 'string'], 2: ['value', 'AnyValue'] },
  AnyValue: {
    1: ['stringValue', 'string'],
    2: ['boolValue', 'bool'],
    3: ['intValue', 'int64'],
    4: ['doubleValue', 'double'],
    5: ['arrayValue', 'ArrayValue'],
    6: ['kvlistValue', 'KeyValueList'],
    7: ['bytesValue', 'bytes'],
  },
  ArrayValue: { 1: ['values', 'AnyValue', true] },
  KeyValueList: { 1: ['values', 'KeyValue', true] },
};

function scalar(kind: Kind, f: WireField): unknown {
  const bytes = f.value as Uint8Array;
  switch (kind) {
    case 'string':
      return Buffer.from(bytes).toString('utf8');
    case 'bytes':
      return Buffer.from(bytes).toString('hex');
    case 'uint':
      return Number(f.value);
    case 'bool':
      return f.value !== 0 && f.value !== 0n;
    case 'int64':
      // Two's complement: a negative number arrives as a 64-bit unsigned varint.
      return BigInt.asIntN(64, BigInt(f.value as number | bigint)).toString();
    case 'double':
      return Buffer.from(bytes).readDoubleLE(0);
    case 'fixed64':
      return Buffer.from(bytes).readBigUInt64LE(0).toString();
    case 'fixed32':
      return Buffer.from(bytes).readUInt32LE(0);
  }
}

const isDefault = (v: unknown) => v === '' || v === 0 || v === '0' || v === false;

function decode(name: MessageName, bytes: Uint8Array): Json {
  const schema: Schema = SCHEMAS[name];
  const out: Json = {};
  for (const f of readFields(bytes)) {
    const entry = schema[f.field];
    if (!entry) continue;
    const [key, kind, repeated] = entry;
    const value = kind in SCHEMAS ? decode(kind as MessageName, f.value as Uint8Array) : scalar(kind as Kind, f);
    if (repeated) ((out[key] ??= []) as unknown[]).push(value);
    else out[key] = value;
  }
  // AnyValue's fields are a oneof, which has presence: an empty string is a value, kept.
  if (name === 'AnyValue') return out;
  for (const [key, value] of Object.entries(out)) {
    const empty = typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
    if (isDefault(value) || empty) delete out[key];
  }
  return out;
}

/** The request as OTLP/JSON would carry it (see above for defaults). */
export function decodeTraceRequest(bytes: Uint8Array): Json {
  return decode('Request', bytes);
}

/** An attribute value as the JSON form's single `*Value` entry holds it (arrays and lists unwrapped). */
export function attributeValue(value: Json | undefined): unknown {
  if (!value) return undefined;
  if ('arrayValue' in value) return (((value.arrayValue as Json).values as Json[]) ?? []).map(attributeValue);
  if ('kvlistValue' in value) {
    return Object.fromEntries(
      (((value.kvlistValue as Json).values as Json[]) ?? []).map((kv) => [kv.key, attributeValue(kv.value as Json)]),
    );
  }
  return Object.values(value)[0];
}

// The protobuf wire format, as far as reading OTLP requests needs it.
const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;
const FIXED32 = 5;

export interface WireField {
  field: number;
  wire: number;
  /** VARINT: the value (a bigint beyond 49 bits); FIXED64 / FIXED32: the raw bytes; LEN: the contents. */
  value: number | bigint | Uint8Array;
}

/** The fields of one protobuf message, in order (no schema: embedded messages stay bytes). */
export function readFields(bytes: Uint8Array): WireField[] {
  const fields: WireField[] = [];
  let pos = 0;
  const byte = (): number => {
    if (pos >= bytes.length) throw new Error('truncated protobuf field');
    return bytes[pos++]!;
  };
  const varint = (): number | bigint => {
    let result = 0;
    for (let i = 0; i < 7; i += 1) {
      const b = byte();
      result += (b & 0x7f) * 2 ** (7 * i);
      if (b < 0x80) return result;
    }
    // Past 49 bits a double is no longer exact: finish in BigInt.
    let big = BigInt(result);
    for (let shift = 49n; ; shift += 7n) {
      const b = byte();
      big |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return big;
    }
  };
  const length = (): number => Number(varint());
  const take = (n: number): Uint8Array => {
    if (pos + n > bytes.length) throw new Error('truncated protobuf field');
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  while (pos < bytes.length) {
    const key = length();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === VARINT) fields.push({ field, wire, value: varint() });
    else if (wire === FIXED64) fields.push({ field, wire, value: take(8) });
    else if (wire === LEN) fields.push({ field, wire, value: take(length()) });
    else if (wire === FIXED32) fields.push({ field, wire, value: take(4) });
    else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
  return fields;
}
