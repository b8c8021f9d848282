// Builds the Atrium console into --outdir DIR (default web/dist):
//   index.html                 references the hashed bundle; no inline script (the CSP forbids it)
//   assets/app-[hash].js(.map) one minified ES2020 bundle (esbuild), sourcemap in a file
//   assets/app-[hash].css
//   <file>.gz                  next to every text file (zlib level 9), served by atriumd to
//                              clients that accept gzip
// Nothing is fetched at build or run time: every library comes from node_modules, locked
// by package-lock.json. Usage: node web/build.mjs [--outdir DIR]
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const at = args.indexOf('--outdir');
const outdir = path.resolve(at >= 0 && args[at + 1] ? args[at + 1] : path.join(here, 'dist'));

// A fresh assets dir each time, so stale hashed files do not pile up.
fs.rmSync(path.join(outdir, 'assets'), { recursive: true, force: true });
fs.mkdirSync(path.join(outdir, 'assets'), { recursive: true });

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: { app: 'src/main.js' },
  bundle: true,
  minify: true,
  sourcemap: 'linked',
  target: 'es2020',
  format: 'esm',
  outdir: path.join(outdir, 'assets'),
  entryNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
});

const outputs = Object.keys(result.metafile.outputs).map((p) => path.resolve(here, p));
const js = outputs.find((p) => /app-[^/]*\.js$/.test(p));
const css = outputs.find((p) => /app-[^/]*\.css$/.test(p));
if (!js) throw new Error('esbuild produced no app bundle');
// The CSP has no 'unsafe-eval': refuse a bundle that would need it.
const code = fs.readFileSync(js, 'utf8');
if (/\beval\(|new Function\(/.test(code)) throw new Error('the bundle calls eval or new Function');

const rel = (p) => path.relative(outdir, p).split(path.sep).join('/');
const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Atrium</title>
<link rel="icon" href="data:,">
${css ? `<link rel="stylesheet" href="/${rel(css)}">\n` : ''}<script type="module" src="/${rel(js)}"></script>
</head>
<body>
<div id="app"><p class="loading">Loading Atrium…</p></div>
<noscript>The Atrium console needs JavaScript.</noscript>
</body>
</html>
`;
fs.writeFileSync(path.join(outdir, 'index.html'), html);

// Pre-compressed copies of every text file.
const gz = [];
const walk = (dir) => {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (/\.(html|js|css|map|txt|svg|json)$/.test(e.name)) {
      const data = zlib.gzipSync(fs.readFileSync(p), { level: 9 });
      fs.writeFileSync(`${p}.gz`, data);
      gz.push([rel(p), data.length]);
    }
  }
};
walk(outdir);
const jsGz = gz.find(([p]) => p === rel(js))?.[1] ?? 0;
const cssGz = css ? gz.find(([p]) => p === rel(css))?.[1] ?? 0 : 0;
console.log(`atrium console: ${rel(js)} ${fs.statSync(js).size} B (${jsGz} B gzipped)` +
  (css ? `, ${rel(css)} ${fs.statSync(css).size} B (${cssGz} B gzipped)` : '') + ` -> ${outdir}`);
