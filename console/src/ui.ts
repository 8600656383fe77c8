/** Pieces shared by the console's pages: polling, the query box, the paging buttons, the state bar. */

import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { ApiError, call, type Job, type Page, streamEvents, withParams } from './api.js';

/** How often a page asks again while its live stream (CONTRACT §10) is not open. */
export const POLL_MS = 3000;
/** A burst of changes reloads a page at most this often. */
const LIVE_RELOAD_MS = 250;

export interface Loaded<T> {
  data: T | null;
  error: ApiError | null;
  reload: () => Promise<void>;
}

/**
 * Loads with `load` now, whenever `key` changes, and whenever the live stream `live` (a
 * `/ws/v1/events?…` path) reports a change; while that stream is not open, every POLL_MS while
 * the page is visible. One request at a time (a change during one loads again after it), and an
 * answer for an older key is dropped.
 */
export function usePolling<T>(load: () => Promise<T>, key: string, live: string): Loaded<T> {
  const [state, setState] = useState<{ key: string; data: T | null; error: ApiError | null }>({
    key,
    data: null,
    error: null,
  });
  const loadRef = useRef(load);
  loadRef.current = load;
  // The load in progress, if any: the live stream opens after the first one, so that it never
  // competes with the request whose rows the page is waiting to show.
  const running = useRef<Promise<void> | null>(null);
  const again = useRef(false);
  const currentKey = useRef(key);
  currentKey.current = key;

  const reload = useCallback((): Promise<void> => {
    if (running.current !== null) {
      again.current = true;
      return running.current;
    }
    again.current = false;
    const asked = currentKey.current;
    const loading = loadRef
      .current()
      .then(
        (data) => ({ data, error: null }),
        (error: unknown) => ({
          data: null,
          error: error instanceof ApiError ? error : new ApiError(0, String(error)),
        }),
      )
      .then((result) => {
        running.current = null;
        if (asked !== currentKey.current || again.current) return reload();
        // A failed poll keeps what was shown for the same key, with the error beside it.
        setState((previous) => ({
          key: asked,
          error: result.error,
          data: result.data ?? (previous.key === asked ? previous.data : null),
        }));
        return undefined;
      });
    running.current = loading;
    return loading;
  }, []);

  // A layout effect: the request starts as soon as the page is in the DOM, not a frame later.
  useLayoutEffect(() => {
    reload();
  }, [key, reload]);

  useEffect(() => {
    const stop = new AbortController();
    let streaming = false;
    let pending: ReturnType<typeof setTimeout> | undefined;
    const changed = () => {
      pending ??= setTimeout(() => {
        pending = undefined;
        reload();
      }, LIVE_RELOAD_MS);
    };
    const opened = () => {
      streaming = true;
      // Opened after the page's first load: what changed in between is loaded once it is open.
      changed();
    };
    const open = () => {
      streamEvents(live, { onOpen: opened, onEvent: changed }, stop.signal)
        .catch(() => undefined)
        .finally(() => {
          streaming = false;
          if (!stop.signal.aborted) setTimeout(open, POLL_MS);
        });
    };
    (running.current ?? Promise.resolve()).finally(() =>
      setTimeout(() => {
        if (!stop.signal.aborted) open();
      }),
    );
    const timer = setInterval(() => {
      if (!streaming && document.visibilityState === 'visible') reload();
    }, POLL_MS);
    return () => {
      stop.abort();
      clearInterval(timer);
      clearTimeout(pending);
    };
  }, [reload, live]);

  const fresh = state.key === key;
  return { data: fresh ? state.data : null, error: fresh ? state.error : null, reload };
}

/** A page of a list, followed by cursor: the cursors of the pages before are kept to go back. */
export function useCursorPaging(resetKey: string) {
  const [cursors, setCursors] = useState<string[]>([]);
  const [forKey, setForKey] = useState(resetKey);
  if (forKey !== resetKey) {
    setForKey(resetKey);
    setCursors([]);
  }
  const current = forKey === resetKey ? cursors.at(-1) : undefined;
  return {
    cursor: current,
    pageNumber: (forKey === resetKey ? cursors.length : 0) + 1,
    next: (cursor: string) => setCursors((previous) => [...previous, cursor]),
    previous: () => setCursors((previous) => previous.slice(0, -1)),
  };
}

export function loadPage<T>(path: string, params: Record<string, string | number | undefined>) {
  return call<Page<T>>('GET', withParams(path, params));
}

export function Pager(props: {
  page: Page<unknown> | null;
  pageNumber: number;
  onNext: (cursor: string) => void;
  onPrevious: () => void;
  noun: string;
}): VNode {
  const { page, pageNumber, onNext, onPrevious, noun } = props;
  const cursor = page?.cursor;
  return html`<nav class="pager" aria-label=${`${noun} pages`}>
    <button type="button" onClick=${onPrevious} disabled=${pageNumber <= 1}>Previous page</button>
    <span>Page ${pageNumber}${page === null ? '' : ` · ${page.count} ${noun} shown`}</span>
    <button type="button" onClick=${() => cursor !== undefined && onNext(cursor)} disabled=${cursor === undefined}>
      Next page
    </button>
  </nav>`;
}

/**
 * A query box for the v1 query language: a 400 that names a position is shown under the box with a
 * caret under that character.
 */
export function QueryBox(props: {
  id: string;
  label: string;
  value: string;
  example: string;
  error: ApiError | null;
  onSubmit: (text: string) => void;
  children?: VNode | VNode[];
}): VNode {
  const [text, setText] = useState(props.value);
  useEffect(() => setText(props.value), [props.value]);
  const error = props.error?.status === 400 ? props.error : null;
  const position = error?.queryPosition ?? null;
  const errorId = `${props.id}-error`;
  return html`<form
    class="query"
    role="search"
    onSubmit=${(event: Event) => {
      event.preventDefault();
      props.onSubmit(text.trim());
    }}
  >
    <label for=${props.id}>${props.label}</label>
    <div class="query-row">
      <input
        id=${props.id}
        class="mono"
        type="text"
        spellcheck=${false}
        autocomplete="off"
        placeholder=${props.example}
        value=${text}
        onInput=${(event: Event) => setText((event.target as HTMLInputElement).value)}
        aria-invalid=${error !== null}
        aria-describedby=${error === null ? undefined : errorId}
      />
      ${props.children}
      <button type="submit">Search</button>
    </div>
    ${
      error === null
        ? null
        : html`<div id=${errorId} class="query-error" role="alert">
          ${
            position === null
              ? null
              : html`<pre class="mono caret" aria-hidden="true">${caretLine(props.value, position)}</pre>`
          }
          <span>${error.message}</span>
        </div>`
    }
  </form>`;
}

/** The query (as submitted) with a caret under its 1-based code-point position. */
function caretLine(query: string, position: number): string {
  const before = Array.from(query)
    .slice(0, position - 1)
    .join('');
  return `${query}\n${' '.repeat(Array.from(before).length)}^`;
}

const BAR_PARTS = [
  { field: 'progress_success', label: 'successful', className: 'ok' },
  { field: 'progress_failures', label: 'failed or timed out', className: 'bad' },
  { field: 'progress_canceled', label: 'canceled', className: 'off' },
  { field: 'progress_pending', label: 'pending', className: 'wait' },
] as const;

/** The job's targets as one bar, a segment per state (a row of the jobs list shows only this). */
export function StateBar(props: { job: Job }): VNode {
  const { job } = props;
  const total = Math.max(job.target_count, 1);
  const summary = BAR_PARTS.map((part) => `${job[part.field]} ${part.label}`).join(', ');
  return html`<div class="state-bar" role="img" aria-label=${`${job.target_count} targets: ${summary}`}>
    ${BAR_PARTS.map((part) =>
      job[part.field] === 0
        ? null
        : html`<span class=${`segment ${part.className}`} style=${{ width: `${(100 * job[part.field]) / total}%` }}></span>`,
    )}
  </div>`;
}

/** The state bar with the counts written out under it (the job page). */
export function StateSummary(props: { job: Job }): VNode {
  const { job } = props;
  return html`<div>
    <${StateBar} job=${job} />
    <ul class="legend">
      ${BAR_PARTS.map(
        (part) =>
          html`<li><span class=${`swatch ${part.className}`}></span>${part.label}: <strong data-count=${part.field}>${job[part.field]}</strong></li>`,
      )}
    </ul>
  </div>`;
}

const twoDigits = (value: number) => String(value).padStart(2, '0');

/**
 * `2026-11-28 17:40:00` in the browser's time zone. Written out by hand: the first toLocale…()
 * call of a page costs chromium ~170 ms (and each later one ~0.5 ms), longer than the API call.
 */
function localTime(date: Date): string {
  const day = `${date.getFullYear()}-${twoDigits(date.getMonth() + 1)}-${twoDigits(date.getDate())}`;
  return `${day} ${twoDigits(date.getHours())}:${twoDigits(date.getMinutes())}:${twoDigits(date.getSeconds())}`;
}

export function Time(props: { value: string | null }): VNode {
  if (props.value === null) return html`<span class="muted">—</span>`;
  return html`<time datetime=${props.value} title=${props.value}>${localTime(new Date(props.value))}</time>`;
}

export function Status(props: { value: string }): VNode {
  return html`<span class=${`status status-${props.value}`}>${props.value.replace('_', ' ')}</span>`;
}

export function ErrorNote(props: { error: ApiError | null }): VNode | null {
  return props.error === null ? null : html`<p class="error" role="alert">${props.error.message}</p>`;
}
