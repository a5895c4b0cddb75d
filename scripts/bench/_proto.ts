import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { CollectorError } from '/work/main/src/errors.js';
import { DEFAULT_COLLECT_OPTIONS, runCollect } from '/work/main/src/run/collect-run.js';
import { LocalStore } from '/work/main/src/store/local-store.js';
import { loadReplay } from '/work/main/test/support/replay-file.js';
const t0 = performance.now();
const replay = await loadReplay();
console.log('load ms', performance.now() - t0, process.resourceUsage().maxRSS, process.memoryUsage().rss);
const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-'));
const store = new LocalStore(dir);
const logger = pino({ level: 'silent' });
const t1 = performance.now();
let n = 0, failed = 0, written = 0;
for (const r of replay.responses.slice(0, 3000)) {
  const now = new Date(r.at);
  try {
    const s = await runCollect({ store, logger, now: () => now, fetchFeed: async () => {
      if (!r.versions) throw new CollectorError('E_FEED_BODY', 'x');
      const events = r.versions.map((v) => replay.versions[v]);
      return { events, bodyBytes: 0, wireBytes: 0, status: 200, attempts: 1, ms: 0 };
    } }, { ...DEFAULT_COLLECT_OPTIONS, dryRun: false, maxSeenIds: 1000, revisions: true, prefix: '' });
    written += s.objects.length;
  } catch { failed++; }
  n++;
  if (n === 1) console.log('after 1', process.resourceUsage().maxRSS, process.memoryUsage().rss);
  if (n % 500 === 0 || n === 1) { const a = process.memoryUsage(); (globalThis as any).gc(); const b = process.memoryUsage(); console.log(n, ((performance.now() - t1) / n).toFixed(1), 'rss', (a.rss/1e6).toFixed(0), 'heapUsed', (a.heapUsed/1e6).toFixed(0), 'heapTotal', (a.heapTotal/1e6).toFixed(0), 'ext', (a.external/1e6).toFixed(0), 'ab', (a.arrayBuffers/1e6).toFixed(0), 'afterGC heapUsed', (b.heapUsed/1e6).toFixed(0), 'rss', (b.rss/1e6).toFixed(0)); }
}
console.log('total s', (performance.now() - t1) / 1000, n, failed, written, process.resourceUsage().maxRSS);
rmSync(dir, { recursive: true, force: true });
