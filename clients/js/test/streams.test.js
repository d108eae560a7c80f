import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { TopicStream, makeGap } from '../src/streams.js';

const T = 'gift-list:1';
const ev = (seq) => ({ topic: T, seq });
const seqs = ({ events }) => events.map((e) => e.seq);

/** A stream subscribed at (seq, epoch), on a first subscription. */
function live(seq = 0, epoch = 'e1') {
  const stream = new TopicStream(T);
  stream.subscribing({ resume: false });
  stream.subscribed(seq, epoch);
  return stream;
}

describe('TopicStream', () => {
  test('delivers events after the reported position in order', () => {
    const stream = live(3);
    assert.deepEqual(seqs(stream.receive(ev(4))), [4]);
    assert.deepEqual(seqs(stream.receive(ev(5))), [5]);
    assert.deepEqual(stream.position, { seq: 5, epoch: 'e1' });
  });

  test('never delivers the same seq twice, nor an older one', () => {
    const stream = live(0);
    stream.receive(ev(1));
    stream.receive(ev(2));
    assert.deepEqual(stream.receive(ev(2)), { events: [], gaps: [] });
    assert.deepEqual(stream.receive(ev(1)), { events: [], gaps: [] });
  });

  test('a jump in seq is delivered and reported as a gap', () => {
    const stream = live(5);
    const judged = stream.receive(ev(9));
    assert.deepEqual(seqs(judged), [9]);
    assert.deepEqual(judged.gaps, [makeGap(T, 6, 8, 'e1')]);
    assert.equal(judged.gaps[0].count, 3);
  });

  test('holds events until SUBSCRIBED; those are new even at or below its position', () => {
    const stream = new TopicStream(T);
    stream.subscribing({ resume: false });
    assert.equal(stream.awaiting, true);
    assert.deepEqual(stream.receive(ev(7)), { events: [], gaps: [] });
    stream.receive(ev(8));
    const judged = stream.subscribed(8, 'e1');
    assert.deepEqual(seqs(judged), [7, 8]);
    assert.deepEqual(judged.gaps, []);
    assert.equal(stream.awaiting, false);
  });

  test('a resumed subscription further on in the same epoch is a gap', () => {
    const stream = live(0);
    stream.receive(ev(1));
    stream.subscribing({ resume: true });
    const judged = stream.subscribed(3, 'e1');
    assert.deepEqual(judged.gaps, [makeGap(T, 2, 3, 'e1')]);
    assert.deepEqual(seqs(stream.receive(ev(4))), [4]);
    assert.deepEqual(stream.receive(ev(4)).events, []);
  });

  test('a resumed subscription where it left off is no gap', () => {
    const stream = live(0);
    stream.receive(ev(1));
    stream.subscribing({ resume: true });
    assert.deepEqual(stream.subscribed(1, 'e1').gaps, []);
    assert.deepEqual(stream.position, { seq: 1, epoch: 'e1' });
  });

  test('a new epoch on resume: the history was lost', () => {
    const stream = live(0, 'old');
    stream.receive(ev(1));
    stream.receive(ev(2));
    stream.subscribing({ resume: true });
    const judged = stream.subscribed(0, 'new');
    assert.deepEqual(judged.gaps, [makeGap(T, 1, 0, 'new', true)]);
    assert.equal(judged.gaps[0].count, 0);
    // seq 1 again, but of the new epoch: a new event
    assert.deepEqual(seqs(stream.receive(ev(1))), [1]);
    assert.deepEqual(stream.position, { seq: 1, epoch: 'new' });
  });

  test('a new epoch that already moved on counts what was missed in it', () => {
    const stream = live(4, 'old');
    stream.subscribing({ resume: true });
    assert.deepEqual(stream.subscribed(2, 'new').gaps, [makeGap(T, 1, 2, 'new', true)]);
  });

  test('a first subscription is never a gap, whatever the position', () => {
    const stream = new TopicStream(T);
    stream.subscribing({ resume: true });
    assert.deepEqual(stream.subscribed(40, 'e1').gaps, []);
  });

  test('abandon releases held events, judged against the last position', () => {
    const stream = live(2);
    stream.subscribing({ resume: true });
    stream.receive(ev(2));
    stream.receive(ev(3));
    assert.deepEqual(seqs(stream.abandon()), [3]);
    assert.equal(stream.awaiting, false);
  });

  test('a second SUBSCRIBED of a live topic changes nothing', () => {
    const stream = live(2);
    assert.deepEqual(stream.subscribed(9, 'other'), { events: [], gaps: [] });
    assert.deepEqual(stream.position, { seq: 2, epoch: 'e1' });
  });

  test('events without seq are passed through', () => {
    const stream = live(2);
    assert.deepEqual(stream.receive({ topic: T }).events, [{ topic: T }]);
  });
});
