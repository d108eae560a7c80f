/**
 * eventwire: the browser and Node client of an eventwire gateway.
 *
 *     import {connect, liveCollection, livePresence} from 'eventwire';   // or '/static/js/eventwire.js'
 *
 *     const client = connect('ws://127.0.0.1:8000/ws', {onError: console.warn});
 *     const off = client.subscribe('gift-list:123', {
 *       ADDED: (event) => console.log('added', event.data.payload),
 *       UPDATED: {1: updatedV1, 2: updatedV2},      // by schema version
 *     }, {onGap: (gap) => refetch(gap.topic)});
 *
 * Types: eventwire.d.ts. Guide: docs/js-client.md. Wire protocol: docs/protocol.md.
 *
 * @module
 */

export { Client, connect } from './client.js';
export { EventwireError } from './errors.js';
export { LiveCollection, liveCollection } from './live-collection.js';
export { LivePresence, livePresence } from './live-presence.js';
export { mergePatch } from './merge-patch.js';
export { CloseCode, backoffDelay, shouldReconnect } from './reconnect.js';
