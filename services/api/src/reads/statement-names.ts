/**
 * Names of the read statements PostgreSQL is asked to prepare. A named statement's plan stays in
 * its connection's memory until the connection ends (about 20 KB each, measured with documents of
 * the seed's kind), and clients choose how many distinct documents they send, so names are given
 * sparingly:
 *  - a text gets a name on its second run: a document sent once runs as the unnamed statement,
 *    which PostgreSQL replaces with the next one and never accumulates;
 *  - at most `maxNamed` texts keep a name, the least recently run forgotten first. A forgotten text
 *    that comes back gets a new name (connections may still hold the old one under the old name);
 *  - the texts remembered (named or seen once) take at most `maxBytes` of memory here.
 * Each connection is closed once it holds more than its share of names (ReadEngine), so the server's
 * memory stays bounded whatever clients send.
 */
export class StatementNames {
  /** Text → its name, or '' when seen once; in least recently run order. */
  private readonly texts = new Map<string, string>();
  private named = 0;
  private bytes = 0;
  private counter = 0;

  constructor(
    private readonly maxNamed: number,
    private readonly maxBytes: number,
  ) {}

  /** The name to run `text` under, or '' for the unnamed statement. */
  nameFor(text: string): string {
    const known = this.texts.get(text);
    if (known !== undefined) {
      this.texts.delete(text);
      if (known || this.maxNamed === 0) {
        this.texts.set(text, known);
        return known;
      }
      // The second run: named from now on.
      this.counter += 1;
      const name = `blog_read_${this.counter}`;
      this.texts.set(text, name);
      this.named += 1;
      this.trim();
      return name;
    }
    this.texts.set(text, '');
    this.bytes += textBytes(text);
    this.trim();
    return '';
  }

  private trim(): void {
    for (const [text, name] of this.texts) {
      if (this.named <= this.maxNamed && this.bytes <= this.maxBytes) return;
      this.texts.delete(text);
      this.bytes -= textBytes(text);
      if (name) this.named -= 1;
    }
  }
}

/** What a string of SQL takes in memory, at most (two bytes per UTF-16 unit). */
function textBytes(text: string): number {
  return 2 * text.length;
}
