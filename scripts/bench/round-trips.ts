/**
 * Figure 1, round trips: a full `collect` that finds new events in two date partitions, with every
 * answer of the remote servers delayed by D, against the same run at D = 0, side by side:
 * (wall(D) − wall(0)) / D, the median over pairs. The request log gives the critical path behind it.
 */
import { cpSync, rmSync } from 'node:fs';
import path from 'node:path';
import { type CollectRun, timedCollect } from './collect-cli.js';
import { criticalPath, type Recorder } from './critical-path.js';
import { type OciSnapshot, type Rig, restoreOci, type StoreKind, snapshotOci } from './rig.js';
import type { Scenario } from './scenario.js';
import { fmt, median, ms, type Row } from './stats.js';

export interface RoundTripOptions {
  runs: number;
  delayMs: number;
  log: (line: string) => void;
}

const SETUPS: { kind: StoreKind; label: string; max: number }[] = [
  { kind: 'local', label: 'local store (only the feed remote)', max: 1.3 },
  { kind: 'oci', label: 'OCI test server', max: 3.3 },
  { kind: 'vault', label: 'OCI test server + Vault AppRole', max: 5.3 },
];

const PHASES = ['fetch', 'readMetadata', 'list', 'writeObjects', 'commit'] as const;

/** A store that has collected `base`: a directory to copy (local) or the OCI server's objects. */
interface Prepared {
  localTemplate: string;
  ociSnapshot: OciSnapshot;
}

async function prepare(rig: Rig, scenario: Scenario): Promise<Prepared> {
  rig.feed.setBody(JSON.stringify(scenario.base));
  rig.setDelay('vault', 0);
  const localTemplate = rig.tempDir('rt-local-');
  const expectBase = { new: scenario.base.length };
  await timedCollect(rig.env('local', localTemplate), expectBase);
  const ociRun = rig.tempDir('rt-oci-');
  rig.oci.objects.clear();
  await timedCollect(rig.env('oci', ociRun), expectBase);
  rmSync(ociRun, { recursive: true, force: true });
  return { localTemplate, ociSnapshot: snapshotOci(rig.oci) };
}

async function oneRun(
  rig: Rig,
  kind: StoreKind,
  prepared: Prepared,
  scenario: Scenario,
  delayMs: number,
): Promise<CollectRun> {
  const runDir = rig.tempDir(`rt-${kind}-`);
  try {
    if (kind === 'local') {
      cpSync(path.join(prepared.localTemplate, 'store'), path.join(runDir, 'store'), { recursive: true });
    } else {
      restoreOci(rig.oci, prepared.ociSnapshot);
    }
    rig.setDelay(kind, delayMs);
    return await timedCollect(rig.env(kind, runDir), { new: scenario.newIds.length, objects: 2 });
  } finally {
    rig.setDelay(kind, 0);
    rmSync(runDir, { recursive: true, force: true });
  }
}

export async function measureRoundTrips(
  rig: Rig,
  scenario: Scenario,
  recorder: Recorder,
  options: RoundTripOptions,
): Promise<Row[]> {
  const { delayMs, runs, log } = options;
  const prepared = await prepare(rig, scenario);
  rig.feed.setBody(JSON.stringify(scenario.full));
  const rows: Row[] = [];
  for (const { kind, label, max } of SETUPS) {
    await oneRun(rig, kind, prepared, scenario, 0); // warm-up: page cache, the servers' first requests
    const ratios: number[] = [];
    const at0: number[] = [];
    const atD: CollectRun[] = [];
    let chain = '';
    for (let i = 0; i < runs; i++) {
      // Alternate the order so a drift of the machine's speed does not favour one side.
      let zero = 0;
      let delayed: CollectRun | undefined;
      for (const d of i % 2 === 0 ? [0, delayMs] : [delayMs, 0]) {
        recorder.clear();
        const run = await oneRun(rig, kind, prepared, scenario, d);
        if (d === 0) zero = run.wallMs;
        else {
          delayed = run;
          chain = criticalPath(recorder.arrivals(), delayMs).text;
        }
      }
      at0.push(zero);
      atD.push(delayed!);
      ratios.push((delayed!.wallMs - zero) / delayMs);
    }
    const steps = chain.split(' → ').length;
    const value = median(ratios);
    const phases = PHASES.map(
      (p) => `${p} ${fmt(median(atD.map((r) => r.summary.ms[p] ?? 0)) / delayMs)}`,
    ).join(', ');
    log(`  round trips, ${label}: ${fmt(value)} × D (${steps} in sequence: ${chain})`);
    rows.push({
      group: '1',
      figure: `round trips, ${label}`,
      value,
      unit: '× D',
      max,
      detail:
        `D = ${delayMs} ms, ${runs} pairs (ratios ${fmt(Math.min(...ratios))}–${fmt(Math.max(...ratios))}); median wall ${ms(median(at0))} at D = 0, ` +
        `${ms(median(atD.map((r) => r.wallMs)))} at D; critical path ${steps} round trip${steps === 1 ? '' : 's'} (@ ms after the run's first request): ${chain}; ` +
        `run phases at D (in D): ${phases}`,
    });
  }
  return rows;
}
