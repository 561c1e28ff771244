import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { auth, signIn, signOut, token } from './api.js';
import { PredictionsPage } from './pages/predictions.js';
import { PredictionPage } from './pages/prediction.js';
import { RejectionsPage } from './pages/rejections.js';
import { DestinationsPage } from './pages/destinations.js';
import { Link, useLocation } from './router.js';
import { startStream, stopStream } from './stream.js';
import { useLive } from './ui.js';
import './style.css';

function useNeedsToken(): boolean {
  const [needs, setNeeds] = useState(auth.needsToken);
  useEffect(() => auth.subscribe(() => setNeeds(auth.needsToken)), []);
  return needs;
}

/** Shown when the API answered 401: the token stays in this browser session only. */
function SignIn() {
  const [value, setValue] = useState('');
  return (
    <form
      class="card sign-in"
      aria-labelledby="sign-in-title"
      onSubmit={(e) => {
        e.preventDefault();
        if (value.trim() !== '') signIn(value.trim());
      }}
    >
      <h1 id="sign-in-title">Sign in</h1>
      <p>
        This Inlet has an admin token (<code>INLET_ADMIN_TOKEN</code>). Type it to read its data; it is kept
        in this browser tab&apos;s session only and sent as <code>Authorization: Bearer</code>.
      </p>
      <label>
        Admin token
        <input
          type="password"
          name="token"
          autocomplete="current-password"
          required
          value={value}
          onInput={(e) => setValue(e.currentTarget.value)}
          autofocus
        />
      </label>
      <button type="submit" class="button primary">
        Sign in
      </button>
    </form>
  );
}

function LiveState() {
  const live = useLive();
  return (
    <span
      class={`live ${live ? 'live-on' : ''}`}
      role="status"
      title={live ? 'New deliveries show as they arrive' : 'Refreshing on a timer'}
    >
      {live ? 'Live' : 'Not live'}
    </span>
  );
}

const PAGES = [
  {
    href: '/',
    label: 'Predictions',
    match: (path: string) => path === '/' || path.startsWith('/predictions/'),
  },
  { href: '/rejections', label: 'Rejections', match: (path: string) => path === '/rejections' },
  { href: '/destinations', label: 'Destinations', match: (path: string) => path === '/destinations' },
];

function Page({ path, search }: { path: string; search: URLSearchParams }) {
  if (path.startsWith('/predictions/')) {
    const id = decodeURIComponent(path.slice('/predictions/'.length));
    return <PredictionPage key={id} id={id} />;
  }
  if (path === '/rejections') return <RejectionsPage />;
  if (path === '/destinations') return <DestinationsPage />;
  return <PredictionsPage search={search} />;
}

function App() {
  const { path, search } = useLocation();
  const needsToken = useNeedsToken();

  useEffect(() => {
    if (needsToken) return;
    startStream();
    return stopStream;
  }, [needsToken, auth.generation]);

  useEffect(() => {
    const page = PAGES.find((p) => p.match(path));
    document.title = page === undefined ? 'Inlet' : `${page.label} · Inlet`;
  }, [path]);

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <Link href="/" class="brand">
          Inlet
        </Link>
        <nav aria-label="Pages">
          <ul>
            {PAGES.map((p) => (
              <li key={p.href}>
                <Link href={p.href} aria-current={p.match(path) ? 'page' : undefined}>
                  {p.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        {!needsToken && <LiveState />}
        {!needsToken && token() !== undefined && (
          <button type="button" class="link-button" onClick={signOut}>
            Sign out
          </button>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        {needsToken ? <SignIn /> : <Page path={path} search={search} />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
