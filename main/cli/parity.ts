// `unclip parity`: our pipeline vs diffusers on a fixture's injected noise; exit 1 when a stage is over its limit:
// the tolerance, or twice the reference's own float32-vs-float64 floor where the fixture records one.
import { join } from 'node:path';
import { Pack } from '../engine/pack.ts';
import { REPO_ROOT } from '../engine/packs.ts';
import { loadFixture, PARITY_TOLERANCE, runParity } from '../engine/parity.ts';
import { backend, num, parseFlags, threads, UsageError } from './args.ts';

export async function parityCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags({
    args: argv,
    options: {
      pack: { type: 'string' },
      fixture: { type: 'string' },
      tolerance: { type: 'string' },
      backend: { type: 'string' },
      threads: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const tol = num('tolerance', values.tolerance) ?? PARITY_TOLERANCE;
  if (!(tol > 0)) throw new UsageError('--tolerance: must be > 0');
  const be = backend(values.backend);
  const th = threads(values.threads);
  const fixture = await loadFixture(
    values.fixture ?? join(REPO_ROOT, 'test', 'fixtures', 'tiny-fixture', 'fixture.json'),
  );
  const pack = await Pack.load(values.pack ?? fixture.packDir, {
    ...(be ? { backend: be } : {}),
    ...(th ? { threads: th } : {}),
  });
  try {
    const reports = await runParity(pack, fixture, 1, tol);
    const ok = reports.every((r) => r.ok);
    if (values.json) {
      console.log(JSON.stringify({ tolerance: tol, ok, cases: reports }, null, 2));
    } else {
      console.log(`parity: ${fixture.file}\n  pack ${pack.dir}, tolerance ${tol} (max abs error)`);
      const floors = reports.some((r) => r.stages.some((s) => s.floor !== undefined));
      console.log(
        floors
          ? `  a stage passes within the tolerance or within 2 × its floor (the reference's float32-vs-float64 discrepancy)`
          : `  (this fixture records no float32-vs-float64 floor: rebuild it with the toolchain to get one)`,
      );
      for (const r of reports) {
        console.log(`  ${r.name} (${r.kind})  tokens ${r.tokensMatch ? 'identical' : 'DIFFER'}`);
        for (const s of r.stages) {
          const flag = s.ok ? 'ok  ' : 'FAIL';
          const floor = s.floor !== undefined ? `floor ${s.floor.toExponential(2)}` : 'floor –';
          const extra =
            s.excluded !== undefined
              ? `   (all elements: ${s.rawMaxAbsError!.toExponential(2)}; ${s.excluded} ill-conditioned t=999 element(s) left out)`
              : '';
          console.log(
            `    ${flag} ${s.stage.padEnd(34)} ${s.maxAbsError.toExponential(2)}   ${floor.padEnd(14)} limit ${s.limit.toExponential(2)}${extra}`,
          );
        }
      }
      console.log(ok ? 'parity: ok' : 'parity: FAILED');
    }
    return ok ? 0 : 1;
  } finally {
    await pack.release();
  }
}
