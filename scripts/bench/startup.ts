/**
 * Figure 2, start-up: what a run costs beyond the least it must do, side by side in the same loop.
 * - `polisen-collector --help` against `node -e 0` (wall time).
 * - a `collect` with nothing new on the local store against the floor (bare Node fetching and parsing
 *   the same response: floor-fetch.mjs): wall time and peak RSS.
 * - the same run on OCI with Vault AppRole credentials: peak RSS against the floor.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI, type CollectRun, timedCollect } from './collect-cli.js';
import { measureNodeOk } from './measure-child.js';
import type { Rig } from './rig.js';
import type { Scenario } from './scenario.js';
import { fmt, mb, median, ms, type Row } from './stats.js';

const FLOOR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'floor-fetch.mjs');

export interface StartupOptions {
  runs: number;
  log: (line: string) => void;
}

async function measureHelp(runs: number): Promise<Row> {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  const bare: number[] = [];
  const help: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < runs; i++) {
    let b = 0;
    let h = 0;
    for (const which of i % 2 === 0 ? ['bare', 'help'] : ['help', 'bare']) {
      const run = await measureNodeOk(which === 'bare' ? ['-e', '0'] : [CLI, '--help'], env);
      if (which === 'bare') b = run.wallMs;
      else {
        if (!run.stdout.includes('Usage: polisen-collector'))
          throw new Error(`--help printed: ${run.stdout}`);
        h = run.wallMs;
      }
    }
    bare.push(b);
    help.push(h);
    ratios.push(h / b);
  }
  return {
    group: '2',
    figure: '`--help` wall / `node -e 0` wall',
    value: median(ratios),
    unit: '×',
    max: 2,
    detail: `${runs} pairs; median ${ms(median(help))} vs ${ms(median(bare))}`,
  };
}

export async function measureStartup(rig: Rig, scenario: Scenario, options: StartupOptions): Promise<Row[]> {
  const { runs, log } = options;
  const rows = [await measureHelp(runs * 2)];
  log(`  ${rows[0]!.figure}: ${fmt(rows[0]!.value)}`);

  // Stores that already hold the response: every timed run finds nothing new and writes nothing.
  rig.feed.setBody(JSON.stringify(scenario.full));
  rig.setDelay('vault', 0);
  const localDir = rig.tempDir('nothing-new-local-');
  const vaultDir = rig.tempDir('nothing-new-vault-');
  rig.oci.objects.clear();
  await timedCollect(rig.env('local', localDir), { new: scenario.full.length });
  await timedCollect(rig.env('vault', vaultDir), { new: scenario.full.length });
  const nothingNew = { new: 0, objects: 0 };
  const floorEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

  const floor: { wallMs: number; maxRssKb: number }[] = [];
  const local: CollectRun[] = [];
  const vault: CollectRun[] = [];
  const order = ['floor', 'local', 'vault'] as const;
  for (let i = 0; i < runs + 1; i++) {
    // Rotate the order; the first round is a warm-up and is not counted.
    for (let k = 0; k < order.length; k++) {
      const which = order[(i + k) % order.length]!;
      if (which === 'floor') {
        const run = await measureNodeOk([FLOOR, rig.feed.url], floorEnv);
        if (run.stdout.trim() !== String(scenario.full.length)) throw new Error(`floor read ${run.stdout}`);
        if (i > 0) floor.push(run);
      } else {
        const run = await timedCollect(rig.env(which, which === 'local' ? localDir : vaultDir), nothingNew);
        if (i > 0) (which === 'local' ? local : vault).push(run);
      }
    }
  }
  const ratio = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]!));
  const floorWall = floor.map((r) => r.wallMs);
  const floorRss = floor.map((r) => r.maxRssKb);
  const localWall = local.map((r) => r.wallMs);
  const localRss = local.map((r) => r.maxRssKb);
  const vaultWall = vault.map((r) => r.wallMs);
  const vaultRss = vault.map((r) => r.maxRssKb);
  rows.push(
    {
      group: '2',
      figure: 'run, nothing new, local store: wall / floor',
      value: ratio(localWall, floorWall),
      unit: '×',
      max: 2,
      detail: `${runs} rounds; median ${ms(median(localWall))} vs floor ${ms(median(floorWall))}`,
    },
    {
      group: '2',
      figure: 'run, nothing new, local store: peak RSS / floor',
      value: ratio(localRss, floorRss),
      unit: '×',
      max: 1.25,
      detail: `${runs} rounds; median ${mb(median(localRss))} vs floor ${mb(median(floorRss))}`,
    },
    {
      group: '2',
      figure: 'run, nothing new, OCI + Vault AppRole: peak RSS / floor',
      value: ratio(vaultRss, floorRss),
      unit: '×',
      max: 1.5,
      detail: `${runs} rounds; median ${mb(median(vaultRss))} vs floor ${mb(median(floorRss))}; its wall ${ms(median(vaultWall))} (${fmt(ratio(vaultWall, floorWall))} × floor)`,
    },
  );
  for (const row of rows.slice(1)) log(`  ${row.figure}: ${fmt(row.value)}`);
  return rows;
}
