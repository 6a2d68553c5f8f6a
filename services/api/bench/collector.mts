/**
 * A stand-in OTLP/HTTP collector for the tracing benchmark (run.mts --tracing), in a process of its
 * own: it accepts every export and counts what it received, spans included (in protobuf, the
 * services' default; in JSON, the `"spanId"` keys, which parentSpanId does not match), so that the
 * benchmark can tell that every span made was delivered, none dropped.
 *
 * Its own process, not the benchmark's: the benchmark's sequential client measures the
 * one-connection figures, and a collector on the same event loop delayed that client whenever an
 * export arrived, which charged the traced processes (and only them) for the collector's work.
 *
 * Started with fork(): it sends `{ port }` once listening, and answers a `'counts'` message with
 * `{ exports, bytes, spans }`.
 */
import http from 'node:http';
import type net from 'node:net';
import protobuf from 'protobufjs/minimal.js';

export interface CollectorCounts {
  exports: number;
  bytes: number;
  spans: number;
}

/** The length-delimited fields numbered `field` of one protobuf message (others skipped), with protobufjs's reader. */
function embedded(bytes: Uint8Array, field: number): Uint8Array[] {
  const reader = protobuf.Reader.create(bytes);
  const out: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag >>> 3 === field && (tag & 7) === 2) out.push(reader.bytes());
    else reader.skipType(tag & 7);
  }
  return out;
}

/** Spans in an OTLP protobuf ExportTraceServiceRequest: resource_spans (1) > scope_spans (2) > spans (2), not decoded further. */
function protobufSpans(body: Uint8Array): number {
  let spans = 0;
  for (const rs of embedded(body, 1)) for (const ss of embedded(rs, 2)) spans += embedded(ss, 2).length;
  return spans;
}

const counts: CollectorCounts = { exports: 0, bytes: 0, spans: 0 };
const key = Buffer.from('"spanId"');
const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const protobuf = req.headers['content-type'] === 'application/x-protobuf';
    counts.bytes += body.length;
    if (protobuf) counts.spans += protobufSpans(body);
    else for (let at = body.indexOf(key); at !== -1; at = body.indexOf(key, at + key.length)) counts.spans += 1;
    counts.exports += 1;
    // A protobuf export is answered in protobuf: an empty ExportTraceServiceResponse.
    res.writeHead(200, { 'content-type': protobuf ? 'application/x-protobuf' : 'application/json' });
    res.end(protobuf ? '' : '{}');
  });
});
server.listen(0, '127.0.0.1', () => {
  process.send!({ port: (server.address() as net.AddressInfo).port });
});
process.on('message', (message) => {
  if (message === 'counts') process.send!(counts);
});
// The benchmark's end (or its death) ends the collector.
process.on('disconnect', () => process.exit(0));
