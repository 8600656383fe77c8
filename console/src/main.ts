/** The fleetjobs web console (CONTRACT §12): sign-in, then jobs, one job, devices and a new job. */

import { html, render } from 'htm/preact';
import type { VNode } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import {
  ApiError,
  type Credentials,
  call,
  clearCredentials,
  loadCredentials,
  saveCredentials,
  startNavigationGet,
  UNAUTHORIZED_EVENT,
} from './api.js';
import { CreatePage } from './create.js';
import { DevicesPage } from './devices.js';
import { JobPage } from './job.js';
import { JobsPage, jobsPagePath } from './jobs.js';
import { href, type Route, routeOf, useRoute } from './route.js';
import './style.css';

function Login(props: { onSignedIn: (credentials: Credentials) => void }): VNode {
  const [kind, setKind] = useState<Credentials['kind']>('basic');
  const [first, setFirst] = useState('');
  const [second, setSecond] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const credentials: Credentials =
      kind === 'basic' ? { kind, username: first, password: second } : { kind, id: first, secret: second };
    setBusy(true);
    try {
      await call('GET', '/ws/v1/jobs', undefined, credentials);
      props.onSignedIn(credentials);
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : String(caught));
      setBusy(false);
    }
  };
  const labels = kind === 'basic' ? ['Username', 'Password'] : ['API key id', 'API key secret'];
  return html`<main class="login">
    <form onSubmit=${submit} aria-labelledby="login-title">
      <h1 id="login-title">fleetjobs</h1>
      <fieldset class="kinds">
        <legend>Sign in with</legend>
        <label><input type="radio" name="kind" checked=${kind === 'basic'} onChange=${() => setKind('basic')} /> username and password</label>
        <label><input type="radio" name="kind" checked=${kind === 'key'} onChange=${() => setKind('key')} /> an API key</label>
      </fieldset>
      <div class="field">
        <label for="login-first">${labels[0]}</label>
        <input id="login-first" autocomplete=${kind === 'basic' ? 'username' : 'off'} required value=${first} onInput=${(event: Event) => setFirst((event.target as HTMLInputElement).value)} />
      </div>
      <div class="field">
        <label for="login-second">${labels[1]}</label>
        <input id="login-second" type="password" autocomplete=${kind === 'basic' ? 'current-password' : 'off'} required value=${second} onInput=${(event: Event) => setSecond((event.target as HTMLInputElement).value)} />
      </div>
      ${error === null ? null : html`<p class="error" role="alert">${error}</p>`}
      <button type="submit" class="primary" disabled=${busy}>Sign in</button>
      <p class="small muted">The same credentials as the API. They are kept in this tab only, until you sign out or close it.</p>
    </form>
  </main>`;
}

/** The page a route shows: `#/jobs/17` one job, `#/devices`, `#/new`, and else the jobs list. */
function pageOf(route: Route): 'job' | 'devices' | 'new' | 'jobs' {
  const [section = 'jobs', id] = route.path;
  if (section === 'jobs' && id !== undefined) return 'job';
  if (section === 'devices' || section === 'new') return section;
  return 'jobs';
}

function Page(): VNode {
  const route = useRoute();
  // Moving to another page moves the focus to its heading, as a page load would start there
  // (a new query or order on the same page leaves the focus where it is). A layout effect: the
  // layout that focusing forces is done while the page's first request is on its way (started at
  // the navigation, see startFirstRequest), not when its answer is to be shown.
  const page = route.path.join('/');
  const shownPage = useRef(page);
  useLayoutEffect(() => {
    if (shownPage.current === page) return;
    shownPage.current = page;
    document.querySelector<HTMLElement>('main h1')?.focus();
  }, [page]);
  switch (pageOf(route)) {
    case 'job':
      return html`<${JobPage} key=${route.path[1]} jobId=${Number(route.path[1])} />`;
    case 'devices':
      return html`<${DevicesPage} route=${route} />`;
    case 'new':
      return html`<${CreatePage} />`;
    case 'jobs':
      return html`<${JobsPage} route=${route} />`;
  }
}

function App(): VNode {
  const [credentials, setCredentials] = useState(loadCredentials);
  const route = useRoute();
  useEffect(() => {
    const signOut = () => {
      clearCredentials();
      setCredentials(null);
    };
    window.addEventListener(UNAUTHORIZED_EVENT, signOut);
    return () => window.removeEventListener(UNAUTHORIZED_EVENT, signOut);
  }, []);
  if (credentials === null) {
    return html`<${Login}
      onSignedIn=${(signedIn: Credentials) => {
        saveCredentials(signedIn);
        setCredentials(signedIn);
      }}
    />`;
  }
  const section = route.path[0] ?? 'jobs';
  const link = (path: string, label: string) =>
    html`<a href=${href(path)} aria-current=${section === path ? 'page' : undefined}>${label}</a>`;
  return html`<header class="top">
      <a class="brand" href=${href('jobs')}>fleetjobs</a>
      <nav aria-label="Main">${link('jobs', 'Jobs')} ${link('devices', 'Devices')} ${link('new', 'New job')}</nav>
      <span class="who">
        ${credentials.kind === 'basic' ? credentials.username : `key ${credentials.id.slice(0, 8)}`}
        <button
          type="button"
          onClick=${() => {
            clearCredentials();
            setCredentials(null);
          }}
        >
          Sign out
        </button>
      </span>
    </header>
    <main><${Page} /></main>`;
}

/**
 * The jobs list's request starts as soon as a link (or the address bar, or Back) leads to it, not
 * once the page is built: at the navigation itself where the browser has the Navigation API (its
 * `navigate` event comes before the hash changes), else at `hashchange` (this listener runs before
 * the pages' own). The page takes that request's answer (startNavigationGet).
 */
function startFirstRequest(hash: string): void {
  const route = routeOf(hash);
  startNavigationGet(pageOf(route) === 'jobs' ? jobsPagePath(route) : undefined);
}

/** The part of the Navigation API read here (not in TypeScript's DOM types yet). */
interface Navigation {
  addEventListener(
    type: 'navigate',
    listener: (event: { hashChange: boolean; destination: { url: string } }) => void,
  ): void;
}

const navigation = (window as { navigation?: Navigation }).navigation;
if (navigation !== undefined) {
  navigation.addEventListener('navigate', (event) => {
    if (event.hashChange) startFirstRequest(new URL(event.destination.url).hash);
  });
} else {
  window.addEventListener('hashchange', () => startFirstRequest(location.hash));
}

const root = document.getElementById('app');
if (root !== null) render(html`<${App} />`, root);
