import type { ChangeEvent, OwnedRows, Store } from './store.js';
import type { Row } from './validate.js';

/** The table every seed writes to. */
export const SEED_TABLE = 'products';

/** The three rows `--seed` and `POST /admin/seed` load. */
export const SAMPLE_PRODUCTS: readonly Row[] = [
  { id: 'a', name: 'Apple Pie', price: 12 },
  { id: 'b', name: 'Brioche', price: 8 },
  { id: 'c', name: 'Cinnamon Roll', price: 15 },
];

const FLAVOURS = ['Almond', 'Butter', 'Cherry', 'Date', 'Espresso', 'Fig', 'Ginger', 'Hazelnut', 'Lemon', 'Maple'];
const BAKES = ['Croissant', 'Tart', 'Muffin', 'Scone', 'Bun', 'Cake', 'Cookie', 'Danish', 'Loaf'];

/** The n-th generated product (1-based); ids are zero padded so they sort like their order. */
export function generatedProduct(n: number): Row {
  const flavour = FLAVOURS[n % FLAVOURS.length] ?? 'Plain';
  const bake = BAKES[Math.floor(n / FLAVOURS.length) % BAKES.length] ?? 'Roll';
  return { id: `p${String(n).padStart(6, '0')}`, name: `${flavour} ${bake} #${n}`, price: 2 + ((n * 7) % 29) };
}

/**
 * Replaces the products table with the sample rows and/or `rows` generated
 * ones, in one transaction. Logged as a single `changed` event so live
 * clients refetch instead of replaying thousands of inserts.
 */
/** Seeds the products of each owner (every user in auth mode): one `changed` event each. */
export function seedEveryOwner(store: Store, owners: readonly OwnedRows['owner'][], opts: { sample: boolean; rows: number }): ChangeEvent[] {
  return owners.map((owner) => seedProducts(store, owner, opts));
}

export function seedProducts(store: Store, owner: OwnedRows['owner'], opts: { sample: boolean; rows: number }): ChangeEvent {
  const rows = store.rowsOf(owner);
  return store.transaction(() => {
    rows.clearTable(SEED_TABLE);
    if (opts.sample) for (const row of SAMPLE_PRODUCTS) rows.insertRow(SEED_TABLE, row);
    for (let n = 1; n <= opts.rows; n++) rows.insertRow(SEED_TABLE, generatedProduct(n));
    return rows.appendEvent(SEED_TABLE, 'changed');
  });
}
