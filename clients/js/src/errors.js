/**
 * The client's one error class.
 *
 * `code` is either a gateway error code from docs/protocol.md (`INVALID_TOPIC`,
 * `RATE_LIMITED`, ...) carried by an ERROR frame, or one of the client's own:
 *
 * | code               | when                                                          |
 * | ------------------ | ------------------------------------------------------------- |
 * | `UNREACHABLE`      | a connection attempt failed (no socket, no CONNECTED greeting) |
 * | `CONNECTION_LOST`  | the connection ended and the client will not reconnect        |
 * | `CLOSED`           | `client.close()` was called                                   |
 * | `UNSUBSCRIBED`     | a subscription ended before its SUBSCRIBED arrived            |
 * | `TIMEOUT`          | a command got no answer within `requestTimeout`               |
 * | `NOT_CONNECTED`    | a command was sent while no connection was open               |
 * | `INVALID_FRAME`    | the gateway sent something that is not an envelope            |
 * | `INVALID_EVENT`    | the `validate` hook refused an event (it was not delivered)   |
 * | `UNKNOWN_VERSION`  | a version map had no handler for an event's `version`         |
 * | `VERSIONS_CONFLICT`| thrown by `subscribe()`: the topic is held with other `versions` |
 * | `HANDLER_FAILED`   | an application callback threw or rejected                     |
 * | `FETCH_FAILED`     | a live collection's `fetch` threw or rejected                 |
 *
 * @module
 */

/** An ERROR from the gateway, or a failure the client noticed itself. */
export class EventwireError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{details?: Record<string, unknown>, requestId?: string, topic?: string,
   *          closeCode?: number, event?: object, cause?: unknown}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message, 'cause' in extra ? { cause: extra.cause } : undefined);
    this.name = 'EventwireError';
    this.code = code;
    this.details = extra.details ?? {};
    this.requestId = extra.requestId;
    this.topic = extra.topic ?? topicOf(this.details);
    this.closeCode = extra.closeCode;
    this.event = extra.event;
  }

  /**
   * The error carried by an ERROR frame's payload `{code, message, details}`.
   * @param {unknown} payload
   * @param {string} requestId the frame's `data.entity_id`
   */
  static fromPayload(payload, requestId) {
    const body = isObject(payload) ? payload : {};
    const code = typeof body.code === 'string' ? body.code : 'INTERNAL_ERROR';
    const message = typeof body.message === 'string' ? body.message : code;
    const details = isObject(body.details) ? body.details : {};
    return new EventwireError(code, message, { details, requestId });
  }
}

/** @param {unknown} value @returns {value is Record<string, any>} */
export function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** @param {Record<string, unknown>} details */
function topicOf(details) {
  return typeof details.topic === 'string' ? details.topic : undefined;
}
