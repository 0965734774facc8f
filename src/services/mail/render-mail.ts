import mjml2html from 'mjml';

/** Escapes a value for HTML text and attributes: every interpolated value goes through it. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * A tagged template for MJML whose interpolated values are escaped; `raw()` marks the few values
 * that are markup already (parts made with this same tag).
 */
export function mjml(strings: TemplateStringsArray, ...values: unknown[]): Markup {
  return new Markup(strings.reduce((out, part, i) => out + part + (i < values.length ? markupOf(values[i]) : ''), ''));
}

export class Markup {
  constructor(readonly text: string) {}
}

function markupOf(value: unknown): string {
  if (value instanceof Markup) return value.text;
  if (Array.isArray(value)) return value.map(markupOf).join('');
  return escapeHtml(value);
}

/** MJML to HTML; any MJML error fails loudly (a broken template must not send a broken mail). */
export async function renderMjml(document: Markup): Promise<string> {
  const result = await mjml2html(document.text, { validationLevel: 'strict', keepComments: false });
  if (result.errors.length > 0) throw new Error(`mail template: ${result.errors.map((e) => e.formattedMessage).join('; ')}`);
  return result.html;
}
