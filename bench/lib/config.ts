/** Iteration counts of the full run and of `--quick` (CI: proves the bench still runs, in well under two minutes). */
export interface Counts {
  /** Generated rows on the master; enough pages for every miss and the largest growth level. */
  seedRows: number;
  /** Untimed iterations before each timed loop. */
  warmup: number;
  /** Cached pages a hit loop rotates through (pages 1..rotate). */
  rotate: number;
  hits: number;
  misses: number;
  workbox: number;
  idb: number;
  fetches: number;
  enqueues: number;
  flushSizes: number[];
  invalidations: number;
  coldStarts: number;
  growthRows: number[];
  growthHits: number;
  growthInvalidations: number;
  growthWrites: number;
  scrollPages: number;
  scrollReps: number;
  /** Pages of the prefetch figure (seedRows must fill them). */
  prefetchPages: number;
  /** The peer figure: pages cached before the reloads (one level each), timed reloads, and offline writes queued across a reload. */
  peerCachedPages: number[];
  peerReloads: number;
  peerWrites: number;
}

export const FULL: Counts = {
  seedRows: 100_000,
  warmup: 20,
  rotate: 10,
  hits: 500,
  misses: 200,
  workbox: 500,
  idb: 500,
  fetches: 300,
  enqueues: 200,
  flushSizes: [1_000, 10_000],
  invalidations: 100,
  coldStarts: 15,
  growthRows: [1_000, 10_000, 100_000],
  growthHits: 200,
  growthInvalidations: 3,
  growthWrites: 3,
  scrollPages: 20,
  scrollReps: 3,
  prefetchPages: 1_000,
  peerCachedPages: [10, 200],
  peerReloads: 20,
  peerWrites: 1_000,
};

export const QUICK: Counts = {
  seedRows: 5_000,
  warmup: 3,
  rotate: 5,
  hits: 30,
  misses: 20,
  workbox: 30,
  idb: 30,
  fetches: 20,
  enqueues: 15,
  flushSizes: [100, 300],
  invalidations: 10,
  coldStarts: 3,
  growthRows: [500, 2_500],
  growthHits: 20,
  growthInvalidations: 1,
  growthWrites: 1,
  scrollPages: 20,
  scrollReps: 1,
  prefetchPages: 50,
  peerCachedPages: [5],
  peerReloads: 3,
  peerWrites: 50,
};

/** Rows per page in every read figure: the demo's and the master's default. */
export const IPP = 50;
