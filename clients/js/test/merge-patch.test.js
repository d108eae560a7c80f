import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { mergePatch } from '../src/merge-patch.js';

describe('mergePatch (RFC 7396)', () => {
  // RFC 7396, Appendix A: every example, as [target, patch, result].
  const examples = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [
      ['a', 'b'],
      ['c', 'd'],
      ['c', 'd'],
    ],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  examples.forEach(([target, patch, result], i) => {
    test(`Appendix A example ${i + 1}: ${JSON.stringify(target)} + ${JSON.stringify(patch)}`, () => {
      assert.deepEqual(mergePatch(target, patch), result);
    });
  });

  test('leaves its inputs as they were', () => {
    const target = { name: 'Kite', tags: { color: 'red', size: 'L' } };
    const patch = { tags: { size: null, color: 'blue' } };
    const before = structuredClone([target, patch]);
    const result = mergePatch(target, patch);
    assert.deepEqual([target, patch], before);
    assert.deepEqual(result, { name: 'Kite', tags: { color: 'blue' } });
    assert.notEqual(result, target);
  });

  test('a full DTO over the item it replaces gives the DTO', () => {
    const item = { id: 'g1', name: 'Kite', price: 10 };
    const dto = { id: 'g1', name: 'Big kite', price: 12 };
    assert.deepEqual(mergePatch(item, dto), dto);
  });

  test('a __proto__ member is data, never the prototype', () => {
    const patch = JSON.parse('{"__proto__": {"polluted": true}, "name": "x"}');
    const result = mergePatch({}, patch);
    assert.equal(Object.getPrototypeOf(result), Object.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(result, '__proto__')?.value, { polluted: true });
    assert.equal({}.polluted, undefined);
  });
});
