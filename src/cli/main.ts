// watch (chokidar), status (graphql-ws) and EXIF reading are imported when a command needs them:
// every command starts faster without loading what it does not use.
import { mkdir, realpath } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Command, CommanderError, Option } from 'commander';
import { ApiClient, ApiError } from '../client/api-client.js';
import { EXIT, memoryArg, offeredFolders, periodArg, portArg, positiveInt, sinceArg, untilInterrupted } from './arguments.js';
import { push, StopRun, stopFor } from './push.js';
import { createReporter, outputMode, type Reporter } from './reporter.js';
import { configDir, forgetCredentials, loadCredentials, normaliseServer, saveCredentials, type Credentials } from './settings.js';
import { SyncList } from './sync-list.js';

interface GlobalOptions {
  json?: boolean;
  quiet?: boolean;
  progress?: boolean;
}

function reporterFor(command: Command): Reporter {
  return createReporter(outputMode(command.optsWithGlobals<GlobalOptions>()));
}

async function signedIn(): Promise<{ api: ApiClient; credentials: Credentials }> {
  const credentials = await loadCredentials();
  if (!credentials) throw new StopRun('NOT_LOGGED_IN', 'not logged in: run `pixshare login <server>` (or set PIXSHARE_SERVER and PIXSHARE_TOKEN)', EXIT.unreachable);
  return { api: new ApiClient(credentials.server, credentials.token), credentials };
}

export function program(): Command {
  const cli = new Command('pixshare')
    .description('Back up photos and videos to a pixshare server, without sending the same bytes twice.')
    .option('--json', 'one JSON object per line, with stable keys (for programs)')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--no-progress', 'plain lines instead of progress bars')
    .showHelpAfterError()
    .exitOverride();

  cli
    .command('login')
    .description('log in to a server: asks for the password (never shown, never stored) and keeps a device token')
    .argument('<server-url>', 'e.g. https://photos.example.org')
    .option('-e, --email <email>', 'your account (asked when left out)')
    .option('-n, --device-name <name>', 'how this device shows in your device list', `${os.hostname()} (${process.platform})`)
    .action(async (serverUrl: string, options: { email?: string; deviceName: string }, command: Command) => {
      const report = reporterFor(command);
      let server: string;
      try {
        server = normaliseServer(serverUrl);
      } catch (error) {
        throw new CommanderError(EXIT.usage, 'pixshare.usage', (error as Error).message);
      }
      const email = options.email ?? (await ask('Email: '));
      const password = await ask('Password: ', { hidden: true });
      const api = new ApiClient(server);
      const platform = ({ linux: 'linux', darwin: 'macos', win32: 'windows' } as Record<string, string>)[process.platform] ?? 'cli';
      const { logIn } = await api.graphql<{ logIn: { token: string; device: { id: string } } }>(
        'mutation($e: String!, $p: String!, $d: DeviceInput) { logIn(email: $e, password: $p, device: $d) { token device { id } } }',
        { e: email, p: password, d: { name: options.deviceName, platform } },
      );
      const file = await saveCredentials({ server, token: logIn.token, deviceId: logIn.device.id, email });
      report.result('login', { server, email, deviceId: logIn.device.id, credentials: file }, `logged in to ${server} as ${email}; device token kept in ${file}`);
    });

  cli
    .command('logout')
    .description('sign this device out: its token stops working and is forgotten here')
    .action(async (_options: unknown, command: Command) => {
      const report = reporterFor(command);
      const { api, credentials } = await signedIn();
      await api.graphql<{ logOut: boolean }>('mutation { logOut }').catch((error: unknown) => {
        // A token the server no longer takes is as good as signed out.
        if (!(error instanceof ApiError && error.code === 'UNAUTHENTICATED')) throw error;
      });
      await forgetCredentials();
      report.result('logout', { server: credentials.server }, `logged out of ${credentials.server}`);
    });

  cli
    .command('push')
    .description('upload photos and videos (files, or whole folders) the server does not have yet')
    .argument('<paths...>', 'files and folders')
    .option('-f, --folder <name>', 'put everything into this server folder (default: a folder per tree, named after it)')
    .addOption(new Option('-c, --concurrency <n>', 'files in flight at once').argParser(positiveInt).default(4))
    .action((paths: string[], options: PushCommandOptions, command: Command) => runPush(command, paths, options));

  cli
    .command('sync')
    .description('upload what was taken in a recent period (EXIF time, else the file time) and is not on the server yet')
    .argument('<folder>', 'the folder to look in (with everything below it)')
    .addOption(new Option('-s, --since <when>', 'how far back: 7d, 12h, 2w, 3m, 1y, or a date like 2026-11-01').argParser(sinceArg).default('7d'))
    .option('-f, --folder <name>', 'the server folder (default: named after the folder)')
    .addOption(new Option('-c, --concurrency <n>', 'files in flight at once').argParser(positiveInt).default(4))
    .action(async (folder: string, options: PushCommandOptions & { since: Date | string }, command: Command) => {
      const since = typeof options.since === 'string' ? sinceArg(options.since) : options.since;
      await runPush(command, [folder], { ...options, since });
    });

  cli
    .command('watch')
    .description('keep a folder backed up: sends new files once they stop growing, rescans on a schedule, waits out a server that is away')
    .argument('<folder>', 'the folder to watch (with everything below it)')
    .option('-f, --folder <name>', 'the server folder (default: named after the folder)')
    .addOption(new Option('--every <period>', 'rescan the whole folder this often: 30s, 10m, 1h').argParser(periodArg).default(600_000, '10m'))
    .option('--share-to <who...>', 'share the new photos with friends (nickname or email), contact groups (name) or addresses')
    .addOption(new Option('--move-sent-to <dir>', 'move each file there once the server confirmed it stores its exact bytes').conflicts('deleteSent'))
    .option('--delete-sent', 'delete each file once the server confirmed it stores its exact bytes')
    .addOption(new Option('--settle <period>', 'a new file counts as written when its size has not changed for this long').argParser(periodArg).default(2000, '2s'))
    .addOption(new Option('-c, --concurrency <n>', 'files in flight at once').argParser(positiveInt).default(4))
    .action(async (folder: string, options: PushCommandOptions & { every: number; settle: number; shareTo?: string[]; moveSentTo?: string; deleteSent?: boolean }, command: Command) => {
      const report = reporterFor(command);
      const { api, credentials } = await signedIn();
      const syncList = new SyncList(path.join(configDir(), 'sync-list.db'), credentials.server);
      try {
        const { watch } = await import('./watch.js');
        await untilInterrupted((signal) => watch(api, syncList, path.resolve(folder), { ...options, memoryBytes: options.maxMemory * 2 ** 20, everyMs: options.every, shareTo: options.shareTo ?? [], settleMs: options.settle }, report, signal));
      } finally {
        syncList.close();
      }
    });

  cli
    .command('agent')
    .description('keep this device ready for commands from your other devices: it offers folders they can ask it to upload (run it as a service)')
    .option('--folder <dir...>', 'a folder to offer, as DIR or NAME=DIR (named after the folder by default)')
    .addOption(new Option('--listen <port>', 'the port of its local endpoint, for devices on the same network (0: any free port)').argParser(portArg).default(0))
    .addOption(new Option('-c, --concurrency <n>', 'files in flight at once').argParser(positiveInt).default(4))
    .addOption(new Option('--max-memory <MiB>', 'file bytes held in memory at once').argParser(memoryArg).default(256, '256'))
    .action(async (options: { folder?: string[]; listen: number; concurrency: number; maxMemory: number }, command: Command) => {
      const report = createReporter(outputMode({ ...command.optsWithGlobals<GlobalOptions>(), progress: false }));
      const folders = await offeredFolders(options.folder ?? []);
      const { api, credentials } = await signedIn();
      const syncList = new SyncList(path.join(configDir(), 'sync-list.db'), credentials.server);
      let interrupted = false;
      try {
        const { runAgent, agentStateFile } = await import('./agent.js');
        interrupted = await untilInterrupted(async (signal) => {
          await runAgent(api, syncList, { folders, port: options.listen, concurrency: options.concurrency, memoryBytes: options.maxMemory * 2 ** 20, stateFile: agentStateFile(configDir()) }, report, signal);
          return signal.aborted;
        });
      } finally {
        syncList.close();
      }
      // A run still under way is left to its lease: the next start picks it up again.
      if (interrupted) process.exit(EXIT.done);
    });

  cli
    .command('command')
    .description('ask another of your devices (running `pixshare agent`) to upload: directly on the same network, else through the server')
    .argument('<device>', 'the device, by name or id (pixshare devices)')
    .argument('<action>', 'what to do: upload')
    .option('-f, --folder <name>', 'one of the folders it offers (default: all of them)')
    .addOption(new Option('-s, --since <when>', 'only what it took since: 1d, 12h, 2w, or a date like 2026-11-01').argParser(sinceArg))
    .option('--no-wait', 'do not follow the command until it ends')
    .option('--no-direct', 'always go through the server')
    .action(async (device: string, action: string, options: { folder?: string; since?: Date; wait: boolean; direct: boolean }, command: Command) => {
      if (action !== 'upload') throw new CommanderError(EXIT.usage, 'pixshare.usage', `unknown action "${action}": the one a device takes is upload`);
      const report = reporterFor(command);
      const { api } = await signedIn();
      const { giveCommand } = await import('./command.js');
      await untilInterrupted((signal) => giveCommand(api, device, options, report, signal));
    });

  cli
    .command('pull')
    .description("bring a folder on this device up to date with your library: new photos downloaded (verified), moved ones moved; pulling again transfers nothing")
    .argument('<dir>', 'the folder to fill: a subfolder per server folder')
    .option('-f, --folder <name>', 'only this server folder')
    .option('--delete', 'also remove files whose photo was removed on the server (never a file changed here)')
    .addOption(new Option('-c, --concurrency <n>', 'downloads at once').argParser(positiveInt).default(4))
    .action(async (dir: string, options: { folder?: string; delete?: boolean; concurrency: number }, command: Command) => {
      // A line per file written (the feed is read page by page: no total for a bar to fill).
      const report = createReporter(outputMode({ ...command.optsWithGlobals<GlobalOptions>(), progress: false }));
      const { api, credentials } = await signedIn();
      await mkdir(dir, { recursive: true });
      const root = await realpath(dir);
      const { pull } = await import('./pull.js');
      const { PullState } = await import('./pull-state.js');
      const state = new PullState(path.join(configDir(), 'sync-list.db'), credentials.server, root, options.folder ?? '');
      try {
        const summary = await pull(api, state, root, options, report);
        const sentence =
          `${summary.changes} changes: ${summary.downloaded} downloaded (${(summary.bytes / 1e6).toFixed(1)} MB), ${summary.copied} copied from files already here, ${summary.present} already in place, ${summary.moved} moved` +
          `${summary.removed ? `, ${summary.removed} removed` : ''}${summary.kept ? `, ${summary.kept} kept here` : ''}${summary.failed ? `, ${summary.failed} failed (pull again to retry)` : ''}`;
        report.result('summary', { ...summary }, sentence);
        if (summary.failed > 0) process.exitCode = EXIT.someFailed;
      } finally {
        state.close();
      }
    });

  cli
    .command('devices')
    .description('your devices: which are online, and the folders their agents offer')
    .action(async (_options: unknown, command: Command) => {
      const report = reporterFor(command);
      const { api } = await signedIn();
      const { listDevices } = await import('./command.js');
      await listDevices(api, report);
    });

  // What push, sync and watch choose among and how they go about it, alike.
  for (const name of ['push', 'sync', 'watch']) {
    cli.commands
      .find((c) => c.name() === name)!
      .addOption(new Option('--max-memory <MiB>', 'file bytes held in memory at once: small files read whole, chunks on their way').argParser(memoryArg).default(256, '256'))
      .option('--ignore <glob...>', "leave out matching files and folders ('*.tmp', 'raw/**'); a pattern without / matches a name anywhere")
      .option('--all', 'every file, not only photos and videos')
      .option('--include-hidden', 'also files and folders whose names start with a dot')
      .option('--dry-run', 'only say what would be sent')
      .option('--perceptual-hash', "also work out each image's perceptual hash and send it with the check (near-duplicates: similarAssets)");
  }

  cli
    .command('status')
    .description("the folders' sync status: files stored of files in each folder; live with --follow")
    .argument('[folder]', 'only this folder')
    .option('--follow', 'keep watching: a line each time a folder sync moves on, from any device (until Ctrl-C)')
    .action(async (folder: string | undefined, options: { follow?: boolean }, command: Command) => {
      const report = reporterFor(command);
      const { api } = await signedIn();
      const { followStatus, showStatus } = await import('./status.js');
      if (!options.follow) return showStatus(api, folder, report);
      await untilInterrupted((signal) => followStatus(api, folder, report, signal));
    });

  return cli;
}

interface PushCommandOptions {
  maxMemory: number;
  ignore?: string[];
  folder?: string;
  all?: boolean;
  includeHidden?: boolean;
  dryRun?: boolean;
  concurrency: number;
  since?: Date;
  perceptualHash?: boolean;
}

/** push and sync: the files, the sync list, the report, the exit code. */
async function runPush(command: Command, paths: string[], options: PushCommandOptions): Promise<void> {
  const report = reporterFor(command);
  const { api, credentials } = await signedIn();
  const syncList = new SyncList(path.join(configDir(), 'sync-list.db'), credentials.server);
  try {
    // A server that is away is given three more chances (after 2, 4 and 8 s) before the run gives up.
    let summary: Awaited<ReturnType<typeof push>> | undefined;
    for (let attempt = 1; !summary; attempt++) {
      try {
        summary = await push(api, syncList, paths, { ...options, memoryBytes: options.maxMemory * 2 ** 20 }, report);
      } catch (error) {
        const stop = error instanceof StopRun ? error : stopFor(error);
        if (stop?.code !== 'UNREACHABLE' || attempt > 3) throw error;
        report.result('waiting', { retryInSeconds: 2 ** attempt, code: stop.code, message: stop.message }, `${stop.message}; trying again in ${2 ** attempt} s`);
        await new Promise((resolve) => setTimeout(resolve, 2 ** attempt * 1000));
      }
    }
    const failed = summary.failed + summary.unreadable;
    const sentence =
      `${summary.files} files: ${summary.uploaded} sent, ${summary.instant} instant, ${summary.exists} already there, ${summary.unchanged} unchanged` +
      `${summary.older ? `, ${summary.older} taken before ${options.since!.toLocaleString()}` : ''}` +
      `${failed ? `, ${failed} failed` : ''}${summary.skipped ? ` (${summary.skipped} not photos or videos skipped; --all takes them)` : ''}` +
      `; ${(summary.sentBytes / 1e6).toFixed(1)} MB sent`;
    report.result('summary', { ...summary, dryRun: options.dryRun === true }, options.dryRun ? `dry run: ${sentence}` : sentence);
    if (failed > 0) process.exitCode = EXIT.someFailed;
  } finally {
    syncList.close();
  }
}

let pipedLines: { lines: AsyncIterator<string>; close(): void } | undefined;

/** A line from the terminal (hidden as it is typed, for passwords), or the next line of standard input when it is not a terminal. */
async function ask(prompt: string, options: { hidden?: boolean } = {}): Promise<string> {
  if (!process.stdin.isTTY) {
    if (!pipedLines) {
      const rl = createInterface({ input: process.stdin, terminal: false });
      pipedLines = { lines: rl[Symbol.asyncIterator](), close: () => rl.close() };
    }
    const next = await pipedLines.lines.next();
    if (next.done) throw new StopRun('NO_INPUT', `no answer to "${prompt.trim()}" on standard input`, EXIT.usage);
    return next.value.trim();
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  if (options.hidden) {
    // Echo nothing of what is typed (the prompt itself is written before muting).
    process.stderr.write(prompt);
    (rl as unknown as { _writeToOutput: (text: string) => void })._writeToOutput = () => {};
  }
  try {
    const answer = await new Promise<string>((resolve, reject) => {
      rl.once('close', () => reject(new StopRun('NO_INPUT', `no answer to "${prompt.trim()}"`, EXIT.usage)));
      if (options.hidden) rl.once('line', resolve);
      else rl.question(prompt, resolve);
    });
    if (options.hidden) process.stderr.write('\n');
    return answer.trim();
  } finally {
    rl.removeAllListeners('close');
    rl.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  const cli = program();
  try {
    return await run(cli, argv);
  } finally {
    pipedLines?.close();
  }
}

async function run(cli: Command, argv: string[]): Promise<number> {
  try {
    await cli.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.done;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end "with an error" of code 0; usage errors are printed by commander.
      if (error.exitCode === 0) return EXIT.done;
      if (error.code === 'pixshare.usage') process.stderr.write(`pixshare: ${error.message}\n`);
      return EXIT.usage;
    }
    const stop = error instanceof StopRun ? error : stopFor(error);
    const opts = cli.opts<GlobalOptions>();
    const report = createReporter(outputMode(opts));
    if (stop) {
      report.fail(stop.code, stop.message);
      return stop.exitCode;
    }
    if (error instanceof ApiError) {
      report.fail(error.code, error.message);
      return error.code === 'BAD_USER_INPUT' ? EXIT.usage : EXIT.someFailed;
    }
    report.fail('INTERNAL', error instanceof Error ? (error.stack ?? error.message) : String(error));
    return EXIT.someFailed;
  }
}
