// The check of event-schemas.mjs can fail: CTest `api: event schemas refuse altered
// golden files`. Copies tests/golden to a temp dir, alters files there (a required field
// removed, a field of the wrong type, an orphan file, a missing one), runs the check on
// each copy and requires exit 1 with the altered file named. The repository is not touched.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const golden = resolve(here, '../golden');

const cases = [
  {
    name: 'a required field removed',
    file: 'job.submitted.v2.json',
    alter: (d) => { delete d.max_attempts; return d; },
    expect: /job\.submitted\.v2\.json does not validate.*max_attempts/,
  },
  {
    name: 'a field of the wrong type',
    file: 'project.renamed.v1.json',
    alter: (d) => { d.name = 7; return d; },
    expect: /project\.renamed\.v1\.json does not validate.*\/name must be string/,
  },
  {
    name: 'a value outside its enum',
    file: 'container.declared.v2.json',
    alter: (d) => { d.restart = 'sometimes'; return d; },
    expect: /container\.declared\.v2\.json does not validate.*\/restart must be equal to one of the allowed values/,
  },
  {
    name: 'a golden file without a schema',
    file: 'project.renamed.v9.json',
    create: { name: 'x' },
    expect: /golden file project\.renamed\.v9\.json has no schema/,
  },
  {
    name: 'a schema without its golden file',
    file: 'job.queued.v1.json',
    remove: true,
    expect: /schema job\.queued\.v1\.schema\.json has no golden file/,
  },
];

let failed = 0;
for (const c of cases) {
  const dir = mkdtempSync(join(tmpdir(), 'atrium-golden-'));
  try {
    cpSync(golden, dir, { recursive: true });
    const path = join(dir, c.file);
    if (c.remove) unlinkSync(path);
    else if (c.create) writeFileSync(path, JSON.stringify(c.create, null, 2) + '\n');
    else writeFileSync(path, JSON.stringify(c.alter(JSON.parse(readFileSync(path, 'utf8'))), null, 2) + '\n');
    const run = spawnSync(process.execPath, [join(here, 'event-schemas.mjs'), '--golden', dir], { encoding: 'utf8' });
    const out = run.stdout + run.stderr;
    const ok = run.status === 1 && c.expect.test(out);
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${c.name}: exit ${run.status}`);
    if (!ok) {
      ++failed;
      console.error(out);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
console.log(`${cases.length - failed} of ${cases.length} altered copies refused`);
process.exit(failed === 0 ? 0 : 1);
