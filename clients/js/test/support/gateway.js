/**
 * A real eventwire gateway in a child process, for end-to-end tests.
 *
 * The Python is $EVENTWIRE_PYTHON, else the repository's `.venv/bin/python`
 * (../../.venv relative to this package). Port 0 picks a free port; the
 * banner, the first line on stdout, tells which:
 * `eventwire 0.1.0 serving on http://127.0.0.1:PORT (broker memory://)`.
 */

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { withTimeout } from './wait.js';

const PYTHON = process.env.EVENTWIRE_PYTHON ?? fileURLToPath(new URL('../../../../.venv/bin/python', import.meta.url));
const BANNER = /serving on (http:\/\/\S+)/;
const START_TIMEOUT = 15_000;
const STOP_TIMEOUT = 5_000;

/** Every gateway still running; killed if the test process exits without stopping them. */
const running = new Set();
const killAll = () => {
  for (const child of running) child.kill('SIGKILL');
};
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM']) {
  // the test runner stops a file that runs too long with a signal: no gateway may outlive it
  process.once(signal, () => {
    killAll();
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  });
}

/**
 * Start `python -m eventwire serve` on `port` (0: any free one).
 * @param {{port?: number}} [options]
 */
export async function startGateway({ port = 0, extra = [], env = {} } = {}) {
  const args = ['-m', 'eventwire', 'serve', '--host', '127.0.0.1', '--port', String(port), '--shutdown-grace', '1', '--insecure', ...extra];
  const child = spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  running.add(child);
  const output = captureOutput(child);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  exited.then(() => running.delete(child));
  let url;
  try {
    url = await withTimeout(
      Promise.race([output.banner, exited.then(() => Promise.reject(new Error('the gateway exited')))]),
      START_TIMEOUT,
      'the gateway banner',
    ).then(parseBanner);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${error.message}\n--- gateway output ---\n${output.text()}`);
  }
  return new Gateway(child, url, exited, output);
}

class Gateway {
  constructor(child, url, exited, output) {
    this.child = child;
    this.url = url;
    this.port = Number(new URL(url).port);
    this.wsUrl = `${url.replace(/^http/, 'ws')}/ws`;
    this.exited = exited;
    this.output = output;
  }

  /**
   * POST one event to /v1/publish; resolves with `{topic, event, seq}`.
   * @param {object} event
   */
  async publish(event) {
    const response = await fetch(`${this.url}/v1/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(event),
      signal: AbortSignal.timeout(5000),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(`publish failed: ${response.status} ${JSON.stringify(body)}`);
    return body;
  }

  /** GET /v1/topics/{topic}: `{topic, subscribers, position}`. */
  async topic(topic) {
    const response = await fetch(`${this.url}/v1/topics/${encodeURIComponent(topic)}`, {
      signal: AbortSignal.timeout(5000),
    });
    return response.json();
  }

  /**
   * Stop the process (SIGTERM: graceful, clients get 1001; SIGKILL: they see
   * the connection drop) and wait until it is gone. Safe to call twice.
   * @param {'SIGTERM' | 'SIGKILL'} [signal]
   */
  async stop(signal = 'SIGTERM') {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    try {
      return await withTimeout(this.exited, STOP_TIMEOUT, 'the gateway to exit');
    } catch {
      this.child.kill('SIGKILL');
      return this.exited;
    }
  }
}

/** The child's output, kept for error messages, and the banner line once it is printed. */
function captureOutput(child) {
  const chunks = [];
  let stdout = '';
  let resolveBanner;
  const banner = new Promise((resolve) => (resolveBanner = resolve));
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    chunks.push(chunk);
    stdout += chunk;
    const line = stdout.split('\n').find((candidate) => BANNER.test(candidate));
    if (line !== undefined) resolveBanner(line);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk) => chunks.push(chunk));
  return { banner, text: () => chunks.join('') };
}

function parseBanner(line) {
  const match = BANNER.exec(line);
  if (match === null) throw new Error(`unexpected first line from the gateway: ${line}`);
  return match[1];
}
