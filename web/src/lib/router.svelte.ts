/**
 * The app's routing: the path as state, links that move without reloading the page, and the
 * browser's back and forward buttons.
 */
export const route = $state({ path: window.location.pathname });

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  const url = new URL(to, window.location.href);
  if (options.replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  route.path = url.pathname;
  window.scrollTo(0, 0);
}

window.addEventListener('popstate', () => (route.path = window.location.pathname));

/** Paths the app shows itself (anything else — files, downloads, share links — the browser loads). */
const APP_PATHS = /^\/(|login|signup|library(\/.*)?|photos\/.*|sync|upload|devices|share|shares|friends|with-me)$/;

// Plain <a href> links inside the app move without a reload.
document.addEventListener('click', (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const anchor = (event.target as Element | null)?.closest('a');
  if (!anchor || anchor.target || anchor.hasAttribute('download') || anchor.origin !== window.location.origin || !APP_PATHS.test(anchor.pathname)) return;
  event.preventDefault();
  navigate(anchor.pathname + anchor.search);
});
