import net from 'node:net';

/**
 * A TCP proxy in front of PostgreSQL that counts, exactly, the SQL statements a system runs.
 *
 * It reads the PostgreSQL wire protocol in both directions without changing a byte:
 * - server to client: every CommandComplete ('C') is one statement that ran to completion, whatever
 *   the protocol that sent it (simple query 'Q', which may hold several statements, or extended
 *   Parse/Bind/Execute); ErrorResponse ('E') and EmptyQueryResponse ('I') are counted apart.
 *   BEGIN and COMMIT are statements too and are counted.
 * - client to server: simple queries ('Q') and Executes ('E'), i.e. round trips that run SQL; and,
 *   when capturing, the text and parameters of each executed statement (from Parse and Bind), so
 *   the bare server can replay exactly the statement our API ran.
 *
 * Counts are attributed to the connection's application_name (from the startup message), so
 * background work (a queue library's timers) can be told apart from request work.
 *
 * The proxy is only in the path while a system is validated and its statements counted; load is
 * measured with the system connected to PostgreSQL directly.
 */
export interface StatementCounts {
  /** CommandComplete messages: statements that completed. */
  statements: number;
  /** ErrorResponse messages. */
  errors: number;
  /** Simple-protocol queries plus extended-protocol Executes sent by clients. */
  roundTrips: number;
  /** Statements by the connection's application_name. */
  byApplication: Record<string, number>;
}

export interface CapturedStatement {
  application: string;
  text: string;
  /** Text-format parameter values (null for SQL NULL); undefined when a parameter was binary. */
  params: (string | null)[] | undefined;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
/** Captured statements kept at most (the capture is meant for a few requests). */
const MAX_CAPTURED = 10_000;

export class PgCountingProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private counts: StatementCounts = emptyCounts();
  private capturing = false;
  private captured: CapturedStatement[] = [];
  port = 0;

  constructor(
    private readonly upstreamHost: string,
    private readonly upstreamPort: number,
  ) {}

  async listen(): Promise<number> {
    const server = net.createServer((client) => this.connection(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Zeroes the counters; with `capture`, also records the statements executed from now on. */
  reset(options: { capture?: boolean } = {}): void {
    this.counts = emptyCounts();
    this.captured = [];
    this.capturing = options.capture ?? false;
  }

  snapshot(): StatementCounts {
    return { ...this.counts, byApplication: { ...this.counts.byApplication } };
  }

  capturedStatements(): CapturedStatement[] {
    return [...this.captured];
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private connection(client: net.Socket): void {
    const upstream = net.connect(this.upstreamPort, this.upstreamHost);
    this.sockets.add(client);
    this.sockets.add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const state: ConnectionState = {
      application: '',
      startup: true,
      statements: new Map(),
      portals: new Map(),
    };
    const fromClient = new Framer((type, body) => this.clientMessage(state, type, body));
    const fromServer = new Framer((type) => this.serverMessage(state, type));
    client.on('data', (chunk: Buffer) => {
      if (state.startup) {
        if (state.pendingStartup) chunk = Buffer.concat([state.pendingStartup, chunk]);
        const consumed = this.startup(state, chunk, client, upstream);
        if (state.startup) {
          // A startup message split across chunks: wait for the rest.
          state.pendingStartup = consumed < chunk.length ? Buffer.from(chunk.subarray(consumed)) : undefined;
          return;
        }
        state.pendingStartup = undefined;
        if (consumed === chunk.length) return;
        chunk = chunk.subarray(consumed);
      }
      upstream.write(chunk);
      fromClient.push(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      client.write(chunk);
      fromServer.push(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  }

  /**
   * Handles the untyped messages a connection starts with. Returns how many bytes of `chunk` were
   * consumed (answered here or forwarded); the rest are typed messages.
   */
  private startup(state: ConnectionState, chunk: Buffer, client: net.Socket, upstream: net.Socket): number {
    let offset = 0;
    while (state.startup && chunk.length - offset >= 8) {
      const length = chunk.readInt32BE(offset);
      if (chunk.length - offset < length) break;
      const code = chunk.readInt32BE(offset + 4);
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
        // No encryption through the proxy: answer "not supported", the client goes on in clear.
        client.write('N');
      } else {
        if (code !== CANCEL_REQUEST)
          state.application = startupParameter(chunk.subarray(offset + 8, offset + length), 'application_name') ?? '';
        upstream.write(chunk.subarray(offset, offset + length));
        state.startup = false;
      }
      offset += length;
    }
    return offset;
  }

  private clientMessage(state: ConnectionState, type: number, body: Buffer): void {
    switch (type) {
      case 0x51 /* Q */: {
        this.counts.roundTrips += 1;
        if (this.capturing) this.capture({ application: state.application, text: cString(body, 0).value, params: [] });
        break;
      }
      case 0x50 /* P */: {
        const name = cString(body, 0);
        const text = cString(body, name.next);
        state.statements.set(name.value, text.value);
        break;
      }
      case 0x42 /* B */: {
        const portal = cString(body, 0);
        const statement = cString(body, portal.next);
        state.portals.set(portal.value, { text: state.statements.get(statement.value) ?? '', params: bindParams(body, statement.next) });
        break;
      }
      case 0x45 /* E */: {
        this.counts.roundTrips += 1;
        if (this.capturing) {
          const portal = state.portals.get(cString(body, 0).value);
          if (portal) this.capture({ application: state.application, text: portal.text, params: portal.params });
        }
        break;
      }
      case 0x43 /* C: Close */: {
        if (body[0] === 0x53 /* S */) state.statements.delete(cString(body, 1).value);
        break;
      }
    }
  }

  private serverMessage(state: ConnectionState, type: number): void {
    if (type === 0x43 /* C: CommandComplete */) {
      this.counts.statements += 1;
      this.counts.byApplication[state.application] = (this.counts.byApplication[state.application] ?? 0) + 1;
    } else if (type === 0x45 /* E: ErrorResponse */) {
      this.counts.errors += 1;
    }
  }

  private capture(statement: CapturedStatement): void {
    if (this.captured.length < MAX_CAPTURED) this.captured.push(statement);
  }
}

interface ConnectionState {
  application: string;
  /** Still in the untyped start of the connection (SSL negotiation, startup message). */
  startup: boolean;
  pendingStartup?: Buffer;
  /** Prepared statements of this connection: name ('' = unnamed) to SQL text. */
  statements: Map<string, string>;
  /** Bound portals: name to statement text and parameters. */
  portals: Map<string, { text: string; params: (string | null)[] | undefined }>;
}

function emptyCounts(): StatementCounts {
  return { statements: 0, errors: 0, roundTrips: 0, byApplication: {} };
}

/**
 * Splits a stream of typed protocol messages (1 type byte, int32 length that counts itself, body)
 * into messages, across chunk boundaries.
 */
export class Framer {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly onMessage: (type: number, body: Buffer) => void) {}

  push(chunk: Buffer): void {
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let offset = 0;
    while (buf.length - offset >= 5) {
      const length = buf.readInt32BE(offset + 1);
      if (buf.length - offset < 1 + length) break;
      this.onMessage(buf[offset]!, buf.subarray(offset + 5, offset + 1 + length));
      offset += 1 + length;
    }
    buf = buf.subarray(offset);
    // Copy what is left: the chunk's memory is not ours to keep.
    this.pending = buf.length ? Buffer.from(buf) : Buffer.alloc(0);
  }
}

function cString(buf: Buffer, offset: number): { value: string; next: number } {
  const end = buf.indexOf(0, offset);
  const stop = end === -1 ? buf.length : end;
  return { value: buf.toString('utf8', offset, stop), next: stop + 1 };
}

function startupParameter(body: Buffer, key: string): string | undefined {
  let offset = 0;
  while (offset < body.length && body[offset] !== 0) {
    const k = cString(body, offset);
    const v = cString(body, k.next);
    if (k.value === key) return v.value;
    offset = v.next;
  }
  return undefined;
}

/** Parameter values of a Bind message, from just after its statement name. */
function bindParams(body: Buffer, offset: number): (string | null)[] | undefined {
  const formatCount = body.readInt16BE(offset);
  offset += 2;
  const formats: number[] = [];
  for (let i = 0; i < formatCount; i++) formats.push(body.readInt16BE(offset + 2 * i));
  offset += 2 * formatCount;
  const paramCount = body.readInt16BE(offset);
  offset += 2;
  const params: (string | null)[] = [];
  for (let i = 0; i < paramCount; i++) {
    const format = formats.length === 0 ? 0 : formats.length === 1 ? formats[0]! : formats[i]!;
    const length = body.readInt32BE(offset);
    offset += 4;
    if (length === -1) {
      params.push(null);
      continue;
    }
    if (format !== 0) return undefined;
    params.push(body.toString('utf8', offset, offset + length));
    offset += length;
  }
  return params;
}
