// web/src/rebase.js: unsent edits re-applied on top of a text that moved on without us.
import test from 'node:test';
import assert from 'node:assert/strict';
import { ChangeSet, Text } from '@codemirror/state';
import { diffChanges, rebaseOnto } from '../src/rebase.js';

const doc = (s) => Text.of(s.split('\n'));
const apply = (cs, s) => cs.apply(doc(s)).toString();
const cutsPair = (s, i) => i > 0 && i < s.length && /[\uD800-\uDBFF]/.test(s[i - 1]) && /[\uDC00-\uDFFF]/.test(s[i]);

test('diffChanges turns a into b and never cuts a surrogate pair', () => {
  const alphabet = ['a', 'b', 'é', 'ж', '😀', '😁', '🎉', '\n', ' '];
  let seed = 11;
  const rnd = (n) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
  const text = (n) => Array.from({ length: n }, () => alphabet[rnd(alphabet.length)]).join('');
  for (let i = 0; i < 3000; i++) {
    const a = text(rnd(14));
    const cps = Array.from(a);
    const cut = () => rnd(cps.length + 1);
    const b = rnd(3) === 0 ? text(rnd(14)) : cps.slice(0, cut()).join('') + text(rnd(4)) + cps.slice(cut()).join('');
    const cs = diffChanges(a, b);
    assert.equal(apply(cs, a), b, JSON.stringify({ a, b }));
    cs.iterChanges((fromA, toA, fromB, toB) => {
      assert.ok(![cutsPair(a, fromA), cutsPair(a, toA), cutsPair(b, fromB), cutsPair(b, toB)].some(Boolean), JSON.stringify({ a, b, fromA, toA }));
    });
  }
  // 😀 and 😁 share their high half: the change is the whole pair.
  assert.deepEqual(diffChanges('a😀b', 'a😁b').toJSON(), [1, [2, '😁'], 1]);
});

test('rebaseOnto keeps both what we typed and what others did meanwhile', () => {
  const base = 'select 1';
  // We typed a comment line at the top; others appended 600 x's (the case that once lost them).
  const local = ChangeSet.of({ from: 0, insert: '-- offline ✓ 😀\n' }, base.length);
  const theirs = 'select 1' + 'x'.repeat(600);
  assert.equal(apply(rebaseOnto(base, local, theirs), theirs), '-- offline ✓ 😀\nselect 1' + 'x'.repeat(600));
  // Several local changes composed, others edited in between them.
  const b2 = 'select a, b from t where c';
  const l2 = ChangeSet.of([{ from: 7, to: 8, insert: 'aa' }, { from: b2.length, insert: ' > 1' }], b2.length);
  const t2 = 'select a, b, z from t2 where c';
  assert.equal(apply(rebaseOnto(b2, l2, t2), t2), 'select aa, b, z from t2 where c > 1');
  // Nothing changed on the server: the rebase is our changes as they were.
  assert.equal(apply(rebaseOnto(b2, l2, b2), b2), apply(l2, b2));
});
