/**
 * One place where every crossing of the host seam can be watched: `observeHost` wraps a
 * `Host` and `observeEvents` a `HostEvents` so that each call and each event passes
 * `observer(kind, name, args)` first, then goes on unchanged. A recorder of a network's I/O
 * (record/replay) stands here; so can a trace or a test.
 *
 * The wrappers are built from `HOST_CALLS` and `HOST_EVENTS`, whose `satisfies` clauses make
 * the compiler refuse a method added to `Host` or `HostEvents` without being listed, so no
 * crossing goes unobserved. Wrapping costs an array of arguments per crossing: callers that
 * observe nothing do not wrap (LiveNetwork wraps only when given an observer).
 *
 * `args` are the method's arguments as passed: byte arrays may be views valid only during the
 * call (`tcpData`'s read buffer), so an observer that keeps them copies them.
 *
 * A Host call's result (`tcpWrite`'s buffered byte count: the one call that returns a value)
 * is what a replay must give back; `observeHost` hands it to `onResult` when given one.
 */
import type { Host, HostEvents } from './seams.js';

/** Receives every Host call (`'call'`) and HostEvents event (`'event'`) before it goes on. */
export type HostObserver = (kind: 'call' | 'event', name: string, args: readonly unknown[]) => void;

/** Every method of `Host`: the compiler checks the list is exactly the interface's. */
export const HOST_CALLS = {
  udpOpen: true, udpSend: true, tcpConnect: true, tcpConnectService: true, tcpWrite: true, tcpEnd: true, tcpPause: true, tcpReset: true,
  tcpListen: true, tcpAdopt: true, tcpRefuse: true, udpBind: true, udpSendTo: true, fileOpen: true, fileRead: true, close: true,
} as const satisfies Record<keyof Host, true>;

/** Every method of `HostEvents`: the compiler checks the list is exactly the interface's. */
export const HOST_EVENTS = {
  udpReceived: true, udpError: true, tcpConnected: true, tcpData: true, tcpEnd: true, tcpDrained: true, tcpError: true,
  tcpClosed: true, tcpListening: true, tcpListenError: true, tcpAccepted: true, udpBound: true, udpReceivedFrom: true,
  fileOpened: true, fileData: true, fileError: true,
} as const satisfies Record<keyof HostEvents, true>;

/** Receives a Host call's result after the call returned (undefined for the calls that return nothing). */
export type HostResultObserver = (name: string, result: unknown) => void;

function wrap<T extends object>(target: T, names: readonly (keyof T & string)[], kind: 'call' | 'event', observer: HostObserver, onResult?: HostResultObserver): T {
  const out: Record<string, (...args: unknown[]) => unknown> = {};
  for (const name of names) {
    const method = target[name] as ((...args: unknown[]) => unknown) | undefined;
    if (method === undefined) continue; // an optional method the target lacks (Host's file calls)
    out[name] =
      onResult === undefined
        ? (...args: unknown[]): unknown => {
            observer(kind, name, args);
            return method.apply(target, args);
          }
        : (...args: unknown[]): unknown => {
            observer(kind, name, args);
            const result = method.apply(target, args);
            onResult(name, result);
            return result;
          };
  }
  return out as T;
}

/**
 * A Host whose every call passes `observer` before reaching `host`; results are returned
 * unchanged, and seen by `onResult` when given.
 */
export function observeHost(host: Host, observer: HostObserver, onResult?: HostResultObserver): Host {
  return wrap(host, Object.keys(HOST_CALLS) as (keyof Host)[], 'call', observer, onResult);
}

/** HostEvents whose every event passes `observer` before reaching `events`. */
export function observeEvents(events: HostEvents, observer: HostObserver): HostEvents {
  return wrap(events, Object.keys(HOST_EVENTS) as (keyof HostEvents)[], 'event', observer);
}
