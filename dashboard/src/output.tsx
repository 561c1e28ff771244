import { useEffect, useState } from 'preact/hooks';
import { authHeaders } from './api.js';
import { json } from './format.js';

const IMAGE_URL = /\.(png|jpe?g|gif|webp|avif|svg|bmp)(\?|#|$)/i;
const ARCHIVE_PATH = /\/api\/files\/([0-9a-f]{64})$/i;

function archivedSha(url: string): string | undefined {
  try {
    return ARCHIVE_PATH.exec(new URL(url, location.href).pathname)?.[1];
  } catch {
    return undefined;
  }
}

function isUrl(value: string): boolean {
  return /^https?:\/\//i.test(value);
}

/** An archived file: read through the API (with the token), shown inline when it is an image. */
function ArchivedFile({ sha256, label }: { sha256: string; label: string }) {
  const [file, setFile] = useState<{ url: string; type: string } | { error: string } | undefined>(undefined);
  useEffect(() => {
    let url: string | undefined;
    let cancelled = false;
    fetch(`/api/files/${sha256}`, { headers: authHeaders() })
      .then(async (res) => {
        if (!res.ok) throw new Error(`the archive answered ${res.status}`);
        const blob = await res.blob();
        if (cancelled) return;
        url = URL.createObjectURL(blob);
        setFile({ url, type: blob.type });
      })
      .catch((e: unknown) => !cancelled && setFile({ error: e instanceof Error ? e.message : String(e) }));
    return () => {
      cancelled = true;
      if (url !== undefined) URL.revokeObjectURL(url);
    };
  }, [sha256]);
  if (file === undefined) return <p class="hint">Loading {label} from the archive…</p>;
  if ('error' in file)
    return (
      <p class="note note-error">
        {label}: {file.error}
      </p>
    );
  if (file.type.startsWith('image/')) {
    return (
      <figure class="output-file">
        <img src={file.url} alt={label} data-archived={sha256} />
        <figcaption>
          {label} · archived copy ·{' '}
          <a href={file.url} download={sha256}>
            download
          </a>
        </figcaption>
      </figure>
    );
  }
  return (
    <p class="output-file">
      <a href={file.url} download={sha256}>
        {label} ({file.type || 'file'}, archived copy)
      </a>
    </p>
  );
}

function OutputString({ value, label }: { value: string; label: string }) {
  const sha256 = archivedSha(value);
  if (sha256 !== undefined) return <ArchivedFile sha256={sha256} label={label} />;
  if (/^data:image\//i.test(value) || (isUrl(value) && IMAGE_URL.test(value))) {
    return (
      <figure class="output-file">
        <img src={value} alt={label} referrerpolicy="no-referrer" loading="lazy" />
        <figcaption>
          {label} ·{' '}
          <a href={value} rel="noreferrer noopener" target="_blank">
            open
          </a>
        </figcaption>
      </figure>
    );
  }
  if (isUrl(value)) {
    return (
      <p class="output-file">
        <a href={value} rel="noreferrer noopener" target="_blank">
          {value}
        </a>
      </p>
    );
  }
  return <pre class="output-text">{value}</pre>;
}

/**
 * A prediction's output by kind: files (the archived copy when there is one) inline, text as text, any
 * other JSON as JSON. `value` is `archived_output` when present, else `output`.
 */
export function Output({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <p class="empty">No output.</p>;
  if (typeof value === 'string') return <OutputString value={value} label="Output" />;
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) {
    const strings = value;
    // A model that streams text sends a list of tokens: show them joined.
    if (!strings.some((v) => isUrl(v) || v.startsWith('data:')))
      return <pre class="output-text">{strings.join('')}</pre>;
    return (
      <div class="output-grid">
        {strings.map((v, i) => (
          <OutputString key={i} value={v} label={`Output ${i + 1}`} />
        ))}
      </div>
    );
  }
  return <pre class="json">{json(value)}</pre>;
}
