// Markdown cells: marked renders, DOMPurify sanitizes (no script, no event handlers, no
// javascript: URLs), and only then is the result inserted. This is the one place the
// console inserts HTML; every other user text goes through text nodes.
import { marked } from 'marked';
import DOMPurify from 'dompurify';

/** Sanitized HTML for `source` (a cell's markdown). */
export function renderMarkdown(source) {
  const raw = marked.parse(source ?? '', { async: false, gfm: true });
  return DOMPurify.sanitize(raw, { USE_PROFILES: { html: true }, FORBID_TAGS: ['style', 'form', 'input', 'button'], FORBID_ATTR: ['style'] });
}
