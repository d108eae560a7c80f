/**
 * Per-topic delivery state: positions, duplicates and gaps. No I/O.
 *
 * Every event of a topic carries `seq`, contiguous from 1 within the topic's
 * epoch; SUBSCRIBED reports where the topic stands, `(seq, epoch)`. From
 * those two facts a TopicStream decides, for each event, whether the
 * application gets it, and notices what it missed (the Python client's
 * `eventwire.client.streams` applies the same rules):
 *
 * - an event at or before the last delivered `seq` is a duplicate: dropped;
 * - an event after a jump in `seq` is delivered, and the jump is a gap;
 * - after a reconnect, SUBSCRIBED past the last delivered `seq` is a gap;
 *   a new epoch means the history itself was lost (`historyLost`).
 *
 * With recovery (a resubscription that sent `since`, the last delivered
 * position), SUBSCRIBED says per topic whether the gateway replays what was
 * missed: `recovered: true` keeps the last delivered `seq` (the replayed
 * events follow and are judged like live ones: none twice, no gap);
 * `recovered: false` (or a RECOVERY_FAILED) reports what was missed as a gap
 * with `historyLost`: refetch.
 *
 * Between a SUBSCRIBE and its SUBSCRIBED the epoch is unknown, so events are
 * held and judged once the position arrives. An event that arrives before
 * SUBSCRIBED was published after the gateway joined us to the topic, so it
 * is new even when its `seq` is at or below the reported position.
 *
 * @module
 */

/**
 * @typedef {{seq: number, epoch: string}} Position
 * @typedef {{readonly topic: string, readonly first: number, readonly last: number,
 *            readonly epoch: string | null, readonly historyLost: boolean,
 *            readonly count: number}} Gap
 * @typedef {{seq?: number}} Sequenced
 * @typedef {{events: Sequenced[], gaps: Gap[]}} Judged
 */

/**
 * Events of `topic` the client never received: `seq` `first` to `last`.
 * With `historyLost` the epoch changed: whatever followed the old position is
 * gone, and `first..last` are the new epoch's events that were missed (none
 * when `last < first`). Either way: refetch the resource.
 *
 * @param {string} topic
 * @param {number} first
 * @param {number} last
 * @param {string | null} epoch
 * @param {boolean} [historyLost]
 * @returns {Gap}
 */
export function makeGap(topic, first, last, epoch, historyLost = false) {
  const count = Math.max(0, last - first + 1);
  return Object.freeze({ topic, first, last, epoch, historyLost, count });
}

/** One topic's position on one client, and the rules above. */
export class TopicStream {
  /** @type {Sequenced[] | null} */
  #held = null;
  #resume = false;
  #lostTold = false;

  /** @param {string} topic */
  constructor(topic) {
    this.topic = topic;
    /** @type {string | null} */
    this.epoch = null;
    /** @type {number | null} */
    this.lastSeq = null;
  }

  /** The last position delivered to the application, once SUBSCRIBED told the epoch. */
  get position() {
    if (this.epoch === null || this.lastSeq === null) return null;
    return { seq: this.lastSeq, epoch: this.epoch };
  }

  /** Whether events are held until a SUBSCRIBED reports the position. */
  get awaiting() {
    return this.#held !== null;
  }

  /**
   * A SUBSCRIBE was sent; with `resume` (after a reconnect) missed events are gaps.
   * @param {{resume: boolean}} how
   */
  subscribing({ resume }) {
    this.#held ??= [];
    this.#resume ||= resume;
  }

  /**
   * SUBSCRIBED reported `(seq, epoch)`: set the baseline and release held events.
   * `recovered`: SUBSCRIBED's answer to this topic's `since` (undefined: none was sent).
   * @param {number} seq
   * @param {string} epoch
   * @param {boolean} [recovered]
   * @returns {Judged}
   */
  subscribed(seq, epoch, recovered) {
    if (this.#held === null) return { events: [], gaps: [] }; // already live
    const held = this.#held;
    this.#held = null;
    this.#lostTold = false;
    const resuming = this.#resume && this.epoch !== null && this.lastSeq !== null;
    if (recovered === true && resuming && epoch === this.epoch) {
      this.#resume = false;
      return this.#judgeAll(held); // the missed events follow: keep the last delivered seq
    }
    const first = held[0]?.seq;
    const baseline = Number.isSafeInteger(first) ? Math.min(seq, first - 1) : seq;
    const gaps = this.#rebase(baseline, epoch, recovered === false);
    this.#lostTold = recovered === false && gaps.length > 0;
    this.#resume = false;
    const judged = this.#judgeAll(held);
    return { events: judged.events, gaps: [...gaps, ...judged.gaps] };
  }

  /**
   * RECOVERY_FAILED at `(seq, epoch)`: the gap to report, unless SUBSCRIBED told it.
   * @param {number} seq
   * @param {string} epoch
   * @returns {Gap[]}
   */
  recoveryFailed(seq, epoch) {
    if (this.#lostTold) {
      this.#lostTold = false;
      return [];
    }
    const same = this.epoch === epoch && this.lastSeq !== null;
    if (same && this.lastSeq >= seq) return []; // nothing was missed up to there
    const last = same ? this.lastSeq : 0;
    const gap = makeGap(this.topic, last + 1, seq, epoch, true);
    this.epoch = epoch;
    this.lastSeq = Math.max(seq, last);
    return [gap];
  }

  /**
   * The SUBSCRIBE will never be answered (connection lost, or unsubscribed):
   * judge held events against what is known.
   * @returns {Judged}
   */
  abandon() {
    const held = this.#held ?? [];
    this.#held = null;
    return this.#judgeAll(held);
  }

  /**
   * One event of this topic arrived.
   * @param {Sequenced} event
   * @returns {Judged}
   */
  receive(event) {
    if (this.#held !== null) {
      this.#held.push(event);
      return { events: [], gaps: [] };
    }
    return this.#judgeAll([event]);
  }

  /** Move to the reported position; what lies between is a gap when resuming. */
  #rebase(baseline, epoch, lost = false) {
    const resuming = this.#resume && this.epoch !== null && this.lastSeq !== null;
    const gaps = [];
    if (resuming && epoch !== this.epoch) {
      gaps.push(makeGap(this.topic, 1, baseline, epoch, true));
    } else if (resuming && baseline > this.lastSeq) {
      gaps.push(makeGap(this.topic, this.lastSeq + 1, baseline, epoch, lost));
    }
    if (!resuming || gaps.length > 0) this.lastSeq = baseline;
    this.epoch = epoch;
    return gaps;
  }

  /** @param {Sequenced[]} events @returns {Judged} */
  #judgeAll(events) {
    const delivered = [];
    const gaps = [];
    for (const event of events) {
      const seq = event.seq;
      const last = this.lastSeq;
      if (seq === undefined) {
        delivered.push(event);
        continue;
      }
      if (last !== null && seq <= last) continue; // already delivered in this epoch: never twice
      if (last !== null && seq > last + 1) gaps.push(makeGap(this.topic, last + 1, seq - 1, this.epoch));
      this.lastSeq = seq;
      delivered.push(event);
    }
    return { events: delivered, gaps };
  }
}
