// Progress for long build steps: one line per stage with its time; a live status line on a TTY.
export class Progress {
  private t0 = Date.now();
  private stageT0 = Date.now();
  private live = process.stderr.isTTY;
  readonly timings: Record<string, number> = {};

  constructor(private readonly total: number) {}

  private n = 0;
  stage(name: string, note = ""): void {
    this.n++;
    this.stageT0 = Date.now();
    this.current = name;
    process.stderr.write(`[${this.n}/${this.total}] ${name}${note ? ` — ${note}` : ""}\n`);
  }
  private current = "";
  private lastPrint = 0;

  /** A line of tool output: shown live on a TTY, every 10 s otherwise. */
  detail(line: string): void {
    const now = Date.now();
    const secs = Math.round((now - this.stageT0) / 1000);
    const text = `      ${secs}s ${line.slice(0, 100)}`;
    if (this.live) process.stderr.write(`\r\x1b[K${text}`);
    else if (now - this.lastPrint > 10000) {
      this.lastPrint = now;
      process.stderr.write(`${text}\n`);
    }
  }

  done(cached = false): void {
    const secs = (Date.now() - this.stageT0) / 1000;
    this.timings[this.current] = secs;
    if (this.live) process.stderr.write("\r\x1b[K");
    process.stderr.write(`      ${cached ? "cached" : "done"} in ${secs.toFixed(1)} s\n`);
  }

  elapsed(): number {
    return (Date.now() - this.t0) / 1000;
  }
}
