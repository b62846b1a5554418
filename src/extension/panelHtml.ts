/**
 * The report panel's HTML document, as a pure function (no DOM, no 'vscode'), so the extension host and the
 * headless-browser test serve exactly the same page and Content-Security-Policy:
 * - default-src 'none': nothing loads unless listed;
 * - script-src 'nonce-…': only the bundled webview.js runs; no inline handlers, no eval;
 * - style-src: the stylesheet from the extension plus constructed stylesheets of the web components (these are not
 *   subject to CSP); styles set from script through the CSSOM are allowed, `style` attributes in markup are not;
 * - img-src data: and the webview's own origin: thumbnails arrive as data: URIs made by the host;
 * - no font-src, connect-src, frame-src: no remote content of any kind.
 */

export interface PanelHtmlOptions {
  /** `webview.cspSource` in VS Code (the origin resources are served from). */
  cspSource: string;
  /** Fresh random nonce per rendering (base64 or hex, >= 128 bits). */
  nonce: string;
  /** URI of dist/webview.js as the webview sees it (`asWebviewUri`). */
  scriptUri: string;
  /** URI of media/panel.css as the webview sees it. */
  styleUri: string;
  /** Page title. */
  title?: string;
}

const escapeAttr = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource} data:`,
    `style-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
}

export function panelHtml(o: PanelHtmlOptions): string {
  if (!/^[A-Za-z0-9+/=_-]{16,}$/.test(o.nonce)) throw new Error('panelHtml: the nonce must be >= 16 base64/hex characters');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeAttr(contentSecurityPolicy(o.cspSource, o.nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeAttr(o.styleUri)}">
<title>${escapeAttr(o.title ?? 'CLIP Lens report')}</title>
</head>
<body>
<main id="app" aria-busy="true"></main>
<script nonce="${escapeAttr(o.nonce)}" src="${escapeAttr(o.scriptUri)}"></script>
</body>
</html>
`;
}
