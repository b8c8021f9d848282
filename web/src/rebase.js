// Re-applying unsent edits on top of a cell that moved on without us (editor.js `reload`):
// when the server answers 410 gone (our version is older than the updates it keeps) or
// refuses our changes, the page takes the server's text and rebases its unconfirmed changes
// onto it. The remote side is recovered by diffing the text our changes were made on with
// the server's text (@codemirror/merge's `diff`); our changes are then mapped over that
// diff (ChangeSet.map), so what others did is kept and what we typed is inserted where it
// belongs. No DOM: node tests it directly (web/test).
import { ChangeSet } from '@codemirror/state';
import { diff } from '@codemirror/merge';

const isHigh = (s, i) => i >= 0 && i < s.length && s.charCodeAt(i) >= 0xd800 && s.charCodeAt(i) <= 0xdbff;
const isLow = (s, i) => i >= 0 && i < s.length && s.charCodeAt(i) >= 0xdc00 && s.charCodeAt(i) <= 0xdfff;

/**
 * The changes that turn `a` into `b`, as a ChangeSet over `a` (positions in UTF-16 code
 * units, as CodeMirror counts). No change starts or ends between the two halves of a
 * surrogate pair (atriumd refuses such a change set with 400): a range that would is
 * widened by one unit over the unchanged, identical neighbour.
 */
export function diffChanges(a, b) {
  const ranges = [];
  for (const c of diff(a, b)) {
    let { fromA, toA, fromB, toB } = c;
    if (isHigh(a, fromA - 1) && isLow(a, fromA)) (fromA--, fromB--);
    if (isLow(a, toA) && isHigh(a, toA - 1)) (toA++, toB++);
    // The unchanged text around a change is the same in both: check `b` as well.
    if (isHigh(b, fromB - 1) && isLow(b, fromB)) (fromA--, fromB--);
    if (isLow(b, toB) && isHigh(b, toB - 1)) (toA++, toB++);
    const last = ranges[ranges.length - 1];
    if (last && fromA <= last.toA) {
      last.toA = Math.max(last.toA, toA);
      last.toB = Math.max(last.toB, toB);
    } else {
      ranges.push({ fromA, toA, fromB, toB });
    }
  }
  return ChangeSet.of(
    ranges.map((r) => ({ from: r.fromA, to: r.toA, insert: b.slice(r.fromB, r.toB) })),
    a.length,
  );
}

/**
 * Rebases `local` (a ChangeSet over `base`, the text our unconfirmed changes were made on)
 * onto `theirs` (the server's current text, which came from `base` by changes we never
 * saw). Returns a ChangeSet over `theirs` that inserts what we typed and deletes what we
 * deleted, where the others left it; remote changes are kept (an insertion of ours inside a
 * range someone else replaced lands at that range's edge).
 */
export function rebaseOnto(base, local, theirs) {
  return local.map(diffChanges(base, theirs));
}
