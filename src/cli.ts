#!/usr/bin/env node
/**
 * The command line. Parsing and validation only; each command's module (and with it pino, undici,
 * the OCI SDK…) is imported when that command runs, so `--help` and `--version` stay instant.
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { type Config, type Flags, validateConfig } from './config.js';
import { EXIT_USAGE } from './errors.js';

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

function exitWith(code: number): void {
  process.exitCode = code;
}

/** Validates settings, printing one line per problem; undefined when there were problems. */
function loadConfig(flags: Flags): { config: Config; warnings: string[] } | undefined {
  const { config, errors, warnings } = validateConfig(process.env, flags, VERSION);
  if (errors.length === 0) return { config, warnings };
  for (const error of errors) process.stderr.write(`polisen-collector: configuration error: ${error}\n`);
  process.stderr.write('polisen-collector: nothing was done; see `polisen-collector --help`\n');
  exitWith(EXIT_USAGE);
  return undefined;
}

function isoDateArg(value: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00Z`))) {
    throw new InvalidArgumentError('expected a date as YYYY-MM-DD');
  }
  return value;
}

const storeOptions = (command: Command): Command =>
  command
    .option(
      '--store <dir|file:URL|oci://NAMESPACE/BUCKET>',
      'where events are stored (env COLLECTOR_STORE, default ./data)',
    )
    .option(
      '--store-prefix <prefix>',
      'object name prefix inside the store, for filtered collectors sharing one bucket (env COLLECTOR_PREFIX)',
    )
    .option('--state-dir <dir>', 'local state: pacing, lock, last run status (env COLLECTOR_STATE_DIR)')
    .option(
      '--log-level <level>',
      'fatal, error, warn, info, debug, trace or silent (env LOG_LEVEL, default info)',
    );

const feedOptions = (command: Command): Command =>
  command
    .option('--api-url <url>', 'the events API (env POLISEN_API_URL, default https://polisen.se/api/events)')
    .option(
      '--user-agent <text>',
      'User-Agent sent to the API (env POLISEN_USER_AGENT; or set API_CONTACT_EMAIL)',
    )
    .option('--max-seen-ids <n>', 'ids kept in seen_ids, 500 to 100000 (env MAX_SEEN_IDS, default 1000)')
    .option('--no-revisions', 'do not store edits of stored events in updates/ (env COLLECTOR_REVISIONS=off)')
    .option(
      '--location <names>',
      "only these locations, ';'-separated (the API's locationname; env POLISEN_LOCATION)",
    )
    .option('--type <types>', "only these event types, ';'-separated (the API's type; env POLISEN_TYPE)");

export function buildProgram(): Command {
  const program = new Command('polisen-collector')
    .description(
      'Archives every event notice the Swedish Police publish (polisen.se/api/events) as date-partitioned JSONL.',
    )
    .version(VERSION)
    .showSuggestionAfterError()
    // commander's own usage errors (unknown option, missing argument) are exit 2, as documented;
    // set before the subcommands are added so that they inherit it.
    .exitOverride((error) => {
      process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE);
    })
    .addHelpText(
      'after',
      '\nExit codes: 0 success (also when nothing is new), 1 the run failed, 2 usage or configuration error.\nDocumentation: README.md',
    );

  const collect = program.command('collect').description('fetch the feed once and store what is new');
  feedOptions(storeOptions(collect))
    .option('--dry-run', 'do everything up to the writes and print what would be written; write nothing')
    .option(
      '--metrics-file <file.prom>',
      'write Prometheus textfile metrics after the run (env METRICS_FILE)',
    )
    .option(
      '--ping-url <url>',
      'healthchecks.io-style URL pinged at start, success (/…) and failure (/fail) (env HEALTHCHECK_URL)',
    )
    .option(
      '--fail-if-locked',
      'exit 1, not 0, when another run holds the lock (env COLLECTOR_FAIL_IF_LOCKED=1)',
    )
    .action(async (opts: Flags & { dryRun?: boolean }) => {
      const loaded = loadConfig(opts);
      if (!loaded) return;
      const { collectCommand } = await import('./commands/collect.js');
      exitWith(
        await collectCommand(loaded.config, { dryRun: opts.dryRun === true, warnings: loaded.warnings }),
      );
    });

  const audit = program
    .command('audit')
    .description('read-only check of a store: duplicates, misplaced and unparseable lines, metadata');
  storeOptions(audit)
    .option('--prefix <prefix>', 'only objects whose name starts with this, e.g. events/2024/')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      '\nRead-only: lists and reads objects, never writes. Checks whole-store consistency (ids recorded but\nin no object, updates without an event) only without --prefix.\nExit codes: 0 the store is consistent, 1 problems were found or the store could not be read,\n2 usage or configuration error.',
    )
    .action(async (opts: Omit<Flags, 'prefix'> & { prefix?: string; json?: boolean }) => {
      const { prefix, ...flags } = opts;
      const loaded = loadConfig(flags);
      if (!loaded) return;
      const { auditCommand } = await import('./commands/audit.js');
      exitWith(await auditCommand(loaded.config, { only: prefix, json: opts.json === true }));
    });

  program
    .command('health')
    .description('exit 0 when the last run succeeded recently, 1 when stale or failed (one line says why)')
    .option('--max-age <duration>', 'how recent the last success must be, e.g. 45m, 2h, 1h30m', '45m')
    .option('--state-dir <dir>', 'local state directory (env COLLECTOR_STATE_DIR)')
    .action(async (opts: { maxAge: string; stateDir?: string }) => {
      const loaded = loadConfig({ stateDir: opts.stateDir });
      if (!loaded) return;
      const { healthCommand } = await import('./commands/health.js');
      exitWith(await healthCommand(loaded.config, opts.maxAge));
    });

  const backfill = program
    .command('backfill')
    .description('fetch past days from the API (?DateTime=) and store what is missing');
  feedOptions(storeOptions(backfill))
    .requiredOption('--from <YYYY-MM-DD>', 'first day', isoDateArg)
    .option('--to <YYYY-MM-DD>', 'last day (default: today)', isoDateArg)
    .action(async (opts: Flags & { from: string; to?: string }) => {
      const loaded = loadConfig(opts);
      if (!loaded) return;
      // A backfill runs collection after collection for hours: it runs with the settings that keep such a
      // process's memory flat, which node only takes at start (src/ops/long-lived-runtime.ts).
      const runtime = await import('./ops/long-lived-runtime.js');
      if (!runtime.hasLongLivedRuntime()) {
        const code = await runtime.relaunchWithLongLivedRuntime();
        if (code !== undefined) {
          exitWith(code);
          return;
        }
      } else {
        runtime.watchParent();
      }
      const { backfillCommand } = await import('./commands/backfill.js');
      exitWith(
        await backfillCommand(loaded.config, { from: opts.from, to: opts.to, warnings: loaded.warnings }),
      );
    });

  return program;
}

await buildProgram().parseAsync(process.argv);
