/**
 * The floor of a collector run: bare Node that GETs the feed response (asking for the same encodings as
 * the collector, so the same bytes come back), parses the JSON, and exits. Nothing a run could leave out.
 * Usage: node scripts/bench/floor-fetch.mjs URL   (prints the number of events)
 */
const url = process.argv[2];
if (!url) throw new Error('usage: node floor-fetch.mjs URL');
const response = await fetch(url, { headers: { 'accept-encoding': 'gzip, br' } });
if (!response.ok) throw new Error(`${url} answered ${response.status}`);
const events = JSON.parse(await response.text());
if (!Array.isArray(events)) throw new Error(`${url} did not answer a JSON array`);
process.stdout.write(`${events.length}\n`);
