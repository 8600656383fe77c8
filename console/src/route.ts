/** The console's pages live in the URL's hash: `#/jobs?query=…`, `#/jobs/17`, `#/devices`, `#/new`. */

import { useEffect, useState } from 'preact/hooks';

export interface Route {
  path: string[];
  params: URLSearchParams;
}

/** The route of a URL's hash (`#/jobs?query=…`). */
export function routeOf(hash: string): Route {
  const [path = '', search = ''] = hash.replace(/^#\/?/, '').split('?', 2);
  return { path: path.split('/').filter((part) => part !== ''), params: new URLSearchParams(search) };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => routeOf(location.hash));
  useEffect(() => {
    const changed = () => setRoute(routeOf(location.hash));
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return route;
}

/** The hash of a page with its parameters; empty parameters are left out. */
export function href(path: string, params: Record<string, string> = {}): string {
  const search = new URLSearchParams(Object.entries(params).filter(([, value]) => value !== ''));
  const text = search.toString();
  return `#/${path}${text === '' ? '' : `?${text}`}`;
}

export function go(path: string, params: Record<string, string> = {}): void {
  location.hash = href(path, params);
}
