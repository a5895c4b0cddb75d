/**
 * Figure 5, flat memory, from the replay child (replay-throughput.ts): the peak RSS after all 10,184
 * responses against the peak RSS of the first run, in the same process. The recorded data (~31 MB, in
 * Buffers) is in both readings. Also shown: the peak after the first tenth of the file against the end
 * (whether memory still grows once warm), and the heap after a full GC (what is really kept).
 */
import type { ReplayRun } from './replay-throughput.js';
import { fmt, mb, type Row } from './stats.js';

export function flatMemoryRows(replay: ReplayRun): Row[] {
  const first = replay.slices[0];
  const last = replay.slices.at(-1);
  if (first === undefined || last === undefined) throw new Error('the replay reported no slices');
  const series = replay.slices.map((s) => fmt(s.peakRssKb / 1024)).join(', ');
  const heap = `heap after a full GC ${fmt(replay.heapAfterGcFirstMb)} MB after the first run, ${fmt(replay.heapAfterGcEndMb)} MB at the end`;
  return [
    {
      group: '5',
      figure: 'peak RSS after the whole replay / peak RSS of the first run',
      value: replay.kernelMaxRssEndKb / replay.kernelMaxRssFirstKb,
      unit: '×',
      max: 1.1,
      detail:
        `kernel peak RSS ${mb(replay.kernelMaxRssEndKb)} after ${replay.responses} responses vs ${mb(replay.kernelMaxRssFirstKb)} after the first ` +
        `(${mb(replay.rssBeforeFirstKb)} before it, the data included); ` +
        `sampled peak after each tenth (MB): ${series}; ${heap}; one replay (minutes long), not a median`,
    },
    {
      group: '5',
      figure: 'peak RSS after the whole replay / after its first tenth',
      value: last.peakRssKb / first.peakRssKb,
      unit: '×',
      detail: `sampled peaks ${mb(last.peakRssKb)} vs ${mb(first.peakRssKb)} after ${first.responses + 1} responses: growth once warm`,
    },
  ];
}
