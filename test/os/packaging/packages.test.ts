// Builds the .deb and .rpm packages with packaging/build.sh (once for this file, plus a repackaged
// next version for the upgrade), lints them, installs them into throw-away roots with dpkg --root
// and rpm --root, runs the installed programs, and checks upgrade, remove and purge.
import test from 'ava';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import net from 'node:net';
import { appendFileSync, chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { daemonNodeFlags } from '../../../shared/daemon-node-flags';
import { isRoot, waitFor } from '../../helpers/netns';
import { createThrowawayRoot, removeRoot, which, type RootKind } from './throwaway-root';

const REPO = path.resolve(__dirname, '..', '..', '..', '..');
const BUILD_SCRIPT = path.join(REPO, 'packaging', 'build.sh');
/** The first build compiles everything (npm ci twice, tsc); on a busy 2-core machine that takes minutes. */
const BUILD_TIMEOUT_MS = 25 * 60_000;
const COMMAND_TIMEOUT_MS = 120_000;
const PACKAGES = ['umbra-agent', 'umbra-coordinator'] as const;

interface Result { code: number; stdout: string; stderr: string }

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? COMMAND_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : (child.exitCode ?? 1)) : 0;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end();
  });
}

async function runOk(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
  return r.stdout;
}

const missing = ['dpkg-deb', 'dpkg-shlibdeps', 'rpmbuild', 'rpm', 'npm'].filter((c) => !which(c));
const skipReason = !isRoot()
  ? 'needs root (dpkg --root and rpm --root install owners, create users and device nodes)'
  : missing.length > 0 ? `missing tools: ${missing.join(', ')} (scripts/setup.sh installs them)` : '';
const osTest = skipReason ? test.skip : test.serial;
const osTestConcurrent = skipReason ? test.skip : test;
if (skipReason) test('packages (skipped)', (t) => { t.log(`skipped: ${skipReason}`); t.pass(); });

const version: string = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')).version;
const nextVersion = version.replace(/^(\d+)\.(\d+)\.(\d+).*$/, (_m, a, b, c) => `${a}.${b}.${Number(c) + 1}`);
/** Developer shortcut: a folder that already holds both versions' packages (skips the build). */
const prebuiltDir = process.env.UMBRA_TEST_PACKAGES_DIR;
const outDir = prebuiltDir ?? mkdtempSync(path.join(tmpdir(), 'umbra-packages-'));
/** Unpacked control files and units. */
const scratch = mkdtempSync(path.join(tmpdir(), 'umbra-packages-scratch-'));
const roots: string[] = [];
const daemons: ChildProcess[] = [];
let buildError: Error | undefined;

const deb = (pkg: string, v = version): string => path.join(outDir, `${pkg}_${v}_amd64.deb`);
const rpmFile = (pkg: string, v = version): string => path.join(outDir, `${pkg}-${v}-1.x86_64.rpm`);

function newRoot(kind: RootKind): string {
  const root = createThrowawayRoot(kind);
  roots.push(root);
  return root;
}

test.before(async (t) => {
  if (skipReason || prebuiltDir) return;
  t.timeout(BUILD_TIMEOUT_MS);
  // The committed tree (UMBRA_SOURCE=HEAD): colleagues' half-written files must not break this build.
  const env = { UMBRA_OUT: outDir, UMBRA_SOURCE: 'HEAD', UMBRA_LINT: '0' };
  try {
    await runOk(BUILD_SCRIPT, [], { env, timeoutMs: BUILD_TIMEOUT_MS });
    // The next version from the same staged program: what an upgrade installs.
    await runOk(BUILD_SCRIPT, [], { env: { ...env, UMBRA_REUSE_STAGE: '1', UMBRA_VERSION: nextVersion }, timeoutMs: BUILD_TIMEOUT_MS });
  } catch (err) {
    buildError = err as Error;
  }
});

test.after.always(() => {
  for (const child of daemons) if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
  for (const root of roots) removeRoot(root);
  if (!prebuiltDir) rmSync(outDir, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

function assertBuilt(): void {
  if (buildError) throw buildError;
}

/** Runs the three commands the issue names from an installed root, with this machine's node. */
async function checkInstalledPrograms(t: import('ava').ExecutionContext, root: string): Promise<void> {
  const agentVersion = await runOk(path.join(root, 'usr/bin/umbra-agent'), ['--version']);
  t.is(agentVersion.trim(), version, 'umbra-agent --version prints the program version');
  const help = await runOk(path.join(root, 'usr/bin/umbractl'), ['--help']);
  t.regex(help, /umbractl .*\n[\s\S]*pki init/);
  t.regex((await runOk(path.join(root, 'usr/bin/umbra-coordinator'), ['--version'])).trim(), /^\d+\.\d+\.\d+/);

  // With the installed default config: parsed (no unknown key), but no certificates yet.
  const config = path.join(root, 'etc/umbra/agent.yaml');
  const first = await run(path.join(root, 'usr/bin/umbra-agent'), ['health', '--json', '--config', config]);
  t.not(first.code, 0, 'unhealthy: the agent is not running');
  const report = JSON.parse(first.stdout) as { healthy: boolean; problems: string[]; local_capabilities: { name: string; available: boolean }[] };
  t.false(report.healthy);
  t.true(report.problems.some((p) => p.includes('tls.ca')), report.problems.join('\n'));
  t.false(report.problems.some((p) => p.includes('unknown key')), report.problems.join('\n'));
  // The native addons load from the installed tree (libpcap through cap, rtnetlink through netlink).
  t.true(report.local_capabilities.some((c) => c.name === 'libpcap'));

  // Certificates from the installed umbractl, and every documented key switched on: the agent then
  // only complains that it is not running.
  const pki = mkdtempSync(path.join(root, 'tmp/pki-'));
  await runOk(path.join(root, 'usr/bin/umbractl'), ['pki', 'init', '--dir', pki]);
  await runOk(path.join(root, 'usr/bin/umbractl'), ['pki', 'issue', '--dir', pki, '--role', 'agent', '--name', 'pkgtest', '--ip', '127.0.0.1']);
  const uncommented = readFileSync(config, 'utf8')
    .split('\n')
    .map((line) => line.replace(/^#(?=(  )?[a-z_]+:( |$))/, ''))
    .join('\n')
    .replace('/etc/umbra/pki/ca.crt', `${pki}/ca.crt`)
    .replace('/etc/umbra/pki/agent.crt', `${pki}/agent-pkgtest.crt`)
    .replace('/etc/umbra/pki/agent.key', `${pki}/agent-pkgtest.key`)
    .replace(/^host_id: .*$/m, 'host_id: pkgtest')
    .replace(/^listen: .*$/m, 'listen: 127.0.0.1:1'); // nothing listens on port 1
  const fullConfig = path.join(root, 'tmp/agent-full.yaml');
  writeFileSync(fullConfig, uncommented);
  const second = await run(path.join(root, 'usr/bin/umbra-agent'), ['health', '--json', '--config', fullConfig]);
  t.not(second.code, 0);
  const report2 = JSON.parse(second.stdout) as { healthy: boolean; reachable: boolean; problems: string[] };
  t.false(report2.reachable);
  t.true(report2.problems.length > 0 && report2.problems.every((p) => p.includes('not reachable')), report2.problems.join('\n'));
}

osTest('the build produces both packages in both formats, named by version', (t) => {
  assertBuilt();
  for (const pkg of PACKAGES) {
    for (const file of [deb(pkg), rpmFile(pkg), deb(pkg, nextVersion), rpmFile(pkg, nextVersion)]) {
      t.true(existsSync(file), `${path.basename(file)} in ${readdirSync(outDir).join(' ')}`);
    }
  }
});

osTestConcurrent('lintian finds no errors in either .deb', async (t) => {
  assertBuilt();
  if (!which('lintian')) {
    t.log('lintian not installed: skipped the check');
    t.pass();
    return;
  }
  t.timeout(10 * 60_000);
  // One lintian run for both: its start-up (profiles, data) costs more than a package.
  const r = await run('lintian', ['--fail-on', 'error', ...PACKAGES.map((pkg) => deb(pkg))], { timeoutMs: 10 * 60_000 });
  const errors = r.stdout.split('\n').filter((l) => l.startsWith('E:'));
  t.deepEqual(errors, [], r.stdout);
  t.is(r.code, 0, r.stderr);
  t.log(`lintian: ${r.stdout.split('\n').filter((l) => l.startsWith('W:')).length} warnings (no-manual-page, script-not-executable and privacy-breach-generic in third-party modules)`);
});

osTestConcurrent('the .deb metadata declares dependencies and conffiles, and the two packages share no file', async (t) => {
  assertBuilt();
  const field = async (pkg: string, name: string): Promise<string> => (await runOk('dpkg-deb', ['-f', deb(pkg), name])).trim();
  t.is(await field('umbra-agent', 'Version'), version);
  t.is(await field('umbra-agent', 'Architecture'), 'amd64');
  const agentDepends = await field('umbra-agent', 'Depends');
  for (const dep of ['nodejs (>= 20)', 'libpcap0.8', 'iproute2', 'libc6']) t.true(agentDepends.includes(dep), agentDepends);
  t.regex(await field('umbra-agent', 'Recommends'), /qemu-system-x86, pciutils/);
  t.regex(await field('umbra-coordinator', 'Depends'), /nodejs \(>= 20\)/);

  const files = new Map<string, string[]>();
  for (const pkg of PACKAGES) {
    const dir = mkdtempSync(path.join(scratch, 'ctrl-'));
    await runOk('dpkg-deb', ['-e', deb(pkg), dir]);
    const conffiles = readFileSync(path.join(dir, 'conffiles'), 'utf8').trim().split('\n');
    t.deepEqual(conffiles, pkg === 'umbra-agent' ? ['/etc/umbra/agent.yaml'] : ['/etc/umbra/coordinator.yaml', '/etc/umbra/umbractl.yaml']);
    const listing = await runOk('dpkg-deb', ['-c', deb(pkg)]);
    files.set(pkg, listing.split('\n').filter((l) => l.startsWith('-') || l.startsWith('l')).map((l) => l.split(/\s+/)[5]));
  }
  const agentFiles = new Set(files.get('umbra-agent'));
  const shared = (files.get('umbra-coordinator') ?? []).filter((f) => agentFiles.has(f));
  t.deepEqual(shared, []);
  t.true(agentFiles.has('./lib/systemd/system/umbra-agent.service'));
  t.true(agentFiles.has('./usr/bin/umbra-agent'));
  t.true(files.get('umbra-coordinator')?.includes('./usr/bin/umbractl'));
  // Native addons for this machine only.
  t.false([...agentFiles].some((f) => /prebuilds\/(?!linux-x64\/)/.test(f)), 'no prebuilt addons for other systems');
  t.true([...agentFiles].some((f) => f.endsWith('cap/build/Release/cap.node')));
});

osTestConcurrent('the systemd units verify and the coordinator sandbox rates OK', async (t) => {
  assertBuilt();
  if (!which('systemd-analyze')) {
    t.log('systemd-analyze not installed: skipped the check');
    t.pass();
    return;
  }
  const unpacked = mkdtempSync(path.join(scratch, 'units-'));
  const units = mkdtempSync(path.join(scratch, 'units-check-'));
  const exposure: Record<string, number> = {};
  for (const pkg of PACKAGES) {
    await runOk('dpkg-deb', ['-x', deb(pkg), unpacked]);
    // ExecStart must name an existing executable: point it into the unpacked tree.
    const unit = readFileSync(path.join(unpacked, 'lib/systemd/system', `${pkg}.service`), 'utf8').replaceAll('/usr/bin/', `${unpacked}/usr/bin/`);
    writeFileSync(path.join(units, `${pkg}.service`), unit);
    const verify = await run('systemd-analyze', ['verify', path.join(units, `${pkg}.service`)]);
    t.is(verify.code, 0, verify.stderr);
    t.is(verify.stderr.trim(), '', `${pkg}: ${verify.stderr}`);
    const security = await run('systemd-analyze', ['security', '--offline=true', path.join(units, `${pkg}.service`)]);
    const m = /Overall exposure level for \S+: ([\d.]+)/.exec(security.stdout);
    t.truthy(m, security.stdout + security.stderr);
    exposure[pkg] = Number(m?.[1]);
  }
  t.log(`systemd-analyze security exposure: ${JSON.stringify(exposure)}`);
  t.true(exposure['umbra-coordinator'] <= 2.0, 'coordinator: OK level');
  // The agent needs network administration, ptrace and raw sockets; it must stay below EXPOSED.
  t.true(exposure['umbra-agent'] < 7.0);
});

osTestConcurrent('the .deb installs with dpkg --root; the installed programs run; remove keeps state, purge deletes it', async (t) => {
  assertBuilt();
  const root = newRoot('dpkg');
  await runOk('dpkg', ['--root', root, '--force-depends', '-i', deb('umbra-agent'), deb('umbra-coordinator')]);
  const status = await runOk('dpkg-query', ['--admindir', path.join(root, 'var/lib/dpkg'), '-W', '-f', '${Package} ${Version} ${Status}\n']);
  t.regex(status, new RegExp(`umbra-agent ${version} install ok installed`));
  t.regex(status, new RegExp(`umbra-coordinator ${version} install ok installed`));
  // postinst: the coordinator's system user and the state directories.
  t.regex(readFileSync(path.join(root, 'etc/passwd'), 'utf8'), /^umbra:x:\d+:\d+:Umbra coordinator:\/var\/lib\/umbra\/coordinator:\/usr\/sbin\/nologin$/m);
  t.is(statSync(path.join(root, 'var/lib/umbra/agent')).mode & 0o777, 0o700);
  t.is(statSync(path.join(root, 'var/lib/umbra/coordinator')).mode & 0o777, 0o750);

  await checkInstalledPrograms(t, root);

  // Configuring again (dpkg-reconfigure, an interrupted run) must not fail: the scripts are idempotent.
  await runOk('dpkg', ['--root', root, '--force-depends', '-i', deb('umbra-coordinator')]);
  t.is((readFileSync(path.join(root, 'etc/passwd'), 'utf8').match(/^umbra:/gm) ?? []).length, 1);

  writeFileSync(path.join(root, 'var/lib/umbra/agent/state.bin'), 'kept');
  await runOk('dpkg', ['--root', root, '-r', 'umbra-agent']);
  t.true(existsSync(path.join(root, 'var/lib/umbra/agent/state.bin')), 'remove keeps the state');
  t.true(existsSync(path.join(root, 'etc/umbra/agent.yaml')), 'remove keeps the config');
  t.false(existsSync(path.join(root, 'usr/bin/umbra-agent')));
  await runOk('dpkg', ['--root', root, '-P', 'umbra-agent']);
  t.false(existsSync(path.join(root, 'var/lib/umbra/agent')), 'purge deletes the state');
  t.false(existsSync(path.join(root, 'etc/umbra/agent.yaml')), 'purge deletes the config');
  t.true(existsSync(path.join(root, 'etc/umbra/coordinator.yaml')), "the other package's files stay");
});

osTestConcurrent('the .deb upgrade keeps the state file and the edited config', async (t) => {
  assertBuilt();
  const root = newRoot('dpkg');
  const dpkg = (...args: string[]): Promise<string> => runOk('dpkg', ['--root', root, '--force-depends', ...args]);
  await dpkg('-i', deb('umbra-agent'), deb('umbra-coordinator'));
  appendFileSync(path.join(root, 'etc/umbra/agent.yaml'), '\nfailure_domain: rack-7\n');
  appendFileSync(path.join(root, 'etc/umbra/coordinator.yaml'), '\nheartbeat_interval_ms: 2000\n');
  writeFileSync(path.join(root, 'var/lib/umbra/agent/state.bin'), 'agent state');
  writeFileSync(path.join(root, 'var/lib/umbra/coordinator/state.bin'), 'coordinator state');

  // No --force-conf*: an unchanged packaged conffile must not even ask about the local edit.
  await dpkg('-i', deb('umbra-agent', nextVersion), deb('umbra-coordinator', nextVersion));
  const status = await runOk('dpkg-query', ['--admindir', path.join(root, 'var/lib/dpkg'), '-W', '-f', '${Package} ${Version}\n']);
  t.regex(status, new RegExp(`umbra-agent ${nextVersion.replaceAll('.', '\\.')}`));
  t.regex(status, new RegExp(`umbra-coordinator ${nextVersion.replaceAll('.', '\\.')}`));
  t.regex(readFileSync(path.join(root, 'etc/umbra/agent.yaml'), 'utf8'), /\nfailure_domain: rack-7\n/);
  t.regex(readFileSync(path.join(root, 'etc/umbra/coordinator.yaml'), 'utf8'), /\nheartbeat_interval_ms: 2000\n/);
  t.false(existsSync(path.join(root, 'etc/umbra/agent.yaml.dpkg-new')));
  t.is(readFileSync(path.join(root, 'var/lib/umbra/agent/state.bin'), 'utf8'), 'agent state');
  t.is(readFileSync(path.join(root, 'var/lib/umbra/coordinator/state.bin'), 'utf8'), 'coordinator state');
  t.is((await runOk(path.join(root, 'usr/bin/umbra-agent'), ['--version'])).trim(), version);
  // The edited config is still one the upgraded agent accepts.
  const health = await run(path.join(root, 'usr/bin/umbra-agent'), ['health', '--json', '--config', path.join(root, 'etc/umbra/agent.yaml')]);
  t.false((JSON.parse(health.stdout) as { problems: string[] }).problems.some((p) => p.includes('failure_domain')));
});

osTestConcurrent('the .rpm metadata declares requirements and config files', async (t) => {
  assertBuilt();
  const info = await runOk('rpm', ['-qip', rpmFile('umbra-agent')]);
  t.regex(info, new RegExp(`Version\\s*: ${version.replaceAll('.', '\\.')}`));
  t.regex(info, /License\s*: Apache-2\.0/);
  t.regex(info, /Architecture: x86_64/);
  const requires = await runOk('rpm', ['-qp', '--requires', rpmFile('umbra-agent')]);
  for (const dep of ['nodejs >= 1:20', 'libpcap', 'iproute']) t.true(requires.split('\n').includes(dep), requires);
  // The libpcap soname cap.node was linked against on the build machine.
  t.regex(requires, /^libpcap\.so\.[\d.]+\(\)\(64bit\)$/m);
  const rpmRecommends = await runOk('rpm', ['-qp', '--recommends', rpmFile('umbra-agent')]);
  t.regex(rpmRecommends, /qemu/);
  t.regex(rpmRecommends, /pciutils/);
  t.true((await runOk('rpm', ['-qp', '--provides', rpmFile('umbra-agent')])).split('\n').every((p) => !p.includes('.so')), 'the private addons are not offered as libraries');
  // %config(noreplace): flags "cn".
  const flags = await runOk('rpm', ['-qp', '--qf', '[%{FILENAMES} %{FILEFLAGS:fflags}\n]', rpmFile('umbra-coordinator')]);
  t.regex(flags, /^\/etc\/umbra\/coordinator\.yaml cn$/m);
  t.regex(flags, /^\/etc\/umbra\/umbractl\.yaml cn$/m);
  t.deepEqual((await runOk('rpm', ['-qpc', rpmFile('umbra-agent')])).trim().split('\n'), ['/etc/umbra/agent.yaml']);
  t.regex(await runOk('rpm', ['-qp', '--scripts', rpmFile('umbra-coordinator')]), /useradd --system/);
});

osTestConcurrent('the .rpm installs with rpm --root and the installed programs run; upgrade keeps state and the edited config', async (t) => {
  assertBuilt();
  const root = newRoot('rpm');
  const rpm = (...args: string[]): Promise<string> => runOk('rpm', ['--root', root, '--nodeps', ...args]);
  await rpm('-i', rpmFile('umbra-agent'), rpmFile('umbra-coordinator'));
  t.regex(await runOk('rpm', ['--root', root, '-q', 'umbra-agent', 'umbra-coordinator']), new RegExp(`umbra-agent-${version.replaceAll('.', '\\.')}-1`));
  t.regex(readFileSync(path.join(root, 'etc/passwd'), 'utf8'), /^umbra:x:\d+:\d+:Umbra coordinator:/m);
  t.true(statSync(path.join(root, 'usr/lib/systemd/system/umbra-coordinator.service')).isFile());

  await checkInstalledPrograms(t, root);

  appendFileSync(path.join(root, 'etc/umbra/agent.yaml'), '\nfailure_domain: rack-7\n');
  writeFileSync(path.join(root, 'var/lib/umbra/agent/state.bin'), 'agent state');
  writeFileSync(path.join(root, 'var/lib/umbra/coordinator/state.bin'), 'coordinator state');
  await rpm('-U', rpmFile('umbra-agent', nextVersion), rpmFile('umbra-coordinator', nextVersion));
  t.regex(await runOk('rpm', ['--root', root, '-q', 'umbra-agent']), new RegExp(`umbra-agent-${nextVersion.replaceAll('.', '\\.')}-1`));
  t.regex(readFileSync(path.join(root, 'etc/umbra/agent.yaml'), 'utf8'), /\nfailure_domain: rack-7\n/);
  t.is(readFileSync(path.join(root, 'var/lib/umbra/agent/state.bin'), 'utf8'), 'agent state');
  t.is(readFileSync(path.join(root, 'var/lib/umbra/coordinator/state.bin'), 'utf8'), 'coordinator state');
  t.is((readFileSync(path.join(root, 'etc/passwd'), 'utf8').match(/^umbra:/gm) ?? []).length, 1, '%pre is idempotent');

  // Erase keeps the state (RPM has no purge) and saves nothing it need not: the edited config goes to .rpmsave.
  await rpm('-e', 'umbra-agent');
  t.is(readFileSync(path.join(root, 'var/lib/umbra/agent/state.bin'), 'utf8'), 'agent state');
  t.true(existsSync(path.join(root, 'etc/umbra/agent.yaml.rpmsave')));
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function startDaemon(cmd: string, args: string[], log: string[]): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => log.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => log.push(d.toString()));
  daemons.push(child);
  return child;
}

async function stopDaemon(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(child.pid, 'SIGTERM');
  await exited;
}

/** The unit's value of KEY (first occurrence). */
function unitValue(unitFile: string, key: string): string {
  const m = new RegExp(`^${key}=(.*)$`, 'm').exec(readFileSync(unitFile, 'utf8'));
  if (!m) throw new Error(`${key} missing from ${unitFile}`);
  return m[1].trim();
}

osTestConcurrent('the installed daemons run under the units\' privileges: coordinator as umbra without capabilities, agent with its capability set', async (t) => {
  assertBuilt();
  if (!which('setpriv')) {
    t.log('setpriv (util-linux) not installed: skipped');
    t.pass();
    return;
  }
  t.timeout(5 * 60_000);
  const root = newRoot('dpkg');
  chmodSync(root, 0o755); // the umbra user must reach the tree, as it reaches / on a real host
  await runOk('dpkg', ['--root', root, '--force-depends', '-i', deb('umbra-agent'), deb('umbra-coordinator')]);
  const bin = (name: string): string => path.join(root, 'usr/bin', name);
  const passwd = /^umbra:x:(\d+):(\d+):/m.exec(readFileSync(path.join(root, 'etc/passwd'), 'utf8'));
  t.truthy(passwd);
  const [uid, gid] = [Number(passwd?.[1]), Number(passwd?.[2])];

  // Certificates with the installed umbractl, in the packaged pki directory; the coordinator's key
  // made readable by its group as the README tells operators.
  const pki = path.join(root, 'etc/umbra/pki');
  t.is(statSync(pki).gid, gid, 'postinst gave the umbra group access to /etc/umbra/pki');
  await runOk(bin('umbractl'), ['pki', 'init', '--dir', pki]);
  await runOk(bin('umbractl'), ['pki', 'issue', '--dir', pki, '--role', 'coordinator', '--name', 'coordinator', '--ip', '127.0.0.1']);
  await runOk(bin('umbractl'), ['pki', 'issue', '--dir', pki, '--role', 'agent', '--name', 'pkgtest', '--ip', '127.0.0.1']);
  await runOk(bin('umbractl'), ['pki', 'issue', '--dir', pki, '--role', 'operator', '--name', 'admin']);
  chownSync(path.join(pki, 'coordinator.key'), 0, gid);
  chmodSync(path.join(pki, 'coordinator.key'), 0o640);

  const [coordPort, agentPort] = [await freePort(), await freePort()];
  const tls = (cert: string): string => `tls: {ca: ${pki}/ca.crt, cert: ${pki}/${cert}.crt, key: ${pki}/${cert}.key}\n`;
  const coordConfig = path.join(root, 'etc/umbra/coordinator.yaml');
  const agentConfig = path.join(root, 'etc/umbra/agent.yaml');
  const ctlConfig = path.join(root, 'etc/umbra/umbractl.yaml');
  appendFileSync(coordConfig, `listen: 127.0.0.1:${coordPort}\nmetrics_listen: ''\ndata_dir: ${root}/var/lib/umbra/coordinator\n${tls('coordinator')}`);
  appendFileSync(agentConfig, `host_id: pkgtest\nlisten: 127.0.0.1:${agentPort}\ncoordinator: 127.0.0.1:${coordPort}\nmetrics_listen: ''\ndata_dir: ${root}/var/lib/umbra/agent\n${tls('agent-pkgtest')}`);
  appendFileSync(ctlConfig, `coordinator: 127.0.0.1:${coordPort}\n${tls('operator-admin')}`);

  // What the units grant: User=umbra, CapabilityBoundingSet= (none), NoNewPrivileges for the
  // coordinator; root bounded to the listed capabilities for the agent.
  const coordUnit = path.join(root, 'lib/systemd/system/umbra-coordinator.service');
  const agentUnit = path.join(root, 'lib/systemd/system/umbra-agent.service');
  t.is(unitValue(coordUnit, 'User'), 'umbra');
  t.is(unitValue(coordUnit, 'CapabilityBoundingSet'), '');
  const agentCaps = unitValue(agentUnit, 'CapabilityBoundingSet').split(/\s+/).map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`);
  const logs: string[] = [];
  const coordinator = startDaemon('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--clear-groups', '--no-new-privs', '--inh-caps=-all', '--bounding-set=-all', bin('umbra-coordinator'), 'run', '--config', coordConfig], logs);
  const agent = startDaemon('setpriv', ['--no-new-privs', `--bounding-set=-all,${agentCaps.join(',')}`, bin('umbra-agent'), 'run', '--config', agentConfig], logs);
  try {
    const report = await waitFor('the installed agent reports healthy', async () => {
      const r = await run(bin('umbra-agent'), ['health', '--json', '--config', agentConfig]);
      return r.code === 0 ? (JSON.parse(r.stdout) as { healthy: boolean; report: { host_id: string } }) : undefined;
    }, 60_000, 500).catch((err: Error) => { throw new Error(`${err.message}\n${logs.join('')}`); });
    t.true(report.healthy);
    t.is(report.report.host_id, 'pkgtest');
    // The launchers exec node with the daemon's flags (shared/daemon-node-flags.ts): same PID.
    for (const [name, child] of [['coordinator', coordinator], ['agent', agent]] as const) {
      const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
      for (const flag of daemonNodeFlags(name)) t.true(cmdline.includes(flag), `the ${name} runs with ${flag}: ${cmdline.join(' ')}`);
    }
    const hosts = await runOk(bin('umbractl'), ['hosts', '--json', '--config', ctlConfig]);
    t.regex(hosts, /pkgtest/);
    // The coordinator's store belongs to the umbra user.
    t.true(readdirSync(path.join(root, 'var/lib/umbra/coordinator')).length > 0);
    t.is(statSync(path.join(root, 'var/lib/umbra/coordinator')).uid, uid);
  } finally {
    await stopDaemon(agent);
    await stopDaemon(coordinator);
  }
});
