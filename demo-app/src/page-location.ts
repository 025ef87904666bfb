/** The list's page number lives in the URL hash (`#page=3`), so a reload, online or offline, reopens the same page. */

export function currentPage(): number {
  const match = /(?:^#|&)page=(\d+)/.exec(location.hash);
  const page = match ? Number(match[1]) : 1;
  return Number.isSafeInteger(page) && page >= 1 ? page : 1;
}

export function goToPage(page: number): void {
  location.hash = `page=${Math.max(1, Math.floor(page))}`;
}

export function onPageChange(listener: () => void): void {
  addEventListener('hashchange', listener);
}
